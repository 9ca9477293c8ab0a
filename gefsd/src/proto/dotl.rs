//! The 9P2000.L dialect: its messages as Rust values and their wire codec.
//!
//! 9P2000.L keeps 9P2000's `Tversion`, `Tflush`, `Twalk`, `Tread`, `Twrite`, `Tclunk` and
//! `Tremove` (and their replies) as they are, takes `Tauth`/`Tattach` from 9P2000.u (with a
//! trailing numeric user id `n_uname`), drops `Topen`, `Tcreate`, `Tstat`, `Twstat` and
//! `Rerror`, and adds the messages below, which map onto Linux's VFS. Errors are `Rlerror`, a
//! Linux errno. Layouts follow Linux's `net/9p` client and diod's `protocol.md`.
//!
//! A connection speaks one dialect, chosen at `Tversion` ([`Dialect`]); the decoder is told
//! which ([`super::decode_t_in`]). The invariants of the 9P2000 codec hold here too: no panic,
//! no allocation beyond the frame, exact framing, canonical encodings, bounded data (`Rreaddir`
//! data, like `Rread`'s, is at most the I/O unit).

use super::error::EncodeError;
use super::msg::Qid;
use super::wire::{put_qid, put_str, put_u64, put_u8, str_len, Reader};
use super::QID_LEN;

/// The protocol a connection speaks, chosen at `Tversion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Plan 9's 9P2000.
    #[default]
    P9,
    /// Linux's 9P2000.L.
    L,
}

impl Dialect {
    /// The dialect a version string [`super::negotiate`] accepted names.
    pub fn of(version: &str) -> Option<Dialect> {
        match version {
            super::VERSION_9P2000 => Some(Dialect::P9),
            VERSION_9P2000_L => Some(Dialect::L),
            _ => None,
        }
    }
}

/// Whether `ty` is a 9P2000.L reply type (for the direction check).
pub(super) fn is_reply(ty: u8) -> bool {
    ty % 2 == 1 && type_name(ty) != "unknown"
}

/// The version string of 9P2000.L.
pub const VERSION_9P2000_L: &str = "9P2000.L";

/// "No numeric user id" in `n_uname` (`P9_NONUNAME`).
pub const NONUNAME: u32 = u32::MAX;

/// Message type numbers of 9P2000.L (Linux `include/net/9p/9p.h`).
pub mod ltype {
    /// Rlerror (there is no Tlerror).
    pub const RLERROR: u8 = 7;
    /// Tstatfs.
    pub const TSTATFS: u8 = 8;
    /// Rstatfs.
    pub const RSTATFS: u8 = 9;
    /// Tlopen.
    pub const TLOPEN: u8 = 12;
    /// Rlopen.
    pub const RLOPEN: u8 = 13;
    /// Tlcreate.
    pub const TLCREATE: u8 = 14;
    /// Rlcreate.
    pub const RLCREATE: u8 = 15;
    /// Tsymlink.
    pub const TSYMLINK: u8 = 16;
    /// Rsymlink.
    pub const RSYMLINK: u8 = 17;
    /// Tmknod.
    pub const TMKNOD: u8 = 18;
    /// Rmknod.
    pub const RMKNOD: u8 = 19;
    /// Trename.
    pub const TRENAME: u8 = 20;
    /// Rrename.
    pub const RRENAME: u8 = 21;
    /// Treadlink.
    pub const TREADLINK: u8 = 22;
    /// Rreadlink.
    pub const RREADLINK: u8 = 23;
    /// Tgetattr.
    pub const TGETATTR: u8 = 24;
    /// Rgetattr.
    pub const RGETATTR: u8 = 25;
    /// Tsetattr.
    pub const TSETATTR: u8 = 26;
    /// Rsetattr.
    pub const RSETATTR: u8 = 27;
    /// Txattrwalk.
    pub const TXATTRWALK: u8 = 30;
    /// Rxattrwalk.
    pub const RXATTRWALK: u8 = 31;
    /// Txattrcreate.
    pub const TXATTRCREATE: u8 = 32;
    /// Rxattrcreate.
    pub const RXATTRCREATE: u8 = 33;
    /// Treaddir.
    pub const TREADDIR: u8 = 40;
    /// Rreaddir.
    pub const RREADDIR: u8 = 41;
    /// Tfsync.
    pub const TFSYNC: u8 = 50;
    /// Rfsync.
    pub const RFSYNC: u8 = 51;
    /// Tlock.
    pub const TLOCK: u8 = 52;
    /// Rlock.
    pub const RLOCK: u8 = 53;
    /// Tgetlock.
    pub const TGETLOCK: u8 = 54;
    /// Rgetlock.
    pub const RGETLOCK: u8 = 55;
    /// Tlink.
    pub const TLINK: u8 = 70;
    /// Rlink.
    pub const RLINK: u8 = 71;
    /// Tmkdir.
    pub const TMKDIR: u8 = 72;
    /// Rmkdir.
    pub const RMKDIR: u8 = 73;
    /// Trenameat.
    pub const TRENAMEAT: u8 = 74;
    /// Rrenameat.
    pub const RRENAMEAT: u8 = 75;
    /// Tunlinkat.
    pub const TUNLINKAT: u8 = 76;
    /// Runlinkat.
    pub const RUNLINKAT: u8 = 77;
}

