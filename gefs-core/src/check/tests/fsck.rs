//! The file-system checks: images made by the real file-system layer check
//! clean at every commit (mid-clear states included); each fault written
//! with raw upserts is reported with its kind, its tree and its block; and
//! the ownership rule for clobbered data pointers.

use std::sync::Arc;

use super::{run, show};
use crate::alloc::Tier;
use crate::check::{Kind, Report};
use crate::device::MemDev;
use crate::format::key::{self, ROOT_PQID};
use crate::format::msg::{Msg, Op};
use crate::format::value::{Xdir, DMDIR};
use crate::format::Encode;
use crate::format::{Bptr, BLKSZ, BLKSZ_U64};
use crate::fs::{Changes, Entry, Fs, Mount, Who, MAX_IO, ORDWR, OREAD};
use crate::snap::Snaps;
use crate::store::{Config, Store, TreeId};

const DEV: u64 = 96 << 20;

fn who() -> Who {
    Who::user(1)
}

fn format() -> Arc<MemDev> {
    let dev = Arc::new(MemDev::new(DEV));
    let opts = crate::testing::format_opts(16 << 20);
    drop(Store::format(dev.clone(), &opts).unwrap());
    dev
}

fn open(dev: &Arc<MemDev>) -> Fs {
    let cfg = Config {
        cache_bytes: 16 << 20,
        read_only: false,
    };
    let s = Arc::new(Store::open(dev.clone(), &cfg).unwrap());
    Fs::new(s, false).unwrap()
}

fn put(fs: &Fs, m: &Mount, dir: &Entry, name: &str, len: usize) -> Entry {
    let o = fs
        .create(m, dir, name.as_bytes(), 0o664, ORDWR, &who())
        .unwrap();
    let chunk: Vec<u8> = (0..MAX_IO).map(|i| (i % 251) as u8 + 1).collect();
    let mut off = 0;
    while off < len {
        let n = (len - off).min(MAX_IO);
        off += fs.write(&o, off as u64, &chunk[..n], &who()).unwrap();
    }
    fs.stat(m, o.entry()).unwrap()
}

fn mkdir(fs: &Fs, m: &Mount, dir: &Entry, name: &str) -> Entry {
    let o = fs
        .create(m, dir, name.as_bytes(), DMDIR | 0o775, OREAD, &who())
        .unwrap();
    fs.stat(m, o.entry()).unwrap()
}

fn clean(dev: &MemDev, what: &str) -> Report {
    let r = run(dev);
    assert!(r.problems.is_empty(), "{what}:\n{}", show(&r));
    r
}

/// Commit, and check the committed image.
fn commit(fs: &Fs, dev: &MemDev, what: &str) {
    fs.store().sync().unwrap();
    clean(dev, what);
}

