//! One shard of the cache: its slots' metadata, its address index and its LRU
//! list of idle slots, all under the shard's one lock.
//!
//! Invariants (checked in debug builds by [`State::can_become`] and the list
//! operations):
//! - a slot is *idle* (on the LRU, refs = 0, state Free or Clean) or *held*
//!   (refs > 0, not on the LRU); dirty and writing slots are always held by
//!   the cache's own dirty pin, so the LRU never holds unwritten contents;
//! - the index maps an address to at most one slot, and only slots whose
//!   `cached` flag is set are in it; removal checks that flag (by identity);
//! - a freed slot's last release puts it at the LRU tail, any other at the
//!   head; buffers are recycled from the tail, so recycling *is* eviction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ids::BlockAddr;

/// The index's hash of a block address: one folded 64×64→128-bit multiply.
///
/// Addresses are multiples of the block size, so their low 14 bits are zero;
/// rotating them away first lets every key bit reach both halves of the
/// product, and folding the halves gives well-mixed low bits (the table's
/// bucket) and high bits (its tag). Sequential or strided block numbers
/// therefore spread like random keys, and an adversary gains nothing: the
/// keys are addresses our own allocator chose. It is independent of the
/// shard hash (a different multiplier), so the keys of one shard do not
/// cluster in its table.
#[derive(Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl AddrHasher {
    const K: u64 = 0xa076_1d64_78bd_642f;

    #[inline]
    fn fold(x: u64) -> u64 {
        let p = u128::from(x.rotate_right(14)) * u128::from(Self::K);
        (p as u64) ^ ((p >> 64) as u64)
    }
}

impl Hasher for AddrHasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = Self::fold(self.0 ^ x);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this keeps any other key correct.
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The address index of one shard.
pub(crate) type Index = HashMap<u64, u32, BuildHasherDefault<AddrHasher>>;

/// "No slot" in the LRU links.
pub(crate) const NIL: u32 = u32::MAX;

/// The life cycle of a slot's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No contents.
    Free,
    /// Owned by a `BlockMut`: the one writer fills it.
    Building,
    /// Being read from the device by one thread; others wait.
    Loading,
    /// Sealed; equal to the device (or freed, never to be written).
    Clean,
    /// Sealed, not yet written; pinned by the dirty pin.
    Dirty,
    /// Being written by writeback; still pinned.
    Writing,
}

impl State {
    /// The legal transitions.
    pub(crate) fn can_become(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Free | Clean, Building | Loading)
                | (Building, Dirty | Free)
                | (Loading, Clean | Free)
                | (Dirty, Writing | Clean)
                | (Writing, Clean)
        )
    }

    /// Whether the buffer is immutable and readable by holders.
    pub(crate) fn is_sealed(self) -> bool {
        matches!(self, State::Clean | State::Dirty | State::Writing)
    }
}

/// Per-slot metadata.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) addr: BlockAddr,
    pub(crate) hash: u64,
    pub(crate) state: State,
    /// In the index.
    pub(crate) cached: bool,
    /// Its address was freed: never write it, recycle it first.
    pub(crate) freed: bool,
    /// Pinned by a pending free (released at reclaim).
    pub(crate) limbo: bool,
    /// On the LRU list.
    pub(crate) in_lru: bool,
    /// For dirty slots: the commit interval that produced it.
    pub(crate) interval: u64,
    /// On the shard's dirty list.
    pub(crate) listed: bool,
    prev: u32,
    next: u32,
}

impl Meta {
    fn new() -> Meta {
        Meta {
            addr: BlockAddr::NONE,
            hash: 0,
            state: State::Free,
            cached: false,
            freed: false,
            limbo: false,
            in_lru: false,
            interval: 0,
            listed: false,
            prev: NIL,
            next: NIL,
        }
    }
}