use ltype::*;

/// `Tgetattr` request and `Rgetattr` valid bits (`P9_GETATTR_*`).
pub mod getattr {
    /// Mode.
    pub const MODE: u64 = 0x1;
    /// Link count.
    pub const NLINK: u64 = 0x2;
    /// Owner.
    pub const UID: u64 = 0x4;
    /// Group.
    pub const GID: u64 = 0x8;
    /// Device number.
    pub const RDEV: u64 = 0x10;
    /// Access time.
    pub const ATIME: u64 = 0x20;
    /// Modification time.
    pub const MTIME: u64 = 0x40;
    /// Change time.
    pub const CTIME: u64 = 0x80;
    /// Inode number (the qid path).
    pub const INO: u64 = 0x100;
    /// Size.
    pub const SIZE: u64 = 0x200;
    /// Blocks.
    pub const BLOCKS: u64 = 0x400;
    /// Birth time.
    pub const BTIME: u64 = 0x800;
    /// Generation.
    pub const GEN: u64 = 0x1000;
    /// Data version.
    pub const DATA_VERSION: u64 = 0x2000;
    /// Everything up to `BLOCKS`: what `stat(2)` needs.
    pub const BASIC: u64 = 0x7ff;
    /// Everything.
    pub const ALL: u64 = 0x3fff;
}

/// `Tsetattr` valid bits (`P9_ATTR_*`).
pub mod setattr {
    /// Mode.
    pub const MODE: u32 = 0x1;
    /// Owner.
    pub const UID: u32 = 0x2;
    /// Group.
    pub const GID: u32 = 0x4;
    /// Size.
    pub const SIZE: u32 = 0x8;
    /// Access time: to now, or to the value given with `ATIME_SET`.
    pub const ATIME: u32 = 0x10;
    /// Modification time: to now, or to the value given with `MTIME_SET`.
    pub const MTIME: u32 = 0x20;
    /// Change time (to now).
    pub const CTIME: u32 = 0x40;
    /// The access time is the value given.
    pub const ATIME_SET: u32 = 0x80;
    /// The modification time is the value given.
    pub const MTIME_SET: u32 = 0x100;
}

