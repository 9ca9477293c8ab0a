//! `gefs-bench tree`: the store's Bε tree on an image file against redb (the
//! baseline) and fjall (a peer), on the same disk.
//!
//! All get the same 16-byte keys and `--value-size` values in the same
//! order (`rng::random_key` / `rng::seq_key`), and the same cache size.
//! Writes: ours is one `Store::upsert` per `--batch` keys (default one) and
//! a durable `Store::sync` every `--commit-every` keys; the peers' write
//! paths are in [`crate::peers`]. Reads run on the randomly loaded stores
//! with `--threads` threads for `--seconds`: ours calls `Store::get` (a
//! value in place in the cached leaf, as redb's guard into its page) and
//! `Store::scan_with` (entries visited in place, as redb's range iterator).
//! Every value read is checked.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gefs_core::alloc::Tier;
use gefs_core::device::{FileDev, OpenMode};
use gefs_core::format::msg::Msg;
use gefs_core::format::BLKSZ;
use gefs_core::store::{Store, TreeId};
use redb::Database;

use crate::cpu::{Cpu, Mark};
use crate::hist::Histogram;
use crate::peers::{self, Fjall};
use crate::report::{Goal, Phase, Report, Run};
use crate::rng::{random_key, seq_key, value, value_ok, Rng, KEY_LEN};
use crate::BenchResult;

/// Parameters of the tree benchmark.
#[derive(Debug, Clone)]
pub struct TreeOpts {
    /// Reader threads in the lookup and scan phases.
    pub threads: usize,
    /// Seconds each read phase runs, per implementation.
    pub seconds: f64,
    /// Keys inserted by each write phase.
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Keys per durable commit.
    pub commit_every: u64,
    /// Keys per `Store::upsert` call (ours only).
    pub batch: u64,
    /// Cache bytes, for ours and for redb.
    pub cache_bytes: usize,
    /// Entries per range scan.
    pub scan_len: usize,
    /// Size of our image files.
    pub image_bytes: u64,
    /// Write our image files out in full before formatting them (redb's
    /// file cannot be prepared this way, so this favours ours).
    pub preallocate: bool,
    /// Phases to run ("random-insert", "seq-insert", "lookup", "scan"); the
    /// read phases read what random-insert wrote, so they imply it.
    pub phases: Vec<String>,
    /// Run ours only, without redb and fjall (for profiling ours).
    pub ours_only: bool,
}

/// The phases, in the order they run.
pub const PHASES: [&str; 4] = ["random-insert", "seq-insert", "lookup", "scan"];

/// Key number to key.
pub type KeyFn = fn(u64) -> [u8; KEY_LEN];

/// Bytes this process has caused to be written to storage (Linux
/// `/proc/self/io`), if known.
pub fn io_write_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The process's peak resident set so far (Linux `VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Bytes of disk a (possibly sparse) file, or a directory's files, take.
fn disk_bytes(p: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(p) else {
        return 0.0;
    };
    if !m.is_dir() {
        return (m.blocks() * 512) as f64;
    }
    std::fs::read_dir(p).map_or(0.0, |d| d.flatten().map(|e| disk_bytes(&e.path())).sum())
}

/// What a write phase measured.
pub struct Load {
    /// Latency of each insert call.
    pub ops: Histogram,
    /// Latency of each durable commit.
    pub commit: Histogram,
    /// Latency of the final checkpoint (ours only).
    pub checkpoint: Histogram,
    secs: f64,
    /// Commits made.
    pub commits: u64,
    io0: Option<u64>,
    io_bytes: Option<u64>,
    cpu: Cpu,
    proc0: Option<(u64, u64)>,
    proc: Cpu,
}

impl Load {
    /// Start measuring a write phase.
    pub fn start() -> Load {
        Load {
            ops: Histogram::new(),
            commit: Histogram::new(),
            checkpoint: Histogram::new(),
            secs: 0.0,
            commits: 0,
            io0: io_write_bytes(),
            io_bytes: None,
            cpu: Cpu::default(),
            proc0: crate::cpu::process_now(),
            proc: Cpu::default(),
        }
    }

