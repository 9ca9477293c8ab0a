//! Model checks of the cache protocol under loom (T14): every interleaving
//! of the threads below is explored.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::*;

fn a(i: u64) -> BlockAddr {
    BlockAddr::from_index(i + 1)
}

fn put(b: &mut [u8; BLKSZ], x: BlockAddr) -> Result<()> {
    b[..8].copy_from_slice(&x.0.to_be_bytes());
    Ok(())
}

#[test]
fn loom_single_read_in() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(2));
        let loads = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                thread::spawn(move || {
                    let b = c
                        .get(a(0), 1, |b| {
                            loads.fetch_add(1, Ordering::SeqCst);
                            put(b, a(0))
                        })
                        .unwrap();
                    assert_eq!(&b[..8], &a(0).0.to_be_bytes());
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        c.check(true);
        assert_eq!(c.stats().idle, 2);
    });
}

#[test]
fn loom_release_races_lookup() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(2));
        let b = c.get(a(0), 1, |b| put(b, a(0))).unwrap();
        let b2 = b.clone();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            let x = c2.get(a(0), 1, |_| panic!("must hit")).unwrap();
            drop(x);
        });
        drop(b);
        drop(b2);
        t.join().unwrap();
        c.check(true);
        // Exactly one LRU entry per slot: both idle, and a new address can
        // still take the other buffer without waiting forever.
        assert_eq!(c.stats().idle, 2);
        let y = c.get(a(1), 1, |b| put(b, a(1))).unwrap();
        assert_eq!(&y[..8], &a(1).0.to_be_bytes());
    });
}

#[test]
fn loom_pluck_waits_for_release() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(1));
        let held = c.get(a(0), 1, |b| put(b, a(0))).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            let b = c2.get(a(1), 1, |b| put(b, a(1))).unwrap();
            assert_eq!(&b[..8], &a(1).0.to_be_bytes());
        });
        drop(held);
        t.join().unwrap();
        c.check(true);
        assert_eq!(c.stats().idle, 1);
    });
}

#[test]
fn loom_free_races_release() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(2));
        let b = c.new_block(a(0)).unwrap().finalize(7, 1).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.free(a(0)).unwrap();
            c2.reclaim(a(0));
        });
        drop(b);
        t.join().unwrap();
        c.check(true);
        let s = c.stats();
        assert_eq!((s.idle, s.dirty, s.limbo), (2, 0, 0));
    });
}

/// A release of a linked slot (a single decrement, no lock) racing a pluck
/// that finds that slot at the LRU tail: either the pluck sees the count
/// at 0 and recycles it, or it parks the slot and waits, and the release
/// sees PARKED, relinks it and wakes the plucker.
#[test]
fn loom_release_races_pluck() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(1));
        drop(c.get(a(0), 1, |b| put(b, a(0))).unwrap());
        // Held through a hit: linked, at the tail (the only slot).
        let held = c.get(a(0), 1, |_| panic!("must hit")).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            let b = c2.get(a(1), 1, |b| put(b, a(1))).unwrap();
            assert_eq!(&b[..8], &a(1).0.to_be_bytes());
        });
        assert_eq!(&held[..8], &a(0).0.to_be_bytes());
        drop(held);
        t.join().unwrap();
        c.check(true);
        assert_eq!(c.stats().idle, 1);
    });
}

/// The last release of a parked slot (which must relink it under the
/// lock) racing a lookup that takes it again, and that lookup's own
/// release: both releasers may reach the slow path; exactly one relinks.
#[test]
fn loom_lookup_races_lazy_relink() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(2));
        // Loaded and held: parked since its pluck.
        let b = c.get(a(0), 1, |b| put(b, a(0))).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            let x = c2.get(a(0), 1, |_| panic!("must hit")).unwrap();
            assert_eq!(&x[..8], &a(0).0.to_be_bytes());
            drop(x);
        });
        drop(b);
        t.join().unwrap();
        c.check(true);
        assert_eq!(c.stats().idle, 2);
        // Both buffers are reachable: two new blocks held at once.
        let y = c.get(a(1), 1, |b| put(b, a(1))).unwrap();
        let z = c.get(a(2), 1, |b| put(b, a(2))).unwrap();
        assert_eq!(&y[..8], &a(1).0.to_be_bytes());
        assert_eq!(&z[..8], &a(2).0.to_be_bytes());
    });
}

/// Free and reclaim racing the release of a clean block that a reader
/// holds through a hit (so it is linked): whichever comes last, the freed
/// buffer ends at the LRU tail and is recycled before the live block.
#[test]
fn loom_free_reclaim_races_linked_release() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(2));
        drop(c.get(a(5), 1, |b| put(b, a(5))).unwrap());
        drop(c.get(a(0), 1, |b| put(b, a(0))).unwrap());
        let h = c.get(a(0), 1, |_| panic!("must hit")).unwrap();
        let c2 = c.clone();
        let t = thread::spawn(move || {
            assert!(c2.free(a(0)).unwrap());
            c2.reclaim(a(0));
        });
        drop(h);
        t.join().unwrap();
        c.check(true);
        let s = c.stats();
        assert_eq!((s.idle, s.limbo), (2, 0));
        drop(c.get(a(1), 1, |b| put(b, a(1))).unwrap());
        drop(
            c.get(a(5), 1, |_| {
                panic!("a(5) was evicted before the freed block")
            })
            .unwrap(),
        );
    });
}

/// Two holders of one parked slot release concurrently (one hold taken by
/// a lookup racing the other's release) while a third thread plucks: the
/// slot must be relinked exactly once, and the plucker get it.
#[test]
fn loom_concurrent_releases_race_pluck() {
    loom::model(|| {
        let c = Arc::new(Cache::with_buffers(1));
        let b = c.get(a(0), 1, |b| put(b, a(0))).unwrap();
        let (c1, c2) = (c.clone(), c.clone());
        let t1 = thread::spawn(move || {
            // Hits if it runs before the plucker recycles the slot.
            let x = c1.get(a(0), 1, |b| put(b, a(0))).unwrap();
            assert_eq!(&x[..8], &a(0).0.to_be_bytes());
        });
        let t2 = thread::spawn(move || {
            let x = c2.get(a(1), 1, |b| put(b, a(1))).unwrap();
            assert_eq!(&x[..8], &a(1).0.to_be_bytes());
        });
        drop(b);
        t1.join().unwrap();
        t2.join().unwrap();
        c.check(true);
        assert_eq!(c.stats().idle, 1);
    });
}
