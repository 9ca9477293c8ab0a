//! One arena: its block sets and its allocation log.
//!
//! Every block of the arena is in exactly one of these states, and the
//! *log view* (what replaying the durable log says) follows from it:
//!
//! | set | meaning | log view |
//! |---|---|---|
//! | `free` | may be handed out now | free |
//! | `fresh` | handed out since the last commit; its Alloc is not logged yet | free |
//! | `limbo` | logged free (or never logged allocated) but not reusable yet: readers may still see it, or the commit that freed it is not yet durable | free |
//! | `dying` | unreferenced since the last commit, but the durable state still uses it; logged Free at the next commit | allocated |
//! | (none) | allocated | allocated |
//!
//! So `logged_free = |free| + |fresh| + |limbo|` at all times, and a commit
//! turns `fresh` into allocated and `dying` into `limbo` by appending exactly
//! those entries. Nothing is ever handed out twice: a block leaves `free`
//! only by allocation, and returns only through [`Arena::release`] after the
//! store has proved it unreachable (epochs) and its free durable (commits).

use crate::error::{Error, Result};
use crate::format::log::LogEntry;
use crate::format::superblock::{ArenaRec, Geometry};
use crate::format::{block_hash, Bptr, BLKSZ, BLKSZ_U64, LOGSPC};
use crate::ids::{BlockAddr, Gen};

use super::freemap::{runs, FreeMap};
use super::log::{build_block, OpenLog, Replayed, SEAL_SLACK};

/// How deep into an arena's free space an allocation may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Ordinary writes: stop at the reserve.
    Normal,
    /// Removes, snapshot deletion and syncs: may use the reserve, but not the
    /// last blocks kept for the allocation log itself.
    Reserve,
    /// The allocation log: may take the very last block.
    Log,
}

/// Blocks to write for one commit, and the addresses that become reusable
/// once that commit is durable (and no reader can see them).
#[derive(Debug, Default)]
pub struct CommitOut {
    /// Log blocks to write before the superblocks.
    pub writes: Vec<(BlockAddr, Box<[u8; BLKSZ]>)>,
    /// Freed by this commit; reusable after it is durable.
    pub release: Vec<BlockAddr>,
}

/// Counters for one arena.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ArenaStats {
    /// Arena number.
    pub index: u32,
    /// First byte of the arena.
    pub base: u64,
    /// Blocks in the arena.
    pub blocks: u64,
    /// Blocks that can be handed out now.
    pub free: u64,
    /// Free ranges.
    pub ranges: usize,
    /// Blocks handed out since the last commit.
    pub fresh: u64,
    /// Blocks waiting for readers or durability before reuse.
    pub limbo: u64,
    /// Blocks freed since the last commit, still used by the durable state.
    pub dying: u64,
    /// Blocks ordinary writes may not use.
    pub reserve: u64,
    /// Blocks only the log may use.
    pub log_reserve: u64,
    /// Blocks in the log chain.
    pub log_blocks: u64,
    /// Free blocks according to the log.
    pub logged_free: u64,
    /// Times the log was rewritten compressed since open.
    pub compressions: u64,
}

/// One arena's in-memory state.
#[derive(Debug)]
pub(crate) struct Arena {
    index: u32,
    lo: u64,
    nblocks: u64,
    free: FreeMap,
    fresh: FreeMap,
    limbo: FreeMap,
    dying: FreeMap,
    log: OpenLog,
    logged_free: u64,
    reserve: u64,
    log_reserve: u64,
    rec: ArenaRec,
    compressions: u64,
}

/// Blocks kept for the log alone: enough for a few commits' worth of
/// sealed blocks even when every ordinary and reserve block is gone.
fn log_reserve_for(nblocks: u64) -> u64 {
    (nblocks / 256).clamp(8, 64)
}

/// Blocks kept back from ordinary writes (log reserve included), as the
/// reference sizes it: 1/64 of the arena, 16 to 512 blocks.
fn reserve_for(nblocks: u64) -> u64 {
    (nblocks / 64).clamp(16, 512) + log_reserve_for(nblocks)
}

