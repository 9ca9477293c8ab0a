//! T3: bounded exhaustive workloads (ACE style) at the file-system level,
//! through the power-cut harness. Files {A/foo, A/bar, B/foo}; every single
//! operation (seq-1), and a deterministic sample of operation pairs with and
//! without a sync between them (seq-2); the last operation is always a
//! sync. Every crash image of every workload must open at the last
//! acknowledged commit or the next, hold exactly the model of that commit
//! in `main` and in every snapshot, and check clean.

use std::sync::Arc;

use gefs_core::device::{MemDev, RecordingDev};
use gefs_core::store::{FormatOpts, Store};
use gefs_tests::fsmodel::{model_apply, valid, verify, FsOp, Image, Session};
use gefs_tests::powercut::crash_images;

fn s(x: &str) -> String {
    x.to_string()
}

fn setup() -> Vec<FsOp> {
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

fn ops() -> Vec<FsOp> {
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

/// The image after `setup()`, formatted and committed, and its model.
fn base() -> (MemDev, Image) {
    let dev = Arc::new(MemDev::new(32 << 20));
    let opts = FormatOpts {
        user: "glenda".into(),
        cache_bytes: 4 << 20,
    };
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let mut sess = Session::open(dev.clone(), Image::default()).expect("open");
    for op in setup() {
        sess.apply(&op).expect("setup");
    }
    let now = sess.now.clone();
    drop(sess);
    (dev.snapshot(), now)
}

/// Run one workload over a recording device; check every crash image.
fn run(base: &MemDev, model: &Image, work: &[FsOp], seed: u64, max: usize) -> (usize, Vec<String>) {
    let rec = Arc::new(RecordingDev::new(base));
    let mut sess = Session::open(rec.clone(), model.clone()).expect("open");
    let first = sess.fs.store().commit_gen();
    for op in work {
        sess.apply(op).unwrap_or_else(|e| panic!("{work:?}: {e}"));
        if *op == FsOp::Sync {
            rec.mark(sess.fs.store().commit_gen());
        }
    }
    let at = sess.at.clone();
    drop(sess);
    let imgs = crash_images(&rec, first, seed, max);
    let mut bad = Vec::new();
    for (name, acked, img) in &imgs {
        let dev: Arc<MemDev> = Arc::new(img.snapshot());
        let g = match Store::open(
            dev.clone(),
            &gefs_core::store::Config {
                cache_bytes: 2 << 20,
                read_only: true,
            },
        ) {
            Ok(s) => s.commit_gen(),
            Err(e) => {
                bad.push(format!("{work:?} {name}: does not open: {e}"));
                continue;
            }
        };
        if g < *acked || g > acked + 1 {
            bad.push(format!(
                "{work:?} {name}: opened commit {g}, acknowledged {acked}"
            ));
            continue;
        }
        let Some(want) = at.get(&g) else {
            bad.push(format!("{work:?} {name}: commit {g} was never completed"));
            continue;
        };
        if let Err(v) = verify(dev.clone(), want) {
            bad.push(format!("{work:?} {name}: commit {g}: {v}"));
            continue;
        }
        let p = gefs_tests::checker::problems(img);
        if !p.is_empty() {
            bad.push(format!("{work:?} {name}: check: {p:?}"));
        }
    }
    (imgs.len(), bad)
}

#[test]
fn seq1_and_sampled_seq2() {
    let (base, model) = base();
    let ops = ops();
    let mut workloads: Vec<Vec<FsOp>> = ops.iter().map(|o| vec![o.clone(), FsOp::Sync]).collect();
    let pairs = std::env::var("GEFS_SEQ2")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(72usize);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..pairs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = ops[(x % ops.len() as u64) as usize].clone();
        let b = ops[((x >> 20) % ops.len() as u64) as usize].clone();
        let mut w = vec![a];
        if (x >> 40) & 1 == 1 {
            w.push(FsOp::Sync);
        }
        w.push(b);
        w.push(FsOp::Sync);
        workloads.push(w);
    }
    let (mut states, mut bad) = (0, Vec::new());
    for (i, w) in workloads.iter().enumerate() {
        let (n, b) = run(&base, &model, w, i as u64 + 1, 80);
        states += n;
        bad.extend(b);
    }
    println!(
        "fs crash: workloads={} states={states} violations={}",
        workloads.len(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} violations, first: {}",
        bad.len(),
        bad[0]
    );
    assert!(states >= 2000, "only {states} crash states");
}

/// T4 with crashes: long seeded random sequences of file-system operations
/// (overlapping writes, holes, truncates up and down, renames, removes,
/// chmods, snapshots taken and deleted) over a recording device; sampled
/// crash images of each must hold the model of their commit exactly.
#[test]
fn random_sequences_survive_power_cuts() {
    let (base, model) = base();
    let names = ["A/foo", "A/bar", "B/foo", "A/n1", "B/n2", "C", "C/x"];
    let (mut states, mut bad, mut ops_run) = (0, Vec::new(), 0);
    for seed in 1..=6u64 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut w = Vec::new();
        let mut snaps = 0;
        for _ in 0..120 {
            let p = s(names[(next() % names.len() as u64) as usize]);
            let op = match next() % 14 {
                0 => FsOp::Create(p),
                1 => FsOp::Mkdir(p),
                2..=5 => FsOp::Write {
                    path: p,
                    off: next() % 90_000,
                    len: (next() % 40_000) as usize + 1,
                    byte: next() as u8,
                },
                6 => FsOp::Truncate {
                    path: p,
                    len: next() % 100_000,
                },
                7 => FsOp::Remove(p),
                8 => FsOp::Rename {
                    path: p,
                    to: format!("r{}", next() % 3),
                },
                9 => FsOp::Chmod {
                    path: p,
                    mode: [0o600, 0o644, 0o755][(next() % 3) as usize],
                },
                10 => {
                    snaps += 1;
                    FsOp::Snap(format!("s{seed}.{snaps}"))
                }
                11 => FsOp::DelSnap(format!("s{seed}.{}", next() % (snaps + 1))),
                _ => FsOp::Sync,
            };
            w.push(op);
        }
        w.push(FsOp::Sync);
        ops_run += w.len();
        let (n, b) = run(&base, &model, &w, seed * 1000, 150);
        states += n;
        bad.extend(b);
    }
    println!(
        "fs random crash: ops={ops_run} states={states} violations={}",
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} violations, first: {}",
        bad.len(),
        bad[0]
    );
    assert!(states >= 500, "only {states} crash states");
}