    /// The phase ended: record its wall time, the loading thread's CPU
    /// time since `m`, the process's and the bytes written.
    pub fn finish(&mut self, start: Instant, m: Mark) {
        self.secs = start.elapsed().as_secs_f64();
        self.cpu = m.since();
        self.proc = crate::cpu::process_since(self.proc0);
        self.io_bytes = self
            .io0
            .zip(io_write_bytes())
            .map(|(a, b)| b.saturating_sub(a));
    }

    fn run(&self, name: &str, o: &TreeOpts, file: &Path) -> Run {
        let n = o.keys.max(1) as f64;
        let mut r = Run::new(name, o.keys, self.secs, &self.ops)
            .kind("commit", &self.commit)
            .kind("checkpoint", &self.checkpoint)
            .counter("commits", self.commits as f64)
            .counter("disk_bytes", disk_bytes(file))
            .cpu(&self.cpu);
        if self.proc.known {
            r = r.counter("process_cpu_seconds", self.proc.run_ns as f64 / 1e9);
        }
        if let Some(b) = self.io_bytes {
            let payload = n * (KEY_LEN + o.value_size) as f64;
            r = r
                .counter("io_write_bytes_per_op", b as f64 / n)
                .counter("write_amplification", b as f64 / payload);
        }
        r
    }
}

fn gefs_load(s: &Store, t: TreeId, o: &TreeOpts, key: KeyFn) -> BenchResult<Load> {
    let mut l = Load::start();
    let m = Mark::now();
    let start = Instant::now();
    let (mut i, mut since) = (0, 0);
    while i < o.keys {
        let end = (i + o.batch).min(o.keys);
        let msgs: Vec<Msg> = (i..end)
            .map(|j| Msg::insert(key(j).to_vec(), value(j, o.value_size)))
            .collect();
        let t0 = Instant::now();
        s.upsert(t, msgs, Tier::Normal)?;
        l.ops.record_since(t0);
        since += end - i;
        i = end;
        if since >= o.commit_every || i == o.keys {
            let t0 = Instant::now();
            s.sync()?;
            l.commit.record_since(t0);
            l.commits += 1;
            since = 0;
        }
    }
    // The quiet moment after the load: apply what the write buffer holds
    // to the tree and commit that, as gefsd's clock would. Counted in the
    // load's time.
    let t0 = Instant::now();
    if s.checkpoint()? {
        s.sync()?;
    }
    l.checkpoint.record_since(t0);
    l.finish(start, m);
    Ok(l)
}

/// A new image file with a formatted store and its `main` tree mounted.
fn gefs_open(path: &Path, o: &TreeOpts) -> BenchResult<(Store, TreeId)> {
    let dev = if o.preallocate {
        preallocate(path, o.image_bytes)?;
        FileDev::open(path, OpenMode::ReadWrite)?
    } else {
        FileDev::create(path, o.image_bytes)?
    };
    let dev = Arc::new(dev);
    let s = Store::format(
        dev,
        &gefs_core::testing::format_opts_for("bench", o.cache_bytes),
    )?;
    let t = s.mount("main")?;
    Ok((s, t))
}

/// Write the whole image with zeros and make it durable, so that no later
/// write allocates file blocks (std has no `fallocate`; zeros have the same
/// effect on the file's extents).
fn preallocate(path: &Path, size: u64) -> BenchResult<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// One thread's reader: one operation per call, returning entries read.
pub type Reader<'a> = Box<dyn FnMut(&mut Rng) -> BenchResult<u64> + 'a>;

