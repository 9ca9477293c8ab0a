//! Failure atomicity and corruption handling.

use std::ops::Bound;

use crate::error::Error;
use crate::format::key::dat;
use crate::format::msg::{Msg, Op};
use crate::format::node::NodeView;
use crate::format::{Bptr, BLKSZ, KEYMAX};
use crate::ids::BlockAddr;

use super::super::{lookup, scan, upsert, walk, Root};
use super::harness::{Harness, Rng};

fn key(i: u64) -> Vec<u8> {
    let mut k = vec![1u8; 40];
    k[1..9].copy_from_slice(&i.to_be_bytes());
    k
}

fn grown(n: u64, vlen: usize) -> Harness {
    let mut h = Harness::new();
    let mut r = Rng(11);
    for c in 0..n / 10 {
        let b = (0..10)
            .map(|j| Msg::insert(key(c * 10 + j), r.bytes(vlen)))
            .collect();
        h.apply(b);
    }
    h
}

/// A batch that splits, merges, flushes and frees data blocks.
fn heavy_batch(h: &Harness, r: &mut Rng) -> Vec<Msg> {
    let mut b = Vec::new();
    for i in 0..1500 {
        b.push(match i % 3 {
            0 => Msg::delete(key(r.below(3000))),
            _ => Msg::insert(key(3000 + r.below(3000)), r.bytes(60)),
        });
    }
    for (k, _) in h.model.iter().filter(|(k, _)| k[0] == 0) {
        b.push(Msg::bare(Op::Clearb, k.clone()));
    }
    b
}

/// Fail the upsert of `batch` at its first write, then its second, and so
/// on until it succeeds; after each failure the old root must read back the
/// model and every block the failed call wrote must be free again. Returns
/// the number of failures.
fn fail_every_write(h: &mut Harness, batch: &[Msg], r: &mut Rng) -> usize {
    let mut n = 0;
    loop {
        h.s.fail_after(Some(n));
        let res = crate::tree::apply(&h.s, &h.root, &[], batch);
        h.s.fail_after(None);
        match res {
            Err(e) => {
                assert!(matches!(e, Error::NoSpace), "{e}");
                if n % 5 == 0 || n < 10 {
                    h.verify();
                } else {
                    h.check_lookup(&key(r.below(6000)));
                }
            }
            Ok(a) => {
                for m in batch {
                    super::harness::model_apply(&mut h.model, m);
                }
                h.root = a.root;
                h.nodes += a.nodes;
                h.verify();
                return n;
            }
        }
        n += 1;
    }
}

#[test]
fn write_failure_leaves_old_root_intact() {
    let mut h = grown(3000, 50);
    for i in 0..50 {
        let p = h.s.alloc_data();
        h.apply(vec![Msg::insert(dat(2, i), p.to_bytes().to_vec())]);
    }
    h.verify();
    let mut r = Rng(77);
    let batch = heavy_batch(&h, &mut r);
    let failures = fail_every_write(&mut h, &batch, &mut r);
    assert!(
        failures > 20,
        "the batch should need many writes, got {failures}"
    );
    // Mass deletion in one batch: leaves empty and vanish, siblings merge.
    // Routed in one pass, it writes little (the emptied nodes vanish
    // unwritten), but every one of its writes can fail.
    let dels: Vec<Msg> = h
        .model
        .keys()
        .skip(40)
        .map(|k| Msg::delete(k.clone()))
        .collect();
    let failures = fail_every_write(&mut h, &dels, &mut r);
    assert!(failures >= 1, "got {failures}");
}

/// Every node: (pointer, level, is leaf).
fn nodes(h: &Harness) -> Vec<(Bptr, u16, bool)> {
    let mut out = Vec::new();
    walk(&h.s, &h.root, |bp, v| {
        out.push((*bp, v.level(), v.is_leaf()));
        Ok(())
    })
    .unwrap();
    out
}

fn corrupt_at(e: Error) -> BlockAddr {
    match e {
        Error::Corrupt { addr, .. } => addr,
        other => panic!("expected corruption, got {other}"),
    }
}