#[test]
fn fs_images_check_clean_at_every_commit() {
    let dev = format();
    clean(&dev, "fresh");
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let a = mkdir(&fs, &m, &root, "a");
    let b = mkdir(&fs, &m, &a, "b");
    let small = put(&fs, &m, &b, "small", 100);
    let mid = put(&fs, &m, &a, "mid", 5 * BLKSZ + 7);
    commit(&fs, &dev, "tree of dirs and files");
    // Truncate down and up, rename a file and a directory.
    let shrink = Changes {
        length: Some(BLKSZ_U64 + 1),
        ..Changes::default()
    };
    let mid = fs.wstat(&m, &mid, &shrink, &who()).unwrap();
    commit(&fs, &dev, "after a shrinking truncate, clear pending");
    fs.sweep(usize::MAX).unwrap();
    commit(&fs, &dev, "after the truncate's clear");
    let grow = Changes {
        length: Some(9 * BLKSZ_U64),
        ..Changes::default()
    };
    let mid = fs.wstat(&m, &mid, &grow, &who()).unwrap();
    let rename = |to: &str| Changes {
        name: Some(to.as_bytes().to_vec()),
        ..Changes::default()
    };
    let mid = fs.wstat(&m, &mid, &rename("mid2"), &who()).unwrap();
    let b = fs.wstat(&m, &b, &rename("b2"), &who()).unwrap();
    commit(&fs, &dev, "after grow and renames");
    Snaps::new(fs.store())
        .take("main", "monday", false)
        .unwrap();
    commit(&fs, &dev, "after a snapshot");
    // A big file removed, committed with most of its clear pending.
    let big = put(&fs, &m, &root, "big", 1200 * BLKSZ);
    commit(&fs, &dev, "with a big file");
    fs.remove(&m, &big, &who()).unwrap();
    commit(&fs, &dev, "big file removed, nothing cleared");
    assert!(fs.sweep(1).unwrap(), "a 1200-block clear takes steps");
    commit(&fs, &dev, "big file removed, partly cleared");
    // Remove the rest, then drain.
    let small = fs.stat(&m, &small).unwrap();
    fs.remove(&m, &small, &who()).unwrap();
    fs.remove(&m, &mid, &who()).unwrap();
    commit(&fs, &dev, "files removed");
    fs.remove(&m, &b, &who()).unwrap();
    commit(&fs, &dev, "directory removed");
    while fs.sweep(3).unwrap() {
        commit(&fs, &dev, "clearing");
    }
    let r = clean(&dev, "all clears done");
    let names: Vec<&str> = r
        .trees
        .iter()
        .flat_map(|t| &t.labels)
        .map(String::as_str)
        .collect();
    assert!(names.contains(&"monday"), "{names:?}");
    drop((m, root, a));
    fs.sync().unwrap();
    drop(fs);
    clean(&dev, "closed");
}

/// A clean image with a directory `d` holding a 3-block file `f`; the open
/// file system, the mount, and `d` and `f`.
struct Img {
    dev: Arc<MemDev>,
    fs: Fs,
    m: Mount,
    d: Entry,
    f: Entry,
}

fn img() -> Img {
    let dev = format();
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let d = mkdir(&fs, &m, &root, "d");
    let f = put(&fs, &m, &d, "f", 3 * BLKSZ);
    fs.store().sync().unwrap();
    clean(&dev, "before the fault");
    Img { dev, fs, m, d, f }
}

impl Img {
    fn data(&self, qid: u64) -> Bptr {
        self.fs
            .store()
            .write_data(self.m.tree(), qid, true, Tier::Normal, |b| b[0] = 1)
            .unwrap()
    }

    /// Upsert `msgs` into `main`, commit, and check.
    fn fault(&self, msgs: Vec<Msg>) -> Report {
        let s = self.fs.store();
        s.upsert(self.m.tree(), msgs, Tier::Normal).unwrap();
        s.sync().unwrap();
        run(&*self.dev)
    }
}

fn file(qid: u64, length: u64) -> Vec<u8> {
    Xdir {
        qid_path: qid,
        mode: 0o644,
        length,
        ..Xdir::default()
    }
    .encode()
}

fn dir(qid: u64) -> Vec<u8> {
    Xdir {
        qid_path: qid,
        qid_type: (DMDIR >> 24) as u8,
        mode: DMDIR | 0o775,
        ..Xdir::default()
    }
    .encode()
}

/// Exactly the findings of `kinds` (in any order, repeats allowed), each
/// in `main` and naming a block.
fn only(r: &Report, kinds: &[Kind]) {
    assert!(!r.problems.is_empty(), "no findings");
    for p in &r.problems {
        assert!(kinds.contains(&p.kind), "{}", show(r));
        assert!(p.owner.contains("\"main\""), "{}", show(r));
        assert!(p.addr.is_some(), "{}", show(r));
    }
}

#[test]
fn two_entries_with_one_qid() {
    let i = img();
    let q = i.f.dir.qid_path;
    let r = i.fault(vec![Msg::insert(
        key::ent(i.d.dir.qid_path, b"g"),
        file(q, 0),
    )]);
    only(&r, &[Kind::Qid]);
    assert!(r.problems[0].what.contains("also the qid"), "{}", show(&r));
}

