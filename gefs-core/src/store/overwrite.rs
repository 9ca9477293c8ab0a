//! Buffered overwrites: a data block a buffered write replaces before any
//! log or commit has seen it is freed at once, not when the buffer reaches
//! the tree.
//!
//! A `KDAT` insert kept in the write buffer (`wbuf.rs`) replaces the file's
//! old block only when it reaches a leaf, which frees the block there. A
//! file overwritten in place (the same blocks, again and again, between two
//! commits) would so hold every block each write allocated until the buffer
//! is applied: blocks no one can read any more, dirty in the cache, written
//! back to make room. The reference frees a block born in the current
//! generation at once (`freeblk`, after the epoch); this is the same for the
//! buffer.
//!
//! When a batch is buffered, each `KDAT` insert whose key's newest buffered
//! message is a `KDAT` insert `A` takes `A` back — removes it from the
//! buffer and from the records not yet logged — and frees `A`'s block, if:
//! - `A` is in no log: the tree's chain is stale (the next log write writes
//!   the whole buffer), or `A` is the newest of the records accepted since
//!   the last log write for its key (`Log::unlogged_at`; the next log write
//!   leaves it out). So no durable state and no snapshot references the
//!   block (a snapshot writes the tree's log first);
//! - the block was born in the tree's working generation (it was allocated
//!   since the last commit and is class 1, `reclaim.rs`): the allocator
//!   confirms it (`Freed::Fresh`), or the store latches as for any failed
//!   free;
//! - the run holding `A` is small, or loses many messages to the batch:
//!   runs are immutable (readers share them), so each run that loses
//!   messages is copied without them, and that copy must cost little
//!   against the batch ([`COPY_PER_TAKEN`]). In place overwrites replace
//!   the messages of the last few batches, which sit in the newest runs,
//!   the small ones.
//!
//! What stays true: the buffer and the log still hold, for every key, the
//! messages whose combined effect the tree gets — the new insert replaces
//! whatever `A` replaced, and frees it when it reaches the leaf, exactly as
//! `A` would have; `A`'s block is referenced by nothing the tree, a log, a
//! reader's new view or a snapshot holds. Readers that took the buffer
//! before (with `A` in it) are protected by the epochs: the block is
//! deferred before the new runs are published, and handed back only after
//! two advances past the publish (`Store::collect`). The log holds exactly
//! the buffer after every log write, as before: `A` is gone from both.
//!
//! Crash argument: the block was allocated after the last commit, and
//! neither its allocation nor any record naming it was ever written to a
//! log, so the durable state is the same whether it is freed or not; its
//! address may be reused at once like any class 1 block.

use super::{Mutation, Store, TreeId};
use crate::error::Result;
use crate::format::key::KDAT;
use crate::format::msg::{Msg, Op};
use crate::format::{Bptr, PTRSZ};

/// A run loses messages to a batch only if copying it costs at most this
/// many messages per message taken out, beyond [`SMALL_RUN`]: runs are
/// copied without what they lose, and a large run losing little is left as
/// it is (its inserts are freed when the buffer reaches the tree).
const COPY_PER_TAKEN: usize = 8;
/// Runs this small always may lose messages.
const SMALL_RUN: usize = 64;

impl Store {
    /// Take back, for tree `t`, the buffered `KDAT` inserts that `msgs`
    /// replace and free their blocks (module docs). Call with the batch
    /// about to be buffered, before the new runs are published. Returns
    /// how many blocks were freed.
    pub(super) fn take_back_overwritten(
        &self,
        m: &mut Mutation,
        t: TreeId,
        msgs: &[Msg],
    ) -> Result<usize> {
        let ts = m.tree_mut(t)?;
        if ts.wbuf.is_empty() {
            return Ok(0);
        }
        let wgen = ts.wgen;
        // (run, message, block, where it stands in the log).
        let mut cands = Vec::new();
        for (n, msg) in msgs.iter().enumerate() {
            if msg.op != Op::Insert || msg.key.first() != Some(&KDAT) {
                continue;
            }
            // Only the first of the batch's messages for a key replaces a
            // buffered one.
            if msgs[..n].iter().any(|x| x.key == msg.key) {
                continue;
            }
            let Some((r, i)) = ts.wbuf.newest(&msg.key) else {
                continue;
            };
            let Some((op, _, arg)) = ts.wbuf.get(r, i) else {
                continue;
            };
            if op != Op::Insert || arg.len() != PTRSZ {
                continue;
            }
            let Ok(bp) = Bptr::from_slice(arg) else {
                continue;
            };
            if bp.is_none() || bp.gen < wgen {
                continue;
            }
            let Some(at) = ts.log.unlogged_at(op, &msg.key, arg) else {
                continue;
            };
            cands.push((r, i, bp, at));
        }
        cands.sort_unstable_by_key(|c| (c.0, c.1));
        let mut taken = Vec::with_capacity(cands.len());
        for c in cands.chunk_by(|a, b| a.0 == b.0) {
            if ts.wbuf.run_len(c[0].0) > SMALL_RUN + COPY_PER_TAKEN * c.len() {
                continue;
            }
            for &(r, i, bp, at) in c {
                if let Err(e) = self.free_block(&bp, wgen) {
                    self.latch(&e);
                    return Err(e);
                }
                ts.log.forget(at);
                taken.push((r, i));
            }
        }
        ts.wbuf.take_dat(&taken);
        Ok(taken.len())
    }
}
