//! Ordered range scans that merge buffered messages with leaf values.
//!
//! A scan keeps one cursor per level, root to leaf. A pivot level yields the
//! live entries of its subtree in key order: the smaller of its child's next
//! entry and its own next buffered message key, with every message it buffers
//! for that key applied on top (the child's entry already carries the
//! messages buffered below). An entry that ends up absent — deleted, or an
//! orphan non-insert message with no value — is skipped.
//!
//! Messages the store has accepted but not yet applied
//! ([`NodeStore::pending`]) are merged in last, above the root, the same way.
//!
//! Invariants kept here: descent is bounded by the root's height and every
//! level is checked; one call loads each node at most once (a node reached
//! twice is [`Error::Corrupt`]: a damaged pivot naming one child twice would
//! otherwise repeat a subtree, and a chain of such pivots multiply the
//! work); the entries returned strictly ascend and lie after the start (an
//! entry that does not is corruption), so a caller resuming from the last
//! key it got always makes progress; nothing is pinned between calls (each
//! call re-enters from the root it is given, so a caller resumes by passing
//! the last key it got as an excluded start); nothing is modified or freed.

use std::collections::HashSet;
use std::ops::Bound;

use crate::error::{Error, Result};
use crate::format::msg;
use crate::format::node::NodeView;
use crate::format::Bptr;
use crate::ids::BlockAddr;

/// A live entry: key and value.
type Kv = (Vec<u8>, Vec<u8>);
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
    let top = root_level(root)?;
    if limit == 0 || empty_range(from, to) {
        return Ok(Vec::new());
    }
    let start = match from {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    let mut c = Cursor {
        s,
        top,
        end: to,
        levels: Vec::new(),
        loaded: HashSet::new(),
    };
    c.load(0, root.bp, start)?;
    let mut out: Vec<Kv> = Vec::new();
    let runs = s.pending();
    if runs.is_empty() {
        while out.len() < limit {
            let Some((k, v)) = c.next(0)? else { break };
            if matches!(from, Bound::Excluded(f) if f == k.as_slice()) {
                continue;
            }
            ascending(root, start, out.last(), &k)?;
            out.push((k, v));
        }
        return Ok(out);
    }
    let mut pc = pending::Cursor::new(runs, start);
    let mut tree_next: Option<Option<Kv>> = None;
    while out.len() < limit {
        let t = match &mut tree_next {
            Some(t) => t,
            None => tree_next.insert(c.next(0)?),
        };
        let pk = pc.peek().filter(|k| !c.beyond(k));
        let (key, cur) = match (t.as_ref(), pk) {
            (None, None) => break,
            (Some((tk, _)), Some(pk)) if pk < tk.as_slice() => (pk.to_vec(), None),
            (None, Some(pk)) => (pk.to_vec(), None),
            (Some(_), _) => match tree_next.take().flatten() {
                Some((k, v)) => (k, Some(v)),
                None => return Err(Error::Internal("scan lost its next entry".into())),
            },
        };
        let Some(v) = pc.apply(&key, cur)? else {
            continue;
        };
        if matches!(from, Bound::Excluded(f) if f == key.as_slice()) {
            continue;
        }
        ascending(root, start, out.last(), &key)?;
        out.push((key, v));
    }
    Ok(out)
}