#[test]
fn qid_not_below_nextqid() {
    let i = img();
    let q = i.fs.store().next_qid() + 1000;
    let r = i.fault(vec![Msg::insert(
        key::ent(i.d.dir.qid_path, b"g"),
        file(q, 0),
    )]);
    only(&r, &[Kind::Qid]);
}

#[test]
fn uplink_pointing_nowhere() {
    let i = img();
    let q = i.fs.store().next_qid();
    let r = i.fault(vec![Msg::insert(key::up(q), key::ent(0, b"nothere"))]);
    only(&r, &[Kind::Uplink]);
}

#[test]
fn uplink_naming_another_entry() {
    let i = img();
    let q = i.d.dir.qid_path;
    let r = i.fault(vec![Msg::insert(key::up(q), key::ent(0, b"other"))]);
    only(&r, &[Kind::Uplink]);
}

#[test]
fn directory_without_uplink() {
    let i = img();
    let q = i.fs.store().next_qid();
    let r = i.fault(vec![Msg::insert(key::ent(0, b"d2"), dir(q))]);
    only(&r, &[Kind::Uplink]);
    let r = i.fault(vec![Msg::bare(Op::Clobber, key::up(i.d.dir.qid_path))]);
    assert!(
        r.problems.iter().any(|p| p.what.contains("\"d\"")),
        "{}",
        show(&r)
    );
}

#[test]
fn data_key_under_a_directory() {
    let i = img();
    let q = i.d.dir.qid_path;
    let bp = i.data(q);
    let r = i.fault(vec![Msg::insert(key::dat(q, 0), bp.to_bytes().to_vec())]);
    only(&r, &[Kind::DataKey]);
    assert!(r.problems[0].what.contains("directory"), "{}", show(&r));
}

#[test]
fn data_past_eof_without_a_note() {
    let i = img();
    let q = i.f.dir.qid_path;
    let bp = i.data(q);
    let k = key::dat(q, 7 * BLKSZ_U64);
    let r = i.fault(vec![Msg::insert(k.clone(), bp.to_bytes().to_vec())]);
    only(&r, &[Kind::DataKey]);
    // A note from below that offset covers it (a pending truncate).
    let note = |v: u64| Msg::insert(key::clear(q), v.to_be_bytes().to_vec());
    let r = i.fault(vec![note(3 * BLKSZ_U64)]);
    assert!(r.problems.is_empty(), "{}", show(&r));
    // A note above it does not; a note below the file's length is wrong.
    let r = i.fault(vec![note(8 * BLKSZ_U64)]);
    only(&r, &[Kind::DataKey]);
    let r = i.fault(vec![note(BLKSZ_U64)]);
    only(&r, &[Kind::DataKey]);
    assert!(r.problems[0].what.contains("live data"), "{}", show(&r));
}

#[test]
fn data_of_no_file_and_misaligned_data() {
    let i = img();
    let q = i.fs.store().next_qid();
    let bp = i.data(q);
    let r = i.fault(vec![Msg::insert(key::dat(q, 0), bp.to_bytes().to_vec())]);
    only(&r, &[Kind::DataKey]);
    let r = i.fault(vec![Msg::insert(key::clear(q), vec![0; 8])]);
    assert!(
        r.problems.is_empty(),
        "a note covers a removed file's data: {}",
        show(&r)
    );
    let f = i.f.dir.qid_path;
    let bp = i.data(f);
    let r = i.fault(vec![Msg::insert(key::dat(f, 100), bp.to_bytes().to_vec())]);
    only(&r, &[Kind::DataKey]);
    assert!(r.problems[0].what.contains("aligned"), "{}", show(&r));
}

