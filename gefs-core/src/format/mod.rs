//! The on-disk format: the only module that knows byte offsets.
//!
//! Everything here is pure (no I/O). One codec discipline (`codec.rs`):
//! values implement [`Encode`] and [`Decode`]; every decoder, of a value or
//! of a block's header and records, answers [`DecodeResult`], bounds every
//! length before using it and never panics on input (indexing is denied
//! here: reads go through `get`, [`codec::Reader`] and array conversions).
//! A [`DecodeError`] carries a [`CorruptKind`](crate::CorruptKind) and a
//! detail; the caller that read the block names it
//! ([`DecodeError::at`] makes the [`Error::Corrupt`](crate::Error::Corrupt)).
//! The superblock alone answers library errors, since it classifies an
//! image (not ours, newer, damaged). Every header's field offsets are one
//! chain of constants that its encoder and decoder share. Integers are
//! big-endian so that packed keys sort with a plain byte compare.
//! `doc/FORMAT.md` describes each structure byte by byte; the compile-time
//! assertions below keep the constants honest.

#![deny(clippy::indexing_slicing)]

pub mod bptr;
pub mod codec;
pub mod key;
pub mod log;
pub mod mlog;
pub mod msg;
pub mod node;
pub mod superblock;
pub mod value;

pub use bptr::Bptr;
pub use codec::{Decode, DecodeError, DecodeResult, Encode};

// The block size and the format version are defined with the block address
// (`ids`), the leaf every layer shares, so that `error` and `ids` need nothing
// from this module (DESIGN.md §1).
pub use crate::ids::{BLKSZ, BLKSZ_U64, FORMAT_VERSION};

/// Size of a tree-node header (pivot or leaf).
pub const NODE_HDR: usize = 16;
/// Key/value area of a leaf.
pub const LEAFSPC: usize = BLKSZ - NODE_HDR;
/// Key/pointer area of a pivot.
pub const PIVSPC: usize = (BLKSZ - NODE_HDR) / 2;
/// Message-buffer area of a pivot.
pub const BUFSPC: usize = BLKSZ - NODE_HDR - PIVSPC;

/// Longest key.
pub const KEYMAX: usize = 256;
/// Longest value.
pub const VALMAX: usize = 512;
/// A packed block pointer: addr, hash, gen.
pub const PTRSZ: usize = 24;
/// A pivot's child value: a pointer and a 2-byte fill count.
pub const PIVVALSZ: usize = PTRSZ + 2;
/// Bytes of a key/value record besides key and value: two lengths.
pub const KV_OVERHEAD: usize = 4;
/// Bytes of a message record besides key and value: op and two lengths.
pub const MSG_OVERHEAD: usize = 5;
/// Size of one offset-table slot.
pub const SLOTSZ: usize = 2;
/// The largest key/value record, slot included.
pub const KVMAX: usize = SLOTSZ + KV_OVERHEAD + KEYMAX + VALMAX;
/// The largest key/pointer record in a pivot, slot included.
pub const KPMAX: usize = SLOTSZ + KV_OVERHEAD + KEYMAX + PIVVALSZ;
/// The largest message record, slot included.
pub const MSGMAX: usize = SLOTSZ + MSG_OVERHEAD + KEYMAX + VALMAX;

/// Header of a log, deadlist or message-log block.
pub const LOG_HDR: usize = 40;
/// Payload bytes of a log, deadlist or message-log block.
pub const LOGSPC: usize = BLKSZ - LOG_HDR;
/// Most blocks in one tree's message log (64 MiB): replay refuses a longer
/// chain, and the store applies a tree's messages before its log would grow
/// past it.
pub const MLOG_MAX_BLOCKS: u64 = 4096;

// A pivot can always absorb a split of one child and still split itself into
// halves of at least two children each; a buffer always holds two messages; a
// leaf always holds at least four records so that it can be split.
const _: () = assert!(4 * KPMAX < PIVSPC);
const _: () = assert!(2 * MSGMAX < BUFSPC);
const _: () = assert!(4 * KVMAX < LEAFSPC);
const _: () = assert!(PIVSPC + BUFSPC + NODE_HDR == BLKSZ);
const _: () = assert!(LEAFSPC <= u16::MAX as usize);
// A message record always fits a message-log block.
const _: () = assert!(MSGMAX < LOGSPC);

/// The type of a block, stored in its first two bytes (except data blocks,
/// which carry no header and whose type is known from the pointer's context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BlockType {
    /// Raw file data; no header.
    Data,
    /// An inner tree node.
    Pivot,
    /// A leaf tree node.
    Leaf,
    /// An allocation-log block.
    Log,
    /// A deadlist block.
    Dlist,
    /// A message-log block: a tree's messages not yet applied to it.
    Mlog,
    /// A superblock copy.
    Super,
}

impl BlockType {
    /// The tag stored in the first two bytes.
    pub fn tag(self) -> u16 {
        match self {
            BlockType::Data => 0,
            BlockType::Pivot => 1,
            BlockType::Leaf => 2,
            BlockType::Log => 3,
            BlockType::Dlist => 4,
            BlockType::Mlog => 5,
            BlockType::Super => 0x6765,
        }
    }

    /// The type with tag `t`, if it is one.
    pub fn from_tag(t: u16) -> Option<BlockType> {
        Some(match t {
            1 => BlockType::Pivot,
            2 => BlockType::Leaf,
            3 => BlockType::Log,
            4 => BlockType::Dlist,
            5 => BlockType::Mlog,
            0x6765 => BlockType::Super,
            _ => return None,
        })
    }

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            BlockType::Data => "data",
            BlockType::Pivot => "pivot",
            BlockType::Leaf => "leaf",
            BlockType::Log => "log",
            BlockType::Dlist => "deadlist",
            BlockType::Mlog => "message log",
            BlockType::Super => "superblock",
        }
    }
}

/// The hash of a whole block, stored in every pointer to it: xxh3-64.
pub fn block_hash(buf: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// Read the type tag of a header-carrying block (its first two bytes, in
/// every header: [`node::hdr::TYPE`], [`log::hdr::TYPE`], the superblock's
/// magic).
pub fn block_type(buf: &[u8]) -> Option<BlockType> {
    codec::get_u16(buf, node::hdr::TYPE).and_then(BlockType::from_tag)
}

const _: () = assert!(node::hdr::TYPE == 0 && log::hdr::TYPE == 0);
