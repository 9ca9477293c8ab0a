//! The write buffer: upserts accepted between syncs and applied to their
//! trees in large batches (the reference's to-do list, §14.3 item 7: "coalesce
//! fast-path upserts between syncs").
//!
//! Copying the root for every upsert, and flushing a few messages down each
//! time the root's buffer fills, rewrites the same nodes over and over
//! between two commits; only the last copy of each is ever written to the
//! device. So [`Store::upsert`] validates a batch and keeps it in memory as a
//! sorted run ([`Run`]) of its tree's buffer; the buffer is applied to the
//! tree in one [`tree::upsert_runs`] call — one pass that rewrites every
//! touched node once — at the next sync (before the roots are recorded),
//! when a snapshot operation needs the trees' roots, or at once when one of
//! the limits below is reached.
//!
//! Invariants:
//! - **Readers see the buffer.** A tree's published state is its root and
//!   its runs, swapped together under `roots`; readers take both at once and
//!   apply the runs on top of the tree (`tree::pending`). Applying the buffer
//!   replaces the root and empties the runs in one publication, so no reader
//!   sees a message twice or misses one.
//! - **Atomicity and errors are unchanged.** A batch is validated exactly as
//!   [`tree::upsert`] validates it and the tree's root is read (and so
//!   verified) before the batch is accepted; a batch that is applied at once
//!   is applied together with the buffer, atomically: on error neither the
//!   tree nor the buffer changes. Messages for one key keep their order: the
//!   runs are applied oldest first, each sorted stably.
//! - **Memory is bounded** by [`Store::set_write_buffer_bytes`] (default
//!   [`DEFAULT_WRITE_BUFFER_BYTES`](super::DEFAULT_WRITE_BUFFER_BYTES)) over
//!   all trees (message bytes plus a per-message allowance); a batch that
//!   would exceed it is applied at once, with the tree's buffer. 0 disables
//!   buffering.
//! - **Space.** Applying a buffer needs new blocks, so buffering must not
//!   turn into a failure at sync. A batch is buffered only if the free space
//!   an ordinary write may use covers a generous bound on what applying every
//!   tree's buffer could allocate ([`drain_bound`]); otherwise it is applied
//!   at once, so `Error::NoSpace` surfaces at the upsert that runs out, as
//!   before. Data writes keep the same margin (they apply the buffers first
//!   when it would shrink below it). Upserts at [`Tier::Reserve`] (removes on
//!   a full device) are always applied at once, and a sync applies the
//!   buffers at `Normal`, falling back to `Reserve`.
//! - **Crash safety is unchanged**: nothing is durable before a commit
//!   anyway, and a commit applies every buffer before it records the roots.
//!   A sync whose buffers cannot be applied fails without changing anything.
//! - The snapshot tree is never buffered.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Mutation, Store, TreeId};
use crate::alloc::Tier;
use crate::error::{Error, Result};
use crate::format::msg::Msg;
use crate::format::node::NodeView;
use crate::tree::pending::{Run, Runs};
use crate::tree::{self, Root};

/// Whether an upsert was kept in the write buffer or applied to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Buffered {
    /// Kept in the buffer: nothing was written or freed.
    Yes,
    /// Applied to the tree (with the tree's buffer).
    No,
}

/// Memory counted per buffered message besides its key and value (the
/// message's own size and its two allocations).
const MSG_MEM: usize = 64;

/// A tree's buffered messages.
#[derive(Debug, Default, Clone)]
pub(super) struct WriteBuf {
    /// Runs, oldest first; a run is at most half as long as the one before
    /// it, so there are O(log n) of them.
    runs: Vec<Arc<Run>>,
    /// Messages in all runs.
    msgs: usize,
    /// Memory they are counted as.
    mem: usize,
}

impl WriteBuf {
    pub(super) fn is_empty(&self) -> bool {
        self.msgs == 0
    }

    /// Messages buffered (after folding) and runs.
    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        (self.msgs, self.runs.len())
    }

    /// The runs' messages, oldest run first.
    pub(super) fn run_msgs(&self) -> Vec<&[Msg]> {
        self.runs.iter().map(|r| r.msgs()).collect()
    }

    /// The runs as readers see them.
    pub(super) fn runs(&self) -> Runs {
        Arc::from(self.runs.clone())
    }

    /// Add a batch as a new run, merging runs to keep their lengths
    /// halving. Runs fold messages (`tree::pending`), so the counts are
    /// taken from the runs afterwards (there are O(log n) of them).
    fn push(&mut self, msgs: Vec<Msg>) {
        self.runs.push(Arc::new(Run::new(msgs)));
        while let [.., a, b] = self.runs.as_slice() {
            if a.len() > 2 * b.len() {
                break;
            }
            let (Some(b), Some(a)) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            self.runs.push(Arc::new(Run::merge(a, b)));
        }
        self.msgs = self.runs.iter().map(|r| r.len()).sum();
        self.mem = self
            .runs
            .iter()
            .map(|r| r.bytes() + MSG_MEM * r.len())
            .sum();
    }
}

