//! Moving messages down the tree: leaf application, pivot buffering and
//! flushing, and the rebuild of a pivot's child list afterwards (including
//! the merge or rotation of an underfull child with a sibling).
//!
//! Invariants kept here:
//! - for every key, messages lower in the tree are older than messages higher
//!   up, and a buffer keeps equal keys in arrival order. A node given
//!   messages takes, for each key, a prefix of that key's run (the oldest)
//!   and hands the rest back, so the giver keeps the newer suffix;
//! - a buffer never exceeds its area: what does not fit after a flush is
//!   handed back up (at the root, it is retried by the next pass);
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
use crate::format::msg::{self, Msg, Op};
use crate::format::{Bptr, BUFSPC, PTRSZ};
use crate::ids::BlockAddr;

use super::content::{decode, merge_msgs, msgs_used, Child, Kv, Node, Pivot};
use super::pack::{pack_leaf, pack_pivot, rebalance_pair};
use super::store::NodeStore;
use super::tx::{view, Tx};

/// Messages handed back to the giver: (index in what it gave, message), in
/// key order, arrival order among equal keys.
pub(crate) type Rest = Vec<(usize, Msg)>;

/// Apply sorted messages to a leaf's sorted records.
pub(crate) fn apply_leaf<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    addr: BlockAddr,
    kvs: Vec<Kv>,
    msgs: Vec<Msg>,
) -> Result<Vec<Kv>> {
    let mut out = Vec::with_capacity(kvs.len() + msgs.len());
    let mut kvs = kvs.into_iter().peekable();
    let mut msgs = msgs.into_iter().peekable();
    while let Some(Msg { op, key, val }) = msgs.next() {
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
    arg: &[u8],
    cur: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>> {
    if key.first() == Some(&KDAT) && matches!(op, Op::Insert | Op::Delete | Op::Clearb) {
        if let Some(old) = &cur {
            let bp = data_ptr(old).ok_or_else(|| {
                Error::corrupt(addr, format!("data key {key:02x?}: value is not a pointer"))
            })?;
            if !bp.is_none() {
                tx.retire(bp);
            }
        }
    }
    msg::apply(op, arg, cur).map_err(|e| Error::corrupt(addr, format!("key {key:02x?}: {e}")))
}

/// The block pointer a `KDAT` value holds, if it is one.
pub(crate) fn data_ptr(v: &[u8]) -> Option<Bptr> {
    if v.len() != PTRSZ {
        return None;
    }
    Bptr::from_slice(v).ok()
}

/// What pushing messages into one child produced.
pub(crate) struct Pushed {
    /// The child's replacement nodes, not yet written (none if it emptied).
    pub parts: Vec<Node>,
    /// Messages the child did not take.
    pub rest: Rest,
}

/// Push sorted messages (all in `child`'s range) into the child at `level`.
pub(crate) fn push_child<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    child: &Child,
    level: u16,
    incoming: Vec<Msg>,
) -> Result<Pushed> {
    let r = tx.read(&child.bp, level)?;
    let addr = child.bp.addr;
    let node = decode(&view(&r, addr)?, addr, &child.sep)?;
    drop(r);
    tx.retire(child.bp);
    match node {
        Node::Leaf { lo, kvs } => {
            let kvs = apply_leaf(tx, addr, kvs, incoming)?;
            Ok(Pushed {
                parts: pack_leaf(lo, kvs),
                rest: Vec::new(),
            })
        }
        Node::Pivot(mut p) => {
            let rest = flush_pivot(tx, &mut p, addr, incoming, false)?;
            Ok(Pushed {
                parts: pack_pivot(p, addr)?,
                rest,
            })
        }
    }
}

/// Where a message being sorted out at a pivot came from.
#[derive(Clone, Copy)]
enum Src {
    /// The pivot's own buffer, position `j`.
    Old(usize),
    /// The incoming batch, position `i`.
    New(usize),
}

/// Give a pivot sorted messages. If they fit its buffer (and `force` is not
/// set) they are simply buffered. Otherwise one victim child — the one whose
/// share of buffer plus incoming has the most bytes, ties to the leftmost —
/// receives its whole share; then as many remaining incoming messages as fit
/// are buffered, in key order, and the others are handed back.
pub(crate) fn flush_pivot<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &mut Pivot,
    addr: BlockAddr,
    incoming: Vec<Msg>,
    force: bool,
) -> Result<Rest> {
    let room = BUFSPC.saturating_sub(msgs_used(&p.msgs));
    if !force && msgs_used(&incoming) <= room {
        p.msgs = merge_msgs(take(&mut p.msgs), incoming);
        return Ok(Vec::new());
    }
    let combined = combine(take(&mut p.msgs), incoming);
    let (victim, split) = split_victim(p, combined);
    let Split {
        group_src,
        group,
        mut old,
        mut pending,
    } = split;
    let mut parts = None;
    if !group.is_empty() {
        let child = p
            .children
            .get(victim)
            .cloned()
            .ok_or_else(|| Error::corrupt(addr, "pivot without children"))?;
        let level = p
            .level
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt(addr, "pivot at level 0"))?;
        let pushed = push_child(tx, &child, level, group)?;
        for (g, m) in pushed.rest {
            match group_src.get(g) {
                Some(Src::Old(j)) => old.push((*j, m)),
                Some(Src::New(i)) => pending.push((*i, m)),
                None => return Err(Error::Internal("flush handed back a stranger".into())),
            }
        }
        parts = Some(pushed.parts);
    }
    let rest = refill(p, old, pending);
    if let Some(parts) = parts {
        replace_child(tx, p, victim, parts)?;
    }
    Ok(rest)
}

