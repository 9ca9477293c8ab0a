//! T7: an I/O error at the Nth read, write or flush. A sync that saw an
//! error is never acknowledged; a failed write or flush latches the store
//! read-only (a later sync refuses instead of "succeeding" over the hole,
//! fsyncgate); a failed read fails its operation and nothing else; and the
//! image reopens at the last acknowledged commit (or the one being written),
//! exactly as the model says, and checks clean.

use std::sync::Arc;

use gefs_core::device::{FaultyDev, IoKind, MemDev};
use gefs_core::store::{Config, Store};
use gefs_core::Error;
use gefs_tests::model::{apply, verify_state, workload_with, Model, Op};

fn cfg(read_only: bool) -> Config {
    gefs_core::testing::config(2 << 20, read_only)
}

fn formatted() -> Arc<MemDev> {
    let d = Arc::new(MemDev::new(32 << 20));
    let opts = gefs_core::testing::format_opts(4 << 20);
    drop(Store::format(d.clone(), &opts).expect("format"));
    d
}

struct Outcome {
    failed: bool,
    acked: u64,
    model: Model,
}

fn run(base: &Arc<MemDev>, ops: &[Op], kind: IoKind, n: u64) -> Outcome {
    let dev = Arc::new(FaultyDev::new(base.clone()));
    let s = Store::open(dev.clone(), &cfg(false)).expect("open");
    let t = s.mount("main").expect("mount");
    let mut model = Model::start(&s, t).expect("model");
    let mut acked = s.commit_gen();
    dev.fail_nth(kind, n, false);
    let mut failed = false;
    for op in ops {
        let before = model.now.clone();
        match apply(&s, t, &mut model, op) {
            Ok(()) => {
                if matches!(op, Op::Sync) {
                    acked = s.commit_gen();
                }
            }
            Err(e) => {
                failed = true;
                assert_eq!(model.now, before, "a failed op changed the model");
                match kind {
                    IoKind::Write | IoKind::Flush => {
                        assert!(
                            s.is_read_only(),
                            "{kind:?} #{n}: {e} did not latch read-only"
                        );
                        assert!(
                            matches!(s.sync(), Err(Error::Failed)),
                            "sync after a failed {kind:?}"
                        );
                        break;
                    }
                    IoKind::Read => {
                        // Only the failing operation is affected, unless the
                        // read was part of a sync, which latches.
                        if s.is_read_only() {
                            assert!(matches!(op, Op::Sync));
                            break;
                        }
                    }
                }
            }
        }
    }
    Outcome {
        failed,
        acked,
        model,
    }
}

#[test]
fn io_errors_never_ack_a_failed_sync() {
    let ops = workload_with(7, 60, 5, &[]);
    let clean = formatted();
    // Count each kind of operation in a clean run.
    let counter = Arc::new(FaultyDev::new(Arc::new(clean.snapshot())));
    {
        let s = Store::open(counter.clone(), &cfg(false)).expect("open");
        let t = s.mount("main").expect("mount");
        let mut m = Model::start(&s, t).expect("model");
        for op in &ops {
            apply(&s, t, &mut m, op).expect("clean run");
        }
    }
    let mut injections = 0;
    for kind in [IoKind::Write, IoKind::Flush, IoKind::Read] {
        let total = counter.count(kind);
        assert!(total > 0, "the workload does no {kind:?}");
        let step = (total / 70).max(1);
        for n in (1..=total).step_by(step as usize) {
            let base = Arc::new(clean.snapshot());
            let out = run(&base, &ops, kind, n);
            injections += 1;
            if !out.failed {
                continue;
            }
            // "Restart": the device holds whatever was written before the error.
            let s = Store::open(base.clone(), &cfg(true)).expect("reopen after the error");
            let g = s.commit_gen();
            assert!(
                g == out.acked || g == out.acked + 1,
                "{kind:?} #{n}: reopened at commit {g}, acknowledged {}",
                out.acked
            );
            let want = if g == out.acked {
                out.model
                    .at
                    .get(&g)
                    .expect("model at the acknowledged commit")
                    .clone()
            } else {
                // The failed sync got as far as superblock A: the model of
                // that commit is the model when it started.
                out.model.state()
            };
            verify_state(&s, &want).unwrap_or_else(|v| panic!("{kind:?} #{n}: {v}"));
            drop(s);
            let p = gefs_tests::checker::problems(&base);
            assert!(p.is_empty(), "{kind:?} #{n}: {p:?}");
        }
    }
    println!("io errors: injections={injections} wrongly_acked=0");
}
