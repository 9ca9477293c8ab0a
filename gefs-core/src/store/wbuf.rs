//! The write buffer: upserts accepted and made durable through each tree's
//! message log (`msglog.rs`), and applied to their trees in large batches
//! (the reference's to-do list, §14.3 item 7: "coalesce fast-path upserts
//! between syncs", taken as far as the log allows: across many syncs).
//!
//! Copying the root for every upsert, and flushing a few messages down each
//! time the root's buffer fills, rewrites the same nodes over and over; and
//! applying every commit's messages to the tree rewrites, per commit, most
//! of the nodes they reach (DESIGN §6). So [`Store::upsert`] validates a
//! batch and keeps it in memory as a sorted run ([`Run`]) of its tree's
//! buffer; a commit only appends the new messages to the tree's log. The
//! buffer is applied to the tree in one [`tree::apply`] call — one pass
//! that rewrites every touched node once — when it outgrows its memory
//! bound, when space runs short, at a quiet moment ([`Store::checkpoint`]),
//! or when a batch must reach the tree at once (below).
//!
//! Invariants:
//! - **Readers see the buffer.** A tree's published state is its root and
//!   its runs, swapped together under `roots`; readers take both at once and
//!   apply the runs on top of the tree (`tree::pending`). Applying the buffer
//!   replaces the root and empties the runs in one publication, so no reader
//!   sees a message twice or misses one.
//! - **The log holds exactly the buffer**: after every log write, replaying
//!   the tree's chain on top of its recorded root gives the runs in memory
//!   (`msglog.rs`).
//! - **Atomicity and errors are unchanged.** A batch is validated whole and
//!   the tree's root is read (and so verified) before the batch is
//!   accepted. A batch applied at once is applied atomically: alone if no
//!   buffered message has one of its keys (the buffer and the log stay
//!   valid on top of the new root: their keys are disjoint from the
//!   batch's), else together with the whole buffer; on error neither the
//!   tree nor the buffer changes. Messages for one key keep their order.
//! - **Overwritten data returns**: buffered `KDAT` inserts keep the blocks
//!   they replace until they reach a leaf; when those could exceed
//!   [`RETAIN_FACTOR`] times the memory bound, the buffers are applied. A
//!   block whose insert is itself replaced in the buffer before any log
//!   holds it is freed at once instead, its insert taken out of the buffer
//!   (`overwrite.rs`).
//! - **Memory is bounded** by [`Store::set_write_buffer_bytes`] (default
//!   [`DEFAULT_WRITE_BUFFER_BYTES`](super::DEFAULT_WRITE_BUFFER_BYTES)) over
//!   all trees (the runs' memory and the unlogged records); a batch that
//!   would exceed it applies every buffer first. 0 disables buffering. A
//!   tree's log never outgrows [`MLOG_MAX_BLOCKS`] either.
//! - **Space.** Applying a buffer needs new blocks, and so does writing the
//!   log. A batch is buffered only if the free space an ordinary write may
//!   use covers a bound on what applying every tree's buffer and writing
//!   every log could allocate ([`drain_bound`]); otherwise it is applied at
//!   once, so `Error::NoSpace` surfaces at the upsert that runs out. Data
//!   writes keep the same margin (they apply the buffers first when it
//!   would shrink below it).
//! - **What is never buffered**: the snapshot tree, and batches holding a
//!   `Clobber` (its sender releases the blocks at once, so the clobber must
//!   reach the tree in the same step: see `upsert_freeing`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Mutation, Store, TreeId};
use crate::alloc::Tier;
use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::msg::{Msg, Op};
use crate::format::node::NodeView;
use crate::format::{BLKSZ, LEAFSPC, LOGSPC, MLOG_MAX_BLOCKS};
use crate::tree::pending::{self, Run, Runs};
use crate::tree::{self, Root};
use crate::CorruptKind;

