//! The file-system layer's error type.
//!
//! Every variant is something a 9P client can be told; [`Error::message`]
//! gives the Plan 9 error string the server sends in `Rerror` (the
//! reference's `error.c` wording where it has one). Engine errors pass
//! through as [`Error::Store`], except the two a client must be able to tell
//! apart — a full device and a read-only file system — which get variants of
//! their own. Nothing here is matched by its text.

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
    /// The mount is an immutable snapshot, or the store is read-only.
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
    /// The Plan 9 error string for an `Rerror`.
    pub fn message(&self) -> &'static str {
        match self {
            Error::NotFound => "directory entry not found",
            Error::Exists => "create/wstat -- file exists",
            Error::Perm => "permission denied",
            Error::NotDir => "not a directory",
            Error::IsDir => "is a directory",
            Error::NotEmpty => "directory is not empty",
            Error::NameTooLong => "name too long",
            Error::BadName => "create/wstat -- bad character in file name",
            Error::Gone => "phase error -- use after remove",
            Error::Root => "cannot remove or rename the root",
            Error::ReadOnly => "file system read only",
            Error::NoSpace => "file system full",
            Error::NotOpen => "file not open for this access",
            Error::Wstat(r) => r.message(),
            Error::NoUser => "user does not exist",
            Error::Invalid(_) => "invalid argument",
            Error::Store(e) if e.is_corruption() => "block contents corrupted",
            Error::Store(crate::Error::Io { .. }) => "i/o error",
            Error::Store(_) => "internal error",
        }
    }
}

impl WstatRule {
    /// The Plan 9 error string.
    pub fn message(self) -> &'static str {
        match self {
            WstatRule::NotOwner => "wstat -- not owner",
            WstatRule::NotInGroup => "wstat -- not in group",
            WstatRule::NotPermissive => "wstat -- attempt to change owner",
            WstatRule::DirBit => "wstat -- attempt to change directory bit",
            WstatRule::UnknownBits => "wstat -- unknown bits in mode",
            WstatRule::DirLength => "wstat -- attempt to change length of directory",
        }
    }
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