impl Arena {
    /// A fresh arena for mkfs: everything free, the log not yet written.
    pub(crate) fn format(geo: &Geometry, index: u32) -> Result<Arena> {
        let lo = geo.arena_base(index) / BLKSZ_U64;
        let n = geo.arena_blocks();
        let mut free = FreeMap::new();
        free.insert(lo, n)
            .map_err(|_| Error::Internal("arena geometry".into()))?;
        let mut log = OpenLog {
            seq: 0,
            prev: Bptr::NONE,
            payload: Vec::new(),
            disk: None,
            sealed: Vec::new(),
        };
        log.push(&LogEntry::Free {
            addr: lo * BLKSZ_U64,
            len: n * BLKSZ_U64,
        });
        Ok(Arena::assemble(index, lo, n, free, log, n))
    }

    /// The arena as its replayed log left it.
    pub(crate) fn open(geo: &Geometry, index: u32, r: Replayed, rec: ArenaRec) -> Arena {
        let lo = geo.arena_base(index) / BLKSZ_U64;
        let logged = r.free.blocks();
        let mut a = Arena::assemble(index, lo, geo.arena_blocks(), r.free, r.open, logged);
        a.rec = rec;
        a
    }

    fn assemble(
        index: u32,
        lo: u64,
        n: u64,
        free: FreeMap,
        log: OpenLog,
        logged_free: u64,
    ) -> Arena {
        Arena {
            index,
            lo,
            nblocks: n,
            free,
            fresh: FreeMap::new(),
            limbo: FreeMap::new(),
            dying: FreeMap::new(),
            log,
            logged_free,
            reserve: reserve_for(n),
            log_reserve: log_reserve_for(n),
            rec: ArenaRec {
                log_tail: Bptr::NONE,
                log_blocks: 0,
                free_blocks: 0,
            },
            compressions: 0,
        }
    }

    fn floor(&self, tier: Tier) -> u64 {
        match tier {
            Tier::Normal => self.reserve,
            Tier::Reserve => self.log_reserve,
            Tier::Log => 0,
        }
    }

    /// Whether an allocation at `tier` can be served here.
    pub(crate) fn can_alloc(&self, tier: Tier) -> bool {
        self.free.blocks() > self.floor(tier)
    }

    fn bad(&self, b: u64, what: &str) -> Error {
        Error::Internal(format!(
            "arena {}: block {:#x} {what}",
            self.index,
            b * BLKSZ_U64
        ))
    }

    /// Hand out one block: the lowest for sequential data, else the highest.
    pub(crate) fn alloc(&mut self, tier: Tier, low: bool) -> Option<BlockAddr> {
        if !self.can_alloc(tier) {
            return None;
        }
        let b = if low {
            self.free.take_low()?
        } else {
            self.free.take_high()?
        };
        if self.fresh.insert(b, 1).is_err() {
            // Unreachable by the set invariants; refuse rather than hand out twice.
            return None;
        }
        Some(BlockAddr::from_index(b))
    }

    /// A block is no longer referenced. Returns whether it was handed out
    /// since the last commit (then it goes to limbo: reusable once readers
    /// are gone); otherwise the durable state still uses it and its free is
    /// logged at the next commit.
    pub(crate) fn free(&mut self, addr: BlockAddr) -> Result<bool> {
        let b = addr.index();
        if self.fresh.remove(b, 1).is_ok() {
            self.limbo
                .insert(b, 1)
                .map_err(|_| self.bad(b, "in limbo twice"))?;
            return Ok(true);
        }
        if self.free.contains(b) || self.limbo.contains(b) {
            return Err(self.bad(b, "freed while free"));
        }
        if self.log.disk == Some(addr) || self.log.sealed.iter().any(|p| p.addr == addr) {
            return Err(self.bad(b, "is an allocation-log block"));
        }
        self.dying
            .insert(b, 1)
            .map_err(|_| self.bad(b, "freed twice"))?;
        Ok(false)
    }

    /// Make limbo blocks reusable.
    pub(crate) fn release(&mut self, addr: BlockAddr) -> Result<()> {
        let b = addr.index();
        self.limbo
            .remove(b, 1)
            .map_err(|_| self.bad(b, "released but not in limbo"))?;
        self.free
            .insert(b, 1)
            .map_err(|_| self.bad(b, "released while free"))
    }

    fn take_log_block(&mut self) -> Result<BlockAddr> {
        if !self.can_alloc(Tier::Log) {
            return Err(Error::NoSpace);
        }
        self.free
            .take_low()
            .map(BlockAddr::from_index)
            .ok_or(Error::NoSpace)
    }

    fn changed(&self) -> bool {
        self.fresh.blocks() > 0 || self.dying.blocks() > 0 || self.log.disk.is_none()
    }

    /// The record the superblock keeps for this arena.
    pub(crate) fn rec(&self) -> ArenaRec {
        self.rec
    }

