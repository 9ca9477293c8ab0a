//! The fault matrix (T6, offline): for each block class, flip a bit, zero
//! the block, write back a stale version, write another valid block's bytes
//! (misdirect), or tear it (one half new, the other old). Every fault must
//! be reported at the injected address — as a warning for a superblock copy
//! when the other copy is good, as a problem otherwise — and never panic.

use super::image::{build, build_with_snapshots, deadlist_blocks, layout, Img, Layout};
use super::{run, show};
use crate::check::sb::sb_b_addr;
use crate::check::Report;
use crate::device::{Device, MemDev};
use crate::format::BLKSZ;
use crate::ids::BlockAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Flip,
    Zero,
    Stale,
    Misdirect,
    Torn,
}

const FAULTS: [Fault; 5] = [
    Fault::Flip,
    Fault::Zero,
    Fault::Stale,
    Fault::Misdirect,
    Fault::Torn,
];

fn block(dev: &MemDev, a: BlockAddr) -> Vec<u8> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_at(&mut b, a.0).unwrap();
    b
}

/// The newest older version of `a` that differs from the current one,
/// preferring one that was ever written (non-zero).
fn old_version(img: &Img, a: BlockAddr) -> Option<Vec<u8>> {
    let cur = block(&img.dev, a);
    let olds: Vec<Vec<u8>> = img
        .history
        .iter()
        .rev()
        .map(|h| block(h, a))
        .filter(|b| *b != cur)
        .collect();
    olds.iter()
        .find(|b| b.iter().any(|&x| x != 0))
        .or(olds.first())
        .cloned()
}

/// The faulty contents of `a`, or `None` when the fault would change nothing.
fn inject(img: &Img, f: Fault, a: BlockAddr, other: BlockAddr, seed: usize) -> Option<Vec<u8>> {
    let cur = block(&img.dev, a);
    let new = match f {
        Fault::Flip => {
            let mut b = cur.clone();
            let bit = (seed * 7919 + 13) % (BLKSZ * 8);
            b[bit / 8] ^= 1 << (bit % 8);
            b
        }
        Fault::Zero => vec![0u8; BLKSZ],
        Fault::Stale => old_version(img, a)?,
        Fault::Misdirect => block(&img.dev, other),
        Fault::Torn => {
            let old = old_version(img, a).unwrap_or_else(|| vec![0u8; BLKSZ]);
            let h = BLKSZ / 2;
            let mut b = [&cur[..h], &old[h..]].concat();
            if b == cur {
                // A superblock's tail is zero in every version: tear the
                // other way (the old half first).
                b = [&old[..h], &cur[h..]].concat();
            }
            b
        }
    };
    (new != cur).then_some(new)
}

/// A class of blocks, the candidates in it, and whether faults there are
/// warnings (a redundant superblock copy).
struct Class {
    name: &'static str,
    addrs: Vec<BlockAddr>,
    warning: bool,
}

fn classes(img: &Img, l: &Layout) -> Vec<Class> {
    let b = sb_b_addr(img.dev.size());
    let c = |name, addrs: &Vec<BlockAddr>| Class {
        name,
        addrs: addrs.clone(),
        warning: false,
    };
    vec![
        Class {
            name: "superblock A",
            addrs: vec![BlockAddr(0)],
            warning: false,
        },
        Class {
            name: "superblock B",
            addrs: vec![b],
            warning: false,
        },
        c("log", &l.logs),
        c("snap pivot", &l.snap_pivots),
        c("snap leaf", &l.snap_leaves),
        c("fs pivot", &l.fs_pivots),
        c("fs leaf", &l.fs_leaves),
        c("data", &l.data),
    ]
}

/// Whether the report names `a` the way the class demands.
fn judged(r: &Report, a: BlockAddr, warning: bool) -> bool {
    let names = |ps: &[crate::check::Problem]| ps.iter().any(|p| p.addr == Some(a.0));
    if warning {
        r.problems.is_empty() && names(&r.warnings)
    } else {
        names(&r.problems)
    }
}

#[test]
fn every_fault_in_every_class_is_reported() {
    let img = build();
    let l = layout(&img.dev);
    let mut failures = Vec::new();
    let mut trials = 0;
    for class in classes(&img, &l) {
        assert!(!class.addrs.is_empty(), "no {} block", class.name);
        // Up to three blocks per class, spread over the candidates.
        let n = class.addrs.len();
        let picks: Vec<BlockAddr> = [0, n / 2, n - 1].iter().map(|&i| class.addrs[i]).collect();
        for (k, &a) in picks.iter().enumerate() {
            let other = l
                .fs_leaves
                .iter()
                .chain(&l.data)
                .find(|&&x| x != a)
                .copied();
            for (fi, &f) in FAULTS.iter().enumerate() {
                let Some(bytes) = inject(&img, f, a, other.unwrap_or(BlockAddr(0)), k * 5 + fi)
                else {
                    continue;
                };
                let dev = img.dev.snapshot();
                dev.write_at(&bytes, a.0).unwrap();
                let r = run(&dev);
                trials += 1;
                // Copy B one commit behind is what a crash between the two
                // superblock writes leaves (the torn copy's used bytes are
                // the stale half here): a warning, not damage.
                let lagging =
                    class.name == "superblock B" && matches!(f, Fault::Stale | Fault::Torn);
                if !judged(&r, a, class.warning || lagging) {
                    failures.push(format!("{} {a} {f:?}:\n{}", class.name, show(&r)));
                }
            }
        }
    }
    assert!(trials >= 80, "only {trials} trials");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn copy_b_one_commit_behind_is_a_warning() {
    // A crash between the two superblock writes of the last commit.
    let img = build();
    let dev = img.dev.snapshot();
    let prev = &img.history[img.history.len() - 2];
    let b = sb_b_addr(dev.size());
    dev.write_at(&block(prev, b), b.0).unwrap();
    let r = run(&dev);
    assert!(r.problems.is_empty(), "{}", show(&r));
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.superblock.used, "A");
    assert_eq!(r.superblock.copies[1].state, "stale");
}

