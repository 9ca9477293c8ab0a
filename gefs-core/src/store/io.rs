//! Block I/O: verified reads through the cache, new blocks, and writeback
//! of dirty blocks in address order, coalesced into large writes.
//!
//! Every block read from the device is checked against the hash in the
//! pointer that led to it before anyone sees it (the reference never checks,
//! §13.2 #1); tree nodes are also structurally validated once, on load. A
//! mismatch is a typed error naming the block and both hashes.
//!
//! Cache pressure (DESIGN.md §3 item 7): only the writer pins buffers (dirty
//! blocks, and limbo blocks: freed before they were written), so only the
//! writer can unpin them, and it never waits for a buffer without first
//! making room itself. Before each new block it writes the block's shard's
//! dirty blocks if half of the shard is pinned; when one of its reads or
//! new blocks finds the shard with nothing to recycle, it writes every
//! block pinned there before waiting. Making room waits for nobody (not
//! for readers, who may be waiting for the mutation lock inside an epoch
//! guard), so what the writer may then wait for is a reader's hold, which
//! ends (its own holds during one change, a tree path and the nodes
//! replacing it, are far fewer than a shard's buffers).

use std::sync::atomic::Ordering;

use super::Store;
use crate::alloc::{Kind, Tier};
use crate::cache::Block;
use crate::device::DeviceExt;
use crate::error::{Error, Result};
use crate::format::node::NodeView;
use crate::format::{block_hash, Bptr, BLKSZ, BLKSZ_U64};
use crate::ids::{BlockAddr, Gen};
use crate::CorruptKind;

/// Most bytes written by one device call during writeback.
const MAX_WRITE: usize = 1 << 20;
/// Dirty blocks of the other shards written along with a pressured shard's.
const PRESSURE_BATCH: usize = 256;

