use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use super::*;

fn addr(i: u64) -> BlockAddr {
    BlockAddr::from_index(i + 1)
}

fn fill(b: &mut [u8; BLKSZ], a: BlockAddr) -> Result<()> {
    b[..8].copy_from_slice(&a.0.to_be_bytes());
    Ok(())
}

fn load_into(c: &Cache, a: BlockAddr) -> Block<'_> {
    c.get(a, 1, |b| fill(b, a)).unwrap()
}

#[test]
fn hit_and_miss() {
    let c = Cache::with_buffers(16);
    let b = load_into(&c, addr(0));
    assert_eq!(&b[..8], &addr(0).0.to_be_bytes());
    drop(b);
    let b = c.get(addr(0), 1, |_| panic!("must hit")).unwrap();
    assert_eq!(b.addr(), addr(0));
    let s = c.stats();
    assert_eq!((s.hits, s.misses), (1, 1));
}

#[test]
fn hit_with_wrong_hash_is_an_error() {
    let c = Cache::with_buffers(16);
    drop(load_into(&c, addr(0)));
    let e = c.get(addr(0), 2, |_| Ok(())).unwrap_err();
    assert!(matches!(
        e,
        Error::Checksum {
            expected: 2,
            actual: 1,
            ..
        }
    ));
    // The slot went back to the LRU: all buffers idle.
    assert_eq!(c.stats().idle, 16);
}

#[test]
fn pool_is_bounded_and_takers_wait() {
    let c = Arc::new(Cache::with_buffers(16));
    let held: Vec<_> = (0..16).map(|i| c.new_block(addr(i)).unwrap()).collect();
    assert_eq!(c.stats().idle, 0);
    let c2 = Arc::clone(&c);
    let waiter = thread::spawn(move || {
        let b = c2.get(addr(100), 1, |b| fill(b, addr(100))).unwrap();
        b.addr()
    });
    thread::sleep(Duration::from_millis(50));
    assert!(
        !waiter.is_finished(),
        "a taker must wait while every buffer is held"
    );
    drop(held);
    assert_eq!(waiter.join().unwrap(), addr(100));
    assert!(c.stats().waits >= 1);
}

#[test]
fn freed_blocks_are_recycled_first() {
    let c = Cache::with_buffers(16);
    for i in 0..16 {
        drop(load_into(&c, addr(i)));
    }
    // addr(15) is most recent; free and reclaim addr(10).
    assert!(c.free(addr(10)).unwrap());
    c.reclaim(addr(10));
    drop(load_into(&c, addr(50)));
    // addr(10)'s buffer was reused; every other block is still cached.
    for i in (0..16).filter(|&i| i != 10) {
        drop(c.get(addr(i), 1, |_| panic!("evicted {i}")).unwrap());
    }
    let mut reloaded = false;
    drop(c.get(addr(10), 1, |b| {
        reloaded = true;
        fill(b, addr(10))
    }));
    assert!(reloaded);
}

#[test]
fn least_recently_used_is_evicted() {
    let c = Cache::with_buffers(16);
    for i in 0..16 {
        drop(load_into(&c, addr(i)));
    }
    // Touch 0 so that 1 becomes the oldest.
    drop(c.get(addr(0), 1, |_| panic!()).unwrap());
    drop(load_into(&c, addr(99)));
    let mut missed = false;
    drop(c.get(addr(1), 1, |b| {
        missed = true;
        fill(b, addr(1))
    }));
    assert!(missed, "block 1 was the least recently used");
    drop(
        c.get(addr(0), 1, |_| panic!("block 0 was recently used"))
            .unwrap(),
    );
}

