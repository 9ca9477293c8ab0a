//! Regression tests, one per reference defect (§13.2), each opening with
//! what the reference does wrong.

use std::ops::Bound;
use std::sync::Arc;

use super::*;
use crate::alloc::Tier;
use crate::format::msg::{Msg, Op, Wstat};
use crate::format::Encode;

/// KDAT keys of `q` at or beyond `from`.
fn dat_keys(fs: &Fs, m: &Mount, q: u64, from: u64) -> Vec<u64> {
    let lo = key::dat(q, from);
    let hi = key::dat(q + 1, 0);
    fs.store()
        .scan(
            m.tree(),
            Bound::Included(&lo),
            Bound::Excluded(&hi),
            usize::MAX,
        )
        .unwrap()
        .into_iter()
        .map(|(k, _)| match key::KeyView::decode(&k) {
            Ok(key::KeyView::Dat { off, .. }) => off,
            _ => panic!("not a data key"),
        })
        .collect()
}

fn set_len(fs: &Fs, m: &Mount, e: &Entry, len: u64) {
    let c = Changes {
        length: Some(len),
        ..Changes::default()
    };
    fs.wstat(m, e, &c, &glenda()).unwrap();
}

/// #4: the reference's wstat truncate cleared from the unaligned new length,
/// so blocks past the new end were never freed and came back with their old
/// contents when the file was extended; the last block's tail was not
/// zeroed either.
#[test]
fn regress_04_truncate_frees_and_zeroes() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let f = put(&fs, &m, &root, "f", &vec![0xab; 5 * BLKSZ]);
    let q = f.qid.path;
    set_len(&fs, &m, &f, 20_000);
    while fs.sweep(8).unwrap() {}
    assert_eq!(dat_keys(&fs, &m, q, 0), vec![0, BLKSZ_U64]);
    set_len(&fs, &m, &f, 5 * BLKSZ_U64);
    let got = get(&fs, &m, &f);
    assert!(got[..20_000].iter().all(|&b| b == 0xab));
    assert!(
        got[20_000..].iter().all(|&b| b == 0),
        "stale data reappeared after truncate + extend"
    );
    // Without waiting for the sweeper, extending still shows zeros.
    set_len(&fs, &m, &f, 0);
    let o = fs.open(&m, &f, ORDWR, &glenda()).unwrap();
    fs.write(&o, 3 * BLKSZ_U64, b"x", &glenda()).unwrap();
    let got = get(&fs, &m, &f);
    assert_eq!(got.len(), 3 * BLKSZ + 1);
    assert!(got[..3 * BLKSZ].iter().all(|&b| b == 0));
}

/// Leftovers of a clear that a crash interrupted (keys past the end of
/// file, with no queued clear) never surface when the file grows.
#[test]
fn regress_04_crash_leftovers_past_eof_stay_invisible() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let f = put(&fs, &m, &root, "f", &vec![0xcd; 4 * BLKSZ]);
    set_len(&fs, &m, &f, 100);
    // Commit the length change but not the clear, then "crash".
    fs.store().sync().unwrap();
    drop((f, root, m, fs));
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let f = fs.walk(&m, &root, b"f", &glenda()).unwrap();
    assert_eq!(dat_keys(&fs, &m, f.qid.path, BLKSZ_U64).len(), 3);
    set_len(&fs, &m, &f, 4 * BLKSZ_U64);
    let got = get(&fs, &m, &f);
    assert!(got[..100].iter().all(|&b| b == 0xcd));
    assert!(got[100..].iter().all(|&b| b == 0));
    assert!(dat_keys(&fs, &m, f.qid.path, BLKSZ_U64).is_empty());
}

/// #5: the reference served reads on handles that were walked to but never
/// opened, bypassing read permission. Reads here need an [`Open`] made by
/// a checked open for reading.
#[test]
fn regress_05_reads_need_a_handle_opened_for_reading() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let f = put(&fs, &m, &root, "secret", b"shh");
    let c = Changes {
        mode: Some(0o200),
        ..Changes::default()
    };
    fs.wstat(&m, &f, &c, &glenda()).unwrap();
    let r = fs.open(&m, &f, OREAD, &glenda());
    assert!(matches!(r, Err(Error::Perm)), "{r:?}");
    let w = fs.open(&m, &f, OWRITE, &glenda()).unwrap();
    assert!(matches!(fs.read(&w, 0, 10), Err(Error::NotOpen)));
    let od = fs.open(&m, &root, OEXEC, &glenda()).unwrap();
    assert!(fs.readdir(&od, None, 10).is_ok());
    let ro = fs.open(&m, &f, OREAD, &Who::permissive(GLENDA)).unwrap();
    assert!(matches!(
        fs.write(&ro, 0, b"x", &glenda()),
        Err(Error::NotOpen)
    ));
}

