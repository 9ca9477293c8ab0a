//! Moving messages down the tree: leaf application, pivot buffering and
//! flushing, and the rebuild of a pivot's child list afterwards (including
//! the merge or rotation of an underfull child with a sibling).
//!
//! A node given messages always takes all of them: a leaf applies them, and
//! a pivot buffers them, first flushing whole child shares (largest first)
//! until what stays fits its buffer. So a batch is routed through the tree
//! in one pass, top-down, and every node it touches is rewritten once
//! (plus splits and rebalancing).
//!
//! Invariants kept here:
//! - for every key, messages lower in the tree are older than messages higher
//!   up, and a buffer keeps equal keys in arrival order. All messages for one
//!   key route to the same child, and a flush moves a child's whole share
//!   (buffered and incoming, in order), so this holds after every flush;
//! - a buffer never exceeds its area;
//! - in a leaf, a run of messages is applied in order to the key's value;
//!   each time a `KDAT` pointer value (from the leaf or from an earlier
//!   message of the run) is replaced or removed by insert, delete or clearb,
//!   it is retired exactly once. Orphan messages (nothing to act on) vanish;
//! - a removed child (an emptied leaf, or a pivot left with no children and
//!   no messages) disappears from its parent; if it was child 0, the next
//!   child inherits the parent's lower bound.

use std::mem::take;

use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::msg::{self, Op};
use crate::format::{Bptr, BUFSPC, PTRSZ};
use crate::ids::BlockAddr;
use crate::CorruptKind;

use super::content::{decode, merge_msgs, msgs_used, Buf, Bytes, Child, Kv, Node, Pivot, TMsg};
use super::pack::{pack_leaf, pack_pivot, rebalance_pair};
use super::store::NodeStore;
use super::tx::Tx;

/// Apply sorted messages to a leaf's sorted records.
pub(crate) fn apply_leaf<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    addr: BlockAddr,
    kvs: Vec<Kv<S::Ref>>,
    msgs: Vec<TMsg<S::Ref>>,
) -> Result<Vec<Kv<S::Ref>>> {
    let mut out = Vec::with_capacity(kvs.len() + msgs.len());
    let mut kvs = kvs.into_iter().peekable();
    let mut msgs = msgs.into_iter().peekable();
    while let Some(TMsg { op, key, val }) = msgs.next() {
        while let Some(kv) = kvs.next_if(|(k, _)| *k < key) {
            out.push(kv);
        }
        let mut cur = kvs.next_if(|(k, _)| *k == key).map(|(_, v)| v);
        cur = apply_one(tx, addr, &key, op, &val, cur)?;
        while let Some(m) = msgs.next_if(|m| m.key == key) {
            cur = apply_one(tx, addr, &key, m.op, &m.val, cur)?;
        }
        if let Some(v) = cur {
            out.push((key, v));
        }
    }
    out.extend(kvs);
    Ok(out)
}

/// Apply one message in a leaf, retiring a data pointer it overwrites.
fn apply_one<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    addr: BlockAddr,
    key: &[u8],
    op: Op,
    arg: &Bytes<S::Ref>,
    cur: Option<Bytes<S::Ref>>,
) -> Result<Option<Bytes<S::Ref>>> {
    if key.first() == Some(&KDAT) && matches!(op, Op::Insert | Op::Delete | Op::Clearb) {
        if let Some(old) = &cur {
            let bp = data_ptr(old).ok_or_else(|| {
                Error::corrupt(
                    addr,
                    CorruptKind::Value,
                    format!("data key {key:02x?}: value is not a pointer"),
                )
            })?;
            if !bp.is_none() {
                tx.retire(bp);
            }
        }
    }
    // Insert and the removals never look at the old value (see
    // `msg::apply`): share the argument instead of copying it.
    match op {
        Op::Insert => Ok(Some(arg.clone())),
        Op::Delete | Op::Clearb | Op::Clobber => Ok(None),
        _ => msg::apply(op, arg, cur.map(|v| v.to_vec()))
            .map(|v| v.map(|v| Bytes::copy(&v)))
            .map_err(|e| e.context(format_args!("key {key:02x?}")).at(addr)),
    }
}