/// A shard's lock-protected state. Slot numbers are local to the shard.
pub(crate) struct ShardState {
    pub(crate) meta: Vec<Meta>,
    pub(crate) index: Index,
    head: u32,
    tail: u32,
    pub(crate) idle: usize,
    /// Slots that were dirty when listed (each at most once; stale entries
    /// are dropped when the list is next walked).
    pub(crate) dirty: Vec<u32>,
    pub(crate) ndirty: usize,
    pub(crate) nlimbo: usize,
    /// Lookups served from memory (counted under the lock already held, so
    /// a hit writes no cache line shared with other shards).
    pub(crate) hits: u64,
    /// Lookups that read the device.
    pub(crate) misses: u64,
    /// Times a taker waited.
    pub(crate) waits: u64,
    /// Threads now waiting on the shard's condition variable.
    pub(crate) waiters: u32,
}

impl ShardState {
    /// A shard of `n` free slots, all idle.
    pub(crate) fn new(n: usize) -> ShardState {
        let mut s = ShardState {
            meta: (0..n).map(|_| Meta::new()).collect(),
            index: Index::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            head: NIL,
            tail: NIL,
            idle: 0,
            dirty: Vec::new(),
            ndirty: 0,
            nlimbo: 0,
            hits: 0,
            misses: 0,
            waits: 0,
            waiters: 0,
        };
        for i in 0..n as u32 {
            s.link_head(i);
        }
        s
    }

    pub(crate) fn set_state(&mut self, i: u32, next: State) {
        let m = &mut self.meta[i as usize];
        debug_assert!(
            m.state.can_become(next),
            "slot {i}: {:?} -> {next:?}",
            m.state
        );
        m.state = next;
    }

    /// Put an idle slot at the head (recently used).
    pub(crate) fn link_head(&mut self, i: u32) {
        debug_assert!(!self.meta[i as usize].in_lru);
        let old = self.head;
        {
            let m = &mut self.meta[i as usize];
            m.prev = NIL;
            m.next = old;
            m.in_lru = true;
        }
        if old != NIL {
            self.meta[old as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
        self.idle += 1;
    }

    /// Put an idle slot at the tail (recycled next).
    pub(crate) fn link_tail(&mut self, i: u32) {
        debug_assert!(!self.meta[i as usize].in_lru);
        let old = self.tail;
        {
            let m = &mut self.meta[i as usize];
            m.next = NIL;
            m.prev = old;
            m.in_lru = true;
        }
        if old != NIL {
            self.meta[old as usize].next = i;
        } else {
            self.head = i;
        }
        self.tail = i;
        self.idle += 1;
    }

    /// Take a slot off the LRU.
    pub(crate) fn unlink(&mut self, i: u32) {
        let (p, n) = {
            let m = &mut self.meta[i as usize];
            debug_assert!(m.in_lru);
            m.in_lru = false;
            (
                std::mem::replace(&mut m.prev, NIL),
                std::mem::replace(&mut m.next, NIL),
            )
        };
        if p != NIL {
            self.meta[p as usize].next = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.meta[n as usize].prev = p;
        } else {
            self.tail = p;
        }
        self.idle -= 1;
    }

    /// Recycle the least recently used idle slot: off the LRU and out of the
    /// index (only if it is the indexed slot for its address). `None` when
    /// every slot is held.
    pub(crate) fn pluck(&mut self) -> Option<u32> {
        let i = self.tail;
        if i == NIL {
            return None;
        }
        self.unlink(i);
        self.uncache(i);
        let m = &mut self.meta[i as usize];
        m.freed = false;
        m.hash = 0;
        m.addr = BlockAddr::NONE;
        Some(i)
    }

    /// Remove slot `i` from the index if it is the slot cached there.
    pub(crate) fn uncache(&mut self, i: u32) {
        let m = &mut self.meta[i as usize];
        if m.cached {
            m.cached = false;
            if self.index.get(&m.addr.0) == Some(&i) {
                self.index.remove(&m.addr.0);
            }
        }
    }

    /// Index slot `i` under its address.
    pub(crate) fn cache(&mut self, i: u32) {
        let m = &mut self.meta[i as usize];
        debug_assert!(!m.cached);
        m.cached = true;
        self.index.insert(m.addr.0, i);
    }

    /// Walk the LRU from head to tail (tests and statistics).
    #[cfg(test)]
    #[cfg(not(loom))]
    pub(crate) fn lru_order(&self) -> Vec<u32> {
        let mut v = Vec::new();
        let mut i = self.head;
        while i != NIL {
            v.push(i);
            i = self.meta[i as usize].next;
        }
        v
    }
}