/// `Tlock` and `Tgetlock` types, and `Rlock` statuses.
pub mod lock {
    /// A read (shared) lock.
    pub const RDLCK: u8 = 0;
    /// A write (exclusive) lock.
    pub const WRLCK: u8 = 1;
    /// Unlock.
    pub const UNLCK: u8 = 2;
    /// `Tlock` flag: the client waits (it retries while the answer is `BLOCKED`).
    pub const FLAGS_BLOCK: u32 = 1;
    /// Granted.
    pub const SUCCESS: u8 = 0;
    /// Held by someone else.
    pub const BLOCKED: u8 = 1;
    /// Failed.
    pub const ERROR: u8 = 2;
}

/// A file's attributes, as `Rgetattr` carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Which fields are valid ([`getattr`] bits).
    pub valid: u64,
    /// The qid.
    pub qid: Qid,
    /// POSIX mode, file type included.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links.
    pub nlink: u64,
    /// Device number.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O size.
    pub blksize: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    /// Access time, seconds.
    pub atime_sec: u64,
    /// Access time, nanoseconds.
    pub atime_nsec: u64,
    /// Modification time, seconds.
    pub mtime_sec: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u64,
    /// Change time, seconds.
    pub ctime_sec: u64,
    /// Change time, nanoseconds.
    pub ctime_nsec: u64,
    /// Birth time, seconds.
    pub btime_sec: u64,
    /// Birth time, nanoseconds.
    pub btime_nsec: u64,
    /// Generation.
    pub gen: u64,
    /// Data version.
    pub data_version: u64,
}

/// What `Tsetattr` changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Which fields to set ([`setattr`] bits).
    pub valid: u32,
    /// POSIX mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size.
    pub size: u64,
    /// Access time, seconds.
    pub atime_sec: u64,
    /// Access time, nanoseconds.
    pub atime_nsec: u64,
    /// Modification time, seconds.
    pub mtime_sec: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u64,
}

/// File-system statistics, as `Rstatfs` carries them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    /// File-system type (`V9FS_MAGIC`).
    pub ty: u32,
    /// Block size.
    pub bsize: u32,
    /// Blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// File nodes.
    pub files: u64,
    /// Free file nodes.
    pub ffree: u64,
    /// File-system id.
    pub fsid: u64,
    /// Longest name.
    pub namelen: u32,
}

/// A POSIX record lock, as `Tlock`, `Tgetlock` and `Rgetlock` carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    /// [`lock::RDLCK`], [`lock::WRLCK`] or [`lock::UNLCK`].
    pub ty: u8,
    /// `Tlock` only: [`lock::FLAGS_BLOCK`]; 0 elsewhere (not on the wire).
    pub flags: u32,
    /// First byte.
    pub start: u64,
    /// Bytes; 0 means to the end of the file and beyond.
    pub length: u64,
    /// The locking process's id on the client.
    pub proc_id: u32,
    /// The client's name (Linux sends its node name).
    pub client_id: String,
}