#[test]
fn copy_a_damaged_uses_b_and_is_a_problem() {
    // The used bytes fit one 4 KiB sector, which a crash writes whole: a
    // checksum failure is damage, even when the other copy is intact.
    let img = build();
    let dev = img.dev.snapshot();
    let mut b = block(&img.dev, BlockAddr(0));
    b[100] ^= 0xff;
    dev.write_at(&b, 0).unwrap();
    let r = run(&dev);
    assert_eq!(r.problems.len(), 1, "{}", show(&r));
    assert_eq!(r.problems[0].addr, Some(0), "{}", show(&r));
    assert_eq!(r.superblock.used, "B");
    assert_eq!(r.superblock.copies[0].state, "damaged");
}

#[test]
fn copy_b_never_written_after_the_format_is_a_warning() {
    // Formatting stopped between its two superblock writes.
    let dev = img_fresh();
    let b = sb_b_addr(dev.size());
    dev.write_at(&vec![0u8; BLKSZ], b.0).unwrap();
    let r = run(&dev);
    assert!(r.problems.is_empty(), "{}", show(&r));
    assert_eq!(r.warnings.len(), 1, "{}", show(&r));
    assert_eq!(r.superblock.copies[1].state, "unwritten");
}

fn img_fresh() -> crate::device::MemDev {
    let dev = std::sync::Arc::new(crate::device::MemDev::new(32 << 20));
    let opts = crate::testing::format_opts(4 << 20);
    drop(crate::store::Store::format(dev.clone(), &opts).unwrap());
    dev.snapshot()
}

#[test]
fn both_copies_damaged_cannot_be_checked() {
    let img = build();
    let dev = img.dev.snapshot();
    for a in [BlockAddr(0), sb_b_addr(dev.size())] {
        dev.write_at(&vec![0u8; BLKSZ], a.0).unwrap();
    }
    let e = crate::check::check(&dev, &Default::default()).unwrap_err();
    assert!(matches!(e, crate::Error::NotGefs { .. }), "{e}");
}

#[test]
fn damaged_log_makes_no_copy_usable_and_names_the_block() {
    let img = build();
    let l = layout(&img.dev);
    let dev = img.dev.snapshot();
    let a = l.logs[0];
    dev.write_at(&vec![0u8; BLKSZ], a.0).unwrap();
    let r = run(&dev);
    assert_eq!(r.superblock.used, "none");
    assert!(r.problems.iter().any(|p| p.addr.is_none()), "{}", show(&r));
    assert!(
        r.problems.iter().any(|p| p.addr == Some(a.0)),
        "{}",
        show(&r)
    );
    // The trees are still checked, and found intact.
    assert_eq!(r.trees.len(), 4);
    assert!(r.trees.iter().all(|t| !t.damaged), "{}", show(&r));
}

#[test]
fn faults_in_deadlists_and_shared_nodes_are_reported() {
    let (img, s) = build_with_snapshots();
    let dl = deadlist_blocks(&s);
    // A block (node or data) two trees reach.
    let blocks = |label: &str| {
        let t = s.mount(label).unwrap();
        let mut v = Vec::new();
        s.with_reader(t, |ctx, root| {
            crate::tree::walk(ctx, root, |bp, _| {
                v.push(bp.addr);
                Ok(())
            })?;
            crate::tree::data_ptrs(ctx, root, |bp| {
                v.push(bp.addr);
                Ok(())
            })
        })
        .unwrap();
        v
    };
    let (a1, a2, live) = (blocks("snap1"), blocks("snap2"), blocks("main"));
    let shared = a2
        .iter()
        .chain(&live)
        .find(|a| a1.contains(a))
        .or_else(|| live.iter().find(|a| a2.contains(a)))
        .copied()
        .expect("a shared block");
    drop(s);
    let l = layout(&img.dev);
    let mut failures = Vec::new();
    for (name, a) in [
        ("deadlist head", dl[0]),
        ("deadlist last", dl[dl.len() - 1]),
        ("shared leaf", shared),
    ] {
        for (fi, &f) in FAULTS.iter().enumerate() {
            let Some(bytes) = inject(&img, f, a, l.data[0], fi) else {
                continue;
            };
            let dev = img.dev.snapshot();
            dev.write_at(&bytes, a.0).unwrap();
            let r = run(&dev);
            if !judged(&r, a, false) {
                failures.push(format!("{name} {a} {f:?}:\n{}", show(&r)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
