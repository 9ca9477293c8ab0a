//! Images of older format versions (FORMAT.md §3 "Version semantics" and
//! FORMAT.md §12):
//! a version-1 or version-2 image — 72-byte snapshot records, no message
//! logs — opens in this build, checks clean with `gefs-check`, reads back
//! through `gefs-dump`, and its next commit records the current version and stays
//! clean; a version newer than this build's is refused with a clear error.
//!
//! The old image is made by this build and then written down: every
//! snapshot record cut to its first 72 bytes (after the write buffers were
//! applied, so no tree has a log), and both superblock copies given the old
//! version number with their checksums recomputed.

use std::path::Path;
use std::sync::Arc;

use gefs_core::device::{Device, FileDev, OpenMode};
use gefs_core::format::key::{self, KSNAP};
use gefs_core::format::msg::Msg;
use gefs_core::format::superblock::Superblock;
use gefs_core::format::value::TreeRec;
use gefs_core::format::Decode;
use gefs_core::format::{block_hash, BLKSZ, FORMAT_VERSION};
use gefs_core::fs::Fs;
use gefs_core::store::{Config, Store, TreeId};
use gefs_tests::cli::{bin, code, ok, open_image};
use gefs_tests::craft::{self, adm, populated};

/// Both superblock copies of `dev`: (offset, bytes).
fn superblocks(dev: &FileDev) -> Vec<(u64, Vec<u8>)> {
    let mut a = vec![0u8; BLKSZ];
    dev.read_at(&mut a, 0).expect("read");
    let sb = Superblock::decode(&a, gefs_core::BlockAddr(0)).expect("superblock");
    let at = sb.geometry.sb_b().0;
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, at).expect("read");
    vec![(0, a), (at, b)]
}

