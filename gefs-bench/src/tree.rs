//! `gefs-bench tree`: the store's Bε tree on an image file against redb on
//! the same disk.
//!
//! Both get the same 16-byte keys and `--value-size` values in the same
//! order (`rng::random_key` / `rng::seq_key`), and the same cache size.
//! Writes: ours is one `Store::upsert` per `--batch` keys (default one) and
//! a durable `Store::sync` every `--commit-every` keys; redb is one write
//! transaction per `--commit-every` keys with `Durability::Immediate` and one
//! `insert` per key. Reads run on the randomly loaded store and database
//! with `--threads` threads for `--seconds`: ours calls `Store::lookup` and
//! `Store::scan`; each redb thread opens one read transaction and table and
//! calls `get` and `range` on it. Every value read is checked.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gefs_core::alloc::Tier;
use gefs_core::device::{FileDev, OpenMode};
use gefs_core::format::msg::Msg;
use gefs_core::format::BLKSZ;
use gefs_core::store::{FormatOpts, Store, TreeId};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::cpu::{Cpu, Mark};
use crate::hist::Histogram;
use crate::report::{Goal, Phase, Report, Run};
use crate::rng::{random_key, seq_key, value, value_ok, Rng, KEY_LEN};
use crate::BenchResult;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

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
}

/// The phases, in the order they run.
pub const PHASES: [&str; 4] = ["random-insert", "seq-insert", "lookup", "scan"];

type KeyFn = fn(u64) -> [u8; KEY_LEN];

/// Bytes this process has caused to be written to storage (Linux
/// `/proc/self/io`), if known.
fn io_write_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Bytes of disk a (possibly sparse) file takes.
fn disk_bytes(p: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map_or(0.0, |m| (m.blocks() * 512) as f64)
}

/// What a write phase measured.
struct Load {
    ops: Histogram,
    commit: Histogram,
    secs: f64,
    commits: u64,
    io_bytes: Option<u64>,
    cpu: Cpu,
}

impl Load {
    fn run(&self, name: &str, o: &TreeOpts, file: &Path) -> Run {
        let n = o.keys.max(1) as f64;
        let mut r = Run::new(name, o.keys, self.secs, &self.ops)
            .kind("commit", &self.commit)
            .counter("commits", self.commits as f64)
            .counter("disk_bytes", disk_bytes(file))
            .cpu(&self.cpu);
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
    let io0 = io_write_bytes();
    let mut l = Load {
        ops: Histogram::new(),
        commit: Histogram::new(),
        secs: 0.0,
        commits: 0,
        io_bytes: None,
        cpu: Cpu::default(),
    };
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
    l.secs = start.elapsed().as_secs_f64();
    l.cpu = m.since();
    l.io_bytes = io0.zip(io_write_bytes()).map(|(a, b)| b.saturating_sub(a));
    Ok(l)
}

fn redb_load(db: &Database, o: &TreeOpts, key: KeyFn) -> BenchResult<Load> {
    let io0 = io_write_bytes();
    let mut l = Load {
        ops: Histogram::new(),
        commit: Histogram::new(),
        secs: 0.0,
        commits: 0,
        io_bytes: None,
        cpu: Cpu::default(),
    };
    let m = Mark::now();
    let start = Instant::now();
    let mut i = 0;
    while i < o.keys {
        let end = (i + o.commit_every).min(o.keys);
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut tb = tx.open_table(TABLE)?;
            for j in i..end {
                let k = key(j);
                let v = value(j, o.value_size);
                let t0 = Instant::now();
                tb.insert(k.as_slice(), v.as_slice())?;
                l.ops.record_since(t0);
            }
        }
        let t0 = Instant::now();
        tx.commit()?;
        l.commit.record_since(t0);
        l.commits += 1;
        i = end;
    }
    l.secs = start.elapsed().as_secs_f64();
    l.cpu = m.since();
    l.io_bytes = io0.zip(io_write_bytes()).map(|(a, b)| b.saturating_sub(a));
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
        &FormatOpts {
            user: "bench".into(),
            cache_bytes: o.cache_bytes,
        },
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

fn redb_open(path: &Path, o: &TreeOpts) -> BenchResult<Database> {
    let db = redb::Builder::new()
        .set_cache_size(o.cache_bytes)
        .create(path)?;
    // Create the table, so that readers find it even with zero keys.
    let tx = db.begin_write()?;
    tx.open_table(TABLE)?;
    tx.commit()?;
    Ok(db)
}

/// One thread's reader: one operation per call, returning entries read.
type Reader<'a> = Box<dyn FnMut(&mut Rng) -> BenchResult<u64> + 'a>;

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

fn missing(who: &str, i: u64) -> Box<dyn std::error::Error + Send + Sync> {
    format!("{who}: key number {i} is missing or has a wrong value").into()
}

fn gefs_reader<'a>(s: &'a Store, t: TreeId, o: &'a TreeOpts, scan: bool) -> Reader<'a> {
    Box::new(move |rng| {
        let i = rng.below(o.keys);
        let k = random_key(i);
        if scan {
            let v = s.scan(t, Bound::Included(&k[..]), Bound::Unbounded, o.scan_len)?;
            match v.first() {
                Some((fk, fv)) if fk[..] == k[..] && value_ok(i, o.value_size, fv) => {
                    Ok(v.len() as u64)
                }
                _ => Err(missing("gefs scan", i)),
            }
        } else {
            match s.lookup(t, &k)? {
                Some(v) if value_ok(i, o.value_size, &v) => Ok(1),
                _ => Err(missing("gefs lookup", i)),
            }
        }
    })
}

fn redb_reader<'a>(db: &Database, o: &'a TreeOpts, scan: bool) -> BenchResult<Reader<'a>> {
    let tb = db.begin_read()?.open_table(TABLE)?;
    Ok(Box::new(move |rng| {
        let i = rng.below(o.keys);
        let k = random_key(i);
        if scan {
            let mut it = tb.range(k.as_slice()..)?;
            let mut n = 0;
            while n < o.scan_len as u64 {
                let Some(e) = it.next() else { break };
                let (ek, ev) = e?;
                if n == 0 && (ek.value() != k.as_slice() || !value_ok(i, o.value_size, ev.value()))
                {
                    return Err(missing("redb scan", i));
                }
                n += 1;
            }
            if n == 0 {
                return Err(missing("redb scan", i));
            }
            Ok(n)
        } else {
            match tb.get(k.as_slice())? {
                Some(g) if value_ok(i, o.value_size, g.value()) => Ok(1),
                _ => Err(missing("redb lookup", i)),
            }
        }
    }))
}

