//! The commit (sync) protocol.
//!
//! Under the mutation lock:
//! 0. every tree's messages accepted since its last log write are appended
//!    to its message log (`msglog.rs`), in new blocks;
//! 1. every changed tree's root and log are recorded in its snapshot
//!    record, in the snapshot tree (which is itself copy-on-write);
//! 2. the allocator appends this interval's allocations and frees to each
//!    changed arena's log, ending with a barrier, in newly allocated blocks;
//! 3. every dirty block and every new log block is written, then **flush**;
//! 4. superblock copy A is written, then **flush**;
//! 5. superblock copy B is written, then **flush**;
//! 6. the commit is done: trees move to fresh working generations, and the
//!    blocks this commit freed are deferred for reuse once readers leave.
//!
//! Crash argument: before the flush of step 4 completes, copy A on the
//! medium is either the old one or torn (its checksum fails), and copy B is
//! the old one; every block the old superblock reaches is intact, because
//! nothing a durable state references is ever overwritten (new blocks come
//! only from the free map, which holds no block the last durable state
//! uses, and log tails are copied, never rewritten). After step 4, copy A
//! is the new commit and everything it reaches was flushed in step 3. The
//! two copies are never in one flush epoch, so they cannot tear together
//! (the reference writes them together, F2). Opening picks the newest copy
//! whose checksum, log and roots verify.
//!
//! Any failed write or flush latches the store read-only and the commit
//! returns the error: a sync that saw an error is never reported done (F4).

use std::sync::atomic::Ordering;

use super::{Mutation, Store, TreeId};
use crate::alloc::Tier;
use crate::error::Result;
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::superblock::Superblock;
use crate::format::Encode;
use crate::ids::Gen;

/// What a completed commit produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit's sequence number (the superblocks' `commit_gen`).
    pub gen: u64,
    /// Whether anything had changed (an unchanged store writes nothing).
    pub wrote: bool,
}

impl Store {
    /// Make every change so far durable. Returns once both superblock copies
    /// are on the medium.
    pub fn sync(&self) -> Result<CommitInfo> {
        self.writable()?;
        // Wait for multi-call operations (`begin_op`) to finish.
        let _ops = self.ops.write();
        let mut m = self.mutlk.lock();
        if !m.dirty() {
            return Ok(CommitInfo {
                gen: m.commit_gen,
                wrote: false,
            });
        }
        let (t0, written0) = (
            std::time::Instant::now(),
            self.blocks_written.load(Ordering::Relaxed),
        );
        // Log the write buffers first; if a log cannot be written, nothing
        // durable has changed and the sync fails without latching.
        self.write_logs(&mut m)?;
        let r = self.commit_locked(&mut m);
        if let Err(e) = &r {
            self.latch(e);
        }
        let gen = r?;
        tracing::debug!(
            commit = gen,
            blocks = self.blocks_written.load(Ordering::Relaxed) - written0,
            ms = format_args!("{:.3}", t0.elapsed().as_secs_f64() * 1e3),
            "committed"
        );
        self.collect(m)?;
        Ok(CommitInfo { gen, wrote: true })
    }

    fn commit_locked(&self, m: &mut Mutation) -> Result<u64> {
        self.record_roots(m)?;
        let gen = m.commit_gen + 1;
        self.allocs.fetch_add(1, Ordering::Relaxed);
        let (arenas, out) = self.alloc.commit(Gen(gen))?;
        // Fresh working generations for every tree; nextgen is committed
        // with them, so a generation is never handed out twice.
        let mut wgens = Vec::with_capacity(m.trees.len());
        for _ in 0..m.trees.len() {
            wgens.push(m.take_gen());
        }
        let snap = m.tree(TreeId::SNAP)?.root;
        let sb = Superblock {
            version: crate::format::FORMAT_VERSION,
            geometry: self.geo,
            commit_gen: gen,
            nextgen: m.nextgen,
            nextqid: m.nextqid,
            flags: 0,
            snap_root: snap.bp,
            snap_height: snap.height,
            arenas,
        };
        while self.writeback(usize::MAX)? > 0 {}
        for (addr, b) in &out.writes {
            self.write_raw(&b[..], addr.0)?;
        }
        self.flush()?;
        let img = sb.encode();
        self.write_raw(&img[..], 0)?;
        self.flush()?;
        self.write_raw(&img[..], self.geo.sb_b().0)?;
        // On a device larger than the image (grown since, or a grow cut
        // short), copy B also goes to the device's last block: that is where
        // readers look when copy A does not decode, so it must never hold a
        // stale commit (`grow.rs`).
        let end = super::open::sb_b_addr(self.dev.size());
        if end != self.geo.sb_b() {
            self.write_raw(&img[..], end.0)?;
        }
        self.flush()?;
        m.commit_gen = gen;
        for (t, w) in m.trees.iter_mut().zip(wgens) {
            t.wgen = w;
            t.dirty = false;
        }
        m.close_idle();
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.defer_durable(out.release);
        Ok(gen)
    }

    /// Write each changed tree's root and log into its snapshot record.
    fn record_roots(&self, m: &mut Mutation) -> Result<()> {
        let mut msgs = Vec::new();
        for t in m.trees.iter_mut().skip(1).filter(|t| t.dirty) {
            t.rec.root = t.root.bp;
            t.rec.ht = t.root.height;
            t.rec.log = t.log.head_ptr();
            t.rec.nodes = t.nodes;
            msgs.push(Msg::insert(key::snap(t.rec.gen), t.rec.encode()));
        }
        msgs.extend(self.flush_deadlists(m)?);
        if msgs.is_empty() {
            return Ok(());
        }
        self.upsert_locked(m, TreeId::SNAP, msgs, Tier::Reserve)
    }
}
