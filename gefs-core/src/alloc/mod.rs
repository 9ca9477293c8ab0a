//! The block allocator: arenas, their allocation logs, and the rules that
//! keep a freed block from being reused too early.
//!
//! The device between the two superblocks is cut into arenas (8 to 32, one
//! per 4 TiB, as the reference does). Each arena keeps its free space as a
//! range map in memory and as an append-only, hash-chained log on disk
//! (`log.rs`), replayed at open. Allocation picks an arena round-robin,
//! rotating every 2048 allocations, with data placed away from metadata by
//! the file's qid (the reference's policy, §5.3).
//!
//! The log is written only at commits ([`Allocator::commit`]): the blocks
//! handed out since the previous commit and the blocks that stopped being
//! referenced, as coalesced ranges, then a barrier. A block allocated and
//! freed between two commits never reaches the log at all (the reference
//! logs an alloc and a free for every copied root, §13.2 #22), and a free is
//! logged by the commit that stops referencing the block, so a crash never
//! forgets it (§13.2 #20).
//!
//! Reuse has two conditions, and the allocator enforces the second: a freed
//! block returns to the free map only through [`Allocator::release`], which
//! the store calls once no reader can reach the block (epochs) and — for a
//! block the durable state still used — once the commit that logged its free
//! is durable. Space comes in three tiers ([`Tier`]) so that removes and
//! syncs still work on a full device and the log can always be written
//! (§13.2 #19).

mod arena;
mod freemap;
mod log;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::superblock::{ArenaRec, Geometry};
use crate::ids::{BlockAddr, Gen};

use arena::Arena;
pub use arena::{ArenaStats, CommitOut, Tier};
pub use freemap::{runs, Conflict, FreeMap};
pub use log::{replay, Replayed};

/// Allocations per arena before moving on to the next one.
const ROTATE: u64 = 2048;

/// What a block is for, which decides where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Tree nodes and other metadata: packed from the top of an arena.
    Meta,
    /// File data of the file with qid `hint`. `seq` (a write reaching the end
    /// of its block) packs from the bottom, so sequential files stay
    /// contiguous.
    Data {
        /// The file's qid path.
        hint: u64,
        /// Sequential placement.
        seq: bool,
    },
}

/// How a freed block must wait before reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freed {
    /// Handed out since the last commit: reusable once no reader can see it.
    Fresh,
    /// Used by the durable state: its free is logged at the next commit, and
    /// it is reusable once that commit is durable and no reader can see it.
    Durable,
}

/// The allocator of one device.
pub struct Allocator {
    geo: Geometry,
    arenas: Box<[Mutex<Arena>]>,
    rr: AtomicU64,
}

impl std::fmt::Debug for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocator")
            .field("narena", &self.arenas.len())
            .finish()
    }
}

impl Allocator {
    /// A new device's allocator: every block free, no log written yet (the
    /// first [`Allocator::commit`] writes every arena's log).
    pub fn format(geo: Geometry) -> Result<Allocator> {
        let arenas = (0..geo.narena).map(|i| Arena::format(&geo, i).map(Mutex::new));
        Ok(Allocator {
            geo,
            arenas: arenas.collect::<Result<Vec<_>>>()?.into_boxed_slice(),
            rr: AtomicU64::new(0),
        })
    }

    /// The first allocation logs of arenas `range` of `geo` (arenas added
    /// to a grown device, `store/grow.rs`), under commit generation `gen`:
    /// their records, and the log blocks to write before any superblock
    /// names them. Each arena is all free but for its log block.
    pub fn fresh_arenas(
        geo: &Geometry,
        range: std::ops::Range<u32>,
        gen: Gen,
    ) -> Result<(Vec<ArenaRec>, CommitOut)> {
        let mut out = CommitOut::default();
        let mut recs = Vec::new();
        for i in range {
            recs.push(Arena::format(geo, i)?.commit(gen, &mut out)?);
        }
        Ok((recs, out))
    }