#[test]
fn no_double_read_in() {
    let c = Arc::new(Cache::with_buffers(64));
    let loads = Arc::new(AtomicUsize::new(0));
    let bar = Arc::new(Barrier::new(8));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (c, loads, bar) = (Arc::clone(&c), Arc::clone(&loads), Arc::clone(&bar));
            thread::spawn(move || {
                bar.wait();
                let b = c
                    .get(addr(7), 1, |b| {
                        loads.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(30));
                        fill(b, addr(7))
                    })
                    .unwrap();
                assert_eq!(&b[..8], &addr(7).0.to_be_bytes());
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn failed_load_is_retried_by_waiters() {
    let c = Arc::new(Cache::with_buffers(16));
    let c2 = Arc::clone(&c);
    let first = thread::spawn(move || {
        c2.get(addr(3), 1, |_| {
            thread::sleep(Duration::from_millis(50));
            Err(Error::Invalid("boom".into()))
        })
        .map(|b| b.addr())
    });
    thread::sleep(Duration::from_millis(10));
    let b = c.get(addr(3), 1, |b| fill(b, addr(3))).unwrap();
    assert_eq!(&b[..8], &addr(3).0.to_be_bytes());
    assert!(first.join().unwrap().is_err());
}

#[test]
fn dirty_blocks_are_pinned_until_written() {
    let c = Cache::with_buffers(16);
    let mut blocks = Vec::new();
    for i in 0..16 {
        let mut m = c.new_block(addr(i)).unwrap();
        m.buf_mut()[0] = i as u8;
        blocks.push(m.finalize(i, 1).unwrap());
    }
    drop(blocks);
    let s = c.stats();
    assert_eq!((s.dirty, s.idle), (16, 0), "dirty blocks are never idle");
    // Readers see the unwritten contents.
    assert_eq!(c.get(addr(5), 5, |_| panic!()).unwrap()[0], 5);
    // Free one dirty block: it will never be written.
    assert!(c.free(addr(3)).unwrap());
    let taken = c.take_dirty(1, usize::MAX);
    assert_eq!(taken.len(), 15);
    assert!(taken.iter().all(|b| b.addr() != addr(3)));
    for b in &taken {
        c.written(b);
    }
    drop(taken);
    let s = c.stats();
    assert_eq!((s.dirty, s.idle, s.limbo), (0, 15, 1));
    c.reclaim(addr(3));
    assert_eq!(c.stats().idle, 16);
}

#[test]
fn take_dirty_respects_intervals() {
    let c = Cache::with_buffers(16);
    for i in 0..4 {
        drop(
            c.new_block(addr(i))
                .unwrap()
                .finalize(i, 1 + i % 2)
                .unwrap(),
        );
    }
    let t = c.take_dirty(1, usize::MAX);
    assert_eq!(t.len(), 2);
    for b in &t {
        c.written(b);
    }
    drop(t);
    assert_eq!(c.dirty_count(), 2);
    assert_eq!(c.take_dirty(2, 1).len(), 1);
}

#[test]
fn double_allocation_and_double_free_are_reported() {
    let c = Cache::with_buffers(16);
    drop(c.new_block(addr(1)).unwrap().finalize(1, 1).unwrap());
    assert!(matches!(c.new_block(addr(1)), Err(Error::Internal(_))));
    assert!(c.free(addr(1)).unwrap());
    assert!(matches!(c.free(addr(1)), Err(Error::Internal(_))));
    assert!(!c.free(addr(9)).unwrap());
}

#[test]
fn abandoned_builder_returns_its_buffer() {
    let c = Cache::with_buffers(16);
    drop(c.new_block(addr(1)).unwrap());
    assert_eq!(c.stats().idle, 16);
    drop(load_into(&c, addr(1)));
}

#[test]
fn freed_while_writing() {
    let c = Cache::with_buffers(16);
    drop(c.new_block(addr(1)).unwrap().finalize(1, 1).unwrap());
    let t = c.take_dirty(1, 8);
    assert!(c.free(addr(1)).unwrap());
    c.written(&t[0]);
    drop(t);
    c.reclaim(addr(1));
    let s = c.stats();
    assert_eq!((s.idle, s.dirty, s.limbo), (16, 0, 0));
}

#[test]
fn concurrent_hold_drop_pluck() {
    // 4 threads, 64 addresses, 32 buffers (2 shards' worth would need 512;
    // this is one shard): every handle must show its own address.
    let c = Arc::new(Cache::with_buffers(32));
    let hs: Vec<_> = (0..4u64)
        .map(|t| {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1du64 ^ t;
                let mut held: Vec<Block<'_>> = Vec::new();
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let a = addr(x % 64);
                    match x % 5 {
                        0 | 1 => {
                            let b = c.get(a, 1, |b| fill(b, a)).unwrap();
                            assert_eq!(&b[..8], &a.0.to_be_bytes());
                            if held.len() < 4 {
                                held.push(b.clone());
                            }
                        }
                        2 => {
                            if let Some(b) = held.pop() {
                                let b2 = b.clone();
                                assert_eq!(&b2[..8], &b2.addr().0.to_be_bytes());
                            }
                        }
                        _ => {
                            held.clear();
                        }
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(c.stats().idle, 32);
}

#[test]
fn shards_scale_with_size() {
    let c = Cache::with_buffers(4096);
    assert_eq!(c.shards.len(), 16);
    let total: usize = c.shards.iter().map(|s| s.refs.len()).sum();
    assert_eq!(total, 4096);
    assert!(c.shard_capacity(addr(0)) >= MIN_PER_SHARD);
}

#[test]
fn lru_order_after_release() {
    let c = Cache::with_buffers(4);
    let a = load_into(&c, addr(0));
    let b = load_into(&c, addr(1));
    drop(a);
    drop(b);
    let st = c.shards[0].st.lock();
    let order = st.lru_order();
    // Most recent (addr 1's slot) at the head.
    assert_eq!(st.meta[order[0] as usize].addr, addr(1));
    assert_eq!(st.meta[order[1] as usize].addr, addr(0));
}
