//! The block cache: a fixed pool of 16 KiB buffers, an index by address, and
//! per-shard LRU lists of idle buffers that *are* the free list (the seed's
//! design, `../shared/seed/buffer-lifetimes.patch`).
//!
//! Lifetimes are handles: [`Block`] is a shared, immutable, refcounted handle
//! (hold = `clone`, drop = `Drop`); [`BlockMut`] is the one writer of a block
//! being built, and only [`BlockMut::finalize`] turns it into a readable
//! `Block`, so "only the writer mutates a block before finalizing it" is
//! enforced by the types. Memory never grows: a new buffer is plucked from the
//! LRU tail, and when every buffer is held the taker waits (back-pressure).
//!
//! Protocol and invariants (see also `shard.rs`):
//! 1. A slot is idle (refs 0, on its shard's LRU) or held (refs > 0).
//! 2. Each address maps to at most one slot; the index is per shard.
//! 3. Only idle slots are recycled; recycling unindexes them by identity.
//! 4. A dirty slot is pinned until written (or freed), so unwritten contents
//!    are never evicted and readers see their own writes.
//! 5. A freed slot's last release puts it at the LRU tail, others at the head.
//! 6. A slot being loaded is `Loading`; other readers of that address wait
//!    for it instead of reading it a second time.
//! 7. The bytes of a slot are written only while it is `Building` (by its
//!    `BlockMut`) or `Loading` (by the loading thread); handles to it exist
//!    only once it is sealed, so every `Block` sees immutable bytes.
//!
//! Shards split the pool statically (a block lives in the shard its address
//! hashes to), so a hit takes one shard lock and never contends with another
//! shard. The number of shards grows with the pool, keeping at least 256
//! buffers per shard so that the bounded number of handles one operation
//! holds can never starve its shard.
#![allow(unsafe_code)]

mod pool;
mod shard;

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::format::BLKSZ;
use crate::ids::BlockAddr;
use crate::sync::{fence, AtomicU32, Condvar, Mutex, MutexGuard};
use pool::Pool;
use shard::{ShardState, State};

/// Fewest buffers per shard.
const MIN_PER_SHARD: usize = 256;
/// Most shards.
const MAX_SHARDS: usize = 64;

/// The largest power of two ≤ `n` (n ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// One shard. Aligned to two cache lines so that threads working in
/// different shards never share a line (the lock word in particular).
#[repr(align(128))]
struct Shard {
    st: Mutex<ShardState>,
    cond: Condvar,
    refs: Box<[AtomicU32]>,
    first: usize,
}

/// Counters, readable at any time.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    /// Buffers in the pool.
    pub capacity: usize,
    /// Lookups served from memory.
    pub hits: u64,
    /// Lookups that read the device.
    pub misses: u64,
    /// Times a taker waited for a buffer or for another thread's read.
    pub waits: u64,
    /// Dirty buffers now.
    pub dirty: usize,
    /// Buffers pinned by pending frees now.
    pub limbo: usize,
    /// Idle buffers now.
    pub idle: usize,
}

