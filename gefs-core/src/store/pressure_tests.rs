//! Cache pressure from the writer's side: workloads that dirty or free more
//! blocks than the cache holds, on caches of one shard and few buffers,
//! must never leave the writer waiting for a buffer only it could free
//! (DESIGN.md §3 item 7), and the writer must make that room by writing,
//! never by advancing the epochs in the middle of a change (DESIGN.md §4).
//! Each runs under a watchdog, so that a regression fails the test instead
//! of hanging it (without the relief, the first one hangs at 32 buffers).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::device::MemDev;

use super::tests::{fmt, k, DEV};

/// Longest a workload below may take (seconds of work on a loaded 2-core
/// machine are far below it).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Run `f` on its own thread; fail, naming `what`, if it has not finished
/// within [`WATCHDOG`] (the stuck thread is left behind).
fn watchdog(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => h.join().unwrap(),
        // The workload panicked: report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: stuck for {WATCHDOG:?} (a writer waiting for the cache)")
        }
    }
}

/// Open `dev` with a cache of `buffers` buffers (one shard below 512).
fn open_small(dev: &Arc<MemDev>, buffers: usize) -> Store {
    Store::open(
        dev.clone(),
        &Config {
            cache_bytes: buffers * BLKSZ,
            read_only: false,
        },
    )
    .unwrap()
}

/// Overwrite one file offset `writes` times through the write buffer, each
/// time with a new data block, then commit. The commit's drain frees every
/// block but the last at once (all born since the last commit, most of
/// them written back under pressure and still cached), and then reads and
/// writes more nodes (the snapshot tree's root, for the roots it records).
/// The cache holds `buffers` buffers; `writes` is several times that.
fn overwrite_then_commit(buffers: usize, writes: u64) {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open_small(&dev, buffers);
    let t = s.mount("main").unwrap();
    // A tree change that is not buffered: the tree's root is born in this
    // interval too, so the drain frees it as well.
    s.upsert(t, vec![Msg::insert(k(0), vec![0; 40])], Tier::Reserve)
        .unwrap();
    let mut last = None;
    for i in 0..writes {
        let _op = s.begin_op();
        let bp = s
            .write_data(t, 1, true, Tier::Normal, |b| {
                b[..8].copy_from_slice(&i.to_be_bytes())
            })
            .unwrap();
        s.upsert(
            t,
            vec![Msg::insert(key::dat(1, 0), bp.to_bytes().to_vec())],
            Tier::Normal,
        )
        .unwrap();
        last = Some((i, bp));
    }
    let info = s.sync().unwrap();
    assert!(info.wrote);
    let (i, bp) = last.unwrap();
    assert_eq!(
        s.lookup(t, &key::dat(1, 0)).unwrap(),
        Some(bp.to_bytes().to_vec())
    );
    assert_eq!(&s.read_data(&bp).unwrap()[..8], &i.to_be_bytes());
    let st = s.stats();
    assert_eq!(st.cache.dirty, 0, "a commit writes every dirty block");
    assert!(
        2 * st.cache.limbo <= st.cache.capacity,
        "unwritten freed blocks pin at most half the cache: {:?}",
        st.cache
    );
    drop(s);
    // The commit is whole on the device.
    let s = open_small(&dev, buffers);
    let t = s.mount("main").unwrap();
    assert_eq!(
        s.lookup(t, &key::dat(1, 0)).unwrap(),
        Some(bp.to_bytes().to_vec())
    );
    assert_eq!(&s.read_data(&bp).unwrap()[..8], &i.to_be_bytes());
}

/// The gefsd hang: a commit whose drain freed more cached blocks than the
/// cache holds pinned every buffer of a shard, and the drain's next read
/// waited for a buffer forever, in the one thread that could free one.
#[test]
fn a_commit_freeing_more_than_the_cache_holds_finishes() {
    for (buffers, writes) in [(32, 200), (48, 300), (64, 400), (100, 1000), (256, 2000)] {
        watchdog(
            &format!("{buffers} buffers, {writes} overwrites"),
            move || overwrite_then_commit(buffers, writes),
        );
    }
}

/// Keys the race below keeps in the tree.
const RACE_KEYS: u64 = 600;

/// Readers looking keys up while the writer, on a cache of 32 buffers,
/// rewrites them over and over and makes room in the cache (writing its
/// pins) as it goes: readers wait for buffers the writer frees, the writer
/// for buffers readers hold, and neither waits for ever; every lookup
/// finds its key, with a value of the right shape.
fn readers_race_relieving_changes() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = Arc::new(open_small(&dev, 32));
    let t = s.mount("main").unwrap();
    let all: Vec<Msg> = (0..RACE_KEYS)
        .map(|i| Msg::insert(k(i), vec![0; 200]))
        .collect();
    s.upsert(t, all, Tier::Reserve).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = (n * 7919 + r) % RACE_KEYS;
                    let v = s.lookup(t, &k(i)).unwrap();
                    assert_eq!(v.map(|v| v.len()), Some(200), "key {i}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    for round in 1..=60u64 {
        // Applied at once (checkpoint): every batch rewrites tree nodes.
        let msgs = (0..RACE_KEYS)
            .filter(|i| i % 4 == round % 4)
            .map(|i| Msg::insert(k(i), vec![round as u8; 200]))
            .collect();
        s.upsert(t, msgs, Tier::Reserve).unwrap();
        s.checkpoint().unwrap();
        if round % 20 == 0 {
            s.sync().unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn readers_and_a_relieving_writer_share_a_tiny_cache() {
    watchdog(
        "readers racing relieving changes",
        readers_race_relieving_changes,
    );
}

/// A change defers the blocks it frees before it publishes the root that
/// drops them, so no epoch may advance inside it (DESIGN.md §4): the
/// writer's cache relief, which runs in the middle of changes, makes room
/// by writing, never by reclaiming.
#[test]
fn relief_inside_a_change_never_advances_the_epochs() {
    watchdog("a change under pressure", || {
        let dev = Arc::new(MemDev::new(DEV));
        drop(fmt(&dev));
        let s = open_small(&dev, 32);
        let t = s.mount("main").unwrap();
        // Some 40 leaves: more than the cache holds.
        let msgs = |v: u8| {
            (0..3000)
                .map(|i| Msg::insert(k(i), vec![v; 200]))
                .collect::<Vec<_>>()
        };
        s.upsert(t, msgs(0), Tier::Reserve).unwrap();
        // In the tree, not in the write buffer.
        s.checkpoint().unwrap();
        for v in 1..=3 {
            let (e0, w0) = (s.epochs.epoch(), s.stats().blocks_written);
            let mut m = s.mutlk.lock();
            s.upsert_locked(&mut m, t, msgs(v), Tier::Reserve).unwrap();
            drop(m);
            assert!(
                s.stats().blocks_written > w0,
                "the change made room in the cache"
            );
            assert_eq!(s.epochs.epoch(), e0, "an epoch advanced inside a change");
            assert!(s.epochs.pending() > 0, "the change freed blocks");
        }
        assert_eq!(s.lookup(t, &k(7)).unwrap(), Some(vec![3; 200]));
    });
}