#[test]
fn level_mismatch_is_corruption_naming_the_block() {
    let mut h = Harness::new();
    let mut r = Rng(4);
    while h.root.height < 3 {
        let b = (0..4)
            .map(|_| {
                let mut k = vec![1u8; KEYMAX];
                k[1..9].copy_from_slice(&r.next_u64().to_be_bytes());
                Msg::insert(k, r.bytes(300))
            })
            .collect();
        h.apply(b);
    }
    h.verify();
    let all = nodes(&h);
    let (leaf, _, _) = *all.iter().find(|n| n.2).unwrap();
    let (piv, _, _) = *all.iter().find(|n| n.1 == 1).unwrap();
    let leaf_img = h.s.image(leaf.addr);
    let first_key = NodeView::new(&leaf_img).unwrap().kv(0).unwrap().0.to_vec();
    // A pivot where a leaf belongs.
    h.s.tamper(leaf.addr, &h.s.image(piv.addr));
    assert_eq!(
        corrupt_at(lookup(&h.s, &h.root, &first_key).unwrap_err()),
        leaf.addr
    );
    let e = scan(
        &h.s,
        &h.root,
        Bound::Unbounded,
        Bound::Unbounded,
        usize::MAX,
    )
    .unwrap_err();
    assert_eq!(corrupt_at(e), leaf.addr);
    assert_eq!(
        corrupt_at(walk(&h.s, &h.root, |_, _| Ok(())).unwrap_err()),
        leaf.addr
    );
    h.s.untamper();
    // A leaf where a pivot belongs.
    h.s.tamper(piv.addr, &leaf_img);
    let e = scan(
        &h.s,
        &h.root,
        Bound::Unbounded,
        Bound::Unbounded,
        usize::MAX,
    )
    .unwrap_err();
    assert_eq!(corrupt_at(e), piv.addr);
    h.s.untamper();
    // Not a tree node at all.
    h.s.tamper(leaf.addr, &[0u8; BLKSZ]);
    assert_eq!(
        corrupt_at(lookup(&h.s, &h.root, &first_key).unwrap_err()),
        leaf.addr
    );
    h.s.untamper();
    // A root whose height disagrees with its node.
    let wrong = Root {
        height: h.root.height + 1,
        ..h.root
    };
    assert_eq!(
        corrupt_at(lookup(&h.s, &wrong, b"x").unwrap_err()),
        h.root.bp.addr
    );
    let e = upsert(&h.s, &wrong, vec![Msg::insert(vec![1], vec![])]).unwrap_err();
    assert_eq!(corrupt_at(e), h.root.bp.addr);
    let absurd = Root {
        height: 40,
        ..h.root
    };
    assert_eq!(
        corrupt_at(lookup(&h.s, &absurd, b"x").unwrap_err()),
        h.root.bp.addr
    );
    h.verify();
}

#[test]
fn upsert_into_corrupt_subtree_fails_cleanly() {
    let h = grown(3000, 50);
    h.verify();
    let all = nodes(&h);
    let top = (h.root.height - 2) as u16;
    let kids: Vec<Bptr> = all.iter().filter(|n| n.1 == top).map(|n| n.0).collect();
    let bogus =
        h.s.image(all.iter().find(|n| n.1 == top + 1).unwrap().0.addr);
    for k in &kids {
        h.s.tamper(k.addr, &bogus);
    }
    let mut r = Rng(8);
    let batch: Vec<Msg> = (0..3000)
        .map(|_| Msg::insert(key(r.below(3000)), r.bytes(40)))
        .collect();
    let e = upsert(&h.s, &h.root, batch).unwrap_err();
    let at = corrupt_at(e);
    assert!(
        kids.iter().any(|k| k.addr == at),
        "error names {at}, not a tampered child"
    );
    h.s.untamper();
    // The old tree is whole and the failed call's blocks were freed.
    h.verify();
}

/// A batch with one bad message is rejected whole, before anything is
/// written.
#[test]
fn invalid_batch_touches_nothing() {
    let h = grown(500, 30);
    let before = (h.s.writes(), h.s.live());
    let bad = vec![
        Msg::insert(key(1), vec![1]),
        Msg::insert(vec![1; KEYMAX + 1], vec![]),
    ];
    assert!(matches!(
        upsert(&h.s, &h.root, bad),
        Err(Error::KeyTooLong(_))
    ));
    let bad = vec![Msg::delete(key(2)), Msg::insert(Vec::new(), vec![])];
    assert!(matches!(upsert(&h.s, &h.root, bad), Err(Error::Invalid(_))));
    assert_eq!((h.s.writes(), h.s.live()), before);
    assert_eq!(upsert(&h.s, &h.root, Vec::new()).unwrap(), h.root);
    h.verify();
}
