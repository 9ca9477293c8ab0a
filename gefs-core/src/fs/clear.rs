//! Bounded background clearing of file data.
//!
//! A remove or a shrinking truncate makes the data past the new end
//! unreachable at once (the length, or the entry, changes in the
//! operation's own batch); the `KDAT` keys themselves, which can be
//! millions, are cleared later by [`Fs::sweep`]: each step takes the writer
//! lock, scans at most [`CLEAR_CHUNK`] of the file's *existing* keys from
//! the clear's position, and upserts one `Clearb` per key found (holes cost
//! nothing, unlike the reference's message per offset, defect #24; and the
//! start is block-aligned, unlike the reference's, defect #4). The lock is
//! released between steps, so one huge remove never stalls other writers.
//!
//! Clears are durable: the batch that makes the data unreachable also writes
//! a `KCLEAR(qid) → from` note in the same tree, every sweep step moves it
//! forward in the batch that clears its keys, and the last step deletes it.
//! Attaching a mutable tree queues every note found, so a crash in the
//! middle of a huge remove leaks nothing: the clear resumes after restart.
//! A step removes its keys with `Clobber` and hands the data blocks it
//! found to the store to release in the same batch
//! ([`Store::upsert_freeing`](crate::store::Store::upsert_freeing)), so the
//! space comes back at once instead of when a message reaches its leaf.
//!
//! Invariants:
//! - the queue holds at most one clear per `(tree, qid)`, covering every key
//!   of the file at or beyond `from` (a block offset), and the tree holds a
//!   `KCLEAR(qid)` note whose offset is ≤ `from` while it is queued;
//! - `from ≥ roundup(length, BLKSZ)` for a live file, so writes below the
//!   length never meet a queued clear; an operation that grows a file first
//!   drains its clear ([`Fs::settle`]), so a clear never deletes data written
//!   after it was queued (the reference's `truncwait`).

use std::collections::VecDeque;
use std::ops::Bound;

use super::error::{Error, Result};
use super::Fs;
use crate::alloc::Tier;
use crate::format::key::{self, KeyView};
use crate::format::msg::{Msg, Op};
use crate::format::Decode;
use crate::format::BLKSZ_U64;
use crate::store::TreeId;
use crate::CorruptKind;

/// Most `KDAT` keys cleared by one sweep step (one upsert).
pub const CLEAR_CHUNK: usize = 256;

/// One file's pending clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clear {
    tree: TreeId,
    qid: u64,
    from: u64,
}

/// The queue of pending clears, and a mount of every tree that has one (so
/// the tree stays open until its clears are done).
#[derive(Debug, Default)]
pub(super) struct Queue {
    q: VecDeque<Clear>,
    holds: Vec<super::Mount>,
}

impl Queue {
    fn find(&self, tree: TreeId, qid: u64) -> Option<usize> {
        self.q.iter().position(|c| c.tree == tree && c.qid == qid)
    }
}

/// What one sweep step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepStep {
    /// Keys cleared by this step's upsert (at most [`CLEAR_CHUNK`]).
    pub keys: usize,
    /// Whether clears are still pending.
    pub more: bool,
}

impl Fs {
    /// The durable note for a clear of `qid` from `from`, for the batch that
    /// makes that data unreachable (it keeps the lowest offset already
    /// queued). Writer lock held.
    pub(super) fn clear_note(&self, tree: TreeId, qid: u64, from: u64) -> Msg {
        let q = self.clears.lock();
        let from = q
            .find(tree, qid)
            .and_then(|i| q.q.get(i))
            .map_or(from, |c| c.from.min(from));
        Msg::insert(key::clear(qid), from.to_be_bytes().to_vec())
    }

    /// Queue the clears a tree's `KCLEAR` notes record (after a restart, or
    /// when a fork inherits them). Called when a mutable tree is attached.
    pub(super) fn resume_clears(&self, m: &super::Mount) -> Result<()> {
        let tree = m.tree();
        let lo = [key::KCLEAR];
        let hi = [key::KCLEAR + 1];
        let mut last: Option<Vec<u8>> = None;
        loop {
            let from = match &last {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Included(&lo[..]),
            };
            let found = self.scan_at(tree, from, Bound::Excluded(&hi[..]), 256)?;
            if found.is_empty() {
                return Ok(());
            }
            for (k, v) in &found {
                let (Ok(KeyView::Clear { qid }), Ok(off)) =
                    (KeyView::decode(k), <[u8; 8]>::try_from(&v.val[..]))
                else {
                    return Err(crate::Error::corrupt(
                        v.addr,
                        CorruptKind::Value,
                        "malformed clear note",
                    )
                    .into());
                };
                self.queue_clear(m, qid, u64::from_be_bytes(off));
            }
            last = found.last().map(|(k, _)| k.clone());
        }
    }

