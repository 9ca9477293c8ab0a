//! File-system tests: basics here; regressions, permissions, space and the
//! model test in their own files.

mod commit_race;
mod format;
mod model;
mod perm;
mod posix;
mod regress;
mod space;

use std::sync::Arc;

use super::*;
use crate::device::MemDev;
use crate::format::value::{Xdir, DMAPPEND, DMDIR};
use crate::format::{BLKSZ, BLKSZ_U64};

/// Device size for most tests.
pub(super) const DEV: u64 = 96 << 20;
/// glenda's uid in the default table.
pub(super) const GLENDA: i32 = 1;

/// A freshly formatted device.
pub(super) fn format(size: u64) -> Arc<MemDev> {
    crate::testing::fresh_dev(size, 16 << 20)
}

/// Open the file system on `dev`.
pub(super) fn open(dev: &Arc<MemDev>) -> Fs {
    crate::testing::open_fs(dev, 16 << 20)
}

/// glenda, not permissive.
pub(super) fn glenda() -> Who {
    Who::user(GLENDA)
}

/// Walk a slash-separated path from the root.
pub(super) fn walk_path(fs: &Fs, m: &Mount, root: &Entry, path: &str, who: &Who) -> Result<Entry> {
    let mut e = root.clone();
    for el in path.split('/').filter(|s| !s.is_empty()) {
        e = fs.walk(m, &e, el.as_bytes(), who)?;
    }
    Ok(e)
}

/// Create a file and write `data` into it.
pub(super) fn put(fs: &Fs, m: &Mount, dir: &Entry, name: &str, data: &[u8]) -> Entry {
    let o = fs
        .create(m, dir, name.as_bytes(), 0o664, ORDWR, &glenda())
        .unwrap();
    fs.write(&o, 0, data, &glenda()).unwrap();
    fs.stat(m, o.entry()).unwrap()
}

/// The whole contents of a file.
pub(super) fn get(fs: &Fs, m: &Mount, e: &Entry) -> Vec<u8> {
    let o = fs.open(m, e, OREAD, &glenda()).unwrap();
    let len = fs.stat(m, e).unwrap().dir.length as usize;
    let mut out = Vec::new();
    while out.len() < len {
        let chunk = fs.read(&o, out.len() as u64, MAX_IO).unwrap();
        assert!(!chunk.is_empty());
        out.extend_from_slice(&chunk);
    }
    out
}

/// Pseudo-random bytes.
pub(super) fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn create_write_read_walk_list() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    assert!(root.is_root() && root.is_dir());
    let g = glenda();
    let d = fs
        .create(&m, &root, b"dir", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    let data = bytes(1, 40_000);
    let f = put(&fs, &m, d.entry(), "f", &data);
    assert_eq!(f.dir.length, 40_000);
    assert_eq!(f.parent, d.entry().qid.path);
    let w = walk_path(&fs, &m, &root, "dir/f", &g).unwrap();
    assert_eq!(w.qid.path, f.qid.path);
    assert_eq!(get(&fs, &m, &w), data);
    let o = fs.open(&m, &w, OREAD, &g).unwrap();
    assert_eq!(fs.read(&o, 39_990, 100).unwrap(), &data[39_990..]);
    assert!(fs.read(&o, 50_000, 10).unwrap().is_empty());
    for n in ["b", "a", "c"] {
        put(&fs, &m, d.entry(), n, b"x");
    }
    let od = fs.open(&m, d.entry(), OREAD, &g).unwrap();
    let all: Vec<Vec<u8>> = fs
        .readdir(&od, None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        all,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"f".to_vec()]
    );
    let rest = fs.readdir(&od, Some(b"b"), 100).unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].name, b"c");
    // Survives a commit and reopen.
    fs.sync().unwrap();
    drop(fs);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let w = walk_path(&fs, &m, &root, "dir/f", &g).unwrap();
    assert_eq!(get(&fs, &m, &w), data);
    let up = fs.walk(&m, &w, b"..", &g);
    assert!(matches!(up, Err(Error::NotDir)), "{up:?}");
    let d = walk_path(&fs, &m, &root, "dir", &g).unwrap();
    let up = fs.walk(&m, &d, b"..", &g).unwrap();
    assert_eq!(up.qid.path, root.qid.path);
    assert!(fs.nodes.live() >= 3);
    drop((d, up, w, root));
    assert_eq!(fs.nodes.live(), 0, "nodes outlive their entries");
}