/// The block cache.
pub struct Cache {
    pool: Pool,
    shards: Box<[Shard]>,
    /// `shards.len() - 1`; the shard count is a power of two.
    mask: usize,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("buffers", &self.pool.len())
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Cache {
    /// A cache of `bytes` (rounded down to whole buffers, at least 16).
    pub fn new(bytes: usize) -> Cache {
        Cache::with_buffers((bytes / BLKSZ).max(16))
    }

    /// A cache of exactly `n` buffers.
    pub fn with_buffers(n: usize) -> Cache {
        let n = n.max(1);
        // A power of two, so that picking a shard is a mask.
        let nshards = prev_power_of_two((n / MIN_PER_SHARD).clamp(1, MAX_SHARDS));
        let pool = Pool::new(n);
        let mut shards = Vec::with_capacity(nshards);
        let mut first = 0;
        for s in 0..nshards {
            let len = n / nshards + usize::from(s < n % nshards);
            shards.push(Shard {
                st: Mutex::new(ShardState::new(len)),
                cond: Condvar::new(),
                refs: (0..len).map(|_| AtomicU32::new(0)).collect(),
                first,
            });
            first += len;
        }
        Cache {
            pool,
            shards: shards.into_boxed_slice(),
            mask: nshards - 1,
        }
    }

    /// Number of buffers.
    pub fn capacity(&self) -> usize {
        self.pool.len()
    }

    /// Number of buffers in the shard serving `addr`.
    pub fn shard_capacity(&self, addr: BlockAddr) -> usize {
        self.shards[self.shard_of(addr)].refs.len()
    }

    fn shard_of(&self, addr: BlockAddr) -> usize {
        let h = addr.index().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        h as usize & self.mask
    }

    fn wait<'a>(
        &self,
        sh: &'a Shard,
        mut st: MutexGuard<'a, ShardState>,
    ) -> MutexGuard<'a, ShardState> {
        st.waits += 1;
        st.waiters += 1;
        let mut st = sh.cond.wait(st);
        st.waiters -= 1;
        st
    }

    /// Find `addr` or read it in. `load` fills the buffer from the device and
    /// verifies it against `hash`; it runs at most once per miss, outside any
    /// lock, while other readers of the same address wait for it. A cached
    /// block whose hash differs from `hash` is reported as a checksum error.
    pub fn get(
        &self,
        addr: BlockAddr,
        hash: u64,
        load: impl FnOnce(&mut [u8; BLKSZ]) -> Result<()>,
    ) -> Result<Block<'_>> {
        let s = self.shard_of(addr);
        let sh = &self.shards[s];
        let mut st = sh.st.lock();
        loop {
            if let Some(&i) = st.index.get(&addr.0) {
                if st.meta[i as usize].state == State::Loading {
                    sh.refs[i as usize].fetch_add(1, Ordering::Relaxed);
                    while st.meta[i as usize].state == State::Loading {
                        st = self.wait(sh, st);
                    }
                    let m = &st.meta[i as usize];
                    if !(m.cached && m.addr == addr && m.state.is_sealed()) {
                        // The load failed; try again ourselves.
                        self.release_locked(sh, &mut st, i);
                        continue;
                    }
                } else if sh.refs[i as usize].fetch_add(1, Ordering::Relaxed) == 0
                    && st.meta[i as usize].in_lru
                {
                    st.unlink(i);
                }
                st.hits += 1;
                let actual = st.meta[i as usize].hash;
                if actual != hash {
                    self.release_locked(sh, &mut st, i);
                    return Err(Error::Checksum {
                        addr,
                        expected: hash,
                        actual,
                    });
                }
                return Ok(Block {
                    cache: self,
                    shard: s as u32,
                    slot: i,
                    addr,
                    hash,
                });
            }
            let Some(i) = st.pluck() else {
                st = self.wait(sh, st);
                continue;
            };
            st.misses += 1;
            st.meta[i as usize].addr = addr;
            st.meta[i as usize].hash = hash;
            st.set_state(i, State::Loading);
            st.cache(i);
            sh.refs[i as usize].store(1, Ordering::Relaxed);
            drop(st);
            // SAFETY: the slot is Loading and we are its loader: no handle to
            // it exists (refs were 0 when plucked; waiters hold refs but do
            // not touch the bytes until the state leaves Loading).
            let r = load(unsafe { self.pool.get_mut(sh.first + i as usize) });
            st = sh.st.lock();
            match r {
                Ok(()) => {
                    st.set_state(i, State::Clean);
                    self.notify(sh, &st);
                    return Ok(Block {
                        cache: self,
                        shard: s as u32,
                        slot: i,
                        addr,
                        hash,
                    });
                }
                Err(e) => {
                    st.uncache(i);
                    st.set_state(i, State::Free);
                    st.meta[i as usize].freed = true;
                    self.notify(sh, &st);
                    self.release_locked(sh, &mut st, i);
                    return Err(e);
                }
            }
        }
    }

    /// A zeroed buffer for a new block at `addr`, which must not be cached
    /// (an allocator handing out a live address is reported, not ignored).
    /// Waits while every buffer of the shard is held.
    pub fn new_block(&self, addr: BlockAddr) -> Result<BlockMut<'_>> {
        let s = self.shard_of(addr);
        let sh = &self.shards[s];
        let mut st = sh.st.lock();
        if st.index.contains_key(&addr.0) {
            return Err(Error::Internal(format!(
                "double allocation of block {addr}"
            )));
        }
        let i = loop {
            match st.pluck() {
                Some(i) => break i,
                None => st = self.wait(sh, st),
            }
        };
        st.meta[i as usize].addr = addr;
        st.set_state(i, State::Building);
        sh.refs[i as usize].store(1, Ordering::Relaxed);
        drop(st);
        let mut b = BlockMut {
            cache: self,
            shard: s as u32,
            slot: i,
            addr,
        };
        b.buf_mut().fill(0);
        Ok(b)
    }

    /// The address was freed. If it is cached, mark it so that it is never
    /// written and pin it until [`Cache::reclaim`], so that readers still in
    /// an older epoch keep finding it. Returns whether it was cached.
    pub fn free(&self, addr: BlockAddr) -> Result<bool> {
        let sh = &self.shards[self.shard_of(addr)];
        let mut st = sh.st.lock();
        let Some(&i) = st.index.get(&addr.0) else {
            return Ok(false);
        };
        let m = &mut st.meta[i as usize];
        if m.limbo {
            return Err(Error::Internal(format!("block {addr} freed twice")));
        }
        m.limbo = true;
        m.freed = true;
        st.nlimbo += 1;
        // The limbo pin replaces the dirty pin of an unwritten block.
        if st.meta[i as usize].state == State::Dirty {
            st.set_state(i, State::Clean);
            st.ndirty -= 1;
        } else if sh.refs[i as usize].fetch_add(1, Ordering::Relaxed) == 0
            && st.meta[i as usize].in_lru
        {
            st.unlink(i);
        }
        Ok(true)
    }

    /// Readers can no longer reach `addr`: drop it from the index and release
    /// the pin [`Cache::free`] took. Its buffer is recycled first.
    pub fn reclaim(&self, addr: BlockAddr) {
        let sh = &self.shards[self.shard_of(addr)];
        let mut st = sh.st.lock();
        let Some(&i) = st.index.get(&addr.0) else {
            return;
        };
        st.uncache(i);
        st.meta[i as usize].freed = true;
        if st.meta[i as usize].limbo {
            st.meta[i as usize].limbo = false;
            st.nlimbo -= 1;
            self.release_locked(sh, &mut st, i);
        } else if st.meta[i as usize].in_lru {
            st.unlink(i);
            st.link_tail(i);
        }
    }

    /// Take up to `max` dirty blocks produced in commit intervals ≤ `upto`,
    /// marking them as being written. Hand each back with
    /// [`Cache::written`] once it is on the device.
    pub fn take_dirty(&self, upto: u64, max: usize) -> Vec<Block<'_>> {
        let mut out = Vec::new();
        for (s, sh) in self.shards.iter().enumerate() {
            let mut st = sh.st.lock();
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
                sh.refs[i as usize].fetch_add(1, Ordering::Relaxed);
                out.push(Block {
                    cache: self,
                    shard: s as u32,
                    slot: i,
                    addr,
                    hash,
                });
            }
            st.dirty = keep;
        }
        out
    }

    /// A block taken with [`Cache::take_dirty`] is on the device.
    pub fn written(&self, b: &Block<'_>) {
        let sh = &self.shards[b.shard as usize];
        let mut st = sh.st.lock();
        if st.meta[b.slot as usize].state == State::Writing {
            st.set_state(b.slot, State::Clean);
            st.ndirty -= 1;
            // Release the dirty pin (a free during the write took its own).
            self.release_locked(sh, &mut st, b.slot);
        }
    }

    /// Whether the shard that would hold `addr` has at least half its
    /// buffers dirty or pinned by pending frees (writeback should run before
    /// adding more).
    pub fn under_pressure(&self, addr: BlockAddr) -> bool {
        let sh = &self.shards[self.shard_of(addr)];
        let st = sh.st.lock();
        2 * (st.ndirty + st.nlimbo) >= sh.refs.len()
    }

    /// Dirty buffers in all shards.
    pub fn dirty_count(&self) -> usize {
        self.shards.iter().map(|s| s.st.lock().ndirty).sum()
    }

    /// Buffers pinned by pending frees.
    pub fn limbo_count(&self) -> usize {
        self.shards.iter().map(|s| s.st.lock().nlimbo).sum()
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            capacity: self.capacity(),
            ..CacheStats::default()
        };
        for sh in self.shards.iter() {
            let st = sh.st.lock();
            s.hits += st.hits;
            s.misses += st.misses;
            s.waits += st.waits;
            s.dirty += st.ndirty;
            s.limbo += st.nlimbo;
            s.idle += st.idle;
        }
        s
    }

    /// Wake the shard's waiters, if any (with its lock held).
    fn notify(&self, sh: &Shard, st: &ShardState) {
        if st.waiters > 0 {
            sh.cond.notify_all();
        }
    }

    /// Drop one reference with the shard lock already held.
    fn release_locked(&self, sh: &Shard, st: &mut ShardState, i: u32) {
        if sh.refs[i as usize].fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            self.relink(sh, st, i);
        }
    }

    /// Put a slot whose refs reached 0 back on the LRU (once).
    fn relink(&self, sh: &Shard, st: &mut ShardState, i: u32) {
        if sh.refs[i as usize].load(Ordering::Acquire) != 0 || st.meta[i as usize].in_lru {
            return;
        }
        let m = &st.meta[i as usize];
        if m.freed || !m.cached {
            st.link_tail(i);
        } else {
            st.link_head(i);
        }
        self.notify(sh, st);
    }

    /// Drop one reference without the lock held.
    fn release(&self, shard: u32, i: u32) {
        let sh = &self.shards[shard as usize];
        if sh.refs[i as usize].fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            let mut st = sh.st.lock();
            self.relink(sh, &mut st, i);
        }
    }
}