    /// Whether the chain is long enough, against what a rewrite would take,
    /// to be worth compressing. A short log is never rewritten (unlike the
    /// reference, which recompresses a one-block log at every sync, §13.2 #21).
    fn should_compress(&self) -> bool {
        let have = self.log.nblocks();
        have >= 4 && have > 2 * blocks_for(self.free.nranges() + self.limbo.nranges() + 4) as u64
    }

    /// Append this interval's changes to the log (or rewrite it compressed),
    /// writing the tail to a new block. Returns the arena's new record.
    pub(crate) fn commit(&mut self, gen: Gen, out: &mut CommitOut) -> Result<ArenaRec> {
        if !self.changed() {
            return Ok(self.rec);
        }
        if self.should_compress() {
            return self.compress(gen, out);
        }
        let mut body = Vec::new();
        if let Some(old) = self.log.disk {
            body.push(LogEntry::Free {
                addr: old.0,
                len: BLKSZ_U64,
            });
        }
        for (s, l) in self.dying.ranges() {
            body.push(LogEntry::Free {
                addr: s * BLKSZ_U64,
                len: l * BLKSZ_U64,
            });
        }
        for (s, l) in self.fresh.ranges() {
            body.push(LogEntry::Alloc {
                addr: s * BLKSZ_U64,
                len: l * BLKSZ_U64,
            });
        }
        for e in &body {
            self.append(e, gen, out)?;
        }
        let dead = std::mem::take(&mut self.dying);
        for (s, l) in dead.ranges() {
            self.move_to_limbo(s, l, out)?;
        }
        if let Some(old) = self.log.disk.take() {
            self.move_to_limbo(old.index(), 1, out)?;
        }
        self.fresh = FreeMap::new();
        self.finish_tail(gen, out)
    }

    fn move_to_limbo(&mut self, s: u64, l: u64, out: &mut CommitOut) -> Result<()> {
        self.limbo
            .insert(s, l)
            .map_err(|_| self.bad(s, "in limbo twice"))?;
        out.release.extend((s..s + l).map(BlockAddr::from_index));
        Ok(())
    }

    /// Append one entry, sealing the tail into a new block when it is full.
    fn append(&mut self, e: &LogEntry, gen: Gen, out: &mut CommitOut) -> Result<()> {
        if !self.log.fits(e.size()) {
            self.seal(gen, out)?;
        }
        self.log.push(e);
        self.account(e);
        Ok(())
    }

    fn account(&mut self, e: &LogEntry) {
        match *e {
            LogEntry::Free { len, .. } => self.logged_free += len / BLKSZ_U64,
            LogEntry::Alloc { len, .. } => self.logged_free -= len / BLKSZ_U64,
            LogEntry::Sync { .. } => {}
        }
    }

    fn seal(&mut self, gen: Gen, out: &mut CommitOut) -> Result<()> {
        let s = self.take_log_block()?;
        let e = LogEntry::Alloc {
            addr: s.0,
            len: BLKSZ_U64,
        };
        // `fits` always leaves SEAL_SLACK bytes for exactly this entry.
        self.log.push(&e);
        self.account(&e);
        let block = self.log.seal(s, gen);
        out.writes.push((s, block));
        Ok(())
    }

    /// Record the tail's own new home and the barrier, write it there.
    fn finish_tail(&mut self, gen: Gen, out: &mut CommitOut) -> Result<ArenaRec> {
        if !self.log.fits(16) {
            self.seal(gen, out)?;
        }
        let t = self.take_log_block()?;
        for e in [
            LogEntry::Alloc {
                addr: t.0,
                len: BLKSZ_U64,
            },
            LogEntry::Sync { gen: gen.0 },
        ] {
            self.log.push(&e);
            self.account(&e);
        }
        Ok(self.write_tail(t, gen, out))
    }

