//! Whole frames: `size[4] type[1] tag[2] body`, decoded from and encoded to byte buffers.
//!
//! Decoding checks, in order: the size field is at least 7, at most the msize (capped at
//! [`MSIZE_LIMIT`]) and equal to the buffer's length; the type is a 9P2000 type of the expected
//! direction; the body parses field by field with every count checked against the bytes left;
//! no byte is left over. Errors after the header carry the frame's tag.

use super::dotl::{self, Dialect};
use super::dotl_codec;
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::msg::{Rmsg, Tmsg};
use super::msgtype::*;
use super::stat::{decode_counted, Stat};
use super::wire::{
    data_len, put_data, put_qid, put_str, put_u16, put_u32, put_u64, put_u8, qids_len, str_len,
    Reader,
};
use super::{iounit, HEADER_LEN, MAXWELEM, MSIZE_LIMIT, QID_LEN};

/// Decodes one complete T-message frame (as sent by a client) under the connection's `msize`.
///
/// `buf` must hold exactly one frame, size field included. Returns the tag and the message.
/// Never panics and allocates at most about `buf.len()` bytes, whatever `buf` holds.
pub fn decode_t(buf: &[u8], msize: u32) -> Result<(u16, Tmsg), DecodeError> {
    let (ty, tag, mut r) = header(buf, msize)?;
    let body = match direction(ty) {
        Some(Dir::T) => decode_t_body(ty, &mut r, msize),
        Some(Dir::R) => Err(DecodeErrorKind::WrongDirection { ty }),
        None => Err(DecodeErrorKind::UnknownType { ty }),
    };
    let msg = body
        .and_then(|m| r.finish().map(|()| m))
        .map_err(|k| DecodeError::new(Some(tag), k))?;
    Ok((tag, msg))
}

/// Decodes one complete R-message frame (as sent by a server) under the connection's `msize`.
/// The counterpart of [`decode_t`], for clients and tests; same guarantees.
pub fn decode_r(buf: &[u8], msize: u32) -> Result<(u16, Rmsg), DecodeError> {
    let (ty, tag, mut r) = header(buf, msize)?;
    let body = match direction(ty) {
        Some(Dir::R) => decode_r_body(ty, &mut r, msize),
        Some(Dir::T) => Err(DecodeErrorKind::WrongDirection { ty }),
        None => Err(DecodeErrorKind::UnknownType { ty }),
    };
    let msg = body
        .and_then(|m| r.finish().map(|()| m))
        .map_err(|k| DecodeError::new(Some(tag), k))?;
    Ok((tag, msg))
}

/// Decodes one complete T-message frame of `dialect` under the connection's `msize`: for
/// [`Dialect::P9`] exactly [`decode_t`]; for [`Dialect::L`] the 9P2000.L messages and the 9P2000
/// ones the dialect keeps. Same guarantees as [`decode_t`].
pub fn decode_t_in(buf: &[u8], msize: u32, dialect: Dialect) -> Result<(u16, Tmsg), DecodeError> {
    if dialect == Dialect::P9 {
        return decode_t(buf, msize);
    }
    let (ty, tag, mut r) = header(buf, msize)?;
    let body = match direction(ty) {
        Some(Dir::R) => Err(DecodeErrorKind::WrongDirection { ty }),
        _ if dotl::is_reply(ty) => Err(DecodeErrorKind::WrongDirection { ty }),
        _ => dotl_codec::decode_t_body(ty, &mut r, msize),
    };
    let msg = body
        .and_then(|m| r.finish().map(|()| m))
        .map_err(|k| DecodeError::new(Some(tag), k))?;
    Ok((tag, msg))
}