/// Memory a batch is counted as.
fn mem_of(msgs: &[Msg]) -> usize {
    msgs.iter()
        .map(|m| m.key.len() + m.val.len() + MSG_MEM)
        .sum()
}

/// A bound on the blocks that applying `n` messages to a tree of height `h`
/// in one batch can allocate: per message and level, the rewritten node, a
/// split into up to three, and a rebalanced sibling; plus a new root level.
/// Deliberately generous: when space is that tight, upserts are simply
/// applied at once, as without a buffer.
pub(super) fn drain_bound(n: usize, h: u32) -> u64 {
    if n == 0 {
        return 0;
    }
    4 * n as u64 * (u64::from(h) + 1) + 16
}

impl Store {
    /// Blocks ordinary (`Tier::Normal`) allocations may still take, at
    /// least. Measured again only after something was allocated: buffered
    /// upserts allocate nothing, so they do not pay for it.
    fn normal_headroom(&self) -> u64 {
        let now = self.allocs.load(Ordering::Relaxed);
        let mut h = self.headroom.lock();
        if h.0 != now {
            let free = self
                .alloc
                .stats()
                .iter()
                .map(|a| a.free.saturating_sub(a.reserve))
                .sum();
            *h = (now, free);
        }
        h.1
    }

    /// What applying every buffer could allocate, plus `extra` messages for
    /// tree `t`.
    fn buffered_bound(m: &Mutation, t: Option<(TreeId, usize)>) -> u64 {
        m.trees
            .iter()
            .enumerate()
            .map(|(i, ts)| {
                let extra = t.filter(|(t, _)| t.0 == i).map_or(0, |(_, n)| n);
                drain_bound(ts.wbuf.msgs + extra, ts.root.height)
            })
            .sum()
    }

    /// Accept a batch for tree `t`: buffer it, or apply it at once (with the
    /// tree's buffer) when a limit says so.
    pub(super) fn upsert_buffered(
        &self,
        m: &mut Mutation,
        t: TreeId,
        msgs: Vec<Msg>,
        tier: Tier,
    ) -> Result<Buffered> {
        let ts = m.tree(t)?;
        if !ts.mutable {
            return Err(Error::ReadOnly);
        }
        let cap = self.wbuf_cap.load(Ordering::Relaxed);
        if t == TreeId::SNAP || tier != Tier::Normal || cap == 0 {
            return self.upsert_locked(m, t, msgs, tier).map(|()| Buffered::No);
        }
        tree::validate(&msgs)?;
        if msgs.is_empty() {
            return Ok(Buffered::Yes);
        }
        // As the tree would on its fast path: the root must read back.
        self.check_root(&ts.root)?;
        let mem = mem_of(&msgs);
        let total: usize = m.trees.iter().map(|t| t.wbuf.mem).sum();
        if total + mem > cap
            || Self::buffered_bound(m, Some((t, msgs.len()))) > self.normal_headroom()
        {
            return self.upsert_locked(m, t, msgs, tier).map(|()| Buffered::No);
        }
        let ts = m.tree_mut(t)?;
        ts.wbuf.push(msgs);
        ts.dirty = true;
        let (root, runs) = (ts.root, ts.wbuf.runs());
        self.publish(t, root, runs);
        Ok(Buffered::Yes)
    }

    /// Read a tree's root as an upsert would: verified, at its level.
    fn check_root(&self, root: &Root) -> Result<()> {
        let b = self.read_block_writer(&root.bp, true)?;
        let level = NodeView::new(&b[..])
            .map_err(|e| Error::corrupt(root.bp.addr, e))?
            .level();
        if u32::from(level) + 1 != root.height {
            return Err(Error::corrupt(
                root.bp.addr,
                format!("root at level {level} of a tree of height {}", root.height),
            ));
        }
        Ok(())
    }

    /// Apply tree `t`'s buffer, if any, at `tier`.
    pub(super) fn drain(&self, m: &mut Mutation, t: TreeId, tier: Tier) -> Result<()> {
        if m.tree(t)?.wbuf.is_empty() {
            return Ok(());
        }
        self.upsert_locked(m, t, Vec::new(), tier)
    }

    /// Apply every tree's buffer: at `Normal`, then at `Reserve` for a tree
    /// that ran out of space. Nothing changes for a tree whose buffer fails.
    pub(super) fn drain_all(&self, m: &mut Mutation) -> Result<()> {
        for i in 0..m.trees.len() {
            let t = TreeId(i);
            match self.drain(m, t, Tier::Normal) {
                Err(Error::NoSpace) => self.drain(m, t, Tier::Reserve)?,
                r => r?,
            }
        }
        Ok(())
    }

    /// Before `blocks` more ordinary allocations outside the trees (data
    /// blocks): apply the buffers if the allocations would eat into the
    /// space kept for applying them.
    pub(super) fn keep_margin(&self, m: &mut Mutation, blocks: u64) -> Result<()> {
        let need = Self::buffered_bound(m, None);
        if need > 0 && need + blocks > self.normal_headroom() {
            self.drain_all(m)?;
        }
        Ok(())
    }
}
