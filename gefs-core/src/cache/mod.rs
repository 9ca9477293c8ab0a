//! The block cache: a fixed pool of 16 KiB buffers, an index by address, and
//! per-shard LRU lists of idle buffers that *are* the free list (the seed's
//! design, `doc/REFERENCE.md`, "The seed").
//!
//! Lifetimes are handles: [`Block`] is a shared, immutable, refcounted handle
//! (hold = `clone`, drop = `Drop`); [`BlockMut`] is the one writer of a block
//! being built, and only [`BlockMut::finalize`] turns it into a readable
//! `Block`, so "only the writer mutates a block before finalizing it" is
//! enforced by the types. Memory never grows: a new buffer is plucked from the
//! LRU tail, and when every buffer is held the taker waits (back-pressure).
//! Only the writer creates pins (dirty blocks, and *limbo* blocks: freed
//! before they were ever written), so only the writer can remove them: its
//! takers ([`Cache::get_relieving`], [`Cache::new_block_relieving`]) make
//! room themselves (write the shard's pinned blocks, [`Cache::take_for_room`])
//! before they wait, and so never wait for a buffer that only they could
//! free (`writeback.rs` says why writing a limbo block early is safe).
//!
//! Protocol and invariants (see also `shard.rs`):
//! 1. A slot is idle (count 0) or held (count > 0), and either linked (on its
//!    shard's LRU) or parked (off it). Every idle slot is linked, except
//!    between the release that drops a parked slot's count to 0 and that
//!    releaser relinking it under the lock. Held slots may stay linked.
//! 2. Each address maps to at most one slot; the index is per shard.
//! 3. Only idle slots are recycled; recycling unindexes them by identity. A
//!    pluck walks from the LRU tail, parking the held slots it meets.
//! 4. A dirty slot is pinned until written, or freed; a freed slot that was
//!    never written stays pinned (limbo) until reclaimed or written, so
//!    unwritten contents are never evicted and readers see their own writes.
//!    A freed slot whose bytes are on the device is not pinned: it is
//!    recycled first, and a reader that still reaches it reads the same
//!    bytes back (the address is reused only after its reclaim).
//! 5. The LRU is ordered by last use: a lookup moves a linked slot to the
//!    head, a parked slot's last release links it at the head, and a freed
//!    slot goes to the tail (at reclaim, or at its last release if parked).
//! 6. A slot being loaded is `Loading`; other readers of that address wait
//!    for it instead of reading it a second time.
//! 7. The bytes of a slot are written only while it is `Building` (by its
//!    `BlockMut`) or `Loading` (by the loading thread); handles to it exist
//!    only once it is sealed, so every `Block` sees immutable bytes.
//!
//! Hold and release: a count rises from 0 only under the shard lock (lookup,
//! pin, pluck); `Block::clone` adds to a count it already holds; a release
//! is one atomic decrement with Release ordering and takes the lock only
//! when it leaves a *parked* slot at 0 (the `PARKED` bit shares the word
//! with the count, so the decrement itself tells). A pluck reads a count of
//! 0 with Acquire, so every earlier holder's reads of the buffer happen
//! before it is overwritten. A hit therefore costs one lock acquisition and
//! one atomic increment, and its release one atomic decrement.
//!
#![allow(unsafe_code)]

mod pool;
mod shard;
mod writeback;

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::format::BLKSZ;
use crate::ids::BlockAddr;
use crate::sync::{AtomicU32, Condvar, Mutex, MutexGuard};
use pool::Pool;
use shard::{Plucked, ShardState, State, PARKED};

/// What a taker does when its shard has no buffer to recycle: `None`, wait
/// for a holder to release one (readers); `Some`, first make room itself
/// and look again (the writer, whose pins only it can remove).
type Relief<'r> = Option<&'r mut dyn FnMut() -> Result<()>>;

/// Fewest buffers per shard.
const MIN_PER_SHARD: usize = 256;
/// Most shards.
const MAX_SHARDS: usize = 64;

/// The largest power of two ≤ `n` (n ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// One shard: its lock-protected state and its waiters. Aligned to two
/// cache lines so that threads working in different shards never share a
/// line (the lock word in particular).
#[repr(align(128))]
struct Shard {
    st: Mutex<ShardState>,
    cond: Condvar,
    /// Its slots are the pool's `first .. first + len`; slot numbers inside
    /// [`ShardState`] are local (0 .. len).
    first: u32,
    len: u32,
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
    /// Freed blocks never written, pinned until reclaimed or written.
    pub limbo: usize,
    /// Idle buffers now.
    pub idle: usize,
}

