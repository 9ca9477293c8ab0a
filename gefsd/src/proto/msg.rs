//! The 9P2000 messages as Rust values. Field names follow the manual pages of section 5.

use super::dotl::{RmsgL, TmsgL};
use super::msgtype::*;
use super::stat::Stat;

/// The server's unique identification of a file (intro(5)): `type[1] version[4] path[8]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qid {
    /// Qid type bits, see [`super::qidtype`].
    pub ty: u8,
    /// Version, bumped on every change of the file.
    pub version: u32,
    /// Unique per file for the life of the file system.
    pub path: u64,
}

/// A request from client to server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tmsg {
    /// Negotiate protocol version and msize (version(5)).
    Version {
        /// The most bytes the client will send or accept in one frame.
        msize: u32,
        /// The protocol version, `"9P2000"`.
        version: String,
    },
    /// Start authentication on `afid` (attach(5)).
    Auth {
        /// The new auth fid.
        afid: u32,
        /// User name.
        uname: String,
        /// The tree to attach to.
        aname: String,
    },
    /// Attach `fid` to the root of tree `aname` (attach(5)).
    Attach {
        /// The new fid.
        fid: u32,
        /// The authenticated auth fid, or [`super::NOFID`].
        afid: u32,
        /// User name.
        uname: String,
        /// The tree to attach to.
        aname: String,
    },
    /// Abort request `oldtag` (flush(5)).
    Flush {
        /// The tag of the request to flush.
        oldtag: u16,
    },
    /// Walk from `fid` along `wnames`, binding `newfid` on success (walk(5)). At most
    /// [`super::MAXWELEM`] names; the decoder refuses more.
    Walk {
        /// The starting fid.
        fid: u32,
        /// The fid to bind to the result (may equal `fid`).
        newfid: u32,
        /// Path elements, at most 16.
        wnames: Vec<String>,
    },
    /// Open `fid` (open(5)).
    Open {
        /// The fid.
        fid: u32,
        /// Open mode, see [`super::omode`].
        mode: u8,
    },
    /// Create `name` in directory `fid` and open it (open(5)).
    Create {
        /// The directory fid; it becomes the new file's fid.
        fid: u32,
        /// The new file's name.
        name: String,
        /// Permissions and [`super::dmode`] bits.
        perm: u32,
        /// Open mode.
        mode: u8,
    },
    /// Read `count` bytes at `offset` (read(5)).
    Read {
        /// The open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// Bytes wanted; the server clamps it to the I/O unit.
        count: u32,
    },
    /// Write `data` at `offset` (read(5)). At most `msize − IOHDRSZ` bytes.
    Write {
        /// The open fid.
        fid: u32,
        /// Byte offset.
        offset: u64,
        /// The bytes to write.
        data: Vec<u8>,
    },
    /// Forget `fid` (clunk(5)).
    Clunk {
        /// The fid.
        fid: u32,
    },
    /// Remove the file of `fid` and clunk it (remove(5)).
    Remove {
        /// The fid.
        fid: u32,
    },
    /// Ask for the stat of `fid` (stat(5)).
    Stat {
        /// The fid.
        fid: u32,
    },
    /// Change the stat of `fid` (stat(5)); "don't touch" fields per [`Stat::dont_touch`].
    Wstat {
        /// The fid.
        fid: u32,
        /// The new values.
        stat: Stat,
    },
    /// A 9P2000.L request ([`super::dotl`]).
    L(TmsgL),
}

/// A reply from server to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rmsg {
    /// The negotiated msize and version, or version `"unknown"` (version(5)).
    Version {
        /// Negotiated msize, at most the client's.
        msize: u32,
        /// `"9P2000"` or `"unknown"`.
        version: String,
    },
    /// The qid of the auth file (attach(5)).
    Auth {
        /// Its qid, with [`super::qidtype::QTAUTH`] set.
        aqid: Qid,
    },
    /// The qid of the attached root (attach(5)).
    Attach {
        /// The root's qid.
        qid: Qid,
    },
    /// The request failed (error(5)).
    Error {
        /// A Plan 9 error string.
        ename: String,
    },
    /// The flushed request is finished or forgotten (flush(5)).
    Flush,
    /// The qids of the walked elements (walk(5)); fewer than requested if the walk stopped.
    Walk {
        /// One qid per element walked, at most 16.
        wqids: Vec<Qid>,
    },
    /// The opened file (open(5)).
    Open {
        /// Its qid.
        qid: Qid,
        /// The most bytes one read or write can move, `msize − IOHDRSZ` (or 0, "unknown").
        iounit: u32,
    },
    /// The created, opened file (open(5)).
    Create {
        /// Its qid.
        qid: Qid,
        /// As for [`Rmsg::Open`].
        iounit: u32,
    },
    /// The bytes read (read(5)); for a directory, whole encoded [`Stat`] entries.
    Read {
        /// At most `msize − IOHDRSZ` bytes.
        data: Vec<u8>,
    },
    /// How many bytes were written (read(5)).
    Write {
        /// The count.
        count: u32,
    },
    /// The fid is forgotten (clunk(5)).
    Clunk,
    /// The file is removed and the fid forgotten (remove(5)).
    Remove,
    /// The file's stat (stat(5)).
    Stat {
        /// The stat.
        stat: Stat,
    },
    /// The stat was changed (stat(5)).
    Wstat,
    /// A 9P2000.L reply ([`super::dotl`]).
    L(RmsgL),
}

