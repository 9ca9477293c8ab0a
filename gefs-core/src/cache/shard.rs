//! One shard of the cache: its slots' metadata, its address index and its LRU
//! list, all under the shard's one lock, plus (outside the lock, in
//! `Shard::refs`) each slot's refcount word.
//!
//! The refcount word of a slot is its reference count in the low 31 bits and
//! [`PARKED`] in the top bit. Invariants (checked in debug builds by
//! [`State::can_become`], the list operations and, in tests,
//! [`ShardState::check`]):
//! - a slot is either *linked* (on the LRU, `in_lru`, PARKED clear) or
//!   *parked* (off the LRU, PARKED set); both change only under the lock;
//! - a count goes from 0 to 1 only under the lock (a lookup, a pin, or a
//!   pluck); anywhere else a reference is only cloned from one already held,
//!   and releases are a lone atomic decrement that takes no lock;
//! - every *idle* slot (count 0) is linked, except transiently: the release
//!   that takes a parked slot's word from `PARKED | 1` to `PARKED` then takes
//!   the lock and relinks it, unless a lookup has taken it again meanwhile
//!   (whose own release will);
//! - a linked slot may be held (a lookup takes a reference and moves it to
//!   the head but leaves it linked); [`ShardState::pluck`] parks the held
//!   slots it meets at the tail and recycles the first idle one, so only
//!   idle slots are recycled and each slot is skipped at most once per hold;
//! - plucked slots (`Building`, `Loading`), dirty or writing slots (held
//!   by the cache's dirty pin) and limbo slots (freed before they were
//!   written, held by their limbo pin) are parked, so the LRU never offers
//!   unwritten contents;
//! - the index maps an address to at most one slot, and only slots whose
//!   `cached` flag is set are in it; removal checks that flag (by identity);
//! - slots are first used in order: `meta.len()` slots have been used, the
//!   rest (up to `cap`) never have, are on no list, and hold zero bytes (the
//!   pool's untouched pages); their metadata is created at first use, in
//!   storage reserved up front, so memory follows use and nothing is
//!   allocated after start;
//! - the LRU is ordered by last use: a lookup of a linked slot moves it to
//!   the head, a parked slot's last release links it at the head, and a
//!   freed slot goes to the tail (at reclaim if linked, at its last release
//!   if parked); buffers are recycled from the tail, so recycling *is*
//!   eviction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use std::sync::atomic::Ordering;

use crate::ids::BlockAddr;
use crate::sync::AtomicU32;

/// The top bit of a slot's refcount word: the slot is off the LRU, and the
/// release that takes its count to zero must relink it (under the lock).
pub(crate) const PARKED: u32 = 1 << 31;

/// The index's hash of a block address: two folded 64×64→128-bit
/// multiplies (a dozen instructions, against about a hundred for xxh3's
/// streaming hasher).
///
/// Addresses are multiples of the block size, so their low 14 bits are zero;
/// rotating them away first puts the block number at the bottom. One fold
/// (xor of the product's halves) leaves strided block numbers clustered in
/// the low bits, which pick the bucket; the second round makes consecutive,
/// strided and one-shard subsets of block numbers all spread like random keys
/// over both the buckets (low bits) and the tags (top 7 bits). The
/// multipliers differ from the shard hash's, so the keys of one shard do not
/// cluster in its table. The keys are addresses our own allocator chose, so
/// no seed is needed against adversarial keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl AddrHasher {
    const K1: u64 = 0xa076_1d64_78bd_642f;
    const K2: u64 = 0xe703_7ed1_a0b4_28db;

    #[inline]
    fn fold(x: u64, k: u64) -> u64 {
        let p = u128::from(x) * u128::from(k);
        (p as u64) ^ ((p >> 64) as u64)
    }

    #[inline]
    fn mix(x: u64) -> u64 {
        Self::fold(
            Self::fold(x.rotate_right(14), Self::K1) ^ Self::K2,
            Self::K1,
        )
    }
}

impl Hasher for AddrHasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = Self::mix(self.0 ^ x);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this keeps any other key correct.
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_be_bytes(w));
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

/// Per-slot metadata (the LRU links are apart, in [`Link`]). 32 bytes, and
/// aligned so that a record never straddles two cache lines.
#[derive(Debug, Clone)]
#[repr(align(32))]
pub(crate) struct Meta {
    pub(crate) addr: BlockAddr,
    pub(crate) hash: u64,
    pub(crate) state: State,
    /// In the index.
    pub(crate) cached: bool,
    /// Its address was freed: never write it, recycle it first.
    pub(crate) freed: bool,
    /// Freed before it was ever written, so pinned (the buffer is its only
    /// copy) until reclaimed or written.
    pub(crate) limbo: bool,
    /// On the LRU list.
    pub(crate) in_lru: bool,
    /// For dirty slots: the commit interval that produced it.
    pub(crate) interval: u64,
    /// On the shard's dirty list.
    pub(crate) listed: bool,
}