/// The block cache.
pub struct Cache {
    pool: Pool,
    /// Each slot's refcount word (count | [`PARKED`]), by global slot
    /// number; outside the shard locks, so that a release is one atomic
    /// decrement.
    refs: Box<[AtomicU32]>,
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
        // Slot numbers are u32.
        assert!(u32::try_from(n).is_ok(), "cache of {n} buffers");
        let pool = Pool::new(n);
        let mut shards = Vec::with_capacity(nshards);
        let mut first = 0;
        for s in 0..nshards {
            let len = n / nshards + usize::from(s < n % nshards);
            shards.push(Shard {
                st: Mutex::new(ShardState::new(len)),
                cond: Condvar::new(),
                first: first as u32,
                len: len as u32,
            });
            first += len;
        }
        Cache {
            pool,
            refs: (0..n).map(|_| AtomicU32::new(0)).collect(),
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
        self.shards[self.shard_of(addr)].len as usize
    }

    /// The refcount words of a shard's slots, by local slot number.
    fn refs_of(&self, sh: &Shard) -> &[AtomicU32] {
        &self.refs[sh.first as usize..(sh.first + sh.len) as usize]
    }

    /// The refcount word of local slot `i` of `sh`.
    #[inline]
    fn rc(&self, sh: &Shard, i: u32) -> &AtomicU32 {
        &self.refs[(sh.first + i) as usize]
    }

    /// A handle on local slot `i` of shard `s`, whose reference the caller
    /// has taken.
    #[inline]
    fn handle(&self, s: usize, i: u32, addr: BlockAddr, hash: u64) -> Block<'_> {
        Block {
            cache: self,
            shard: s as u32,
            slot: self.shards[s].first + i,
            addr,
            hash,
        }
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

