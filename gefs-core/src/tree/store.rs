//! [`NodeStore`]: what the tree needs from the layers below it.
//!
//! The tree algorithms are generic over this trait so that they can be tested
//! against a plain in-memory store and run in production over the block
//! cache, the allocator and the epoch layer. An implementation is the context
//! of one tree operation: it knows which tree is being changed (its working
//! generation decides how a freed block is reclaimed) and whether allocations
//! may dip into the reserve.
//!
//! How the tree uses it during one upsert:
//! - every node it reads comes through [`NodeStore::read`]; the tree checks
//!   each node's level against its position on top of the store's checks;
//! - it never calls [`NodeStore::free`] before the whole upsert has
//!   succeeded. On success it frees, once each, every block the new tree no
//!   longer references (old path nodes, nodes it wrote earlier in the same
//!   call and then replaced, and data blocks whose `KDAT` pointers were
//!   overwritten or deleted in a leaf). On failure it frees exactly the
//!   blocks it wrote in that call (none is reachable from the old root) and
//!   nothing else;
//! - one upsert may write several blocks per level of the tree and may loop
//!   for a large batch; see the `tree` module docs for the numbers that
//!   matter when sizing an allocation reserve.

use std::ops::Deref;
use std::sync::Arc;

use crate::error::Result;
use crate::format::{Bptr, BLKSZ};

use super::pending::Run;

/// Block I/O for tree operations.
pub trait NodeStore {
    /// A shared, immutable handle to a node's 16 KiB (a cache handle in
    /// production). Cloning it is cheap.
    type Ref: Deref<Target = [u8]> + Clone + std::fmt::Debug;

    /// Read the node `bp` points to. The implementation verifies the block's
    /// hash against `bp.hash` and checks the node's structure
    /// ([`NodeView::validate`](crate::format::node::NodeView::validate)); any
    /// mismatch is an error naming the block, never bad bytes.
    fn read(&self, bp: &Bptr) -> Result<Self::Ref>;

    /// Allocate a new block, let `build` fill it (the buffer may hold stale
    /// bytes: `build` defines every one, as the node builders do), then seal
    /// it: hash it and make it readable by address. Returns the new
    /// block's pointer (born in the tree's working generation), a handle, and
    /// whatever `build` returned. If `build` fails nothing is allocated.
    fn write<R>(
        &self,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Self::Ref, R)>;

    /// Release a block the tree no longer references: a node replaced by
    /// copy-on-write, or a data block whose `KDAT` pointer was overwritten or
    /// deleted when a message reached a leaf. The implementation decides, from
    /// the block's birth generation, whether it is reused after readers leave
    /// (born since the last commit) or only after the next commit is durable
    /// (or later, when snapshots still hold it).
    ///
    /// The tree calls this only after an operation has succeeded, so an
    /// error cannot undo it: the tree ignores the error (the block leaks) and
    /// the implementation, which knows what failed, must latch its own
    /// failure (for example make the file system read-only).
    fn free(&self, bp: &Bptr) -> Result<()>;

    /// Messages accepted for the tree but not yet applied to it (runs,
    /// oldest first), which [`lookup`](super::lookup) and
    /// [`scan`](super::scan) apply on top of what the tree holds. None by
    /// default; a store's reader context supplies its write buffer.
    fn pending(&self) -> &[Arc<Run>] {
        &[]
    }
}
