//! The wstats real 9P2000 clients send, through a real server over TCP. Each client builds its
//! request its own way:
//! - Linux v9fs: a blank wstat (all "don't touch") with the fields changed; a rename also sets
//!   muid to the mount's user name (`v9fs_vfs_rename`), and a touch sets atime with mtime;
//! - 9pfs (FUSE): the whole Rstat it got, with one field changed;
//! - plan9port (and Plan 9 programs): `nulldir` with the fields changed;
//! - python-9p: the `Dir` it got from `stat`, with one field changed and muid the user.
//!
//! Every shape of every operation must do just that operation; real changes of what 9P forbids
//! are refused with the string Linux maps to EPERM.

mod common;

use common::*;
use gefsd::proto::{dmode, omode, Stat};
use gefsd::server::err::msg;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    V9fs,
    NinePfs,
    Plan9port,
    Python9p,
}

const SHAPES: [Shape; 4] = [
    Shape::V9fs,
    Shape::NinePfs,
    Shape::Plan9port,
    Shape::Python9p,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Rename,
    Chmod,
    Truncate,
    Touch,
    SameOwner,
    SameGroup,
}

const FILE_OPS: [Op; 6] = [
    Op::Rename,
    Op::Chmod,
    Op::Truncate,
    Op::Touch,
    Op::SameOwner,
    Op::SameGroup,
];
const DIR_OPS: [Op; 5] = [
    Op::Rename,
    Op::Chmod,
    Op::Touch,
    Op::SameOwner,
    Op::SameGroup,
];

const MTIME: u32 = 1_234_567_890;

/// The request `shape` sends for `op` on a file whose stat is `cur`, by `user`.
fn request(shape: Shape, op: Op, cur: &Stat, user: &str) -> Stat {
    let mut r = match shape {
        Shape::V9fs | Shape::Plan9port => Stat::dont_touch(),
        Shape::NinePfs => cur.clone(),
        Shape::Python9p => Stat {
            ty: 0,
            dev: 0,
            muid: user.to_string(),
            ..cur.clone()
        },
    };
    match op {
        Op::Rename => {
            r.name = format!("{}.new", cur.name);
            if shape == Shape::V9fs {
                r.muid = user.to_string();
            }
        }
        Op::Chmod => r.mode = (cur.mode & !0o777) | 0o700,
        Op::Truncate => r.length = 2,
        Op::Touch => {
            r.mtime = MTIME;
            if shape == Shape::V9fs {
                r.atime = MTIME;
            }
        }
        Op::SameOwner => r.uid = cur.uid.clone(),
        Op::SameGroup => r.gid = cur.gid.clone(),
    }
    r
}

/// What the stat must be after `op` on `before`.
fn expected(op: Op, before: &Stat) -> Stat {
    let mut e = before.clone();
    match op {
        Op::Rename => e.name = format!("{}.new", before.name),
        Op::Chmod => e.mode = (before.mode & !0o777) | 0o700,
        Op::Truncate => e.length = 2,
        Op::Touch => e.mtime = MTIME,
        Op::SameOwner | Op::SameGroup => {}
    }
    e
}

/// The fields a wstat may leave changed besides the one asked for: version, times (a change
/// sets mtime, and the parent's), muid.
fn comparable(s: &Stat, op: Op) -> Stat {
    Stat {
        qid: gefsd::proto::Qid {
            version: 0,
            ..s.qid
        },
        atime: 0,
        mtime: if op == Op::Touch { s.mtime } else { 0 },
        muid: String::new(),
        ..s.clone()
    }
}

#[test]
fn every_shape_of_every_change() {
    let (s, a) = start();
    let mut c = attached(a);
    let user = me();
    let mut n = 0u32;
    for shape in SHAPES {
        for (is_dir, ops) in [(false, &FILE_OPS[..]), (true, &DIR_OPS[..])] {
            for &op in ops {
                n += 1;
                let name = format!("{shape:?}-{op:?}-{n}");
                c.walk(0, 1, &[]).expect("clone");
                let perm = if is_dir { dmode::DMDIR | 0o755 } else { 0o644 };
                c.create(1, &name, perm, omode::OREAD).expect("create");
                c.clunk(1).expect("clunk");
                if !is_dir {
                    c.walk(0, 1, &[&name]).expect("walk");
                    c.open(1, omode::OWRITE).expect("open");
                    c.write(1, 0, b"hello").expect("write");
                    c.clunk(1).expect("clunk");
                }
                c.walk(0, 2, &[&name]).expect("walk");
                let before = c.stat(2).expect("stat");
                let req = request(shape, op, &before, &user);
                c.wstat(2, &req)
                    .unwrap_or_else(|e| panic!("{shape:?} {op:?} dir={is_dir}: {e}\n{req:?}"));
                let after = c.stat(2).expect("stat");
                assert_eq!(
                    comparable(&after, op),
                    comparable(&expected(op, &before), op),
                    "{shape:?} {op:?} dir={is_dir}"
                );
                c.clunk(2).expect("clunk");
            }
        }
    }
    stop(s);
}

#[test]
fn a_copy_with_a_stale_version_still_applies() {
    let (s, a) = start();
    let mut c = attached(a);
    put(&mut c, 1, "f", b"data");
    c.walk(0, 2, &["f"]).expect("walk");
    let old = c.stat(2).expect("stat");
    c.walk(0, 3, &["f"]).expect("walk");
    c.open(3, omode::OWRITE).expect("open");
    c.write(3, 0, b"more data").expect("write");
    c.clunk(3).expect("clunk");
    let now = c.stat(2).expect("stat");
    assert_ne!(old.qid.version, now.qid.version);
    // 9pfs's chmod: the old copy, mode changed (length and version are the old ones).
    let req = Stat {
        mode: 0o600,
        length: now.length,
        ..old.clone()
    };
    c.wstat(2, &req).expect("chmod from a stale copy");
    let after = c.stat(2).expect("stat");
    assert_eq!((after.mode, after.length), (0o600, now.length));
    stop(s);
}

#[test]
fn real_changes_of_what_9p_forbids_are_refused() {
    let (s, a) = start();
    let mut c = attached(a);
    put(&mut c, 1, "f", b"data");
    c.walk(0, 2, &["f"]).expect("walk");
    let cur = c.stat(2).expect("stat");
    type Case = (&'static str, fn(&mut Stat), &'static str);
    let cases: [Case; 7] = [
        ("qid path", |s| s.qid.path += 1, msg::WSTAT_QID.text),
        ("qid type", |s| s.qid.ty = 0x80, msg::WSTAT_QID.text),
        ("type", |s| s.ty = 1, msg::WSTAT_QID.text),
        ("dev", |s| s.dev = 7, msg::WSTAT_QID.text),
        ("muid", |s| s.muid = "adm".into(), msg::WSTAT_MUID.text),
        ("owner", |s| s.uid = "adm".into(), "wstat prohibited"),
        (
            "directory bit",
            |s| s.mode = dmode::DMDIR | 0o664,
            "wstat can't convert between files and directories",
        ),
    ];
    for (what, change, want) in cases {
        for full in [false, true] {
            let mut req = if full {
                cur.clone()
            } else {
                Stat::dont_touch()
            };
            change(&mut req);
            let r = c.wstat(2, &req);
            assert!(r.is_err(), "{what}, full copy {full}: accepted");
            assert_eq!(ename(r), want, "{what}, full copy {full}");
        }
    }
    // Nothing changed.
    let after = c.stat(2).expect("stat");
    assert_eq!(
        (after.qid.path, after.mode, &after.uid),
        (cur.qid.path, cur.mode, &cur.uid)
    );
    stop(s);
}