/// An entry about to be returned must come after the start and after the
/// previous entry; a tree whose keys are out of place breaks this.
fn ascending(root: &Root, start: Option<&[u8]>, prev: Option<&Kv>, k: &[u8]) -> Result<()> {
    let after_prev = prev.is_none_or(|(p, _)| p.as_slice() < k);
    if after_prev && start.is_none_or(|s| s <= k) {
        return Ok(());
    }
    Err(Error::corrupt(
        root.bp.addr,
        format!(
            "scan met key {} out of order (a node below holds keys outside its range)",
            crate::format::key::KeyView::parse(k)
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

/// What a pivot level knows about its child's next entry.
enum Peek {
    /// Not fetched yet.
    Unknown,
    /// The child's next live entry.
    Item(Kv),
    /// The child side is exhausted.
    Done,
}

struct Level<R> {
    node: R,
    addr: BlockAddr,
    /// Pivot: the current child.
    child: usize,
    /// Pivot: the next buffered message; leaf: the next record.
    next: usize,
    peek: Peek,
}

struct Cursor<'a, S: NodeStore> {
    s: &'a S,
    top: u16,
    end: Bound<&'a [u8]>,
    levels: Vec<Level<S::Ref>>,
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

    /// Load `bp` as level `d` and the path below it, positioned at `start`
    /// (or at the beginning).
    fn load(&mut self, mut d: usize, mut bp: Bptr, start: Option<&[u8]>) -> Result<()> {
        loop {
            let level = u16::try_from(d)
                .ok()
                .and_then(|d| self.top.checked_sub(d))
                .ok_or_else(|| Error::corrupt(bp.addr, "tree deeper than its height"))?;
            if !self.loaded.insert(bp.addr) {
                return Err(Error::corrupt(bp.addr, "node reached twice in one tree"));
            }
            let node = read_node(self.s, &bp, level)?;
            let v = view(&node, bp.addr)?;
            let bad = |e: String| Error::corrupt(bp.addr, e);
            let (child, next, below) = if v.is_leaf() {
                let i = match start {
                    Some(k) => v.search(k).map_err(bad)?.unwrap_or_else(|i| i),
                    None => 0,
                };
                (0, i, None)
            } else {
                let (c, m) = match start {
                    Some(k) => (v.route(k).map_err(bad)?, v.msg_lower_bound(k).map_err(bad)?),
                    None => (0, 0),
                };
                (c, m, Some(v.child(c).map_err(bad)?.1))
            };
            self.levels.truncate(d);
            self.levels.push(Level {
                node: node.clone(),
                addr: bp.addr,
                child,
                next,
                peek: Peek::Unknown,
            });
            match below {
                Some(c) => {
                    bp = c;
                    d += 1;
                }
                None => return Ok(()),
            }
        }
    }

    fn level(&mut self, d: usize) -> Result<&mut Level<S::Ref>> {
        self.levels
            .get_mut(d)
            .ok_or_else(|| Error::Internal("scan cursor lost a level".into()))
    }

    /// The next live entry of level `d`'s subtree.
    fn next(&mut self, d: usize) -> Result<Option<Kv>> {
        let (node, addr) = {
            let l = self.level(d)?;
            (l.node.clone(), l.addr)
        };
        let v = view(&node, addr)?;
        let bad = |e: String| Error::corrupt(addr, e);
        if v.is_leaf() {
            let i = self.level(d)?.next;
            if i >= v.nval() {
                return Ok(None);
            }
            let (k, val) = v.kv(i).map_err(bad)?;
            if self.beyond(k) {
                return Ok(None);
            }
            self.level(d)?.next += 1;
            return Ok(Some((k.to_vec(), val.to_vec())));
        }
        loop {
            self.fill_peek(d, &v)?;
            let j = self.level(d)?.next;
            let mkey = if j < v.nbuf() {
                Some(v.msg(j).map_err(bad)?.1).filter(|k| !self.beyond(k))
            } else {
                None
            };
            let l = self.level(d)?;
            let take_child = match (&l.peek, mkey) {
                (Peek::Item((pk, _)), Some(mk)) => pk.as_slice() <= mk,
                (Peek::Item(_), None) => true,
                (_, Some(_)) => false,
                (_, None) => return Ok(None),
            };
            let (key, mut cur) = if take_child {
                match std::mem::replace(&mut l.peek, Peek::Unknown) {
                    Peek::Item((k, val)) => (k, Some(val)),
                    _ => return Err(Error::Internal("scan peek vanished".into())),
                }
            } else {
                (mkey.unwrap_or_default().to_vec(), None)
            };
            while l.next < v.nbuf() {
                let (op, k, arg) = v.msg(l.next).map_err(bad)?;
                if k != key.as_slice() {
                    break;
                }
                cur = msg::apply(op, arg, cur).map_err(bad)?;
                l.next += 1;
            }
            if let Some(val) = cur {
                return Ok(Some((key, val)));
            }
        }
    }

    /// Make sure pivot level `d` knows its child side's next entry, moving to
    /// later children as earlier ones run out.
    fn fill_peek(&mut self, d: usize, v: &NodeView<'_>) -> Result<()> {
        let addr = self.level(d)?.addr;
        let bad = |e: String| Error::corrupt(addr, e);
        while matches!(self.level(d)?.peek, Peek::Unknown) {
            if let Some(item) = self.next(d + 1)? {
                self.level(d)?.peek = Peek::Item(item);
                continue;
            }
            let c = self.level(d)?.child + 1;
            if c >= v.nval() {
                self.level(d)?.peek = Peek::Done;
                break;
            }
            let (sep, bp, _) = v.child(c).map_err(bad)?;
            if self.beyond(sep) {
                self.level(d)?.peek = Peek::Done;
                break;
            }
            self.level(d)?.child = c;
            self.load(d + 1, bp, None)?;
        }
        Ok(())
    }
}
