//! Newtypes for the numbers that must not be mixed up: block addresses and
//! generations. Raw `u64`s stay inside the format codec.
//!
//! This is the lowest layer (DESIGN.md §1): it imports nothing from the crate.
//! It also holds the two constants every layer above needs, the block size
//! that addresses count in and the format version that errors name;
//! `format` re-exports both.

use std::fmt;

/// The on-disk format version this build writes. It reads every version from 1 up to this one
/// (FORMAT.md §3 and FORMAT.md §12: each version only added meanings its predecessors never wrote).
pub const FORMAT_VERSION: u32 = 4;

/// Block size in bytes. Every block, data or metadata, is this big.
pub const BLKSZ: usize = 16384;
/// [`BLKSZ`] as a u64, for address arithmetic.
pub const BLKSZ_U64: u64 = BLKSZ as u64;

/// A byte offset on the device. Block addresses are multiples of the block size;
/// [`BlockAddr::NONE`] (all ones) means "no block".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockAddr(pub u64);

impl BlockAddr {
    /// The null address.
    pub const NONE: BlockAddr = BlockAddr(u64::MAX);

    /// Whether this is the null address.
    pub fn is_none(self) -> bool {
        self == BlockAddr::NONE
    }

    /// The block number (address / block size).
    pub fn index(self) -> u64 {
        self.0 / BLKSZ_U64
    }

    /// The address of block number `i`.
    pub fn from_index(i: u64) -> BlockAddr {
        BlockAddr(i * BLKSZ_U64)
    }
}

impl fmt::Display for BlockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            f.write_str("none")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

/// A generation number: the birth generation of a block, a snapshot id, or a
/// tree's working generation. Generations only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Gen(pub u64);

impl Gen {
    /// "No generation" (all ones), used in null pointers.
    pub const NONE: Gen = Gen(u64::MAX);
}

impl fmt::Display for Gen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Gen::NONE {
            f.write_str("none")
        } else {
            write!(f, "{}", self.0)
        }
    }
}
