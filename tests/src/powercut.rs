//! The power-cut crash-state generator (tests T1 and T2) and its oracle, for file-system
//! workloads.
//!
//! A workload runs through `gefs_core::fs` on a [`RecordingDev`]; its log is cut into epochs
//! at the flushes. A power cut during epoch `e` leaves every write of earlier epochs and any
//! subset of epoch `e`'s writes, each possibly torn at 4 KiB. For every epoch we build: no
//! writes and all writes (T1: every flush point), every prefix in issue order, every "all but
//! one", seeded random subsets, seeded random sector tears, and every sector mask of each
//! superblock write (alone and with everything else) (T2). Identical images are verified once:
//! an image's fingerprint is a sum over its non-zero pages of a hash of (address, contents),
//! kept up to date page by page, so telling states apart costs only the pages an epoch wrote.
//!
//! The oracle ([`verify_crash`]): the image opens; its commit is the last acknowledged one or
//! the one after it; every label (`main` and each snapshot) equals the model at that commit —
//! entries, modes, lengths, contents, listings; and the checker (the library gefs-check uses)
//! finds nothing wrong. Some states are then opened read-write, changed, committed, reopened
//! and verified again (use after recovery).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use gefs_core::device::{Device, Epoch, MemDev, RecordingDev};
use gefs_core::format::{block_type, BlockType, BLKSZ, BLKSZ_U64};
use gefs_core::store::{Config, Store};

use crate::fsmodel::{verify, FsOp, Image, Session};
use crate::rng::Rng;
use crate::workloads::NAMES;

/// A workload recorded from a base image.
pub struct Recorded {
    /// The log of every write and flush.
    pub rec: Arc<RecordingDev>,
    /// The commit the base image was at.
    pub first_gen: u64,
    /// The model at every commit (the base's included).
    pub at: BTreeMap<u64, Image>,
}

/// Run `ops` from `base` (whose model is `model`) over a recording device, marking every
/// acknowledged commit. With `check_reads`, every path of [`NAMES`] is read back and compared
/// with the model after every operation. Fails if an operation or a read does what the model
/// does not expect.
pub fn record(
    base: &MemDev,
    model: &Image,
    ops: &[FsOp],
    check_reads: bool,
) -> Result<Recorded, String> {
    let rec = Arc::new(RecordingDev::new(base));
    let mut sess = Session::open(rec.clone(), model.clone())?;
    let first_gen = sess.fs.store().commit_gen();
    for op in ops {
        sess.apply(op)?;
        if *op == FsOp::Sync {
            rec.mark(sess.fs.store().commit_gen());
        }
        if check_reads {
            for p in NAMES {
                sess.check_path(p)
                    .map_err(|e| format!("after {op:?}: {e}"))?;
            }
        }
    }
    let at = sess.at.clone();
    drop(sess);
    Ok(Recorded { rec, first_gen, at })
}

/// One crash state.
pub struct Crash {
    /// Where it comes from: `epoch E <pick>`.
    pub name: String,
    /// The last commit acknowledged before the cut.
    pub acked: u64,
    /// The image.
    pub img: MemDev,
}

/// The per-state selection functions for one epoch: (name, persisted(w, s)).
type Pick = (String, Box<dyn Fn(usize, usize) -> bool + Send + Sync>);

fn picks(ep: &Epoch, sb_b: u64, r: &mut Rng) -> Vec<Pick> {
    let n = ep.writes.len();
    let mut v: Vec<Pick> = vec![
        ("none".into(), Box::new(|_, _| false)),
        ("all".into(), Box::new(|_, _| true)),
    ];
    for i in 1..n {
        v.push((format!("prefix {i}"), Box::new(move |w, _| w < i)));
    }
    if n > 1 {
        for j in 0..n {
            v.push((format!("all but {j}"), Box::new(move |w, _| w != j)));
        }
    }
    for k in 0..12 {
        let seed = r.next_u64();
        v.push((
            format!("subset {k} seed {seed:#x}"),
            Box::new(move |w, _| bit(seed, w as u64)),
        ));
        let seed = r.next_u64();
        v.push((
            format!("torn {k} seed {seed:#x}"),
            Box::new(move |w, s| bit(seed, (w * 4 + s) as u64)),
        ));
    }
    for (j, (off, _)) in ep.writes.iter().enumerate() {
        if *off != 0 && *off != sb_b {
            continue;
        }
        for mask in 1..15u32 {
            v.push((
                format!("sb write {j} sectors {mask:04b}"),
                Box::new(move |w, s| w != j || mask & (1 << s) != 0),
            ));
            v.push((
                format!("only sb write {j} sectors {mask:04b}"),
                Box::new(move |w, s| w == j && mask & (1 << s) != 0),
            ));
        }
    }
    v
}