/// A pivot's messages sorted out around its victim child.
struct Split {
    /// Where each message of `group` came from.
    group_src: Vec<Src>,
    /// The victim's share, in order.
    group: Vec<Msg>,
    /// Buffered messages for other children, with their buffer positions.
    old: Vec<(usize, Msg)>,
    /// Incoming messages for other children, with their batch positions.
    pending: Rest,
}

/// Choose the victim — the child whose share of `combined` has the most
/// bytes, ties to the leftmost — and sort the messages out around it.
fn split_victim(p: &Pivot, combined: Vec<(Src, Msg)>) -> (usize, Split) {
    let routes: Vec<usize> = combined.iter().map(|(_, m)| p.route(&m.key)).collect();
    let mut bytes = vec![0usize; p.children.len()];
    for ((_, m), &c) in combined.iter().zip(&routes) {
        if let Some(b) = bytes.get_mut(c) {
            *b += m.size();
        }
    }
    let mut victim = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if bytes.get(victim).is_some_and(|&best| b > best) {
            victim = i;
        }
    }
    let mut sp = Split {
        group_src: Vec::new(),
        group: Vec::new(),
        old: Vec::new(),
        pending: Vec::new(),
    };
    for ((src, m), c) in combined.into_iter().zip(routes) {
        match (c == victim, src) {
            (true, _) => {
                sp.group_src.push(src);
                sp.group.push(m);
            }
            (false, Src::Old(j)) => sp.old.push((j, m)),
            (false, Src::New(i)) => sp.pending.push((i, m)),
        }
    }
    (victim, sp)
}

/// Merge a buffer and an incoming batch, both sorted, old first on ties.
fn combine(old: Vec<Msg>, new: Vec<Msg>) -> Vec<(Src, Msg)> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut old = old.into_iter().enumerate().peekable();
    for (i, m) in new.into_iter().enumerate() {
        while let Some((j, o)) = old.next_if(|(_, o)| o.key <= m.key) {
            out.push((Src::Old(j), o));
        }
        out.push((Src::New(i), m));
    }
    out.extend(old.map(|(j, o)| (Src::Old(j), o)));
    out
}