/// #6: the reference had no directory-type checks: files could be created
/// under a file, and directories opened for writing or truncation.
#[test]
fn regress_06_directories_and_files_are_not_interchangeable() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let f = put(&fs, &m, &root, "f", b"x");
    let r = fs.create(&m, &f, b"under", 0o664, OREAD, &g);
    assert!(matches!(r, Err(Error::NotDir)), "{r:?}");
    assert!(matches!(fs.walk(&m, &f, b"x", &g), Err(Error::NotDir)));
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    let d = d.entry().clone();
    for mode in [OWRITE, ORDWR, OREAD | OTRUNC] {
        let r = fs.open(&m, &d, mode, &g);
        assert!(matches!(r, Err(Error::IsDir)), "mode {mode}: {r:?}");
    }
    let r = fs.create(&m, &root, b"d2", DMDIR | 0o775, OWRITE, &g);
    assert!(matches!(r, Err(Error::IsDir)), "{r:?}");
    let c = Changes {
        length: Some(10),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &d, &c, &g);
    assert!(
        matches!(r, Err(Error::Wstat(WstatRule::DirLength))),
        "{r:?}"
    );
    let c = Changes {
        mode: Some(0o664),
        ..Changes::default()
    };
    let r = fs.wstat(&m, &d, &c, &g);
    assert!(matches!(r, Err(Error::Wstat(WstatRule::DirBit))), "{r:?}");
    let od = fs.open(&m, &d, OREAD, &g).unwrap();
    assert!(matches!(fs.read(&od, 0, 10), Err(Error::IsDir)));
}

/// #7: the reference checked nothing about the parent when a file was
/// opened remove-on-close, so anyone who could open a file could delete it.
#[test]
fn regress_07_rclose_needs_write_on_the_parent() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o755, OREAD, &g)
        .unwrap();
    let f = put(&fs, &m, d.entry(), "f", b"x");
    let c = Changes {
        mode: Some(0o666),
        ..Changes::default()
    };
    fs.wstat(&m, &f, &c, &g).unwrap();
    let none = Who::user(0);
    assert!(fs.open(&m, &f, ORDWR, &none).is_ok());
    let r = fs.open(&m, &f, ORDWR | ORCLOSE, &none);
    assert!(matches!(r, Err(Error::Perm)), "{r:?}");
    let o = fs.open(&m, &f, OREAD | ORCLOSE, &g).unwrap();
    assert!(o.info().rclose);
}

/// #8: after a rename the reference's Dent name pointed into a freed
/// request buffer, so later stats showed garbage.
#[test]
fn regress_08_rename_then_stat_shows_the_new_name() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let f = put(&fs, &m, &root, "old", b"x");
    let d = fs
        .create(&m, &root, b"olddir", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    let inner = put(&fs, &m, d.entry(), "inner", b"y");
    for (e, new) in [(&f, "new"), (d.entry(), "newdir")] {
        let c = Changes {
            name: Some(new.as_bytes().to_vec()),
            ..Changes::default()
        };
        let after = fs.wstat(&m, e, &c, &g).unwrap();
        assert_eq!(after.name, new.as_bytes());
        for _ in 0..3 {
            assert_eq!(fs.stat(&m, e).unwrap().name, new.as_bytes());
        }
    }
    let w = walk_path(&fs, &m, &root, "newdir/inner", &g).unwrap();
    assert_eq!(w.qid.path, inner.qid.path);
    let up = fs.walk(&m, &w, b"..", &g);
    assert!(matches!(up, Err(Error::NotDir)));
    let nd = fs.walk(&m, &root, b"newdir", &g).unwrap();
    let inner2 = fs.walk(&m, &nd, b"inner", &g).unwrap();
    drop(inner2);
    let back = fs.walk(&m, &nd, b"..", &g).unwrap();
    assert!(back.is_root());
    assert!(matches!(
        fs.walk(&m, &root, b"olddir", &g),
        Err(Error::NotFound)
    ));
    let c = Changes {
        name: Some(b"newdir".to_vec()),
        ..Changes::default()
    };
    assert!(matches!(fs.wstat(&m, &f, &c, &g), Err(Error::Exists)));
}