/// The counterpart of [`decode_t_in`] for replies (clients and tests).
pub fn decode_r_in(buf: &[u8], msize: u32, dialect: Dialect) -> Result<(u16, Rmsg), DecodeError> {
    if dialect == Dialect::P9 {
        return decode_r(buf, msize);
    }
    let (ty, tag, mut r) = header(buf, msize)?;
    let body = match direction(ty) {
        Some(Dir::T) => Err(DecodeErrorKind::WrongDirection { ty }),
        _ if ty % 2 == 0 && dotl::type_name(ty) != "unknown" => {
            Err(DecodeErrorKind::WrongDirection { ty })
        }
        _ => dotl_codec::decode_r_body(ty, &mut r, msize),
    };
    let msg = body
        .and_then(|m| r.finish().map(|()| m))
        .map_err(|k| DecodeError::new(Some(tag), k))?;
    Ok((tag, msg))
}

/// Appends the frame of a T-message to `out`. On error `out` is left as it was.
pub fn encode_t(tag: u16, msg: &Tmsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_frame(out, msg.msg_type(), tag, msg.encoded_len(), |out| {
        encode_t_body(msg, out)
    })
}

/// Appends the frame of an R-message to `out`. On error `out` is left as it was.
///
/// This does not know the connection's msize: a server checks [`Rmsg::encoded_len`] against it
/// first (and clamps read counts to [`iounit`]) so that no reply can exceed it.
pub fn encode_r(tag: u16, msg: &Rmsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_frame(out, msg.msg_type(), tag, msg.encoded_len(), |out| {
        encode_r_body(msg, out)
    })
}

/// Appends the head of an `Rread` frame carrying `len` bytes of data: `size[4] type[1] tag[2]
/// count[4]`, exactly what [`encode_r`] writes before the data of `Rmsg::Read`. A server
/// writes the head and then the data from where it lies, instead of copying a large reply
/// into a frame buffer.
pub fn encode_rread_head(tag: u16, len: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let total = len.saturating_add(HEADER_LEN + 4);
    if !u32::try_from(total).is_ok_and(|n| n <= MSIZE_LIMIT) {
        return Err(EncodeError::FrameTooLarge { len: total });
    }
    let (Ok(size), Ok(count)) = (u32::try_from(total), u32::try_from(len)) else {
        return Err(EncodeError::FrameTooLarge { len: total });
    };
    put_u32(out, size);
    put_u8(out, RREAD);
    put_u16(out, tag);
    put_u32(out, count);
    Ok(())
}

impl Tmsg {
    /// Bytes of this message's whole frame, header included: what [`encode_t`] appends.
    pub fn encoded_len(&self) -> usize {
        let body = match self {
            Tmsg::Version { version, .. } => 4usize.saturating_add(str_len(version)),
            Tmsg::Auth { uname, aname, .. } => 4usize
                .saturating_add(str_len(uname))
                .saturating_add(str_len(aname)),
            Tmsg::Attach { uname, aname, .. } => 8usize
                .saturating_add(str_len(uname))
                .saturating_add(str_len(aname)),
            Tmsg::Flush { .. } => 2,
            Tmsg::Walk { wnames, .. } => wnames
                .iter()
                .fold(10usize, |n, w| n.saturating_add(str_len(w))),
            Tmsg::Open { .. } => 5,
            Tmsg::Create { name, .. } => 9usize.saturating_add(str_len(name)),
            Tmsg::Read { .. } => 16,
            Tmsg::Write { data, .. } => 12usize.saturating_add(data_len(data)),
            Tmsg::Clunk { .. } | Tmsg::Remove { .. } | Tmsg::Stat { .. } => 4,
            Tmsg::Wstat { stat, .. } => 6usize.saturating_add(stat.encoded_len()),
            Tmsg::L(l) => l.body_len(),
        };
        body.saturating_add(HEADER_LEN)
    }
}

