//! Errors of the codec. Decode errors describe what was wrong with the bytes in words fit for an
//! `Rerror` string; they never echo the peer's bytes back.

use std::fmt;

/// Why a frame could not be decoded, together with the frame's tag when the header was intact,
/// so that a server can answer the request with `Rerror` instead of hanging up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    tag: Option<u16>,
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn new(tag: Option<u16>, kind: DecodeErrorKind) -> Self {
        DecodeError { tag, kind }
    }

    /// The tag of the offending frame, if its 7-byte header was present.
    pub fn tag(&self) -> Option<u16> {
        self.tag
    }

    /// What was wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// True if the framing itself is broken (size field too small, too large or inconsistent
    /// with the bytes), so the stream cannot be resynchronised and the connection should be
    /// closed rather than answered.
    pub fn is_framing(&self) -> bool {
        matches!(
            self.kind,
            DecodeErrorKind::TooShort { .. }
                | DecodeErrorKind::TooLarge { .. }
                | DecodeErrorKind::SizeMismatch { .. }
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DecodeError {}

/// The kinds of malformed input the decoder refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The frame (or its size field) is shorter than the 7-byte header.
    TooShort {
        /// The size field, or the number of bytes present if fewer than 4.
        size: u32,
    },
    /// The size field exceeds the connection's msize (or [`super::MSIZE_LIMIT`]).
    TooLarge {
        /// The size field.
        size: u32,
        /// The limit in force.
        msize: u32,
    },
    /// The size field disagrees with the number of bytes in the frame.
    SizeMismatch {
        /// The size field.
        size: u32,
        /// The bytes actually given.
        len: usize,
    },
    /// A type number that 9P2000 does not define (including 106, `Terror`).
    UnknownType {
        /// The type byte.
        ty: u8,
    },
    /// An R-message type where a T-message was expected, or the reverse.
    WrongDirection {
        /// The type byte.
        ty: u8,
    },
    /// The body ended inside a field.
    Truncated {
        /// The field being read, e.g. `"Twalk wname"`.
        field: &'static str,
    },
    /// Bytes were left over after the body.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A string was not valid UTF-8.
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A `Twalk` with more than [`super::MAXWELEM`] names, or an `Rwalk` with more qids.
    TooManyWalkElements {
        /// The count on the wire.
        count: u16,
    },
    /// `Twrite` or `Rread` data longer than the I/O unit `msize − IOHDRSZ`.
    DataTooLarge {
        /// The count on the wire.
        count: u32,
        /// The I/O unit in force.
        max: u32,
    },
    /// A stat's size fields disagree with each other or with the stat's contents.
    StatSizeMismatch {
        /// The size the enclosing field or the stat's own size field declares.
        declared: usize,
        /// The bytes the stat actually occupies.
        actual: usize,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::TooShort { size } => {
                write!(f, "bad 9P message: size {size} is below the 7-byte header")
            }
            DecodeErrorKind::TooLarge { size, msize } => {
                write!(f, "bad 9P message: size {size} exceeds msize {msize}")
            }
            DecodeErrorKind::SizeMismatch { size, len } => {
                write!(f, "bad 9P message: size field {size} but {len} bytes")
            }
            DecodeErrorKind::UnknownType { ty } => write!(f, "unknown message type {ty}"),
            DecodeErrorKind::WrongDirection { ty } => {
                write!(f, "bad 9P message: type {ty} sent in the wrong direction")
            }
            DecodeErrorKind::Truncated { field } => {
                write!(f, "bad 9P message: truncated in {field}")
            }
            DecodeErrorKind::TrailingBytes { count } => {
                write!(f, "bad 9P message: {count} trailing bytes")
            }
            DecodeErrorKind::InvalidUtf8 { field } => {
                write!(f, "bad 9P message: {field} is not UTF-8")
            }
            DecodeErrorKind::TooManyWalkElements { count } => {
                write!(f, "walk: too many names ({count} > 16)")
            }
            DecodeErrorKind::DataTooLarge { count, max } => {
                write!(f, "bad 9P message: count {count} exceeds iounit {max}")
            }
            DecodeErrorKind::StatSizeMismatch { declared, actual } => {
                write!(
                    f,
                    "bad 9P message: stat size {declared} but contents {actual}"
                )
            }
        }
    }
}

/// Why a message could not be encoded. The output buffer is left as it was before the call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string longer than 65535 bytes.
    StringTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A walk with more than [`super::MAXWELEM`] names or qids.
    TooManyWalkElements {
        /// The number given.
        count: usize,
    },
    /// A stat whose encoding exceeds 65535 bytes.
    StatTooLarge {
        /// Its encoded length.
        len: usize,
    },
    /// A frame longer than [`super::MSIZE_LIMIT`], which no peer could accept.
    FrameTooLarge {
        /// The frame's length.
        len: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::StringTooLong { field, len } => {
                write!(f, "cannot encode {field}: {len} bytes exceed 65535")
            }
            EncodeError::TooManyWalkElements { count } => {
                write!(f, "cannot encode walk: {count} elements exceed 16")
            }
            EncodeError::StatTooLarge { len } => {
                write!(f, "cannot encode stat: {len} bytes exceed 65535")
            }
            EncodeError::FrameTooLarge { len } => {
                write!(
                    f,
                    "cannot encode message: {len} bytes exceed the msize limit"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}