/// A 9P2000.L request (other than the 9P2000 ones the dialect keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TmsgL {
    /// Start authentication (9P2000.u layout).
    Auth {
        /// The new auth fid.
        afid: u32,
        /// User name.
        uname: String,
        /// The tree to attach to.
        aname: String,
        /// Numeric user id, or [`NONUNAME`].
        n_uname: u32,
    },
    /// Attach `fid` to the root of `aname` (9P2000.u layout).
    Attach {
        /// The new fid.
        fid: u32,
        /// The auth fid, or NOFID.
        afid: u32,
        /// User name (empty when `n_uname` names the user).
        uname: String,
        /// The tree to attach to.
        aname: String,
        /// Numeric user id, or [`NONUNAME`]; it takes precedence over `uname`.
        n_uname: u32,
    },
    /// File-system statistics.
    Statfs {
        /// Any fid of the file system.
        fid: u32,
    },
    /// Open `fid` with Linux `open(2)` flags.
    Lopen {
        /// The fid.
        fid: u32,
        /// Linux open flags.
        flags: u32,
    },
    /// Create and open regular file `name` in directory `fid`, which becomes the file's.
    Lcreate {
        /// The directory fid.
        fid: u32,
        /// The new file's name.
        name: String,
        /// Linux open flags.
        flags: u32,
        /// POSIX mode (the client's umask applied).
        mode: u32,
        /// The caller's effective group.
        gid: u32,
    },
    /// Make symbolic link `name` in directory `fid`, pointing at `symtgt`.
    Symlink {
        /// The directory fid.
        fid: u32,
        /// The link's name.
        name: String,
        /// Its target.
        symtgt: String,
        /// The caller's effective group.
        gid: u32,
    },
    /// Make a device node, pipe or socket `name` in directory `dfid`.
    Mknod {
        /// The directory fid.
        dfid: u32,
        /// The name.
        name: String,
        /// POSIX mode, file type included.
        mode: u32,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
        /// The caller's effective group.
        gid: u32,
    },
    /// Move the file of `fid` to `name` in directory `dfid`.
    Rename {
        /// The file.
        fid: u32,
        /// The new directory.
        dfid: u32,
        /// The new name.
        name: String,
    },
    /// The target of the symbolic link of `fid`.
    Readlink {
        /// The fid.
        fid: u32,
    },
    /// Attributes of `fid`.
    Getattr {
        /// The fid.
        fid: u32,
        /// The [`getattr`] bits wanted.
        request_mask: u64,
    },
    /// Change attributes of `fid`.
    Setattr {
        /// The fid.
        fid: u32,
        /// What to change.
        attr: SetAttr,
    },
    /// Bind `newfid` to extended attribute `name` of `fid` (empty: the list).
    Xattrwalk {
        /// The file.
        fid: u32,
        /// The attribute's fid.
        newfid: u32,
        /// The attribute's name.
        name: String,
    },
    /// Prepare `fid` to set extended attribute `name`.
    Xattrcreate {
        /// The fid.
        fid: u32,
        /// The attribute's name.
        name: String,
        /// Its size.
        attr_size: u64,
        /// `setxattr(2)` flags.
        flags: u32,
    },
    /// Directory entries of open directory `fid` after `offset`.
    Readdir {
        /// The open directory.
        fid: u32,
        /// 0, or the offset of the last entry read.
        offset: u64,
        /// Most bytes of entries wanted.
        count: u32,
    },
    /// Make the file of `fid` durable.
    Fsync {
        /// The fid.
        fid: u32,
        /// Only the data (`fdatasync`).
        datasync: u32,
    },
    /// Take or release a POSIX record lock on open file `fid`.
    Lock {
        /// The open fid.
        fid: u32,
        /// The lock.
        lock: Flock,
    },
    /// The first lock that would conflict with `lock` on open file `fid`.
    Getlock {
        /// The open fid.
        fid: u32,
        /// The lock tested (its `flags` is not on the wire).
        lock: Flock,
    },
    /// Make hard link `name` in directory `dfid` to the file of `fid`.
    Link {
        /// The directory.
        dfid: u32,
        /// The file.
        fid: u32,
        /// The new name.
        name: String,
    },
    /// Make directory `name` in directory `dfid`.
    Mkdir {
        /// The parent.
        dfid: u32,
        /// The name.
        name: String,
        /// POSIX mode.
        mode: u32,
        /// The caller's effective group.
        gid: u32,
    },
    /// Move `oldname` in `olddirfid` to `newname` in `newdirfid`.
    Renameat {
        /// The old directory.
        olddirfid: u32,
        /// The old name.
        oldname: String,
        /// The new directory.
        newdirfid: u32,
        /// The new name.
        newname: String,
    },
    /// Remove `name` from directory `dirfid` (`flags`: `AT_REMOVEDIR` for a directory).
    Unlinkat {
        /// The directory.
        dirfid: u32,
        /// The name.
        name: String,
        /// 0 or `AT_REMOVEDIR` (0x200).
        flags: u32,
    },
}

