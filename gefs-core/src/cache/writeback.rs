//! The writer's side of the cache: taking pinned blocks to write them, and
//! handing them back once they are on the device.
//!
//! Only the writer pins buffers: a sealed new block is *dirty* (pinned until
//! written), and a dirty block freed before it was written is in *limbo*
//! (pinned until reclaimed or written: the buffer is its only copy). So only
//! the writer can unpin them, and a taker that waited for them would wait
//! forever if it were the writer. The writer's takers
//! ([`Cache::get_relieving`], [`Cache::new_block_relieving`]) therefore make
//! room themselves before they wait: they write the shard's pinned blocks,
//! taken with [`Cache::take_for_room`].
//!
//! Invariants kept here:
//! - a taken block is held by its taker's handle and marked (dirty ones
//!   `Writing`; limbo ones keep their limbo pin), so it is neither recycled
//!   nor taken twice while its write is in flight;
//! - [`Cache::written`] releases exactly the pin the block had: the dirty
//!   pin of a `Writing` block, or the limbo pin of a limbo block that no
//!   reclaim released first;
//! - a written limbo block stays findable (freed, so recycled first) until
//!   its reclaim. Its bytes are on the device at its address, so a reader
//!   that finds it evicted reads the same bytes back. Writing it there is
//!   safe because a limbo block was allocated in the working interval: no
//!   durable state references its address, exactly as for any dirty block
//!   of that interval written back early. And the caller keeps reclaims out
//!   while it writes (the store's writeback lock), so the address cannot be
//!   reused, and a new block written there, before the old bytes landed.

use std::sync::atomic::Ordering;

use super::shard::{ShardState, State};
use super::{Block, Cache};
use crate::ids::BlockAddr;

impl Cache {
    /// Take up to `max` dirty blocks produced in commit intervals ≤ `upto`,
    /// marking them as being written. Hand each back with
    /// [`Cache::written`] once it is on the device.
    pub fn take_dirty(&self, upto: u64, max: usize) -> Vec<Block<'_>> {
        let mut out = Vec::new();
        for s in 0..self.shards.len() {
            let mut st = self.shards[s].st.lock();
            self.take_listed(s, &mut st, upto, max, &mut out);
        }
        out
    }

    /// Move shard `s`'s dirty blocks of intervals ≤ `upto` to `out`, marked
    /// as being written, until `out` holds `max`.
    fn take_listed<'a>(
        &'a self,
        s: usize,
        st: &mut ShardState,
        upto: u64,
        max: usize,
        out: &mut Vec<Block<'a>>,
    ) {
        let sh = &self.shards[s];
        let list = std::mem::take(&mut st.dirty);
        let mut keep = Vec::with_capacity(list.len());
        for i in list {
            let m = &mut st.meta[i as usize];
            m.listed = false;
            if m.state != State::Dirty {
                continue;
            }
            if m.interval > upto || out.len() >= max {
                m.listed = true;
                keep.push(i);
                continue;
            }
            let (addr, hash) = (m.addr, m.hash);
            st.set_state(i, State::Writing);
            self.rc(sh, i).fetch_add(1, Ordering::Relaxed);
            out.push(self.handle(s, i, addr, hash));
        }
        st.dirty = keep;
    }

    /// The blocks to write so that the shard serving `addr` gets buffers
    /// back (the writer's relief): all of that shard's dirty blocks, marked
    /// as being written; its limbo blocks too if `all` (the shard has no
    /// buffer left to recycle), or if they alone pin half the shard, or if
    /// it has no dirty block to write; and up to `others` dirty blocks of
    /// the other shards, so that writeback keeps pace everywhere. Limbo
    /// blocks are written only when needed because a reclaim frees their
    /// buffers without any I/O. Hand each back with [`Cache::written`] once
    /// it is on the device; keep reclaims out until then (module docs).
    pub fn take_for_room(&self, addr: BlockAddr, all: bool, others: usize) -> Vec<Block<'_>> {
        let s = self.shard_of(addr);
        let sh = &self.shards[s];
        let mut out = Vec::new();
        let mut st = sh.st.lock();
        self.take_listed(s, &mut st, u64::MAX, usize::MAX, &mut out);
        if st.nlimbo > 0 && (all || 2 * st.nlimbo >= sh.len as usize || out.is_empty()) {
            for i in 0..st.meta.len() as u32 {
                let m = &st.meta[i as usize];
                if m.limbo {
                    let (addr, hash) = (m.addr, m.hash);
                    // Held already (by the limbo pin), so no 0 → 1 rise.
                    self.rc(sh, i).fetch_add(1, Ordering::Relaxed);
                    out.push(self.handle(s, i, addr, hash));
                }
            }
        }
        drop(st);
        let max = out.len() + others;
        for k in 1..self.shards.len() {
            if out.len() >= max {
                break;
            }
            let o = (s + k) & self.mask;
            let mut st = self.shards[o].st.lock();
            self.take_listed(o, &mut st, u64::MAX, max, &mut out);
        }
        out
    }

    /// A block taken with [`Cache::take_dirty`] or [`Cache::take_for_room`]
    /// is on the device: release its dirty or limbo pin.
    pub fn written(&self, b: &Block<'_>) {
        let sh = &self.shards[b.shard as usize];
        let i = b.slot - sh.first;
        let mut st = sh.st.lock();
        let m = &st.meta[i as usize];
        if m.state == State::Writing {
            st.set_state(i, State::Clean);
            st.ndirty -= 1;
            self.release_locked(sh, &mut st, i);
        } else if m.limbo && m.cached && m.addr == b.addr {
            // A limbo block whose bytes are now on the device too (a reclaim
            // that came first has released the pin and unindexed it).
            st.meta[i as usize].limbo = false;
            st.nlimbo -= 1;
            self.release_locked(sh, &mut st, i);
        }
    }

    /// Whether the shard that would hold `addr` has at least half its
    /// buffers pinned, dirty or in limbo (the writer should make room there
    /// before adding more).
    pub fn under_pressure(&self, addr: BlockAddr) -> bool {
        let sh = &self.shards[self.shard_of(addr)];
        let st = sh.st.lock();
        2 * (st.ndirty + st.nlimbo) >= sh.len as usize
    }

    /// Dirty buffers in all shards.
    pub fn dirty_count(&self) -> usize {
        self.shards.iter().map(|s| s.st.lock().ndirty).sum()
    }

    /// Freed blocks never written, pinned until reclaimed or written.
    pub fn limbo_count(&self) -> usize {
        self.shards.iter().map(|s| s.st.lock().nlimbo).sum()
    }
}
