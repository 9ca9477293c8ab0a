//! Regressions named for the reference implementation's defects (design
//! digest §13.2).

use std::ops::Bound;

use crate::format::msg::{Msg, Op, Relink, Wstat};
use crate::format::node::NodeView;
use crate::format::Encode;

use super::super::{lookup, scan, walk};
use super::harness::{check, Harness, Rng};

fn key(i: u64) -> Vec<u8> {
    let mut k = vec![1u8];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Defect #2: the reference never merges, so height never shrinks and
/// underfull nodes pile up after mass deletes. Ours merges and collapses.
#[test]
fn defect_02_merges_run_and_height_shrinks() {
    let mut h = Harness::new();
    let mut r = Rng(2);
    let n = 30_000u64;
    for c in 0..n / 6 {
        h.apply(
            (0..6)
                .map(|j| Msg::insert(key(c * 6 + j), r.bytes(100)))
                .collect(),
        );
    }
    let full = h.verify();
    assert!(full.height >= 3, "height {}", full.height);
    let mut keys: Vec<u64> = (0..n).collect();
    for i in (1..keys.len()).rev() {
        keys.swap(i, r.below(i as u64 + 1) as usize);
    }
    let keep = n as usize / 50;
    for c in keys[keep..].chunks(6) {
        h.apply(c.iter().map(|&i| Msg::delete(key(i))).collect());
    }
    let sparse = h.verify();
    assert!(sparse.height < full.height, "height did not shrink");
    assert!(
        sparse.leaves * 10 < full.leaves,
        "leaves {} -> {}",
        full.leaves,
        sparse.leaves
    );
    assert_eq!(sparse.underfull, 0, "{sparse:?}");
    for c in keys[..keep].chunks(6) {
        h.apply(c.iter().map(|&i| Msg::delete(key(i))).collect());
    }
    let empty = h.verify();
    assert!(empty.height <= 2, "{empty:?}");
    // The last deletes are still buffered above the leaves. Traffic over
    // the same range (orphan clobbers, as a sweeper would send) flushes them
    // down; the emptied leaves vanish, the root is left with one child,
    // drains and collapses.
    let mut rounds = 0;
    while h.root.height > 1 {
        rounds += 1;
        assert!(
            rounds < 50_000,
            "tree never collapsed: {:?}",
            check(&h.s, &h.root)
        );
        h.apply(
            (0..4)
                .map(|_| Msg::bare(Op::Clobber, key(r.below(n))))
                .collect(),
        );
        if rounds % 1000 == 0 {
            h.verify();
        }
    }
    let one = h.verify();
    assert_eq!((one.height, one.leaves, one.entries), (1, 1, 0));
    for c in 0..n / 60 {
        h.apply(
            (0..6)
                .map(|j| Msg::insert(key(c * 6 + j), r.bytes(100)))
                .collect(),
        );
    }
    h.verify();
    h.check_paged_scan(500);
}

/// Defect #13: orphan non-insert messages (clearb, clobber, wstat, delete,
/// relink on keys that do not exist) surfaced as values in the reference's
/// scans. Ours drops them everywhere: lookup, scan, and leaf application.
#[test]
fn defect_13_orphans_never_surface() {
    let mut h = Harness::new();
    let mut r = Rng(13);
    for c in 0..400 {
        h.apply(
            (0..5)
                .map(|j| Msg::insert(key((c * 5 + j) * 2), r.bytes(60)))
                .collect(),
        );
    }
    assert!(h.root.height >= 2);
    let orphan = |i: u64, r: &mut Rng| {
        let k = key(i * 2 + 1);
        match r.below(5) {
            0 => Msg::bare(Op::Clearb, k),
            1 => Msg::bare(Op::Clobber, k),
            2 => Msg::delete(k),
            3 => Msg {
                op: Op::Wstat,
                key: k,
                val: Wstat {
                    size: Some(9),
                    ..Wstat::default()
                }
                .encode(),
            },
            _ => Msg {
                op: Op::Relink,
                key: k,
                val: Relink {
                    id: 1,
                    dlbl: 1,
                    dref: 1,
                }
                .encode(),
            },
        }
    };
    for _ in 0..60 {
        let b = (0..3).map(|_| orphan(r.below(2000), &mut r)).collect();
        h.apply(b);
    }
    let sh = check(&h.s, &h.root);
    assert!(sh.buffered > 0, "orphans should be buffered in pivots");
    h.verify();
    for i in 0..2000 {
        assert_eq!(lookup(&h.s, &h.root, &key(i * 2 + 1)).unwrap(), None);
    }
    let all = scan(
        &h.s,
        &h.root,
        Bound::Unbounded,
        Bound::Unbounded,
        usize::MAX,
    )
    .unwrap();
    assert!(
        all.iter().all(|(k, _)| k[8] % 2 == 0),
        "an orphan surfaced in a scan"
    );
    // Drive every orphan down to the leaves with more orphans and updates.
    for round in 0..3000u64 {
        let mut b: Vec<Msg> = (0..3).map(|_| orphan(r.below(2000), &mut r)).collect();
        b.push(Msg::insert(key(r.below(2000) * 2), r.bytes(60)));
        h.apply(b);
        if round % 500 == 0 {
            h.verify();
        }
    }
    h.verify();
    walk(&h.s, &h.root, |_, v: &NodeView<'_>| {
        if v.is_leaf() {
            for i in 0..v.nval() {
                assert_eq!(
                    v.kv(i).unwrap().0[8] % 2,
                    0,
                    "an orphan became a leaf value"
                );
            }
        }
        Ok(())
    })
    .unwrap();
}

/// Defect #22: the root is copied on every upsert. That remains (sealed
/// blocks are immutable), but the fast path copies *only* the root.
#[test]
fn defect_22_fast_path_writes_only_the_root() {
    let mut h = Harness::new();
    let mut r = Rng(22);
    let mut fast = 0;
    for _ in 0..3000 {
        let before = h.s.writes();
        let old = h.root;
        h.apply(vec![Msg::insert(key(r.below(100_000)), r.bytes(50))]);
        let w = h.s.writes() - before;
        assert!(w >= 1);
        if old.height >= 2 && w == 1 {
            fast += 1;
            assert!(!h.s.is_live(old.bp.addr), "old root not freed");
        }
    }
    assert!(fast > 1000, "fast path taken only {fast} times");
    h.verify();
}