/// A 9P2000.L reply (other than the 9P2000 ones the dialect keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmsgL {
    /// The request failed with Linux errno `ecode`.
    Lerror {
        /// The errno.
        ecode: u32,
    },
    /// File-system statistics.
    Statfs(StatFs),
    /// The opened file.
    Lopen {
        /// Its qid.
        qid: Qid,
        /// The I/O unit.
        iounit: u32,
    },
    /// The created, opened file.
    Lcreate {
        /// Its qid.
        qid: Qid,
        /// The I/O unit.
        iounit: u32,
    },
    /// The new link.
    Symlink {
        /// Its qid.
        qid: Qid,
    },
    /// The new node.
    Mknod {
        /// Its qid.
        qid: Qid,
    },
    /// Renamed.
    Rename,
    /// The link's target.
    Readlink {
        /// The target.
        target: String,
    },
    /// The attributes.
    Getattr(Attr),
    /// Changed.
    Setattr,
    /// The attribute's size.
    Xattrwalk {
        /// Its size.
        size: u64,
    },
    /// Ready.
    Xattrcreate,
    /// Packed entries `qid[13] offset[8] type[1] name[s]`, at most the I/O unit.
    Readdir {
        /// The entries.
        data: Vec<u8>,
    },
    /// Durable.
    Fsync,
    /// The lock's outcome ([`lock::SUCCESS`], [`lock::BLOCKED`], [`lock::ERROR`]).
    Lock {
        /// The status.
        status: u8,
    },
    /// The conflicting lock, or the one asked about with type [`lock::UNLCK`].
    Getlock(Flock),
    /// Linked.
    Link,
    /// The new directory.
    Mkdir {
        /// Its qid.
        qid: Qid,
    },
    /// Renamed.
    Renameat,
    /// Removed.
    Unlinkat,
}

impl TmsgL {
    /// The type number on the wire.
    pub fn msg_type(&self) -> u8 {
        use super::msgtype::{TATTACH, TAUTH};
        match self {
            TmsgL::Auth { .. } => TAUTH,
            TmsgL::Attach { .. } => TATTACH,
            TmsgL::Statfs { .. } => TSTATFS,
            TmsgL::Lopen { .. } => TLOPEN,
            TmsgL::Lcreate { .. } => TLCREATE,
            TmsgL::Symlink { .. } => TSYMLINK,
            TmsgL::Mknod { .. } => TMKNOD,
            TmsgL::Rename { .. } => TRENAME,
            TmsgL::Readlink { .. } => TREADLINK,
            TmsgL::Getattr { .. } => TGETATTR,
            TmsgL::Setattr { .. } => TSETATTR,
            TmsgL::Xattrwalk { .. } => TXATTRWALK,
            TmsgL::Xattrcreate { .. } => TXATTRCREATE,
            TmsgL::Readdir { .. } => TREADDIR,
            TmsgL::Fsync { .. } => TFSYNC,
            TmsgL::Lock { .. } => TLOCK,
            TmsgL::Getlock { .. } => TGETLOCK,
            TmsgL::Link { .. } => TLINK,
            TmsgL::Mkdir { .. } => TMKDIR,
            TmsgL::Renameat { .. } => TRENAMEAT,
            TmsgL::Unlinkat { .. } => TUNLINKAT,
        }
    }
}

impl RmsgL {
    /// The type number on the wire.
    pub fn msg_type(&self) -> u8 {
        match self {
            RmsgL::Lerror { .. } => RLERROR,
            RmsgL::Statfs(_) => RSTATFS,
            RmsgL::Lopen { .. } => RLOPEN,
            RmsgL::Lcreate { .. } => RLCREATE,
            RmsgL::Symlink { .. } => RSYMLINK,
            RmsgL::Mknod { .. } => RMKNOD,
            RmsgL::Rename => RRENAME,
            RmsgL::Readlink { .. } => RREADLINK,
            RmsgL::Getattr(_) => RGETATTR,
            RmsgL::Setattr => RSETATTR,
            RmsgL::Xattrwalk { .. } => RXATTRWALK,
            RmsgL::Xattrcreate => RXATTRCREATE,
            RmsgL::Readdir { .. } => RREADDIR,
            RmsgL::Fsync => RFSYNC,
            RmsgL::Lock { .. } => RLOCK,
            RmsgL::Getlock(_) => RGETLOCK,
            RmsgL::Link => RLINK,
            RmsgL::Mkdir { .. } => RMKDIR,
            RmsgL::Renameat => RRENAMEAT,
            RmsgL::Unlinkat => RUNLINKAT,
        }
    }

