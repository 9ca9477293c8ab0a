//! Visiting every node of a tree, and every data pointer it holds.
//!
//! Invariants kept here: the walk is depth-first, left to right, pre-order;
//! its depth is bounded by the root's height and each child's level is
//! checked against its parent's, and a node reached twice is an error (in a
//! tree every node has one parent), so a damaged tree cannot make it loop,
//! recurse or repeat work without bound: it visits each block of the image
//! at most once. Every undecodable record is an error naming its block.

use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::msg::Op;
use crate::format::node::NodeView;
use crate::format::Bptr;
use crate::format::DecodeError;
use crate::CorruptKind;

use super::flush::data_ptr;
use super::store::NodeStore;
use super::tx::{read_node, root_level, view};
use super::Root;

/// Visit every node of the tree, depth-first and left to right, parents
/// before children, with the pointer that led to it (its level is
/// [`NodeView::level`]). An error from `visit` stops the walk and is
/// returned.
pub fn walk<S: NodeStore>(
    s: &S,
    root: &Root,
    mut visit: impl FnMut(&Bptr, &NodeView<'_>) -> Result<()>,
) -> Result<()> {
    let mut stack = vec![(root.bp, root_level(root)?)];
    let mut seen = std::collections::HashSet::new();
    while let Some((bp, level)) = stack.pop() {
        if !seen.insert(bp.addr) {
            return Err(Error::corrupt(
                bp.addr,
                CorruptKind::Cycle,
                "node reached twice in one tree",
            ));
        }
        let r = read_node(s, &bp, level)?;
        let v = view(&r, bp.addr)?;
        visit(&bp, &v)?;
        if v.is_leaf() {
            continue;
        }
        let below = level
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt(bp.addr, CorruptKind::Level, "pivot at level 0"))?;
        for i in (0..v.nval()).rev() {
            let (_, child, _) = v.child(i).map_err(|e| e.at(bp.addr))?;
            stack.push((child, below));
        }
    }
    Ok(())
}

/// Call `f` with every data-block pointer the tree references: the values of
/// `KDAT` keys in leaves, and the arguments of `KDAT` inserts still buffered
/// in pivots (including ones a later message will overwrite: those blocks
/// are freed only when the messages reach a leaf, so they are still
/// reachable). A `KDAT` value that is not a pointer is corruption.
pub fn data_ptrs<S: NodeStore>(
    s: &S,
    root: &Root,
    mut f: impl FnMut(Bptr) -> Result<()>,
) -> Result<()> {
    walk(s, root, |bp, v| {
        let bad = |e: DecodeError| e.at(bp.addr);
        let mut each = |key: &[u8], val: &[u8]| -> Result<()> {
            if key.first() != Some(&KDAT) {
                return Ok(());
            }
            match data_ptr(val) {
                Some(p) if p.is_none() => Ok(()),
                Some(p) => f(p),
                None => Err(Error::corrupt(
                    bp.addr,
                    CorruptKind::Value,
                    format!("data key {key:02x?}: value is not a pointer"),
                )),
            }
        };
        if v.is_leaf() {
            for i in 0..v.nval() {
                let (k, val) = v.kv(i).map_err(bad)?;
                each(k, val)?;
            }
        } else {
            for j in 0..v.nbuf() {
                let (op, k, arg) = v.msg(j).map_err(bad)?;
                if op == Op::Insert {
                    each(k, arg)?;
                }
            }
        }
        Ok(())
    })
}