/// A tagged message: what travels in one frame. Convenience pairing for code that keeps the
/// tag next to its message; the codec functions take and return the two separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<M> {
    /// The tag chosen by the client, echoed by the reply.
    pub tag: u16,
    /// The message.
    pub msg: M,
}

/// A tagged request.
pub type TFrame = Frame<Tmsg>;
/// A tagged reply.
pub type RFrame = Frame<Rmsg>;

impl Tmsg {
    /// The type number of this message on the wire.
    pub fn msg_type(&self) -> u8 {
        match self {
            Tmsg::Version { .. } => TVERSION,
            Tmsg::Auth { .. } => TAUTH,
            Tmsg::Attach { .. } => TATTACH,
            Tmsg::Flush { .. } => TFLUSH,
            Tmsg::Walk { .. } => TWALK,
            Tmsg::Open { .. } => TOPEN,
            Tmsg::Create { .. } => TCREATE,
            Tmsg::Read { .. } => TREAD,
            Tmsg::Write { .. } => TWRITE,
            Tmsg::Clunk { .. } => TCLUNK,
            Tmsg::Remove { .. } => TREMOVE,
            Tmsg::Stat { .. } => TSTAT,
            Tmsg::Wstat { .. } => TWSTAT,
            Tmsg::L(l) => l.msg_type(),
        }
    }

    /// The message's name, e.g. `"Twalk"`, for logs and traces.
    pub fn name(&self) -> &'static str {
        super::dotl::type_name(self.msg_type())
    }
}

impl Rmsg {
    /// The type number of this message on the wire.
    pub fn msg_type(&self) -> u8 {
        match self {
            Rmsg::Version { .. } => RVERSION,
            Rmsg::Auth { .. } => RAUTH,
            Rmsg::Attach { .. } => RATTACH,
            Rmsg::Error { .. } => RERROR,
            Rmsg::Flush => RFLUSH,
            Rmsg::Walk { .. } => RWALK,
            Rmsg::Open { .. } => ROPEN,
            Rmsg::Create { .. } => RCREATE,
            Rmsg::Read { .. } => RREAD,
            Rmsg::Write { .. } => RWRITE,
            Rmsg::Clunk => RCLUNK,
            Rmsg::Remove => RREMOVE,
            Rmsg::Stat { .. } => RSTAT,
            Rmsg::Wstat => RWSTAT,
            Rmsg::L(l) => l.msg_type(),
        }
    }

    /// The message's name, e.g. `"Rwalk"`, for logs and traces.
    pub fn name(&self) -> &'static str {
        super::dotl::type_name(self.msg_type())
    }
}

/// The name of a 9P2000 message type number, or `"unknown"`.
pub(crate) fn type_name(ty: u8) -> &'static str {
    match ty {
        TVERSION => "Tversion",
        RVERSION => "Rversion",
        TAUTH => "Tauth",
        RAUTH => "Rauth",
        TATTACH => "Tattach",
        RATTACH => "Rattach",
        TERROR => "Terror",
        RERROR => "Rerror",
        TFLUSH => "Tflush",
        RFLUSH => "Rflush",
        TWALK => "Twalk",
        RWALK => "Rwalk",
        TOPEN => "Topen",
        ROPEN => "Ropen",
        TCREATE => "Tcreate",
        RCREATE => "Rcreate",
        TREAD => "Tread",
        RREAD => "Rread",
        TWRITE => "Twrite",
        RWRITE => "Rwrite",
        TCLUNK => "Tclunk",
        RCLUNK => "Rclunk",
        TREMOVE => "Tremove",
        RREMOVE => "Rremove",
        TSTAT => "Tstat",
        RSTAT => "Rstat",
        TWSTAT => "Twstat",
        RWSTAT => "Rwstat",
        _ => "unknown",
    }
}
