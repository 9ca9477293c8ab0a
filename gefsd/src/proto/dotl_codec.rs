//! The wire codec of the 9P2000.L messages ([`super::dotl`]): body lengths, decoding and
//! encoding. Every read is bounds-checked (`wire::Reader`), and what is accepted re-encodes to
//! the same bytes.

use super::dotl::ltype::*;
use super::dotl::{Attr, Flock, RmsgL, SetAttr, StatFs, TmsgL};
use super::error::{DecodeErrorKind, EncodeError};
use super::msg::{Rmsg, Tmsg};
use super::wire::{
    data_len, put_data, put_qid, put_str, put_u32, put_u64, put_u8, str_len, Reader,
};
use super::{iounit, QID_LEN};

impl TmsgL {
    /// Bytes of the body (after the header).
    pub(super) fn body_len(&self) -> usize {
        let s = str_len;
        match self {
            TmsgL::Auth { uname, aname, .. } => {
                8usize.saturating_add(s(uname)).saturating_add(s(aname))
            }
            TmsgL::Attach { uname, aname, .. } => {
                12usize.saturating_add(s(uname)).saturating_add(s(aname))
            }
            TmsgL::Statfs { .. } | TmsgL::Readlink { .. } => 4,
            TmsgL::Lopen { .. } => 8,
            TmsgL::Lcreate { name, .. } => 16usize.saturating_add(s(name)),
            TmsgL::Symlink { name, symtgt, .. } => {
                8usize.saturating_add(s(name)).saturating_add(s(symtgt))
            }
            TmsgL::Mknod { name, .. } => 20usize.saturating_add(s(name)),
            TmsgL::Rename { name, .. } | TmsgL::Link { name, .. } => 8usize.saturating_add(s(name)),
            TmsgL::Getattr { .. } => 12,
            TmsgL::Setattr { .. } => 60,
            TmsgL::Xattrwalk { name, .. } => 8usize.saturating_add(s(name)),
            TmsgL::Xattrcreate { name, .. } => 16usize.saturating_add(s(name)),
            TmsgL::Readdir { .. } => 16,
            TmsgL::Fsync { .. } => 8,
            TmsgL::Lock { lock, .. } => 29usize.saturating_add(s(&lock.client_id)),
            TmsgL::Getlock { lock, .. } => 25usize.saturating_add(s(&lock.client_id)),
            TmsgL::Mkdir { name, .. } => 12usize.saturating_add(s(name)),
            TmsgL::Renameat {
                oldname, newname, ..
            } => 8usize.saturating_add(s(oldname)).saturating_add(s(newname)),
            TmsgL::Unlinkat { name, .. } => 8usize.saturating_add(s(name)),
        }
    }
}

impl RmsgL {
    /// Bytes of the body (after the header).
    pub(super) fn body_len(&self) -> usize {
        match self {
            RmsgL::Lerror { .. } => 4,
            RmsgL::Statfs(_) => 60,
            RmsgL::Lopen { .. } | RmsgL::Lcreate { .. } => QID_LEN + 4,
            RmsgL::Symlink { .. } | RmsgL::Mknod { .. } | RmsgL::Mkdir { .. } => QID_LEN,
            RmsgL::Rename
            | RmsgL::Setattr
            | RmsgL::Xattrcreate
            | RmsgL::Fsync
            | RmsgL::Link
            | RmsgL::Renameat
            | RmsgL::Unlinkat => 0,
            RmsgL::Readlink { target } => str_len(target),
            RmsgL::Getattr(_) => 8 + QID_LEN + 12 + 8 * 15,
            RmsgL::Xattrwalk { .. } => 8,
            RmsgL::Readdir { data } => data_len(data),
            RmsgL::Lock { .. } => 1,
            RmsgL::Getlock(l) => 21usize.saturating_add(str_len(&l.client_id)),
        }
    }
}

