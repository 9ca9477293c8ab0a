//! Write buffer tests: buffered upserts against a `BTreeMap` model through
//! lookups, scans, syncs, caps, reopens and concurrent readers (a snapshot of
//! a buffer: `snap/tests.rs`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::device::MemDev;
use crate::format::msg::Op;
use crate::format::Encode;

use super::tests::{fmt, k, open, DEV};
use crate::testing::Rng;

/// A formatted store on a fresh device, with `main` mounted.
fn fresh() -> (Arc<MemDev>, Store, TreeId) {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    (dev, s, t)
}

fn model_apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, m: &Msg) {
    match m.op {
        Op::Insert => {
            model.insert(m.key.clone(), m.val.clone());
        }
        _ => {
            model.remove(&m.key);
        }
    }
}

/// Every key of the model reads back, and scans from random points with
/// random limits and bounds agree with it.
fn agree(s: &Store, t: TreeId, model: &BTreeMap<Vec<u8>, Vec<u8>>, r: &mut Rng, keys: u64) {
    for i in 0..keys {
        assert_eq!(
            s.lookup(t, &k(i)).unwrap(),
            model.get(&k(i)).cloned(),
            "key {i}"
        );
    }
    for _ in 0..20 {
        let x = r.below(keys);
        let (a, b) = (k(x), k(x + 1 + r.below(keys)));
        let limit = 1 + r.below(40) as usize;
        let from = if r.below(2) == 0 {
            Bound::Included(&a[..])
        } else {
            Bound::Excluded(&a[..])
        };
        let got = s.scan(t, from, Bound::Excluded(&b[..]), limit).unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> = model
            .range::<[u8], _>((from, Bound::Excluded(&b[..])))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want);
    }
}

fn random_run(cap: usize, seed: u64) {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    s.set_write_buffer_bytes(cap);
    let t = s.mount("main").unwrap();
    let mut model = BTreeMap::new();
    let mut r = Rng::new(seed);
    let keys = 3000;
    for round in 0..30 {
        for _ in 0..100 {
            let n = 1 + r.below(6);
            let batch: Vec<Msg> = (0..n)
                .map(|_| {
                    let key = k(r.below(keys));
                    match r.below(6) {
                        0 => Msg::delete(key),
                        1 => Msg::bare(Op::Clobber, key),
                        _ => Msg::insert(key, vec![r.below(256) as u8; 1 + r.below(90) as usize]),
                    }
                })
                .collect();
            s.upsert(t, batch.clone(), Tier::Normal).unwrap();
            for m in &batch {
                model_apply(&mut model, m);
            }
        }
        agree(&s, t, &model, &mut r, keys);
        if round % 4 == 3 {
            s.sync().unwrap();
        }
    }
    s.sync().unwrap();
    drop(s);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    agree(&s, t, &model, &mut r, keys);
}

#[test]
fn buffered_upserts_match_the_model() {
    random_run(DEFAULT_WRITE_BUFFER_BYTES, 1);
}

#[test]
fn a_small_buffer_applies_often() {
    random_run(4 << 10, 2);
}

#[test]
fn no_buffer_applies_at_once() {
    random_run(0, 3);
}

#[test]
fn a_failed_batch_changes_nothing() {
    let (_dev, s, t) = fresh();
    s.upsert(t, vec![Msg::insert(k(1), b"one".to_vec())], Tier::Normal)
        .unwrap();
    // A data key insert must carry a block pointer: the batch is refused
    // whole, buffered or not.
    let bad = vec![
        Msg::insert(k(2), b"two".to_vec()),
        Msg::insert(key::dat(9, 0), b"not a pointer".to_vec()),
    ];
    assert!(matches!(
        s.upsert(t, bad, Tier::Normal),
        Err(Error::Invalid(_))
    ));
    assert_eq!(s.lookup(t, &k(2)).unwrap(), None);
    assert_eq!(s.lookup(t, &k(1)).unwrap(), Some(b"one".to_vec()));
    s.sync().unwrap();
    assert_eq!(s.lookup(t, &k(1)).unwrap(), Some(b"one".to_vec()));
}

/// Keys are inserted in order, one per upsert, with syncs in between: a
/// reader must always see a prefix, never a key without the ones before it
/// (root and buffer are published together).
#[test]
fn readers_never_see_a_half_applied_buffer() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    s.set_write_buffer_bytes(16 << 10);
    let t = s.mount("main").unwrap();
    let n = 3000u64;
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let reader = sc.spawn(|| {
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                let v = s
                    .scan(
                        t,
                        Bound::Included(&k(0)),
                        Bound::Included(&k(n)),
                        n as usize,
                    )
                    .unwrap();
                for (i, (key, _)) in v.iter().enumerate() {
                    assert_eq!(key, &k(i as u64), "a gap before key {i}");
                }
                assert!(v.len() >= seen, "keys vanished");
                seen = v.len();
            }
        });
        for i in 0..n {
            s.upsert(t, vec![Msg::insert(k(i), vec![1; 40])], Tier::Normal)
                .unwrap();
            if i % 700 == 0 {
                s.sync().unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    });
}

