//! The Bε tree: a copy-on-write B-tree whose pivots buffer messages.
//!
//! A tree is a [`Root`]: a pointer and a height (1 = the root is a leaf).
//! Nodes are immutable once written; every change builds new nodes and
//! returns a new root, and the old root stays valid until its blocks are
//! freed through the [`NodeStore`] — which [`upsert`] does only after the
//! whole batch has succeeded.
//!
//! Tree-wide invariants (checked by the tests after every batch):
//! - keys ascend strictly in every leaf; buffered messages ascend by key and
//!   keep arrival order among equal keys, and for one key, messages lower in
//!   the tree are older;
//! - a pivot's separator 0 is empty; separator `i` is ≤ every key (value or
//!   buffered message) in child `i`'s subtree, and every such key is below
//!   separator `i + 1`;
//! - every leaf is at level 0 and every child is exactly one level below its
//!   parent, so all leaves are at the same depth; the height never exceeds
//!   [`MAX_HEIGHT`](crate::format::superblock::MAX_HEIGHT);
//! - the fill a parent records for a child is exactly the child's
//!   [`NodeView::fill`](crate::format::node::NodeView::fill);
//! - no leaf but the root is empty; no pivot is without children; a pivot
//!   with buffered messages is never dropped;
//! - a message that has nothing to act on (an orphan clearb, clobber, wstat,
//!   delete…) never surfaces as a value.
//!
//! Rebalancing: when a flush rebuilds a child into a single node whose key
//! area is under a quarter full, it is merged with the neighbour that has the
//! smaller recorded fill if their combined key area is at most three quarters
//! of a block (and their buffers fit one), and otherwise the two are
//! redistributed at their most balanced cut. A root pivot left with one child
//! drains its buffer into it and collapses (height − 1).
//!
//! Allocation per upsert (for sizing a reserve): the fast path writes one
//! block (the new root). Otherwise the batch is routed in one pass: every
//! node it reaches is rewritten once, as one node or two to three after a
//! split, plus at most one rewritten sibling when it is rebalanced, then the
//! root (plus a new root above it if it split). A batch of `n` messages thus
//! writes at most about `4 × n × height` blocks, and far fewer in practice,
//! since messages share nodes and most of them stay buffered in pivots. A
//! merge of two pivots whose buffers together overflow flushes the merged
//! pivot's largest child shares until it fits, which adds to that (in the
//! tests, a six-message batch at height 3 wrote up to 35 blocks, during mass
//! deletion). Every block written is also freed again if the call fails.
//!
//! Modules: [`store`] (the seam to the block layer), `content` (decoded
//! nodes, sharing one copy of their block), `tx` (checked reads and atomic
//! freeing), `pack` (split, merge, rotate), `flush` (moving messages down),
//! `upsert`, `lookup`, `scan`, `walk`, [`pending`] (a store's write buffer,
//! which lookups and scans apply on top of the tree).

#![deny(clippy::indexing_slicing)]

mod content;
mod flush;
mod lookup;
mod owned;
mod pack;
pub mod pending;
mod scan;
pub mod store;
mod tx;
mod upsert;
mod walk;

#[cfg(test)]
mod memstore;
#[cfg(test)]
mod tests;

pub use lookup::{lookup, lookup_at, lookup_ref, Found, Located};
pub use owned::owned_data_ptrs;
pub use scan::{scan, scan_at, scan_with};
pub use store::NodeStore;
pub use tx::root_level;
pub use upsert::{apply, upsert, validate, Applied};
pub use walk::{data_ptrs, walk};

use crate::error::Result;
use crate::format::Bptr;

/// A tree: root pointer and height (1 = the root is a leaf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    /// The root node.
    pub bp: Bptr,
    /// Levels from the root to the leaves, both included.
    pub height: u32,
}

/// Write an empty tree (one empty leaf).
pub fn create<S: NodeStore>(s: &S) -> Result<Root> {
    let (bp, _, ()) = s.write(|buf| {
        crate::format::node::LeafBuilder::new(buf).finish();
        Ok(())
    })?;
    Ok(Root { bp, height: 1 })
}
