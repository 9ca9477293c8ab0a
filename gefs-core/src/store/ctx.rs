//! The two [`NodeStore`] contexts the store runs tree code in: readers
//! (lookups, scans, walks; any thread, inside an epoch guard) and the writer
//! (upserts, under the mutation lock, for one tree).

use std::cell::RefCell;

use super::Store;
use crate::alloc::{Kind, Tier};
use crate::cache::Block;
use crate::error::{Error, Result};
use crate::format::{Bptr, BLKSZ};
use crate::ids::Gen;
use crate::tree::NodeStore;

/// A read-only context: reads verified nodes, refuses to write.
pub struct ReadCtx<'s> {
    s: &'s Store,
}

impl<'s> ReadCtx<'s> {
    pub(crate) fn new(s: &'s Store) -> ReadCtx<'s> {
        ReadCtx { s }
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
}

/// The writer's context for one upsert on one tree. Frees are applied as
/// the tree reports them; the first failure is remembered and reported by
/// [`WriteCtx::finish`] (the tree cannot undo a free, so the store latches).
pub(crate) struct WriteCtx<'s> {
    s: &'s Store,
    wgen: Gen,
    tier: Tier,
    failed: RefCell<Option<Error>>,
}

impl<'s> WriteCtx<'s> {
    pub(crate) fn new(s: &'s Store, wgen: Gen, tier: Tier) -> WriteCtx<'s> {
        WriteCtx {
            s,
            wgen,
            tier,
            failed: RefCell::new(None),
        }
    }

    /// Report a free that failed during the operation. Such a failure means
    /// the allocator and the tree disagree; the store goes read-only rather
    /// than risk reusing a live block.
    pub(crate) fn finish(self) -> Result<()> {
        match self.failed.into_inner() {
            None => Ok(()),
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
        self.s.read_block(bp, true)
    }

    fn write<R>(
        &self,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'s>, R)> {
        self.s.new_block(Kind::Meta, self.tier, self.wgen, build)
    }

    fn free(&self, bp: &Bptr) -> Result<()> {
        let r = self.s.free_block(bp, self.wgen);
        if let Err(e) = &r {
            let mut f = self.failed.borrow_mut();
            if f.is_none() {
                *f = Some(Error::Internal(format!("freeing {bp}: {e}")));
            }
        }
        r
    }
}