impl Rmsg {
    /// Bytes of this message's whole frame, header included: what [`encode_r`] appends. A
    /// server compares it with the connection's msize before sending.
    pub fn encoded_len(&self) -> usize {
        let body = match self {
            Rmsg::Version { version, .. } => 4usize.saturating_add(str_len(version)),
            Rmsg::Auth { .. } | Rmsg::Attach { .. } => QID_LEN,
            Rmsg::Error { ename } => str_len(ename),
            Rmsg::Flush | Rmsg::Clunk | Rmsg::Remove | Rmsg::Wstat => 0,
            Rmsg::Walk { wqids } => 2usize.saturating_add(qids_len(wqids.len())),
            Rmsg::Open { .. } | Rmsg::Create { .. } => QID_LEN + 4,
            Rmsg::Read { data } => data_len(data),
            Rmsg::Write { .. } => 4,
            Rmsg::Stat { stat } => 2usize.saturating_add(stat.encoded_len()),
            Rmsg::L(l) => l.body_len(),
        };
        body.saturating_add(HEADER_LEN)
    }
}

enum Dir {
    T,
    R,
}

/// Which way a 9P2000 type number travels, or `None` if it is not one (106, `Terror`, is not).
fn direction(ty: u8) -> Option<Dir> {
    match ty {
        TERROR => None,
        TVERSION..=RWSTAT if ty.is_multiple_of(2) => Some(Dir::T),
        TVERSION..=RWSTAT => Some(Dir::R),
        _ => None,
    }
}

/// Checks the size field and reads type and tag; returns a reader over the body.
fn header(buf: &[u8], msize: u32) -> Result<(u8, u16, Reader<'_>), DecodeError> {
    let framing = |k| DecodeError::new(None, k);
    let limit = msize.min(MSIZE_LIMIT);
    let mut r = Reader::new(buf);
    let Ok(size) = r.u32("size") else {
        let size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        return Err(framing(DecodeErrorKind::TooShort { size }));
    };
    if usize::try_from(size).is_ok_and(|s| s < HEADER_LEN) {
        return Err(framing(DecodeErrorKind::TooShort { size }));
    }
    if size > limit {
        return Err(framing(DecodeErrorKind::TooLarge { size, msize: limit }));
    }
    if usize::try_from(size) != Ok(buf.len()) {
        return Err(framing(DecodeErrorKind::SizeMismatch {
            size,
            len: buf.len(),
        }));
    }
    // The size check above guarantees the 3 header bytes are present.
    let ty = r.u8("type").map_err(framing)?;
    let tag = r.u16("tag").map_err(framing)?;
    Ok((ty, tag, r))
}

pub(super) fn decode_t_body(
    ty: u8,
    r: &mut Reader<'_>,
    msize: u32,
) -> Result<Tmsg, DecodeErrorKind> {
    Ok(match ty {
        TVERSION => Tmsg::Version {
            msize: r.u32("Tversion msize")?,
            version: r.string("Tversion version")?,
        },
        TAUTH => Tmsg::Auth {
            afid: r.u32("Tauth afid")?,
            uname: r.string("Tauth uname")?,
            aname: r.string("Tauth aname")?,
        },
        TATTACH => Tmsg::Attach {
            fid: r.u32("Tattach fid")?,
            afid: r.u32("Tattach afid")?,
            uname: r.string("Tattach uname")?,
            aname: r.string("Tattach aname")?,
        },
        TFLUSH => Tmsg::Flush {
            oldtag: r.u16("Tflush oldtag")?,
        },
        TWALK => {
            let fid = r.u32("Twalk fid")?;
            let newfid = r.u32("Twalk newfid")?;
            let count = r.u16("Twalk nwname")?;
            let n = walk_count(count)?;
            let mut wnames = Vec::with_capacity(n);
            for _ in 0..n {
                wnames.push(r.string("Twalk wname")?);
            }
            Tmsg::Walk {
                fid,
                newfid,
                wnames,
            }
        }
        TOPEN => Tmsg::Open {
            fid: r.u32("Topen fid")?,
            mode: r.u8("Topen mode")?,
        },
        TCREATE => Tmsg::Create {
            fid: r.u32("Tcreate fid")?,
            name: r.string("Tcreate name")?,
            perm: r.u32("Tcreate perm")?,
            mode: r.u8("Tcreate mode")?,
        },
        TREAD => Tmsg::Read {
            fid: r.u32("Tread fid")?,
            offset: r.u64("Tread offset")?,
            count: r.u32("Tread count")?,
        },
        TWRITE => Tmsg::Write {
            fid: r.u32("Twrite fid")?,
            offset: r.u64("Twrite offset")?,
            data: r.data(iounit(msize), "Twrite data")?,
        },
        TCLUNK => Tmsg::Clunk {
            fid: r.u32("Tclunk fid")?,
        },
        TREMOVE => Tmsg::Remove {
            fid: r.u32("Tremove fid")?,
        },
        TSTAT => Tmsg::Stat {
            fid: r.u32("Tstat fid")?,
        },
        TWSTAT => Tmsg::Wstat {
            fid: r.u32("Twstat fid")?,
            stat: decode_counted(r)?,
        },
        _ => return Err(DecodeErrorKind::UnknownType { ty }),
    })
}