/// Decodes the body of a 9P2000.L request of type `ty`; the 9P2000 messages the dialect keeps
/// go to the 9P2000 decoder, the ones it drops are unknown types.
pub(super) fn decode_t_body(
    ty: u8,
    r: &mut Reader<'_>,
    msize: u32,
) -> Result<Tmsg, DecodeErrorKind> {
    use super::msgtype::*;
    let l = match ty {
        TVERSION | TFLUSH | TWALK | TREAD | TWRITE | TCLUNK | TREMOVE => {
            return super::codec::decode_t_body(ty, r, msize)
        }
        TAUTH => TmsgL::Auth {
            afid: r.u32("Tauth afid")?,
            uname: r.string("Tauth uname")?,
            aname: r.string("Tauth aname")?,
            n_uname: r.u32("Tauth n_uname")?,
        },
        TATTACH => TmsgL::Attach {
            fid: r.u32("Tattach fid")?,
            afid: r.u32("Tattach afid")?,
            uname: r.string("Tattach uname")?,
            aname: r.string("Tattach aname")?,
            n_uname: r.u32("Tattach n_uname")?,
        },
        TSTATFS => TmsgL::Statfs {
            fid: r.u32("Tstatfs fid")?,
        },
        TLOPEN => TmsgL::Lopen {
            fid: r.u32("Tlopen fid")?,
            flags: r.u32("Tlopen flags")?,
        },
        TLCREATE => TmsgL::Lcreate {
            fid: r.u32("Tlcreate fid")?,
            name: r.string("Tlcreate name")?,
            flags: r.u32("Tlcreate flags")?,
            mode: r.u32("Tlcreate mode")?,
            gid: r.u32("Tlcreate gid")?,
        },
        TSYMLINK => TmsgL::Symlink {
            fid: r.u32("Tsymlink fid")?,
            name: r.string("Tsymlink name")?,
            symtgt: r.string("Tsymlink symtgt")?,
            gid: r.u32("Tsymlink gid")?,
        },
        TMKNOD => TmsgL::Mknod {
            dfid: r.u32("Tmknod dfid")?,
            name: r.string("Tmknod name")?,
            mode: r.u32("Tmknod mode")?,
            major: r.u32("Tmknod major")?,
            minor: r.u32("Tmknod minor")?,
            gid: r.u32("Tmknod gid")?,
        },
        TRENAME => TmsgL::Rename {
            fid: r.u32("Trename fid")?,
            dfid: r.u32("Trename dfid")?,
            name: r.string("Trename name")?,
        },
        TREADLINK => TmsgL::Readlink {
            fid: r.u32("Treadlink fid")?,
        },
        TGETATTR => TmsgL::Getattr {
            fid: r.u32("Tgetattr fid")?,
            request_mask: r.u64("Tgetattr request_mask")?,
        },
        TSETATTR => TmsgL::Setattr {
            fid: r.u32("Tsetattr fid")?,
            attr: SetAttr {
                valid: r.u32("Tsetattr valid")?,
                mode: r.u32("Tsetattr mode")?,
                uid: r.u32("Tsetattr uid")?,
                gid: r.u32("Tsetattr gid")?,
                size: r.u64("Tsetattr size")?,
                atime_sec: r.u64("Tsetattr atime")?,
                atime_nsec: r.u64("Tsetattr atime")?,
                mtime_sec: r.u64("Tsetattr mtime")?,
                mtime_nsec: r.u64("Tsetattr mtime")?,
            },
        },
        TXATTRWALK => TmsgL::Xattrwalk {
            fid: r.u32("Txattrwalk fid")?,
            newfid: r.u32("Txattrwalk newfid")?,
            name: r.string("Txattrwalk name")?,
        },
        TXATTRCREATE => TmsgL::Xattrcreate {
            fid: r.u32("Txattrcreate fid")?,
            name: r.string("Txattrcreate name")?,
            attr_size: r.u64("Txattrcreate attr_size")?,
            flags: r.u32("Txattrcreate flags")?,
        },
        TREADDIR => TmsgL::Readdir {
            fid: r.u32("Treaddir fid")?,
            offset: r.u64("Treaddir offset")?,
            count: r.u32("Treaddir count")?,
        },
        TFSYNC => TmsgL::Fsync {
            fid: r.u32("Tfsync fid")?,
            datasync: r.u32("Tfsync datasync")?,
        },
        TLOCK => TmsgL::Lock {
            fid: r.u32("Tlock fid")?,
            lock: Flock {
                ty: r.u8("Tlock type")?,
                flags: r.u32("Tlock flags")?,
                start: r.u64("Tlock start")?,
                length: r.u64("Tlock length")?,
                proc_id: r.u32("Tlock proc_id")?,
                client_id: r.string("Tlock client_id")?,
            },
        },
        TGETLOCK => TmsgL::Getlock {
            fid: r.u32("Tgetlock fid")?,
            lock: read_getlock(r)?,
        },
        TLINK => TmsgL::Link {
            dfid: r.u32("Tlink dfid")?,
            fid: r.u32("Tlink fid")?,
            name: r.string("Tlink name")?,
        },
        TMKDIR => TmsgL::Mkdir {
            dfid: r.u32("Tmkdir dfid")?,
            name: r.string("Tmkdir name")?,
            mode: r.u32("Tmkdir mode")?,
            gid: r.u32("Tmkdir gid")?,
        },
        TRENAMEAT => TmsgL::Renameat {
            olddirfid: r.u32("Trenameat olddirfid")?,
            oldname: r.string("Trenameat oldname")?,
            newdirfid: r.u32("Trenameat newdirfid")?,
            newname: r.string("Trenameat newname")?,
        },
        TUNLINKAT => TmsgL::Unlinkat {
            dirfid: r.u32("Tunlinkat dirfid")?,
            name: r.string("Tunlinkat name")?,
            flags: r.u32("Tunlinkat flags")?,
        },
        _ => return Err(DecodeErrorKind::UnknownType { ty }),
    };
    Ok(Tmsg::L(l))
}

