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
//!   [`NodeView::fill`];
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
//! Modules: [`store`] (the seam to the block layer), `content` (decoded
//! nodes), `tx` (checked reads and atomic freeing), `pack` (split, merge,
//! rotate), `flush` (moving messages down), `upsert`, `lookup`, `scan`,
//! `walk`.

mod content;
mod flush;
mod lookup;
mod pack;
mod scan;
pub mod store;
mod tx;
mod upsert;
mod walk;

#[cfg(test)]
mod memstore;
#[cfg(test)]
mod tests;

pub use lookup::lookup;
pub use scan::scan;
pub use store::NodeStore;
pub use upsert::upsert;
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
