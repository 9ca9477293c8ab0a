//! Damaged blocks are mapped to the files they take with them: a data
//! block to its file and bytes, in every snapshot that shares it; a leaf
//! to the files whose data it holds.

use std::sync::Arc;

use super::run;
use crate::check::Kind;
use crate::device::{Device, MemDev};
use crate::format::value::DMDIR;
use crate::format::{key, Bptr, BLKSZ};
use crate::fs::{Fs, Who, MAX_IO, ORDWR, OREAD};
use crate::snap::Snaps;

fn image() -> (Arc<MemDev>, Fs) {
    crate::testing::fresh_fs(48 << 20, 8 << 20)
}

/// `/home/x/report.pdf` of 100 KiB in main, snapshot `monday` of it; the
/// file's qid and the address of its second data block.
fn populate(fs: &Fs) -> (u64, Bptr) {
    let who = Who::user(1);
    let (m, root) = fs.attach("main").unwrap();
    let mk = |dir, name: &str| {
        let o = fs
            .create(&m, dir, name.as_bytes(), DMDIR | 0o775, OREAD, &who)
            .unwrap();
        o.entry().clone()
    };
    let home = mk(&root, "home");
    let x = mk(&home, "x");
    let o = fs
        .create(&m, &x, b"report.pdf", 0o664, ORDWR, &who)
        .unwrap();
    let data = vec![7u8; 100 << 10];
    let mut off = 0;
    while off < data.len() {
        let n = (data.len() - off).min(MAX_IO);
        off += fs.write(&o, off as u64, &data[off..off + n], &who).unwrap();
    }
    let qid = o.entry().dir.qid_path;
    drop(o);
    fs.sync().unwrap();
    Snaps::new(fs.store())
        .take("main", "monday", false)
        .unwrap();
    fs.sync().unwrap();
    let v = fs
        .store()
        .lookup(m.tree(), &key::dat(qid, BLKSZ as u64))
        .unwrap()
        .unwrap();
    (qid, Bptr::from_slice(&v).unwrap())
}

#[test]
fn a_damaged_data_block_names_its_file_in_every_snapshot() {
    let (dev, fs) = image();
    let (_, bp) = populate(&fs);
    drop(fs);
    dev.write_at(&[0xee; 8], bp.addr.0 + 100).unwrap();
    let r = run(&*dev);
    let files: Vec<&String> = r
        .problems
        .iter()
        .filter(|p| p.kind == Kind::Hash && p.addr == Some(bp.addr.0))
        .flat_map(|p| &p.files)
        .collect();
    for want in [
        "snapshot main: /home/x/report.pdf, bytes 16384–32767",
        "snapshot monday: /home/x/report.pdf, bytes 16384–32767",
    ] {
        assert!(
            files.iter().any(|f| *f == want),
            "{want:?} not in {files:?}"
        );
    }
}

#[test]
fn a_damaged_leaf_names_the_files_it_held() {
    let (dev, fs) = image();
    let who = Who::user(1);
    let (m, root) = fs.attach("main").unwrap();
    // 150 files of 4 blocks: their data keys fill more than one leaf, and
    // their entries sort after all data keys, in other leaves.
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o775, OREAD, &who)
        .unwrap()
        .entry()
        .clone();
    for i in 0..150 {
        let o = fs
            .create(&m, &d, format!("f{i}").as_bytes(), 0o664, ORDWR, &who)
            .unwrap();
        fs.write(&o, 0, &vec![1u8; 4 * BLKSZ], &who).unwrap();
    }
    drop(m);
    // The data keys in leaves, not in the message log.
    fs.store().checkpoint().unwrap();
    fs.sync().unwrap();
    Snaps::new(fs.store())
        .take("main", "monday", false)
        .unwrap();
    fs.sync().unwrap();
    let levels = crate::dump::tree_levels(fs.store(), Some("main")).unwrap();
    let first = &levels.last().unwrap()[0];
    assert!(
        levels.len() > 1 && first.first.starts_with("dat "),
        "{levels:?}"
    );
    drop(fs);
    dev.write_at(&[0xee; 8], first.ptr.addr + 200).unwrap();
    let r = run(&*dev);
    let files: Vec<&String> = r
        .problems
        .iter()
        .filter(|p| p.addr == Some(first.ptr.addr))
        .flat_map(|p| &p.files)
        .collect();
    for want in [
        "snapshot main: /d/f0, bytes 0–65535",
        "snapshot monday: /d/f0, bytes 0–65535",
    ] {
        assert!(
            files.iter().any(|f| *f == want),
            "{want:?} not in {files:?}"
        );
    }
    assert!(!files.iter().any(|f| f.contains("/d/f149")), "{files:?}");
}