/// One write phase: a fresh image and a fresh database in `dir`, loaded
/// with `key`. Returns the runs and, when `keep`, the open store and
/// database.
fn write_phase(
    o: &TreeOpts,
    dir: &Path,
    tag: &str,
    key: KeyFn,
    progress: &dyn Fn(&str),
) -> BenchResult<(Run, Run, Store, TreeId, Database)> {
    let img = dir.join(format!("{tag}.gefs"));
    let rdb = dir.join(format!("{tag}.redb"));
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
    progress(&format!("tree {tag}-insert: redb"));
    let db = redb_open(&rdb, o)?;
    let l = redb_load(&db, o, key)?;
    let base = l.run("redb", o, &rdb);
    Ok((ours, base, s, t, db))
}

fn insert_desc(order: &str, o: &TreeOpts) -> String {
    format!(
        "{} {order} inserts of {KEY_LEN}-byte keys and {}-byte values into a fresh image / \
         database; durable commit every {} keys (ours: Store::sync; redb: Durability::Immediate \
         transaction); ours upserts {} key(s) per call; latency = one upsert/insert call",
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
    if o.preallocate {
        rep.notes.push(
            "--preallocate: our image files were written out before formatting; \
             redb's file grows as it goes"
                .into(),
        );
    }
    rep.notes.push(
        "ops/s of insert phases is keys over wall time, commits included; \
         bytes_written_per_op (ours) counts the blocks the store wrote; \
         io_write_bytes_per_op is the kernel's write_bytes accounting from /proc/self/io \
         (pages dirtied, file-system metadata included), the only figure redb has"
            .into(),
    );
    rep.notes.push(
        "gefs lookups return an owned Vec per value; redb returns a guard into its page".into(),
    );
    rep
}

/// The lookup or scan phase on the randomly loaded store and database.
fn read_pair(
    o: &TreeOpts,
    store: &Store,
    tree: TreeId,
    db: &Database,
    scan: bool,
    progress: &dyn Fn(&str),
) -> BenchResult<Phase> {
    let name = if scan { "scan" } else { "lookup" };
    progress(&format!("tree {name}: gefs"));
    let (r, e) = read_phase(o, &|| Ok(gefs_reader(store, tree, o, scan)))?;
    let ours = named(r, "gefs", e);
    progress(&format!("tree {name}: redb"));
    let (r, e) = read_phase(o, &|| redb_reader(db, o, scan))?;
    let base = named(r, "redb", e);
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
    Ok(Phase::new(name, &desc, ours, Some(base)))
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
    let (a, b, store, tree, db) = write_phase(o, dir, "random", random_key, progress)?;
    let desc = insert_desc("random-order", o);
    rep.phases
        .push(Phase::new("random-insert", &desc, a, Some(b)));
    if want("seq-insert") {
        let (a, b, s2, _, d2) = write_phase(o, dir, "seq", seq_key, progress)?;
        drop((s2, d2));
        std::fs::remove_file(dir.join("seq.gefs"))?;
        std::fs::remove_file(dir.join("seq.redb"))?;
        let desc = insert_desc("ascending", o);
        rep.phases.push(Phase::new("seq-insert", &desc, a, Some(b)));
    }
    for scan in [false, true] {
        if want(if scan { "scan" } else { "lookup" }) {
            rep.phases
                .push(read_pair(o, &store, tree, &db, scan, progress)?);
        }
    }
    drop(store);
    drop(db);
    let ratio = rep.phases.first().and_then(|p| p.ratio).unwrap_or(0.0);
    rep.goals.push(Goal::new(
        "tree-random-insert",
        "random upserts (16-byte keys, 100-byte values, durable commit every 1000) >= 3x redb",
        3.0,
        ratio,
        o.value_size == 100 && o.commit_every == 1000 && o.batch == 1,
    ));
    Ok(rep)
}
