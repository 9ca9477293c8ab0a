//! Point lookup: descend to the leaf that would hold a key, then apply the
//! key's buffered messages from the lowest pivot up to the root (oldest
//! first).
//!
//! Invariants kept here: the descent is bounded by the root's height, every
//! level is checked ([`read_node`]), and messages are applied to a copy, so a
//! lookup frees and changes nothing. A non-insert message with no value to
//! act on leaves the key absent. Messages the store has accepted but not yet
//! applied ([`NodeStore::pending`]) are applied last: they are the newest.

use crate::error::{Error, Result};
use crate::format::msg::{self, Op};
use crate::ids::BlockAddr;

use super::store::NodeStore;
use super::tx::{read_node, root_level, view};
use super::Root;

/// The messages one pivot buffers for the key.
type Run = (BlockAddr, Vec<(Op, Vec<u8>)>);

/// Point lookup: the key's value, with every buffered message on the path
/// applied in order, or `None` if it is absent (or was deleted).
pub fn lookup<S: NodeStore>(s: &S, root: &Root, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut level = root_level(root)?;
    let mut bp = root.bp;
    let mut runs: Vec<Run> = Vec::new();
    let base = loop {
        let r = read_node(s, &bp, level)?;
        let v = view(&r, bp.addr)?;
        let bad = |e: String| Error::corrupt(bp.addr, e);
        if v.is_leaf() {
            break match v.search(key).map_err(bad)? {
                Ok(i) => Some(v.kv(i).map_err(bad)?.1.to_vec()),
                Err(_) => None,
            };
        }
        let mut run = Vec::new();
        for j in v.msg_lower_bound(key).map_err(bad)?..v.nbuf() {
            let (op, k, arg) = v.msg(j).map_err(bad)?;
            if k != key {
                break;
            }
            run.push((op, arg.to_vec()));
        }
        runs.push((bp.addr, run));
        let (_, child, _) = v.child(v.route(key).map_err(bad)?).map_err(bad)?;
        bp = child;
        level = level
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt(bp.addr, "pivot at level 0"))?;
    };
    let mut cur = base;
    for (addr, run) in runs.iter().rev() {
        for (op, arg) in run {
            cur = msg::apply(*op, arg, cur).map_err(|e| Error::corrupt(*addr, e))?;
        }
    }
    let pending = s.pending();
    if pending.is_empty() {
        return Ok(cur);
    }
    super::pending::apply_key(pending, key, cur)
}
