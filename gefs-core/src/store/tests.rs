//! Store tests: format, open, upsert, sync, reopen, space reuse.

use std::ops::Bound;
use std::sync::Arc;

use super::*;
use crate::device::MemDev;

/// Device size of the store tests.
pub(super) const DEV: u64 = 64 << 20;

/// Format `dev` (8 MiB cache).
pub(super) fn fmt(dev: &Arc<MemDev>) -> Store {
    crate::testing::format(dev.clone(), 8 << 20)
}

/// Open the store on `dev` (8 MiB cache).
pub(super) fn open(dev: &Arc<MemDev>) -> Store {
    crate::testing::open_store(dev, 8 << 20)
}

/// A `KCONF` key numbered `i`.
pub(super) fn k(i: u64) -> Vec<u8> {
    let mut v = vec![crate::format::key::KCONF];
    v.extend_from_slice(&i.to_be_bytes());
    v
}

#[test]
fn upserts_survive_sync_and_reopen_and_space_is_reused() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let free0 = s.allocator().free_blocks();
    for round in 0..20u64 {
        for i in 0..500u64 {
            let key = k(i);
            s.upsert(
                t,
                vec![Msg::insert(key, (round * 1000 + i).to_be_bytes().to_vec())],
                Tier::Normal,
            )
            .unwrap();
        }
        s.sync().unwrap();
    }
    let used = free0 - s.allocator().free_blocks();
    assert!(
        used < 200,
        "{used} blocks used by 500 small keys: space is not being reused"
    );
    drop(s);
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let all = s
        .scan(t, Bound::Included(&k(0)[..]), Bound::Unbounded, 10_000)
        .unwrap();
    assert_eq!(all.len(), 500);
    for (i, (key, v)) in all.iter().enumerate() {
        assert_eq!(key, &k(i as u64));
        assert_eq!(v, &(19 * 1000 + i as u64).to_be_bytes().to_vec());
    }
}

/// Reference defect §13.2 #1 (F1): the reference never verifies a block it
/// reads. Every block we read is checked against its pointer's hash: damage
/// is an error naming the block, never bytes handed upward.
#[test]
fn regress_01_every_read_is_verified() {
    use crate::device::{Fault, FaultyDev};
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let (data_bp, root) = {
        let s = open(&dev);
        let t = s.mount("main").unwrap();
        let bp = s
            .write_data(t, 9, true, Tier::Normal, |b| b.fill(0xab))
            .unwrap();
        let key = key::dat(9, 0);
        s.upsert(
            t,
            vec![Msg::insert(key, bp.to_bytes().to_vec())],
            Tier::Normal,
        )
        .unwrap();
        for i in 0..300 {
            s.upsert(t, vec![Msg::insert(k(i), vec![i as u8; 100])], Tier::Normal)
                .unwrap();
        }
        s.sync().unwrap();
        (bp, s.root(t).unwrap())
    };
    for (addr, what) in [(data_bp.addr, "data"), (root.bp.addr, "tree root")] {
        let fd = Arc::new(FaultyDev::new(dev.clone()));
        fd.damage(addr.0, Fault::BitFlip(12345));
        let s = Store::open(
            fd.clone(),
            &Config {
                cache_bytes: 8 << 20,
                read_only: true,
            },
        )
        .unwrap();
        let t = s.mount("main").unwrap();
        let err = if what == "data" {
            s.read_data(&data_bp).map(drop).unwrap_err()
        } else {
            s.lookup(t, &k(5)).map(drop).unwrap_err()
        };
        match err {
            Error::Checksum {
                addr: a,
                expected,
                actual,
            } => {
                assert_eq!(a, addr, "{what}");
                assert_ne!(expected, actual);
            }
            e => panic!("{what}: {e}"),
        }
    }
}

