//! `gefs-bench cache`: the block cache against a mutex-protected LRU map.
//!
//! Every thread runs the same loop against one shared cache: pick an
//! address (from a hot set that fits in the cache, or a cold address never
//! used before), `get` it (a miss plucks the LRU tail and fills the 16 KiB
//! buffer with a synthetic `load`), check that the block holds what was
//! loaded for that address, clone and drop the handle one time in four,
//! and keep the handle for `hold` operations before dropping it, the way a
//! tree descent holds a path. Three phases: all hits, all misses, and a mix.
//! Each operation is classified as a hit or a miss by whether `load` ran.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gefs_core::cache::{Block, Cache};
use gefs_core::format::BLKSZ;
use gefs_core::BlockAddr;
use parking_lot::Mutex;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::cpu::{Cpu, Mark};
use crate::hist::Histogram;
use crate::report::{Goal, Phase, Report, Run};
use crate::rng::{mix, Rng};
use crate::BenchResult;

/// Operations between two looks at the stop flag.
const BATCH: u64 = 64;

/// Parameters of the cache benchmark.
#[derive(Debug, Clone)]
pub struct CacheOpts {
    /// Worker threads sharing one cache.
    pub threads: usize,
    /// Seconds each implementation runs each phase.
    pub seconds: f64,
    /// Buffers in each cache.
    pub buffers: usize,
    /// Addresses in the hot set (must fit in the cache).
    pub hot: u64,
    /// Share of operations that go to the hot set in the mixed phase.
    pub hit_percent: u32,
    /// Handles each thread keeps before dropping the oldest.
    pub hold: usize,
    /// One operation in `sample` is timed individually.
    pub sample: u64,
    /// Phases to run, by name ("hit", "miss", "mixed").
    pub phases: Vec<String>,
    /// Each phase alternates ours and the baseline over this many rounds
    /// (ours first in even rounds), splitting `seconds` between them, so a
    /// drift in the machine's speed affects both alike.
    pub rounds: u32,
}

/// A cache as the benchmark drives it.
trait BenchCache: Sync {
    /// A held block.
    type Handle<'a>: Clone
    where
        Self: 'a;
    /// Find block `a`, loading it with [`fill`] on a miss. Returns the
    /// handle and whether it was a miss.
    fn fetch(&self, a: u64) -> BenchResult<(Self::Handle<'_>, bool)>;
    /// The first 8 bytes of the held block.
    fn head(h: &Self::Handle<'_>) -> u64;
}

/// The synthetic load: the whole buffer is written, the address first.
fn fill(buf: &mut [u8; BLKSZ], a: u64) {
    buf.fill(a as u8);
    buf[..8].copy_from_slice(&a.to_be_bytes());
}

fn head_of(buf: &[u8; BLKSZ]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[..8]);
    u64::from_be_bytes(w)
}

impl BenchCache for Cache {
    type Handle<'a> = Block<'a>;

    fn fetch(&self, a: u64) -> BenchResult<(Block<'_>, bool)> {
        let mut missed = false;
        let b = self.get(BlockAddr::from_index(a), mix(a), |buf| {
            missed = true;
            fill(buf, a);
            Ok(())
        })?;
        Ok((b, missed))
    }

    fn head(h: &Block<'_>) -> u64 {
        head_of(h.bytes())
    }
}

type Buf = [u8; BLKSZ];

/// "No address" in the baseline's nodes and links.
const NONE: u64 = u64::MAX;
const NIL: u32 = u32::MAX;

/// One entry of the baseline: an address (or none) and its buffer.
struct Node {
    addr: u64,
    buf: Option<Arc<Buf>>,
    prev: u32,
    next: u32,
}

/// The baseline's state under its one mutex: an address → node map and an
/// intrusive doubly linked LRU list over a fixed slab of nodes, so every
/// operation is O(1).
struct LruState {
    map: HashMap<u64, u32, Xxh3DefaultBuilder>,
    nodes: Vec<Node>,
    head: u32,
    tail: u32,
}

impl LruState {
    fn link_head(&mut self, n: u32) {
        let old = self.head;
        self.nodes[n as usize].prev = NIL;
        self.nodes[n as usize].next = old;
        if old == NIL {
            self.tail = n;
        } else {
            self.nodes[old as usize].prev = n;
        }
        self.head = n;
    }

