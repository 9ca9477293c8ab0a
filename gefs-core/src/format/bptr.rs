//! Block pointers: `(addr, hash, gen)`, 24 bytes big-endian.

use super::codec::{DecodeResult, Reader};
use super::PTRSZ;
use crate::ids::{BlockAddr, Gen};

/// A pointer to a block: where it is, the xxh3-64 hash of its 16 KiB, and the
/// generation it was born in (which snapshot accounting uses to decide who may
/// free it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bptr {
    /// Device byte offset of the block.
    pub addr: BlockAddr,
    /// Hash of the whole block.
    pub hash: u64,
    /// Birth generation.
    pub gen: Gen,
}

impl Bptr {
    /// The null pointer.
    pub const NONE: Bptr = Bptr {
        addr: BlockAddr::NONE,
        hash: u64::MAX,
        gen: Gen::NONE,
    };

    /// Whether this is the null pointer.
    pub fn is_none(&self) -> bool {
        self.addr.is_none()
    }

    /// The packed form.
    pub fn to_bytes(&self) -> [u8; PTRSZ] {
        let mut b = [0u8; PTRSZ];
        let fields = [self.addr.0, self.hash, self.gen.0];
        for (dst, v) in b.chunks_exact_mut(8).zip(fields) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
        b
    }

    /// Unpack from a reader.
    pub fn read(r: &mut Reader<'_>) -> DecodeResult<Bptr> {
        Ok(Bptr {
            addr: BlockAddr(r.u64()?),
            hash: r.u64()?,
            gen: Gen(r.u64()?),
        })
    }

    /// Unpack the pointer in the first 24 bytes of `b` (the bytes after
    /// them are not looked at).
    pub fn from_slice(b: &[u8]) -> DecodeResult<Bptr> {
        Bptr::read(&mut Reader::new(b))
    }
}

impl std::fmt::Display for Bptr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_none() {
            return f.write_str("(none)");
        }
        write!(f, "({}, {:016x}, {})", self.addr, self.hash, self.gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = Bptr {
            addr: BlockAddr(0x4000),
            hash: 0xdead_beef,
            gen: Gen(7),
        };
        assert_eq!(Bptr::from_slice(&p.to_bytes()), Ok(p));
        assert_eq!(Bptr::from_slice(&Bptr::NONE.to_bytes()), Ok(Bptr::NONE));
        assert!(Bptr::from_slice(&[0u8; 23]).is_err());
    }
}