    /// Rewrite the whole log as the list of free ranges after this commit.
    /// The new chain's own blocks are left out of the ranges, so replay
    /// (which starts from "everything allocated") finds them allocated.
    fn compress(&mut self, gen: Gen, out: &mut CommitOut) -> Result<ArenaRec> {
        // Everything the old log and the old chain held becomes free in the
        // log view, reusable only after this commit is durable.
        let mut old: Vec<u64> = self.log.sealed.iter().map(|p| p.addr.index()).collect();
        old.extend(self.log.disk.map(|a| a.index()));
        old.sort_unstable();
        let dead = std::mem::take(&mut self.dying);
        for (s, l) in dead.ranges() {
            self.move_to_limbo(s, l, out)?;
        }
        for (s, l) in runs(old) {
            self.move_to_limbo(s, l, out)?;
        }
        self.fresh = FreeMap::new();
        // Size the chain from the ranges before taking its blocks (taking
        // the lowest blocks can only remove ranges, never add one); a block
        // left over becomes an empty chain block rather than a leak.
        let need = packed_blocks(&self.view()?);
        let mut chain = Vec::with_capacity(need);
        for _ in 0..need {
            chain.push(self.take_log_block()?);
        }
        let view = self.view()?;
        let entries = view
            .ranges()
            .map(|(s, l)| LogEntry::Free {
                addr: s * BLKSZ_U64,
                len: l * BLKSZ_U64,
            })
            .chain(std::iter::once(LogEntry::Sync { gen: gen.0 }));
        self.log = OpenLog {
            seq: 0,
            prev: Bptr::NONE,
            payload: Vec::new(),
            disk: None,
            sealed: Vec::new(),
        };
        let mut next = chain.into_iter();
        let mut at = next.next().ok_or_else(|| self.bad(0, "empty log chain"))?;
        for e in entries {
            if !self.log.fits(e.size()) {
                out.writes.push((at, self.log.seal(at, gen)));
                at = next
                    .next()
                    .ok_or_else(|| self.bad(0, "log chain estimate"))?;
            }
            self.log.push(&e);
        }
        for spare in next {
            out.writes.push((at, self.log.seal(at, gen)));
            at = spare;
        }
        self.logged_free = view.blocks();
        self.compressions += 1;
        Ok(self.write_tail(at, gen, out))
    }

    /// The log view's free set: free now, or free but not yet reusable.
    fn view(&self) -> Result<FreeMap> {
        let mut v = self.limbo.clone();
        for (s, l) in self.free.ranges() {
            v.insert(s, l)
                .map_err(|_| self.bad(s, "both free and in limbo"))?;
        }
        Ok(v)
    }

    /// Write the open tail at `t` and make it the arena's record.
    fn write_tail(&mut self, t: BlockAddr, gen: Gen, out: &mut CommitOut) -> ArenaRec {
        let block = build_block(self.log.seq, self.log.prev, &self.log.payload);
        let hash = block_hash(&block[..]);
        out.writes.push((t, block));
        self.log.disk = Some(t);
        self.rec = ArenaRec {
            log_tail: Bptr { addr: t, hash, gen },
            log_blocks: self.log.nblocks(),
            free_blocks: self.logged_free,
        };
        self.rec
    }

    /// Counters.
    pub(crate) fn stats(&self) -> ArenaStats {
        ArenaStats {
            index: self.index,
            base: self.lo * BLKSZ_U64,
            blocks: self.nblocks,
            free: self.free.blocks(),
            ranges: self.free.nranges(),
            fresh: self.fresh.blocks(),
            limbo: self.limbo.blocks(),
            dying: self.dying.blocks(),
            reserve: self.reserve,
            log_reserve: self.log_reserve,
            log_blocks: self.log.nblocks(),
            logged_free: self.logged_free,
            compressions: self.compressions,
        }
    }

    /// The limbo ranges (block numbers), for tests.
    #[cfg(test)]
    pub(crate) fn limbo_ranges(&self) -> Vec<(u64, u64)> {
        self.limbo.ranges().collect()
    }

    /// The free ranges (block numbers), for checks and dumps.
    pub(crate) fn free_map(&self) -> &FreeMap {
        &self.free
    }
}

/// Log blocks needed to list `nranges` ranges as 16-byte entries, plus a
/// barrier, with the sealing slack in each block.
fn blocks_for(nranges: usize) -> usize {
    let per = (LOGSPC - SEAL_SLACK) / 16;
    (nranges + 1).div_ceil(per).max(1)
}

/// Exactly how many blocks listing `view`'s ranges (and a barrier) takes,
/// packed the way [`OpenLog::fits`] packs them.
fn packed_blocks(view: &FreeMap) -> usize {
    let room = LOGSPC - SEAL_SLACK;
    let (mut blocks, mut used) = (1, 0);
    let sizes = view
        .ranges()
        .map(|(_, l)| if l == 1 { 8 } else { 16 })
        .chain(std::iter::once(8));
    for sz in sizes {
        if used + sz > room {
            blocks += 1;
            used = 0;
        }
        used += sz;
    }
    blocks
}
