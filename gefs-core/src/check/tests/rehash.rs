//! Damage that hashes cannot see: a block is changed and every pointer
//! above it re-hashed (T9's "re-hashed" mutations), so that only the
//! structural checks stand between the damage and a clean report.

use super::image::{build, layout, read_superblock, DEV};
use super::{run, show};
use crate::check::sb::sb_b_addr;
use crate::check::{check, CheckOpts, Kind, Report};
use crate::device::{Device, MemDev};
use crate::format::key::{KLABEL, KSNAP};
use crate::format::node::NodeView;
use crate::format::value::TreeRec;
use crate::format::{block_hash, Bptr, BLKSZ};
use crate::format::{Decode, Encode};
use crate::ids::BlockAddr;

fn read(dev: &MemDev, a: BlockAddr) -> Vec<u8> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, a.0).unwrap();
    b
}

/// Replace the first occurrence of `from` in `b` by `to`.
fn patch(b: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    match b.windows(from.len()).position(|w| w == from) {
        Some(i) => {
            b[i..i + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

/// The pointers a node holds that lead to nodes: its children, and (in the
/// snapshot tree) the roots in snapshot records.
fn node_ptrs(b: &[u8], snap: bool) -> Vec<Bptr> {
    let Ok(v) = NodeView::new(b) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..v.nval() {
        if !v.is_leaf() {
            if let Ok((_, bp, _)) = v.child(i) {
                out.push(bp);
            }
        } else if let Ok((k, val)) = v.kv(i) {
            if snap && k.first() == Some(&KSNAP) {
                out.extend(TreeRec::decode(val).ok().map(|r| r.root));
            }
        }
    }
    for j in 0..v.nbuf() {
        if let Ok((_, k, arg)) = v.msg(j) {
            if snap && k.first() == Some(&KSNAP) {
                out.extend(TreeRec::decode(arg).ok().map(|r| r.root));
            }
        }
    }
    out
}

/// Re-hash the subtree at `bp` bottom-up; returns the root's new hash.
fn fix(dev: &MemDev, bp: &Bptr, snap: bool, depth: u32) -> u64 {
    let mut b = read(dev, bp.addr);
    if depth < 40 {
        for p in node_ptrs(&b, snap) {
            let h = fix(
                dev,
                &p,
                snap && NodeView::new(&b).is_ok_and(|v| !v.is_leaf()),
                depth + 1,
            );
            if h != p.hash {
                let new = Bptr { hash: h, ..p };
                patch(&mut b, &p.to_bytes(), &new.to_bytes());
            }
        }
    }
    dev.write_at(&b, bp.addr.0).unwrap();
    block_hash(&b)
}

/// Make every pointer in the image agree with the blocks again.
fn rehash(dev: &MemDev) {
    let mut sb = read_superblock(dev, BlockAddr(0)).unwrap();
    sb.snap_root.hash = fix(dev, &sb.snap_root, true, 0);
    let enc = sb.encode();
    dev.write_at(&enc[..], 0).unwrap();
    dev.write_at(&enc[..], sb_b_addr(DEV).0).unwrap();
}

/// Change block `a` with `f`, re-hash, check.
fn damage(img: &MemDev, a: BlockAddr, f: impl FnOnce(&mut Vec<u8>)) -> Report {
    let dev = img.snapshot();
    let mut b = read(&dev, a);
    f(&mut b);
    dev.write_at(&b, a.0).unwrap();
    rehash(&dev);
    run(&dev)
}

fn has(r: &Report, kind: Kind, a: BlockAddr) -> bool {
    r.problems
        .iter()
        .any(|p| p.kind == kind && p.addr == Some(a.0))
}

#[test]
fn rehash_alone_changes_nothing() {
    let img = build();
    let dev = img.dev.snapshot();
    rehash(&dev);
    let r = run(&dev);
    assert!(
        r.problems.is_empty() && r.warnings.is_empty(),
        "{}",
        show(&r)
    );
}

#[test]
fn wrong_fill_of_the_last_child_is_reported() {
    let img = build();
    let l = layout(&img.dev);
    let pivot = l.fs_pivots[0];
    let b = read(&img.dev, pivot);
    let v = NodeView::new(&b).unwrap();
    let (_, last, fill) = v.child(v.nval() - 1).unwrap();
    let mut from = last.to_bytes().to_vec();
    from.extend_from_slice(&fill.to_be_bytes());
    let mut to = last.to_bytes().to_vec();
    to.extend_from_slice(&(fill ^ 4).to_be_bytes());
    let r = damage(&img.dev, pivot, |b| assert!(patch(b, &from, &to)));
    assert!(has(&r, Kind::Fill, last.addr), "{}", show(&r));
}

#[test]
fn separator_above_a_childs_keys_is_reported() {
    let img = build();
    let l = layout(&img.dev);
    let pivot = l.fs_pivots[0];
    let b = read(&img.dev, pivot);
    let v = NodeView::new(&b).unwrap();
    assert!(v.nval() >= 3);
    // A middle child whose second key is as long as its separator (the
    // patch keeps the node's size): that key is above the child's first
    // and below the next separator.
    let (sep1, child1, k1) = (1..v.nval() - 1)
        .find_map(|i| {
            let (sep, child, _) = v.child(i).unwrap();
            let cb = read(&img.dev, child.addr);
            let cv = NodeView::new(&cb).unwrap();
            let k = cv.key(1).unwrap().to_vec();
            (k.len() == sep.len()).then(|| (sep.to_vec(), child, k))
        })
        .expect("a child with a same-length second key");
    let r = damage(&img.dev, pivot, |b| assert!(patch(b, &sep1, &k1)));
    assert!(has(&r, Kind::KeyRange, child1.addr), "{}", show(&r));
}

#[test]
fn wrong_recorded_height_is_reported() {
    let img = build();
    let l = layout(&img.dev);
    let r0 = run(&*img.dev);
    let main = r0.trees.iter().find(|t| t.labels == ["main"]).unwrap();
    let root = BlockAddr(main.root);
    // Find the newest snapshot record of main: in a buffered message if
    // there is one (pivots are above leaves), else in a leaf.
    for node in l.snap_pivots.iter().chain(&l.snap_leaves) {
        let b = read(&img.dev, *node);
        let v = NodeView::new(&b).unwrap();
        let recs: Vec<(Vec<u8>, Vec<u8>)> = if v.is_leaf() {
            (0..v.nval())
                .map(|i| v.kv(i).unwrap())
                .map(|(k, x)| (k.to_vec(), x.to_vec()))
                .collect()
        } else {
            (0..v.nbuf())
                .map(|j| v.msg(j).unwrap())
                .map(|(_, k, x)| (k.to_vec(), x.to_vec()))
                .collect()
        };
        for (k, val) in recs.iter().rev() {
            let Ok(rec) = TreeRec::decode(val) else {
                continue;
            };
            if k.first() != Some(&KSNAP) || rec.root.addr != root {
                continue;
            }
            let bad = TreeRec {
                ht: rec.ht + 1,
                ..rec
            };
            let (from, to) = (rec.encode(), bad.encode());
            let r = damage(&img.dev, *node, |b| assert!(patch(b, &from, &to)));
            assert!(has(&r, Kind::Level, root), "{}", show(&r));
            return;
        }
    }
    panic!("no snapshot record for main");
}

#[test]
fn label_naming_a_missing_snapshot_is_reported() {
    let img = build();
    let l = layout(&img.dev);
    for leaf in &l.snap_leaves {
        let b = read(&img.dev, *leaf);
        let v = NodeView::new(&b).unwrap();
        for i in 0..v.nval() {
            let (k, val) = v.kv(i).unwrap();
            if k != [&[KLABEL][..], b"main"].concat() {
                continue;
            }
            let mut to = val.to_vec();
            to[..8].copy_from_slice(&999u64.to_be_bytes());
            let from = val.to_vec();
            let r = damage(&img.dev, *leaf, |b| assert!(patch(b, &from, &to)));
            assert!(has(&r, Kind::Value, *leaf), "{}", show(&r));
            // The snapshot main named is still walked, by its id.
            assert_eq!(r.trees.len(), 4);
            return;
        }
    }
    panic!("no label main");
}

#[test]
fn rehashed_mutations_never_panic() {
    let img = build();
    let l = layout(&img.dev);
    let nodes: Vec<BlockAddr> = [&l.snap_pivots, &l.snap_leaves, &l.fs_pivots, &l.fs_leaves]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut found = 0;
    for _ in 0..150 {
        let a = nodes[rnd(nodes.len() as u64) as usize];
        let dev = img.dev.snapshot();
        let mut b = read(&dev, a);
        for _ in 0..1 + rnd(3) {
            let at = if rnd(2) == 0 {
                rnd(64)
            } else {
                rnd(BLKSZ as u64)
            } as usize;
            b[at] = rnd(256) as u8;
        }
        dev.write_at(&b, a.0).unwrap();
        rehash(&dev);
        let r = check(&dev, &CheckOpts::default()).unwrap();
        found += usize::from(!r.problems.is_empty());
    }
    assert!(found > 50, "only {found} of 150 structural mutations found");
}
