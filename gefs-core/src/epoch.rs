//! Epoch-based reclamation, as GEFS does it: a global epoch, per-participant
//! slots with an active bit, and limbo lists by epoch.
//!
//! Readers traverse trees without locks while the single writer replaces
//! blocks by copy-on-write. A replaced block must not be reused while a
//! reader that saw the old root may still read it. So every traversal runs
//! inside a [`Guard`] (its slot records the epoch it started in, marked
//! active), and a freed block is [`Epochs::defer`]red onto the limbo list of
//! the current epoch instead of being reused.
//!
//! [`Epochs::try_advance`] moves the epoch from `g` to `g+1` only when every
//! active slot is in `g`, and then hands back the list filled while the epoch
//! was `g-2`. Why that is safe: an item deferred in epoch `e` was unlinked
//! before it was deferred. The advance from `e+1` required every active
//! participant to have entered `e+1` — after the unlink — or to have left;
//! the advance from `e+2` required the same for `e+2`. So when the list of
//! `e` is handed back at the advance from `e+2`, no active participant can
//! have started before the unlink, and nobody can still hold the item.
//!
//! Unlike the reference, every slot is scanned (the reference skips its last
//! worker slot, §13.2 #27), and slots are claimed per guard rather than per
//! thread, so any thread may read.
//!
//! Reuse after reclamation has a second condition that this module does not
//! know about: a block still referenced by the last durable commit must wait
//! for the next commit too. The store keeps that rule (see `store/reclaim.rs`
//! and `doc/DESIGN.md`); this module only answers "can a reader still see it".

use std::sync::atomic::Ordering;

use crate::sync::{fence, spin_yield, AtomicU64, AtomicUsize, Mutex};

/// Most guards that may be held at once.
pub const MAX_SLOTS: usize = 128;

const ACTIVE: u64 = 1;

/// Epoch state and the limbo lists of deferred items of type `T`.
pub struct Epochs<T> {
    global: AtomicU64,
    slots: Box<[AtomicU64]>,
    limbo: [Mutex<Vec<T>>; 3],
    pending: AtomicUsize,
}

impl<T> std::fmt::Debug for Epochs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epochs")
            .field("epoch", &self.epoch())
            .field("pending", &self.pending())
            .finish()
    }
}

impl<T> Default for Epochs<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Epochs<T> {
    /// Fresh state at epoch 0 with nothing deferred.
    pub fn new() -> Epochs<T> {
        Epochs::with_slots(MAX_SLOTS)
    }

    /// Fresh state allowing at most `n` guards at once.
    pub fn with_slots(n: usize) -> Epochs<T> {
        Epochs {
            global: AtomicU64::new(0),
            slots: (0..n.max(1)).map(|_| AtomicU64::new(0)).collect(),
            limbo: [
                Mutex::new(Vec::new()),
                Mutex::new(Vec::new()),
                Mutex::new(Vec::new()),
            ],
            pending: AtomicUsize::new(0),
        }
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.global.load(Ordering::SeqCst)
    }

    /// Items deferred and not yet handed back.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Enter a critical section: claim a free slot and mark it active in the
    /// current epoch. Spins if all [`MAX_SLOTS`] slots are in use.
    pub fn pin(&self) -> Guard<'_, T> {
        loop {
            let g = self.global.load(Ordering::SeqCst);
            let word = (g << 1) | ACTIVE;
            let n = self.slots.len();
            let first = first_slot(n);
            for (i, s) in (first..n).chain(0..first).map(|i| (i, &self.slots[i])) {
                if s.compare_exchange(0, word, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    // Order the slot store before every load the reader
                    // makes next (store-load: needs a full fence).
                    fence(Ordering::SeqCst);
                    // If the epoch moved while we claimed, record the new one
                    // (staying in the old one would only delay reclamation).
                    let now = self.global.load(Ordering::SeqCst);
                    if now != g {
                        s.store((now << 1) | ACTIVE, Ordering::SeqCst);
                    }
                    return Guard {
                        epochs: self,
                        slot: i,
                    };
                }
            }
            spin_yield();
        }
    }

    /// Defer `item` until no guard that could have seen it remains.
    pub fn defer(&self, item: T) {
        // The caller unlinked `item` before this point.
        fence(Ordering::SeqCst);
        let g = self.global.load(Ordering::SeqCst);
        self.limbo[(g % 3) as usize].lock().push(item);
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether some active guard is in an epoch older than the current one.
    pub fn is_blocked(&self) -> bool {
        fence(Ordering::SeqCst);
        self.blocked_at(self.global.load(Ordering::SeqCst))
    }

    fn blocked_at(&self, g: u64) -> bool {
        self.slots.iter().any(|s| {
            let v = s.load(Ordering::SeqCst);
            v & ACTIVE != 0 && v >> 1 != g
        })
    }

    /// Advance the epoch if every active guard is in the current one, and
    /// return the items deferred two epochs ago, now unreachable. `None` if
    /// an older guard blocks the advance.
    pub fn try_advance(&self) -> Option<Vec<T>> {
        fence(Ordering::SeqCst);
        let g = self.global.load(Ordering::SeqCst);
        if self.blocked_at(g) {
            return None;
        }
        let items = std::mem::take(&mut *self.limbo[((g + 1) % 3) as usize].lock());
        // Only one advancer wins; a loser puts the items back.
        if self
            .global
            .compare_exchange(g, g + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            self.limbo[((g + 1) % 3) as usize].lock().extend(items);
            return None;
        }
        self.pending.fetch_sub(items.len(), Ordering::SeqCst);
        Some(items)
    }

    /// Advance three times (waiting for blocking guards as needed) so that
    /// everything deferred before the call is handed back. `wait` is called
    /// while blocked; it should sleep briefly. Only the tests need it.
    #[cfg(all(test, not(feature = "loom")))]
    pub fn drain(&self, mut wait: impl FnMut()) -> Vec<T> {
        let mut out = Vec::new();
        let mut advanced = 0;
        while advanced < 3 {
            match self.try_advance() {
                Some(items) => {
                    out.extend(items);
                    advanced += 1;
                }
                None => wait(),
            }
        }
        out
    }
}