    fn link_tail(&mut self, n: u32) {
        let old = self.tail;
        self.nodes[n as usize].next = NIL;
        self.nodes[n as usize].prev = old;
        if old == NIL {
            self.head = n;
        } else {
            self.nodes[old as usize].next = n;
        }
        self.tail = n;
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.nodes[n as usize].prev, self.nodes[n as usize].next);
        if p == NIL {
            self.head = x;
        } else {
            self.nodes[p as usize].next = x;
        }
        if x == NIL {
            self.tail = p;
        } else {
            self.nodes[x as usize].prev = p;
        }
        self.nodes[n as usize].prev = NIL;
        self.nodes[n as usize].next = NIL;
    }
}

/// The baseline: `Mutex<HashMap<u64, Arc<[u8; 16384]>>>` plus an LRU list,
/// of a fixed number of buffers. A hit moves the entry to the head and
/// clones its `Arc`; a miss takes the tail node off the list and the map,
/// fills its buffer outside the lock (reusing it unless a holder still has
/// it), and links it at the head. Holders keep evicted buffers alive, as
/// `Arc`s do; the baseline never waits for them.
pub struct MutexLru {
    st: Mutex<LruState>,
}

impl MutexLru {
    /// A baseline cache of `n` zeroed buffers.
    pub fn new(n: usize) -> MutexLru {
        let n = n.max(1);
        let mut st = LruState {
            map: HashMap::with_capacity_and_hasher(n, Xxh3DefaultBuilder),
            nodes: (0..n)
                .map(|_| Node {
                    addr: NONE,
                    buf: Some(Arc::new([0u8; BLKSZ])),
                    prev: NIL,
                    next: NIL,
                })
                .collect(),
            head: NIL,
            tail: NIL,
        };
        for i in 0..n as u32 {
            st.link_head(i);
        }
        MutexLru { st: Mutex::new(st) }
    }

    fn missing() -> Box<dyn std::error::Error + Send + Sync> {
        "baseline cache: a mapped node has no buffer".into()
    }
}

impl BenchCache for MutexLru {
    type Handle<'a> = Arc<Buf>;

    fn fetch(&self, a: u64) -> BenchResult<(Arc<Buf>, bool)> {
        let mut st = self.st.lock();
        if let Some(&n) = st.map.get(&a) {
            st.unlink(n);
            st.link_head(n);
            let b = st.nodes[n as usize].buf.clone().ok_or_else(Self::missing)?;
            return Ok((b, false));
        }
        let n = st.tail;
        if n == NIL {
            return Err("baseline cache: every buffer is being loaded".into());
        }
        st.unlink(n);
        let old = std::mem::replace(&mut st.nodes[n as usize].addr, NONE);
        if old != NONE {
            st.map.remove(&old);
        }
        let prev = st.nodes[n as usize].buf.take();
        drop(st);
        let mut buf = match prev {
            Some(b) if Arc::strong_count(&b) == 1 => b,
            _ => Arc::new([0u8; BLKSZ]),
        };
        if let Some(m) = Arc::get_mut(&mut buf) {
            fill(m, a);
        }
        let mut st = self.st.lock();
        if let Some(&m) = st.map.get(&a) {
            // Another thread loaded it meanwhile: ours becomes a spare.
            st.nodes[n as usize].buf = Some(buf);
            st.link_tail(n);
            st.unlink(m);
            st.link_head(m);
            let b = st.nodes[m as usize].buf.clone().ok_or_else(Self::missing)?;
            return Ok((b, true));
        }
        st.nodes[n as usize].addr = a;
        st.nodes[n as usize].buf = Some(buf.clone());
        st.map.insert(a, n);
        st.link_head(n);
        Ok((buf, true))
    }

    fn head(h: &Arc<Buf>) -> u64 {
        head_of(h)
    }
}

