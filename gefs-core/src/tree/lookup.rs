//! Point lookup: descend to the leaf that would hold a key, then apply the
//! key's buffered messages from the lowest pivot up to the root (oldest
//! first).
//!
//! Invariants kept here: the descent is bounded by the root's height, every
//! level is checked ([`read_node`]), and messages are applied to a copy, so a
//! lookup frees and changes nothing. A non-insert message with no value to
//! act on leaves the key absent. Messages the store has accepted but not yet
//! applied ([`NodeStore::pending`]) are applied last: they are the newest.
//! A value no message changed is returned in place: a handle on the cached
//! leaf and its position ([`Found::InBlock`]), no copy.

use std::ops::Deref;

use crate::error::{Error, Result};
use crate::format::msg::{self, Op};
use crate::format::KEYMAX;
use crate::format::{Decode, DecodeError};
use crate::ids::BlockAddr;
use crate::CorruptKind;

use super::store::NodeStore;
use super::tx::{read_node, root_level, view};
use super::Root;

/// The messages one pivot buffers for the key.
type Run = (BlockAddr, Vec<(Op, Vec<u8>)>);

/// A separator on the path, copied out of its node (keys are at most
/// `KEYMAX` bytes).
struct Bound {
    buf: [u8; KEYMAX],
    len: usize,
}

impl Default for Bound {
    fn default() -> Bound {
        Bound {
            buf: [0; KEYMAX],
            len: 0,
        }
    }
}

impl Bound {
    fn set(&mut self, k: &[u8]) {
        let n = k.len().min(KEYMAX);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(..n), k.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = n;
    }

    fn get(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// A value a lookup found.
#[derive(Debug, Clone)]
pub enum Found<R> {
    /// `len` bytes at `off` in `block`, the cached leaf that holds them.
    InBlock {
        /// The leaf (a cache handle: it stays valid while held).
        block: R,
        /// Where the value starts in it.
        off: usize,
        /// Its length.
        len: usize,
    },
    /// A value buffered messages computed.
    Owned(Vec<u8>),
}

impl<R: Deref<Target = [u8]>> Deref for Found<R> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Found::InBlock { block, off, len } => block.get(*off..*off + *len).unwrap_or(&[]),
            Found::Owned(v) => v,
        }
    }
}

impl<R: Deref<Target = [u8]>> Found<R> {
    /// The value as an owned vector.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Found::Owned(v) => v,
            f => f.to_vec(),
        }
    }
}

/// Point lookup: the key's value, with every buffered message on the path
/// applied in order, or `None` if it is absent (or was deleted).
pub fn lookup<S: NodeStore>(s: &S, root: &Root, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(lookup_ref(s, root, key)?.map(Found::into_vec))
}

/// [`lookup`], returning a value no message changed in place.
pub fn lookup_ref<S: NodeStore>(s: &S, root: &Root, key: &[u8]) -> Result<Option<Found<S::Ref>>> {
    Ok(lookup_found(s, root, key)?.map(|(f, _)| f))
}

/// A value and the block it was found in: the leaf that holds it, or the
/// pivot whose buffered message last changed it; [`BlockAddr::NONE`] for a
/// value that messages still in memory computed (no block holds it yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The value.
    pub val: Vec<u8>,
    /// Where it was found.
    pub addr: BlockAddr,
}

impl Located {
    /// Decode the value; damage is [`Error::Corrupt`] naming the block it
    /// was found in.
    pub fn decode<'a, T: Decode<'a>>(&'a self) -> Result<T> {
        T::decode(&self.val).map_err(|e| e.at(self.addr))
    }
}

/// [`lookup`], with the block the value was found in.
pub fn lookup_at<S: NodeStore>(s: &S, root: &Root, key: &[u8]) -> Result<Option<Located>> {
    Ok(lookup_found(s, root, key)?.map(|(f, addr)| Located {
        val: f.into_vec(),
        addr,
    }))
}

/// The lookup itself: the value, and the block it was found in (see
/// [`Located`]).
fn lookup_found<S: NodeStore>(
    s: &S,
    root: &Root,
    key: &[u8],
) -> Result<Option<(Found<S::Ref>, BlockAddr)>> {
    let mut level = root_level(root)?;
    let mut bp = root.bp;
    // Pivots with messages for the key, root first (none allocated when
    // there are none, the common case).
    let mut runs: Vec<Run> = Vec::new();
    // The range the current node's keys lie in: [lo, hi), from the
    // separators on the path (hi unknown on the rightmost path).
    let mut lo = Bound::default();
    let mut hi: Option<Bound> = None;
    let base = loop {
        let r = read_node(s, &bp, level)?;
        let v = view(&r, bp.addr)?;
        let bad = |e: DecodeError| e.at(bp.addr);
        if v.is_leaf() {
            let found = match &hi {
                Some(h) => v.search_in(key, lo.get(), h.get()),
                None => v.search(key),
            };
            break match found.map_err(bad)? {
                Ok(i) => {
                    let val = v.kv(i).map_err(bad)?.1;
                    let off = (val.as_ptr() as usize).wrapping_sub(r.as_ptr() as usize);
                    let len = val.len();
                    Some(Found::InBlock { block: r, off, len })
                }
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
        if !run.is_empty() {
            runs.push((bp.addr, run));
        }
        let i = v.route(key).map_err(bad)?;
        let (sep, child, _) = v.child(i).map_err(bad)?;
        if i > 0 {
            lo.set(sep);
        }
        if i + 1 < v.nval() {
            let next = v.key(i + 1).map_err(bad)?;
            hi.get_or_insert_with(Bound::default).set(next);
        }
        // The pivot's address, before `bp` moves to the child.
        level = level
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt(bp.addr, CorruptKind::Level, "pivot at level 0"))?;
        bp = child;
    };
    let mut cur = base.map(|f| (f, bp.addr));
    for (addr, run) in runs.iter().rev() {
        let mut v = cur.map(|(f, _)| f.into_vec());
        for (op, arg) in run {
            v = msg::apply(*op, arg, v).map_err(|e| e.at(*addr))?;
        }
        cur = v.map(|v| (Found::Owned(v), *addr));
    }
    // The pending runs, oldest first, each searched once.
    for r in s.pending() {
        let mut hits = r.msgs_for(key).peekable();
        if hits.peek().is_none() {
            continue;
        }
        let mut v = cur.map(|(f, _)| f.into_vec());
        for (op, _, arg) in hits {
            v = msg::apply(op, arg, v).map_err(|e| {
                Error::corrupt(
                    BlockAddr::NONE,
                    CorruptKind::Message,
                    format!("buffered message for key {key:02x?}: {e}"),
                )
            })?;
        }
        cur = v.map(|v| (Found::Owned(v), BlockAddr::NONE));
    }
    Ok(cur)
}
