//! Ordered range scans that merge buffered messages with leaf values,
//! without copying: entries are handed to a visitor as slices of the cached
//! leaf they live in, unless a message changed them.
//!
//! A scan keeps the path from the root to the current leaf: for each pivot
//! its current child and the next of its buffered messages, for the leaf the
//! next record. The next entry is the leaf's next record, unless some pivot
//! (or the store's pending runs, [`NodeStore::pending`]) holds a message for
//! a key at or before it — the *frontier*, the smallest unconsumed message
//! key, which changes only when messages are consumed. Messages are rare
//! beside records, so most entries cost one key comparison and are passed
//! as they are. For a key with messages, the leaf's value (if any) gets the
//! messages of the lowest pivot first, then those above, then the pending
//! runs (the tree's ordering invariant); an entry that ends up absent
//! (deleted, or an orphan message) is skipped. When the leaf runs out,
//! messages below its upper bound come first, then the scan moves to the
//! next leaf.
//!
//! Invariants kept here: descent is bounded by the root's height and every
//! level is checked; one call loads each node at most once (a node reached
//! twice is [`Error::Corrupt`]: a damaged pivot naming one child twice would
//! otherwise repeat a subtree, and a chain of such pivots multiply the
//! work); the entries visited strictly ascend and lie after the start (an
//! entry that does not is corruption), so a caller resuming from the last
//! key it got always makes progress; nothing is pinned between calls (each
//! call re-enters from the root it is given, so a caller resumes by passing
//! the last key it got as an excluded start); nothing is modified or freed.

use std::collections::HashSet;
use std::ops::Bound;

use crate::error::{Error, Result};
use crate::format::msg;
use crate::format::Bptr;
use crate::format::DecodeError;
use crate::ids::BlockAddr;
use crate::CorruptKind;

use super::lookup::Located;
use super::pending;
use super::store::NodeStore;
use super::tx::{read_node, root_level, view};
use super::Root;