/// Whether an upsert was kept in the write buffer or applied to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Buffered {
    /// Kept in the buffer: nothing was written or freed.
    Yes,
    /// Kept in the buffer, taking back buffered writes it replaces: their
    /// blocks were freed (`overwrite.rs`).
    Freeing,
    /// Applied to the tree (with the tree's buffer, or alone).
    No,
}

/// A tree's buffered messages.
#[derive(Debug, Default, Clone)]
pub(super) struct WriteBuf {
    /// Runs, oldest first; a run is at most half as long as the one before
    /// it, so there are O(log n) of them.
    runs: Vec<Arc<Run>>,
    /// Messages in all runs.
    msgs: usize,
    /// Memory they take.
    mem: usize,
    /// Buffer bytes they would take in nodes.
    bytes: usize,
    /// `KDAT` inserts among them: each may hold on to the data block it
    /// replaces until it reaches a leaf.
    dat: usize,
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

    /// The runs, oldest first.
    pub(super) fn run_list(&self) -> &[Arc<Run>] {
        &self.runs
    }

    /// The runs as readers see them.
    pub(super) fn runs(&self) -> Runs {
        Arc::from(self.runs.clone())
    }

    /// Memory the buffer takes.
    pub(super) fn mem(&self) -> usize {
        self.mem
    }

    /// Bytes the buffered messages take as log records.
    pub(super) fn log_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.encoded().len()).sum()
    }

    /// Where the buffer's newest message for `key` is: (run, message).
    pub(super) fn newest(&self, key: &[u8]) -> Option<(usize, usize)> {
        self.runs
            .iter()
            .enumerate()
            .rev()
            .find_map(|(r, run)| run.last_of(key).map(|i| (r, i)))
    }

    /// Message `i` of run `r`.
    pub(super) fn get(&self, r: usize, i: usize) -> Option<crate::tree::pending::Rec<'_>> {
        self.runs.get(r)?.get(i)
    }

    /// Messages in run `r`.
    pub(super) fn run_len(&self, r: usize) -> usize {
        self.runs.get(r).map_or(0, |run| run.len())
    }

    /// Take messages out of the buffer, `KDAT` inserts named as (run,
    /// message), sorted: each run that loses some is replaced by a copy
    /// without them, or dropped if that is empty (readers keep the old
    /// runs). The counts are brought up to date by the next
    /// [`WriteBuf::push`].
    pub(super) fn take_dat(&mut self, taken: &[(usize, usize)]) {
        let mut at = taken.len();
        // Runs from the last, so that dropping one leaves the indices of
        // those before it alone.
        while at > 0 {
            let r = taken[at - 1].0;
            let first = taken[..at].partition_point(|&(x, _)| x < r);
            let drop: Vec<usize> = taken[first..at].iter().map(|&(_, i)| i).collect();
            if let Some(run) = self.runs.get_mut(r) {
                let rest = run.without(&drop);
                self.dat = self.dat.saturating_sub(drop.len());
                if rest.is_empty() {
                    self.runs.remove(r);
                } else {
                    *run = Arc::new(rest);
                }
            }
            at = first;
        }
    }

    /// Add a run, merging runs to keep their lengths halving, but never
    /// into a run of more than `max` bytes of memory (a merge holds both
    /// the old runs and the new one until readers let go of the old ones,
    /// so this bounds what a merge adds; past it, runs of about `max` pile
    /// up, a few since `max` is a fraction of the buffer's bound). Runs
    /// fold messages (`tree::pending`), so the counts are taken from the
    /// runs afterwards.
    pub(super) fn push(&mut self, run: Run, max: usize) {
        self.dat += run
            .iter()
            .filter(|m| m.0 == Op::Insert && m.1.first() == Some(&KDAT))
            .count();
        self.runs.push(Arc::new(run));
        while let [.., a, b] = self.runs.as_slice() {
            if a.len() > 2 * b.len() || a.mem() + b.mem() > max {
                break;
            }
            let merged = Run::merge(a, b);
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(Arc::new(merged));
        }
        self.msgs = self.runs.iter().map(|r| r.len()).sum();
        self.mem = self.runs.iter().map(|r| r.mem()).sum();
        self.bytes = self.runs.iter().map(|r| r.bytes()).sum();
    }
}

