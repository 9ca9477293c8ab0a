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
        let s = c.stats();
        assert_eq!((s.idle, s.dirty, s.limbo), (2, 0, 0));
    });
}
