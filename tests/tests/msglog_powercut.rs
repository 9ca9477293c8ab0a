//! T1 + T2 and T7 for message logs (issue 10): power cuts and I/O errors
//! while commits append buffered messages to the trees' message logs.
//!
//! The workloads commit often (a sync every few operations) and keep their
//! messages in the logs across many commits; now and then the buffers are
//! applied to the trees (`Store::checkpoint`) with a cache so small that the
//! apply's new blocks are written back before the commit that records them;
//! snapshots are taken and deleted while logs are pending. Over the recorded
//! device:
//! - every flush epoch's crash states (the shared generator: prefixes, all
//!   but one, random subsets, 4 KiB tears, superblock sector masks), so
//!   crashes between a log append and its superblock and during an apply;
//! - every message-log block write torn (first sector only, alone and with
//!   the rest of its epoch) and lost.
//!
//! Each image must open at the last acknowledged commit or the next, equal
//! the model there (the logs replayed), and check clean.
//!
//! Then an I/O error is injected at message-log block writes: the store
//! latches read-only, the commit is never acknowledged, and the image opens
//! at the last acknowledged commit, exactly as the model says, and checks
//! clean.

use std::collections::HashSet;
use std::sync::Arc;

use gefs_core::device::{Device, Event, FaultyDev, IoKind, MemDev, RecordingDev};
use gefs_core::format::{block_type, BlockType, BLKSZ};
use gefs_core::store::{Config, Store};
use gefs_core::Error;
use gefs_tests::model::{apply, verify_state, workload_with, Model, Op};
use gefs_tests::powercut::crash_images;
use rayon::prelude::*;

/// Image size, and the cache the workload runs with (64 buffers: an apply
/// of a few dozen nodes is written back before its commit).
const SIZE: u64 = 32 << 20;
const CACHE: usize = 1 << 20;

fn cfg(read_only: bool) -> Config {
    Config {
        cache_bytes: CACHE,
        read_only,
    }
}

/// A device that hands each block of a vectored write to `D` as its own
/// write (the recording device logs writes that way), so that a
/// [`FaultyDev`] counts writes as the recording numbers them.
struct PerBlock<D>(D);

impl<D: Device> Device for PerBlock<D> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.0.read_at(buf, off)
    }
    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        self.0.write_at(buf, off)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
}

