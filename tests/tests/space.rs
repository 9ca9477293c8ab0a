//! T8 and space accounting at the file-system level: fill a device to the
//! clean "file system full" error, then delete files and snapshots — which
//! must still work, through the reserve — and get the space back; and fill,
//! snapshot, overwrite and delete in several orders until nothing is left,
//! when the used space must be what a fresh image uses, and the checker
//! must find no leak and no double free.

use std::sync::Arc;

use gefs_core::device::MemDev;
use gefs_core::fs::{Changes, Error as FsError};
use gefs_core::store::Store;
use gefs_tests::fsmodel::{FsOp, Image, Session};

const MIB: usize = 1 << 20;

fn session(size: u64) -> (Arc<MemDev>, Session) {
    let dev = Arc::new(MemDev::new(size));
    let opts = gefs_core::testing::format_opts(8 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let s = Session::open(dev.clone(), Image::default()).expect("open");
    (dev, s)
}

fn free(s: &Session) -> u64 {
    s.fs.store().allocator().free_blocks()
}

fn sync(s: &mut Session) {
    s.apply(&FsOp::Sync).expect("sync");
}

fn clean(dev: &MemDev) {
    let p = gefs_tests::checker::problems(dev);
    assert!(p.is_empty(), "{p:?}");
}

/// Write 1 MiB files until the device is full; returns how many fit.
fn fill(s: &mut Session, tag: &str) -> usize {
    let mut n = 0;
    loop {
        let path = format!("{tag}{n}");
        s.apply(&FsOp::Create(path.clone())).expect("create");
        let r = s.apply(&FsOp::Write {
            path: path.clone(),
            off: 0,
            len: MIB,
            byte: n as u8,
        });
        match r {
            Ok(()) => n += 1,
            Err(e) => {
                assert!(
                    e.contains(&FsError::NoSpace.to_string()),
                    "not a clean full error: {e}"
                );
                // The failed write changed nothing; the empty file stays.
                s.apply(&FsOp::Remove(path))
                    .expect("remove on a full device");
                return n;
            }
        }
    }
}

#[test]
fn full_device_deletes_and_gets_its_space_back() {
    let (dev, mut s) = session(128 << 20);
    sync(&mut s);
    let fresh = free(&s);
    for cycle in 0..3 {
        let n = fill(&mut s, &format!("c{cycle}f"));
        assert!(n >= 80, "cycle {cycle}: only {n} MiB fit in 128 MiB");
        assert!(
            !s.fs.store().is_read_only(),
            "a full device must stay writable"
        );
        // A snapshot on a full device, then delete everything.
        s.apply(&FsOp::Snap(format!("full{cycle}")))
            .expect("snapshot on a full device");
        sync(&mut s);
        let low = free(&s);
        for i in 0..n {
            s.apply(&FsOp::Remove(format!("c{cycle}f{i}")))
                .expect("remove on a full device");
        }
        s.apply(&FsOp::DelSnap(format!("full{cycle}")))
            .expect("delete a snapshot on a full device");
        for _ in 0..3 {
            sync(&mut s);
        }
        let back = free(&s) - low;
        let deleted = (n * MIB / 16384) as u64;
        println!("space: cycle {cycle}: {n} MiB written, {back} of {deleted} blocks back");
        assert!(
            back * 100 >= deleted * 95,
            "cycle {cycle}: {back} of {deleted} blocks back"
        );
        assert!(
            free(&s) + 64 >= fresh,
            "cycle {cycle}: {} free, {fresh} when fresh",
            free(&s)
        );
    }
    drop(s);
    clean(&dev);
}

#[test]
fn every_order_of_deletion_returns_to_a_fresh_image() {
    let orders: [&[&str]; 4] = [
        &["files", "s1", "s2"],
        &["s2", "s1", "files"],
        &["s1", "files", "s2"],
        &["s2", "files", "s1"],
    ];
    for order in orders {
        let (dev, mut s) = session(96 << 20);
        sync(&mut s);
        let fresh = free(&s);
        s.apply(&FsOp::Mkdir("d".into())).expect("mkdir");
        for i in 0..8 {
            let p = format!("d/f{i}");
            s.apply(&FsOp::Create(p.clone())).expect("create");
            s.apply(&FsOp::Write {
                path: p,
                off: 0,
                len: 300_000,
                byte: 1,
            })
            .expect("write");
        }
        sync(&mut s);
        s.apply(&FsOp::Snap("s1".into())).expect("snap");
        for i in 0..8 {
            // Overwrite half of each file, grow some, shrink others.
            let p = format!("d/f{i}");
            s.apply(&FsOp::Write {
                path: p.clone(),
                off: 100_000,
                len: 150_000,
                byte: 2,
            })
            .expect("overwrite");
            if i % 2 == 0 {
                s.apply(&FsOp::Truncate {
                    path: p,
                    len: 40_000,
                })
                .expect("truncate");
            }
        }
        sync(&mut s);
        s.apply(&FsOp::Snap("s2".into())).expect("snap");
        for i in 0..4 {
            s.apply(&FsOp::Write {
                path: format!("d/f{i}"),
                off: 0,
                len: 500_000,
                byte: 3,
            })
            .expect("rewrite");
        }
        sync(&mut s);
        clean(&dev);
        for step in order {
            match *step {
                "files" => {
                    for i in 0..8 {
                        s.apply(&FsOp::Remove(format!("d/f{i}"))).expect("remove");
                    }
                    s.apply(&FsOp::Remove("d".into())).expect("rmdir");
                }
                snap => s
                    .apply(&FsOp::DelSnap(snap.into()))
                    .expect("delete snapshot"),
            }
            sync(&mut s);
            clean(&dev);
        }
        for _ in 0..2 {
            sync(&mut s);
        }
        let now = free(&s);
        println!("space: order {order:?}: {now} free, {fresh} when fresh");
        assert!(
            now + 16 >= fresh,
            "order {order:?}: {now} free, {fresh} when fresh"
        );
        let _ = Changes::default();
        drop(s);
        clean(&dev);
    }
}