#[test]
fn holes_and_overwrites() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let o = fs.create(&m, &root, b"h", 0o664, ORDWR, &g).unwrap();
    fs.write(&o, 100_000, b"tail", &g).unwrap();
    let mut want = vec![0u8; 100_004];
    want[100_000..].copy_from_slice(b"tail");
    assert_eq!(get(&fs, &m, o.entry()), want);
    fs.write(&o, 5, b"head", &g).unwrap();
    want[5..9].copy_from_slice(b"head");
    assert_eq!(get(&fs, &m, o.entry()), want);
    let big = bytes(7, 3 * BLKSZ + 10);
    fs.write(&o, 16_000, &big, &g).unwrap();
    want[16_000..16_000 + big.len()].copy_from_slice(&big);
    assert_eq!(get(&fs, &m, o.entry()), want);
}

#[test]
fn append_only_files_write_at_the_end() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let o = fs
        .create(&m, &root, b"log", DMAPPEND | 0o664, OWRITE, &g)
        .unwrap();
    assert!(o.info().append);
    fs.write(&o, 0, b"one ", &g).unwrap();
    fs.write(&o, 0, b"two", &g).unwrap();
    assert_eq!(get(&fs, &m, o.entry()), b"one two");
    // OTRUNC is ignored for append-only files.
    let t = fs.open(&m, o.entry(), OWRITE | OTRUNC, &g).unwrap();
    assert!(!t.info().truncate);
    assert_eq!(fs.stat(&m, o.entry()).unwrap().dir.length, 7);
}

#[test]
fn renamed_and_removed_entries_are_seen_by_every_handle() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let a = put(&fs, &m, &root, "a", b"data");
    let other = fs.walk(&m, &root, b"a", &g).unwrap();
    let c = Changes {
        name: Some(b"b".to_vec()),
        ..Changes::default()
    };
    fs.wstat(&m, &a, &c, &g).unwrap();
    assert_eq!(fs.stat(&m, &other).unwrap().name, b"b");
    let o = fs.open(&m, &other, ORDWR, &g).unwrap();
    fs.write(&o, 4, b"more", &g).unwrap();
    assert_eq!(get(&fs, &m, &a), b"datamore");
    fs.remove(&m, &a, &g).unwrap();
    assert!(matches!(fs.stat(&m, &other), Err(Error::Gone)));
    assert!(matches!(fs.read(&o, 0, 10), Err(Error::Gone)));
    assert!(matches!(fs.write(&o, 0, b"x", &g), Err(Error::Gone)));
    assert!(matches!(fs.walk(&m, &root, b"b", &g), Err(Error::NotFound)));
    drop((o, other, a));
    while fs.sweep(16).unwrap() {}
    assert_eq!(fs.clears_pending(), 0);
}