/// The block pointer a `KDAT` value holds, if it is one.
pub(crate) fn data_ptr(v: &[u8]) -> Option<Bptr> {
    if v.len() != PTRSZ {
        return None;
    }
    Bptr::from_slice(v).ok()
}

/// Push sorted messages (all in `child`'s range) into the child at `level`;
/// it takes all of them. Returns the child's replacement nodes, not yet
/// written (none if it emptied).
pub(crate) fn push_child<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    child: &Child<S::Ref>,
    level: u16,
    incoming: Vec<TMsg<S::Ref>>,
) -> Result<Vec<Node<S::Ref>>> {
    let r = tx.read(&child.bp, level)?;
    let addr = child.bp.addr;
    let node = decode(r, addr, &child.sep)?;
    tx.retire_node(child.bp);
    match node {
        Node::Leaf { lo, kvs } => Ok(pack_leaf(lo, apply_leaf(tx, addr, kvs, incoming)?)),
        Node::Pivot(mut p) => {
            give(tx, &mut p, addr, incoming, false)?;
            pack_pivot(p, addr)
        }
    }
}

/// One child's share of a pivot's messages: `msgs[start..end]`.
struct Share {
    child: usize,
    start: usize,
    end: usize,
    bytes: usize,
}

/// Sort sorted messages out by the child whose range holds them (child 0
/// for anything below separator 1), in one walk over both lists.
fn shares<R: Buf>(children: &[Child<R>], msgs: &[TMsg<R>]) -> Vec<Share> {
    let mut out = Vec::new();
    let (mut c, mut i) = (0, 0);
    while let Some(m) = msgs.get(i) {
        while children.get(c + 1).is_some_and(|n| n.sep <= m.key) {
            c += 1;
        }
        let next = children.get(c + 1).map(|n| &n.sep);
        let (start, mut bytes) = (i, 0);
        while let Some(m) = msgs.get(i).filter(|m| next.is_none_or(|s| m.key < *s)) {
            bytes += m.size();
            i += 1;
        }
        out.push(Share {
            child: c,
            start,
            end: i,
            bytes,
        });
    }
    out
}

/// Give a pivot sorted messages; it takes all of them. If they fit its
/// buffer beside what it holds (and `drain` is not set) they are simply
/// buffered. Otherwise whole child shares of buffered plus incoming
/// messages are pushed down — the largest first (by bytes, ties to the
/// leftmost) — until the rest fits (every share if `drain`), and the
/// pivot's child list is rebuilt.
pub(crate) fn give<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &mut Pivot<S::Ref>,
    addr: BlockAddr,
    incoming: Vec<TMsg<S::Ref>>,
    drain: bool,
) -> Result<()> {
    let all = merge_msgs(take(&mut p.msgs), incoming);
    let used = msgs_used(&all);
    if all.is_empty() || (!drain && used <= BUFSPC) {
        p.msgs = all;
        return Ok(());
    }
    if p.children.is_empty() {
        return Err(Error::corrupt(
            addr,
            CorruptKind::Count,
            "pivot without children",
        ));
    }
    let level = p
        .level
        .checked_sub(1)
        .ok_or_else(|| Error::corrupt(addr, CorruptKind::Level, "pivot at level 0"))?;
    let sh = shares(&p.children, &all);
    let mut order: Vec<usize> = (0..sh.len()).collect();
    order.sort_by_key(|&g| std::cmp::Reverse(sh.get(g).map_or(0, |s| s.bytes)));
    let mut flush = vec![false; sh.len()];
    let mut left = used;
    for g in order {
        if !drain && left <= BUFSPC {
            break;
        }
        if let (Some(f), Some(s)) = (flush.get_mut(g), sh.get(g)) {
            *f = true;
            left -= s.bytes;
        }
    }
    let mut kept = Vec::with_capacity(all.len());
    let mut groups: Vec<(usize, Vec<TMsg<S::Ref>>)> = Vec::new();
    let mut it = all.into_iter();
    for (s, &f) in sh.iter().zip(&flush) {
        let run = it.by_ref().take(s.end - s.start);
        if f {
            groups.push((s.child, run.collect()));
        } else {
            kept.extend(run);
        }
    }
    p.msgs = kept;
    // Right to left, so that replacing a child (and perhaps a sibling)
    // leaves the indices of the children still to be pushed unchanged.
    while let Some((c, msgs)) = groups.pop() {
        let child = p
            .children
            .get(c)
            .cloned()
            .ok_or_else(|| Error::Internal("child index out of range".into()))?;
        let parts = push_child(tx, &child, level, msgs)?;
        let left_pending = groups.last().is_some_and(|(l, _)| l + 1 == c);
        replace_child(tx, p, c, parts, left_pending)?;
    }
    Ok(())
}