#[test]
fn entry_whose_parent_is_missing() {
    let i = img();
    let p = i.fs.store().next_qid();
    let q = i.fs.store().next_qid();
    let r = i.fault(vec![Msg::insert(key::ent(p, b"orphan"), file(q, 0))]);
    only(&r, &[Kind::Entry]);
    // A parent that is a file is no better.
    let r = i.fault(vec![
        Msg::delete(key::ent(p, b"orphan")),
        Msg::insert(key::ent(i.f.dir.qid_path, b"under"), file(q, 0)),
    ]);
    only(&r, &[Kind::Entry]);
}

#[test]
fn bad_names_root_marker_and_cycles() {
    let i = img();
    let d = i.d.dir.qid_path;
    for name in [&b"a/b"[..], b"..", b"x\x01", &[b'n'; 245]] {
        let q = i.fs.store().next_qid();
        let r = i.fault(vec![Msg::insert(key::ent(d, name), file(q, 0))]);
        only(&r, &[Kind::Entry]);
        i.fault(vec![Msg::delete(key::ent(d, name))]);
    }
    let q = i.fs.store().next_qid();
    let r = i.fault(vec![Msg::insert(key::ent(ROOT_PQID, b"x"), file(q, 0))]);
    only(&r, &[Kind::Entry]);
    i.fault(vec![Msg::delete(key::ent(ROOT_PQID, b"x"))]);
    // Two directories, each the other's parent: unreachable from the root.
    let (a, b) = (i.fs.store().next_qid(), i.fs.store().next_qid());
    let r = i.fault(vec![
        Msg::insert(key::ent(b, b"a"), dir(a)),
        Msg::insert(key::up(a), key::ent(b, b"a")),
        Msg::insert(key::ent(a, b"b"), dir(b)),
        Msg::insert(key::up(b), key::ent(a, b"b")),
    ]);
    only(&r, &[Kind::Entry]);
    assert_eq!(r.problems.len(), 1, "one cycle, once: {}", show(&r));
}

#[test]
fn missing_root_entry() {
    let i = img();
    let r = i.fault(vec![Msg::delete(key::ent(ROOT_PQID, b""))]);
    only(&r, &[Kind::Entry, Kind::Uplink]);
    assert!(
        r.problems.iter().any(|p| p.what.contains("no root entry")),
        "{}",
        show(&r)
    );
}

#[test]
fn malformed_clear_notes_and_entries() {
    let i = img();
    let q = i.f.dir.qid_path;
    let r = i.fault(vec![Msg::insert(key::clear(q), vec![1, 2, 3, 4])]);
    only(&r, &[Kind::Value]);
    let r = i.fault(vec![Msg::insert(
        key::clear(q),
        100u64.to_be_bytes().to_vec(),
    )]);
    only(&r, &[Kind::Value]);
    i.fault(vec![Msg::delete(key::clear(q))]);
    let r = i.fault(vec![Msg::insert(key::ent(0, b"junk"), vec![1; 10])]);
    only(&r, &[Kind::Value]);
}

/// A fault in a snapshot is reported in the snapshot's tree, not in
/// `main`, which was repaired after the snapshot was taken.
#[test]
fn faults_are_reported_in_their_tree() {
    let i = img();
    let q = i.fs.store().next_qid();
    i.fault(vec![Msg::insert(key::up(q), key::ent(0, b"nothere"))]);
    Snaps::new(i.fs.store())
        .take("main", "frozen", false)
        .unwrap();
    let r = i.fault(vec![Msg::delete(key::up(q))]);
    assert_eq!(r.problems.len(), 1, "{}", show(&r));
    let p = &r.problems[0];
    assert_eq!(p.kind, Kind::Uplink);
    assert!(p.owner.contains("\"frozen\""), "{}", show(&r));
}

