//! Checked node reads, and the bookkeeping that makes one upsert atomic.
//!
//! Invariants kept here:
//! - every node the tree reads comes through [`read_node`], which checks that
//!   its level is exactly the one its position demands, so descent is bounded
//!   by the root's height and a misplaced node is [`Error::Corrupt`] naming
//!   its block;
//! - during an upsert nothing is freed early: [`Tx`] records every block it
//!   wrote and every block or data pointer the new tree stops referencing;
//!   [`Tx::commit`] frees exactly the latter, [`Tx::abort`] exactly the
//!   former, so the old root stays whole on failure and nothing leaks on
//!   success.

use crate::error::{Error, Result};
use crate::format::node::NodeView;
use crate::format::superblock::MAX_HEIGHT;
use crate::format::Bptr;
use crate::ids::BlockAddr;
use crate::CorruptKind;

use super::content::{encode, Child, Node};
use super::store::NodeStore;
use super::Root;

/// Check a root's height and return the level its node must have.
pub fn root_level(root: &Root) -> Result<u16> {
    if root.height == 0 || root.height > MAX_HEIGHT {
        return Err(Error::corrupt(
            root.bp.addr,
            CorruptKind::Level,
            format!("tree height {} out of range", root.height),
        ));
    }
    u16::try_from(root.height - 1)
        .map_err(|_| Error::corrupt(root.bp.addr, CorruptKind::Level, "tree height out of range"))
}

/// A view of a node read from `addr`.
pub(crate) fn view(buf: &[u8], addr: BlockAddr) -> Result<NodeView<'_>> {
    NodeView::new(buf).map_err(|e| e.at(addr))
}

/// Read the node `bp` points to and check that it sits at `level` (the
/// store validated the node itself when it loaded it).
pub(crate) fn read_node<S: NodeStore>(s: &S, bp: &Bptr, level: u16) -> Result<S::Ref> {
    let r = s.read(bp)?;
    if crate::format::node::level_of(&r) != Some(level) {
        let v = view(&r, bp.addr)?;
        return Err(Error::corrupt(
            bp.addr,
            CorruptKind::Level,
            format!(
                "{} at level {} where level {level} was expected",
                if v.is_leaf() { "leaf" } else { "pivot" },
                v.level()
            ),
        ));
    }
    Ok(r)
}

/// The state of one upsert: what it wrote, and what it made unreachable.
pub(crate) struct Tx<'s, S: NodeStore> {
    pub s: &'s S,
    written: Vec<Bptr>,
    garbage: Vec<Bptr>,
    /// How many of `garbage` are tree nodes (the rest are data blocks).
    dead_nodes: usize,
}

impl<'s, S: NodeStore> Tx<'s, S> {
    pub fn new(s: &'s S) -> Tx<'s, S> {
        Tx {
            s,
            written: Vec::new(),
            garbage: Vec::new(),
            dead_nodes: 0,
        }
    }

    /// Read a node (see [`read_node`]).
    pub fn read(&self, bp: &Bptr, level: u16) -> Result<S::Ref> {
        read_node(self.s, bp, level)
    }

    /// Write a node; returns the pointer record its parent keeps.
    pub fn write(&mut self, n: &Node<S::Ref>) -> Result<Child<S::Ref>> {
        let (bp, _, fill) = self.s.write(|buf| encode(n, buf))?;
        self.written.push(bp);
        Ok(Child {
            sep: n.lo(),
            bp,
            fill,
        })
    }

    /// Note that the new tree no longer references the data block `bp`
    /// (its pointer was overwritten or deleted in a leaf).
    pub fn retire(&mut self, bp: Bptr) {
        self.garbage.push(bp);
    }

    /// Note that the new tree no longer references the node `bp` (replaced
    /// by copy-on-write, merged away, or written earlier in this operation
    /// and superseded).
    pub fn retire_node(&mut self, bp: Bptr) {
        self.garbage.push(bp);
        self.dead_nodes += 1;
    }

    /// Nodes written minus nodes retired so far.
    pub fn node_delta(&self) -> i64 {
        self.written.len() as i64 - self.dead_nodes as i64
    }

    /// The operation succeeded: free what the new tree no longer references.
    ///
    /// The new root is already the result, so a failing free cannot undo the
    /// operation; the block is leaked and the store, which knows why, is
    /// responsible for latching its own failure (see [`NodeStore::free`]).
    pub fn commit(self) {
        for bp in &self.garbage {
            let _ = self.s.free(bp);
        }
    }

    /// The operation failed: free every block it wrote (none is reachable
    /// from the old root) and nothing else.
    pub fn abort(self) {
        for bp in &self.written {
            let _ = self.s.free(bp);
        }
    }
}