fn bit(seed: u64, i: u64) -> bool {
    let mut x = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    x & 1 == 1
}

/// A page's share of an image fingerprint: 0 for a zero page (as if never written).
fn page_fp(dev: &MemDev, page: u64) -> u64 {
    let mut b = vec![0u8; BLKSZ];
    if dev.read_at(&mut b, page * BLKSZ_U64).is_err() || b.iter().all(|&x| x == 0) {
        return 0;
    }
    let h = xxhash_rust::xxh3::xxh3_64(&b);
    xxhash_rust::xxh3::xxh3_64(&[page.to_be_bytes(), h.to_be_bytes()].concat())
}

/// The fingerprint of a whole image: the wrapping sum of its pages' shares.
fn image_fp(dev: &MemDev) -> u64 {
    dev.written_pages()
        .into_iter()
        .map(|a| page_fp(dev, a / BLKSZ_U64))
        .fold(0u64, u64::wrapping_add)
}

/// Crash images of any recorded run (not only file-system workloads, e.g. a grow): every
/// pick of every flush epoch, deduplicated by content, at most `max`; each with the last
/// commit acknowledged (marked) before its cut, starting from `first_gen`.
pub fn crash_images(
    rec: &RecordingDev,
    first_gen: u64,
    seed: u64,
    max: usize,
) -> Vec<(String, u64, MemDev)> {
    let mut rng = Rng::new(seed);
    let epochs = rec.epochs();
    let sb_b = (rec.size() / BLKSZ_U64 - 1) * BLKSZ_U64;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut acked = first_gen;
    for (e, ep) in epochs.epochs.iter().enumerate() {
        for &(_, m) in &ep.marks {
            acked = acked.max(m);
        }
        for (name, pick) in picks(ep, sb_b, &mut rng) {
            if out.len() >= max {
                return out;
            }
            let img = ep.state(&*pick);
            if seen.insert(img.fingerprint()) {
                out.push((format!("epoch {e} {name}"), acked, img));
            }
        }
    }
    out
}

/// Every distinct crash state of `r`'s log not already in `seen` (which gains them), at most
/// `max`; and how many states were built (duplicates included).
pub fn crash_states(
    r: &Recorded,
    seed: u64,
    max: usize,
    seen: &Mutex<HashSet<u64>>,
) -> (u64, Vec<Crash>) {
    let mut rng = Rng::new(seed);
    let epochs = r.rec.epochs();
    let sb_b = (r.rec.size() / BLKSZ_U64 - 1) * BLKSZ_U64;
    let mut out = Vec::new();
    let mut built = 0;
    let mut acked = r.first_gen;
    let mut start_fp = epochs.epochs.first().map_or(0, |e| image_fp(&e.start));
    for (e, ep) in epochs.epochs.iter().enumerate() {
        for &(_, m) in &ep.marks {
            acked = acked.max(m);
        }
        let mut touched: Vec<u64> = ep
            .writes
            .iter()
            .flat_map(|(off, d)| {
                let first = off / BLKSZ_U64;
                let last = (off + d.len().max(1) as u64 - 1) / BLKSZ_U64;
                first..=last
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let base: u64 = touched
            .iter()
            .map(|&p| page_fp(&ep.start, p))
            .fold(0u64, u64::wrapping_add);
        for (name, pick) in picks(ep, sb_b, &mut rng) {
            let full = out.len() >= max;
            if full && name != "all" {
                continue;
            }
            let img = ep.state(&*pick);
            let now: u64 = touched
                .iter()
                .map(|&p| page_fp(&img, p))
                .fold(0u64, u64::wrapping_add);
            let fp = start_fp.wrapping_sub(base).wrapping_add(now);
            if name == "all" {
                // The next epoch starts where every write of this one landed.
                start_fp = fp;
            }
            if full {
                continue;
            }
            built += 1;
            if seen.lock().map(|mut s| s.insert(fp)).unwrap_or(true) {
                out.push(Crash {
                    name: format!("epoch {e} {name}"),
                    acked,
                    img,
                });
            }
        }
    }
    (built, out)
}

/// Check one crash state against the model at every commit (`at`); with `reuse`, also open it
/// read-write, run a few operations and a commit, and verify and check the result.
pub fn verify_crash(c: &Crash, at: &BTreeMap<u64, Image>, reuse: bool) -> Result<(), String> {
    let dev = Arc::new(c.img.snapshot());
    let cfg = Config {
        cache_bytes: 2 << 20,
        read_only: true,
    };
    let g = Store::open(dev.clone(), &cfg)
        .map_err(|e| format!("does not open: {e}"))?
        .commit_gen();
    if g < c.acked || g > c.acked + 1 {
        return Err(format!("opened commit {g}, acknowledged {}", c.acked));
    }
    let want = at
        .get(&g)
        .ok_or_else(|| format!("opened commit {g}, which no completed sync produced"))?;
    verify(dev, want).map_err(|v| format!("commit {g}: {v}"))?;
    let found = crate::checker::problems(&c.img);
    if !found.is_empty() {
        return Err(format!("commit {g}: check: {}", found.join("; ")));
    }
    if reuse {
        use_after_recovery(&c.img, want, g)
            .map_err(|v| format!("commit {g}: after recovery: {v}"))?;
    }
    Ok(())
}

/// Open the recovered image read-write, change it, commit, reopen, verify, check.
fn use_after_recovery(img: &MemDev, want: &Image, g: u64) -> Result<(), String> {
    let dev = Arc::new(img.snapshot());
    let mut sess = Session::open(dev.clone(), want.clone())?;
    let mut snaps = 0;
    let mut rng = Rng::new(0x5eed ^ g);
    for op in crate::workloads::random_ops(&mut rng, 12, "reuse", &mut snaps) {
        sess.apply(&op)?;
    }
    let now = sess.now.clone();
    drop(sess);
    verify(dev.clone(), &now)?;
    let found = crate::checker::problems(&dev);
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!("check: {}", found.join("; ")))
    }
}

