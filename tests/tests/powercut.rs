//! T1 + T2 over file-system workloads: power cuts at every flush point and inside every flush
//! epoch (prefixes, all-but-one, random subsets, 4 KiB tears, every sector mask of both
//! superblocks) of seeded random workloads (creates, overlapping and sparse writes, truncates,
//! renames, removes, chmods, snapshots taken and deleted, syncs), until at least
//! `GEFS_CRASH_STATES` (default 40,000) distinct crash states have been verified: each opens
//! at the last acknowledged commit or the next, holds exactly the model of that commit in
//! `main` and every snapshot, and checks clean; one in ten is also used after recovery.
//! Seeds run from `GEFS_CRASH_SEED` (default 1) upwards and are printed.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use gefs_tests::powercut::{env, run_workload, Tally};
use gefs_tests::rng::Rng;
use gefs_tests::workloads::{base, random_ops, setup};

#[test]
fn power_cut_at_every_point_of_file_system_workloads() {
    let floor = env("GEFS_CRASH_STATES", 40_000);
    let first = env("GEFS_CRASH_SEED", 1);
    eprintln!("powercut: seeds from {first} (GEFS_CRASH_SEED), floor {floor} states");
    let t0 = Instant::now();
    let (img, model) = base(32 << 20, &setup());
    let seen = Mutex::new(HashSet::new());
    let mut t = Tally::default();
    let mut seed = first;
    let mut workloads = 0;
    loop {
        let mut rng = Rng::new(seed);
        let mut snaps = 0;
        let ops = random_ops(&mut rng, 100, &format!("s{seed}"), &mut snaps);
        t.add(run_workload(
            &img,
            &model,
            &ops,
            seed,
            usize::MAX,
            10,
            &seen,
        ));
        workloads += 1;
        if t.verified >= floor || !t.violations.is_empty() {
            break;
        }
        seed += 1;
    }
    println!(
        "crash (T1+T2): workloads={workloads} seeds={first}..={seed} states_built={} \
         distinct_verified={} reused_after_recovery={} violations={} time={:.1}s",
        t.built,
        t.verified,
        t.reused,
        t.violations.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        t.violations.is_empty(),
        "{} violations, first: {}",
        t.violations.len(),
        t.violations[0]
    );
    assert!(
        t.verified >= floor,
        "only {} distinct crash states",
        t.verified
    );
}