/// Replace child `idx` of `p` with `parts` (rebalancing a lone underfull part
/// with a sibling first, but not with its left neighbour if `left_pending`:
/// that one is about to be replaced too), writing the new nodes.
pub(crate) fn replace_child<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &mut Pivot<S::Ref>,
    idx: usize,
    mut parts: Vec<Node<S::Ref>>,
    left_pending: bool,
) -> Result<()> {
    let (mut first, mut last) = (idx, idx);
    if parts.len() == 1 && p.children.len() > 1 && parts.iter().all(Node::underfull) {
        if let Some((sib, nodes)) = rebalance(tx, p, idx, &mut parts, left_pending)? {
            first = idx.min(sib);
            last = idx.max(sib);
            parts = nodes;
        }
    }
    let mut written = Vec::with_capacity(parts.len());
    for n in &parts {
        written.push(tx.write(n)?);
    }
    let lo = p
        .children
        .first()
        .map_or_else(Bytes::empty, |c| c.sep.clone());
    if first > last || last >= p.children.len() {
        return Err(Error::Internal("child index out of range".into()));
    }
    p.children.splice(first..=last, written);
    if let Some(c) = p.children.first_mut() {
        c.sep = lo;
    }
    Ok(())
}

/// Make a rebalanced node fit: a pivot merged from two siblings may hold
/// more buffered messages than a buffer takes, so flush its largest child
/// shares down until it fits, then repack it (its children may have split or
/// vanished meanwhile).
fn settle<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    n: Node<S::Ref>,
    addr: BlockAddr,
) -> Result<Vec<Node<S::Ref>>> {
    let Node::Pivot(mut p) = n else {
        return Ok(vec![n]);
    };
    give(tx, &mut p, addr, Vec::new(), false)?;
    if msgs_used(&p.msgs) > BUFSPC {
        return Err(Error::Internal(format!(
            "merged pivot (from {addr}) cannot fit its buffer"
        )));
    }
    pack_pivot(p, addr)
}

/// A sibling's index and the nodes replacing it and the part beside it.
type Rebalanced<R> = (usize, Vec<Node<R>>);

/// Merge or rotate the lone part replacing child `idx` with its sibling. The
/// sibling is the neighbour with the smaller recorded fill (left on ties;
/// never the left one if `avoid_left`).
/// Returns the sibling's index and the nodes replacing both, or `None` (and
/// `parts` untouched) if nothing would change.
fn rebalance<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &Pivot<S::Ref>,
    idx: usize,
    parts: &mut Vec<Node<S::Ref>>,
    avoid_left: bool,
) -> Result<Option<Rebalanced<S::Ref>>> {
    let left = idx
        .checked_sub(1)
        .filter(|_| !avoid_left)
        .and_then(|i| p.children.get(i).map(|c| (i, c)));
    let right = p.children.get(idx + 1).map(|c| (idx + 1, c));
    let (sib, sc) = match (left, right) {
        (Some(l), Some(r)) => {
            if l.1.fill <= r.1.fill {
                l
            } else {
                r
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Ok(None),
    };
    let sc = sc.clone();
    let level = p.level.saturating_sub(1);
    let r = tx.read(&sc.bp, level)?;
    let sn = decode(r, sc.bp.addr, &sc.sep)?;
    let Some(part) = parts.pop() else {
        return Ok(None);
    };
    let (l, rt) = if sib < idx { (sn, part) } else { (part, sn) };
    let (mut nodes, changed) = rebalance_pair(l, rt)?;
    if changed {
        tx.retire_node(sc.bp);
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            out.extend(settle(tx, n, sc.bp.addr)?);
        }
        return Ok(Some((sib, out)));
    }
    let mine = if sib < idx {
        nodes.pop()
    } else {
        nodes.into_iter().next()
    };
    parts.extend(mine);
    Ok(None)
}
