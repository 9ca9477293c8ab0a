//! T3 and T4: crash tests of file-system workloads through the power-cut harness.
//!
//! T3 (ACE style, bounded and exhaustive): from a base of directories `A`, `B` and files
//! `A/foo`, `A/bar`, `B/foo`, every operation of the T3 set followed by a sync (seq-1), and
//! every ordered pair of operations with and without a sync between them, then a sync
//! (seq-2, all 512). Every distinct crash state of every workload must open at the last
//! acknowledged commit or the next, hold exactly the model of that commit in `main` and every
//! snapshot, and check clean.
//!
//! T4 (fsx style, with crashes): long seeded random sequences (overlapping writes, holes,
//! truncates up and down, renames, removes, chmods, snapshots taken and deleted), every
//! written path read back after every operation; after each segment of 25 operations a crash
//! state of that segment is picked at random (every third time: the clean end of the segment,
//! a reboot), verified, and the sequence continues from it with the model of its commit. 20
//! crashes per seed; seeds `GEFS_T4_SEED` (default 1) onwards, `GEFS_T4_SEEDS` of them
//! (default 8), printed.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use gefs_tests::fsmodel::{model_apply, valid, FsOp};
use gefs_tests::powercut::{crash_states, env, record, run_workload, verify_crash, Tally};
use gefs_tests::rng::Rng;
use gefs_tests::workloads::{ace_ops, base, random_ops, setup};

#[test]
fn seq1_and_every_seq2_workload() {
    use rayon::prelude::*;
    let t0 = Instant::now();
    let (img, model) = base(32 << 20, &setup());
    let ops = ace_ops();
    let mut workloads: Vec<Vec<FsOp>> = ops.iter().map(|o| vec![o.clone(), FsOp::Sync]).collect();
    let seq1 = workloads.len();
    for a in &ops {
        for b in &ops {
            for sync_between in [false, true] {
                let mut w = vec![a.clone()];
                if sync_between {
                    w.push(FsOp::Sync);
                }
                w.push(b.clone());
                w.push(FsOp::Sync);
                workloads.push(w);
            }
        }
    }
    let seen = Mutex::new(HashSet::new());
    let tallies: Vec<Tally> = workloads
        .par_iter()
        .enumerate()
        .map(|(i, w)| run_workload(&img, &model, w, i as u64 + 1, usize::MAX, 25, &seen))
        .collect();
    let mut t = Tally::default();
    for x in tallies {
        t.add(x);
    }
    println!(
        "fs crash (T3): workloads={} (seq-1 {seq1}, seq-2 {}) states_built={} \
         distinct_verified={} reused_after_recovery={} message_log_block_writes={} \
         violations={} time={:.1}s",
        workloads.len(),
        workloads.len() - seq1,
        t.built,
        t.verified,
        t.reused,
        t.mlog_writes,
        t.violations.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        t.violations.is_empty(),
        "{} violations, first: {}",
        t.violations.len(),
        t.violations[0]
    );
    assert_eq!(workloads.len() - seq1, 2 * ops.len() * ops.len());
    assert!(t.verified >= 5_000, "only {} crash states", t.verified);
    // Every commit appends its messages to the message logs: the states
    // above cut those writes too.
    assert!(t.mlog_writes > 0, "no workload wrote a message-log block");
}

const SEGMENT: usize = 25;
const CRASHES: usize = 20;