    /// The shard has no buffer to recycle. With a relief, and some buffer
    /// of the shard pinned, run it once (unlocked) before waiting: the
    /// caller then looks again. Otherwise, or if it already ran since the
    /// last wait, wait for a release.
    fn no_room<'a>(
        &self,
        sh: &'a Shard,
        st: MutexGuard<'a, ShardState>,
        relief: &mut Relief<'_>,
        relieved: &mut bool,
    ) -> Result<MutexGuard<'a, ShardState>> {
        if let Some(relieve) = relief.as_mut() {
            if !*relieved && st.ndirty + st.nlimbo > 0 {
                *relieved = true;
                drop(st);
                relieve()?;
                return Ok(sh.st.lock());
            }
        }
        *relieved = false;
        Ok(self.wait(sh, st))
    }

    /// Find `addr` or read it in. `load` fills the buffer from the device and
    /// verifies it against `hash`; it runs at most once per miss, outside any
    /// lock, while other readers of the same address wait for it. A cached
    /// block whose hash differs from `hash` is reported as a checksum error.
    /// A reader's lookup: when the shard has no buffer to recycle, it waits
    /// for one.
    #[inline]
    pub fn get(
        &self,
        addr: BlockAddr,
        hash: u64,
        load: impl FnOnce(&mut [u8; BLKSZ]) -> Result<()>,
    ) -> Result<Block<'_>> {
        self.get_inner(addr, hash, load, None)
    }

    /// [`Cache::get`] for the writer: when the shard has no buffer to
    /// recycle and some of its buffers are pinned, `relieve` runs first (it
    /// should write the shard's pinned blocks, [`Cache::take_for_room`]);
    /// the lookup waits only if that left nothing to recycle. An error from
    /// `relieve` is returned.
    #[inline]
    pub fn get_relieving(
        &self,
        addr: BlockAddr,
        hash: u64,
        load: impl FnOnce(&mut [u8; BLKSZ]) -> Result<()>,
        relieve: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Block<'_>> {
        self.get_inner(addr, hash, load, Some(relieve))
    }

    #[inline(always)]
    fn get_inner(
        &self,
        addr: BlockAddr,
        hash: u64,
        load: impl FnOnce(&mut [u8; BLKSZ]) -> Result<()>,
        relief: Relief<'_>,
    ) -> Result<Block<'_>> {
        let s = self.shard_of(addr);
        let sh = &self.shards[s];
        let mut st = sh.st.lock();
        // The hit path: one lock, one atomic increment.
        if let Some(&i) = st.index.get(&addr.0) {
            // The caller reads the block next: start fetching its first
            // line now, in parallel with the bookkeeping below.
            self.pool.prefetch((sh.first + i) as usize);
            let m = &st.meta[i as usize];
            if m.state != State::Loading && m.hash == hash {
                // Hold it. A linked slot stays linked (its release will be
                // a lone decrement) and moves to the head; a parked one is
                // relinked by its last release.
                self.rc(sh, i).fetch_add(1, Ordering::Relaxed);
                if m.in_lru {
                    st.touch(i);
                }
                st.hits += 1;
                drop(st);
                return Ok(self.handle(s, i, addr, hash));
            }
        }
        self.get_slow(s, st, addr, hash, load, relief)
    }

    /// The rest of [`Cache::get`]: waiting for another thread's read, a
    /// checksum mismatch, or a miss.
    #[inline(never)]
    fn get_slow<'a>(
        &'a self,
        s: usize,
        mut st: MutexGuard<'a, ShardState>,
        addr: BlockAddr,
        hash: u64,
        load: impl FnOnce(&mut [u8; BLKSZ]) -> Result<()>,
        mut relief: Relief<'_>,
    ) -> Result<Block<'a>> {
        let sh = &self.shards[s];
        let mut relieved = false;
        loop {
            if let Some(&i) = st.index.get(&addr.0) {
                if st.meta[i as usize].state == State::Loading {
                    // A Loading slot is parked (plucked): just hold it.
                    self.rc(sh, i).fetch_add(1, Ordering::Relaxed);
                    while st.meta[i as usize].state == State::Loading {
                        st = self.wait(sh, st);
                    }
                    let m = &st.meta[i as usize];
                    if !(m.cached && m.addr == addr && m.state.is_sealed()) {
                        // The load failed; try again ourselves.
                        self.release_locked(sh, &mut st, i);
                        continue;
                    }
                } else {
                    self.rc(sh, i).fetch_add(1, Ordering::Relaxed);
                    if st.meta[i as usize].in_lru {
                        st.touch(i);
                    }
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
                return Ok(self.handle(s, i, addr, hash));
            }
            let Some(Plucked { slot: i, .. }) = st.pluck(self.refs_of(sh)) else {
                st = self.no_room(sh, st, &mut relief, &mut relieved)?;
                continue;
            };
            st.misses += 1;
            st.meta[i as usize].addr = addr;
            st.meta[i as usize].hash = hash;
            st.set_state(i, State::Loading);
            st.cache(i);
            drop(st);
            // SAFETY: the slot is Loading and we are its loader: no handle to
            // it exists (its count was 0 when plucked, read with Acquire, so
            // earlier holders are done with the bytes; waiters hold refs but
            // do not touch the bytes until the state leaves Loading).
            let r = load(unsafe { self.pool.get_mut((sh.first + i) as usize) });
            st = sh.st.lock();
            match r {
                Ok(()) => {
                    st.set_state(i, State::Clean);
                    self.notify(sh, &st);
                    return Ok(self.handle(s, i, addr, hash));
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

    /// A buffer for a new block at `addr`, which must not be cached (an
    /// allocator handing out a live address is reported, not ignored).
    /// Waits while every buffer of the shard is held. The buffer holds
    /// whatever it held before (zeros when the pool's memory is fresh,
    /// [`BlockMut::is_zeroed`]): the writer defines every byte before
    /// [`BlockMut::finalize`], so no block is zeroed only to be overwritten.
    pub fn new_block(&self, addr: BlockAddr) -> Result<BlockMut<'_>> {
        self.new_block_inner(addr, None)
    }

    /// [`Cache::new_block`] for the writer: when the shard has no buffer to
    /// recycle, `relieve` runs first, as in [`Cache::get_relieving`].
    pub fn new_block_relieving(
        &self,
        addr: BlockAddr,
        relieve: &mut dyn FnMut() -> Result<()>,
    ) -> Result<BlockMut<'_>> {
        self.new_block_inner(addr, Some(relieve))
    }

    fn new_block_inner(&self, addr: BlockAddr, mut relief: Relief<'_>) -> Result<BlockMut<'_>> {
        let s = self.shard_of(addr);
        let sh = &self.shards[s];
        let mut st = sh.st.lock();
        if st.index.contains_key(&addr.0) {
            return Err(Error::Internal(format!(
                "double allocation of block {addr}"
            )));
        }
        let mut relieved = false;
        let p = loop {
            if let Some(p) = st.pluck(self.refs_of(sh)) {
                break p;
            }
            st = self.no_room(sh, st, &mut relief, &mut relieved)?;
            // The relief ran unlocked: the allocator's address must still
            // be free in the cache.
            if st.index.contains_key(&addr.0) {
                return Err(Error::Internal(format!(
                    "double allocation of block {addr}"
                )));
            }
        };
        let i = p.slot;
        st.meta[i as usize].addr = addr;
        st.set_state(i, State::Building);
        drop(st);
        Ok(BlockMut {
            cache: self,
            shard: s as u32,
            slot: sh.first + i,
            addr,
            zeroed: p.zeroed,
        })
    }

    /// The address was freed. If it is cached, mark it so that it is never
    /// written and is recycled first, and leave it findable until
    /// [`Cache::reclaim`]: readers still in an older epoch may reach it.
    /// A block never written stays pinned meanwhile, in *limbo* (its dirty
    /// pin becomes the limbo pin: the buffer is its only copy). Any other —
    /// written, being written, or read from the device — needs no pin: its
    /// bytes stay on the device until the address is reused, which is only
    /// after its reclaim, so a reader that finds it evicted reads them back.
    /// So frees never pin a buffer that was not pinned already. Returns
    /// whether it was cached.
    pub fn free(&self, addr: BlockAddr) -> Result<bool> {
        let sh = &self.shards[self.shard_of(addr)];
        let mut st = sh.st.lock();
        let Some(&i) = st.index.get(&addr.0) else {
            return Ok(false);
        };
        let m = &mut st.meta[i as usize];
        // Only a free sets `freed` on an indexed slot (reclaims, failed
        // loads and abandoned builders unindex it).
        if m.freed {
            return Err(Error::Internal(format!("block {addr} freed twice")));
        }
        m.freed = true;
        if m.state == State::Dirty {
            m.limbo = true;
            st.nlimbo += 1;
            st.set_state(i, State::Clean);
            st.ndirty -= 1;
        } else if st.meta[i as usize].in_lru {
            // To the tail; a parked one goes there at its last release.
            st.unlink(i);
            st.link_tail(i);
        }
        Ok(true)
    }

    /// Readers can no longer reach `addr`: drop it from the index and release
    /// its limbo pin, if it has one. Its buffer is recycled first.
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
            // If this was the last reference, the slot goes to the tail.
            self.release_locked(sh, &mut st, i);
        }
        // Still linked (idle, or held by a lookup that left it linked): to
        // the tail. Still parked: its last release puts it there.
        if st.meta[i as usize].in_lru {
            st.unlink(i);
            st.link_tail(i);
        }
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
            s.idle += self
                .refs_of(sh)
                .iter()
                .filter(|r| r.load(Ordering::Relaxed) & !PARKED == 0)
                .count();
        }
        s
    }

    /// Wake the shard's waiters, if any (with its lock held).
    fn notify(&self, sh: &Shard, st: &ShardState) {
        if st.waiters > 0 {
            sh.cond.notify_all();
        }
    }

    /// Drop one reference to local slot `i` with the shard lock held.
    fn release_locked(&self, sh: &Shard, st: &mut ShardState, i: u32) {
        if self.rc(sh, i).fetch_sub(1, Ordering::Release) == PARKED | 1 {
            self.relink(sh, st, i);
        }
    }

    /// Put a parked slot whose count reached 0 back on the LRU, once: at the
    /// tail if freed or uncached, else at the head. Nothing to do if a
    /// lookup has taken it again since (its own last release relinks it) or
    /// the releaser of an earlier hold got here first.
    fn relink(&self, sh: &Shard, st: &mut ShardState, i: u32) {
        // Under the lock a count of 0 cannot change and PARKED is ours to
        // clear: the exchange fails only if the slot is held or linked.
        if self
            .rc(sh, i)
            .compare_exchange(PARKED, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
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

    /// Drop one reference to global slot `slot` of shard `shard`, without
    /// the lock: one atomic decrement, unless it was the last reference to
    /// a parked slot.
    #[inline]
    fn release(&self, shard: u32, slot: u32) {
        // Release: this holder's reads of the buffer happen before a
        // plucker's Acquire read of the count it leaves.
        if self.refs[slot as usize].fetch_sub(1, Ordering::Release) == PARKED | 1 {
            self.release_slow(shard, slot);
        }
    }

    #[cold]
    #[inline(never)]
    fn release_slow(&self, shard: u32, slot: u32) {
        let sh = &self.shards[shard as usize];
        let mut st = sh.st.lock();
        self.relink(sh, &mut st, slot - sh.first);
    }

    /// Check every shard's invariants (tests); `quiet`: no release is in
    /// flight.
    #[cfg(test)]
    fn check(&self, quiet: bool) {
        for sh in self.shards.iter() {
            sh.st.lock().check(self.refs_of(sh), quiet);
        }
    }
}

/// A shared, immutable handle to a cached block. Cloning holds it; dropping
/// releases it.
pub struct Block<'c> {
    cache: &'c Cache,
    shard: u32,
    /// Global slot number.
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
    #[inline]
    pub fn bytes(&self) -> &[u8; BLKSZ] {
        // SAFETY: this handle holds a reference on a sealed slot (handles are
        // only made for sealed slots, and a held slot is never recycled), so
        // the buffer is immutable for the handle's lifetime.
        unsafe { self.cache.pool.get(self.slot as usize) }
    }
}

