//! The file-system layer's error type.
//!
//! Every variant is something a 9P client can be told: [`Error::message`]
//! gives the string the server sends in a 9P2000 `Rerror`, [`Error::errno`]
//! the Linux errno of a 9P2000.L `Rlerror`, and the two agree: where Linux's
//! 9P error table (`net/9p/error.c`) has a string for a condition, the message
//! is that string, so a Linux client derives the same errno from either. Engine errors pass
//! through as [`Error::Store`], except the two a client must be able to tell
//! apart — a full device and a read-only file system — which get variants of
//! their own. A store that latched after a device failure
//! ([`crate::Error::Failed`]) is not a read-only file system: it says
//! "Input/output error" (EIO), where one failed request says "i/o error" (EIO).
//! Nothing here is matched by its text.

use std::fmt;

/// Why a file-system operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name does not exist in the directory.
    NotFound,
    /// The name already exists (create, rename).
    Exists,
    /// The user lacks the permission the operation needs.
    Perm,
    /// A directory was needed (walk, create, readdir).
    NotDir,
    /// A file was needed: a directory cannot be written, truncated or opened
    /// for writing (reference defect #6).
    IsDir,
    /// A directory with entries cannot be removed.
    NotEmpty,
    /// A name longer than [`MAX_NAME`](super::names::MAX_NAME) bytes.
    NameTooLong,
    /// An empty name, `.`, `..`, or one with `/` or a control byte.
    BadName,
    /// The entry was removed (by this or another handle).
    Gone,
    /// The root directory cannot be removed or renamed (reference defect #29).
    Root,
    /// The mount is an immutable snapshot, or the store was opened read-only.
    ReadOnly,
    /// The device is full.
    NoSpace,
    /// The handle is not open for the access the operation needs (a read of
    /// a handle not opened for reading: reference defect #5).
    NotOpen,
    /// A wstat rule was broken.
    Wstat(WstatRule),
    /// A user or group name that is not in the users table.
    NoUser,
    /// A malformed argument (offset overflow, unknown mode bits, ...).
    Invalid(String),
    /// A length or write end beyond [`MAX_LEN`](super::MAX_LEN).
    TooBig,
    /// Not allowed whatever the permissions: writing a symbolic link, pipe or
    /// socket; removing or replacing another user's entry in a sticky
    /// directory (POSIX).
    NotPermitted,
    /// An engine error: I/O, corruption, internal.
    Store(crate::Error),
}

/// The wstat rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WstatRule {
    /// Only the owner or the group leader may change mode or mtime.
    NotOwner,
    /// The new group is not one the requester may give.
    NotInGroup,
    /// Only a permissive (`%`) attach may change the owner.
    NotPermissive,
    /// DMDIR cannot be changed.
    DirBit,
    /// Mode bits other than DIR, APPEND, EXCL, TMP and 0777.
    UnknownBits,
    /// A directory's length cannot be changed.
    DirLength,
}

impl Error {
    /// The error string for an `Rerror`. Where Linux's 9P error table (`net/9p/error.c`) has a
    /// string for the condition, it is that string, so a Linux client derives the errno
    /// [`Error::errno`] gives; the rest keep the reference's wording.
    pub fn message(&self) -> &'static str {
        match self {
            Error::NotFound => "directory entry not found",
            Error::Exists => "file exists",
            Error::Perm => "permission denied",
            Error::NotDir => "not a directory",
            Error::IsDir => "Is a directory",
            Error::NotEmpty => "directory is not empty",
            Error::NameTooLong => "File name too long",
            Error::BadName => "Invalid argument",
            Error::Gone => "file has been removed",
            Error::Root => "Device or resource busy",
            Error::ReadOnly => "read only file system",
            Error::NoSpace => "file system is full",
            Error::NotOpen => "bad use of fid",
            Error::TooBig => "file too big",
            Error::NotPermitted => "Operation not permitted",
            Error::Wstat(r) => r.message(),
            Error::NoUser => "unknown user",
            Error::Invalid(_) => "Invalid argument",
            Error::Store(e) if e.is_corruption() => "Bad message",
            Error::Store(crate::Error::Io { .. }) => "i/o error",
            Error::Store(crate::Error::Failed) => "Input/output error",
            Error::Store(_) => "Remote I/O error",
        }
    }

    /// The Linux errno of this error: what a 9P2000.L `Rlerror` carries, and what Linux derives
    /// from [`Error::message`] over 9P2000. The one mapping from file-system errors to errno.
    pub fn errno(&self) -> u32 {
        match self {
            Error::NotFound => errno::ENOENT,
            Error::Exists => errno::EEXIST,
            Error::Perm => errno::EACCES,
            Error::NotDir => errno::ENOTDIR,
            Error::IsDir => errno::EISDIR,
            Error::NotEmpty => errno::ENOTEMPTY,
            Error::NameTooLong => errno::ENAMETOOLONG,
            Error::BadName | Error::Invalid(_) | Error::NoUser => errno::EINVAL,
            // The .L dialect says what POSIX clients expect of a handle whose file is gone (as
            // NFS does): the kernel then looks the path up again. Linux's 9P table has no
            // string for ESTALE; the 9P2000 string maps to EIDRM.
            Error::Gone => errno::ESTALE,
            Error::Root => errno::EBUSY,
            Error::ReadOnly => errno::EROFS,
            Error::NoSpace => errno::ENOSPC,
            Error::NotOpen => errno::EBADF,
            Error::TooBig => errno::EFBIG,
            Error::NotPermitted => errno::EPERM,
            Error::Wstat(r) => r.errno(),
            Error::Store(e) if e.is_corruption() => errno::EBADMSG,
            Error::Store(crate::Error::Io { .. } | crate::Error::Failed) => errno::EIO,
            Error::Store(_) => errno::EREMOTEIO,
        }
    }
}