/// The operations 9P2000.L adds beneath the file system: symbolic links and moves across
/// directories that replace their target (one batch each), alone and in pairs, through the
/// same crash images.
#[test]
fn links_and_moves_survive_power_cuts() {
    let (base, model) = base();
    let link = |p: &str, t: &str| FsOp::Symlink {
        path: s(p),
        target: s(t),
    };
    let mv = |p: &str, t: &str| FsOp::Move {
        path: s(p),
        to: s(t),
    };
    let workloads = [
        vec![link("A/lnk", "../B/foo"), FsOp::Sync],
        vec![mv("A/foo", "B/foo"), FsOp::Sync],
        vec![mv("A/bar", "B/new"), FsOp::Sync],
        vec![mv("A", "B/A"), FsOp::Sync],
        vec![mv("B/foo", "A/bar"), mv("A", "C"), FsOp::Sync],
        vec![link("B/l", "x"), FsOp::Sync, mv("B/l", "A/foo"), FsOp::Sync],
        vec![mv("A/foo", "A/foo"), FsOp::Remove(s("A/bar")), FsOp::Sync],
    ];
    let (mut states, mut bad) = (0, Vec::new());
    for (i, w) in workloads.iter().enumerate() {
        // Every operation must be one that succeeds, so the images hold its effect.
        let mut m = model.clone();
        for op in w {
            assert!(valid(&m.main, &m.snaps, op), "{op:?} in {w:?}");
            model_apply(&mut m, op);
        }
        let (n, b) = run(&base, &model, w, 7000 + i as u64, 80);
        states += n;
        bad.extend(b);
    }
    println!(
        "fs link/move crash: workloads={} states={states} violations={}",
        workloads.len(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} violations, first: {}",
        bad.len(),
        bad[0]
    );
    assert!(states >= 100, "only {states} crash states");
}
