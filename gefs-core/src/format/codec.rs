//! The codec discipline of the format: the [`Decode`] and [`Encode`] traits,
//! the one decode error ([`DecodeError`]), and bounds-checked big-endian
//! readers and writers over byte slices.
//!
//! Every decoder in `format/` takes bytes and returns `Result<T,
//! DecodeError>`: a [`CorruptKind`] and a detail, but no block address (the
//! bytes alone do not know where they were read from); the caller that
//! read the block turns it into [`Error::Corrupt`] with [`DecodeError::at`].
//! Every read checks the remaining length first; nothing here panics on
//! input. Integers are big-endian so that packed keys sort with a byte
//! compare.

use std::fmt;

use crate::error::{CorruptKind, Error};
use crate::ids::BlockAddr;

/// Why bytes did not decode: the class of damage and what exactly was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The class of damage.
    pub kind: CorruptKind,
    /// What was found.
    pub detail: String,
}

impl DecodeError {
    /// An error of `kind`.
    pub fn new(kind: CorruptKind, detail: impl Into<String>) -> DecodeError {
        DecodeError {
            kind,
            detail: detail.into(),
        }
    }

    /// The input ended before a field did.
    pub fn truncated() -> DecodeError {
        DecodeError::new(CorruptKind::Truncated, "truncated")
    }

    /// The same error with `context` (which record, which field) in front
    /// of its detail.
    pub fn context(self, context: impl fmt::Display) -> DecodeError {
        DecodeError {
            kind: self.kind,
            detail: format!("{context}: {}", self.detail),
        }
    }

    /// The library error for this damage, found in block `addr`.
    pub fn at(self, addr: BlockAddr) -> Error {
        Error::Corrupt {
            addr,
            kind: self.kind,
            detail: self.detail,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// The result of a decoder.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A value with one byte encoding that decodes from a whole slice (a tree
/// value, a key, a pointer): every byte must belong to the value.
pub trait Decode<'a>: Sized {
    /// Decode `b`, all of it.
    fn decode(b: &'a [u8]) -> DecodeResult<Self>;
}

/// A value with one byte encoding, the inverse of [`Decode`].
pub trait Encode {
    /// The encoding.
    fn encode(&self) -> Vec<u8>;
}

/// A cursor reading big-endian integers from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fail unless every byte was read: a value's encoding has no slack.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::new(
                CorruptKind::Truncated,
                format!("{n} bytes past the end of the value"),
            )),
        }
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(DecodeError::truncated)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(DecodeError::truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let s = self.bytes(N)?;
        <[u8; N]>::try_from(s).map_err(|_| DecodeError::truncated())
    }

    /// One byte.
    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// A signed byte.
    pub fn i8(&mut self) -> DecodeResult<i8> {
        Ok(i8::from_be_bytes(self.array::<1>()?))
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> DecodeResult<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Appends big-endian integers to a vector.
pub trait PutBe {
    /// Append one byte.
    fn put_u8(&mut self, v: u8);
    /// Append a big-endian u16.
    fn put_u16(&mut self, v: u16);
    /// Append a big-endian u32.
    fn put_u32(&mut self, v: u32);
    /// Append a big-endian u64.
    fn put_u64(&mut self, v: u64);
}

impl PutBe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// Read a big-endian u16 at `off`, if in bounds.
pub fn get_u16(buf: &[u8], off: usize) -> Option<u16> {
    let s = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes(s.try_into().ok()?))
}

/// Read a big-endian u32 at `off`, if in bounds.
pub fn get_u32(buf: &[u8], off: usize) -> Option<u32> {
    let s = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

/// Read a big-endian u64 at `off`, if in bounds.
pub fn get_u64(buf: &[u8], off: usize) -> Option<u64> {
    let s = buf.get(off..off.checked_add(8)?)?;
    Some(u64::from_be_bytes(s.try_into().ok()?))
}

/// Write a big-endian u16 at `off`. Callers pass offsets derived from layout
/// constants checked at compile time; an out-of-range offset is ignored and
/// reported as `false`.
pub fn set_u16(buf: &mut [u8], off: usize, v: u16) -> bool {
    match buf.get_mut(off..off.saturating_add(2)) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Write a big-endian u32 at `off` (see [`set_u16`]).
pub fn set_u32(buf: &mut [u8], off: usize, v: u32) -> bool {
    match buf.get_mut(off..off.saturating_add(4)) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Write a big-endian u64 at `off` (see [`set_u16`]).
pub fn set_u64(buf: &mut [u8], off: usize, v: u64) -> bool {
    match buf.get_mut(off..off.saturating_add(8)) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_bounds() {
        let b = [1u8, 2, 3];
        let mut r = Reader::new(&b);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16().map_err(|e| e.kind), Err(CorruptKind::Truncated));
        assert_eq!(r.u8(), Ok(3));
        assert!(r.bytes(usize::MAX).is_err());
        assert!(r.finish().is_ok());
        assert_eq!(get_u64(&b, usize::MAX - 2), None);
    }

    #[test]
    fn big_endian_sorts() {
        let mut a = Vec::new();
        a.put_u64(0x1ff);
        let mut b = Vec::new();
        b.put_u64(0x200);
        assert!(a < b);
    }
}