fn formatted() -> MemDev {
    let dev = Arc::new(MemDev::new(SIZE));
    let opts = gefs_core::testing::format_opts(4 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    dev.snapshot()
}

/// The workload of `seed`: the model's operations, with a checkpoint before
/// every `apply_every`th operation. Every other seed overwrites data in
/// place: its data writes go to three blocks of one file, with longer
/// intervals between syncs, so that most replace a buffered insert no log
/// holds yet, whose block is freed at once (`store/overwrite.rs`), and
/// crashes fall between those frees and the commits that follow.
fn workload(seed: u64) -> (Vec<Op>, u64) {
    if seed % 2 == 1 {
        return (workload_with(seed, 150, 4, &[]), 23 + seed % 11);
    }
    let ops = workload_with(seed, 150, 10, &[])
        .into_iter()
        .map(|op| match op {
            Op::Data { blk, fill, .. } => Op::Data {
                qid: 100,
                blk: blk % 3,
                fill,
            },
            op => op,
        })
        .collect();
    (ops, 23 + seed % 11)
}

/// Run `ops` on `main` of a store over `dev`, applying the buffers before
/// every `apply_every`th op; `mark` is told each acknowledged commit. Stops
/// at the first error and returns it with the model so far.
fn run(
    dev: Arc<dyn Device>,
    ops: &[Op],
    apply_every: u64,
    mark: &dyn Fn(u64),
) -> (Model, u64, Option<(usize, gefs_core::Error)>, Store) {
    let s = Store::open(dev, &cfg(false)).expect("open");
    let t = s.mount("main").expect("mount");
    let mut model = Model::start(&s, t).expect("model");
    let mut acked = s.commit_gen();
    for (i, op) in ops.iter().enumerate() {
        if i as u64 % apply_every == apply_every - 1 {
            if let Err(e) = s.checkpoint() {
                return (model, acked, Some((i, e)), s);
            }
        }
        if let Err(e) = apply(&s, t, &mut model, op) {
            return (model, acked, Some((i, e)), s);
        }
        if matches!(op, Op::Sync) {
            acked = s.commit_gen();
            mark(acked);
        }
    }
    (model, acked, None, s)
}

/// The problems of one crash image, opened and checked (none = fine).
fn verify(img: &MemDev, acked: u64, model: &Model) -> Option<String> {
    let s = match Store::open(Arc::new(img.snapshot()), &cfg(true)) {
        Ok(s) => s,
        Err(e) => return Some(format!("does not open: {e}")),
    };
    let g = s.commit_gen();
    if g < acked || g > acked + 1 {
        return Some(format!("opened commit {g}, acknowledged {acked}"));
    }
    let Some(want) = model.at.get(&g) else {
        return Some(format!("opened commit {g}, which no sync produced"));
    };
    if let Err(v) = verify_state(&s, want) {
        return Some(format!("commit {g}: {v}"));
    }
    drop(s);
    let found = gefs_tests::checker::problems(img);
    (!found.is_empty()).then(|| format!("commit {g}: check: {}", found.join("; ")))
}

/// Whether a write carries a message-log block.
fn is_mlog(data: &[u8]) -> bool {
    data.len() >= BLKSZ && block_type(data) == Some(BlockType::Mlog)
}

/// Which sectors of which writes of an epoch persist.
type Pick = Box<dyn Fn(usize, usize) -> bool>;

/// A workload recorded from a freshly formatted image.
struct Recorded {
    /// The log of every write and flush.
    rec: Arc<RecordingDev>,
    /// The model at every acknowledged commit.
    model: Model,
    /// The commit the base image was at.
    first_gen: u64,
}

fn record(seed: u64) -> Recorded {
    let base = formatted();
    let first_gen = Store::open(Arc::new(base.snapshot()), &cfg(true))
        .expect("open")
        .commit_gen();
    let rec = Arc::new(RecordingDev::new(&base));
    let (ops, every) = workload(seed);
    let r2 = rec.clone();
    let (model, _, err, s) = run(rec.clone(), &ops, every, &|g| r2.mark(g));
    assert!(err.is_none(), "seed {seed}: {err:?}");
    drop(s);
    Recorded {
        rec,
        model,
        first_gen,
    }
}

#[test]
fn power_cuts_while_logs_are_written_and_applied() {
    let floor: u64 = std::env::var("GEFS_MSGLOG_CRASH_STATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let (mut unique, mut torn, mut mlog_writes) = (0u64, 0u64, 0u64);
    let mut violations = Vec::new();
    for seed in 1u64.. {
        let r = record(seed);
        let states = crash_images(&r.rec, r.first_gen, seed ^ 0x6d6c, usize::MAX);
        unique += states.len() as u64;
        let found: Vec<String> = states
            .par_iter()
            .filter_map(|(name, acked, img)| {
                verify(img, *acked, &r.model).map(|v| format!("seed {seed} {name}: {v}"))
            })
            .collect();
        violations.extend(found);
        // Every message-log block write torn or lost, alone and with the
        // rest of its epoch.
        let mut acked = r.first_gen;
        let mut seen = HashSet::new();
        for (e, ep) in r.rec.epochs().epochs.iter().enumerate() {
            for &(_, m) in &ep.marks {
                acked = acked.max(m);
            }
            for (w, (_, data)) in ep.writes.iter().enumerate() {
                if !is_mlog(data) {
                    continue;
                }
                mlog_writes += 1;
                let picks: [(&str, Pick); 4] = [
                    (
                        "torn, rest persisted",
                        Box::new(move |x, s| x != w || s == 0),
                    ),
                    ("torn alone", Box::new(move |x, s| x == w && s == 0)),
                    ("lost, rest persisted", Box::new(move |x, _| x != w)),
                    (
                        "all but its last sector",
                        Box::new(move |x, s| x != w || s < 3),
                    ),
                ];
                for (name, pick) in picks {
                    let img = ep.state(&*pick);
                    if !seen.insert(img.fingerprint()) {
                        continue;
                    }
                    torn += 1;
                    if let Some(v) = verify(&img, acked, &r.model) {
                        violations.push(format!("seed {seed} epoch {e} write {w} {name}: {v}"));
                    }
                }
            }
        }
        if unique >= floor || !violations.is_empty() {
            break;
        }
    }
    println!(
        "msglog crash: unique={unique} mlog_block_writes={mlog_writes} \
         torn_log_states={torn} violations={}",
        violations.len()
    );
    assert!(mlog_writes > 0, "the workloads wrote no message-log block");
    assert!(
        violations.is_empty(),
        "{}",
        violations[..violations.len().min(5)].join("\n")
    );
    assert!(unique >= floor, "only {unique} distinct crash states");
}

#[test]
fn io_errors_in_log_writes_latch_and_never_ack() {
    let (ops, every) = workload(3);
    let base = formatted();
    // Which writes (1-based, counted from open) carry message-log blocks.
    let rec = Arc::new(RecordingDev::new(&base));
    let (_, _, err, s) = run(rec.clone(), &ops, every, &|_| {});
    assert!(err.is_none(), "{err:?}");
    drop(s);
    let mut n = 0u64;
    let mut targets = Vec::new();
    for ev in rec.events() {
        if let Event::Write { data, .. } = ev {
            n += 1;
            if is_mlog(&data) {
                targets.push(n);
            }
        }
    }
    assert!(!targets.is_empty(), "no message-log block was written");
    let step = targets.len().div_ceil(30);
    let mut tried = 0;
    for &nth in targets.iter().step_by(step) {
        let mem = Arc::new(base.snapshot());
        let dev = Arc::new(FaultyDev::new(mem.clone()));
        dev.fail_nth(IoKind::Write, nth, false);
        let (model, acked, err, s) = run(Arc::new(PerBlock(dev.clone())), &ops, every, &|_| {});
        let Some((i, e)) = err else {
            panic!("write {nth}: the injected error was never reported");
        };
        tried += 1;
        assert!(s.is_read_only(), "write {nth} (op {i}): {e} did not latch");
        assert_eq!(
            s.commit_gen(),
            acked,
            "write {nth}: a failed commit was acknowledged"
        );
        assert!(
            matches!(s.sync(), Err(Error::Failed)),
            "write {nth}: a sync after the failure"
        );
        drop(s);
        let want = model.at.get(&acked).expect("the acknowledged state");
        let r = Store::open(mem.clone(), &cfg(true)).expect("reopen");
        assert_eq!(r.commit_gen(), acked, "write {nth}: reopened elsewhere");
        verify_state(&r, want).unwrap_or_else(|v| panic!("write {nth}: {v}"));
        drop(r);
        let found = gefs_tests::checker::problems(&mem);
        assert!(found.is_empty(), "write {nth}: {found:?}");
    }
    println!(
        "msglog io errors: log block writes={} injected={tried}",
        targets.len()
    );
}
