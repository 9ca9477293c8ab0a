//! T6 through the store: on a populated image (trees of height ≥ 2, data
//! blocks, snapshots with deadlists, message logs, several commits), damage
//! one block of
//! every class — bit flip, zero, stale copy, misdirected copy, torn write —
//! and require that the checker names the block (a warning for a redundant
//! superblock copy) and that reading everything back through the store
//! either fails with an error or returns exactly the model: an answer that
//! differs from the model without an error is silent corruption, whatever
//! the checker said. Silent outcomes: 0.

use std::sync::Arc;

use gefs_core::check::{check_store, CheckOpts};
use gefs_core::device::{Device, MemDev};
use gefs_core::format::{BLKSZ, BLKSZ_U64};
use gefs_core::store::{Config, Store};
use gefs_tests::blocks::classes;
use gefs_tests::model::{apply, read_back, workload_with, Model, Op, ReadBack, State};

fn cfg(read_only: bool) -> Config {
    gefs_core::testing::config(2 << 20, read_only)
}

struct Image {
    dev: MemDev,
    history: Vec<MemDev>,
    want: State,
}

fn build() -> Image {
    let dev = Arc::new(MemDev::new(32 << 20));
    let opts = gefs_core::testing::format_opts(4 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let s = Store::open(dev.clone(), &cfg(false)).expect("open");
    let t = s.mount("main").expect("mount");
    let mut m = Model::start(&s, t).expect("model");
    let mut history = Vec::new();
    for (i, op) in workload_with(77, 400, 25, &[]).iter().enumerate() {
        // Apply the buffered messages now and then, so that the trees grow
        // pivots; what follows the last apply stays in message logs.
        if i % 80 == 79 {
            s.checkpoint().expect("checkpoint");
        }
        apply(&s, t, &mut m, op).expect("op");
        if matches!(op, Op::Sync) {
            history.push(dev.snapshot());
        }
    }
    s.sync().expect("sync");
    drop(s);
    Image {
        dev: dev.snapshot(),
        history,
        want: m.state(),
    }
}

fn read(dev: &MemDev, a: u64) -> Vec<u8> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, a).expect("read");
    b
}

#[test]
fn every_fault_in_every_class_is_detected() {
    let img = build();
    let cls = classes(Arc::new(img.dev.snapshot()));
    for want in [
        "superblock A",
        "superblock B",
        "log",
        "snap leaf",
        "fs leaf",
        "fs pivot",
        "data",
        "deadlist",
        "message log",
    ] {
        assert!(
            cls.get(want).is_some_and(|s| !s.is_empty()),
            "the image has no {want} block: {:?}",
            cls.keys()
        );
    }
    let all: Vec<u64> = cls.values().flatten().copied().collect();
    let (mut trials, mut detected, mut survived) = (0, 0, 0);
    let mut silent = Vec::new();
    for (class, addrs) in &cls {
        for (n, &a) in addrs
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 2 == 0)
            .take(40)
        {
            let cur = read(&img.dev, a);
            let stale = img
                .history
                .iter()
                .rev()
                .map(|h| read(h, a))
                .find(|b| *b != cur);
            let other = all[(n * 31 + 7) % all.len()];
            for fault in ["flip", "zero", "stale", "misdirect", "torn"] {
                let bad = match fault {
                    "flip" => {
                        let mut b = cur.clone();
                        b[(n * 977 + 13) % 600] ^= 0x10;
                        b
                    }
                    "zero" => vec![0u8; BLKSZ],
                    "stale" => match &stale {
                        Some(s) => s.clone(),
                        None => continue,
                    },
                    "misdirect" if other != a => read(&img.dev, other),
                    "torn" => match &stale {
                        Some(s) => [&cur[..BLKSZ / 2], &s[BLKSZ / 2..]].concat(),
                        None => continue,
                    },
                    _ => continue,
                };
                if bad == cur {
                    continue;
                }
                trials += 1;
                let dmg = img.dev.snapshot();
                dmg.write_at(&bad, a).expect("write");
                let redundant = class.starts_with("superblock");
                let rep = check_store(
                    &dmg,
                    &CheckOpts {
                        threads: 1,
                        progress: None,
                    },
                );
                let named = match &rep {
                    Ok(r) => {
                        let list = if redundant && r.problems.is_empty() {
                            &r.warnings
                        } else {
                            &r.problems
                        };
                        list.iter().any(|p| {
                            p.addr
                                .is_some_and(|x| x <= a && a < x + p.blocks.max(1) * BLKSZ_U64)
                        })
                    }
                    Err(_) => !redundant,
                };
                let back = match Store::open(Arc::new(dmg.snapshot()), &cfg(true)) {
                    Ok(s) => read_back(&s, &img.want),
                    Err(e) => ReadBack::Refused(format!("open: {e}")),
                };
                // The read-back is judged on its own: a store that answers with anything but
                // the model's bytes is silent corruption, whatever the checker said.
                match (named, back) {
                    (_, ReadBack::Wrong(w)) => silent.push(format!(
                        "{class} {a:#x} {fault}: read back wrong without an error: {w}"
                    )),
                    (true, ReadBack::Refused(_)) => detected += 1,
                    (true, ReadBack::Exact) if redundant => survived += 1,
                    (true, ReadBack::Exact) => {
                        // Reported by the checker, unread by the store (a deadlist, a
                        // superseded buffered pointer): detected.
                        detected += 1
                    }
                    (false, r) => silent.push(format!(
                        "{class} {a:#x} {fault}: check did not name it; read back {r:?}"
                    )),
                }
            }
        }
    }
    println!(
        "corruption: trials={trials} detected={detected} survived(replica)={survived} silent={}",
        silent.len()
    );
    assert!(silent.is_empty(), "{silent:#?}");
    assert!(trials >= 350, "only {trials} trials");
}