#[test]
fn remove_checks_only_the_directorys_own_entries() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let a = fs
        .create(&m, &root, b"a", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    let b = fs
        .create(&m, &root, b"b", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    assert_eq!(b.entry().qid.path, a.entry().qid.path + 1);
    let z = fs
        .create(&m, &root, b"z", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    // Neighbours on both sides of a's key range hold entries.
    for n in ["!", "~~~~"] {
        put(&fs, &m, b.entry(), n, b"");
        put(&fs, &m, &root, n, b"");
    }
    drop(z);
    assert!(matches!(fs.remove(&m, b.entry(), &g), Err(Error::NotEmpty)));
    fs.remove(&m, a.entry(), &g).unwrap();
    let od = fs.open(&m, &root, OREAD, &g).unwrap();
    let names: Vec<_> = fs
        .readdir(&od, None, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        vec![
            b"!".to_vec(),
            b"b".to_vec(),
            b"z".to_vec(),
            b"~~~~".to_vec()
        ]
    );
}

#[test]
fn snapshots_are_read_only() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("empty").unwrap();
    assert!(!m.is_mutable());
    let r = fs.create(&m, &root, b"x", 0o664, OWRITE, &glenda());
    assert!(matches!(r, Err(Error::ReadOnly)), "{r:?}");
    let r = fs.open(&m, &root, OREAD, &glenda());
    assert!(r.is_ok());
}

/// A device failure is not a read-only file system: once a flush fails the
/// store latches and every change fails with [`crate::Error::Failed`] (EIO),
/// while a store opened read-only refuses changes with [`Error::ReadOnly`]
/// (EROFS) and has not failed.
#[test]
fn a_failed_device_is_not_a_read_only_store() {
    use crate::device::{FaultyDev, IoKind};
    use crate::store::{Config, Store};
    let dev = format(DEV);
    let fd = Arc::new(FaultyDev::new(dev.clone()));
    let cfg = |read_only| Config {
        cache_bytes: 16 << 20,
        read_only,
    };
    let fs = Fs::new(
        Arc::new(Store::open(fd.clone(), &cfg(false)).unwrap()),
        false,
    )
    .unwrap();
    let (m, root) = fs.attach("main").unwrap();
    put(&fs, &m, &root, "a", b"before");
    fd.fail_nth(IoKind::Flush, 1, false);
    let r = fs.sync();
    assert!(
        matches!(r, Err(Error::Store(crate::Error::Io { .. }))),
        "{r:?}"
    );
    assert!(fs.store().has_failed() && fs.store().is_read_only());
    let r = fs.create(&m, &root, b"b", 0o664, OWRITE, &glenda());
    let e = r.map(drop).unwrap_err();
    assert!(matches!(e, Error::Store(crate::Error::Failed)), "{e:?}");
    assert_eq!((e.message(), e.errno()), ("Input/output error", errno::EIO));
    assert!(matches!(fs.sync(), Err(Error::Store(crate::Error::Failed))));
    assert!(matches!(fs.store().sync(), Err(crate::Error::Failed)));
    let o = fs.open(
        &m,
        &fs.walk(&m, &root, b"a", &glenda()).unwrap(),
        OREAD,
        &glenda(),
    );
    assert_eq!(
        fs.read(&o.unwrap(), 0, 10).unwrap(),
        b"before",
        "reads go on"
    );
    drop((m, root, fs));

    let ro = Fs::new(
        Arc::new(Store::open(dev.clone(), &cfg(true)).unwrap()),
        false,
    )
    .unwrap();
    let (m, root) = ro.attach("main").unwrap();
    let e = ro
        .create(&m, &root, b"b", 0o664, OWRITE, &glenda())
        .map(drop)
        .unwrap_err();
    assert!(matches!(e, Error::ReadOnly), "{e:?}");
    assert_eq!(
        (e.message(), e.errno()),
        ("read only file system", errno::EROFS)
    );
    assert!(!ro.store().has_failed());
}

/// Readers and walkers racing a renamer never see a live file as gone: a
/// held entry follows the renames, and a walk that registers a node while a
/// rename runs re-checks the key.
/// Postmortem: a reader holding an entry that a rename moved looked it up under its old
/// key and reported it gone (an error on a file that was only renamed).
#[test]
fn readers_racing_renames_never_see_a_live_file_gone() {
    let dev = format(DEV);
    let fs = Arc::new(open(&dev));
    let (m, root) = fs.attach("main").unwrap();
    let held = put(&fs, &m, &root, "x", b"held");
    put(&fs, &m, &root, "p", b"walked");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Arc::new(std::sync::Barrier::new(2));
    let renamer = {
        let (fs, m, root, stop) = (fs.clone(), m.clone(), root.clone(), stop.clone());
        let start = start.clone();
        std::thread::spawn(move || {
            let g = Who::user(GLENDA);
            start.wait();
            for i in 0..1000 {
                let (a, b) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
                let (c, d) = if i % 2 == 0 { ("p", "q") } else { ("q", "p") };
                for (from, to) in [(a, b), (c, d)] {
                    let e = fs.walk(&m, &root, from.as_bytes(), &g).unwrap();
                    let ch = Changes {
                        name: Some(to.as_bytes().to_vec()),
                        ..Changes::default()
                    };
                    fs.wstat(&m, &e, &ch, &g).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let g = glenda();
    let o = fs.open(&m, &held, OREAD, &g).unwrap();
    let mut walked = 0;
    start.wait();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        assert_eq!(fs.read(&o, 0, 10).unwrap(), b"held");
        let st = fs.stat(&m, &held).unwrap();
        assert!(st.name == b"x" || st.name == b"y");
        for n in [&b"p"[..], b"q"] {
            if let Ok(e) = fs.walk(&m, &root, n, &g) {
                let st = fs.stat(&m, &e);
                assert!(st.is_ok(), "walked entry is gone: {st:?}");
                walked += 1;
            }
        }
    }
    renamer.join().unwrap();
    println!("{walked} walks raced the renames");
}