impl std::ops::Deref for Block<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes()[..]
    }
}

impl Clone for Block<'_> {
    #[inline]
    fn clone(&self) -> Self {
        // From a held reference: never 0 → 1, so no lock is needed. (A
        // count has 31 bits; like `Arc`'s, it cannot overflow in practice.)
        let prev = self.cache.refs[self.slot as usize].fetch_add(1, Ordering::Relaxed);
        debug_assert!(prev & !PARKED != 0 && prev & !PARKED < PARKED - 1);
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
    #[inline]
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
    /// Global slot number.
    slot: u32,
    addr: BlockAddr,
    /// The buffer was never used: it holds only zeros (`pool.rs`).
    zeroed: bool,
}

impl<'c> BlockMut<'c> {
    /// The address the block will live at.
    pub fn addr(&self) -> BlockAddr {
        self.addr
    }

    /// Whether the buffer is known to hold only zeros (it was never used
    /// before), so a writer that needs zeros need not clear it.
    pub fn is_zeroed(&self) -> bool {
        self.zeroed
    }

    /// The contents, writable.
    pub fn buf_mut(&mut self) -> &mut [u8; BLKSZ] {
        // SAFETY: a BlockMut exclusively owns its Building slot: it is in no
        // index or list, and `&mut self` makes this the only access.
        unsafe { self.cache.pool.get_mut(self.slot as usize) }
    }