    /// Replay every arena's log as the superblock records it.
    pub fn open(dev: &dyn Device, geo: Geometry, recs: &[ArenaRec]) -> Result<Allocator> {
        if recs.len() != geo.narena as usize {
            return Err(Error::Internal(
                "arena records do not match the geometry".into(),
            ));
        }
        let mut arenas = Vec::with_capacity(recs.len());
        for (i, rec) in recs.iter().enumerate() {
            let r = replay(dev, &geo, i as u32, rec)?;
            arenas.push(Mutex::new(Arena::open(&geo, i as u32, r, *rec)));
        }
        Ok(Allocator {
            geo,
            arenas: arenas.into_boxed_slice(),
            rr: AtomicU64::new(0),
        })
    }

    /// The device layout.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Hand out one block, or [`Error::NoSpace`] when no arena has room at
    /// `tier`.
    pub fn alloc(&self, kind: Kind, tier: Tier) -> Result<BlockAddr> {
        let n = self.arenas.len() as u64;
        let r = self.rr.fetch_add(1, Ordering::Relaxed) / ROTATE;
        let (first, low) = match kind {
            Kind::Meta => (r, false),
            Kind::Data { hint, seq } => (hint % (n - 1).max(1) + r + 1, seq),
        };
        // First pass: skip busy arenas; second pass: wait for them.
        for pass in 0..2 {
            for t in 0..n {
                let i = ((first + t) % n) as usize;
                let mut a = match pass {
                    0 => match self.arenas[i].try_lock() {
                        Some(a) => a,
                        None => continue,
                    },
                    _ => self.arenas[i].lock(),
                };
                if let Some(addr) = a.alloc(tier, low) {
                    return Ok(addr);
                }
            }
        }
        Err(Error::NoSpace)
    }

    fn arena(&self, addr: BlockAddr) -> Result<&Mutex<Arena>> {
        self.geo
            .arena_of(addr)
            .and_then(|i| self.arenas.get(i as usize))
            .ok_or_else(|| Error::Internal(format!("block {addr} is in no arena")))
    }

    /// A block is no longer referenced; see [`Freed`] for what happens next.
    /// Freeing a block that is not allocated is an error, never ignored.
    pub fn free(&self, addr: BlockAddr) -> Result<Freed> {
        match self.arena(addr)?.lock().free(addr)? {
            true => Ok(Freed::Fresh),
            false => Ok(Freed::Durable),
        }
    }

    /// Blocks that waited long enough become reusable.
    pub fn release(&self, addrs: &[BlockAddr]) -> Result<()> {
        for &a in addrs {
            self.arena(a)?.lock().release(a)?;
        }
        Ok(())
    }

    /// Log this interval's changes in every arena that has any, under commit
    /// generation `gen`. Returns each arena's new record, the log blocks to
    /// write before the superblocks, and the blocks to [`release`] once the
    /// commit is durable.
    ///
    /// [`release`]: Allocator::release
    pub fn commit(&self, gen: Gen) -> Result<(Vec<ArenaRec>, CommitOut)> {
        let mut out = CommitOut::default();
        let mut recs = Vec::with_capacity(self.arenas.len());
        for a in self.arenas.iter() {
            recs.push(a.lock().commit(gen, &mut out)?);
        }
        Ok((recs, out))
    }

    /// The records of the last commit.
    pub fn records(&self) -> Vec<ArenaRec> {
        self.arenas.iter().map(|a| a.lock().rec()).collect()
    }

    /// Per-arena counters.
    pub fn stats(&self) -> Vec<ArenaStats> {
        self.arenas.iter().map(|a| a.lock().stats()).collect()
    }

    /// Blocks that can be handed out now, in all arenas.
    pub fn free_blocks(&self) -> u64 {
        self.arenas.iter().map(|a| a.lock().stats().free).sum()
    }

    /// Every free range of arena `i` (block numbers).
    pub fn free_ranges(&self, i: u32) -> Vec<(u64, u64)> {
        self.arenas
            .get(i as usize)
            .map(|a| a.lock().free_map().ranges().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
