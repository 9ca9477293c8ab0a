//! Crafted damage the checker must report (issue 8, finding 4): valid hashes
//! everywhere, hostile deadlists, snapshot records, generations, counters,
//! label names and superblock copies. Each image is built by the real store
//! and then changed through raw store calls, so only the structural rules of
//! `snaps.rs`, `walk.rs` and `sb.rs` stand between it and a clean report.

use std::sync::Arc;

use super::image::read_superblock;
use super::{run, show};
use crate::alloc::{Kind as AllocKind, Tier};
use crate::check::sb::sb_b_addr;
use crate::check::{Kind, Report};
use crate::device::{Device, MemDev};
use crate::format::key;
use crate::format::log::LogHeader;
use crate::format::msg::Msg;
use crate::format::value::{DlistVal, LabelVal, TreeRec};
use crate::format::{BlockType, Bptr, BLKSZ, LOG_HDR};
use crate::format::{Decode, Encode};
use crate::fs::{Fs, Who, ORDWR};
use crate::ids::{BlockAddr, Gen};
use crate::snap::Snaps;
use crate::store::{Config, Store, TreeId};

const DEV: u64 = 48 << 20;

fn cfg() -> Config {
    Config {
        cache_bytes: 8 << 20,
        read_only: false,
    }
}

/// An image with two snapshots of `main` and deadlists under both the
/// newer snapshot and `main` (files rewritten after each snapshot).
fn image() -> Arc<MemDev> {
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(8 << 20);
    drop(Store::format(dev.clone(), &opts).unwrap());
    let fs = Fs::new(Arc::new(Store::open(dev.clone(), &cfg()).unwrap()), false).unwrap();
    let who = Who::permissive(fs.uid("adm").unwrap());
    let (m, root) = fs.attach("main").unwrap();
    let mut files = Vec::new();
    for i in 0..4 {
        let o = fs
            .create(&m, &root, format!("f{i}").as_bytes(), 0o644, ORDWR, &who)
            .unwrap();
        files.push(o.entry().clone());
    }
    let write = |round: u8| {
        for e in &files {
            let o = fs.open(&m, e, ORDWR, &who).unwrap();
            fs.write(&o, 0, &vec![round; 3 * BLKSZ], &who).unwrap();
        }
        fs.sync().unwrap();
    };
    write(1);
    Snaps::new(fs.store()).take("main", "s1", false).unwrap();
    write(2);
    Snaps::new(fs.store()).take("main", "s2", false).unwrap();
    write(3);
    drop((m, root, files));
    fs.sync().unwrap();
    drop(fs);
    let r = run(&*dev);
    assert!(r.problems.is_empty(), "{}", show(&r));
    dev
}

/// A writable store on a copy of `dev`.
fn open(dev: &MemDev) -> (Arc<MemDev>, Store) {
    let d = Arc::new(dev.snapshot());
    let s = Store::open(d.clone(), &cfg()).unwrap();
    (d, s)
}

/// Apply `f` to a copy of `img`, commit, check.
fn crafted(img: &MemDev, f: impl FnOnce(&Store)) -> Report {
    let (d, s) = open(img);
    f(&s);
    s.sync().unwrap();
    drop(s);
    run(&*d)
}

fn label_id(s: &Store, name: &str) -> u64 {
    let v = s
        .lookup(TreeId::SNAP, &key::label(name.as_bytes()))
        .unwrap()
        .unwrap();
    LabelVal::decode(&v).unwrap().id
}

fn record(s: &Store, id: u64) -> TreeRec {
    TreeRec::decode(&s.lookup(TreeId::SNAP, &key::snap(id)).unwrap().unwrap()).unwrap()
}

fn put_record(s: &Store, r: TreeRec) {
    let m = Msg::insert(key::snap(r.gen), r.encode());
    s.upsert(TreeId::SNAP, vec![m], Tier::Normal).unwrap();
}

/// Write a deadlist block (seq, prev, addrs) and return its pointer.
fn dlist_block(s: &Store, seq: u64, prev: Bptr, addrs: &[u64]) -> Bptr {
    let (bp, _, ()) = s
        .new_zeroed(AllocKind::Meta, Tier::Normal, Gen(1), |buf| {
            LogHeader {
                kind: BlockType::Dlist,
                nbytes: addrs.len() * 8,
                seq,
                prev,
            }
            .encode(buf);
            for (j, a) in addrs.iter().enumerate() {
                buf[LOG_HDR + 8 * j..LOG_HDR + 8 * j + 8].copy_from_slice(&a.to_be_bytes());
            }
            Ok(())
        })
        .unwrap();
    bp
}

/// Add a one-block segment listing `addrs` under owner `owner`.
fn add_segment(s: &Store, owner: u64, addrs: &[u64]) {
    let bp = dlist_block(s, 0, Bptr::NONE, addrs);
    let val = DlistVal { head: bp, tail: bp };
    let seq = 1 << 40;
    let m = Msg::insert(key::dlist(owner, 1, seq), val.encode());
    s.upsert(TreeId::SNAP, vec![m], Tier::Normal).unwrap();
}

/// Whether a problem of `kind` says `what`.
fn has(r: &Report, kind: Kind, what: &str) -> bool {
    r.problems
        .iter()
        .any(|p| p.kind == kind && p.what.contains(what))
}

fn any_says(r: &Report, what: &str) -> bool {
    r.problems.iter().any(|p| p.what.contains(what))
}

