//! `gefs-bench alloc`: the block allocator.
//!
//! Each thread keeps its own set of live blocks, filled to `live` before the
//! clock starts, then allocates or frees (a random live block) with equal
//! odds. A free of a block allocated since the last commit is released at
//! once, as the store does when no reader holds it; a free of a committed
//! block waits for the next commit, which logs it.
//!
//! Phases:
//! - `alloc-free`: no commits, against a `Mutex<BTreeSet<u64>>` free set of
//!   the same blocks (pop the highest block, insert on free): the per-op
//!   cost of our range map, three tiers and freshness tracking.
//! - `mem k=K` and `file k=K`: with a commit after every K changes (all
//!   threads together), on a `MemDev` and on an image file: the commit's
//!   log blocks are written and flushed (`fdatasync` on the file) and its
//!   frees released, all timed as one commit.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use gefs_core::alloc::{Allocator, Freed, Kind, Tier};
use gefs_core::device::{Device, FileDev, MemDev};
use gefs_core::format::superblock::Geometry;
use gefs_core::{BlockAddr, Gen};
use parking_lot::Mutex;

use crate::cpu::{Cpu, Mark};
use crate::hist::Histogram;
use crate::report::{Phase, Report, Run};
use crate::rng::Rng;
use crate::BenchResult;

/// Operations between two looks at the stop flag.
const BATCH: u64 = 32;

/// Parameters of the allocator benchmark.
#[derive(Debug, Clone)]
pub struct AllocOpts {
    /// Worker threads sharing one allocator.
    pub threads: usize,
    /// Seconds each run lasts.
    pub seconds: f64,
    /// Device size in bytes.
    pub device_bytes: u64,
    /// Live blocks each thread keeps.
    pub live: usize,
    /// Changes (allocations plus frees, all threads) per commit; one phase
    /// per value and device.
    pub commit_every: Vec<u64>,
    /// One operation in `sample` is timed individually.
    pub sample: u64,
}

/// An allocator as the benchmark drives it.
trait BenchAlloc: Sync {
    /// Hand out a block.
    fn take(&self) -> BenchResult<u64>;
    /// Give a block back; returns whether it is reusable at once.
    fn give(&self, b: u64) -> BenchResult<bool>;
}

impl BenchAlloc for Allocator {
    fn take(&self) -> BenchResult<u64> {
        Ok(self.alloc(Kind::Meta, Tier::Normal)?.0)
    }

    fn give(&self, b: u64) -> BenchResult<bool> {
        match self.free(BlockAddr(b))? {
            Freed::Fresh => {
                self.release(&[BlockAddr(b)])?;
                Ok(true)
            }
            Freed::Durable => Ok(false),
        }
    }
}

/// The baseline: every free block number in one ordered set.
pub struct BTreeAlloc {
    free: Mutex<BTreeSet<u64>>,
}

impl BTreeAlloc {
    /// A set holding every block of every arena of `geo`.
    pub fn new(geo: &Geometry) -> BTreeAlloc {
        let mut s = BTreeSet::new();
        for i in 0..geo.narena {
            let lo = geo.arena_base(i) / gefs_core::format::BLKSZ_U64;
            s.extend(lo..lo + geo.arena_blocks());
        }
        BTreeAlloc {
            free: Mutex::new(s),
        }
    }
}

impl BenchAlloc for BTreeAlloc {
    fn take(&self) -> BenchResult<u64> {
        self.free
            .lock()
            .pop_last()
            .ok_or_else(|| "baseline allocator: no space".into())
    }

    fn give(&self, b: u64) -> BenchResult<bool> {
        if self.free.lock().insert(b) {
            Ok(true)
        } else {
            Err(format!("baseline allocator: block {b} freed twice").into())
        }
    }
}

/// Commit state shared by the threads of one run.
struct Committer<'a> {
    alloc: &'a Allocator,
    dev: &'a dyn Device,
    every: u64,
    changes: AtomicU64,
    lock: Mutex<CommitTally>,
}

#[derive(Default)]
struct CommitTally {
    gen: u64,
    commits: u64,
    log_blocks: u64,
    total: Histogram,
    cpu: Histogram,
}

