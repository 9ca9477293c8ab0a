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
//! cache at once (their unwritten contents are never written; the buffer
//! stays pinned so that readers in older epochs still find it) and deferred.
//! Class 2 blocks are handed to the allocator, which logs their free at the
//! next commit and returns them from it; the store defers them only after
//! that commit is durable (`commit.rs`). Either way reuse happens in
//! [`Store::collect`], which takes the writeback lock first so that no
//! write of a block's old contents can still be in flight.

use std::time::Duration;

use super::Store;
use crate::alloc::Freed;
use crate::error::{Error, Result};
use crate::format::Bptr;
use crate::ids::{BlockAddr, Gen};

/// Advances attempted after each change.
const ADVANCES: usize = 3;

/// What the epochs hold until readers are gone.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// One block born in the working generation, freed before any commit.
    Fresh(BlockAddr),
    /// Blocks whose frees a durable commit has logged.
    Durable(Vec<BlockAddr>),
}

impl Store {
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

    /// Durable frees of a commit that just completed.
    pub(crate) fn defer_durable(&self, addrs: Vec<BlockAddr>) {
        if !addrs.is_empty() {
            self.epochs.defer(Deferred::Durable(addrs));
        }
    }

    /// Reuse whatever readers have left behind. Never waits for readers,
    /// unless the backlog has grown past a quarter of the cache.
    pub(crate) fn collect(&self) -> Result<()> {
        for _ in 0..ADVANCES {
            match self.epochs.try_advance() {
                Some(items) => self.reuse(items)?,
                None => break,
            }
        }
        if self.epochs.pending() > self.cache.capacity() / 4 {
            self.collect_blocking()?;
        }
        Ok(())
    }

    /// Wait for readers until everything deferred so far is reusable.
    pub(crate) fn collect_blocking(&self) -> Result<()> {
        let mut nap = 0u64;
        let items = self.epochs.drain(|| {
            nap = (nap + 1).min(1000);
            std::thread::sleep(Duration::from_micros(nap * 10));
        });
        self.reuse(items)
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
        self.alloc.release(&addrs).inspect_err(|_| self.latch())
    }
}