/// `type[1] start[8] length[8] proc_id[4] client_id[s]` (Tgetlock, Rgetlock).
fn read_getlock(r: &mut Reader<'_>) -> Result<Flock, DecodeErrorKind> {
    Ok(Flock {
        ty: r.u8("getlock type")?,
        flags: 0,
        start: r.u64("getlock start")?,
        length: r.u64("getlock length")?,
        proc_id: r.u32("getlock proc_id")?,
        client_id: r.string("getlock client_id")?,
    })
}

/// Decodes the body of a 9P2000.L reply of type `ty` (for clients and tests).
pub(super) fn decode_r_body(
    ty: u8,
    r: &mut Reader<'_>,
    msize: u32,
) -> Result<Rmsg, DecodeErrorKind> {
    use super::msgtype::*;
    let l = match ty {
        RVERSION | RAUTH | RATTACH | RFLUSH | RWALK | RREAD | RWRITE | RCLUNK | RREMOVE => {
            return super::codec::decode_r_body(ty, r, msize)
        }
        RLERROR => RmsgL::Lerror {
            ecode: r.u32("Rlerror ecode")?,
        },
        RSTATFS => RmsgL::Statfs(StatFs {
            ty: r.u32("Rstatfs type")?,
            bsize: r.u32("Rstatfs bsize")?,
            blocks: r.u64("Rstatfs blocks")?,
            bfree: r.u64("Rstatfs bfree")?,
            bavail: r.u64("Rstatfs bavail")?,
            files: r.u64("Rstatfs files")?,
            ffree: r.u64("Rstatfs ffree")?,
            fsid: r.u64("Rstatfs fsid")?,
            namelen: r.u32("Rstatfs namelen")?,
        }),
        RLOPEN => RmsgL::Lopen {
            qid: r.qid("Rlopen qid")?,
            iounit: r.u32("Rlopen iounit")?,
        },
        RLCREATE => RmsgL::Lcreate {
            qid: r.qid("Rlcreate qid")?,
            iounit: r.u32("Rlcreate iounit")?,
        },
        RSYMLINK => RmsgL::Symlink {
            qid: r.qid("Rsymlink qid")?,
        },
        RMKNOD => RmsgL::Mknod {
            qid: r.qid("Rmknod qid")?,
        },
        RRENAME => RmsgL::Rename,
        RREADLINK => RmsgL::Readlink {
            target: r.string("Rreadlink target")?,
        },
        RGETATTR => RmsgL::Getattr(read_attr(r)?),
        RSETATTR => RmsgL::Setattr,
        RXATTRWALK => RmsgL::Xattrwalk {
            size: r.u64("Rxattrwalk size")?,
        },
        RXATTRCREATE => RmsgL::Xattrcreate,
        RREADDIR => RmsgL::Readdir {
            data: r.data(iounit(msize), "Rreaddir data")?,
        },
        RFSYNC => RmsgL::Fsync,
        RLOCK => RmsgL::Lock {
            status: r.u8("Rlock status")?,
        },
        RGETLOCK => RmsgL::Getlock(read_getlock(r)?),
        RLINK => RmsgL::Link,
        RMKDIR => RmsgL::Mkdir {
            qid: r.qid("Rmkdir qid")?,
        },
        RRENAMEAT => RmsgL::Renameat,
        RUNLINKAT => RmsgL::Unlinkat,
        _ => return Err(DecodeErrorKind::UnknownType { ty }),
    };
    Ok(Rmsg::L(l))
}