/// An active critical section. Dropping it leaves.
pub struct Guard<'e, T> {
    epochs: &'e Epochs<T>,
    slot: usize,
}

impl<T> Guard<'_, T> {
    /// The epoch this guard is in.
    pub fn epoch(&self) -> u64 {
        self.epochs.slots[self.slot].load(Ordering::SeqCst) >> 1
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.epochs.slots[self.slot].store(0, Ordering::SeqCst);
    }
}

impl<T> std::fmt::Debug for Guard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard(slot {}, epoch {})", self.slot, self.epoch())
    }
}

/// The slot where this thread starts looking for a free one. Threads start
/// on different cache lines (eight slots to a line), so that readers pinning
/// at the same time neither fight over slot 0 nor bounce one line between
/// cores; any free slot is as good as another, so this is only a hint.
#[cfg(not(feature = "loom"))]
fn first_slot(n: usize) -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize as Counter;
    static NEXT: Counter = Counter::new(0);
    std::thread_local! {
        static FIRST: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let first = FIRST.with(|f| {
        if f.get() == usize::MAX {
            f.set(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(8));
        }
        f.get()
    });
    first % n.max(1)
}

/// Under loom every thread starts at slot 0: a hint kept outside the model
/// would make its executions differ between runs.
#[cfg(feature = "loom")]
fn first_slot(_n: usize) -> usize {
    0
}

#[cfg(test)]
#[cfg(not(feature = "loom"))]
mod tests {
    use super::*;

    #[test]
    fn items_wait_for_two_advances() {
        let e: Epochs<u32> = Epochs::new();
        e.defer(1);
        assert_eq!(e.try_advance(), Some(vec![]));
        assert_eq!(e.try_advance(), Some(vec![]));
        assert_eq!(e.try_advance(), Some(vec![1]));
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn an_old_guard_blocks() {
        let e: Epochs<u32> = Epochs::new();
        let g = e.pin();
        e.defer(7);
        assert!(
            e.try_advance().is_some(),
            "a guard in the current epoch does not block"
        );
        assert!(e.is_blocked());
        assert_eq!(e.try_advance(), None);
        drop(g);
        let got = e.drain(|| panic!("nothing blocks"));
        assert_eq!(got, vec![7]);
    }

    #[test]
    fn every_slot_is_checked() {
        // Regression for the reference's off-by-one (§13.2 #27): a guard in
        // the last slot must block too.
        let e: Epochs<u32> = Epochs::new();
        let guards: Vec<_> = (0..MAX_SLOTS).map(|_| e.pin()).collect();
        assert!(e.try_advance().is_some());
        assert!(
            e.try_advance().is_none(),
            "the guard in slot {} was ignored",
            MAX_SLOTS - 1
        );
        drop(guards);
        assert!(e.try_advance().is_some());
    }

    #[test]
    fn concurrent_readers_never_see_reclaimed_items() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        // Versions 0..N; `cur` points at the live one; reclaimed ones are
        // marked dead. Readers must never observe a dead version.
        const N: usize = 4096;
        let e: Arc<Epochs<usize>> = Arc::new(Epochs::new());
        let dead: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
        let cur = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (e, dead, cur, stop) = (e.clone(), dead.clone(), cur.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let _g = e.pin();
                        let v = cur.load(Ordering::SeqCst);
                        for _ in 0..50 {
                            assert!(
                                !dead[v].load(Ordering::SeqCst),
                                "version {v} reclaimed under a reader"
                            );
                        }
                    }
                })
            })
            .collect();
        for v in 1..N {
            let old = cur.swap(v, Ordering::SeqCst);
            e.defer(old);
            if let Some(items) = e.try_advance() {
                for i in items {
                    dead[i].store(true, Ordering::SeqCst);
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
    }
}

#[cfg(test)]
#[cfg(feature = "loom")]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::sync::Arc;

    #[test]
    fn loom_reader_never_sees_reclaimed() {
        loom::model(|| {
            let e: Arc<Epochs<usize>> = Arc::new(Epochs::with_slots(2));
            let dead: Arc<[AtomicBool; 3]> = Arc::new([
                AtomicBool::new(false),
                AtomicBool::new(false),
                AtomicBool::new(false),
            ]);
            let cur = Arc::new(AtomicUsize::new(0));
            let r = {
                let (e, dead, cur) = (e.clone(), dead.clone(), cur.clone());
                loom::thread::spawn(move || {
                    let _g = e.pin();
                    let v = cur.load(Ordering::SeqCst);
                    assert!(!dead[v].load(Ordering::SeqCst));
                })
            };
            for v in 1..3 {
                let old = cur.swap(v, Ordering::SeqCst);
                e.defer(old);
                for _ in 0..3 {
                    if let Some(items) = e.try_advance() {
                        for i in items {
                            dead[i].store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
            r.join().unwrap();
        });
    }
}
