//! Model-based tests: the tree against a `BTreeMap`, with the structural
//! checker and block accounting after batches.

use std::ops::Bound;

use proptest::prelude::*;

use crate::format::msg::{Msg, Op, Wstat};
use crate::format::value::Xdir;
use crate::format::Encode;
use crate::format::{KEYMAX, VALMAX};

use super::harness::{Harness, Rng};

fn plain_key(i: u64) -> Vec<u8> {
    let mut k = vec![1];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// A random mix of inserts, overwrites, deletes (also of missing keys) and
/// orphan clearb/clobber over `nkeys` keys.
fn random_batch(r: &mut Rng, nkeys: u64, maxlen: usize, vmax: usize) -> Vec<Msg> {
    (0..1 + r.below(maxlen as u64))
        .map(|_| {
            let k = plain_key(r.below(nkeys));
            match r.below(10) {
                0..=5 => {
                    let n = r.below(vmax as u64 + 1) as usize;
                    Msg::insert(k, r.bytes(n))
                }
                6 | 7 => Msg::delete(k),
                8 => Msg::bare(Op::Clearb, k),
                _ => Msg::bare(Op::Clobber, k),
            }
        })
        .collect()
}

fn probe(h: &Harness, r: &mut Rng, nkeys: u64) {
    for _ in 0..4 {
        h.check_lookup(&plain_key(r.below(nkeys)));
    }
    let a = plain_key(r.below(nkeys));
    let b = plain_key(r.below(nkeys));
    h.check_scan(
        Bound::Included(&a),
        Bound::Excluded(&b),
        1 + r.below(50) as usize,
    );
    h.check_scan(
        Bound::Excluded(&a),
        Bound::Unbounded,
        1 + r.below(20) as usize,
    );
}

#[test]
fn mixed_batches_match_model() {
    let mut h = Harness::new();
    let mut r = Rng(0x1234_5678_9abc_def1);
    for round in 0..3000 {
        let big = round % 97 == 0;
        let b = random_batch(&mut r, 4000, if big { 600 } else { 8 }, 120);
        h.apply(b);
        if round % 10 == 0 {
            probe(&h, &mut r, 4000);
        }
        if round % 250 == 0 {
            h.verify();
        }
    }
    let sh = h.verify();
    assert!(sh.height >= 2, "test should build a multi-level tree");
    h.check_paged_scan(37);
}

/// One batch many times larger than a root buffer: the short-pull loop.
#[test]
fn batch_larger_than_root_buffer() {
    let mut h = Harness::new();
    let mut r = Rng(99);
    for _ in 0..4 {
        let b: Vec<Msg> = (0..3000)
            .map(|_| Msg::insert(plain_key(r.below(20_000)), r.bytes(40)))
            .collect();
        h.apply(b);
        h.verify();
    }
    let dels: Vec<Msg> = h
        .model
        .keys()
        .step_by(2)
        .map(|k| Msg::delete(k.clone()))
        .collect();
    h.apply(dels);
    h.verify();
    h.check_paged_scan(100);
}

#[test]
fn hundred_thousand_keys() {
    let mut h = Harness::new();
    let mut r = Rng(0xfeed_beef);
    let mut i = 0u64;
    let mut rounds = 0;
    while h.model.len() < 100_000 {
        let n = if rounds % 50 == 0 {
            400
        } else {
            1 + r.below(8)
        };
        let b: Vec<Msg> = (0..n)
            .map(|_| {
                i += 1;
                let k = plain_key(r.next_u64() % 1_000_000_007);
                let vl = r.below(24) as usize;
                Msg::insert(k, r.bytes(vl))
            })
            .collect();
        h.apply(b);
        rounds += 1;
        if rounds % 1000 == 0 {
            probe(&h, &mut r, 1_000_000_007);
        }
    }
    let sh = h.verify();
    assert!(
        sh.height >= 3,
        "100k keys should make a tree of height ≥ 3, got {}",
        sh.height
    );
    let keys: Vec<Vec<u8>> = h.model.keys().cloned().collect();
    for k in keys.iter().step_by(997) {
        h.check_lookup(k);
    }
    h.check_scan(
        Bound::Included(&keys[5000]),
        Bound::Excluded(&keys[9000]),
        10_000,
    );
}

fn xdir(n: u64) -> Vec<u8> {
    Xdir {
        qid_path: n,
        mode: 0o644,
        ..Xdir::default()
    }
    .encode()
}

#[test]
fn limit_sized_keys_and_values() {
    let mut h = Harness::new();
    let mut r = Rng(7);
    let big_key = |i: u64| {
        let mut k = vec![1u8; KEYMAX];
        k[1..9].copy_from_slice(&i.to_be_bytes());
        k
    };
    for round in 0..1500u64 {
        let mut b = Vec::new();
        for _ in 0..r.below(6) + 1 {
            let i = r.below(3000);
            b.push(match r.below(5) {
                0 => Msg::insert(vec![1, i as u8], vec![]),
                1 => Msg::delete(big_key(i)),
                _ => Msg::insert(big_key(i), r.bytes(VALMAX)),
            });
        }
        h.apply(b);
        if round % 100 == 0 {
            h.verify();
            h.check_lookup(&big_key(r.below(3000)));
        }
    }
    let sh = h.verify();
    assert!(
        sh.height >= 3,
        "maximal records should build height ≥ 3, got {}",
        sh.height
    );
    h.check_paged_scan(13);
}

/// An entry key (`KENT`) numbered `i`.
fn ent_key(i: u64) -> Vec<u8> {
    let mut k = vec![crate::format::key::KENT];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

#[test]
fn wstat_applies_to_entries_in_order() {
    let mut h = Harness::new();
    let key = ent_key;
    let mut r = Rng(3);
    for i in 0..500 {
        h.apply(vec![Msg::insert(key(i), xdir(i))]);
    }
    for round in 0..2000u64 {
        let i = r.below(600);
        let w = Wstat {
            size: Some(round),
            mtime: (round % 3 == 0).then_some(round),
            ..Wstat::default()
        };
        h.apply(vec![
            Msg {
                op: Op::Wstat,
                key: key(i),
                val: w.encode(),
            },
            Msg {
                op: Op::Wstat,
                key: key(i),
                val: Wstat::default().encode(),
            },
        ]);
        if round % 200 == 0 {
            h.verify();
        }
    }
    h.verify();
}

/// A directory entry changed thousands of times (every create in it bumps
/// its mtime and version) keeps one wstat per buffer, not a chain that every
/// lookup of it must apply: buffers fold wstats (`content::merge_msgs`), and
/// the entry reads back with every change applied.
/// Postmortem: pivot buffers kept every wstat to a key as its own message, so each walk
/// through a directory that gained entries since the last flush applied one wstat per
/// create since: the answers were right, each walk only grew slower.
#[test]
fn wstats_fold_in_node_buffers() {
    let mut h = Harness::new();
    let key = ent_key;
    for i in 0..6000 {
        h.apply(vec![Msg::insert(key(i), xdir(i))]);
    }
    let before = h.verify();
    assert!(before.height >= 2, "{before:?}");
    for round in 0..3000u64 {
        let w = Wstat {
            mtime: Some(round),
            ..Wstat::default()
        };
        h.apply(vec![Msg {
            op: Op::Wstat,
            key: key(7),
            val: w.encode(),
        }]);
    }
    let after = h.verify();
    assert!(
        after.buffered <= before.buffered + after.height as usize,
        "{} messages buffered before 3,000 wstats of one key, {} after",
        before.buffered,
        after.buffered
    );
    h.check_lookup(&key(7));
}

#[derive(Debug, Clone)]
enum TOp {
    Put(u16, u8, u16),
    Del(u16),
    Clearb(u16),
    Clobber(u16),
    PutX(u16),
    Wstat(u16, u32),
}

fn tkey(i: u16, fam: u8) -> Vec<u8> {
    let mut k = vec![fam];
    k.extend_from_slice(&i.to_be_bytes());
    k.extend(std::iter::repeat_n(i as u8, usize::from(i % 50)));
    k
}

fn to_msg(op: &TOp) -> Msg {
    match *op {
        TOp::Put(i, fill, n) => Msg::insert(tkey(i, 1), vec![fill; usize::from(n)]),
        TOp::Del(i) => Msg::delete(tkey(i, 1)),
        TOp::Clearb(i) => Msg::bare(Op::Clearb, tkey(i, 1)),
        TOp::Clobber(i) => Msg::bare(Op::Clobber, tkey(i, 2)),
        TOp::PutX(i) => Msg::insert(tkey(i, 2), xdir(u64::from(i))),
        TOp::Wstat(i, s) => Msg {
            op: Op::Wstat,
            key: tkey(i, 2),
            val: Wstat {
                size: Some(u64::from(s)),
                ..Wstat::default()
            }
            .encode(),
        },
    }
}

fn top() -> impl Strategy<Value = TOp> {
    prop_oneof![
        6 => (0..800u16, any::<u8>(), 0..300u16).prop_map(|(i, f, n)| TOp::Put(i, f, n)),
        3 => (0..900u16).prop_map(TOp::Del),
        1 => (0..900u16).prop_map(TOp::Clearb),
        1 => (0..300u16).prop_map(TOp::Clobber),
        2 => (0..200u16).prop_map(TOp::PutX),
        2 => (0..300u16, any::<u32>()).prop_map(|(i, s)| TOp::Wstat(i, s)),
    ]
}

fn batch() -> impl Strategy<Value = Vec<TOp>> {
    prop_oneof![
        8 => prop::collection::vec(top(), 1..10),
        1 => prop::collection::vec(top(), 50..400),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn prop_tree_matches_model(
        batches in prop::collection::vec(batch(), 1..60),
        probes in prop::collection::vec((0..900u16, 0..900u16, 1..40usize), 8),
    ) {
        let mut h = Harness::new();
        for (n, b) in batches.iter().enumerate() {
            h.apply(b.iter().map(to_msg).collect());
            let (a, z, lim) = probes[n % probes.len()];
            h.check_lookup(&tkey(a, 1));
            h.check_lookup(&tkey(z % 300, 2));
            h.check_scan(Bound::Included(&tkey(a, 1)), Bound::Excluded(&tkey(z, 1)), lim);
            h.check_scan(Bound::Excluded(&tkey(a, 1)), Bound::Included(&tkey(z, 2)), lim);
            if n % 8 == 0 {
                h.verify();
            }
        }
        h.verify();
        h.check_paged_scan(7);
    }
}

/// A scan resumed page by page from a newer root each time (as directory
/// reads do) returns keys in strictly ascending order, never repeats one,
/// returns only keys live when their page was read, and misses no key that
/// stayed live throughout.
#[test]
fn paged_scan_across_updates() {
    let mut h = Harness::new();
    let mut r = Rng(0x5ca9);
    for c in 0..400 {
        h.apply(
            (0..10)
                .map(|j| Msg::insert(plain_key((c * 10 + j) * 3), r.bytes(50)))
                .collect(),
        );
    }
    let start: Vec<Vec<u8>> = h.model.keys().cloned().collect();
    let mut touched = std::collections::HashSet::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    loop {
        let from = match got.last() {
            Some(k) => Bound::Excluded(k.as_slice()),
            None => Bound::Unbounded,
        };
        let page = crate::tree::scan(&h.s, &h.root, from, Bound::Unbounded, 64).unwrap();
        for (k, v) in &page {
            assert_eq!(h.model.get(k), Some(v), "page returned a stale entry");
        }
        let done = page.len() < 64;
        got.extend(page.into_iter().map(|(k, _)| k));
        if done {
            break;
        }
        let b = random_batch(&mut r, 12_000, 20, 50);
        touched.extend(b.iter().map(|m| m.key.clone()));
        h.apply(b);
    }
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "keys not strictly ascending"
    );
    for k in start.iter().filter(|k| !touched.contains(*k)) {
        assert!(got.binary_search(k).is_ok(), "scan missed {k:02x?}");
    }
    h.verify();
}