/// A shared, immutable handle to a cached block. Cloning holds it; dropping
/// releases it.
pub struct Block<'c> {
    cache: &'c Cache,
    shard: u32,
    slot: u32,
    addr: BlockAddr,
    hash: u64,
}

impl Block<'_> {
    /// The block's address.
    pub fn addr(&self) -> BlockAddr {
        self.addr
    }

    /// The block's hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The contents.
    pub fn bytes(&self) -> &[u8; BLKSZ] {
        let sh = &self.cache.shards[self.shard as usize];
        // SAFETY: this handle holds a reference on a sealed slot (handles are
        // only made for sealed slots, and a held slot is never recycled), so
        // the buffer is immutable for the handle's lifetime.
        unsafe { self.cache.pool.get(sh.first + self.slot as usize) }
    }
}

impl std::ops::Deref for Block<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes()[..]
    }
}

impl Clone for Block<'_> {
    fn clone(&self) -> Self {
        self.cache.shards[self.shard as usize].refs[self.slot as usize]
            .fetch_add(1, Ordering::Relaxed);
        Block {
            cache: self.cache,
            shard: self.shard,
            slot: self.slot,
            addr: self.addr,
            hash: self.hash,
        }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        self.cache.release(self.shard, self.slot);
    }
}

impl std::fmt::Debug for Block<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({}, {:016x})", self.addr, self.hash)
    }
}