/// The data blocks buffered `KDAT` inserts may keep from reuse (the blocks
/// they replace are freed only when they reach a leaf), at most, in bytes,
/// as a multiple of the buffer's memory bound: past it the buffers are
/// applied, so that overwritten file data returns to the free space every
/// few commits instead of the allocator moving on through fresh space.
const RETAIN_FACTOR: usize = 4;

/// Memory a batch is counted as, buffered.
fn mem_of(msgs: &[Msg]) -> usize {
    msgs.iter().map(|m| 4 + 2 * (m.size() - 2)).sum()
}

/// A bound on the blocks that applying `n` messages of `bytes` (as node
/// buffer records) to a tree of height `h` and `nodes` nodes in one batch
/// can allocate. Every node the batch reaches is rewritten once, as one
/// node or a few after a split, plus at most one rewritten sibling — at
/// most 4 blocks per message and level, and at most 4 per node of the tree
/// plus the nodes the new content needs (leaves at least half full, and
/// their parents) — plus a new root level. Deliberately generous: when
/// space is that tight, upserts are simply applied at once. An unknown node
/// count (`TreeRec::NODES_UNKNOWN`) leaves only the per-message bound.
pub(super) fn drain_bound(n: usize, bytes: usize, h: u32, nodes: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let per_msg = 4 * n as u64 * (u64::from(h) + 1);
    let grow = (2 * bytes as u64).div_ceil(LEAFSPC as u64);
    let per_node = nodes
        .saturating_add(u64::from(h) + 1)
        .saturating_add(grow.saturating_mul(2))
        .saturating_mul(4);
    per_msg.min(per_node) + 16
}