/// How many of a recording's writes carry a message-log block.
pub fn mlog_writes(rec: &RecordingDev) -> u64 {
    rec.epochs()
        .epochs
        .iter()
        .flat_map(|ep| ep.writes.iter())
        .filter(|(_, d)| d.len() >= BLKSZ && block_type(d) == Some(BlockType::Mlog))
        .count() as u64
}

/// What verifying a batch of crash states found.
#[derive(Debug, Default)]
pub struct Tally {
    /// States built (duplicates included).
    pub built: u64,
    /// Distinct states verified.
    pub verified: u64,
    /// States also opened read-write and used after recovery.
    pub reused: u64,
    /// Message-log block writes in the recorded workloads (the commits'
    /// log appends, FORMAT.md §5.6), whose epochs the states cut.
    pub mlog_writes: u64,
    /// Every violation, naming its workload and state.
    pub violations: Vec<String>,
}

impl Tally {
    /// Add another tally.
    pub fn add(&mut self, o: Tally) {
        self.built += o.built;
        self.verified += o.verified;
        self.reused += o.reused;
        self.mlog_writes += o.mlog_writes;
        self.violations.extend(o.violations);
    }
}

/// Record `ops` from `base`, build its distinct crash states (at most `max`), and verify
/// them all, in parallel; every `reuse_every`th is also used after recovery (0: none).
pub fn run_workload(
    base: &MemDev,
    model: &Image,
    ops: &[FsOp],
    seed: u64,
    max: usize,
    reuse_every: usize,
    seen: &Mutex<HashSet<u64>>,
) -> Tally {
    use rayon::prelude::*;
    let r = match record(base, model, ops, false) {
        Ok(r) => r,
        Err(e) => {
            return Tally {
                violations: vec![format!("seed {seed}: {e}; workload {ops:?}")],
                ..Tally::default()
            }
        }
    };
    let (built, states) = crash_states(&r, seed, max, seen);
    let mlog_writes = mlog_writes(&r.rec);
    let results: Vec<(bool, Option<String>)> = states
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let reuse = reuse_every > 0 && i % reuse_every == 0;
            let v = verify_crash(c, &r.at, reuse)
                .err()
                .map(|v| format!("seed {seed} {}: {v}; workload {ops:?}", c.name));
            (reuse, v)
        })
        .collect();
    Tally {
        built,
        verified: states.len() as u64,
        reused: results.iter().filter(|(r, _)| *r).count() as u64,
        mlog_writes,
        violations: results.into_iter().filter_map(|(_, v)| v).collect(),
    }
}

/// The number in environment variable `name` (a harness knob such as `GEFS_CRASH_STATES`),
/// or `default` when it is unset or not a number.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
