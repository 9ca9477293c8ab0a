//! Newtypes for the numbers that must not be mixed up: block addresses and
//! generations. Raw `u64`s stay inside the format codec.

use std::fmt;

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
        self.0 / crate::format::BLKSZ_U64
    }

    /// The address of block number `i`.
    pub fn from_index(i: u64) -> BlockAddr {
        BlockAddr(i * crate::format::BLKSZ_U64)
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