/// The version both superblock copies of `img` record.
fn version(img: &Path) -> Vec<u32> {
    let dev = open_image(img, OpenMode::ReadOnly);
    superblocks(&dev)
        .iter()
        .map(|(_, b)| u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")))
        .collect()
}

/// Give both superblock copies of `img` version `v`, checksums recomputed.
fn set_version(img: &Path, v: u32) {
    let dev = open_image(img, OpenMode::ReadWrite);
    for (at, mut b) in superblocks(&dev) {
        b[8..12].copy_from_slice(&v.to_be_bytes());
        let narena = u32::from_be_bytes(b[16..20].try_into().expect("4 bytes"));
        let len = Superblock::encoded_len(narena) - 8;
        let h = block_hash(&b[..len]).to_be_bytes();
        b[len..len + 8].copy_from_slice(&h);
        dev.write_at(&b, at).expect("write");
    }
    dev.flush().expect("flush");
}

/// An image as version `v` (< 3) wrote it, at `img`.
fn old_image(img: &Path, v: u32) {
    let fs = populated(img);
    let s = fs.store();
    // Every tree's write buffer applied (a tree is read, and so replayed
    // and applied, only while mounted).
    let trees: Vec<TreeId> = s
        .labels()
        .expect("labels")
        .iter()
        .map(|l| s.mount(&l.name).expect("mount"))
        .collect();
    s.checkpoint().expect("checkpoint");
    s.sync().expect("sync");
    let recs = s
        .scan(
            TreeId::SNAP,
            std::ops::Bound::Included(&[KSNAP][..]),
            std::ops::Bound::Excluded(&[KSNAP + 1][..]),
            10_000,
        )
        .expect("scan");
    assert!(recs.len() >= 3, "{} snapshot records", recs.len());
    let mut cut = Vec::new();
    for (k, val) in recs {
        assert_eq!(val.len(), TreeRec::SIZE);
        let r = TreeRec::decode(&val).expect("record");
        assert!(r.log.is_none(), "a tree kept a message log after the apply");
        cut.push(Msg::insert(k, val[..TreeRec::SIZE_V1].to_vec()));
    }
    for t in trees {
        s.unmount(t);
    }
    craft::raw_snap(s, cut);
    fs.sync().expect("sync");
    drop(fs);
    set_version(img, v);
}

fn gefs_check(img: &Path) -> (Option<i32>, String) {
    code(bin("gefs-check").arg(img))
}

#[test]
fn version_1_and_2_images_open_check_and_upgrade() {
    for v in [1u32, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("old.img");
        old_image(&img, v);
        assert_eq!(version(&img), [v, v]);
        let (c, out) = gefs_check(&img);
        assert_eq!(c, Some(0), "version {v}: gefs-check: {out}");
        let a = ok(bin("gefs-dump").arg(&img).args(["cat", "main", "/a"]));
        assert_eq!(a, "abc", "version {v}");
        // The records read as 72 bytes: no log, node count unknown.
        {
            let dev = Arc::new(open_image(&img, OpenMode::ReadOnly));
            let cfg = Config {
                cache_bytes: 16 << 20,
                read_only: true,
            };
            let s = Store::open(dev, &cfg).expect("open");
            let id = s
                .labels()
                .expect("labels")
                .into_iter()
                .find(|l| l.name == "main")
                .expect("main")
                .id;
            let raw = s
                .lookup(TreeId::SNAP, &key::snap(id))
                .expect("lookup")
                .expect("record");
            assert_eq!(raw.len(), TreeRec::SIZE_V1, "version {v}");
            let r = TreeRec::decode(&raw).expect("decode");
            assert!(r.log.is_none());
            assert_eq!(r.nodes, TreeRec::NODES_UNKNOWN);
        }
        // Change it: the next commit records this build's version, and
        // the trees carry on without a node count (and with logs).
        {
            let dev = Arc::new(open_image(&img, OpenMode::ReadWrite));
            let cfg = Config {
                cache_bytes: 16 << 20,
                read_only: false,
            };
            let fs = Fs::new(Arc::new(Store::open(dev, &cfg).expect("open")), false).expect("fs");
            let who = adm(&fs);
            let (m, root) = fs.attach("main").expect("attach");
            for i in 0..40 {
                let name = format!("new{i:02}");
                craft::file(&fs, &m, &root, name.as_bytes(), name.as_bytes(), &who);
                if i % 10 == 9 {
                    fs.sync().expect("sync");
                }
            }
            fs.store().checkpoint().expect("checkpoint");
            craft::file(&fs, &m, &root, b"last", b"logged", &who);
            drop((m, root));
            fs.sync().expect("sync");
        }
        assert_eq!(version(&img), [FORMAT_VERSION, FORMAT_VERSION]);
        let (c, out) = gefs_check(&img);
        assert_eq!(c, Some(0), "version {v} upgraded: gefs-check: {out}");
        for (path, want) in [("/a", "abc"), ("/new17", "new17"), ("/last", "logged")] {
            let got = ok(bin("gefs-dump").arg(&img).args(["cat", "main", path]));
            assert_eq!(got, want, "version {v} upgraded: {path}");
        }
    }
}

#[test]
fn a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("new.img");
    drop(populated(&img));
    set_version(&img, FORMAT_VERSION + 1);
    let (c, out) = gefs_check(&img);
    assert_ne!(
        c,
        Some(0),
        "gefs-check accepted version {}",
        FORMAT_VERSION + 1
    );
    let want = format!("unsupported format version {}", FORMAT_VERSION + 1);
    assert!(out.contains(&want), "gefs-check said: {out}");
    let dev = Arc::new(open_image(&img, OpenMode::ReadOnly));
    let cfg = Config {
        cache_bytes: 16 << 20,
        read_only: true,
    };
    match Store::open(dev, &cfg) {
        Ok(_) => panic!("a version-{} image opened", FORMAT_VERSION + 1),
        Err(e) => assert!(e.to_string().contains(&want), "{e}"),
    }
}
