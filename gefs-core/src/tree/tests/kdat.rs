//! Data-pointer accounting: every data block a `KDAT` value points to is
//! freed exactly once, when its pointer leaves the tree (overwritten,
//! deleted or cleared in a leaf), and never while the tree still holds it.

use std::collections::HashSet;

use crate::format::key::dat;
use crate::format::msg::{Msg, Op};
use crate::format::Bptr;

use super::super::{data_ptrs, upsert};
use super::harness::{check, tree_data, Harness, Rng};

fn ptr_insert(h: &Harness, key: Vec<u8>) -> (Msg, Bptr) {
    let p = h.s.alloc_data();
    (Msg::insert(key, p.to_bytes().to_vec()), p)
}

/// Every block ever allocated as data is either referenced by the tree or
/// freed; every pointer the model holds is live.
fn check_data(h: &Harness, all: &HashSet<u64>) {
    let in_tree = tree_data(&h.s, &h.root);
    for (k, v) in &h.model {
        if k[0] != 0 {
            continue;
        }
        let p = Bptr::from_slice(v).unwrap();
        assert!(
            in_tree.contains(&p.addr.0),
            "model pointer missing from tree"
        );
        assert!(
            h.s.is_live(p.addr),
            "data block {} freed while referenced",
            p.addr
        );
    }
    for a in all {
        let live = h.s.is_live(crate::ids::BlockAddr(*a));
        assert_eq!(live, in_tree.contains(a), "data block {a:#x}: live {live}");
    }
}

#[test]
fn data_blocks_freed_exactly_once() {
    let mut h = Harness::new();
    let mut r = Rng(0xda7a);
    let mut all = HashSet::new();
    for round in 0..3000 {
        let mut batch = Vec::new();
        let n = if round % 200 == 0 {
            400
        } else {
            1 + r.below(6)
        };
        for _ in 0..n {
            let key = dat(r.below(8), r.below(300) * 16384);
            match r.below(10) {
                0..=5 => {
                    let (m, p) = ptr_insert(&h, key);
                    all.insert(p.addr.0);
                    batch.push(m);
                }
                6 | 7 => batch.push(Msg::delete(key)),
                _ => batch.push(Msg::bare(Op::Clearb, key)),
            }
        }
        // Pad with plain keys now and then so that data messages sit in
        // pivot buffers for a while before they reach the leaves.
        if round % 3 == 0 {
            let mut k = vec![1u8];
            k.extend_from_slice(&r.next_u64().to_be_bytes());
            batch.push(Msg::insert(k, r.bytes(100)));
        }
        h.apply(batch);
        if round % 100 == 0 {
            h.verify();
            check_data(&h, &all);
        }
    }
    h.verify();
    check_data(&h, &all);
    // Delete every data key; the blocks go once their deletes reach leaves.
    let dels: Vec<Msg> = h
        .model
        .keys()
        .filter(|k| k[0] == 0)
        .map(|k| Msg::bare(Op::Clearb, k.clone()))
        .collect();
    h.apply(dels);
    h.verify();
    check_data(&h, &all);
}

#[test]
fn overwrites_buffered_together_free_every_earlier_pointer() {
    let mut h = Harness::new();
    let key = dat(1, 0);
    let mut ptrs = Vec::new();
    // Several inserts of one key in one batch, then more in later batches,
    // all buffered in the root leaf/pivot before they meet.
    let mut batch = Vec::new();
    for _ in 0..5 {
        let (m, p) = ptr_insert(&h, key.clone());
        ptrs.push(p);
        batch.push(m);
    }
    h.apply(batch);
    for p in &ptrs[..4] {
        assert!(
            !h.s.is_live(p.addr),
            "overwritten pointer {} still live",
            p.addr
        );
    }
    assert!(h.s.is_live(ptrs[4].addr));
    // Grow the tree so that the next messages are buffered in a pivot.
    let mut r = Rng(5);
    while h.root.height < 2 {
        let mut k = vec![1u8];
        k.extend_from_slice(&r.next_u64().to_be_bytes());
        h.apply(vec![Msg::insert(k, r.bytes(200))]);
    }
    let mut later = Vec::new();
    for _ in 0..3 {
        let (m, p) = ptr_insert(&h, key.clone());
        later.push(p);
        h.apply(vec![m]);
    }
    h.apply(vec![Msg::delete(key.clone())]);
    let sh = check(&h.s, &h.root);
    assert!(sh.buffered > 0);
    let mut buffered = 0;
    data_ptrs(&h.s, &h.root, |_| {
        buffered += 1;
        Ok(())
    })
    .unwrap();
    // Until the messages reach the leaf, the tree still references them.
    for p in later.iter().chain(&ptrs[4..]) {
        assert!(h.s.is_live(p.addr));
    }
    // Push them down with unrelated traffic in the same key range.
    let mut i = 0u64;
    while later.iter().chain(&ptrs[4..]).any(|p| h.s.is_live(p.addr)) {
        i += 1;
        assert!(i < 100_000, "messages never reached the leaf");
        h.apply(vec![Msg::insert(
            dat(1, i * 16384),
            h.s.alloc_data().to_bytes().to_vec(),
        )]);
    }
    h.verify();
    assert_eq!(h.model.get(&key), None);
    // The root leaf case: a KDAT value overwritten directly in a leaf.
    let s = super::super::memstore::MemStore::new();
    let root = super::super::create(&s).unwrap();
    let a = s.alloc_data();
    let b = s.alloc_data();
    let root = upsert(
        &s,
        &root,
        vec![Msg::insert(key.clone(), a.to_bytes().to_vec())],
    )
    .unwrap();
    assert!(s.is_live(a.addr));
    let root = upsert(
        &s,
        &root,
        vec![Msg::insert(key.clone(), b.to_bytes().to_vec())],
    )
    .unwrap();
    assert!(!s.is_live(a.addr) && s.is_live(b.addr));
    let _ = upsert(&s, &root, vec![Msg::bare(Op::Clobber, key)]).unwrap();
    assert!(s.is_live(b.addr), "clobber does not free the data block");
}

#[test]
fn data_insert_must_be_a_pointer() {
    let h = Harness::new();
    let err = upsert(&h.s, &h.root, vec![Msg::insert(dat(1, 0), vec![1, 2, 3])]).unwrap_err();
    assert!(matches!(err, crate::Error::Invalid(_)), "{err}");
}
