//! The two [`NodeStore`] contexts the store runs tree code in: readers
//! (lookups, scans, walks; any thread, inside an epoch guard) and the writer
//! (upserts, under the mutation lock, for one tree).

use std::cell::RefCell;
use std::sync::Arc;

use super::Store;
use crate::alloc::{Kind, Tier};
use crate::cache::Block;
use crate::error::{Error, Result};
use crate::format::{Bptr, BLKSZ};
use crate::ids::Gen;
use crate::tree::pending::{no_runs, Run, Runs};
use crate::tree::NodeStore;

/// A read-only context: reads verified nodes, refuses to write. It may
/// carry a tree's write buffer ([`NodeStore::pending`]).
pub struct ReadCtx<'s> {
    s: &'s Store,
    runs: Runs,
}

impl<'s> ReadCtx<'s> {
    /// A context that sees the tree's blocks only.
    pub(crate) fn new(s: &'s Store) -> ReadCtx<'s> {
        ReadCtx { s, runs: no_runs() }
    }

    /// A context that also applies a tree's write buffer.
    pub(crate) fn with_runs(s: &'s Store, runs: Runs) -> ReadCtx<'s> {
        ReadCtx { s, runs }
    }

    /// Read a data block (verified).
    pub fn read_data(&self, bp: &Bptr) -> Result<Block<'s>> {
        self.s.read_block(bp, false)
    }
}

impl<'s> NodeStore for ReadCtx<'s> {
    type Ref = Block<'s>;

    fn read(&self, bp: &Bptr) -> Result<Block<'s>> {
        self.s.read_block(bp, true)
    }

    fn write<R>(
        &self,
        _build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'s>, R)> {
        Err(Error::ReadOnly)
    }

    fn free(&self, _bp: &Bptr) -> Result<()> {
        Err(Error::ReadOnly)
    }

    fn pending(&self) -> &[Arc<Run>] {
        &self.runs
    }
}

/// Which freed blocks a tree may release, and which its snapshots still
/// hold (see `reclaim.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// The tree's working generation: blocks born in it are class 1.
    pub(crate) wgen: Gen,
    /// The newest snapshot of the tree's history (0 if none): a block born
    /// at or before it is still used by that snapshot, and is deadlisted.
    pub(crate) pred: u64,
    /// The fork point (0 if none): blocks born at or before it belong to the
    /// history the tree was forked from, and are never released by it.
    pub(crate) base: u64,
}

impl Policy {
    /// A tree no snapshot shares blocks with.
    pub(crate) fn unshared(wgen: Gen) -> Policy {
        Policy {
            wgen,
            pred: 0,
            base: 0,
        }
    }
}

/// The writer's context for one upsert on one tree. Frees are applied as
/// the tree reports them; the first failure is remembered and reported by
/// [`WriteCtx::finish`] (the tree cannot undo a free, so the store latches).
pub(crate) struct WriteCtx<'s> {
    s: &'s Store,
    policy: Policy,
    tier: Tier,
    failed: RefCell<Option<Error>>,
    killed: RefCell<Vec<Bptr>>,
}

impl<'s> WriteCtx<'s> {
    pub(crate) fn new(s: &'s Store, policy: Policy, tier: Tier) -> WriteCtx<'s> {
        WriteCtx {
            s,
            policy,
            tier,
            failed: RefCell::new(None),
            killed: RefCell::new(Vec::new()),
        }
    }

    /// Report a free that failed during the operation (such a failure means
    /// the allocator and the tree disagree; the store goes read-only rather
    /// than risk reusing a live block), and hand back the blocks a snapshot
    /// still holds, for the tree's deadlist.
    pub(crate) fn finish(self) -> Result<Vec<Bptr>> {
        match self.failed.into_inner() {
            None => Ok(self.killed.into_inner()),
            Some(e) => {
                self.s.latch();
                Err(e)
            }
        }
    }
}

impl<'s> NodeStore for WriteCtx<'s> {
    type Ref = Block<'s>;

    fn read(&self, bp: &Bptr) -> Result<Block<'s>> {
        self.s.read_block_writer(bp, true)
    }

    fn write<R>(
        &self,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'s>, R)> {
        self.s
            .new_block(Kind::Meta, self.tier, self.policy.wgen, build)
    }

    fn free(&self, bp: &Bptr) -> Result<()> {
        let p = self.policy;
        if bp.gen.0 < p.wgen.0 && bp.gen.0 <= p.base {
            return Ok(());
        }
        if bp.gen.0 < p.wgen.0 && bp.gen.0 <= p.pred {
            self.killed.borrow_mut().push(*bp);
            return Ok(());
        }
        let r = self.s.free_block(bp, p.wgen);
        if let Err(e) = &r {
            let mut f = self.failed.borrow_mut();
            if f.is_none() {
                *f = Some(Error::Internal(format!("freeing {bp}: {e}")));
            }
        }
        r
    }
}
