//! The power-cut crash-state generator (tests T1 and T2).
//!
//! A workload runs against a [`RecordingDev`]; its log is cut into epochs at
//! the flushes. A power cut during epoch `e` leaves every write of earlier
//! epochs and any subset of epoch `e`'s writes, each possibly torn at 4 KiB.
//! For every epoch we build: no writes, all writes, every prefix in issue
//! order, every "all but one", seeded random subsets, seeded random sector
//! tears, and every sector mask of each superblock write (alone and with
//! everything else). Identical images are verified once.
//!
//! The oracle: the image opens; its commit is the last acknowledged one or
//! the one after it; the `main` tree equals the model at that commit
//! exactly, with every data block verified; and the caller's checker (the
//! same library gefs-check uses) finds nothing wrong.

use std::collections::HashSet;
use std::sync::Arc;

use gefs_core::device::{Device, Epoch, MemDev, RecordingDev};
use gefs_core::format::BLKSZ_U64;
use gefs_core::store::{Config, FormatOpts, Store};

use crate::model::{apply, verify_state, Model, Op};
use crate::rng::Rng;

/// A recorded run.
pub struct Recorded {
    /// The log of every write and flush after formatting.
    pub rec: Arc<RecordingDev>,
    /// The model at every commit.
    pub model: Model,
    /// The commit of the freshly formatted image.
    pub first_gen: u64,
}

/// Format a `size`-byte image, then run `ops` on `main` over a recording
/// device, marking every acknowledged commit.
pub fn record(size: u64, ops: &[Op]) -> Recorded {
    let fmt = Arc::new(MemDev::new(size));
    let opts = FormatOpts {
        user: "glenda".into(),
        cache_bytes: 4 << 20,
    };
    let first_gen = Store::format(fmt.clone(), &opts)
        .expect("format")
        .commit_gen();
    let rec = Arc::new(RecordingDev::new(&fmt));
    let s = Store::open(rec.clone(), &cfg(false)).expect("open");
    let t = s.mount("main").expect("mount");
    let mut model = Model::start(&s, t).expect("model");
    for op in ops {
        apply(&s, t, &mut model, op).expect("workload op");
        if matches!(op, Op::Sync) {
            rec.mark(s.commit_gen());
        }
    }
    Recorded {
        rec,
        model,
        first_gen,
    }
}

fn cfg(read_only: bool) -> Config {
    Config {
        cache_bytes: 2 << 20,
        read_only,
    }
}