/// Ordered range scan over `[from, to)` (or whatever bounds are given) of at
/// most `limit` live entries, merging buffered messages with leaf values.
/// Deleted keys and orphan messages are skipped. To continue a scan, pass the
/// last key returned as `Bound::Excluded` start, with the current root.
pub fn scan<S: NodeStore>(
    s: &S,
    root: &Root,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    scan_with(s, root, from, to, limit, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// [`scan`], with the block each value was found in (see [`Located`]).
pub fn scan_at<S: NodeStore>(
    s: &S,
    root: &Root,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Located)>> {
    let mut out = Vec::new();
    scan_located(s, root, from, to, limit, |k, v, addr| {
        let val = v.to_vec();
        out.push((k.to_vec(), Located { val, addr }));
        Ok(())
    })?;
    Ok(out)
}

/// [`scan`], handing each entry to `f` (key, value) instead of collecting
/// them: values no message changed are slices of the cached leaf. Returns
/// the number of entries visited. An error from `f` stops the scan.
pub fn scan_with<S: NodeStore>(
    s: &S,
    root: &Root,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    limit: usize,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<usize> {
    scan_located(s, root, from, to, limit, |k, v, _| f(k, v))
}

/// The scan itself: `f` also gets the block each value was found in.
fn scan_located<S: NodeStore>(
    s: &S,
    root: &Root,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    limit: usize,
    mut f: impl FnMut(&[u8], &[u8], BlockAddr) -> Result<()>,
) -> Result<usize> {
    let top = root_level(root)?;
    if limit == 0 || empty_range(from, to) {
        return Ok(0);
    }
    let start = match from {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    let skip = match from {
        Bound::Excluded(k) => Some(k),
        _ => None,
    };
    let mut c = Cursor {
        s,
        top,
        end: to,
        pivots: Vec::new(),
        leaf: None,
        hi: None,
        pending: pending::Cursor::new(s.pending(), start),
        front: None,
        loaded: HashSet::new(),
    };
    c.load(0, root.bp, start)?;
    c.frontier()?;
    // The last key visited (one buffer, reused).
    let mut prev: Option<Vec<u8>> = None;
    let mut visit = |k: &[u8], v: &[u8], at: BlockAddr| {
        ascending(root, start, prev.as_deref(), k)?;
        let p = prev.get_or_insert_with(Vec::new);
        p.clear();
        p.extend_from_slice(k);
        f(k, v, at)
    };
    let mut n = 0;
    while n < limit {
        let Some(done) = c.step(skip, &mut visit)? else {
            break;
        };
        n += usize::from(done);
    }
    Ok(n)
}

/// An entry about to be visited must come after the start and after the
/// previous entry; a tree whose keys are out of place breaks this.
fn ascending(root: &Root, start: Option<&[u8]>, prev: Option<&[u8]>, k: &[u8]) -> Result<()> {
    let after_prev = prev.is_none_or(|p| p < k);
    if after_prev && start.is_none_or(|s| s <= k) {
        return Ok(());
    }
    Err(Error::corrupt(
        root.bp.addr,
        CorruptKind::KeyOrder,
        format!(
            "scan met key {} out of order (a node below holds keys outside its range)",
            crate::format::key::show(k)
        ),
    ))
}

fn empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    }
}

/// A pivot on the path: its current child and its next buffered message.
struct Pivot<R> {
    node: R,
    addr: BlockAddr,
    child: usize,
    nval: usize,
    msg: usize,
    nbuf: usize,
}

/// The leaf on the path and its next record.
struct Leaf<R> {
    node: R,
    addr: BlockAddr,
    next: usize,
    nval: usize,
}

struct Cursor<'a, S: NodeStore> {
    s: &'a S,
    top: u16,
    end: Bound<&'a [u8]>,
    /// Root first.
    pivots: Vec<Pivot<S::Ref>>,
    leaf: Option<Leaf<S::Ref>>,
    /// The current leaf's upper bound (none: the end of the tree).
    hi: Option<Vec<u8>>,
    pending: pending::Cursor<'a>,
    /// The smallest unconsumed message key (pivots and pending runs).
    front: Option<Vec<u8>>,
    /// Every node loaded by this scan.
    loaded: HashSet<BlockAddr>,
}

impl<S: NodeStore> Cursor<'_, S> {
    fn beyond(&self, k: &[u8]) -> bool {
        match self.end {
            Bound::Included(e) => k > e,
            Bound::Excluded(e) => k >= e,
            Bound::Unbounded => false,
        }
    }

    /// Load `bp` as depth `d` and the path below it, positioned at `start`
    /// (or at the beginning).
    fn load(&mut self, mut d: usize, mut bp: Bptr, start: Option<&[u8]>) -> Result<()> {
        self.pivots.truncate(d);
        loop {
            let level = u16::try_from(d)
                .ok()
                .and_then(|d| self.top.checked_sub(d))
                .ok_or_else(|| {
                    Error::corrupt(bp.addr, CorruptKind::Level, "tree deeper than its height")
                })?;
            if !self.loaded.insert(bp.addr) {
                return Err(Error::corrupt(
                    bp.addr,
                    CorruptKind::Cycle,
                    "node reached twice in one tree",
                ));
            }
            let node = read_node(self.s, &bp, level)?;
            let v = view(&node, bp.addr)?;
            let bad = |e: DecodeError| e.at(bp.addr);
            if v.is_leaf() {
                let next = match start {
                    Some(k) => v.search(k).map_err(bad)?.unwrap_or_else(|i| i),
                    None => 0,
                };
                let nval = v.nval();
                self.leaf = Some(Leaf {
                    node: node.clone(),
                    addr: bp.addr,
                    next,
                    nval,
                });
                return self.leaf_hi();
            }
            let (child, msg) = match start {
                Some(k) => (v.route(k).map_err(bad)?, v.msg_lower_bound(k).map_err(bad)?),
                None => (0, 0),
            };
            let below = v.child(child).map_err(bad)?.1;
            let (nval, nbuf) = (v.nval(), v.nbuf());
            self.pivots.push(Pivot {
                node: node.clone(),
                addr: bp.addr,
                child,
                nval,
                msg,
                nbuf,
            });
            bp = below;
            d += 1;
        }
    }

    /// The current leaf's upper bound: the next separator of the deepest
    /// pivot that has a child after the current one.
    fn leaf_hi(&mut self) -> Result<()> {
        self.hi = None;
        for p in self.pivots.iter().rev() {
            if p.child + 1 < p.nval {
                let v = view(&p.node, p.addr)?;
                let sep = v.key(p.child + 1).map_err(|e| e.at(p.addr))?;
                self.hi = Some(sep.to_vec());
                break;
            }
        }
        Ok(())
    }

    /// Move to the next leaf; false at the end of the tree.
    fn next_leaf(&mut self) -> Result<bool> {
        let Some(d) = self.pivots.iter().rposition(|p| p.child + 1 < p.nval) else {
            self.leaf = None;
            return Ok(false);
        };
        let end = self.end;
        let Some(p) = self.pivots.get_mut(d) else {
            return Err(Error::Internal(format!("scan depth {d} past its path")));
        };
        p.child += 1;
        let v = view(&p.node, p.addr)?;
        let (sep, bp, _) = v.child(p.child).map_err(|e| e.at(p.addr))?;
        let beyond = match end {
            Bound::Included(e) => sep > e,
            Bound::Excluded(e) => sep >= e,
            Bound::Unbounded => false,
        };
        if beyond {
            self.leaf = None;
            return Ok(false);
        }
        self.load(d + 1, bp, None)?;
        // Pivots loaded below `d` bring their own messages.
        self.frontier()?;
        Ok(true)
    }

    /// Recompute the frontier: the smallest unconsumed message key.
    fn frontier(&mut self) -> Result<()> {
        let mut best: Option<&[u8]> = self.pending.peek();
        for p in &self.pivots {
            if p.msg < p.nbuf {
                let v = view(&p.node, p.addr)?;
                let k = v.msg(p.msg).map_err(|e| e.at(p.addr))?.1;
                if best.is_none_or(|b| k < b) {
                    best = Some(k);
                }
            }
        }
        self.front = best.map(<[u8]>::to_vec);
        Ok(())
    }

    /// Produce the next entry through `f`: `Some(true)` if one was visited,
    /// `Some(false)` if a key was consumed without one (absent, or the
    /// excluded start), `None` at the end.
    fn step(
        &mut self,
        skip: Option<&[u8]>,
        f: &mut impl FnMut(&[u8], &[u8], BlockAddr) -> Result<()>,
    ) -> Result<Option<bool>> {
        let Some(leaf) = &self.leaf else {
            return Ok(None);
        };
        let leaf_addr = leaf.addr;
        let lv = view(&leaf.node, leaf.addr)?;
        let lk = if leaf.next < leaf.nval {
            Some(lv.kv(leaf.next).map_err(|e| e.at(leaf.addr))?)
        } else {
            None
        };
        let front = self.front.as_deref();
        match (lk, front) {
            (Some((k, v)), fr) if fr.is_none_or(|fk| k < fk) => {
                if self.beyond(k) {
                    return Ok(None);
                }
                let visit = skip != Some(k);
                if visit {
                    f(k, v, leaf_addr)?;
                }
                if let Some(l) = self.leaf.as_mut() {
                    l.next += 1;
                }
                Ok(Some(visit))
            }
            (_, Some(fk)) if lk.is_some() || self.hi.as_deref().is_none_or(|h| fk < h) => {
                let key = fk.to_vec();
                if self.beyond(&key) {
                    return Ok(None);
                }
                let cur = match lk {
                    Some((k, v)) if k == key.as_slice() => Some(v.to_vec()),
                    _ => None,
                };
                if cur.is_some() {
                    if let Some(l) = self.leaf.as_mut() {
                        l.next += 1;
                    }
                }
                let from = if cur.is_some() {
                    leaf_addr
                } else {
                    BlockAddr::NONE
                };
                let (cur, at) = self.apply_msgs(&key, cur, from)?;
                self.frontier()?;
                match cur {
                    Some(v) if skip != Some(key.as_slice()) => {
                        f(&key, &v, at)?;
                        Ok(Some(true))
                    }
                    _ => Ok(Some(false)),
                }
            }
            // The leaf is done, and so is every message below its upper
            // bound (the last leaf's is the end of the tree).
            _ => Ok(self.next_leaf()?.then_some(false)),
        }
    }

    /// Apply every unconsumed message for `key` to `cur` (found in block
    /// `at`): the lowest pivot's first, then those above, then the pending
    /// runs. Returns the value and the block of the last message that
    /// changed it ([`BlockAddr::NONE`] for a pending one).
    fn apply_msgs(
        &mut self,
        key: &[u8],
        mut cur: Option<Vec<u8>>,
        mut at: BlockAddr,
    ) -> Result<(Option<Vec<u8>>, BlockAddr)> {
        for p in self.pivots.iter_mut().rev() {
            let v = view(&p.node, p.addr)?;
            let bad = |e: DecodeError| e.at(p.addr);
            while p.msg < p.nbuf {
                let (op, k, arg) = v.msg(p.msg).map_err(bad)?;
                if k != key {
                    break;
                }
                cur = msg::apply(op, arg, cur).map_err(bad)?;
                at = p.addr;
                p.msg += 1;
            }
        }
        if self.pending.peek() == Some(key) {
            at = BlockAddr::NONE;
        }
        Ok((self.pending.apply(key, cur)?, at))
    }
}
