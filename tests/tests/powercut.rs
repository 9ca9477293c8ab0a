//! T1 + T2: power cuts at every flush point and inside every flush epoch
//! (prefixes, all-but-one, random subsets, 4 KiB tears, both superblocks),
//! each recovered image verified against the model and the checker.

use gefs_tests::model::workload_with;
use gefs_tests::powercut::{enumerate, record};

/// The checker run on every crash image.
fn check(img: &gefs_core::device::MemDev) -> Vec<String> {
    gefs_tests::checker::problems(img)
}

#[test]
fn power_cut_at_every_point() {
    let floor: u64 = std::env::var("GEFS_CRASH_STATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut total = 0;
    let mut unique = 0;
    let mut sb = 0;
    let mut reused = 0;
    let mut epochs = 0;
    let mut violations = Vec::new();
    for seed in 1u64.. {
        let ops = workload_with(seed, 120, 6, &[]);
        let r = record(32 << 20, &ops);
        let t = enumerate(&r, seed, u64::MAX, &check);
        total += t.states;
        unique += t.unique;
        sb += t.sb_torn;
        reused += t.reused;
        epochs += t.epochs;
        violations.extend(
            t.violations
                .into_iter()
                .map(|v| format!("seed {seed}: {v}")),
        );
        if unique >= floor || !violations.is_empty() {
            break;
        }
    }
    println!(
        "crash: states={total} unique={unique} epochs={epochs} superblocks_differing={sb} reused_after_recovery={reused} violations={}",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
    assert!(unique >= floor, "only {unique} distinct crash states");
}
