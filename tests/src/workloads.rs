//! File-system workloads for the crash tests: the base image every workload starts from, the
//! ACE-style operation set of T3 (every operation and every ordered pair of operations over a
//! tiny file set), and seeded random sequences for T1/T2 and T4 (creates, overlapping and
//! sparse writes, truncates up and down, renames, removes, chmods, snapshots taken and
//! deleted, syncs).

use std::sync::Arc;

use gefs_core::device::MemDev;
use gefs_core::store::Store;

use crate::fsmodel::{FsOp, Image, Session};
use crate::rng::Rng;

fn s(x: &str) -> String {
    x.to_string()
}

/// What every T3 workload starts from: directories `A`, `B`; files `A/foo` (20,000 bytes),
/// `A/bar` (empty), `B/foo` (100 bytes); committed.
pub fn setup() -> Vec<FsOp> {
    vec![
        FsOp::Mkdir(s("A")),
        FsOp::Mkdir(s("B")),
        FsOp::Create(s("A/foo")),
        FsOp::Write {
            path: s("A/foo"),
            off: 0,
            len: 20_000,
            byte: b'a',
        },
        FsOp::Create(s("A/bar")),
        FsOp::Create(s("B/foo")),
        FsOp::Write {
            path: s("B/foo"),
            off: 0,
            len: 100,
            byte: b'b',
        },
        FsOp::Sync,
    ]
}

/// The T3 operation set: create (file, directory), write (small overwrite, within a block
/// boundary, sparse past the end, appending across blocks), truncate (down, up), remove
/// (file, non-empty and empty directory), rename (file, directory), chmod, snapshot, sync.
pub fn ace_ops() -> Vec<FsOp> {
    vec![
        FsOp::Create(s("A/baz")),
        FsOp::Mkdir(s("A/dir")),
        FsOp::Write {
            path: s("A/foo"),
            off: 0,
            len: 100,
            byte: b'x',
        },
        FsOp::Write {
            path: s("A/foo"),
            off: 16_380,
            len: 10,
            byte: b'y',
        },
        FsOp::Write {
            path: s("A/bar"),
            off: 50_000,
            len: 5,
            byte: b'z',
        },
        FsOp::Write {
            path: s("A/foo"),
            off: 20_000,
            len: 40_000,
            byte: b'w',
        },
        FsOp::Truncate {
            path: s("A/foo"),
            len: 5_000,
        },
        FsOp::Truncate {
            path: s("A/foo"),
            len: 70_000,
        },
        FsOp::Remove(s("A/bar")),
        FsOp::Remove(s("A/foo")),
        FsOp::Remove(s("B")),
        FsOp::Rename {
            path: s("A/foo"),
            to: s("qux"),
        },
        FsOp::Rename {
            path: s("B"),
            to: s("C"),
        },
        FsOp::Chmod {
            path: s("A/foo"),
            mode: 0o600,
        },
        FsOp::Snap(s("snap1")),
        FsOp::Sync,
    ]
}

/// A formatted `size`-byte image with `ops` applied and committed, and its model.
pub fn base(size: u64, ops: &[FsOp]) -> (MemDev, Image) {
    let dev = Arc::new(MemDev::new(size));
    let opts = gefs_core::testing::format_opts(4 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let mut sess = Session::open(dev.clone(), Image::default()).expect("open");
    for op in ops {
        sess.apply(op).expect("setup");
    }
    if ops.last() != Some(&FsOp::Sync) {
        sess.apply(&FsOp::Sync).expect("setup sync");
    }
    let now = sess.now.clone();
    drop(sess);
    (dev.snapshot(), now)
}

/// The paths random workloads use: two directories and files in and beside them.
pub const NAMES: [&str; 8] = ["A/foo", "A/bar", "B/foo", "A/n1", "B/n2", "C", "C/x", "D"];

/// `n` seeded random operations over [`NAMES`]; snapshot labels are `{tag}.{k}`, with `k`
/// continuing from `*snaps`. Invalid operations (by the model) are kept: the session checks
/// that they fail.
pub fn random_ops(rng: &mut Rng, n: usize, tag: &str, snaps: &mut u32) -> Vec<FsOp> {
    let mut w = Vec::with_capacity(n + 1);
    for _ in 0..n {
        let p = s(NAMES[rng.below(NAMES.len() as u64) as usize]);
        let op = match rng.below(16) {
            0 => FsOp::Create(p),
            1 => FsOp::Mkdir(p),
            2..=5 => FsOp::Write {
                path: p,
                off: rng.below(90_000),
                len: rng.below(40_000) as usize + 1,
                byte: rng.next_u64() as u8,
            },
            6 => FsOp::Truncate {
                path: p,
                len: rng.below(100_000),
            },
            7 => FsOp::Remove(p),
            8 => FsOp::Rename {
                path: p,
                to: format!("r{}", rng.below(3)),
            },
            9 => FsOp::Chmod {
                path: p,
                mode: [0o600, 0o644, 0o755][rng.below(3) as usize],
            },
            10 => {
                *snaps += 1;
                FsOp::Snap(format!("{tag}.{snaps}"))
            }
            11 => FsOp::DelSnap(format!("{tag}.{}", rng.below(u64::from(*snaps) + 1))),
            _ => FsOp::Sync,
        };
        w.push(op);
    }
    w.push(FsOp::Sync);
    w
}