/// #9: a stat of an entry whose gid is not in the users table failed with
/// "permission denied" (the fallback went to the wrong variable). Our stat
/// never looks the ids up; the table names an unknown group after
/// `nogroup` (or `none`).
#[test]
fn regress_09_unknown_gid_stats_cleanly() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let f = put(&fs, &m, &root, "f", b"x");
    let ws = Wstat {
        gid: Some(4242),
        ..Wstat::default()
    };
    let k = key::ent(root.qid.path, b"f");
    fs.store()
        .upsert(
            m.tree(),
            vec![Msg {
                op: Op::Wstat,
                key: k,
                val: ws.encode(),
            }],
            Tier::Normal,
        )
        .unwrap();
    let st = fs.stat(&m, &f).unwrap();
    assert_eq!(st.dir.gid, 4242);
    let users = fs.users();
    assert_eq!(users.group_name_of(4242), "none");
    assert_eq!(users.name_of(st.dir.uid), "glenda");
    super::perm::set_users(
        &fs,
        "-1:adm::glenda\n0:none::\n1:glenda:glenda:\n9999:nogroup::\n",
    );
    assert_eq!(fs.users().group_name_of(4242), "nogroup");
}

/// #13: orphan messages could surface as values. A truncate over holes
/// clears only keys that exist, and neither listings nor reads ever show
/// anything but what was written.
#[test]
fn regress_13_truncate_over_holes_never_surfaces_garbage() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let o = fs.create(&m, &root, b"sparse", 0o664, ORDWR, &g).unwrap();
    fs.write(&o, 0, b"a", &g).unwrap();
    fs.write(&o, 40 * BLKSZ_U64, b"b", &g).unwrap();
    set_len(&fs, &m, o.entry(), 20 * BLKSZ_U64 + 7);
    set_len(&fs, &m, o.entry(), 2);
    fs.sync().unwrap();
    set_len(&fs, &m, o.entry(), 60 * BLKSZ_U64);
    let got = get(&fs, &m, o.entry());
    assert_eq!(got[0], b'a');
    assert!(got[1..].iter().all(|&b| b == 0));
    let od = fs.open(&m, &root, OREAD, &g).unwrap();
    let names: Vec<_> = fs.readdir(&od, None, 100).unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].name, b"sparse");
    assert_eq!(names[0].dir.length, 60 * BLKSZ_U64);
    assert_eq!(dat_keys(&fs, &m, o.entry().qid.path, 0), vec![0]);
}

/// #14: the reference bumped `nextgen` outside the mutation lock when
/// readers attached, so concurrent attaches could share a working
/// generation. Attaches from many threads agree on each label's tree, and
/// different trees get different working generations.
#[test]
fn regress_14_concurrent_attaches_get_distinct_generations() {
    let dev = format(DEV);
    let fs = Arc::new(open(&dev));
    let labels = ["main", "adm", "empty"];
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for j in 0..30 {
                    let l = labels[(i + j) % 3];
                    let (m, root) = fs.attach(l).unwrap();
                    out.push((l, m.tree(), root.qid.path));
                }
                out
            })
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    for h in handles {
        for (l, t, q) in h.join().unwrap() {
            assert_eq!(*seen.entry(l).or_insert((t, q)), (t, q), "{l}");
        }
    }
    assert_eq!(seen.len(), 3);
    let mut gens = Vec::new();
    for l in ["main", "adm"] {
        let (t, _) = seen[l];
        let bp = fs
            .store()
            .write_data(t, 1, false, Tier::Normal, |_| {})
            .unwrap();
        gens.push(bp.gen);
        fs.store().discard_data(t, &bp).unwrap();
    }
    assert_ne!(gens[0], gens[1]);
}

/// #15: a 245-byte walk element passed the reference's length check and
/// aborted the server on a key-buffer assertion.
#[test]
fn regress_15_long_names_fail_cleanly() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let ok = vec![b'n'; names::MAX_NAME];
    let long = vec![b'n'; names::MAX_NAME + 1];
    assert!(matches!(fs.walk(&m, &root, &ok, &g), Err(Error::NotFound)));
    for n in [&long, &vec![b'n'; 300], &vec![b'n'; 70_000]] {
        assert!(matches!(fs.walk(&m, &root, n, &g), Err(Error::NameTooLong)));
        let r = fs.create(&m, &root, n, 0o664, OREAD, &g);
        assert!(matches!(r, Err(Error::NameTooLong)));
    }
    let c = fs.create(&m, &root, &ok, 0o664, OREAD, &g).unwrap();
    assert_eq!(fs.walk(&m, &root, &ok, &g).unwrap().qid, c.entry().qid);
}