/// The tree `main` of a store whose root is a pivot, so that messages stay
/// buffered; the open store and a file qid with an entry.
fn buffered() -> (Arc<MemDev>, Store, TreeId, u64) {
    let dev = Arc::new(MemDev::new(64 << 20));
    let opts = crate::testing::format_opts(8 << 20);
    let s = Store::format(dev.clone(), &opts).unwrap();
    let t = s.mount("main").unwrap();
    for b in 0..10u64 {
        let msgs = (0..100)
            .map(|i| {
                Msg::insert(
                    key::conf(format!("c{:06}", b * 100 + i).as_bytes()),
                    vec![1; 100],
                )
            })
            .collect();
        s.upsert(t, msgs, Tier::Normal).unwrap();
    }
    let q = s.next_qid();
    let msgs = vec![Msg::insert(key::ent(0, b"f"), file(q, BLKSZ_U64))];
    s.upsert(t, msgs, Tier::Normal).unwrap();
    s.checkpoint().unwrap();
    s.sync().unwrap();
    (dev, s, t, q)
}

fn buffered_ptrs(s: &Store, t: TreeId) -> Vec<Bptr> {
    let mut out = Vec::new();
    s.with_reader(t, |ctx, root| {
        crate::tree::data_ptrs(ctx, root, |bp| {
            out.push(bp);
            Ok(())
        })
    })
    .unwrap();
    out
}

/// Insert(K→B1) buffered, then Clobber(K) with B1 released in the same
/// batch: B1 is free, and not owned — clean. The same without releasing B1:
/// an allocated block nothing owns is a leak.
#[test]
fn a_clobbered_buffered_insert_owns_nothing() {
    for release in [true, false] {
        let (dev, s, t, q) = buffered();
        let b1 = s
            .write_data(t, q, true, Tier::Normal, |b| b[0] = 1)
            .unwrap();
        let k = key::dat(q, 0);
        s.upsert(
            t,
            vec![Msg::insert(k.clone(), b1.to_bytes().to_vec())],
            Tier::Normal,
        )
        .unwrap();
        s.sync().unwrap();
        clean(&dev, "insert buffered");
        let clobber = vec![Msg::bare(Op::Clobber, k.clone())];
        if release {
            s.upsert_freeing(t, clobber, &[b1], Tier::Reserve).unwrap();
        } else {
            s.upsert(t, clobber, Tier::Reserve).unwrap();
        }
        s.sync().unwrap();
        assert_eq!(s.lookup(t, &k).unwrap(), None);
        assert!(
            buffered_ptrs(&s, t).contains(&b1),
            "the insert is still buffered"
        );
        let r = run(&*dev);
        if release {
            assert!(r.problems.is_empty(), "{}", show(&r));
        } else {
            assert_eq!(r.problems.len(), 1, "{}", show(&r));
            let p = &r.problems[0];
            assert_eq!((p.kind, p.addr), (Kind::Leak, Some(b1.addr.0)));
        }
    }
}

/// A buffered insert replaced by a later buffered insert is owned once a
/// commit has logged it (the tree frees it when the messages reach the
/// leaf; replaced before any log holds it, it is freed at once,
/// `store/overwrite.rs`): both blocks must stay allocated, and freeing the
/// first is reported.
#[test]
fn a_replaced_buffered_insert_is_owned() {
    let (dev, s, t, q) = buffered();
    let k = key::dat(q, 0);
    let mut bps = Vec::new();
    for i in 0..2u8 {
        let bp = s
            .write_data(t, q, true, Tier::Normal, |b| b[0] = i)
            .unwrap();
        s.upsert(
            t,
            vec![Msg::insert(k.clone(), bp.to_bytes().to_vec())],
            Tier::Normal,
        )
        .unwrap();
        bps.push(bp);
        s.sync().unwrap();
    }
    let r = clean(&dev, "two inserts buffered");
    let main = r.trees.iter().find(|t| t.labels == ["main"]).unwrap();
    assert_eq!(main.data_blocks, 2);
    drop(s);
    let bad = dev.snapshot();
    super::image::log_free(&bad, bps[0].addr);
    let r = run(&bad);
    assert_eq!(r.problems.len(), 1, "{}", show(&r));
    assert_eq!(
        (r.problems[0].kind, r.problems[0].addr),
        (Kind::ReachableFree, Some(bps[0].addr.0))
    );
}
