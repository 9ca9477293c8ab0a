//! When a freed block may be reused.
//!
//! A block becomes reusable only when both hold:
//! 1. no reader can still reach it: it was unlinked, then deferred through
//!    the epochs ([`crate::epoch`]), and two epoch advances have passed;
//! 2. no durable state references it: either it was born in its tree's
//!    working generation (allocated since the last commit, so no commit ever
//!    referenced it), or the commit that stopped referencing it — and logged
//!    its free — has completed both superblock writes and flushes.
//!
//! Class 1 blocks (born in the working generation) are marked freed in the
//! cache at once and deferred: their unwritten contents are not written
//! (unless the writer needs the buffer back, `io.rs`), and stay findable for
//! readers in older epochs (pinned while the buffer is their only copy).
//! Class 2 blocks are handed to the allocator, which logs their free at the
//! next commit and returns them from it; the store defers them only after
//! that commit is durable (`commit.rs`). Either way reuse happens in
//! [`Store::collect`], which takes the writeback lock first so that no
//! write of a block's old contents can still be in flight.
//!
//! **Pinning a commit** ([`Store::pin_commit`]): while a [`PinnedCommit`]
//! lives, the durable frees of every later commit are parked instead of
//! deferred, so nothing the pinned commit reaches is reused, and the device
//! keeps holding that commit's blocks unchanged (only commits write the
//! superblocks, which the pin captures, and new blocks go only to addresses
//! free in the allocator, which parked blocks are not). Commits, writes and
//! the reuse of blocks no commit saw carry on; when the last pin goes, the
//! parked frees are deferred through the epochs as usual. The cost is
//! space: what commits free meanwhile is reusable only afterwards. The
//! online check reads a pinned commit (`check::check_pinned`).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::MutexGuard;

use super::{Mutation, Store};
use crate::alloc::Freed;
use crate::device::DeviceExt;
use crate::error::{Error, Result};
use crate::format::Bptr;
use crate::ids::{BlockAddr, Gen};

/// Advances attempted after each change.
const ADVANCES: usize = 3;

/// Durable frees parked while commits are pinned.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Live pins.
    pins: usize,
    /// Frees of commits made while pinned.
    parked: Vec<BlockAddr>,
}

/// A commit whose blocks stay unchanged on the device while this lives
/// ([`Store::pin_commit`]), with its superblock copies as they were on the
/// device when it was pinned.
pub struct PinnedCommit<'s> {
    store: &'s Store,
    /// Copy A (block 0) and copy B (the device's last block): where each
    /// was read, and its bytes.
    pub superblocks: [(u64, Box<[u8]>); 2],
    /// The commit's sequence number.
    pub commit_gen: u64,
}

impl std::fmt::Debug for PinnedCommit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedCommit")
            .field("commit_gen", &self.commit_gen)
            .finish()
    }
}

impl PinnedCommit<'_> {
    /// The store's device.
    pub fn device(&self) -> &Arc<dyn crate::device::Device> {
        self.store.device()
    }
}

impl Drop for PinnedCommit<'_> {
    fn drop(&mut self) {
        let parked = {
            let mut h = self.store.held.lock();
            h.pins -= 1;
            if h.pins > 0 {
                return;
            }
            std::mem::take(&mut h.parked)
        };
        self.store.defer_durable(parked);
    }
}

/// What the epochs hold until readers are gone.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// One block born in the working generation, freed before any commit.
    Fresh(BlockAddr),
    /// Blocks whose frees a durable commit has logged.
    Durable(Vec<BlockAddr>),
}

impl Store {
    /// Release one block nobody references any more, whatever its age (the
    /// allocator's free path for what snapshot deletion proves unused).
    pub(crate) fn release_block(&self, addr: BlockAddr) -> Result<()> {
        self.free_block(
            &Bptr {
                addr,
                hash: 0,
                gen: Gen(0),
            },
            Gen(u64::MAX),
        )
    }

    /// A tree (working generation `wgen`) no longer references `bp`, and no
    /// snapshot holds it. The allocator knows whether a commit has seen the
    /// block: if not, it is reusable once readers leave (class 1), however
    /// old its generation (a block born before a snapshot that was deleted
    /// again before any commit is one); if so, once the next commit is
    /// durable (class 2). A block born in the working generation that a
    /// commit has seen would be a bookkeeping error, and is reported.
    pub(crate) fn free_block(&self, bp: &Bptr, wgen: Gen) -> Result<()> {
        match self.alloc.free(bp.addr)? {
            Freed::Fresh => {
                self.cache.free(bp.addr)?;
                self.epochs.defer(Deferred::Fresh(bp.addr));
                Ok(())
            }
            Freed::Durable if bp.gen < wgen => Ok(()),
            Freed::Durable => Err(Error::Internal(format!(
                "block {} born in the working generation {wgen} was already committed",
                bp.addr
            ))),
        }
    }