/// What enumeration found.
#[derive(Debug, Default)]
pub struct Tally {
    /// Crash states built.
    pub states: u64,
    /// Distinct images among them (each verified).
    pub unique: u64,
    /// States where both superblock copies were torn or stale at once.
    pub sb_torn: u64,
    /// Flush epochs.
    pub epochs: u64,
    /// States opened read-write and used after recovery.
    pub reused: u64,
    /// Every violation, with the state that caused it.
    pub violations: Vec<String>,
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

/// Every distinct crash image of a recorded log, with the last commit
/// acknowledged before it (the one the image must open at, or the next):
/// at most `max` images, deduplicated.
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

/// Build and verify crash states until `max_states` have been built (or
/// the log is exhausted). `check` runs the independent checker on an image
/// and returns its findings (empty = clean).
pub fn enumerate(
    r: &Recorded,
    seed: u64,
    max_states: u64,
    check: &(dyn Fn(&MemDev) -> Vec<String> + Sync),
) -> Tally {
    let mut rng = Rng::new(seed);
    let epochs = r.rec.epochs();
    let sb_b = (r.rec.size() / BLKSZ_U64 - 1) * BLKSZ_U64;
    let mut t = Tally::default();
    let mut seen = HashSet::new();
    let mut acked = r.first_gen;
    for (e, ep) in epochs.epochs.iter().enumerate() {
        t.epochs += 1;
        for &(_, m) in &ep.marks {
            acked = acked.max(m);
        }
        let mut todo = Vec::new();
        for (name, pick) in picks(ep, sb_b, &mut rng) {
            if t.states >= max_states {
                break;
            }
            t.states += 1;
            let img = ep.state(&*pick);
            if seen.insert(img.fingerprint()) {
                todo.push((format!("epoch {e} {name}"), img));
            }
        }
        t.unique += todo.len() as u64;
        let reuse_every = 10;
        let results: Vec<(Option<String>, bool, bool)> = std::thread::scope(|sc| {
            let chunks: Vec<_> = todo.chunks(todo.len().div_ceil(2).max(1)).collect();
            let hs: Vec<_> = chunks
                .into_iter()
                .enumerate()
                .map(|(ci, chunk)| {
                    sc.spawn(move || {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(i, (name, img))| {
                                let reuse = (ci * 7919 + i) % reuse_every == 0;
                                let out = verify_image(img, acked, &r.model, check, reuse, sb_b);
                                (out.0.map(|v| format!("{name}: {v}")), out.1, reuse)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (v, torn, reused) in results {
            t.sb_torn += u64::from(torn);
            t.reused += u64::from(reused);
            if let Some(v) = v {
                t.violations.push(v);
            }
        }
        if t.states >= max_states {
            break;
        }
    }
    t
}

/// Verify one crash image. Returns a violation (if any) and whether both
/// superblock copies were unusable-or-stale relative to each other.
fn verify_image(
    img: &MemDev,
    acked: u64,
    model: &Model,
    check: &(dyn Fn(&MemDev) -> Vec<String> + Sync),
    reuse: bool,
    sb_b: u64,
) -> (Option<String>, bool) {
    let torn = both_superblocks_damaged_or_differ(img, sb_b);
    let dev = Arc::new(img.snapshot());
    let s = match Store::open(dev, &cfg(true)) {
        Ok(s) => s,
        Err(e) => return (Some(format!("does not open: {e}")), torn),
    };
    let g = s.commit_gen();
    if g < acked || g > acked + 1 {
        return (
            Some(format!("opened commit {g}, acknowledged {acked}")),
            torn,
        );
    }
    let Some(want) = model.at.get(&g) else {
        return (
            Some(format!(
                "opened commit {g}, which no completed sync produced"
            )),
            torn,
        );
    };
    if let Err(v) = verify_state(&s, want) {
        return (Some(format!("commit {g}: {v}")), torn);
    }
    drop(s);
    let found = check(img);
    if !found.is_empty() {
        return (
            Some(format!("commit {g}: check: {}", found.join("; "))),
            torn,
        );
    }
    if reuse {
        if let Err(v) = use_after_recovery(img, want, check) {
            return (Some(format!("commit {g}: after recovery: {v}")), torn);
        }
    }
    (None, torn)
}

fn both_superblocks_damaged_or_differ(img: &MemDev, sb_b: u64) -> bool {
    let mut a = vec![0u8; 16384];
    let mut b = vec![0u8; 16384];
    let _ = img.read_at(&mut a, 0);
    let _ = img.read_at(&mut b, sb_b);
    a != b
}

/// Open the recovered image read-write, change it, commit, reopen, verify.
fn use_after_recovery(
    img: &MemDev,
    want: &crate::model::State,
    check: &(dyn Fn(&MemDev) -> Vec<String> + Sync),
) -> Result<(), String> {
    let dev = Arc::new(img.snapshot());
    let s = Store::open(dev.clone(), &cfg(false)).map_err(|e| e.to_string())?;
    let t = s.mount("main").map_err(|e| e.to_string())?;
    let mut m = Model {
        now: want.main.clone(),
        snaps: want.snaps.clone(),
        at: Default::default(),
    };
    let taken: Vec<String> = want.snaps.keys().cloned().collect();
    let ops = crate::model::workload_with(0x5eed ^ s.commit_gen(), 30, 4, &taken);
    for op in &ops {
        apply(&s, t, &mut m, op).map_err(|e| format!("{op:?}: {e}"))?;
    }
    drop(s);
    let s = Store::open(dev.clone(), &cfg(true)).map_err(|e| e.to_string())?;
    verify_state(&s, &m.state())?;
    drop(s);
    let found = check(&dev);
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!("check: {}", found.join("; ")))
    }
}