pub(super) fn decode_r_body(
    ty: u8,
    r: &mut Reader<'_>,
    msize: u32,
) -> Result<Rmsg, DecodeErrorKind> {
    Ok(match ty {
        RVERSION => Rmsg::Version {
            msize: r.u32("Rversion msize")?,
            version: r.string("Rversion version")?,
        },
        RAUTH => Rmsg::Auth {
            aqid: r.qid("Rauth aqid")?,
        },
        RATTACH => Rmsg::Attach {
            qid: r.qid("Rattach qid")?,
        },
        RERROR => Rmsg::Error {
            ename: r.string("Rerror ename")?,
        },
        RFLUSH => Rmsg::Flush,
        RWALK => {
            let count = r.u16("Rwalk nwqid")?;
            let n = walk_count(count)?;
            let mut wqids = Vec::with_capacity(n);
            for _ in 0..n {
                wqids.push(r.qid("Rwalk wqid")?);
            }
            Rmsg::Walk { wqids }
        }
        ROPEN => Rmsg::Open {
            qid: r.qid("Ropen qid")?,
            iounit: r.u32("Ropen iounit")?,
        },
        RCREATE => Rmsg::Create {
            qid: r.qid("Rcreate qid")?,
            iounit: r.u32("Rcreate iounit")?,
        },
        RREAD => Rmsg::Read {
            data: r.data(iounit(msize), "Rread data")?,
        },
        RWRITE => Rmsg::Write {
            count: r.u32("Rwrite count")?,
        },
        RCLUNK => Rmsg::Clunk,
        RREMOVE => Rmsg::Remove,
        RSTAT => Rmsg::Stat {
            stat: decode_counted(r)?,
        },
        RWSTAT => Rmsg::Wstat,
        _ => return Err(DecodeErrorKind::UnknownType { ty }),
    })
}

/// A walk's element count, refused above [`MAXWELEM`] before anything is allocated.
fn walk_count(count: u16) -> Result<usize, DecodeErrorKind> {
    let n = usize::from(count);
    if n > MAXWELEM {
        return Err(DecodeErrorKind::TooManyWalkElements { count });
    }
    Ok(n)
}