fn read_attr(r: &mut Reader<'_>) -> Result<Attr, DecodeErrorKind> {
    let f = "Rgetattr";
    Ok(Attr {
        valid: r.u64(f)?,
        qid: r.qid(f)?,
        mode: r.u32(f)?,
        uid: r.u32(f)?,
        gid: r.u32(f)?,
        nlink: r.u64(f)?,
        rdev: r.u64(f)?,
        size: r.u64(f)?,
        blksize: r.u64(f)?,
        blocks: r.u64(f)?,
        atime_sec: r.u64(f)?,
        atime_nsec: r.u64(f)?,
        mtime_sec: r.u64(f)?,
        mtime_nsec: r.u64(f)?,
        ctime_sec: r.u64(f)?,
        ctime_nsec: r.u64(f)?,
        btime_sec: r.u64(f)?,
        btime_nsec: r.u64(f)?,
        gen: r.u64(f)?,
        data_version: r.u64(f)?,
    })
}

/// Appends the body of a 9P2000.L request.
pub(super) fn encode_t_body(m: &TmsgL, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match m {
        TmsgL::Auth {
            afid,
            uname,
            aname,
            n_uname,
        } => {
            put_u32(out, *afid);
            put_str(out, uname, "Tauth uname")?;
            put_str(out, aname, "Tauth aname")?;
            put_u32(out, *n_uname);
        }
        TmsgL::Attach {
            fid,
            afid,
            uname,
            aname,
            n_uname,
        } => {
            put_u32(out, *fid);
            put_u32(out, *afid);
            put_str(out, uname, "Tattach uname")?;
            put_str(out, aname, "Tattach aname")?;
            put_u32(out, *n_uname);
        }
        TmsgL::Statfs { fid } | TmsgL::Readlink { fid } => put_u32(out, *fid),
        TmsgL::Lopen { fid, flags } => {
            put_u32(out, *fid);
            put_u32(out, *flags);
        }
        TmsgL::Lcreate {
            fid,
            name,
            flags,
            mode,
            gid,
        } => {
            put_u32(out, *fid);
            put_str(out, name, "Tlcreate name")?;
            put_u32(out, *flags);
            put_u32(out, *mode);
            put_u32(out, *gid);
        }
        TmsgL::Symlink {
            fid,
            name,
            symtgt,
            gid,
        } => {
            put_u32(out, *fid);
            put_str(out, name, "Tsymlink name")?;
            put_str(out, symtgt, "Tsymlink symtgt")?;
            put_u32(out, *gid);
        }
        TmsgL::Mknod {
            dfid,
            name,
            mode,
            major,
            minor,
            gid,
        } => {
            put_u32(out, *dfid);
            put_str(out, name, "Tmknod name")?;
            put_u32(out, *mode);
            put_u32(out, *major);
            put_u32(out, *minor);
            put_u32(out, *gid);
        }
        TmsgL::Rename { fid, dfid, name } => {
            put_u32(out, *fid);
            put_u32(out, *dfid);
            put_str(out, name, "Trename name")?;
        }
        TmsgL::Getattr { fid, request_mask } => {
            put_u32(out, *fid);
            put_u64(out, *request_mask);
        }
        TmsgL::Setattr { fid, attr: a } => {
            put_u32(out, *fid);
            put_u32(out, a.valid);
            put_u32(out, a.mode);
            put_u32(out, a.uid);
            put_u32(out, a.gid);
            for v in [a.size, a.atime_sec, a.atime_nsec, a.mtime_sec, a.mtime_nsec] {
                put_u64(out, v);
            }
        }
        TmsgL::Xattrwalk { fid, newfid, name } => {
            put_u32(out, *fid);
            put_u32(out, *newfid);
            put_str(out, name, "Txattrwalk name")?;
        }
        TmsgL::Xattrcreate {
            fid,
            name,
            attr_size,
            flags,
        } => {
            put_u32(out, *fid);
            put_str(out, name, "Txattrcreate name")?;
            put_u64(out, *attr_size);
            put_u32(out, *flags);
        }
        TmsgL::Readdir { fid, offset, count } => {
            put_u32(out, *fid);
            put_u64(out, *offset);
            put_u32(out, *count);
        }
        TmsgL::Fsync { fid, datasync } => {
            put_u32(out, *fid);
            put_u32(out, *datasync);
        }
        TmsgL::Lock { fid, lock } => {
            put_u32(out, *fid);
            put_u8(out, lock.ty);
            put_u32(out, lock.flags);
            put_u64(out, lock.start);
            put_u64(out, lock.length);
            put_u32(out, lock.proc_id);
            put_str(out, &lock.client_id, "Tlock client_id")?;
        }
        TmsgL::Getlock { fid, lock } => {
            put_u32(out, *fid);
            put_getlock(out, lock)?;
        }
        TmsgL::Link { dfid, fid, name } => {
            put_u32(out, *dfid);
            put_u32(out, *fid);
            put_str(out, name, "Tlink name")?;
        }
        TmsgL::Mkdir {
            dfid,
            name,
            mode,
            gid,
        } => {
            put_u32(out, *dfid);
            put_str(out, name, "Tmkdir name")?;
            put_u32(out, *mode);
            put_u32(out, *gid);
        }
        TmsgL::Renameat {
            olddirfid,
            oldname,
            newdirfid,
            newname,
        } => {
            put_u32(out, *olddirfid);
            put_str(out, oldname, "Trenameat oldname")?;
            put_u32(out, *newdirfid);
            put_str(out, newname, "Trenameat newname")?;
        }
        TmsgL::Unlinkat {
            dirfid,
            name,
            flags,
        } => {
            put_u32(out, *dirfid);
            put_str(out, name, "Tunlinkat name")?;
            put_u32(out, *flags);
        }
    }
    Ok(())
}

