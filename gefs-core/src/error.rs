//! The error type of the whole library.
//!
//! Corruption errors always name the block they were found in and the class
//! of damage ([`CorruptKind`]); I/O errors name
//! the operation and offset. Nothing here is matched by its text: callers match
//! on the variant (for example [`Error::NoSpace`] or [`Error::ReadOnly`]).

use std::fmt;
use std::io;

use crate::ids::BlockAddr;

/// The device operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// A positional read.
    Read,
    /// A positional write.
    Write,
    /// A flush (`fdatasync`).
    Flush,
    /// Opening, locking or sizing the device.
    Open,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Flush => "flush",
            IoOp::Open => "open",
        })
    }
}

/// What is wrong with a malformed block or value: the class of damage that an
/// [`Error::Corrupt`] reports (its `detail` says exactly what was found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptKind {
    /// A block of another type where one type was expected (a log block
    /// where a node belongs, a leaf at a pivot's level).
    BlockType,
    /// A record, field or value runs past the end of what holds it.
    Truncated,
    /// A count or size in a header disagrees with the block or its contents.
    Count,
    /// A header field out of range: flags, version, block size, geometry.
    Header,
    /// A tree's shape: a node at the wrong level, a height out of range.
    Level,
    /// Keys or messages out of order.
    KeyOrder,
    /// A key that is no key of its family.
    Key,
    /// A value of the wrong shape for its key.
    Value,
    /// A message with an unknown op, or an argument its op cannot take.
    Message,
    /// A pointer that leads outside the arenas or to the wrong place.
    Pointer,
    /// A chain of log, deadlist or message-log blocks out of sequence,
    /// unterminated or unfinished.
    Chain,
    /// Something reached twice on a path that must not loop.
    Cycle,
    /// Allocation-log entries that contradict each other or the superblock.
    Accounting,
}

impl CorruptKind {
    /// A short description, as error messages show it.
    pub fn name(self) -> &'static str {
        match self {
            CorruptKind::BlockType => "wrong block type",
            CorruptKind::Truncated => "truncated",
            CorruptKind::Count => "bad counts",
            CorruptKind::Header => "bad header",
            CorruptKind::Level => "bad tree shape",
            CorruptKind::KeyOrder => "keys out of order",
            CorruptKind::Key => "bad key",
            CorruptKind::Value => "bad value",
            CorruptKind::Message => "bad message",
            CorruptKind::Pointer => "bad pointer",
            CorruptKind::Chain => "broken chain",
            CorruptKind::Cycle => "cycle",
            CorruptKind::Accounting => "bad accounting",
        }
    }
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in gefs-core.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The device failed.
    Io {
        /// What was being done.
        op: IoOp,
        /// The byte offset involved (0 for flush and open).
        off: u64,
        /// The operating system's error.
        source: io::Error,
    },
    /// A block's contents do not hash to the value in the pointer that led to it.
    Checksum {
        /// The block's address.
        addr: BlockAddr,
        /// The hash the pointer promised.
        expected: u64,
        /// The hash of what was read.
        actual: u64,
    },
    /// A block or structure is malformed.
    Corrupt {
        /// The block where the damage was found ([`BlockAddr::NONE`] only
        /// for a message still in memory, which no block holds yet).
        addr: BlockAddr,
        /// The class of damage.
        kind: CorruptKind,
        /// What exactly was found.
        detail: String,
    },
    /// Neither superblock is a valid gefs-rs superblock.
    NotGefs {
        /// Why the first copy was rejected.
        why: String,
    },
    /// The image was written by a format version this build does not know.
    Version {
        /// The version found on disk.
        found: u32,
    },
    /// Ordinary allocation would eat into the reserve kept for deletes and syncs.
    NoSpace,
    /// The store was opened read-only, or the tree is an immutable snapshot:
    /// changes are refused by choice, and nothing is wrong with the device.
    ReadOnly,
    /// A device write or flush failed earlier and the store latched itself
    /// read-only: changes are refused until a restart, because what was
    /// written since the last commit may not be on the medium (fsyncgate).
    Failed,
    /// A key longer than the limit.
    KeyTooLong(usize),
    /// A value longer than the limit.
    ValueTooLong(usize),
    /// A caller passed something the operation cannot take.
    Invalid(String),
    /// A label, snapshot or key that does not exist.
    NotFound(String),
    /// No label of this name (see `Store::no_label`).
    NoLabel {
        /// The name asked for.
        name: String,
        /// The labels there are, for the message.
        labels: Vec<String>,
    },
    /// An object that already exists.
    Exists(String),
    /// An operation refused to protect data; the text says why and how to
    /// go ahead (e.g. "use -f").
    Refused(String),
    /// An invariant of this library was broken (a bug, reported instead of a panic).
    Internal(String),
}

impl Error {
    /// A corruption error of `kind` found in block `addr`.
    pub fn corrupt(addr: BlockAddr, kind: CorruptKind, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            addr,
            kind,
            detail: detail.into(),
        }
    }

    /// Whether this error says the stored data is damaged (as opposed to an
    /// I/O failure or a usage error).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Checksum { .. } | Error::Corrupt { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The message of an open failure names the path and what happened.
            Error::Io {
                op: IoOp::Open,
                source,
                ..
            } => write!(f, "{source}"),
            Error::Io { op, off, source } => {
                write!(f, "i/o error: {op} at offset {off:#x}: {source}")
            }
            Error::Checksum {
                addr,
                expected,
                actual,
            } => write!(
                f,
                "block {addr}: hash mismatch (expected {expected:016x}, found {actual:016x})"
            ),
            Error::Corrupt { addr, kind, detail } => {
                write!(f, "block {addr}: corrupt ({kind}): {detail}")
            }
            Error::NotGefs { why } => write!(f, "not a gefs-rs image: {why}"),
            Error::Version { found } => write!(
                f,
                "unsupported format version {found} (this build reads version {})",
                crate::ids::FORMAT_VERSION
            ),
            Error::NoSpace => f.write_str("file system full"),
            Error::ReadOnly => f.write_str("file system read only"),
            Error::Failed => f.write_str(
                "the device failed: changes are refused until a restart (the last commit is intact)",
            ),
            Error::KeyTooLong(n) => write!(f, "key of {n} bytes exceeds the limit"),
            Error::ValueTooLong(n) => write!(f, "value of {n} bytes exceeds the limit"),
            Error::Invalid(what) => write!(f, "invalid argument: {what}"),
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::NoLabel { name, labels } if labels.is_empty() => {
                write!(f, "label {name} not found")
            }
            Error::NoLabel { name, labels } => {
                write!(f, "label {name} not found; labels: {}", labels.join(", "))
            }
            Error::Exists(what) => write!(f, "{what} already exists"),
            Error::Refused(why) => f.write_str(why),
            Error::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// The device (or a host file) failed `op` at byte offset `off`: the one
    /// constructor of [`Error::Io`].
    pub fn io(op: IoOp, off: u64, source: io::Error) -> Error {
        Error::Io { op, off, source }
    }
}

/// The result type of gefs-core.
pub type Result<T> = std::result::Result<T, Error>;