/// One T4 seed: (operations, crashes, states verified), or the first violation.
fn t4_seed(seed: u64) -> Result<(usize, usize, u64), String> {
    let (mut dev, mut model) = base(32 << 20, &setup());
    let mut rng = Rng::new(seed);
    let mut snaps = 0;
    let (mut ops_run, mut verified) = (0, 0u64);
    for crash in 0..CRASHES {
        let ops = random_ops(&mut rng, SEGMENT, &format!("t{seed}"), &mut snaps);
        ops_run += ops.len();
        // Reads after every operation: every path of the workloads reads back as the model says.
        let r = record(&dev, &model, &ops, true)
            .map_err(|e| format!("seed {seed} crash {crash}: {e}"))?;
        let seen = Mutex::new(HashSet::new());
        let (_, states) = crash_states(&r, rng.next_u64(), usize::MAX, &seen);
        if states.is_empty() {
            return Err(format!("seed {seed} crash {crash}: no crash state"));
        }
        let pick = if crash % 3 == 2 {
            // A reboot: the segment's end, every write on the medium.
            states
                .iter()
                .rposition(|c| c.name.ends_with(" all"))
                .unwrap_or(states.len() - 1)
        } else {
            rng.below(states.len() as u64) as usize
        };
        // The state continued from, and a sample of the others.
        for i in
            std::iter::once(pick).chain((0..4).map(|_| rng.below(states.len() as u64) as usize))
        {
            let c = &states[i];
            verify_crash(c, &r.at, false)
                .map_err(|v| format!("seed {seed} crash {crash} {}: {v}", c.name))?;
            verified += 1;
        }
        let c = &states[pick];
        let g = gefs_core::store::Store::open(
            std::sync::Arc::new(c.img.snapshot()),
            &gefs_core::store::Config {
                cache_bytes: 2 << 20,
                read_only: true,
            },
        )
        .map_err(|e| e.to_string())?
        .commit_gen();
        model =
            r.at.get(&g)
                .cloned()
                .ok_or("no model at the recovered commit")?;
        dev = c.img.snapshot();
    }
    Ok((ops_run, CRASHES, verified))
}

#[test]
fn random_sequences_continue_after_power_cuts() {
    use rayon::prelude::*;
    let t0 = Instant::now();
    let first = env("GEFS_T4_SEED", 1);
    let n = env("GEFS_T4_SEEDS", 8);
    eprintln!(
        "T4: seeds {first}..{} (GEFS_T4_SEED, GEFS_T4_SEEDS)",
        first + n
    );
    let results: Vec<Result<(usize, usize, u64), String>> =
        (first..first + n).into_par_iter().map(t4_seed).collect();
    let (mut ops, mut crashes, mut states) = (0, 0, 0);
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok((o, c, s)) => {
                ops += o;
                crashes += c;
                states += s;
            }
            Err(e) => bad.push(e),
        }
    }
    println!(
        "fs crash (T4): seeds={n} ({first}..{}) ops={ops} crashes_injected={crashes} \
         ({CRASHES} per seed) states_verified={states} mismatches={} time={:.1}s",
        first + n,
        bad.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn s(x: &str) -> String {
    x.to_string()
}

/// The operations 9P2000.L adds beneath the file system: symbolic links, device nodes and
/// moves across directories that replace their target (one batch each), alone and in pairs,
/// through the same crash images.
#[test]
fn links_and_moves_survive_power_cuts() {
    let (img, model) = base(32 << 20, &setup());
    let link = |p: &str, t: &str| FsOp::Symlink {
        path: s(p),
        target: s(t),
    };
    let dev = |p: &str, block, major, minor| FsOp::Device {
        path: s(p),
        block,
        major,
        minor,
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
        // Device nodes (format version 4): made, changed, moved over a file, removed.
        vec![dev("A/cdev", false, 1, 3), FsOp::Sync],
        vec![
            dev("B/bdev", true, 8, 0x12345),
            FsOp::Sync,
            FsOp::Chmod {
                path: s("B/bdev"),
                mode: 0o600,
            },
            mv("B/bdev", "A/foo"),
            FsOp::Sync,
        ],
        vec![
            dev("A/d", false, 4095, 0xf_ffff),
            FsOp::Sync,
            FsOp::Remove(s("A/d")),
            FsOp::Sync,
        ],
    ];
    let seen = Mutex::new(HashSet::new());
    let mut t = Tally::default();
    for (i, w) in workloads.iter().enumerate() {
        // Every operation must be one that succeeds, so the images hold its effect.
        let mut m = model.clone();
        for op in w {
            assert!(valid(&m.main, &m.snaps, op), "{op:?} in {w:?}");
            model_apply(&mut m, op);
        }
        t.add(run_workload(
            &img,
            &model,
            w,
            7000 + i as u64,
            usize::MAX,
            25,
            &seen,
        ));
    }
    println!(
        "fs link/move crash: workloads={} distinct_verified={} violations={}",
        workloads.len(),
        t.verified,
        t.violations.len()
    );
    assert!(
        t.violations.is_empty(),
        "{} violations, first: {}",
        t.violations.len(),
        t.violations[0]
    );
    assert!(t.verified >= 100, "only {} crash states", t.verified);
}