/// Blocks writing `bytes` of records into a fresh log chain may take.
pub(super) fn log_bound(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(LOGSPC as u64 * 15 / 16) + 1
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

    /// What applying every buffer and writing every log could allocate,
    /// with `extra` = (tree, messages, bytes) more for one tree.
    fn buffered_bound(m: &Mutation, extra: Option<(TreeId, usize, usize)>) -> u64 {
        m.trees
            .iter()
            .enumerate()
            .map(|(i, ts)| {
                let (n, b) = extra
                    .filter(|(t, _, _)| t.0 == i)
                    .map_or((0, 0), |(_, n, b)| (n, b));
                let (n, bytes) = (ts.wbuf.msgs + n, ts.wbuf.bytes + b);
                if n == 0 {
                    return 0;
                }
                drain_bound(n, bytes, ts.root.height, ts.nodes) + log_bound(bytes)
            })
            .sum()
    }

    /// Accept a batch for tree `t`: buffer it, or apply it at once when a
    /// limit says so.
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
        let never = t == TreeId::SNAP || cap == 0 || msgs.iter().any(|x| x.op == Op::Clobber);
        if never {
            return self.upsert_locked(m, t, msgs, tier).map(|()| Buffered::No);
        }
        tree::validate(&msgs)?;
        if msgs.is_empty() {
            return Ok(Buffered::Yes);
        }
        // As the tree would on its fast path: the root must read back.
        self.check_root(&ts.root)?;
        let n = msgs.len();
        let bytes: usize = msgs.iter().map(Msg::size).sum();
        if Self::buffered_bound(m, Some((t, n, bytes))) > self.normal_headroom() {
            return self.upsert_locked(m, t, msgs, tier).map(|()| Buffered::No);
        }
        let total: usize = m.trees.iter().map(|t| t.wbuf.mem() + t.log.mem()).sum();
        let ts = m.tree(t)?;
        let log_full =
            log_bound(ts.wbuf.log_bytes() + bytes + ts.log.unlogged()) > MLOG_MAX_BLOCKS / 2;
        let dat = msgs
            .iter()
            .filter(|x| x.op == Op::Insert && x.key.first() == Some(&KDAT))
            .count();
        let held: usize = m.trees.iter().map(|t| t.wbuf.dat).sum();
        let retained = (held + dat).saturating_mul(BLKSZ) > RETAIN_FACTOR.saturating_mul(cap);
        if total + mem_of(&msgs) > cap || log_full || retained {
            self.drain_all(m)?;
        }
        let freed = self.take_back_overwritten(m, t, &msgs)?;
        let ts = m.tree_mut(t)?;
        ts.log.accept(&msgs);
        ts.wbuf.push(Run::new(&msgs), cap / 4);
        ts.dirty = true;
        let (root, runs) = (ts.root, ts.wbuf.runs());
        self.publish(t, root, runs);
        Ok(if freed > 0 {
            Buffered::Freeing
        } else {
            Buffered::Yes
        })
    }

    /// Read a tree's root as an upsert would: verified, at its level.
    fn check_root(&self, root: &Root) -> Result<()> {
        let b = self.read_block_writer(&root.bp, true)?;
        let level = NodeView::new(&b[..])
            .map_err(|e| e.at(root.bp.addr))?
            .level();
        if u32::from(level) + 1 != root.height {
            return Err(Error::corrupt(
                root.bp.addr,
                CorruptKind::Level,
                format!("root at level {level} of a tree of height {}", root.height),
            ));
        }
        Ok(())
    }

    /// Whether a batch applied now must take tree `t`'s buffer with it: the
    /// buffer holds a message for one of its keys (the batch would land
    /// below it), or the batch is empty (a drain).
    pub(super) fn needs_buffer(m: &Mutation, t: TreeId, msgs: &[Msg]) -> Result<bool> {
        let ts = m.tree(t)?;
        if ts.wbuf.is_empty() {
            return Ok(false);
        }
        let runs = ts.wbuf.run_list();
        Ok(msgs.is_empty() || msgs.iter().any(|x| pending::has_key(runs, &x.key)))
    }

    /// Apply tree `t`'s buffer, if any, at `tier`.
    pub(super) fn drain(&self, m: &mut Mutation, t: TreeId, tier: Tier) -> Result<()> {
        if m.tree(t)?.wbuf.is_empty() {
            return Ok(());
        }
        self.upsert_locked(m, t, Vec::new(), tier)
    }

    /// Apply every open tree's buffer: at `Normal`, then at `Reserve` for a
    /// tree that ran out of space. Nothing changes for a tree whose buffer
    /// fails. A closed tree (retired, clean: its buffer is all in its log)
    /// is left alone: applying it would give it a root its record could
    /// not be written with (no log write for a closed tree), and its
    /// messages are applied when it is next mounted.
    pub(super) fn drain_all(&self, m: &mut Mutation) -> Result<()> {
        for i in 0..m.trees.len() {
            if m.trees[i].closed {
                continue;
            }
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

    /// Apply every tree's buffered messages to the tree now (a quiet
    /// moment: nothing else is waiting). Readers see no difference; the
    /// next [`Store::sync`] records the new roots and empties the logs.
    /// Returns whether anything was applied.
    pub fn checkpoint(&self) -> Result<bool> {
        self.writable()?;
        let mut m = self.mutlk.lock();
        let any = m.trees.iter().any(|t| !t.closed && !t.wbuf.is_empty());
        if any {
            self.drain_all(&mut m)?;
        }
        self.collect(m)?;
        Ok(any)
    }

    /// Messages buffered over all trees (for statistics).
    pub(super) fn buffered_msgs(m: &Mutation) -> u64 {
        m.trees.iter().map(|t| t.wbuf.msgs as u64).sum()
    }
}