/// Rebuild a pivot's buffer from the old messages it keeps and as many
/// pending incoming ones as fit (stopping at the first that does not, so each
/// key keeps a prefix of its run); returns the ones handed back.
fn refill(p: &mut Pivot, mut old: Vec<(usize, Msg)>, mut pending: Rest) -> Rest {
    old.sort_by_key(|(j, _)| *j);
    pending.sort_by(|(i, a), (j, b)| a.key.cmp(&b.key).then(i.cmp(j)));
    let kept: Vec<Msg> = old.into_iter().map(|(_, m)| m).collect();
    let mut used = msgs_used(&kept);
    let mut accepted = Vec::new();
    let mut pending = pending.into_iter().peekable();
    while let Some((_, m)) = pending.next_if(|(_, m)| used + m.size() <= BUFSPC) {
        used += m.size();
        accepted.push(m);
    }
    p.msgs = merge_msgs(kept, accepted);
    pending.collect()
}

/// Replace child `idx` of `p` with `parts` (rebalancing a lone underfull part
/// with a sibling first), writing the new nodes.
pub(crate) fn replace_child<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &mut Pivot,
    idx: usize,
    mut parts: Vec<Node>,
) -> Result<()> {
    let (mut first, mut last) = (idx, idx);
    if parts.len() == 1 && p.children.len() > 1 && parts.iter().all(Node::underfull) {
        if let Some((sib, nodes)) = rebalance(tx, p, idx, &mut parts)? {
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
        .map(|c| c.sep.clone())
        .unwrap_or_default();
    if first > last || last >= p.children.len() {
        return Err(Error::Internal("child index out of range".into()));
    }
    p.children.splice(first..=last, written);
    if let Some(c) = p.children.first_mut() {
        c.sep = lo;
    }
    Ok(())
}

/// Most flushes spent fitting a merged pivot's buffer; far above need, so
/// that a bug becomes an error rather than a hang.
const MAX_SETTLE: usize = 1 << 16;

/// Make a rebalanced node fit: a pivot merged from two siblings may hold
/// more buffered messages than a buffer takes, so flush its largest child
/// groups down until it fits, then repack it (its children may have split or
/// vanished meanwhile).
fn settle<S: NodeStore>(tx: &mut Tx<'_, S>, n: Node, addr: BlockAddr) -> Result<Vec<Node>> {
    let Node::Pivot(mut p) = n else {
        return Ok(vec![n]);
    };
    let mut rounds = 0;
    while msgs_used(&p.msgs) > BUFSPC {
        rounds += 1;
        if rounds > MAX_SETTLE || p.children.is_empty() {
            return Err(Error::Internal(format!(
                "merged pivot (from {addr}) cannot fit its buffer"
            )));
        }
        let rest = flush_pivot(tx, &mut p, addr, Vec::new(), true)?;
        if !rest.is_empty() {
            return Err(Error::Internal(
                "a flush with nothing given handed back".into(),
            ));
        }
    }
    pack_pivot(p, addr)
}

/// Merge or rotate the lone part replacing child `idx` with its sibling. The
/// sibling is the neighbour with the smaller recorded fill (left on ties).
/// Returns the sibling's index and the nodes replacing both, or `None` (and
/// `parts` untouched) if nothing would change.
fn rebalance<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    p: &Pivot,
    idx: usize,
    parts: &mut Vec<Node>,
) -> Result<Option<(usize, Vec<Node>)>> {
    let left = idx
        .checked_sub(1)
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
    let sn = decode(&view(&r, sc.bp.addr)?, sc.bp.addr, &sc.sep)?;
    drop(r);
    let Some(part) = parts.pop() else {
        return Ok(None);
    };
    let (l, rt) = if sib < idx { (sn, part) } else { (part, sn) };
    let (mut nodes, changed) = rebalance_pair(l, rt)?;
    if changed {
        tx.retire(sc.bp);
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