/// #24: the reference's clear sent a message for every block offset,
/// holes included. Ours clears only keys that exist.
#[test]
fn regress_24_clears_skip_holes() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let o = fs.create(&m, &root, b"sparse", 0o664, ORDWR, &g).unwrap();
    for i in [0u64, 5000, 1_000_000] {
        fs.write(&o, i * BLKSZ_U64, b"z", &g).unwrap();
    }
    fs.remove(&m, o.entry(), &g).unwrap();
    let step = fs.sweep_step().unwrap();
    assert_eq!(
        step,
        SweepStep {
            keys: 3,
            more: false
        }
    );
}

/// #29: `..` twice from a root failed; nothing stopped removing an empty
/// root.
#[test]
fn regress_29_root_stays_root() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let mut e = root.clone();
    for _ in 0..5 {
        e = fs.walk(&m, &e, b"..", &g).unwrap();
        assert_eq!(e.qid.path, root.qid.path);
        assert!(e.is_root());
    }
    let adm = Who::permissive(-1);
    assert!(matches!(fs.remove(&m, &root, &adm), Err(Error::Root)));
    let c = Changes {
        name: Some(b"x".to_vec()),
        ..Changes::default()
    };
    assert!(matches!(fs.wstat(&m, &root, &c, &adm), Err(Error::Root)));
    assert!(matches!(
        fs.open(&m, &root, OREAD | ORCLOSE, &adm),
        Err(Error::Root)
    ));
}

/// #30: the reference never updated a directory's mtime on create or
/// remove, and OTRUNC did not set mtime.
#[test]
fn regress_30_times_follow_changes() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let old = Changes {
        mtime: Some(1),
        ..Changes::default()
    };
    let adm = Who::permissive(-1);
    fs.wstat(&m, &root, &old, &adm).unwrap();
    let f = put(&fs, &m, &root, "f", b"data");
    let r = fs.stat(&m, &root).unwrap();
    assert!(r.dir.mtime > 1);
    assert_eq!(r.dir.muid, GLENDA);
    fs.wstat(&m, &root, &old, &adm).unwrap();
    fs.wstat(&m, &f, &old, &g).unwrap();
    fs.open(&m, &f, OWRITE | OTRUNC, &g).unwrap();
    let st = fs.stat(&m, &f).unwrap();
    assert_eq!(st.dir.length, 0);
    assert!(st.dir.mtime > 1, "OTRUNC must set mtime");
    fs.remove(&m, &f, &g).unwrap();
    assert!(fs.stat(&m, &root).unwrap().dir.mtime > 1);
}

/// #35: after create, the reference left the handle's parent pointing at
/// the old directory, so a later remove touched the grandparent.
#[test]
fn regress_35_created_entry_knows_its_parent() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let d = fs
        .create(&m, &root, b"d", DMDIR | 0o775, OREAD, &g)
        .unwrap();
    let f = fs.create(&m, d.entry(), b"f", 0o664, ORDWR, &g).unwrap();
    assert_eq!(f.entry().parent, d.entry().qid.path);
    let old = Changes {
        mtime: Some(1),
        ..Changes::default()
    };
    fs.wstat(&m, &root, &old, &Who::permissive(-1)).unwrap();
    fs.wstat(&m, d.entry(), &old, &g).unwrap();
    fs.remove(&m, f.entry(), &g).unwrap();
    assert!(fs.stat(&m, d.entry()).unwrap().dir.mtime > 1);
    assert_eq!(fs.stat(&m, &root).unwrap().dir.mtime, 1);
}

/// The reference's truncwait: a write that grows a file with a pending
/// clear waits for the clear, which therefore never deletes the new data.
#[test]
fn growth_after_truncate_is_never_undone_by_the_clear() {
    let dev = format(DEV);
    let fs = open(&dev);
    let (m, root) = fs.attach("main").unwrap();
    let g = glenda();
    let f = put(&fs, &m, &root, "f", b"");
    let o = fs.open(&m, &f, ORDWR, &g).unwrap();
    for i in 0..3 {
        fs.write(&o, i * MAX_IO as u64, &vec![1; MAX_IO], &g)
            .unwrap();
    }
    set_len(&fs, &m, &f, 0);
    assert_eq!(fs.clears_pending(), 1);
    let data = bytes(3, 3 * BLKSZ + MAX_IO);
    fs.write(&o, 0, &data[..MAX_IO], &g).unwrap();
    fs.write(&o, MAX_IO as u64, &data[MAX_IO..], &g).unwrap();
    while fs.sweep(4).unwrap() {}
    assert_eq!(get(&fs, &m, &f), data);
}