    /// Queue clearing every `KDAT` key of `qid` at or beyond block offset
    /// `from`. Called with the writer lock held, after the upsert that made
    /// the data unreachable.
    pub(super) fn queue_clear(&self, m: &super::Mount, qid: u64, from: u64) {
        let tree = m.tree();
        let mut c = self.clears.lock();
        if !c.holds.iter().any(|h| h.tree() == tree) {
            c.holds.push(m.clone());
        }
        match c.find(tree, qid) {
            Some(i) => {
                if let Some(x) = c.q.get_mut(i) {
                    x.from = x.from.min(from);
                }
            }
            None => c.q.push_back(Clear { tree, qid, from }),
        }
    }

    /// Whether `qid` has a pending clear.
    pub(super) fn clear_pending(&self, tree: TreeId, qid: u64) -> bool {
        self.clears.lock().find(tree, qid).is_some()
    }

    /// Number of pending clears.
    pub fn clears_pending(&self) -> usize {
        self.clears.lock().q.len()
    }

    /// Run up to `budget` sweep steps; returns whether clears are still
    /// pending. The daemon's sweeper calls this; synchronous callers loop.
    pub fn sweep(&self, budget: usize) -> Result<bool> {
        for _ in 0..budget {
            if !self.sweep_step()?.more {
                return Ok(false);
            }
        }
        Ok(self.clears_pending() > 0)
    }

    /// One sweep step on the oldest pending clear.
    pub fn sweep_step(&self) -> Result<SweepStep> {
        let _g = self.writer();
        let first = self.clears.lock().q.front().copied();
        let keys = match first {
            Some(c) => self.clear_chunk(c)?,
            None => 0,
        };
        Ok(SweepStep {
            keys,
            more: self.clears_pending() > 0,
        })
    }

    /// Drain the clear of `qid` step by step, releasing the writer lock
    /// between steps (the reference's `truncwait`). Returns once no clear of
    /// `qid` is pending; the caller re-checks under the lock.
    pub(super) fn settle(&self, tree: TreeId, qid: u64) -> Result<()> {
        loop {
            let _g = self.writer();
            let c = {
                let q = self.clears.lock();
                q.find(tree, qid).and_then(|i| q.q.get(i).copied())
            };
            match c {
                Some(c) => self.clear_chunk(c)?,
                None => return Ok(()),
            };
        }
    }

    /// Clear up to [`CLEAR_CHUNK`] existing keys of `c`; advance or retire
    /// it. Writer lock held.
    fn clear_chunk(&self, c: Clear) -> Result<usize> {
        let from = key::dat(c.qid, c.from);
        let end = key::prefix_end(&key::dat_prefix(c.qid))
            .ok_or_else(|| Error::Invalid("qid has no key bound".into()))?;
        let found = self.scan_at(
            c.tree,
            Bound::Included(&from[..]),
            Bound::Excluded(&end[..]),
            CLEAR_CHUNK,
        )?;
        let mut next = None;
        let mut msgs = Vec::with_capacity(found.len() + 1);
        let mut frees = Vec::with_capacity(found.len());
        for (k, v) in found {
            if let Ok(KeyView::Dat { off, .. }) = KeyView::decode(&k) {
                next = off.checked_add(BLKSZ_U64);
            }
            let bp = crate::format::Bptr::from_slice(&v.val)
                .map_err(|_| crate::Error::corrupt(v.addr, CorruptKind::Value, "data pointer"))?;
            frees.push(bp);
            msgs.push(Msg::bare(Op::Clobber, k));
        }
        let n = msgs.len();
        let done = !(n == CLEAR_CHUNK && next.is_some());
        // The note after this step: the queue entry's offset if something
        // lowered it, the next key's if more remain, else gone.
        let lowered = {
            let q = self.clears.lock();
            q.find(c.tree, c.qid)
                .and_then(|i| q.q.get(i))
                .map(|x| x.from)
                .filter(|&f| f < c.from)
        };
        msgs.push(match (lowered, next) {
            (Some(f), _) => Msg::insert(key::clear(c.qid), f.to_be_bytes().to_vec()),
            (None, Some(nx)) if !done => Msg::insert(key::clear(c.qid), nx.to_be_bytes().to_vec()),
            _ => Msg::delete(key::clear(c.qid)),
        });
        self.store
            .upsert_freeing(c.tree, msgs, &frees, Tier::Reserve)?;
        let mut q = self.clears.lock();
        if let Some(i) = q.find(c.tree, c.qid) {
            match next {
                Some(nx) if n == CLEAR_CHUNK => {
                    if let Some(x) = q.q.get_mut(i) {
                        // A truncate may have lowered `from` meanwhile.
                        if x.from == c.from {
                            x.from = nx;
                        }
                    }
                }
                _ => {
                    let lowered = q.q.get(i).is_some_and(|x| x.from < c.from);
                    if !lowered {
                        q.q.remove(i);
                        if !q.q.iter().any(|x| x.tree == c.tree) {
                            q.holds.retain(|h| h.tree() != c.tree);
                        }
                    }
                }
            }
        }
        Ok(n)
    }
}