#[test]
fn deadlist_entry_naming_a_live_block() {
    let img = image();
    let r = crafted(&img, |s| {
        let main = label_id(s, "main");
        let root = s.root(s.mount("main").unwrap()).unwrap();
        add_segment(s, main, &[root.bp.addr.0]);
    });
    assert!(any_says(&r, "live"), "{}", show(&r));
}

#[test]
fn deadlist_entry_listed_twice() {
    let img = image();
    let r = crafted(&img, |s| {
        let s2 = label_id(s, "s2");
        let seg = Snaps::new(s).segments(s2).unwrap().remove(0);
        let (addrs, _) = Snaps::new(s).read_segment(&seg).unwrap();
        add_segment(s, s2, &[addrs[0].0]);
    });
    assert!(any_says(&r, "twice"), "{}", show(&r));
}

#[test]
fn deadlist_entry_naming_the_log_tail() {
    let img = image();
    let r = crafted(&img, |s| {
        let sb = read_superblock(&**s.device(), BlockAddr(0)).unwrap();
        let main = label_id(s, "main");
        add_segment(s, main, &[sb.arenas[1].log_tail.addr.0]);
    });
    assert!(any_says(&r, "allocation log"), "{}", show(&r));
}

#[test]
fn deadlist_chain_leading_into_an_allocation_log() {
    let img = image();
    let r = crafted(&img, |s| {
        let sb = read_superblock(&**s.device(), BlockAddr(0)).unwrap();
        let tail = sb.arenas[2].log_tail;
        let head = dlist_block(s, 1, tail, &[]);
        let val = DlistVal { head, tail };
        let main = label_id(s, "main");
        let m = Msg::insert(key::dlist(main, 1, 1 << 41), val.encode());
        s.upsert(TreeId::SNAP, vec![m], Tier::Normal).unwrap();
    });
    assert!(any_says(&r, "allocation log"), "{}", show(&r));
}

#[test]
fn snapshot_links_to_nothing_and_cycles() {
    let img = image();
    type Change = Box<dyn Fn(TreeRec) -> TreeRec>;
    let cases: Vec<(&str, Change)> = vec![
        ("pred", Box::new(|r| TreeRec { pred: 999, ..r })),
        ("succ", Box::new(|r| TreeRec { succ: 998, ..r })),
        ("base", Box::new(|r| TreeRec { base: 997, ..r })),
        ("cycle", Box::new(|r| TreeRec { pred: r.gen, ..r })),
        ("cycle", Box::new(|r| TreeRec { base: r.gen, ..r })),
    ];
    for (what, f) in cases {
        let r = crafted(&img, |s| {
            let id = label_id(s, "s1");
            put_record(s, f(record(s, id)));
        });
        assert!(any_says(&r, what), "{what}:\n{}", show(&r));
    }
    // A two-record succ cycle: s1 → s2 → s1.
    let r = crafted(&img, |s| {
        let (a, b) = (label_id(s, "s1"), label_id(s, "s2"));
        put_record(
            s,
            TreeRec {
                succ: a,
                ..record(s, b)
            },
        );
        put_record(
            s,
            TreeRec {
                pred: b,
                ..record(s, a)
            },
        );
    });
    assert!(any_says(&r, "cycle"), "{}", show(&r));
}

#[test]
fn generation_beyond_nextgen() {
    let img = image();
    let r = crafted(&img, |s| {
        let id = label_id(s, "s1");
        let rec = record(s, id);
        let root = Bptr {
            gen: Gen(1 << 50),
            ..rec.root
        };
        put_record(s, TreeRec { root, ..rec });
    });
    assert!(any_says(&r, "nextgen"), "{}", show(&r));
}

/// Rewrite both superblock copies with `f` (checksums recomputed).
fn rewrite_sb(dev: &MemDev, f: impl Fn(&mut crate::format::superblock::Superblock)) {
    let mut sb = read_superblock(dev, BlockAddr(0)).unwrap();
    f(&mut sb);
    let enc = sb.encode();
    dev.write_at(&enc[..], 0).unwrap();
    dev.write_at(&enc[..], sb_b_addr(dev.size()).0).unwrap();
}

#[test]
fn counters_at_or_below_values_in_use() {
    let img = image();
    let d = img.snapshot();
    rewrite_sb(&d, |sb| sb.nextgen = 4);
    let r = run(&d);
    assert!(has(&r, Kind::Superblock, "nextgen"), "{}", show(&r));
    let d = img.snapshot();
    rewrite_sb(&d, |sb| sb.nextqid = 2);
    let r = run(&d);
    assert!(any_says(&r, "next qid"), "{}", show(&r));
}

#[test]
fn label_names_with_slash_or_nul() {
    let img = image();
    for name in [&b"a/b"[..], b"x\0y", b"\xff"] {
        let r = crafted(&img, |s| {
            let id = label_id(s, "s1");
            let lv = LabelVal { id, flags: 0 };
            let m = Msg::insert(key::label(name), lv.encode());
            s.upsert(TreeId::SNAP, vec![m], Tier::Normal).unwrap();
        });
        assert!(any_says(&r, "label name"), "{name:?}:\n{}", show(&r));
    }
}

#[test]
fn a_damaged_redundant_superblock_is_a_problem() {
    let img = image();
    let d = img.snapshot();
    let b = sb_b_addr(d.size()).0;
    // A flipped byte past the checksum, and one under it.
    for off in [BLKSZ as u64 - 100, 40] {
        let d = d.snapshot();
        let mut x = [0u8; 1];
        d.read_at(&mut x, b + off).unwrap();
        d.write_at(&[x[0] ^ 0x20], b + off).unwrap();
        let r = run(&d);
        assert!(has(&r, Kind::Superblock, "damaged"), "{off}: {}", show(&r));
    }
}
