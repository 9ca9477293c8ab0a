//! The data blocks a tree is responsible for.
//!
//! A data pointer in a tree is *owned* (the tree must free it some day) when
//! it is a `KDAT` key's current value, or a value that a later insert,
//! delete or clearb replaces or removes — those free it when they reach the
//! leaf. A value removed by a later `Clobber` is not owned: clobber frees
//! nothing at the leaf, because whoever sent it released the block already
//! (`Store::upsert_freeing`).
//!
//! Deciding that needs each key's message run in application order: the
//! leaf's value, then the buffered messages of its ancestors from the
//! lowest pivot up to the root, each buffer in arrival order. The walk
//! carries, down each path, the `KDAT` messages of the ancestors that route
//! into the subtree, so memory is bounded by the buffers on one path.

use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::msg::Op;
use crate::format::Bptr;
use crate::format::DecodeError;
use crate::CorruptKind;

use super::flush::data_ptr;
use super::store::NodeStore;
use super::tx::{read_node, root_level, view};
use super::Root;

/// A buffered `KDAT` message: key, op, argument.
type Pending = (Vec<u8>, Op, Vec<u8>);

/// Call `f` once with every data pointer the tree owns (see the module
/// docs). A `KDAT` value or insert that is not a pointer is corruption.
pub fn owned_data_ptrs<S: NodeStore>(
    s: &S,
    root: &Root,
    mut f: impl FnMut(Bptr) -> Result<()>,
) -> Result<()> {
    // (node, level, messages from ancestors routed here, oldest first)
    let mut stack: Vec<(Bptr, u16, Vec<Pending>)> = vec![(root.bp, root_level(root)?, Vec::new())];
    // Every node has one parent: a second visit is damage, never repeated.
    let mut seen = std::collections::HashSet::new();
    while let Some((bp, level, above)) = stack.pop() {
        if !seen.insert(bp.addr) {
            return Err(Error::corrupt(
                bp.addr,
                CorruptKind::Cycle,
                "node reached twice in one tree",
            ));
        }
        let r = read_node(s, &bp, level)?;
        let v = view(&r, bp.addr)?;
        let bad = |e: DecodeError| e.at(bp.addr);
        if v.is_leaf() {
            let mut leaf = Vec::new();
            for i in 0..v.nval() {
                let (k, val) = v.kv(i).map_err(bad)?;
                if k.first() == Some(&KDAT) {
                    leaf.push((k.to_vec(), val.to_vec()));
                }
            }
            resolve(bp, leaf, above, &mut f)?;
            continue;
        }
        let below = level
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt(bp.addr, CorruptKind::Level, "pivot at level 0"))?;
        let mut own: Vec<Pending> = Vec::new();
        for j in 0..v.nbuf() {
            let (op, k, arg) = v.msg(j).map_err(bad)?;
            if k.first() == Some(&KDAT) {
                own.push((k.to_vec(), op, arg.to_vec()));
            }
        }
        let n = v.nval();
        for i in (0..n).rev() {
            let (lo, child, _) = v.child(i).map_err(bad)?;
            let hi = if i + 1 < n {
                Some(v.key(i + 1).map_err(bad)?.to_vec())
            } else {
                None
            };
            let inside = |k: &[u8]| (i == 0 || k >= lo) && hi.as_deref().is_none_or(|h| k < h);
            // This node's messages are older than its ancestors'.
            let mut msgs: Vec<Pending> = own.iter().filter(|m| inside(&m.0)).cloned().collect();
            msgs.extend(above.iter().filter(|m| inside(&m.0)).cloned());
            stack.push((child, below, msgs));
        }
    }
    Ok(())
}

/// Apply each key's run (leaf value, then `msgs` in order) and report the
/// owned pointers.
fn resolve(
    at: Bptr,
    leaf: Vec<(Vec<u8>, Vec<u8>)>,
    msgs: Vec<Pending>,
    f: &mut impl FnMut(Bptr) -> Result<()>,
) -> Result<()> {
    let ptr = |k: &[u8], v: &[u8]| -> Result<Option<Bptr>> {
        match data_ptr(v) {
            Some(p) if p.is_none() => Ok(None),
            Some(p) => Ok(Some(p)),
            None => Err(Error::corrupt(
                at.addr,
                CorruptKind::Value,
                format!("data key {k:02x?}: value is not a pointer"),
            )),
        }
    };
    let mut cur: std::collections::BTreeMap<Vec<u8>, Option<Bptr>> =
        std::collections::BTreeMap::new();
    for (k, v) in &leaf {
        let p = ptr(k, v)?;
        cur.insert(k.clone(), p);
    }
    for (k, op, arg) in &msgs {
        let slot = cur.entry(k.clone()).or_insert(None);
        if let Some(p) = slot.take() {
            if *op != Op::Clobber {
                f(p)?;
            }
        }
        if *op == Op::Insert {
            *slot = ptr(k, arg)?;
        }
    }
    for p in cur.into_values().flatten() {
        f(p)?;
    }
    Ok(())
}