impl Committer<'_> {
    /// Forget what was measured so far (the generation goes on).
    fn reset(&self) {
        let mut t = self.lock.lock();
        *t = CommitTally {
            gen: t.gen,
            ..CommitTally::default()
        };
    }

    /// Count one change; commit when it completes a group of `every`.
    fn changed(&self) -> BenchResult<()> {
        let c = self.changes.fetch_add(1, Ordering::Relaxed) + 1;
        if c.is_multiple_of(self.every) {
            self.commit()?;
        }
        Ok(())
    }

    /// Log the changes, write and flush the log, release what it freed.
    fn commit(&self) -> BenchResult<()> {
        let mut t = self.lock.lock();
        t.gen += 1;
        let t0 = Instant::now();
        let (_recs, out) = self.alloc.commit(Gen(t.gen))?;
        t.cpu.record_since(t0);
        for (addr, b) in &out.writes {
            self.dev.write_at(&b[..], addr.0)?;
        }
        self.dev.flush()?;
        self.alloc.release(&out.release)?;
        t.total.record_since(t0);
        t.commits += 1;
        t.log_blocks += out.writes.len() as u64;
        Ok(())
    }
}

/// What one thread did in one run.
#[derive(Default)]
struct Tally {
    allocs: u64,
    frees: u64,
    all: Histogram,
    alloc: Histogram,
    free: Histogram,
    cpu: Cpu,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.cpu = self.cpu + o.cpu;
        self.allocs += o.allocs;
        self.frees += o.frees;
        self.all.merge(&o.all);
        self.alloc.merge(&o.alloc);
        self.free.merge(&o.free);
    }
}

struct Ctx<'a> {
    o: &'a AllocOpts,
    stop: AtomicBool,
    start: Barrier,
    filled: Barrier,
    committer: Option<Committer<'a>>,
}

fn worker<A: BenchAlloc>(a: &A, cx: &Ctx<'_>, thread: usize) -> BenchResult<Tally> {
    let o = cx.o;
    let mut rng = Rng::new(0xa110c ^ thread as u64);
    let mut live: Vec<u64> = Vec::with_capacity(o.live * 2);
    for _ in 0..o.live {
        live.push(a.take()?);
    }
    cx.filled.wait();
    cx.start.wait();
    let m = Mark::now();
    let mut t = Tally::default();
    let mut n = 0u64;
    while !cx.stop.load(Ordering::Relaxed) {
        for _ in 0..BATCH {
            let timed = n.is_multiple_of(o.sample);
            n += 1;
            let grow = live.is_empty() || (live.len() < 2 * o.live && rng.below(2) == 0);
            let t0 = timed.then(Instant::now);
            if grow {
                live.push(a.take()?);
                t.allocs += 1;
            } else {
                let i = rng.below(live.len() as u64) as usize;
                let b = live.swap_remove(i);
                a.give(b)?;
                t.frees += 1;
            }
            if let Some(t0) = t0 {
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                t.all.record(ns);
                if grow {
                    t.alloc.record(ns);
                } else {
                    t.free.record(ns);
                }
            }
            if let Some(c) = &cx.committer {
                c.changed()?;
            }
        }
    }
    t.cpu = m.since();
    Ok(t)
}

/// Run the workers for the configured time; a commit (if any) right after
/// the live sets are filled makes them durable before the clock starts.
fn run_threads<A: BenchAlloc>(a: &A, cx: &Ctx<'_>) -> BenchResult<(Tally, f64)> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..cx.o.threads)
            .map(|t| s.spawn(move || worker(a, cx, t)))
            .collect();
        cx.filled.wait();
        let warm = match &cx.committer {
            Some(c) => c.commit().map(|()| c.reset()),
            None => Ok(()),
        };
        cx.start.wait();
        let t0 = Instant::now();
        if warm.is_ok() {
            std::thread::sleep(Duration::from_secs_f64(cx.o.seconds));
        }
        cx.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        let mut err = warm.err();
        for h in hs {
            match h.join() {
                Ok(Ok(t)) => total.merge(&t),
                Ok(Err(e)) => err = Some(e),
                Err(_) => err = Some("an allocator benchmark thread panicked".into()),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        match err {
            Some(e) => Err(e),
            None => Ok((total, secs)),
        }
    })
}

fn ctx<'a>(o: &'a AllocOpts, committer: Option<Committer<'a>>) -> Ctx<'a> {
    Ctx {
        o,
        stop: AtomicBool::new(false),
        start: Barrier::new(o.threads + 1),
        filled: Barrier::new(o.threads + 1),
        committer,
    }
}

