//! Tree nodes: the layout of pivot and leaf blocks, reading them
//! ([`NodeView`], `view.rs`; its searches, `search.rs`) and building them
//! ([`LeafBuilder`], [`PivotBuilder`], `build.rs`).
//!
//! ```text
//! 0  type u16     1 = pivot, 2 = leaf
//! 2  level u16    0 for leaves; a pivot's children are one level lower
//! 4  nval u16     records in the key area
//! 6  valsz u16    bytes of those records (slots not counted)
//! 8  nbuf u16     messages in the buffer (pivots; 0 in leaves)
//! 10 bufsz u16    bytes of those messages (slots not counted)
//! 12 reserved u32 0
//! 16 key area     leaf: LEAFSPC bytes; pivot: PIVSPC bytes
//! .. buffer area  pivot only: BUFSPC bytes
//! ```
//!
//! The header's offsets are [`hdr`]'s constants, which reader and builders
//! share. Each area starts with an offset table of u16 slots, one per record
//! in key order, growing upwards; the records are packed downwards from the
//! area's end. A key/value record is `klen u16, key, vlen u16, value`; a
//! pivot's value is a child `Bptr` and the child's fill (u16). A message
//! record is `op u8, klen u16, key, vlen u16, arg`. Messages are ordered by
//! key; equal keys keep arrival order (oldest first).
//!
//! A pivot's first separator is always the empty key: child 0 takes every key
//! below separator 1, so separators never need lowering when smaller keys
//! arrive. Every accessor is bounds-checked and returns a
//! [`DecodeError`](super::codec::DecodeError) on malformed input instead of
//! panicking; callers attach the block address.

mod build;
mod search;
mod view;

pub use build::{Full, LeafBuilder, PivotBuilder};
pub use search::cmp_keys;
pub use view::NodeView;

use super::codec::get_u16;
use super::{BUFSPC, LEAFSPC, NODE_HDR, PIVSPC, PIVVALSZ, SLOTSZ};

/// Offsets of the node header's fields, each the previous one plus its
/// size.
pub mod hdr {
    /// Block type, u16.
    pub const TYPE: usize = 0;
    /// Level, u16.
    pub const LEVEL: usize = TYPE + 2;
    /// Records in the key area, u16.
    pub const NVAL: usize = LEVEL + 2;
    /// Bytes of those records, u16.
    pub const VALSZ: usize = NVAL + 2;
    /// Messages in the buffer, u16.
    pub const NBUF: usize = VALSZ + 2;
    /// Bytes of those messages, u16.
    pub const BUFSZ: usize = NBUF + 2;
    /// Reserved, u32, zero.
    pub const RESERVED: usize = BUFSZ + 2;
    /// End of the header: the key area starts here.
    pub const END: usize = RESERVED + 4;
}

const _: () = assert!(hdr::END == NODE_HDR);

/// Where the key area starts.
pub const KEY_AREA: usize = NODE_HDR;
/// Where a pivot's message buffer starts.
pub const BUF_AREA: usize = NODE_HDR + PIVSPC;

const _: () = assert!(BUF_AREA + BUFSPC == super::BLKSZ);
const _: () = assert!(KEY_AREA + LEAFSPC == super::BLKSZ);

/// Bytes a key/value record takes, slot included.
pub fn kv_size(klen: usize, vlen: usize) -> usize {
    SLOTSZ + super::KV_OVERHEAD + klen + vlen
}

/// Bytes a key/pointer record takes, slot included.
pub fn child_size(klen: usize) -> usize {
    kv_size(klen, PIVVALSZ)
}

/// Bytes a message record takes, slot included.
pub fn msg_size(klen: usize, vlen: usize) -> usize {
    SLOTSZ + super::MSG_OVERHEAD + klen + vlen
}

/// The level a (validated) node's header gives, if it has one.
#[inline]
pub fn level_of(buf: &[u8]) -> Option<u16> {
    get_u16(buf, hdr::LEVEL)
}

#[cfg(test)]
mod tests;