impl Store {
    /// Read the block `bp` points to through the cache, verifying its hash
    /// (and, for tree nodes, its structure) on load. Waits for a buffer if
    /// its shard has none to recycle: for readers.
    ///
    /// Every failure is logged here or in [`Store::read_block_writer`], with
    /// the block's address and kind: these are the only places corruption is
    /// detected on the way in, so no damaged block goes unreported whoever
    /// asked for it.
    pub(crate) fn read_block(&self, bp: &Bptr, node: bool) -> Result<Block<'_>> {
        self.check_ptr(bp)
            .and_then(|()| self.cache.get(bp.addr, bp.hash, self.loader(bp, node)))
            .inspect_err(|e| log_read_failure(bp, node, e))
    }

    /// [`Store::read_block`] for the writer (under the mutation lock): if
    /// the block's shard has no buffer to recycle, make room there first.
    pub(crate) fn read_block_writer(&self, bp: &Bptr, node: bool) -> Result<Block<'_>> {
        let addr = bp.addr;
        self.check_ptr(bp)
            .and_then(|()| {
                self.cache
                    .get_relieving(addr, bp.hash, self.loader(bp, node), &mut || {
                        self.make_room(addr)
                    })
            })
            .inspect_err(|e| log_read_failure(bp, node, e))
    }

    fn check_ptr(&self, bp: &Bptr) -> Result<()> {
        let addr = bp.addr;
        if bp.is_none() || !addr.0.is_multiple_of(BLKSZ_U64) || !self.geo.in_arenas(addr) {
            return Err(Error::corrupt(
                addr,
                CorruptKind::Pointer,
                "pointer outside the arenas",
            ));
        }
        Ok(())
    }

    /// Fill a buffer with the block `bp` points to, verified.
    fn loader<'a>(
        &'a self,
        bp: &'a Bptr,
        node: bool,
    ) -> impl FnOnce(&mut [u8; BLKSZ]) -> Result<()> + 'a {
        let addr = bp.addr;
        move |buf| {
            self.dev.read_block(bp, buf)?;
            if node {
                NodeView::new(&buf[..])
                    .and_then(|v| v.validate())
                    .map_err(|e| e.at(addr))?;
            }
            Ok(())
        }
    }

    /// Allocate a block, let `build` fill it, and seal it into the cache as
    /// dirty. On failure nothing stays allocated. The buffer `build` gets
    /// holds stale bytes (a recycled cache buffer): it must define every
    /// one of the 16 KiB (the node builders zero what their records leave
    /// free; [`Store::new_zeroed`] is for writers that fill only part).
    pub(crate) fn new_block<R>(
        &self,
        kind: Kind,
        tier: Tier,
        gen: Gen,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'_>, R)> {
        self.alloc_block(kind, tier, gen, false, build)
    }

    /// [`Store::new_block`], the buffer zeroed first when `zero` (unless the
    /// cache knows it holds only zeros).
    fn alloc_block<R>(
        &self,
        kind: Kind,
        tier: Tier,
        gen: Gen,
        zero: bool,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'_>, R)> {
        self.writable()?;
        self.allocs.fetch_add(1, Ordering::Relaxed);
        let addr = self.alloc.alloc(kind, tier)?;
        if self.cache.under_pressure(addr) {
            if let Err(e) = self.relieve(addr) {
                self.undo_alloc(addr);
                return Err(e);
            }
        }
        let mut b = match self
            .cache
            .new_block_relieving(addr, &mut || self.make_room(addr))
        {
            Ok(b) => b,
            Err(e) => {
                self.undo_alloc(addr);
                return Err(e);
            }
        };
        if zero && !b.is_zeroed() {
            b.buf_mut().fill(0);
        }
        let r = match build(b.buf_mut()) {
            Ok(r) => r,
            Err(e) => {
                drop(b);
                self.undo_alloc(addr);
                return Err(e);
            }
        };
        let hash = block_hash(&b.buf()[..]);
        let interval = self.commits.load(Ordering::Relaxed) + 1;
        let blk = b.finalize(hash, interval)?;
        Ok((Bptr { addr, hash, gen }, blk, r))
    }

    /// [`Store::new_block`] with a zeroed buffer, for writers that fill only
    /// part of the block.
    pub(crate) fn new_zeroed<R>(
        &self,
        kind: Kind,
        tier: Tier,
        gen: Gen,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Block<'_>, R)> {
        self.alloc_block(kind, tier, gen, true, build)
    }

    /// Give back a block nobody ever saw.
    fn undo_alloc(&self, addr: BlockAddr) {
        if self.alloc.free(addr).is_ok() {
            let _ = self.alloc.release(&[addr]);
        }
    }

    /// The shard serving `addr` is at least half pinned: write its dirty
    /// blocks (and its limbo blocks if they are the pressure).
    fn relieve(&self, addr: BlockAddr) -> Result<()> {
        self.write_for_room(addr, false)
    }

    /// The shard serving `addr` has no buffer left to recycle: write every
    /// block pinned there, dirty or in limbo
    /// ([`crate::cache::Cache::take_for_room`]), so that only readers' and
    /// the writer's own holds remain. Never waits for anyone, and never
    /// advances the epochs: it runs in the middle of changes, whose frees
    /// are deferred before the new root that drops them is published (see
    /// [`Store::collect`]).
    fn make_room(&self, addr: BlockAddr) -> Result<()> {
        self.write_for_room(addr, true)
    }

    /// Writer only: it writes back, which a commit relies on nobody else
    /// doing.
    fn write_for_room(&self, addr: BlockAddr, all: bool) -> Result<()> {
        let _wb = self.wb.lock();
        let blocks = self.cache.take_for_room(addr, all, PRESSURE_BATCH);
        self.write_taken(blocks).map(drop)
    }

    /// Write up to `max` dirty blocks to the device (not flushed). Returns
    /// how many were written. A failure latches the store read-only.
    pub(crate) fn writeback(&self, max: usize) -> Result<usize> {
        let _wb = self.wb.lock();
        let blocks = self.cache.take_dirty(u64::MAX, max);
        self.write_taken(blocks)
    }

    /// Write blocks taken from the cache (the caller holds `wb`) in address
    /// order and hand them back as written. A failure latches the store
    /// read-only.
    fn write_taken(&self, mut blocks: Vec<Block<'_>>) -> Result<usize> {
        blocks.sort_by_key(|b| b.addr());
        let n = blocks.len();
        let r = self.write_runs(&blocks);
        if r.is_ok() {
            for b in &blocks {
                self.cache.written(b);
            }
            self.blocks_written.fetch_add(n as u64, Ordering::Relaxed);
        } else if let Err(e) = &r {
            self.latch(e);
        }
        r.map(|()| n)
    }

    /// Write sorted blocks, one device call per run of adjacent addresses.
    fn write_runs(&self, blocks: &[Block<'_>]) -> Result<()> {
        let mut i = 0;
        while i < blocks.len() {
            let start = blocks[i].addr().0;
            let mut j = i + 1;
            while j < blocks.len()
                && blocks[j].addr().0 == start + ((j - i) * BLKSZ) as u64
                && (j - i + 1) * BLKSZ <= MAX_WRITE
            {
                j += 1;
            }
            let bufs: Vec<&[u8]> = blocks[i..j].iter().map(|b| &b.bytes()[..]).collect();
            self.dev.write_all_vectored(&bufs, start)?;
            i = j;
        }
        Ok(())
    }

    /// Write one block image outside the cache (log blocks, superblocks).
    pub(crate) fn write_raw(&self, buf: &[u8], off: u64) -> Result<()> {
        self.dev
            .write_bytes(buf, off)
            .inspect_err(|e| self.latch(e))?;
        self.blocks_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A durability barrier. A failure latches the store read-only: nothing
    /// written since the last good flush may be on the medium (fsyncgate).
    pub(crate) fn flush(&self) -> Result<()> {
        self.dev.barrier().inspect_err(|e| self.latch(e))
    }
}

/// Log a block that could not be loaded: its address, what it was read as, and
/// why (a hash mismatch, a malformed node, or the device's error).
fn log_read_failure(bp: &Bptr, node: bool, e: &Error) {
    let kind = if node { "node" } else { "data" };
    match e {
        Error::Checksum {
            addr,
            expected,
            actual,
        } => tracing::error!(
            addr = %addr,
            kind = %kind,
            gen = bp.gen.0,
            expected = format_args!("{expected:016x}"),
            actual = format_args!("{actual:016x}"),
            "corrupt block: contents do not match their hash"
        ),
        Error::Corrupt {
            addr,
            kind: damage,
            detail,
        } => tracing::error!(
            addr = %addr,
            kind = %kind,
            gen = bp.gen.0,
            damage = %damage,
            what = %detail,
            "corrupt block: malformed"
        ),
        Error::Io { op, off, source } => tracing::error!(
            addr = %bp.addr,
            kind = %kind,
            op = %op,
            off,
            error = %source,
            "device error reading a block"
        ),
        _ => {}
    }
}