/// Reference defect §13.2 #10: frees of blocks the durable state uses were
/// queued before the superblock write, so a crash could find them reused.
/// Ours are not reused until the commit that logs them is durable.
#[test]
fn regress_10_frees_wait_for_the_commit() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    for i in 0..400 {
        s.upsert(t, vec![Msg::insert(k(i), vec![1; 200])], Tier::Normal)
            .unwrap();
    }
    s.sync().unwrap();
    // Every block the durable tree uses.
    let mut durable = std::collections::HashSet::new();
    s.with_reader(t, |ctx, root| {
        tree::walk(ctx, root, |bp, _| {
            durable.insert(bp.addr);
            Ok(())
        })
    })
    .unwrap();
    // Delete everything (freeing those blocks), then churn without a commit.
    for i in 0..400 {
        s.upsert(t, vec![Msg::delete(k(i))], Tier::Reserve).unwrap();
    }
    for j in 0..2000u64 {
        let bp = s
            .write_data(t, j, true, Tier::Normal, |b| b.fill(1))
            .unwrap();
        assert!(
            !durable.contains(&bp.addr),
            "{} reused before the commit that freed it",
            bp.addr
        );
        s.upsert(
            t,
            vec![Msg::insert(key::dat(1, j * 16384), bp.to_bytes().to_vec())],
            Tier::Normal,
        )
        .unwrap();
    }
    // The image on the device still opens at the last commit, intact.
    let s2 = Store::open(
        Arc::new(dev.snapshot()),
        &Config {
            cache_bytes: 8 << 20,
            read_only: true,
        },
    )
    .unwrap();
    let t2 = s2.mount("main").unwrap();
    for i in (0..400).step_by(37) {
        assert_eq!(s2.lookup(t2, &k(i)).unwrap(), Some(vec![1; 200]));
    }
}

/// Reference defect §13.2 #19: on a full device the reserve no longer
/// covered log blocks, so the syncer died and the file system went
/// read-only. Ours fills to a clean "full" error, then deletes, syncs and
/// gets the space back.
#[test]
fn regress_19_a_full_device_deletes_and_syncs() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    let free0 = s.allocator().free_blocks();
    let mut n = 0u64;
    let err = loop {
        let bp = match s.write_data(t, 7, true, Tier::Normal, |b| b.fill(n as u8)) {
            Ok(bp) => bp,
            Err(e) => break e,
        };
        if let Err(e) = s.upsert(
            t,
            vec![Msg::insert(key::dat(7, n * 16384), bp.to_bytes().to_vec())],
            Tier::Normal,
        ) {
            s.discard_data(t, &bp).unwrap();
            break e;
        }
        n += 1;
        if n.is_multiple_of(500) {
            s.sync().unwrap();
        }
    };
    assert!(matches!(err, Error::NoSpace), "{err}");
    assert!(!s.is_read_only());
    assert!(n * 16384 > DEV * 8 / 10, "only {n} blocks fit");
    s.sync().unwrap();
    for i in 0..n {
        s.upsert(
            t,
            vec![Msg::bare(
                crate::format::msg::Op::Clearb,
                key::dat(7, i * 16384),
            )],
            Tier::Reserve,
        )
        .unwrap();
    }
    for _ in 0..3 {
        s.sync().unwrap();
    }
    let back = s.allocator().free_blocks();
    assert!(
        back + 64 >= free0,
        "{back} of {free0} free blocks came back"
    );
}

/// Reference defect §13.2 #22: every upsert copied the root and logged an
/// alloc and a free for it. Ours copies it in memory only: a thousand
/// upserts between two commits write a handful of blocks, not a thousand.
#[test]
fn regress_22_root_copies_are_never_written() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    s.upsert(t, vec![Msg::insert(k(0), vec![0])], Tier::Normal)
        .unwrap();
    s.sync().unwrap();
    let before = s.stats().blocks_written;
    for i in 0..1000 {
        s.upsert(
            t,
            vec![Msg::insert(k(i % 50), vec![i as u8; 20])],
            Tier::Normal,
        )
        .unwrap();
    }
    s.sync().unwrap();
    let written = s.stats().blocks_written - before;
    assert!(
        written < 20,
        "{written} blocks written for one commit of a small tree"
    );
}

