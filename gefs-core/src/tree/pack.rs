//! Packing node contents into blocks: splits (one node's content into as many
//! balanced nodes as it needs), and the merge or rotation of two siblings.
//!
//! Invariants kept here:
//! - every node produced fits its block (key area, and buffer for pivots),
//!   except that a pivot merged from two siblings may carry more buffered
//!   messages than one buffer holds: the caller flushes it before writing;
//! - parts are in key order and their lower bounds ascend strictly: a later
//!   leaf part starts at its first key, a later pivot part at its first
//!   child's separator, so each separator is ≤ everything in its part and
//!   > everything in the parts before it;
//! - a pivot's buffered messages go to the part whose range holds their key,
//!   keeping their order; a pivot with buffered messages is never dropped;
//! - the first part keeps the lower bound of the content it came from.
//!
//! Rebalancing rule: siblings whose combined key area would be at most three
//! quarters of a block merge; otherwise
//! their contents are redistributed at the most balanced cut that fits both
//! sides (a rotation), unless the current boundary is already that cut.

use crate::error::{Error, Result};
use crate::format::node::{child_size, kv_size};
use crate::format::{BUFSPC, LEAFSPC, PIVSPC};
use crate::ids::BlockAddr;

use super::content::{fits, keys_used, leaf_used, msgs_used, Buf, Bytes, Kv, Node, Pivot};

/// Boundaries `[0, c1, …, n]` splitting items of these sizes into the fewest
/// balanced runs of at most `cap` bytes each (every item is ≤ `cap`).
fn cuts(sizes: &[usize], cap: usize) -> Vec<usize> {
    let n = sizes.len();
    let total: usize = sizes.iter().sum();
    if total <= cap || n <= 1 {
        return vec![0, n];
    }
    let mut k = total.div_ceil(cap).max(2);
    while k < n {
        let b = balanced(sizes, total, k);
        if b.windows(2)
            .all(|w| matches!(w, [x, y] if run(sizes, *x, *y) <= cap))
        {
            return b;
        }
        k += 1;
    }
    (0..=n).collect()
}

fn run(sizes: &[usize], from: usize, to: usize) -> usize {
    sizes.get(from..to).map_or(0, |s| s.iter().sum())
}

/// `k` non-empty runs (`k < n`), each cut where the prefix sum is nearest to
/// its share of the total.
fn balanced(sizes: &[usize], total: usize, k: usize) -> Vec<usize> {
    let n = sizes.len();
    let mut b = vec![0];
    let (mut i, mut prefix) = (0, 0);
    for j in 1..k {
        let target = total * j / k;
        let last = b.last().copied().unwrap_or(0);
        while i < n - (k - j) {
            let s = sizes.get(i).copied().unwrap_or(0);
            if i > last && prefix + s / 2 >= target {
                break;
            }
            prefix += s;
            i += 1;
        }
        b.push(i);
    }
    b.push(n);
    b
}

/// Split a leaf's records into the nodes they need (none if there are none).
pub(crate) fn pack_leaf<R: Buf>(lo: Bytes<R>, mut kvs: Vec<Kv<R>>) -> Vec<Node<R>> {
    if kvs.is_empty() {
        return Vec::new();
    }
    let sizes: Vec<usize> = kvs.iter().map(|(k, v)| kv_size(k.len(), v.len())).collect();
    let b = cuts(&sizes, LEAFSPC);
    let mut parts = Vec::with_capacity(b.len());
    for &at in b.iter().skip(1).rev().skip(1) {
        let tail = kvs.split_off(at);
        let lo = tail
            .first()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(Bytes::empty);
        parts.push(Node::Leaf { lo, kvs: tail });
    }
    parts.push(Node::Leaf { lo, kvs });
    parts.reverse();
    parts
}

/// Split a pivot's children and messages into the nodes they need. A pivot
/// with no children left yields nothing, unless it still holds messages,
/// which is an internal error rather than silent loss.
pub(crate) fn pack_pivot<R: Buf>(mut p: Pivot<R>, addr: BlockAddr) -> Result<Vec<Node<R>>> {
    if p.children.is_empty() {
        if p.msgs.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::Internal(format!(
            "pivot {addr} lost its last child but holds {} messages",
            p.msgs.len()
        )));
    }
    let whole = Node::Pivot(p);
    if fits(&whole) {
        return Ok(vec![whole]);
    }
    let Node::Pivot(pv) = whole else {
        return Err(Error::Internal("pivot became a leaf".into()));
    };
    p = pv;
    let sizes: Vec<usize> = p.children.iter().map(|c| child_size(c.sep.len())).collect();
    let b = cuts(&sizes, PIVSPC);
    let mut parts = Vec::with_capacity(b.len());
    for &at in b.iter().skip(1).rev().skip(1) {
        let children = p.children.split_off(at);
        let lo = children
            .first()
            .map(|c| c.sep.clone())
            .unwrap_or_else(Bytes::empty);
        let m = p.msgs.partition_point(|m| m.key < lo);
        let msgs = p.msgs.split_off(m);
        parts.push(Node::Pivot(Pivot {
            level: p.level,
            children,
            msgs,
        }));
    }
    parts.push(Node::Pivot(p));
    parts.reverse();
    if !parts.iter().all(fits) {
        return Err(Error::Internal(format!(
            "split of pivot {addr} does not fit"
        )));
    }
    Ok(parts)
}

