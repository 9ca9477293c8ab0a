//! Unit tests of node reading, searching and building.

use super::*;
use crate::format::msg::Op;
use crate::format::{Bptr, BLKSZ};
use crate::ids::{BlockAddr, Gen};

/// Builders define every byte: in a buffer of stale bytes they write
/// exactly what they write in a zeroed one.
#[test]
fn builders_define_every_byte() {
    let build = |fill: u8| {
        let mut l = Box::new([fill; BLKSZ]);
        let mut lb = LeafBuilder::new(&mut l);
        for i in 0u32..40 {
            lb.push(&i.to_be_bytes(), &[i as u8; 30]).unwrap();
        }
        lb.finish();
        let mut p = Box::new([fill; BLKSZ]);
        let mut pb = PivotBuilder::new(&mut p, 2);
        let bp = Bptr {
            addr: BlockAddr(0x4000),
            hash: 1,
            gen: Gen(1),
        };
        pb.push_child(b"", &bp, 9).unwrap();
        pb.push_child(b"m", &bp, 9).unwrap();
        pb.push_msg(Op::Insert, b"k", b"v").unwrap();
        pb.finish();
        (l, p)
    };
    assert_eq!(build(0), build(0xa5));
    assert_eq!(build(0), build(0xff));
}

#[test]
fn leaf_round_trip() {
    let mut b = Box::new([0u8; BLKSZ]);
    let mut lb = LeafBuilder::new(&mut b);
    for i in 0u32..100 {
        lb.push(&i.to_be_bytes(), &[i as u8; 7]).unwrap();
    }
    let fill = lb.finish();
    let v = NodeView::new(&b[..]).unwrap();
    v.validate().unwrap();
    assert!(v.is_leaf());
    assert_eq!(v.nval(), 100);
    assert_eq!(v.fill(), fill);
    assert_eq!(
        v.kv(42).unwrap(),
        (&42u32.to_be_bytes()[..], &[42u8; 7][..])
    );
    assert_eq!(v.search(&50u32.to_be_bytes()).unwrap(), Ok(50));
    assert_eq!(v.search(&[0, 0, 0, 200]).unwrap(), Err(100));
}

/// The interpolating search gives the same answer as the binary one
/// for evenly spread, skewed and variable-length keys, and for bounds
/// that are tight, loose, or wrong (they only steer the probes).
#[test]
fn search_in_matches_search() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for shape in 0..4 {
        let mut keys: Vec<Vec<u8>> = (0..150)
            .map(|i| match shape {
                0 => (i as u64 * 0x0101_0101_0101).to_be_bytes().to_vec(),
                1 => (next() >> (next() % 60)).to_be_bytes().to_vec(),
                2 => {
                    let mut k = b"prefix/".to_vec();
                    k.extend_from_slice(&next().to_be_bytes()[..(next() % 8) as usize]);
                    k
                }
                _ => next().to_be_bytes()[..3].to_vec(),
            })
            .collect();
        keys.sort();
        keys.dedup();
        let mut b = Box::new([0u8; BLKSZ]);
        let mut lb = LeafBuilder::new(&mut b);
        for k in &keys {
            lb.push(k, b"").unwrap();
        }
        lb.finish();
        let v = NodeView::new(&b[..]).unwrap();
        let (first, last) = (keys[0].clone(), keys[keys.len() - 1].clone());
        let mut above = last.clone();
        above.push(0xff);
        let bounds: [(&[u8], &[u8]); 4] = [
            (&first, &above),
            (b"", &[0xff; 9]),
            (&last, &first),
            (&keys[keys.len() / 2], &keys[keys.len() / 2 + 1]),
        ];
        let mut probes = keys.clone();
        for _ in 0..300 {
            probes.push(next().to_be_bytes()[..(1 + next() % 8) as usize].to_vec());
        }
        for (lo, hi) in bounds {
            for k in &probes {
                assert_eq!(
                    v.search_in(k, lo, hi).unwrap(),
                    v.search(k).unwrap(),
                    "shape {shape} key {k:?}"
                );
            }
        }
    }
}

#[test]
fn leaf_fills_up() {
    let mut b = Box::new([0u8; BLKSZ]);
    let mut lb = LeafBuilder::new(&mut b);
    let mut n = 0u32;
    while lb.push(&n.to_be_bytes(), &[0; 512]).is_ok() {
        n += 1;
    }
    assert!(n >= 4, "a leaf must hold at least four maximal records");
    assert!(lb.free() < kv_size(4, 512));
}

#[test]
fn pivot_round_trip() {
    let mut b = Box::new([0u8; BLKSZ]);
    let mut pb = PivotBuilder::new(&mut b, 1);
    let bp = |a| Bptr {
        addr: BlockAddr(a),
        hash: a,
        gen: Gen(1),
    };
    pb.push_child(b"", &bp(0x4000), 10).unwrap();
    pb.push_child(b"m", &bp(0x8000), 20).unwrap();
    pb.push_msg(Op::Insert, b"a", b"1").unwrap();
    pb.push_msg(Op::Delete, b"a", b"").unwrap();
    pb.push_msg(Op::Insert, b"z", b"2").unwrap();
    pb.finish();
    let v = NodeView::new(&b[..]).unwrap();
    v.validate().unwrap();
    assert_eq!(v.level(), 1);
    assert_eq!(v.child(1).unwrap(), (&b"m"[..], bp(0x8000), 20));
    assert_eq!(v.route(b"a").unwrap(), 0);
    assert_eq!(v.route(b"m").unwrap(), 1);
    assert_eq!(v.route(b"zz").unwrap(), 1);
    assert_eq!(v.msg(1).unwrap(), (Op::Delete, &b"a"[..], &b""[..]));
    assert_eq!(v.msg_lower_bound(b"b").unwrap(), 2);
}

#[test]
fn garbage_never_panics() {
    let mut b = Box::new([0u8; BLKSZ]);
    let mut lb = LeafBuilder::new(&mut b);
    for i in 0u32..20 {
        lb.push(&i.to_be_bytes(), b"x").unwrap();
    }
    lb.finish();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut c = b.clone();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c[(x as usize) % 400] = (x >> 32) as u8;
        }
        if let Ok(v) = NodeView::new(&c[..]) {
            let _ = v.validate();
            for i in 0..v.nval() + 1 {
                let _ = v.kv(i);
                let _ = v.child(i);
            }
            for j in 0..v.nbuf() + 1 {
                let _ = v.msg(j);
            }
            let _ = v.search(b"abc");
        }
    }
}