impl WstatRule {
    /// The error string (see [`Error::message`]).
    pub fn message(self) -> &'static str {
        match self {
            WstatRule::NotOwner => "Operation not permitted",
            WstatRule::NotInGroup => "not a member of proposed group",
            WstatRule::NotPermissive => "wstat prohibited",
            WstatRule::DirBit => "wstat can't convert between files and directories",
            WstatRule::UnknownBits => "illegal mode",
            WstatRule::DirLength => "Is a directory",
        }
    }

    /// The Linux errno (see [`Error::errno`]).
    pub fn errno(self) -> u32 {
        match self {
            WstatRule::NotOwner
            | WstatRule::NotInGroup
            | WstatRule::NotPermissive
            | WstatRule::DirBit => errno::EPERM,
            WstatRule::UnknownBits => errno::EINVAL,
            WstatRule::DirLength => errno::EISDIR,
        }
    }
}

/// Linux errno values, as 9P2000.L carries them (the x86/arm numbering every Linux 9P client
/// and server uses on the wire, whatever the host).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: u32 = 1;
    /// No such file or directory.
    pub const ENOENT: u32 = 2;
    /// Input/output error.
    pub const EIO: u32 = 5;
    /// No such device or address.
    pub const ENXIO: u32 = 6;
    /// Bad file descriptor.
    pub const EBADF: u32 = 9;
    /// Resource temporarily unavailable.
    pub const EAGAIN: u32 = 11;
    /// Permission denied.
    pub const EACCES: u32 = 13;
    /// Device or resource busy.
    pub const EBUSY: u32 = 16;
    /// File exists.
    pub const EEXIST: u32 = 17;
    /// Invalid cross-device link.
    pub const EXDEV: u32 = 18;
    /// Not a directory.
    pub const ENOTDIR: u32 = 20;
    /// Is a directory.
    pub const EISDIR: u32 = 21;
    /// Invalid argument.
    pub const EINVAL: u32 = 22;
    /// Too many open files.
    pub const EMFILE: u32 = 24;
    /// File too large.
    pub const EFBIG: u32 = 27;
    /// No space left on device.
    pub const ENOSPC: u32 = 28;
    /// Illegal seek.
    pub const ESPIPE: u32 = 29;
    /// Read-only file system.
    pub const EROFS: u32 = 30;
    /// Too many links.
    pub const EMLINK: u32 = 31;
    /// Numerical result out of range.
    pub const ERANGE: u32 = 34;
    /// Resource deadlock avoided.
    pub const EDEADLK: u32 = 35;
    /// File name too long.
    pub const ENAMETOOLONG: u32 = 36;
    /// No locks available.
    pub const ENOLCK: u32 = 37;
    /// Function not implemented.
    pub const ENOSYS: u32 = 38;
    /// Directory not empty.
    pub const ENOTEMPTY: u32 = 39;
    /// Too many levels of symbolic links.
    pub const ELOOP: u32 = 40;
    /// Identifier removed.
    pub const EIDRM: u32 = 43;
    /// No data available (no such extended attribute).
    pub const ENODATA: u32 = 61;
    /// Protocol error.
    pub const EPROTO: u32 = 71;
    /// Bad message.
    pub const EBADMSG: u32 = 74;
    /// Value too large for defined data type.
    pub const EOVERFLOW: u32 = 75;
    /// Message too long.
    pub const EMSGSIZE: u32 = 90;
    /// Operation not supported.
    pub const EOPNOTSUPP: u32 = 95;
    /// Cannot send after transport endpoint shutdown.
    pub const ESHUTDOWN: u32 = 108;
    /// Connection refused.
    pub const ECONNREFUSED: u32 = 111;
    /// Stale file handle.
    pub const ESTALE: u32 = 116;
    /// Remote I/O error.
    pub const EREMOTEIO: u32 = 121;
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(what) => write!(f, "invalid argument: {what}"),
            Error::Store(e) => write!(f, "{}: {e}", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Error {
        match e {
            crate::Error::NoSpace => Error::NoSpace,
            crate::Error::ReadOnly => Error::ReadOnly,
            e => Error::Store(e),
        }
    }
}

/// The result type of the file-system layer.
pub type Result<T> = std::result::Result<T, Error>;
