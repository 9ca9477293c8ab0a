//! Reading whole frames off a byte stream without trusting the peer's size field.
//!
//! The 4-byte size is read first and checked (at least 7, at most msize, and never above
//! [`MSIZE_LIMIT`]) before anything is allocated, and the buffer then grows only as bytes
//! arrive. So a peer can make one connection hold at most msize bytes, however large a size it
//! claims; a peer that claims a large frame and stalls holds at most 64 KiB or twice what it
//! sent; and a refused size costs 4 bytes of reading.

use std::fmt;
use std::io::{self, Read};

use super::error::{DecodeError, DecodeErrorKind};
use super::{HEADER_LEN, MSIZE_LIMIT};

/// The first allocation for a frame's body, before the peer has shown it sends more.
const FIRST_CHUNK: usize = 64 * 1024;

/// Why [`read_frame`] could not produce a frame. Every variant means the connection cannot go
/// on: the stream is broken or out of sync.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadFrameError {
    /// The underlying reader failed.
    Io(io::Error),
    /// The size field is below 7 or above msize; nothing past it was read.
    Size(DecodeError),
    /// The stream ended inside a frame.
    UnexpectedEof {
        /// Bytes of the frame received (size field included).
        got: usize,
        /// Bytes the frame should have had (4 while the size field itself is incomplete).
        want: usize,
    },
}

impl fmt::Display for ReadFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFrameError::Io(e) => write!(f, "9P read failed: {e}"),
            ReadFrameError::Size(e) => e.fmt(f),
            ReadFrameError::UnexpectedEof { got, want } => {
                write!(f, "9P stream ended inside a frame ({got} of {want} bytes)")
            }
        }
    }
}

impl std::error::Error for ReadFrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadFrameError::Io(e) => Some(e),
            ReadFrameError::Size(e) => Some(e),
            ReadFrameError::UnexpectedEof { .. } => None,
        }
    }
}

/// Reads one whole frame from `reader` into the start of `buf` and returns it, size field
/// included, ready for [`super::decode_t`]. Returns `Ok(None)` if the stream ended cleanly
/// before the first byte of a frame.
///
/// The size field is checked against `msize` (capped at [`MSIZE_LIMIT`]) before `buf` grows, so
/// `buf` never grows beyond msize bytes, and it grows only as the frame's bytes arrive. `buf`
/// keeps its length between calls (what lies past the frame is left from earlier frames), so
/// a buffer reused across the frames of a connection is not cleared for every frame.
/// Interrupted reads are retried; a reader that returns one byte at a time still yields whole
/// frames.
pub fn read_frame<'b, R: Read + ?Sized>(
    reader: &mut R,
    msize: u32,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>, ReadFrameError> {
    let mut size_field = [0u8; 4];
    let got = read_full(reader, &mut size_field).map_err(ReadFrameError::Io)?;
    if got == 0 {
        return Ok(None);
    }
    if got < size_field.len() {
        return Err(ReadFrameError::UnexpectedEof { got, want: 4 });
    }
    let size = u32::from_le_bytes(size_field);
    let limit = msize.min(MSIZE_LIMIT);
    let refuse = |kind| Err(ReadFrameError::Size(DecodeError::new(None, kind)));
    let len = match usize::try_from(size) {
        Ok(len) if len < HEADER_LEN => return refuse(DecodeErrorKind::TooShort { size }),
        Ok(len) if size <= limit => len,
        _ => return refuse(DecodeErrorKind::TooLarge { size, msize: limit }),
    };
    if buf.len() < size_field.len() {
        buf.resize(size_field.len(), 0);
    }
    if let Some(head) = buf.get_mut(..size_field.len()) {
        head.copy_from_slice(&size_field);
    }
    let mut filled = size_field.len();
    while filled < len {
        // Grow geometrically, but only as bytes arrive: a peer that claims a large frame and
        // then stalls holds max(FIRST_CHUNK, 2 × what it sent), never more than `len`.
        let end = if buf.len() > filled {
            buf.len().min(len)
        } else if buf.capacity() > filled {
            buf.capacity().min(len)
        } else {
            let end = len.min(FIRST_CHUNK.max(filled.saturating_mul(2)));
            buf.reserve_exact(end.saturating_sub(filled));
            end
        };
        if buf.len() < end {
            buf.resize(end, 0);
        }
        let got = match buf.get_mut(filled..end) {
            Some(dst) => read_full(reader, dst).map_err(ReadFrameError::Io)?,
            None => 0,
        };
        filled = filled.saturating_add(got);
        if filled < end {
            buf.truncate(filled);
            return Err(ReadFrameError::UnexpectedEof {
                got: filled,
                want: len,
            });
        }
    }
    Ok(buf.get(..len))
}

/// Reads until `dst` is full or the stream ends; returns the bytes read. Retries
/// `Interrupted`.
fn read_full<R: Read + ?Sized>(reader: &mut R, dst: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(space) = dst.get_mut(filled..).filter(|s| !s.is_empty()) {
        match reader.read(space) {
            Ok(0) => break,
            Ok(n) => filled = filled.saturating_add(n.min(space.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