    /// The name of the message, e.g. `"Rgetattr"`.
    pub fn name(&self) -> &'static str {
        type_name(self.msg_type())
    }
}

/// The name of a 9P2000.L type number, or `"unknown"`.
pub fn type_name(ty: u8) -> &'static str {
    match ty {
        RLERROR => "Rlerror",
        TSTATFS => "Tstatfs",
        RSTATFS => "Rstatfs",
        TLOPEN => "Tlopen",
        RLOPEN => "Rlopen",
        TLCREATE => "Tlcreate",
        RLCREATE => "Rlcreate",
        TSYMLINK => "Tsymlink",
        RSYMLINK => "Rsymlink",
        TMKNOD => "Tmknod",
        RMKNOD => "Rmknod",
        TRENAME => "Trename",
        RRENAME => "Rrename",
        TREADLINK => "Treadlink",
        RREADLINK => "Rreadlink",
        TGETATTR => "Tgetattr",
        RGETATTR => "Rgetattr",
        TSETATTR => "Tsetattr",
        RSETATTR => "Rsetattr",
        TXATTRWALK => "Txattrwalk",
        RXATTRWALK => "Rxattrwalk",
        TXATTRCREATE => "Txattrcreate",
        RXATTRCREATE => "Rxattrcreate",
        TREADDIR => "Treaddir",
        RREADDIR => "Rreaddir",
        TFSYNC => "Tfsync",
        RFSYNC => "Rfsync",
        TLOCK => "Tlock",
        RLOCK => "Rlock",
        TGETLOCK => "Tgetlock",
        RGETLOCK => "Rgetlock",
        TLINK => "Tlink",
        RLINK => "Rlink",
        TMKDIR => "Tmkdir",
        RMKDIR => "Rmkdir",
        TRENAMEAT => "Trenameat",
        RRENAMEAT => "Rrenameat",
        TUNLINKAT => "Tunlinkat",
        RUNLINKAT => "Runlinkat",
        _ => super::msg::type_name(ty),
    }
}

/// One `Rreaddir` entry: `qid[13] offset[8] type[1] name[s]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    /// The entry's qid.
    pub qid: Qid,
    /// The offset to pass to continue after this entry.
    pub offset: u64,
    /// `DT_*` type.
    pub ty: u8,
    /// The name.
    pub name: String,
}

impl Dirent {
    /// Bytes of the encoding.
    pub fn encoded_len(&self) -> usize {
        (QID_LEN + 9).saturating_add(str_len(&self.name))
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_qid(out, &self.qid);
        put_u64(out, self.offset);
        put_u8(out, self.ty);
        put_str(out, &self.name, "dirent name")
    }

    /// Decodes the entries packed in `Rreaddir` data; they must fill it exactly.
    pub fn decode_all(data: &[u8]) -> Result<Vec<Dirent>, super::DecodeError> {
        let mut r = Reader::new(data);
        let mut out = Vec::new();
        let wrap = |k| super::DecodeError::new(None, k);
        while r.remaining() > 0 {
            out.push(Dirent {
                qid: r.qid("dirent qid").map_err(wrap)?,
                offset: r.u64("dirent offset").map_err(wrap)?,
                ty: r.u8("dirent type").map_err(wrap)?,
                name: r.string("dirent name").map_err(wrap)?,
            });
        }
        Ok(out)
    }
}