/// What one thread did in one run.
#[derive(Default)]
struct Tally {
    hits: u64,
    misses: u64,
    all: Histogram,
    hit: Histogram,
    miss: Histogram,
    cpu: Cpu,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.cpu = self.cpu + o.cpu;
        self.hits += o.hits;
        self.misses += o.misses;
        self.all.merge(&o.all);
        self.hit.merge(&o.hit);
        self.miss.merge(&o.miss);
    }
}

/// Addresses of cold blocks in phase `phase` start here; no two phases or
/// threads share one, so a cold address always misses.
fn cold_base(phase: u64) -> u64 {
    (phase + 1) << 36
}

#[derive(Clone, Copy)]
struct Work {
    thread: usize,
    phase: u64,
    hit_percent: u32,
}

fn worker<C: BenchCache>(
    c: &C,
    o: &CacheOpts,
    w: Work,
    stop: &AtomicBool,
    start: &Barrier,
) -> BenchResult<Tally> {
    let mut rng = Rng::new((w.phase << 32) ^ w.thread as u64 ^ 0xcafe);
    let mut cold = cold_base(w.phase) + w.thread as u64;
    let step = o.threads as u64;
    let mut ring: VecDeque<C::Handle<'_>> = VecDeque::with_capacity(o.hold + 1);
    let mut t = Tally::default();
    let mut n = 0u64;
    start.wait();
    let m = Mark::now();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..BATCH {
            let a = if rng.below(100) < u64::from(w.hit_percent) {
                rng.below(o.hot)
            } else {
                cold += step;
                cold
            };
            let extra = rng.below(4) == 0;
            let timed = n.is_multiple_of(o.sample);
            n += 1;
            let t0 = timed.then(Instant::now);
            let (h, missed) = c.fetch(a)?;
            if C::head(&h) != a {
                return Err(format!("cache returned the wrong block for address {a}").into());
            }
            if extra {
                let h2 = h.clone();
                std::hint::black_box(&h2);
            }
            ring.push_back(h);
            if ring.len() > o.hold {
                ring.pop_front();
            }
            if let Some(t0) = t0 {
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                t.all.record(ns);
                if missed {
                    t.miss.record(ns);
                } else {
                    t.hit.record(ns);
                }
            }
            if missed {
                t.misses += 1;
            } else {
                t.hits += 1;
            }
        }
    }
    t.cpu = m.since();
    Ok(t)
}

/// Run `threads` workers against `c` for `secs` seconds.
fn run_once<C: BenchCache>(
    c: &C,
    o: &CacheOpts,
    phase: u64,
    hit: u32,
    secs: f64,
) -> BenchResult<(Tally, f64)> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(o.threads + 1);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..o.threads)
            .map(|thread| {
                let w = Work {
                    thread,
                    phase,
                    hit_percent: hit,
                };
                let (stop, start) = (&stop, &start);
                s.spawn(move || worker(c, o, w, stop, start))
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        let mut err = None;
        for h in hs {
            match h.join() {
                Ok(Ok(t)) => total.merge(&t),
                Ok(Err(e)) => err = Some(e),
                Err(_) => err = Some("a cache benchmark thread panicked".into()),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        match err {
            Some(e) => Err(e),
            None => Ok((total, secs)),
        }
    })
}

/// Load every hot address, so that the hit phase starts with hits.
fn warm<C: BenchCache>(c: &C, hot: u64) -> BenchResult<()> {
    for a in 0..hot {
        c.fetch(a)?;
    }
    Ok(())
}

struct Acc {
    t: Tally,
    secs: f64,
}

fn to_run(name: &str, a: &Acc) -> Run {
    Run::new(name, a.t.hits + a.t.misses, a.secs, &a.t.all)
        .kind("hit", &a.t.hit)
        .kind("miss", &a.t.miss)
        .counter("hits", a.t.hits as f64)
        .counter("misses", a.t.misses as f64)
        .cpu(&a.t.cpu)
}

/// Run both caches through one phase, alternating over the rounds.
fn phase(
    ours: &Cache,
    base: &MutexLru,
    o: &CacheOpts,
    id: u64,
    hit: u32,
    progress: &dyn Fn(&str),
) -> BenchResult<(Acc, Acc)> {
    let rounds = o.rounds.max(1);
    let secs = o.seconds / f64::from(rounds);
    let mut a = Acc {
        t: Tally::default(),
        secs: 0.0,
    };
    let mut b = Acc {
        t: Tally::default(),
        secs: 0.0,
    };
    for r in 0..rounds {
        let sub = id * 64 + u64::from(r);
        let mut one = |which: bool| -> BenchResult<()> {
            if which {
                progress("gefs");
                let (t, s) = run_once(ours, o, sub, hit, secs)?;
                a.t.merge(&t);
                a.secs += s;
            } else {
                progress("mutex-lru");
                let (t, s) = run_once(base, o, sub, hit, secs)?;
                b.t.merge(&t);
                b.secs += s;
            }
            Ok(())
        };
        let first = r % 2 == 0;
        one(first)?;
        one(!first)?;
    }
    Ok((a, b))
}

/// Refuse parameters the benchmark cannot run with.
fn validate(o: &CacheOpts) -> BenchResult<()> {
    if o.hot == 0 || o.hot as usize >= o.buffers {
        return Err(format!(
            "the hot set ({} blocks) must be non-empty and smaller than the cache ({} buffers)",
            o.hot, o.buffers
        )
        .into());
    }
    if o.threads == 0 || o.sample == 0 {
        return Err("--threads and --sample must be at least 1".into());
    }
    if let Some(p) = o.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        return Err(format!("unknown cache phase {p:?} ({})", PHASES.join(", ")).into());
    }
    Ok(())
}