/// Merge or rotate two adjacent siblings (`left` before `right`). Returns the
/// replacement nodes and whether anything changed; unchanged input comes
/// back as `[left, right]`.
pub(crate) fn rebalance_pair<R: Buf>(
    left: Node<R>,
    right: Node<R>,
) -> Result<(Vec<Node<R>>, bool)> {
    match (left, right) {
        (Node::Leaf { lo, kvs }, Node::Leaf { lo: rlo, kvs: rkvs }) => {
            Ok(rebalance_leaves(lo, kvs, rlo, rkvs))
        }
        (Node::Pivot(l), Node::Pivot(r)) if l.level == r.level => rebalance_pivots(l, r),
        _ => Err(Error::Internal(
            "siblings of different kinds or levels".into(),
        )),
    }
}

fn rebalance_leaves<R: Buf>(
    lo: Bytes<R>,
    mut kvs: Vec<Kv<R>>,
    rlo: Bytes<R>,
    rkvs: Vec<Kv<R>>,
) -> (Vec<Node<R>>, bool) {
    let orig = kvs.len();
    kvs.extend(rkvs);
    let total = leaf_used(&kvs);
    if total <= LEAFSPC * 3 / 4 {
        return (vec![Node::Leaf { lo, kvs }], true);
    }
    let sizes: Vec<usize> = kvs.iter().map(|(k, v)| kv_size(k.len(), v.len())).collect();
    let mut best: Option<(usize, usize)> = None;
    let mut left = 0;
    for (c, s) in sizes.iter().enumerate().take(sizes.len().saturating_sub(1)) {
        left += s;
        let right = total - left;
        if left <= LEAFSPC && right <= LEAFSPC {
            let d = left.abs_diff(right);
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((c + 1, d));
            }
        }
    }
    let cut = match best {
        Some((c, _)) if c != orig => c,
        _ => orig,
    };
    let changed = cut != orig;
    let tail = kvs.split_off(cut);
    let rlo = if changed {
        tail.first()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(Bytes::empty)
    } else {
        rlo
    };
    (
        vec![Node::Leaf { lo, kvs }, Node::Leaf { lo: rlo, kvs: tail }],
        changed,
    )
}

fn rebalance_pivots<R: Buf>(mut l: Pivot<R>, r: Pivot<R>) -> Result<(Vec<Node<R>>, bool)> {
    let orig = l.children.len();
    let level = l.level;
    l.children.extend(r.children);
    l.msgs.extend(r.msgs);
    let keys = keys_used(&l.children);
    if keys <= PIVSPC * 3 / 4 {
        return Ok((vec![Node::Pivot(l)], true));
    }
    let cut = best_pivot_cut(&l).unwrap_or(orig);
    let tail = l.children.split_off(cut);
    let tlo = tail
        .first()
        .map(|c| c.sep.clone())
        .unwrap_or_else(Bytes::empty);
    let m = l.msgs.partition_point(|m| m.key < tlo);
    let tmsgs = l.msgs.split_off(m);
    let right = Pivot {
        level,
        children: tail,
        msgs: tmsgs,
    };
    Ok((vec![Node::Pivot(l), Node::Pivot(right)], cut != orig))
}

/// The cut of a combined pivot into two that fits both sides and balances
/// their key areas best.
fn best_pivot_cut<R: Buf>(p: &Pivot<R>) -> Option<usize> {
    let z = child_size(0);
    let sizes: Vec<usize> = p.children.iter().map(|c| child_size(c.sep.len())).collect();
    let all: usize = sizes.iter().skip(1).sum();
    let bufs = msgs_used(&p.msgs);
    let (mut inner, mut m, mut lbuf) = (0, 0, 0);
    let mut best: Option<(usize, usize)> = None;
    for c in 1..p.children.len() {
        if c > 1 {
            inner += sizes.get(c - 1).copied().unwrap_or(0);
        }
        let sep = p.children.get(c).map_or(&[][..], |ch| &ch.sep[..]);
        while let Some(msg) = p.msgs.get(m).filter(|msg| &msg.key[..] < sep) {
            lbuf += msg.size();
            m += 1;
        }
        let lk = z + inner;
        let rk = z + all - inner - sizes.get(c).copied().unwrap_or(0);
        if lk <= PIVSPC && rk <= PIVSPC && lbuf <= BUFSPC && bufs - lbuf <= BUFSPC {
            let d = lk.abs_diff(rk);
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((c, d));
            }
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_balance_and_fit() {
        let sizes = vec![100; 50];
        assert_eq!(cuts(&sizes, 5000), vec![0, 50]);
        let b = cuts(&sizes, 4000);
        assert_eq!(b, vec![0, 25, 50]);
        let b = cuts(&sizes, 1000);
        assert!(b.windows(2).all(|w| run(&sizes, w[0], w[1]) <= 1000));
        assert_eq!(b.len(), 6);
        let sizes = vec![900, 900, 900];
        assert_eq!(cuts(&sizes, 1000), vec![0, 1, 2, 3]);
    }

    #[test]
    fn leaf_split_lower_bounds() {
        let kvs: Vec<Kv<std::sync::Arc<[u8]>>> = (0u32..200)
            .map(|i| (Bytes::copy(&i.to_be_bytes()), Bytes::copy(&[0; 120])))
            .collect();
        let parts = pack_leaf(Bytes::empty(), kvs);
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].lo()[..], b"");
        assert_eq!(&parts[1].lo()[..], 100u32.to_be_bytes());
        assert!(parts.iter().all(fits));
    }
}