/// A slot's LRU links. Kept in their own array: moving a slot to the head
/// touches three or four slots' links, and 8-byte records keep those
/// accesses in few cache lines.
#[derive(Debug, Clone, Copy)]
struct Link {
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
        }
    }
}

/// A slot taken by [`ShardState::pluck`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plucked {
    /// Its local slot number.
    pub(crate) slot: u32,
    /// Never used before, so its buffer holds only zeros.
    pub(crate) zeroed: bool,
}

/// A shard's lock-protected state. Slot numbers are local to the shard.
pub(crate) struct ShardState {
    /// The metadata of the slots used so far (`meta.len()` of them, the
    /// others never used); capacity for all `cap` reserved at start.
    pub(crate) meta: Vec<Meta>,
    links: Vec<Link>,
    /// Slots in the shard.
    cap: usize,
    pub(crate) index: Index,
    head: u32,
    tail: u32,
    /// Slots on the LRU (idle or not).
    pub(crate) linked: usize,
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
    /// A shard of `n` free slots, all idle and never used. Storage for
    /// every slot's metadata is reserved (not touched) now.
    pub(crate) fn new(n: usize) -> ShardState {
        ShardState {
            meta: Vec::with_capacity(n),
            links: Vec::with_capacity(n),
            cap: n,
            index: Index::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            head: NIL,
            tail: NIL,
            linked: 0,
            dirty: Vec::new(),
            ndirty: 0,
            nlimbo: 0,
            hits: 0,
            misses: 0,
            waits: 0,
            waiters: 0,
        }
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

    /// Put a slot at the head (recently used).
    pub(crate) fn link_head(&mut self, i: u32) {
        let m = &mut self.meta[i as usize];
        debug_assert!(!m.in_lru);
        m.in_lru = true;
        let old = self.head;
        self.links[i as usize] = Link {
            prev: NIL,
            next: old,
        };
        if old != NIL {
            self.links[old as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
        self.linked += 1;
    }

    /// Put a slot at the tail (recycled next).
    pub(crate) fn link_tail(&mut self, i: u32) {
        let m = &mut self.meta[i as usize];
        debug_assert!(!m.in_lru);
        m.in_lru = true;
        let old = self.tail;
        self.links[i as usize] = Link {
            prev: old,
            next: NIL,
        };
        if old != NIL {
            self.links[old as usize].next = i;
        } else {
            self.head = i;
        }
        self.tail = i;
        self.linked += 1;
    }

    /// Take a slot off the LRU.
    pub(crate) fn unlink(&mut self, i: u32) {
        let m = &mut self.meta[i as usize];
        debug_assert!(m.in_lru);
        m.in_lru = false;
        let Link { prev: p, next: n } = std::mem::replace(
            &mut self.links[i as usize],
            Link {
                prev: NIL,
                next: NIL,
            },
        );
        if p != NIL {
            self.links[p as usize].next = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.links[n as usize].prev = p;
        } else {
            self.tail = p;
        }
        self.linked -= 1;
    }

    /// Move a linked slot to the head (a lookup used it).
    #[inline]
    pub(crate) fn touch(&mut self, i: u32) {
        debug_assert!(self.meta[i as usize].in_lru);
        let old = self.head;
        if old == i {
            return;
        }
        // Not the head, so it has a predecessor.
        let Link { prev: p, next: n } = self.links[i as usize];
        self.links[p as usize].next = n;
        if n != NIL {
            self.links[n as usize].prev = p;
        } else {
            self.tail = p;
        }
        self.links[i as usize] = Link {
            prev: NIL,
            next: old,
        };
        self.links[old as usize].prev = i;
        self.head = i;
    }

    /// Take a linked slot off the LRU and mark its word PARKED, so that the
    /// release taking its count to zero relinks it. Returns the word before.
    pub(crate) fn park(&mut self, i: u32, refs: &[AtomicU32]) -> u32 {
        self.unlink(i);
        // Acquire: if the count was 0, every earlier holder's use of the
        // buffer (their releases are Release decrements) happens before the
        // caller recycles it.
        let prev = refs[i as usize].fetch_or(PARKED, Ordering::Acquire);
        debug_assert_eq!(prev & PARKED, 0, "slot {i} was linked and parked");
        prev
    }

    /// Take a slot for new contents, parked with one reference, the
    /// taker's. In order of preference: an idle slot at the LRU tail that
    /// holds nothing worth keeping (freed or uncached); a never-used slot;
    /// the least recently used idle slot. Held slots met at the tail are
    /// parked on the way (each is relinked by its last release); a recycled
    /// slot is taken out of the index (only if it is the indexed slot for
    /// its address). `None` when every slot is held.
    pub(crate) fn pluck(&mut self, refs: &[AtomicU32]) -> Option<Plucked> {
        loop {
            let i = self.tail;
            let spare = i != NIL && {
                let m = &self.meta[i as usize];
                m.freed || !m.cached
            };
            if !spare && self.meta.len() < self.cap {
                return Some(self.first_use(refs));
            }
            if i == NIL {
                return None;
            }
            if self.park(i, refs) != 0 {
                continue;
            }
            // Count 0, and only a lock holder could raise it from 0: this
            // store races with nobody.
            refs[i as usize].store(PARKED | 1, Ordering::Relaxed);
            self.uncache(i);
            let m = &mut self.meta[i as usize];
            m.freed = false;
            m.hash = 0;
            m.addr = BlockAddr::NONE;
            return Some(Plucked {
                slot: i,
                zeroed: false,
            });
        }
    }

    /// Start using the next never-used slot: its metadata is created (in
    /// the reserved storage, so nothing is allocated) and it is parked with
    /// the taker's reference.
    fn first_use(&mut self, refs: &[AtomicU32]) -> Plucked {
        let i = self.meta.len();
        debug_assert!(i < self.cap && self.meta.capacity() >= self.cap);
        self.meta.push(Meta::new());
        self.links.push(Link {
            prev: NIL,
            next: NIL,
        });
        // Never held, so its word is 0 and nobody else can reach it.
        debug_assert_eq!(refs[i].load(Ordering::Relaxed), 0);
        refs[i].store(PARKED | 1, Ordering::Relaxed);
        Plucked {
            slot: i as u32,
            zeroed: true,
        }
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

    /// Check the invariants above (tests). With `quiet`, no release may be
    /// in flight, so no idle slot may be parked.
    #[cfg(test)]
    pub(crate) fn check(&self, refs: &[AtomicU32], quiet: bool) {
        assert!(self.meta.len() <= self.cap && self.links.len() == self.meta.len());
        for (i, r) in refs.iter().enumerate().skip(self.meta.len()) {
            assert_eq!(r.load(Ordering::Relaxed), 0, "never-used slot {i} held");
        }
        let mut n = 0;
        let mut prev = NIL;
        let mut i = self.head;
        while i != NIL {
            let m = &self.meta[i as usize];
            assert!(m.in_lru, "slot {i} on the LRU without in_lru");
            assert_eq!(
                self.links[i as usize].prev, prev,
                "slot {i}: broken back link"
            );
            assert!(n < self.meta.len(), "LRU cycle");
            n += 1;
            prev = i;
            i = self.links[i as usize].next;
        }
        assert_eq!(self.tail, prev, "LRU tail");
        assert_eq!(n, self.linked, "LRU length");
        for (i, m) in self.meta.iter().enumerate() {
            let w = refs[i].load(Ordering::Relaxed);
            assert_eq!(m.in_lru, w & PARKED == 0, "slot {i}: linked xor parked");
            if quiet && w == PARKED {
                panic!("slot {i}: idle but parked with no release in flight");
            }
            if matches!(m.state, State::Dirty | State::Writing) {
                assert!(
                    w & PARKED != 0 && w & !PARKED > 0,
                    "slot {i}: dirty unpinned"
                );
            }
            if m.limbo {
                assert!(
                    w & PARKED != 0 && w & !PARKED > 0,
                    "slot {i}: limbo unpinned"
                );
                assert!(
                    m.freed && m.cached && m.state == State::Clean,
                    "slot {i}: limbo but {m:?}"
                );
            }
            if m.cached {
                assert_eq!(
                    self.index.get(&m.addr.0),
                    Some(&(i as u32)),
                    "slot {i} index"
                );
            }
        }
        let dirty = self
            .meta
            .iter()
            .filter(|m| matches!(m.state, State::Dirty | State::Writing))
            .count();
        assert_eq!(dirty, self.ndirty, "dirty count");
        let limbo = self.meta.iter().filter(|m| m.limbo).count();
        assert_eq!(limbo, self.nlimbo, "limbo count");
        for (&a, &i) in &self.index {
            let m = &self.meta[i as usize];
            assert!(m.cached && m.addr.0 == a, "index {a:#x} -> slot {i}");
        }
    }

    /// Walk the LRU from head to tail (tests and statistics).
    #[cfg(test)]
    #[cfg(not(feature = "loom"))]
    pub(crate) fn lru_order(&self) -> Vec<u32> {
        let mut v = Vec::new();
        let mut i = self.head;
        while i != NIL {
            v.push(i);
            i = self.links[i as usize].next;
        }
        v
    }
}