/// `get` hands out a value in place in its cached leaf when no buffered
/// message changed it (and the handle keeps the bytes while the tree moves
/// on), a computed one otherwise; `scan_with` visits what `scan` returns.
#[test]
fn values_are_read_in_place() {
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = open(&dev);
    let t = s.mount("main").unwrap();
    for i in 0..2000 {
        s.upsert(t, vec![Msg::insert(k(i), vec![i as u8; 50])], Tier::Normal)
            .unwrap();
    }
    s.checkpoint().unwrap();
    let v = s.get(t, &k(7)).unwrap().unwrap();
    assert!(matches!(v, tree::Found::InBlock { .. }), "{v:?}");
    assert_eq!(&*v, &[7u8; 50][..]);
    // Buffered messages change the answer: computed.
    s.upsert(t, vec![Msg::insert(k(8), vec![1, 2, 3])], Tier::Normal)
        .unwrap();
    let w = s.get(t, &k(8)).unwrap().unwrap();
    assert!(matches!(w, tree::Found::Owned(_)));
    assert_eq!(&*w, &[1, 2, 3][..]);
    assert!(s.get(t, &k(99_999)).unwrap().is_none());
    // The held leaf outlives changes to the tree.
    for i in 0..2000 {
        s.upsert(t, vec![Msg::delete(k(i))], Tier::Normal).unwrap();
    }
    s.checkpoint().unwrap();
    s.sync().unwrap();
    assert_eq!(&*v, &[7u8; 50][..]);
    assert!(s.get(t, &k(7)).unwrap().is_none());
    drop(v);
    for i in 0..500 {
        s.upsert(t, vec![Msg::insert(k(i), vec![i as u8; 20])], Tier::Normal)
            .unwrap();
    }
    s.checkpoint().unwrap();
    for i in (0..500).step_by(3) {
        s.upsert(t, vec![Msg::delete(k(i))], Tier::Normal).unwrap();
    }
    let want = s
        .scan(
            t,
            Bound::Included(&k(10)[..]),
            Bound::Excluded(&k(400)[..]),
            200,
        )
        .unwrap();
    let mut got = Vec::new();
    let n = s
        .scan_with(
            t,
            Bound::Included(&k(10)[..]),
            Bound::Excluded(&k(400)[..]),
            200,
            |key, val| {
                got.push((key.to_vec(), val.to_vec()));
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(n, want.len());
    assert_eq!(got, want);
    assert_eq!(want.len(), 200);
}

/// New blocks are built in recycled cache buffers without being zeroed
/// first: no stale byte of what a buffer held before (here, file data)
/// reaches a node or a message-log block written later.
#[test]
fn new_blocks_never_show_stale_bytes() {
    use crate::format::node::{LeafBuilder, NodeView, PivotBuilder};
    let dev = Arc::new(MemDev::new(DEV));
    drop(fmt(&dev));
    let s = Store::open(
        dev.clone(),
        &Config {
            cache_bytes: 1 << 20,
            read_only: false,
        },
    )
    .unwrap();
    let t = s.mount("main").unwrap();
    for round in 0..3u64 {
        for i in 0..150u64 {
            let bp = s
                .write_data_whole(t, 9, true, Tier::Normal, |b| b.fill(0xee))
                .unwrap();
            s.upsert(
                t,
                vec![Msg::insert(key::dat(9, i * 16384), bp.to_bytes().to_vec())],
                Tier::Normal,
            )
            .unwrap();
        }
        s.checkpoint().unwrap();
        s.sync().unwrap();
        for i in 0..1500 {
            let v = vec![round as u8 + 1; 1 + (i as usize * 7) % 150];
            s.upsert(t, vec![Msg::insert(k(i), v)], Tier::Normal)
                .unwrap();
        }
        if round < 2 {
            s.checkpoint().unwrap();
        }
        s.sync().unwrap();
    }
    let mut nodes = 0;
    s.with_reader(t, |ctx, root| {
        tree::walk(ctx, root, |bp, v| {
            let mut raw = vec![0u8; crate::format::BLKSZ];
            dev.read_at(&mut raw, bp.addr.0).unwrap();
            let mut again = Box::new([0u8; crate::format::BLKSZ]);
            if v.is_leaf() {
                let mut b = LeafBuilder::new(&mut again);
                for i in 0..v.nval() {
                    let (k, val) = v.kv(i).unwrap();
                    b.push(k, val).unwrap();
                }
                b.finish();
            } else {
                let mut b = PivotBuilder::new(&mut again, v.level());
                for i in 0..v.nval() {
                    let (sep, c, fill) = v.child(i).unwrap();
                    b.push_child(sep, &c, fill).unwrap();
                }
                for j in 0..v.nbuf() {
                    let (op, k, a) = v.msg(j).unwrap();
                    b.push_msg(op, k, a).unwrap();
                }
                b.finish();
            }
            assert_eq!(&raw[..], &again[..], "node {} holds stale bytes", bp.addr);
            let _ = NodeView::new(&raw).unwrap();
            nodes += 1;
            Ok(())
        })
    })
    .unwrap();
    assert!(nodes > 8, "{nodes} nodes");
    let head = s.mutlk.lock().tree(t).unwrap().log.head_ptr();
    assert!(!head.is_none(), "the last round's messages are in the log");
    let rl = s.read_log(&head).unwrap();
    for (bp, p) in rl.chain.iter().zip(&rl.payloads) {
        let mut raw = vec![0u8; crate::format::BLKSZ];
        dev.read_at(&mut raw, bp.addr.0).unwrap();
        let end = crate::format::LOG_HDR + p.len();
        assert!(raw[end..].iter().all(|&b| b == 0), "log block {}", bp.addr);
    }
}