    /// The contents.
    pub fn buf(&self) -> &[u8; BLKSZ] {
        // SAFETY: as in `buf_mut`; `&self` excludes writers.
        unsafe { self.cache.pool.get(self.slot as usize) }
    }

    /// Seal the block with its hash: it becomes findable by address and
    /// stays pinned as dirty (tagged with the commit `interval` that made it)
    /// until written or freed.
    pub fn finalize(self, hash: u64, interval: u64) -> Result<Block<'c>> {
        let me = std::mem::ManuallyDrop::new(self);
        let (cache, shard, slot, addr) = (me.cache, me.shard, me.slot, me.addr);
        let sh = &cache.shards[shard as usize];
        let i = slot - sh.first;
        let mut st = sh.st.lock();
        if st.index.contains_key(&addr.0) {
            st.set_state(i, State::Free);
            cache.release_locked(sh, &mut st, i);
            return Err(Error::Internal(format!("block {addr} cached twice")));
        }
        st.meta[i as usize].hash = hash;
        st.meta[i as usize].interval = interval;
        st.cache(i);
        st.set_state(i, State::Dirty);
        st.ndirty += 1;
        if !st.meta[i as usize].listed {
            st.meta[i as usize].listed = true;
            st.dirty.push(i);
        }
        // The dirty pin (the slot is parked since its pluck).
        cache.rc(sh, i).fetch_add(1, Ordering::Relaxed);
        Ok(cache.handle(shard as usize, i, addr, hash))
    }
}

impl Drop for BlockMut<'_> {
    fn drop(&mut self) {
        let sh = &self.cache.shards[self.shard as usize];
        let i = self.slot - sh.first;
        let mut st = sh.st.lock();
        st.set_state(i, State::Free);
        st.meta[i as usize].freed = true;
        self.cache.release_locked(sh, &mut st, i);
    }
}

#[cfg(test)]
#[cfg(feature = "loom")]
mod loom_tests;
#[cfg(test)]
#[cfg(not(feature = "loom"))]
mod tests;