/// The one writable handle to a block being built. Nobody else can see it
/// until [`BlockMut::finalize`] seals it.
pub struct BlockMut<'c> {
    cache: &'c Cache,
    shard: u32,
    slot: u32,
    addr: BlockAddr,
}

impl<'c> BlockMut<'c> {
    /// The address the block will live at.
    pub fn addr(&self) -> BlockAddr {
        self.addr
    }

    /// The contents, writable.
    pub fn buf_mut(&mut self) -> &mut [u8; BLKSZ] {
        let sh = &self.cache.shards[self.shard as usize];
        // SAFETY: a BlockMut exclusively owns its Building slot: it is in no
        // index or list, and `&mut self` makes this the only access.
        unsafe { self.cache.pool.get_mut(sh.first + self.slot as usize) }
    }

    /// The contents.
    pub fn buf(&self) -> &[u8; BLKSZ] {
        let sh = &self.cache.shards[self.shard as usize];
        // SAFETY: as in `buf_mut`; `&self` excludes writers.
        unsafe { self.cache.pool.get(sh.first + self.slot as usize) }
    }

    /// Seal the block with its hash: it becomes findable by address and
    /// stays pinned as dirty (tagged with the commit `interval` that made it)
    /// until written or freed.
    pub fn finalize(self, hash: u64, interval: u64) -> Result<Block<'c>> {
        let me = std::mem::ManuallyDrop::new(self);
        let (cache, shard, slot, addr) = (me.cache, me.shard, me.slot, me.addr);
        let sh = &cache.shards[shard as usize];
        let mut st = sh.st.lock();
        if st.index.contains_key(&addr.0) {
            st.set_state(slot, State::Free);
            cache.release_locked(sh, &mut st, slot);
            return Err(Error::Internal(format!("block {addr} cached twice")));
        }
        st.meta[slot as usize].hash = hash;
        st.meta[slot as usize].interval = interval;
        st.cache(slot);
        st.set_state(slot, State::Dirty);
        st.ndirty += 1;
        if !st.meta[slot as usize].listed {
            st.meta[slot as usize].listed = true;
            st.dirty.push(slot);
        }
        // The dirty pin.
        sh.refs[slot as usize].fetch_add(1, Ordering::Relaxed);
        Ok(Block {
            cache,
            shard,
            slot,
            addr,
            hash,
        })
    }
}

impl Drop for BlockMut<'_> {
    fn drop(&mut self) {
        let sh = &self.cache.shards[self.shard as usize];
        let mut st = sh.st.lock();
        st.set_state(self.slot, State::Free);
        st.meta[self.slot as usize].freed = true;
        self.cache.release_locked(sh, &mut st, self.slot);
    }
}

#[cfg(test)]
#[cfg(loom)]
mod loom_tests;
#[cfg(test)]
#[cfg(not(loom))]
mod tests;