    /// Durable frees of a commit that just completed (parked while a commit
    /// is pinned).
    pub(crate) fn defer_durable(&self, addrs: Vec<BlockAddr>) {
        if addrs.is_empty() {
            return;
        }
        {
            let mut h = self.held.lock();
            if h.pins > 0 {
                h.parked.extend(addrs);
                return;
            }
        }
        self.epochs.defer(Deferred::Durable(addrs));
    }

    /// Pin the last commit: until the returned guard drops, no block it
    /// reaches is reused or overwritten, while commits and writes go on.
    /// Takes the mutation lock briefly, so that no commit is under way
    /// while the superblock copies are read.
    pub fn pin_commit(&self) -> Result<PinnedCommit<'_>> {
        let m = self.mutlk.lock();
        self.held.lock().pins += 1;
        // From here the guard owns the pin, even if a read below fails.
        let mut pin = PinnedCommit {
            store: self,
            superblocks: [(0, Box::default()), (0, Box::default())],
            commit_gen: m.commit_gen,
        };
        let mut copy_a = vec![0u8; crate::format::BLKSZ];
        let a = self.dev.read_bytes(&mut copy_a, 0).ok().and_then(|()| {
            crate::format::superblock::Superblock::decode(&copy_a, BlockAddr(0)).ok()
        });
        let b = super::open::copy_b_addr(self.dev.size(), a.as_ref());
        for (i, at) in [0, b.0].into_iter().enumerate() {
            let mut buf = vec![0u8; crate::format::BLKSZ].into_boxed_slice();
            self.dev.read_bytes(&mut buf, at)?;
            pin.superblocks[i] = (at, buf);
        }
        drop(m);
        Ok(pin)
    }

    /// Reuse whatever readers have left behind, at the end of a change:
    /// with the mutation lock `m` held, after the change published its new
    /// roots, a few epoch advances that no reader blocks; then, the lock
    /// released, if the backlog has grown past a quarter of the cache
    /// (blocks, not buffers: only limbo blocks pin buffers, and the writer
    /// writes them when it needs their buffers), wait for readers until
    /// everything deferred so far is reused. Readers may wait for the
    /// mutation lock inside their guard, so nobody waits for them with it.
    ///
    /// Every epoch advance happens under the mutation lock and outside any
    /// change. A change defers the blocks it frees as the tree reports
    /// them, before the root that drops them is published, and a reader
    /// that pins an epoch in between still reaches them from the old root.
    /// Two advances between the deferral and the publish (by the writer's
    /// own cache relief, or by a thread collecting after its change while
    /// another thread's change is under way) would let that reader's epoch
    /// pass without blocking the advance that hands them back. With every
    /// advance after the publish, a reader that pinned before it is in the
    /// deferral's epoch and blocks the hand-back: the `epoch.rs` argument.
    pub(super) fn collect(&self, m: MutexGuard<'_, Mutation>) -> Result<()> {
        for _ in 0..ADVANCES {
            match self.epochs.try_advance() {
                Some(items) => self.reuse(items)?,
                None => break,
            }
        }
        drop(m);
        if self.epochs.pending() > self.cache.capacity() / 4 {
            self.collect_blocking()?;
        }
        Ok(())
    }

    /// Wait for readers until everything deferred so far is reusable; each
    /// advance under the mutation lock (see [`Store::collect`]), the waits
    /// outside it.
    fn collect_blocking(&self) -> Result<()> {
        let mut nap = 0u64;
        let mut advanced = 0;
        while advanced < 3 {
            if !self.epochs.is_blocked() {
                let _m = self.mutlk.lock();
                if let Some(items) = self.epochs.try_advance() {
                    advanced += 1;
                    self.reuse(items)?;
                    continue;
                }
            }
            nap = (nap + 1).min(1000);
            std::thread::sleep(Duration::from_micros(nap * 10));
        }
        Ok(())
    }

    fn reuse(&self, items: Vec<Deferred>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let _wb = self.wb.lock();
        let mut addrs = Vec::new();
        for it in items {
            match it {
                Deferred::Fresh(a) => addrs.push(a),
                Deferred::Durable(v) => addrs.extend(v),
            }
        }
        for &a in &addrs {
            self.cache.reclaim(a);
        }
        self.alloc.release(&addrs).inspect_err(|e| self.latch(e))
    }
}