fn put_getlock(out: &mut Vec<u8>, l: &Flock) -> Result<(), EncodeError> {
    put_u8(out, l.ty);
    put_u64(out, l.start);
    put_u64(out, l.length);
    put_u32(out, l.proc_id);
    put_str(out, &l.client_id, "getlock client_id")
}

/// Appends the body of a 9P2000.L reply.
pub(super) fn encode_r_body(m: &RmsgL, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match m {
        RmsgL::Lerror { ecode } => put_u32(out, *ecode),
        RmsgL::Statfs(s) => {
            put_u32(out, s.ty);
            put_u32(out, s.bsize);
            for v in [s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.fsid] {
                put_u64(out, v);
            }
            put_u32(out, s.namelen);
        }
        RmsgL::Lopen { qid, iounit } | RmsgL::Lcreate { qid, iounit } => {
            put_qid(out, qid);
            put_u32(out, *iounit);
        }
        RmsgL::Symlink { qid } | RmsgL::Mknod { qid } | RmsgL::Mkdir { qid } => put_qid(out, qid),
        RmsgL::Rename
        | RmsgL::Setattr
        | RmsgL::Xattrcreate
        | RmsgL::Fsync
        | RmsgL::Link
        | RmsgL::Renameat
        | RmsgL::Unlinkat => {}
        RmsgL::Readlink { target } => put_str(out, target, "Rreadlink target")?,
        RmsgL::Getattr(a) => {
            put_u64(out, a.valid);
            put_qid(out, &a.qid);
            put_u32(out, a.mode);
            put_u32(out, a.uid);
            put_u32(out, a.gid);
            for v in [
                a.nlink,
                a.rdev,
                a.size,
                a.blksize,
                a.blocks,
                a.atime_sec,
                a.atime_nsec,
                a.mtime_sec,
                a.mtime_nsec,
                a.ctime_sec,
                a.ctime_nsec,
                a.btime_sec,
                a.btime_nsec,
                a.gen,
                a.data_version,
            ] {
                put_u64(out, v);
            }
        }
        RmsgL::Xattrwalk { size } => put_u64(out, *size),
        RmsgL::Readdir { data } => put_data(out, data)?,
        RmsgL::Lock { status } => put_u8(out, *status),
        RmsgL::Getlock(l) => put_getlock(out, l)?,
    }
    Ok(())
}
