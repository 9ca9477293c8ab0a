//! Allocator tests: nothing handed out twice, frees reused only after
//! release, log replay equal to memory, compression, and a full device.

use std::collections::BTreeSet;

use super::*;
use crate::device::MemDev;
use crate::format::BLKSZ_U64;
use crate::testing::Rng;

const DEV: u64 = 64 << 20;

fn geo() -> Geometry {
    Geometry::for_device(DEV).unwrap()
}

/// Commit and write the log blocks, as the store does.
fn commit(a: &Allocator, dev: &MemDev, gen: u64) -> (Vec<ArenaRec>, Vec<BlockAddr>) {
    let (recs, out) = a.commit(Gen(gen)).unwrap();
    for (addr, b) in &out.writes {
        dev.write_at(&b[..], addr.0).unwrap();
    }
    (recs, out.release)
}

/// The free set as the log says it (free, fresh and limbo blocks).
fn log_view(a: &Allocator) -> Vec<(u64, u64)> {
    let mut v = FreeMap::new();
    for arena in a.arenas.iter() {
        let ar = arena.lock();
        let s = ar.stats();
        assert_eq!(s.fresh, 0, "compare only right after a commit");
        for (b, l) in ar.free_map().ranges() {
            v.insert(b, l).unwrap();
        }
        for (b, l) in ar.limbo_ranges() {
            v.insert(b, l).unwrap();
        }
    }
    v.ranges().collect()
}

fn replayed_view(dev: &MemDev, recs: &[ArenaRec]) -> Vec<(u64, u64)> {
    let b = Allocator::open(dev, geo(), recs).unwrap();
    let mut v = FreeMap::new();
    for i in 0..geo().narena {
        for (s, l) in b.free_ranges(i) {
            v.insert(s, l).unwrap();
        }
    }
    v.ranges().collect()
}

#[test]
fn format_then_replay() {
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    let (recs, rel) = commit(&a, &dev, 1);
    assert!(rel.is_empty());
    assert_eq!(log_view(&a), replayed_view(&dev, &recs));
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.log_blocks, 1);
        assert_eq!(r.free_blocks, geo().arena_blocks() - 1, "arena {i}");
    }
}

