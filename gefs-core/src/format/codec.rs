//! Bounds-checked big-endian readers and writers over byte slices.
//!
//! Every read checks the remaining length first and reports a short buffer as
//! [`Short`]; callers turn that into a corruption error naming their block.
//! Integers are big-endian so that packed keys sort with a byte compare.

/// A read ran past the end of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short;

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
        self.buf.len() - self.pos
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).ok_or(Short)?;
        let s = self.buf.get(self.pos..end).ok_or(Short)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.array::<1>()?[0])
    }

    /// A signed byte.
    pub fn i8(&mut self) -> Result<i8, Short> {
        Ok(i8::from_be_bytes(self.array::<1>()?))
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, Short> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, Short> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, Short> {
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
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Read a big-endian u32 at `off`, if in bounds.
pub fn get_u32(buf: &[u8], off: usize) -> Option<u32> {
    let s = buf.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// Read a big-endian u64 at `off`, if in bounds.
pub fn get_u64(buf: &[u8], off: usize) -> Option<u64> {
    let s = buf.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// Write a big-endian u16 at `off`. Callers pass offsets derived from layout
/// constants checked at compile time; an out-of-range offset is ignored and
/// reported as `false`.
pub fn set_u16(buf: &mut [u8], off: usize, v: u16) -> bool {
    match buf.get_mut(off..off + 2) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Write a big-endian u32 at `off` (see [`set_u16`]).
pub fn set_u32(buf: &mut [u8], off: usize, v: u32) -> bool {
    match buf.get_mut(off..off + 4) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Write a big-endian u64 at `off` (see [`set_u16`]).
pub fn set_u64(buf: &mut [u8], off: usize, v: u64) -> bool {
    match buf.get_mut(off..off + 8) {
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
        assert_eq!(r.u16(), Err(Short));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.bytes(usize::MAX), Err(Short));
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