/// Run a reader per thread for `seconds`; every operation is timed.
fn read_phase<'a>(
    o: &TreeOpts,
    make: &(dyn Fn() -> BenchResult<Reader<'a>> + Sync),
) -> BenchResult<(Run, u64)> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(o.threads + 1);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..o.threads)
            .map(|t| {
                let (stop, start) = (&stop, &start);
                s.spawn(move || -> BenchResult<(Histogram, u64, Cpu)> {
                    let r = make();
                    start.wait();
                    let m = Mark::now();
                    let mut r = r?;
                    let mut rng = Rng::new(0x7ee ^ t as u64);
                    let (mut h, mut entries) = (Histogram::new(), 0);
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..16 {
                            let t0 = Instant::now();
                            entries += r(&mut rng)?;
                            h.record_since(t0);
                        }
                    }
                    Ok((h, entries, m.since()))
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(o.seconds));
        stop.store(true, Ordering::Relaxed);
        let (mut h, mut entries, mut err) = (Histogram::new(), 0, None);
        let mut cpu = Cpu::default();
        for j in hs {
            match j.join() {
                Ok(Ok((x, e, c))) => {
                    h.merge(&x);
                    entries += e;
                    cpu = cpu + c;
                }
                Ok(Err(e)) => err = Some(e),
                Err(_) => err = Some("a tree benchmark thread panicked".into()),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        if let Some(e) = err {
            return Err(e);
        }
        Ok((Run::new("", h.count(), secs, &h).cpu(&cpu), entries))
    })
}

fn named(mut r: Run, name: &str, entries: u64) -> Run {
    r.implementation = name.to_string();
    let per = if r.seconds > 0.0 {
        entries as f64 / r.seconds
    } else {
        0.0
    };
    r.counter("entries_per_sec", per)
}

/// The error of a reader that did not find what it wrote.
pub fn missing(who: &str, i: u64) -> Box<dyn std::error::Error + Send + Sync> {
    format!("{who}: key number {i} is missing or has a wrong value").into()
}

fn gefs_reader<'a>(s: &'a Store, t: TreeId, o: &'a TreeOpts, scan: bool) -> Reader<'a> {
    Box::new(move |rng| {
        let i = rng.below(o.keys);
        let k = random_key(i);
        if scan {
            let mut first = None;
            let n = s.scan_with(
                t,
                Bound::Included(&k[..]),
                Bound::Unbounded,
                o.scan_len,
                |fk, fv| {
                    if first.is_none() {
                        first = Some(fk[..] == k[..] && value_ok(i, o.value_size, fv));
                    }
                    Ok(())
                },
            )?;
            match first {
                Some(true) => Ok(n as u64),
                _ => Err(missing("gefs scan", i)),
            }
        } else {
            match s.get(t, &k)? {
                Some(v) if value_ok(i, o.value_size, &v) => Ok(1),
                _ => Err(missing("gefs lookup", i)),
            }
        }
    })
}

/// The stores a write phase loaded, open for the read phases.
struct Loaded {
    store: Store,
    tree: TreeId,
    /// The peers' databases (`None` with `--ours-only`).
    peers: Option<(Database, Fjall)>,
}

/// One write phase: a fresh image, redb database and fjall database in
/// `dir`, each loaded with `key`. Returns the phase and the open stores.
fn write_phase(
    o: &TreeOpts,
    dir: &Path,
    tag: &str,
    key: KeyFn,
    progress: &dyn Fn(&str),
) -> BenchResult<(Phase, Loaded)> {
    let img = dir.join(format!("{tag}.gefs"));
    let rdb = dir.join(format!("{tag}.redb"));
    let fj = dir.join(format!("{tag}.fjall"));
    progress(&format!("tree {tag}-insert: gefs"));
    let (s, t) = gefs_open(&img, o)?;
    let st0 = s.stats();
    let l = gefs_load(&s, t, o, key)?;
    let st1 = s.stats();
    let written = (st1.blocks_written - st0.blocks_written) as f64;
    let ours = l
        .run("gefs", o, &img)
        .counter(
            "bytes_written_per_op",
            written * BLKSZ as f64 / o.keys.max(1) as f64,
        )
        .counter("cache_hits", (st1.cache.hits - st0.cache.hits) as f64)
        .counter("cache_misses", (st1.cache.misses - st0.cache.misses) as f64);
    // Ours runs first: the process's peak so far is ours (and the bench's).
    let ours = match peak_rss() {
        Some(p) if tag == "random" => ours.counter("peak_rss_bytes", p as f64).counter(
            "peak_rss_over_cache_bytes",
            p.saturating_sub(o.cache_bytes as u64) as f64,
        ),
        _ => ours,
    };
    let order = if tag == "seq" {
        "ascending"
    } else {
        "random-order"
    };
    let desc = insert_desc(order, o);
    let name = format!("{tag}-insert");
    if o.ours_only {
        let loaded = Loaded {
            store: s,
            tree: t,
            peers: None,
        };
        return Ok((Phase::new(&name, &desc, ours, None), loaded));
    }
    progress(&format!("tree {tag}-insert: redb"));
    let db = peers::redb_open(&rdb, o)?;
    let base = peers::redb_load(&db, o, key)?.run("redb", o, &rdb);
    progress(&format!("tree {tag}-insert: fjall"));
    let f = peers::fjall_open(&fj, o)?;
    let fjall = peers::fjall_load(&f, o, key)?.run("fjall", o, &fj);
    let phase = Phase::new(&name, &desc, ours, Some(base)).peer(fjall);
    let loaded = Loaded {
        store: s,
        tree: t,
        peers: Some((db, f)),
    };
    Ok((phase, loaded))
}

fn insert_desc(order: &str, o: &TreeOpts) -> String {
    format!(
        "{} {order} inserts of {KEY_LEN}-byte keys and {}-byte values into a fresh image / \
         database; durable commit every {} keys (ours: Store::sync; redb: Durability::Immediate \
         transaction; fjall: persist(SyncData)); ours upserts {} key(s) per call; latency = one \
         upsert/insert call",
        o.keys, o.value_size, o.commit_every, o.batch
    )
}

/// A report with the parameters and notes of a tree run.
fn new_report(o: &TreeOpts) -> Report {
    let mut rep = Report::new("tree");
    rep.param("threads", o.threads);
    rep.param("seconds", o.seconds);
    rep.param("keys", o.keys);
    rep.param("key_size", KEY_LEN);
    rep.param("value_size", o.value_size);
    rep.param("commit_every", o.commit_every);
    rep.param("batch", o.batch);
    rep.param("cache_mb", o.cache_bytes >> 20);
    rep.param("scan_len", o.scan_len);
    rep.param("image_mb", o.image_bytes >> 20);
    rep.param("phases", &o.phases);
    rep.param("preallocate", o.preallocate);
    rep.param("ours_only", o.ours_only);
    if o.preallocate {
        rep.notes.push(
            "--preallocate: our image files were written out before formatting; \
             redb's and fjall's files grow as they go"
                .into(),
        );
    }
    rep.notes.push(
        "ops/s of insert phases is keys over wall time, commits included; \
         bytes_written_per_op (ours) counts the blocks the store wrote; \
         io_write_bytes_per_op is the kernel's write_bytes accounting from /proc/self/io \
         (pages dirtied, file-system metadata included), the only figure the peers have"
            .into(),
    );
    rep.notes.push(
        "cpu_seconds counts the loading thread; process_cpu_seconds every thread of the \
         process, which includes fjall's background flushes and compactions"
            .into(),
    );
    rep.notes.push(
        "ours ends each insert phase at a quiet moment: the write buffer is applied to the \
         tree (Store::checkpoint) and committed, as gefsd's clock does; that time is in the \
         phase's"
            .into(),
    );
    rep.notes.push(
        "fjall runs with its defaults (lz4 block compression; these values compress well)".into(),
    );
    rep
}

/// The lookup or scan phase on the randomly loaded stores.
fn read_pair(o: &TreeOpts, l: &Loaded, scan: bool, progress: &dyn Fn(&str)) -> BenchResult<Phase> {
    let name = if scan { "scan" } else { "lookup" };
    progress(&format!("tree {name}: gefs"));
    let (r, e) = read_phase(o, &|| Ok(gefs_reader(&l.store, l.tree, o, scan)))?;
    let ours = named(r, "gefs", e);
    let peers = match &l.peers {
        Some((db, f)) => {
            progress(&format!("tree {name}: redb"));
            let (r, e) = read_phase(o, &|| peers::redb_reader(db, o, scan))?;
            let base = named(r, "redb", e);
            progress(&format!("tree {name}: fjall"));
            let (r, e) = read_phase(o, &|| Ok(peers::fjall_reader(f, o, scan)))?;
            Some((base, named(r, "fjall", e)))
        }
        None => None,
    };
    let desc = if scan {
        format!(
            "range scans of {} entries from a random existing key, {} threads, on the \
             random-insert data; every operation timed",
            o.scan_len, o.threads
        )
    } else {
        format!(
            "point lookups of random existing keys, {} threads, on the random-insert data; \
             every operation timed",
            o.threads
        )
    };
    Ok(match peers {
        Some((base, fjall)) => Phase::new(name, &desc, ours, Some(base)).peer(fjall),
        None => Phase::new(name, &desc, ours, None),
    })
}

/// The goals of issue 10, judged on this run's phases.
fn goals(o: &TreeOpts, rep: &mut Report) {
    let stated = o.value_size == 100 && o.commit_every == 1000 && o.batch == 1;
    let phase = |n: &str| rep.phases.iter().find(|p| p.name == n);
    let ratio = |n: &str, peer: &str| phase(n).and_then(|p| p.ratio_to(peer));
    let mut goals = Vec::new();
    if let Some(r) = ratio("random-insert", "redb") {
        goals.push(Goal::new(
            "tree-random-insert-redb",
            "random upserts (16-byte keys, 100-byte values, durable commit every 1000) >= 5x redb",
            5.0,
            r,
            stated,
        ));
    }
    if let Some(r) = ratio("random-insert", "fjall") {
        goals.push(Goal::new(
            "tree-random-insert-fjall",
            "random upserts (16-byte keys, 100-byte values, durable commit every 1000) >= 1x fjall",
            1.0,
            r,
            stated,
        ));
    }
    if let Some(p) = phase("random-insert") {
        let wa = |r: &Run| r.counters.get("write_amplification").copied();
        if let (Some(ours), Some(base)) = (wa(&p.ours), p.baseline.as_ref().and_then(wa)) {
            goals.push(Goal::new(
                "tree-write-amplification",
                "write amplification of random upserts <= redb's (ratio = redb's / ours)",
                1.0,
                base / ours.max(1e-9),
                stated,
            ));
        }
    }
    for (name, what) in [
        ("lookup", "point lookups"),
        ("scan", "range scans"),
        ("seq-insert", "sequential inserts"),
    ] {
        if let Some(r) = ratio(name, "redb") {
            goals.push(Goal::new(
                &format!("tree-{name}"),
                &format!("{what} >= 1x redb"),
                1.0,
                r,
                true,
            ));
        }
    }
    rep.goals.extend(goals);
}

/// Run the tree benchmark, with image and database files in `dir`.
pub fn run(o: &TreeOpts, dir: &Path, progress: &dyn Fn(&str)) -> BenchResult<Report> {
    if o.keys == 0 || o.threads == 0 || o.commit_every == 0 || o.batch == 0 || o.scan_len == 0 {
        return Err(
            "--keys, --threads, --commit-every, --batch and --scan-len must be at least 1".into(),
        );
    }
    if let Some(p) = o.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        return Err(format!("unknown tree phase {p:?} ({})", PHASES.join(", ")).into());
    }
    let mut rep = new_report(o);
    let want = |p: &str| o.phases.iter().any(|x| x == p);
    // The read phases read what random-insert wrote.
    let loaded = if ["random-insert", "lookup", "scan"].iter().any(|p| want(p)) {
        let (phase, loaded) = write_phase(o, dir, "random", random_key, progress)?;
        rep.phases.push(phase);
        Some(loaded)
    } else {
        None
    };
    if want("seq-insert") {
        let (phase, l2) = write_phase(o, dir, "seq", seq_key, progress)?;
        drop(l2);
        for f in ["seq.gefs", "seq.redb"] {
            let f = dir.join(f);
            if f.exists() {
                std::fs::remove_file(f)?;
            }
        }
        if dir.join("seq.fjall").exists() {
            std::fs::remove_dir_all(dir.join("seq.fjall"))?;
        }
        rep.phases.push(phase);
    }
    if let Some(loaded) = &loaded {
        for scan in [false, true] {
            if want(if scan { "scan" } else { "lookup" }) {
                rep.phases.push(read_pair(o, loaded, scan, progress)?);
            }
        }
    }
    drop(loaded);
    goals(o, &mut rep);
    Ok(rep)
}