#[test]
fn nothing_is_handed_out_twice_and_no_space_is_typed() {
    let a = Allocator::format(geo()).unwrap();
    let mut seen = BTreeSet::new();
    let mut n = 0u64;
    loop {
        let kind = if n.is_multiple_of(3) {
            Kind::Meta
        } else {
            Kind::Data {
                hint: n,
                seq: n.is_multiple_of(2),
            }
        };
        match a.alloc(kind, Tier::Normal) {
            Ok(addr) => {
                assert!(seen.insert(addr), "{addr} handed out twice");
                assert!(geo().arena_of(addr).is_some());
                n += 1;
            }
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let total = u64::from(geo().narena) * geo().arena_blocks();
    assert!(
        n > total * 9 / 10,
        "only {n} of {total} blocks before the reserve"
    );
    // The reserve still serves deletes and syncs, then only the log.
    let r = a.alloc(Kind::Meta, Tier::Reserve).unwrap();
    assert!(seen.insert(r));
    while let Ok(x) = a.alloc(Kind::Meta, Tier::Reserve) {
        assert!(seen.insert(x));
    }
    for s in a.stats() {
        assert_eq!(
            s.free, s.log_reserve,
            "arena {} keeps its log reserve",
            s.index
        );
    }
}

#[test]
fn frees_wait_for_release_and_durability() {
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    let x = a.alloc(Kind::Meta, Tier::Normal).unwrap();
    commit(&a, &dev, 1);
    // x is now durable: freeing it waits for the next commit.
    assert_eq!(a.free(x).unwrap(), Freed::Durable);
    assert!(a.free(x).is_err(), "double free must be reported");
    let fresh = a.alloc(Kind::Meta, Tier::Normal).unwrap();
    assert_eq!(a.free(fresh).unwrap(), Freed::Fresh);
    for _ in 0..2000 {
        let y = a.alloc(Kind::Meta, Tier::Normal).unwrap();
        assert!(y != x && y != fresh, "reused before release");
    }
    let (_, rel) = commit(&a, &dev, 2);
    assert!(
        rel.contains(&x),
        "the durable free is released by the commit that logs it"
    );
    assert!(!rel.contains(&fresh));
    a.release(&[fresh]).unwrap();
    a.release(&rel).unwrap();
    assert!(a.release(&[x]).is_err(), "released twice");
}

#[test]
fn short_lived_blocks_never_reach_the_log() {
    // Reference defect §13.2 #22: one Alloc and one Free record per copied
    // root. Blocks allocated and freed within an interval leave no trace.
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    let (recs0, _) = commit(&a, &dev, 1);
    let before: u64 = (0..geo().narena)
        .map(|i| replay(&dev, &geo(), i, &recs0[i as usize]).unwrap().entries)
        .sum();
    let mut limbo = Vec::new();
    for _ in 0..10_000 {
        let x = a.alloc(Kind::Meta, Tier::Normal).unwrap();
        assert_eq!(a.free(x).unwrap(), Freed::Fresh);
        limbo.push(x);
        if limbo.len() > 50 {
            a.release(&std::mem::take(&mut limbo)).unwrap();
        }
    }
    let keep = a.alloc(Kind::Meta, Tier::Normal).unwrap();
    let (recs, _) = commit(&a, &dev, 2);
    let after: u64 = (0..geo().narena)
        .map(|i| replay(&dev, &geo(), i, &recs[i as usize]).unwrap().entries)
        .sum();
    // One arena logged: old-tail free, the kept block, new-tail alloc, barrier.
    assert!(
        after - before <= 4,
        "{} entries for one surviving block",
        after - before
    );
    let r = Allocator::open(&dev, geo(), &recs).unwrap();
    assert!(
        r.free(keep).is_ok(),
        "the kept block is allocated after replay"
    );
}

#[test]
fn a_free_is_logged_by_the_commit_that_makes_it() {
    // Reference defect §13.2 #20: frees logged after the durable barrier
    // are forgotten by a crash. Ours are part of the commit itself.
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    let x = a
        .alloc(Kind::Data { hint: 7, seq: true }, Tier::Normal)
        .unwrap();
    commit(&a, &dev, 1);
    a.free(x).unwrap();
    let (recs, _) = commit(&a, &dev, 2);
    // "Crash" right after the commit: nothing released in memory.
    let r = Allocator::open(&dev, geo(), &recs).unwrap();
    let i = geo().arena_of(x).unwrap();
    assert!(r
        .free_ranges(i)
        .iter()
        .any(|&(s, l)| (s..s + l).contains(&x.index())));
}

#[test]
fn replay_equals_memory_under_random_work() {
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut live: Vec<BlockAddr> = Vec::new();
    let mut durable: BTreeSet<BlockAddr> = BTreeSet::new();
    let mut limbo = Vec::new();
    for gen in 1..=60u64 {
        for _ in 0..(rng.next_u64() % 700) {
            match rng.next_u64() % 10 {
                0..=5 => {
                    let kind = if rng.next_u64().is_multiple_of(2) {
                        Kind::Meta
                    } else {
                        Kind::Data {
                            hint: rng.next_u64() % 100,
                            seq: rng.next_u64().is_multiple_of(2),
                        }
                    };
                    if let Ok(x) = a.alloc(kind, Tier::Normal) {
                        live.push(x);
                    }
                }
                _ if !live.is_empty() => {
                    let x = live.swap_remove((rng.next_u64() % live.len() as u64) as usize);
                    let want = if durable.contains(&x) {
                        Freed::Durable
                    } else {
                        Freed::Fresh
                    };
                    assert_eq!(a.free(x).unwrap(), want);
                    durable.remove(&x);
                    if want == Freed::Fresh {
                        limbo.push(x);
                    }
                }
                _ => {}
            }
        }
        let (recs, rel) = commit(&a, &dev, gen);
        durable.extend(live.iter().copied());
        assert_eq!(log_view(&a), replayed_view(&dev, &recs), "commit {gen}");
        a.release(&rel).unwrap();
        a.release(&std::mem::take(&mut limbo)).unwrap();
    }
}

#[test]
fn long_logs_are_compressed_and_short_ones_never_are() {
    // A bigger device, so that one arena sees thousands of scattered frees.
    let g = Geometry::for_device(1 << 30).unwrap();
    let dev = MemDev::new(1 << 30);
    let a = Allocator::format(g).unwrap();
    commit(&a, &dev, 1);
    let mut all = Vec::new();
    while let Ok(x) = a.alloc(Kind::Meta, Tier::Normal) {
        all.push(x);
    }
    all.sort();
    let (_, rel) = commit(&a, &dev, 2);
    a.release(&rel).unwrap();
    // Every other block, then the rest: single-block entries that the free
    // map coalesces but the log cannot.
    let order: Vec<BlockAddr> = all
        .iter()
        .step_by(2)
        .chain(all.iter().skip(1).step_by(2))
        .copied()
        .collect();
    let mut max_chain = 0;
    for (gen, chunk) in (3..).zip(order.chunks(4000)) {
        for x in chunk {
            a.free(*x).unwrap();
        }
        let (r, rel) = commit(&a, &dev, gen);
        a.release(&rel).unwrap();
        max_chain = max_chain.max(r.iter().map(|r| r.log_blocks).max().unwrap());
    }
    // Once the frees are released the map coalesces, and the next commit
    // of each arena finds its chain far longer than a rewrite would be.
    for gen in 100..102 {
        for i in 0..u64::from(g.narena) {
            let x = a
                .alloc(
                    Kind::Data {
                        hint: i,
                        seq: false,
                    },
                    Tier::Normal,
                )
                .unwrap();
            a.free(x).unwrap();
            a.release(&[x]).unwrap();
        }
        let x = a.alloc(Kind::Meta, Tier::Normal).unwrap();
        let (r, rel) = commit(&a, &dev, gen);
        a.release(&rel).unwrap();
        a.free(x).unwrap();
        drop(r);
    }
    let (recs, rel) = commit(&a, &dev, 102);
    a.release(&rel).unwrap();
    let b = Allocator::open(&dev, g, &recs).unwrap();
    for i in 0..g.narena {
        assert_eq!(b.free_ranges(i), a.free_ranges(i), "arena {i}");
    }
    let n: u64 = a.stats().iter().map(|s| s.compressions).sum();
    assert!(
        max_chain >= 4,
        "the test must grow a chain ({max_chain}, {n} compressions)"
    );
    assert!(n > 0, "long chains are compressed");
    assert!(
        a.stats().iter().all(|s| s.log_blocks <= 2),
        "compressed logs are short"
    );
    // Reference defect §13.2 #21: a one-block log was recompressed at every
    // sync. Ours only ever appends to a short log.
    let b = Allocator::format(geo()).unwrap();
    commit(&b, &dev, 1);
    for gen in 2..50 {
        let x = b.alloc(Kind::Meta, Tier::Normal).unwrap();
        let (r, rel) = commit(&b, &dev, gen);
        b.release(&rel).unwrap();
        let i = geo().arena_of(x).unwrap() as usize;
        assert_eq!(r[i].log_blocks, 1);
        let rp = replay(&dev, &geo(), i as u32, &r[i]).unwrap();
        assert!(
            rp.entries as u64 >= gen,
            "the log grew instead of being rewritten"
        );
    }
}

#[test]
fn a_full_device_still_commits_and_frees() {
    let dev = MemDev::new(DEV);
    let a = Allocator::format(geo()).unwrap();
    commit(&a, &dev, 1);
    let mut all = Vec::new();
    while let Ok(x) = a.alloc(Kind::Meta, Tier::Reserve) {
        all.push(x);
    }
    assert!(matches!(
        a.alloc(Kind::Meta, Tier::Normal),
        Err(Error::NoSpace)
    ));
    let (_, rel) = commit(&a, &dev, 2);
    a.release(&rel).unwrap();
    // Delete everything in small commits, as a user emptying the device would.
    for (gen, chunk) in (3..).zip(all.chunks(3000)) {
        for x in chunk {
            a.free(*x).unwrap();
        }
        let (recs, rel) = commit(&a, &dev, gen);
        a.release(&rel).unwrap();
        assert_eq!(log_view(&a), replayed_view(&dev, &recs));
    }
    let total: u64 = a.stats().iter().map(|s| s.blocks).sum();
    let free = a.free_blocks();
    let logs: u64 = a.stats().iter().map(|s| s.log_blocks).sum();
    assert_eq!(free + logs, total, "every block but the logs' comes back");
    assert!(all.len() as u64 * BLKSZ_U64 > DEV * 9 / 10);
}