fn to_run(name: &str, t: &Tally, secs: f64) -> Run {
    Run::new(name, t.allocs + t.frees, secs, &t.all)
        .kind("alloc", &t.alloc)
        .kind("free", &t.free)
        .counter("allocs", t.allocs as f64)
        .counter("frees", t.frees as f64)
        .cpu(&t.cpu)
}

/// One commit phase on `dev`.
fn commit_phase(o: &AllocOpts, dev: &dyn Device, every: u64) -> BenchResult<Run> {
    let geo = Geometry::for_device(dev.size())?;
    let alloc = Allocator::format(geo)?;
    let committer = Committer {
        alloc: &alloc,
        dev,
        every,
        changes: AtomicU64::new(0),
        lock: Mutex::new(CommitTally::default()),
    };
    // The first commit writes every arena's log; it is not measured.
    committer.commit()?;
    committer.reset();
    let cx = ctx(o, Some(committer));
    let (t, secs) = run_threads(&alloc, &cx)?;
    let c = cx
        .committer
        .map(|c| c.lock.into_inner())
        .unwrap_or_default();
    let measured = c.commits.max(1);
    Ok(to_run("gefs", &t, secs)
        .kind("commit", &c.total)
        .kind("commit_cpu", &c.cpu)
        .counter("commits", c.commits as f64)
        .counter("changes_per_commit", every as f64)
        .counter(
            "log_blocks_per_commit",
            c.log_blocks as f64 / measured as f64,
        ))
}

/// The per-op phase: ours and the `BTreeSet` baseline, no commits.
fn per_op_phase(o: &AllocOpts, geo: Geometry, progress: &dyn Fn(&str)) -> BenchResult<Phase> {
    progress("alloc alloc-free: gefs");
    let ours = Allocator::format(geo)?;
    let (t, secs) = run_threads(&ours, &ctx(o, None))?;
    let a = to_run("gefs", &t, secs);
    drop(ours);
    progress("alloc alloc-free: btreeset");
    let base = BTreeAlloc::new(&geo);
    let (t, secs) = run_threads(&base, &ctx(o, None))?;
    let b = to_run("btreeset", &t, secs);
    drop(base);
    Ok(Phase::new(
        "alloc-free",
        "alloc or free (random live block) at equal odds, no commits; frees released at once; \
         baseline: Mutex<BTreeSet<u64>> of free block numbers",
        a,
        Some(b),
    ))
}

/// Run the allocator benchmark, with image files in `dir`.
pub fn run(o: &AllocOpts, dir: &Path, progress: &dyn Fn(&str)) -> BenchResult<Report> {
    if o.threads == 0 || o.sample == 0 || o.commit_every.contains(&0) {
        return Err("--threads, --sample and --commit-every must be at least 1".into());
    }
    let geo = Geometry::for_device(o.device_bytes)?;
    let mut rep = Report::new("alloc");
    rep.param("threads", o.threads);
    rep.param("seconds", o.seconds);
    rep.param("device_mb", o.device_bytes >> 20);
    rep.param("arenas", geo.narena);
    rep.param("live_per_thread", o.live);
    rep.param("commit_every", &o.commit_every);
    rep.param("sample_every", o.sample);
    rep.notes.push(
        "ops/s counts allocations and frees over wall time, commits included; \
         commit latency is in latency_by_kind_ns.commit"
            .into(),
    );
    rep.phases.push(per_op_phase(o, geo, progress)?);
    for &k in &o.commit_every {
        progress(&format!("alloc mem k={k}"));
        let r = commit_phase(o, &MemDev::new(o.device_bytes), k)?;
        let desc = format!(
            "alloc/free mix with a commit every {k} changes on a MemDev; commit = \
             Allocator::commit + write log blocks + flush + release"
        );
        rep.phases
            .push(Phase::new(&format!("mem k={k}"), &desc, r, None));
        progress(&format!("alloc file k={k}"));
        let path = dir.join("alloc.img");
        let file = FileDev::create(&path, o.device_bytes)?;
        let r = commit_phase(o, &file, k)?;
        drop(file);
        std::fs::remove_file(&path)?;
        let desc = format!("as mem k={k}, on an image file in --dir; the flush is fdatasync");
        rep.phases
            .push(Phase::new(&format!("file k={k}"), &desc, r, None));
    }
    Ok(rep)
}