/// Writes `size[4] type[1] tag[2]`, then the body, then patches the size. Any error truncates
/// `out` back to where it was.
fn encode_frame(
    out: &mut Vec<u8>,
    ty: u8,
    tag: u16,
    len: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if !u32::try_from(len).is_ok_and(|n| n <= MSIZE_LIMIT) {
        return Err(EncodeError::FrameTooLarge { len });
    }
    let start = out.len();
    out.reserve(len);
    put_u32(out, 0);
    put_u8(out, ty);
    put_u16(out, tag);
    let result = body(out).and_then(|()| {
        let written = out.len().saturating_sub(start);
        let size =
            u32::try_from(written).map_err(|_| EncodeError::FrameTooLarge { len: written })?;
        if let Some(slot) = out.get_mut(start..).and_then(|s| s.first_chunk_mut::<4>()) {
            *slot = size.to_le_bytes();
        }
        Ok(())
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_t_body(msg: &Tmsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        Tmsg::Version { msize, version } => {
            put_u32(out, *msize);
            put_str(out, version, "Tversion version")?;
        }
        Tmsg::Auth { afid, uname, aname } => {
            put_u32(out, *afid);
            put_str(out, uname, "Tauth uname")?;
            put_str(out, aname, "Tauth aname")?;
        }
        Tmsg::Attach {
            fid,
            afid,
            uname,
            aname,
        } => {
            put_u32(out, *fid);
            put_u32(out, *afid);
            put_str(out, uname, "Tattach uname")?;
            put_str(out, aname, "Tattach aname")?;
        }
        Tmsg::Flush { oldtag } => put_u16(out, *oldtag),
        Tmsg::Walk {
            fid,
            newfid,
            wnames,
        } => {
            let count = walk_len(wnames.len())?;
            put_u32(out, *fid);
            put_u32(out, *newfid);
            put_u16(out, count);
            for w in wnames {
                put_str(out, w, "Twalk wname")?;
            }
        }
        Tmsg::Open { fid, mode } => {
            put_u32(out, *fid);
            put_u8(out, *mode);
        }
        Tmsg::Create {
            fid,
            name,
            perm,
            mode,
        } => {
            put_u32(out, *fid);
            put_str(out, name, "Tcreate name")?;
            put_u32(out, *perm);
            put_u8(out, *mode);
        }
        Tmsg::Read { fid, offset, count } => {
            put_u32(out, *fid);
            put_u64(out, *offset);
            put_u32(out, *count);
        }
        Tmsg::Write { fid, offset, data } => {
            put_u32(out, *fid);
            put_u64(out, *offset);
            put_data(out, data)?;
        }
        Tmsg::Clunk { fid } | Tmsg::Remove { fid } | Tmsg::Stat { fid } => put_u32(out, *fid),
        Tmsg::Wstat { fid, stat } => {
            put_u32(out, *fid);
            put_counted_stat(out, stat)?;
        }
        Tmsg::L(l) => dotl_codec::encode_t_body(l, out)?,
    }
    Ok(())
}

fn encode_r_body(msg: &Rmsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        Rmsg::Version { msize, version } => {
            put_u32(out, *msize);
            put_str(out, version, "Rversion version")?;
        }
        Rmsg::Auth { aqid: qid } | Rmsg::Attach { qid } => put_qid(out, qid),
        Rmsg::Error { ename } => put_str(out, ename, "Rerror ename")?,
        Rmsg::Flush | Rmsg::Clunk | Rmsg::Remove | Rmsg::Wstat => {}
        Rmsg::Walk { wqids } => {
            put_u16(out, walk_len(wqids.len())?);
            for q in wqids {
                put_qid(out, q);
            }
        }
        Rmsg::Open { qid, iounit } | Rmsg::Create { qid, iounit } => {
            put_qid(out, qid);
            put_u32(out, *iounit);
        }
        Rmsg::Read { data } => put_data(out, data)?,
        Rmsg::Write { count } => put_u32(out, *count),
        Rmsg::Stat { stat } => put_counted_stat(out, stat)?,
        Rmsg::L(l) => dotl_codec::encode_r_body(l, out)?,
    }
    Ok(())
}

fn walk_len(n: usize) -> Result<u16, EncodeError> {
    match u16::try_from(n) {
        Ok(count) if n <= MAXWELEM => Ok(count),
        _ => Err(EncodeError::TooManyWalkElements { count: n }),
    }
}

/// `nstat[2]` followed by the stat (whose own `size[2]` is `nstat − 2`).
fn put_counted_stat(out: &mut Vec<u8>, stat: &Stat) -> Result<(), EncodeError> {
    let len = stat.encoded_len();
    let nstat = u16::try_from(len).map_err(|_| EncodeError::StatTooLarge { len })?;
    put_u16(out, nstat);
    stat.encode(out)
}
