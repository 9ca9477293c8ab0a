//! Block I/O: verified reads through the cache, new blocks, and writeback
//! of dirty blocks in address order, coalesced into large writes.
//!
//! Every block read from the device is checked against the hash in the
//! pointer that led to it before anyone sees it (the reference never checks,
//! §13.2 #1); tree nodes are also structurally validated once, on load. A
//! mismatch is a typed error naming the block and both hashes.

use std::sync::atomic::Ordering;

use super::Store;
use crate::alloc::{Kind, Tier};
use crate::cache::Block;
use crate::error::{Error, IoOp, Result};
use crate::format::node::NodeView;
use crate::format::{block_hash, Bptr, BLKSZ, BLKSZ_U64};
use crate::ids::Gen;

/// Most bytes written by one device call during writeback.
const MAX_WRITE: usize = 1 << 20;
/// Dirty blocks written per writeback round when the cache is under pressure.
const PRESSURE_BATCH: usize = 256;

impl Store {
    /// Read the block `bp` points to through the cache, verifying its hash
    /// (and, for tree nodes, its structure) on load.
    pub(crate) fn read_block(&self, bp: &Bptr, node: bool) -> Result<Block<'_>> {
        let addr = bp.addr;
        if bp.is_none() || !addr.0.is_multiple_of(BLKSZ_U64) || !self.geo.in_arenas(addr) {
            return Err(Error::corrupt(addr, "pointer outside the arenas"));
        }
        self.cache.get(addr, bp.hash, |buf| {
            self.dev
                .read_at(&mut buf[..], addr.0)
                .map_err(|e| Error::Io {
                    op: IoOp::Read,
                    off: addr.0,
                    source: e,
                })?;
            let actual = block_hash(&buf[..]);
            if actual != bp.hash {
                return Err(Error::Checksum {
                    addr,
                    expected: bp.hash,
                    actual,
                });
            }
            if node {
                NodeView::new(&buf[..])
                    .and_then(|v| v.validate())
                    .map_err(|e| Error::corrupt(addr, e))?;
            }
            Ok(())
        })
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
            if let Err(e) = self.relieve_pressure() {
                self.undo_alloc(addr);
                return Err(e);
            }
        }
        let mut b = match self.cache.new_block(addr) {
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
    fn undo_alloc(&self, addr: crate::ids::BlockAddr) {
        if self.alloc.free(addr).is_ok() {
            let _ = self.alloc.release(&[addr]);
        }
    }

    /// Make room in the cache: write some dirty blocks and reclaim what
    /// readers have left behind.
    fn relieve_pressure(&self) -> Result<()> {
        self.collect()?;
        let n = self.writeback(PRESSURE_BATCH)?;
        if n == 0 {
            // Everything pinned is waiting for readers: wait for them.
            self.collect_blocking()?;
        }
        Ok(())
    }

    /// Write up to `max` dirty blocks to the device (not flushed). Returns
    /// how many were written. A failure latches the store read-only.
    pub(crate) fn writeback(&self, max: usize) -> Result<usize> {
        let _wb = self.wb.lock();
        let mut blocks = self.cache.take_dirty(u64::MAX, max);
        blocks.sort_by_key(|b| b.addr());
        let n = blocks.len();
        let r = self.write_runs(&blocks);
        if r.is_ok() {
            for b in &blocks {
                self.cache.written(b);
            }
            self.blocks_written.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            self.latch();
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
            self.dev
                .write_vectored_at(&bufs, start)
                .map_err(|e| Error::Io {
                    op: IoOp::Write,
                    off: start,
                    source: e,
                })?;
            i = j;
        }
        Ok(())
    }

    /// Write one block image outside the cache (log blocks, superblocks).
    pub(crate) fn write_raw(&self, buf: &[u8], off: u64) -> Result<()> {
        self.dev.write_at(buf, off).map_err(|e| {
            self.latch();
            Error::Io {
                op: IoOp::Write,
                off,
                source: e,
            }
        })?;
        self.blocks_written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A durability barrier. A failure latches the store read-only: nothing
    /// written since the last good flush may be on the medium (fsyncgate).
    pub(crate) fn flush(&self) -> Result<()> {
        self.dev.flush().map_err(|e| {
            self.latch();
            Error::Io {
                op: IoOp::Flush,
                off: 0,
                source: e,
            }
        })
    }
}