/// Wstats fold in the buffer (`tree::pending`): thousands of them to one
/// entry leave one buffered message, and every lookup, scan and the tree
/// after a sync answer exactly as unfolded messages would.
#[test]
fn wstats_fold_and_answer_as_unfolded() {
    use crate::format::msg::Wstat;
    use crate::format::value::Xdir;
    let (dev, s, t) = fresh();
    let mut model = BTreeMap::new();
    let mut r = Rng(7);
    let keys = 8;
    let apply = |model: &mut BTreeMap<Vec<u8>, Vec<u8>>, m: &Msg| {
        match crate::format::msg::apply(m.op, &m.val, model.get(&m.key).cloned()).unwrap() {
            Some(v) => model.insert(m.key.clone(), v),
            None => model.remove(&m.key),
        };
    };
    // One entry changed 2,000 times (a directory gaining entries): one
    // buffered message, with every version bump.
    let dir = Msg::insert(k(0), Xdir::default().encode());
    s.upsert(t, vec![dir.clone()], Tier::Normal).unwrap();
    s.sync().unwrap();
    apply(&mut model, &dir);
    for i in 0..2000u64 {
        let w = Wstat {
            mtime: Some(i),
            ..Wstat::default()
        };
        let m = Msg {
            op: Op::Wstat,
            key: k(0),
            val: w.encode(),
        };
        s.upsert(t, vec![m.clone()], Tier::Normal).unwrap();
        apply(&mut model, &m);
    }
    assert_eq!(s.mutlk.lock().tree(t).unwrap().wbuf.len(), (1, 1));
    let d = Xdir::decode(&s.lookup(t, &k(0)).unwrap().unwrap()).unwrap();
    assert_eq!((d.qid_vers, d.mtime), (2000, 1999));
    let mut others = 0;
    for round in 0..6 {
        for _ in 0..500 {
            let key = k(r.below(keys));
            let pick = r.below(40);
            others += usize::from(pick < 3);
            let m = match pick {
                0 => Msg::delete(key),
                1 | 2 => {
                    let d = Xdir {
                        qid_path: r.below(1000),
                        length: r.below(1 << 20),
                        ..Xdir::default()
                    };
                    Msg::insert(key, d.encode())
                }
                _ => Msg {
                    op: Op::Wstat,
                    key,
                    val: Wstat {
                        size: (r.below(2) == 0).then(|| r.below(1 << 30)),
                        mtime: Some(r.next_u64()),
                        muid: (r.below(3) == 0).then(|| r.below(9) as i32),
                        ..Wstat::default()
                    }
                    .encode(),
                },
            };
            s.upsert(t, vec![m.clone()], Tier::Normal).unwrap();
            apply(&mut model, &m);
        }
        agree(&s, t, &model, &mut r, keys);
        // Wstats fold into what precedes them, so besides the inserts and
        // deletes (each one message, and one wstat after it), at most one
        // message per key and run (O(log n) runs).
        let (buffered, runs) = s.mutlk.lock().tree(t).unwrap().wbuf.len();
        assert!(
            buffered <= 2 * others + keys as usize * runs && runs <= 12,
            "{buffered} messages in {runs} runs for {keys} keys and {others} others"
        );
        if round % 2 == 1 {
            // A sync logs the buffer (which stays), a checkpoint applies it.
            s.sync().unwrap();
            agree(&s, t, &model, &mut r, keys);
            if round == 3 {
                s.checkpoint().unwrap();
                others = 0;
                agree(&s, t, &model, &mut r, keys);
            }
        }
    }
    s.sync().unwrap();
    drop(s);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    agree(&s, t, &model, &mut r, keys);
}

/// A tree unmounted with its messages in its log is closed; applying the
/// write buffers must leave it alone (its record could only be written with
/// the old log over a root that already holds its messages, and replay
/// would apply them twice: a data block reached twice, as gefsd's quiet
/// checkpoint after `%adm`'s users file was rewritten once did).
#[test]
fn applying_the_buffers_leaves_closed_trees_alone() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let bp = s
        .write_data(t, 7, true, Tier::Normal, |b| b.fill(1))
        .unwrap();
    let m = Msg::insert(key::dat(7, 0), bp.to_bytes().to_vec());
    s.upsert(t, vec![m], Tier::Normal).unwrap();
    s.sync().unwrap();
    s.unmount(t);
    s.checkpoint().unwrap();
    s.sync().unwrap();
    drop(s);
    let opts = crate::check::CheckOpts {
        threads: 1,
        progress: None,
    };
    let r = crate::check::check_store(&*dev, &opts).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    assert_eq!(
        s.lookup(t, &key::dat(7, 0)).unwrap(),
        Some(bp.to_bytes().to_vec())
    );
    // Mounted again, the buffer is applied and recorded with an empty log.
    s.checkpoint().unwrap();
    s.sync().unwrap();
    drop(s);
    let r = crate::check::check_store(&*dev, &opts).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}