/// The phases, in the order they run.
pub const PHASES: [&str; 3] = ["hit", "miss", "mixed"];

/// A report with the parameters of a cache run.
fn new_report(o: &CacheOpts) -> Report {
    let mut rep = Report::new("cache");
    rep.param("threads", o.threads);
    rep.param("seconds", o.seconds);
    rep.param("buffers", o.buffers);
    let mb = (o.buffers * BLKSZ) as f64 / f64::from(1u32 << 20);
    rep.param("cache_mb", mb);
    rep.param("hot_blocks", o.hot);
    rep.param("hit_percent", o.hit_percent);
    rep.param("hold", o.hold);
    rep.param("sample_every", o.sample);
    rep.param("rounds", o.rounds);
    rep.param("phases", &o.phases);
    rep.notes
        .push("latency includes two clock reads (~20-50 ns); compare ratios within one run".into());
    rep
}

/// Run the cache benchmark.
pub fn run(o: &CacheOpts, progress: &dyn Fn(&str)) -> BenchResult<Report> {
    validate(o)?;
    let ours = Cache::with_buffers(o.buffers);
    let base = MutexLru::new(o.buffers);
    let mut rep = new_report(o);
    let what = [
        "every get finds a hot block already cached",
        "every get is a new address: pluck the LRU tail, fill 16 KiB",
        "hot and cold gets mixed at --hit-percent",
    ];
    let hit = [100, 0, o.hit_percent];
    for (id, name) in PHASES.into_iter().enumerate() {
        if !o.phases.iter().any(|p| p == name) {
            continue;
        }
        if hit[id] > 0 {
            warm(&ours, o.hot)?;
            warm(&base, o.hot)?;
        }
        let (a, b) = phase(&ours, &base, o, id as u64, hit[id], &|who| {
            progress(&format!("cache {name}: {who}"));
        })?;
        let desc = format!(
            "{}; op = get + check + 1-in-4 clone/drop + drop of the handle held {} ops ago; \
             {} threads share one cache of {} buffers; 1 op in {} timed",
            what[id], o.hold, o.threads, o.buffers, o.sample
        );
        let (a, b) = (to_run("gefs", &a), to_run("mutex-lru", &b));
        rep.phases.push(Phase::new(name, &desc, a, Some(b)));
    }
    rep.param("gefs_cache_waits", ours.stats().waits);
    let hit_ratio = rep.phases.iter().find(|p| p.name == "hit");
    if let Some(r) = hit_ratio.and_then(|p| p.ratio) {
        rep.goals.push(Goal::new(
            "cache-hit-path",
            "cache hit path ops/s >= the mutex LRU baseline with 2 threads",
            1.0,
            r,
            o.threads == 2,
        ));
    }
    Ok(rep)
}
