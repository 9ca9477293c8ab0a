//! The offline checker (fsck): verify everything reachable from the
//! superblocks, and the allocator's state against reachability.
//!
//! Three passes, each block read once, and the file-system checks:
//! 1. **Superblocks and logs** (`sb.rs`): both copies are decoded and the
//!    one in use is chosen by the rule [`Store::open`] uses; every arena's
//!    allocation log is replayed (chain hashes, entries, free counts), which
//!    gives the allocated set.
//! 2. **Scan** (`scan.rs`): every allocated block is read in large reads in
//!    address order (one reader thread, `threads - 1` workers hashing; one
//!    thread doing both for `threads` ≤ 2), hashed, and — if it is a tree node
//!    or a chain block — summarized (`summary.rs`).
//! 3. **Graph** (`walk.rs`, `snaps.rs`, `records.rs`, `dead.rs`): from the
//!    roots, every pointer's hash is compared with the hash computed in
//!    pass 2, and every node is checked against its parent (level, fill, key
//!    range) and its contents (key shapes, `KDAT` pointers, generations
//!    below `nextgen`, labels naming snapshots, label names, snapshot
//!    records' links and counts, deadlist entries against the trees). A reachable block the scan did not cover is read on its own
//!    and, if its arena's log says it is free, reported. Finally every
//!    allocated block nothing reached is a leak.
//! 4. **Message logs** (`mlog.rs`): each snapshot record's chain of
//!    message-log blocks is followed and verified; its messages are the
//!    newest of the tree and ride down from the root with the buffered ones.
//! 5. **File-system checks** (`apply.rs`, `files.rs`), per file tree, during
//!    its walk: buffered messages are carried down each path and applied at
//!    the leaves, which gives each key's current value and which data
//!    pointers the tree owns (a value a later `Clobber` removes is not
//!    owned: its block was released by whoever clobbered it, so it may be
//!    free). The current `KENT`, `KUP`, `KCLEAR` and `KDAT` keys fill
//!    compact per-tree tables (memory follows the number of files, not
//!    data), checked when the walk ends: entry names, one root, unique qid
//!    paths below `nextqid`, up-links, parents and cycles, and data keys
//!    only under files, below their length unless a clear note covers them.
//!    [`check_store`] leaves these out, for images that are a store but not
//!    a file system.
//!
//! What this checks that the reference's `checkfs` does not (§13.2 #26):
//! every data block's hash, the fill of every child including the last,
//! leaks, and the height recorded for every tree.
//!
//! Invariants: nothing here panics on any image (every decoder is
//! bounds-checked; descent is bounded by levels and by per-owner visit
//! marks); every finding names its block and is reported once; damage is
//! reported and skipped, never a reason to stop checking the rest. Only an
//! image with no decodable superblock (or an unreadable device) makes
//! [`check`] fail. Memory follows metadata: a data block costs a 16-byte
//! table entry, a node its compact summary.
//!
//! Snapshots may share blocks: a block records the last tree that reached
//! it, so a block reached twice *within* one tree is corruption while one
//! reached by two trees is counted as shared. A shared subtree is walked
//! once per tree.
//!
//! [`Store::open`]: crate::store::Store::open

mod apply;
mod damage;
mod dead;
mod files;
mod live;
mod mlog;
mod records;
mod report;
mod sb;
mod scan;
mod snaps;
mod summary;
mod table;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use crate::alloc::FreeMap;
use crate::device::Device;
use crate::error::Result;
use crate::format::superblock::Geometry;
use crate::format::BLKSZ_U64;
use crate::ids::BlockAddr;

pub use live::check_pinned;
pub use report::{CopyState, Kind, Problem, Report, Role, Stats, SuperInfo, TreeInfo};

use summary::Sum;
use table::{owner, Entry, Run, Table, Tag, Use};
use walk::TreeSpec;

/// How far the scan has got, in bytes of allocated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes scanned so far.
    pub done: u64,
    /// Bytes to scan.
    pub total: u64,
}

/// A progress callback; called from worker threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to check.
#[derive(Clone, Default)]
pub struct CheckOpts {
    /// Threads for the scan, the reader included (0: one per available
    /// core). One or two: one thread reads and hashes in turn; more: one
    /// reader and `threads - 1` hashing workers.
    pub threads: usize,
    /// Called as the scan progresses.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for CheckOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOpts")
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The state of the graph pass.
pub(crate) struct Checker<'a> {
    dev: &'a dyn Device,
    geo: Geometry,
    table: Table,
    /// Each arena's replayed free map; none when its log did not replay.
    free: Vec<Option<FreeMap>>,
    problems: Vec<Problem>,
    stats: Stats,
    trees: Vec<TreeInfo>,
    /// Blocks named by deadlist entries, with the listing block and owner.
    deadlisted: Vec<dead::Dead>,
    /// For each listed block (by number), the tree owners that reach it.
    dead_hits: std::collections::HashMap<u64, Vec<u32>>,
    /// Each file tree's owner id and snapshot id.
    tree_owners: Vec<(u32, u64)>,
    /// Whether to make the file-system checks on every file tree.
    fs: bool,
    /// The superblock's next qid path.
    nextqid: u64,
    /// The chosen superblock's format version.
    version: u32,
    /// The superblock's next generation.
    nextgen: u64,
    /// The highest generation found in use.
    max_gen: u64,
    /// Generations found at or above `nextgen`.
    gen_over: u64,
    /// Problems of the tree being walked that lost a block, with what the
    /// block held (named when the walk ends, `damage.rs`).
    damage: Vec<(usize, damage::Target)>,
}

/// Check the image on `dev`: blocks, trees, allocation, and the
/// file-system checks on every file tree. `Err` only when it cannot be
/// checked at all (no decodable superblock, or the device cannot be read);
/// every finding is in the [`Report`].
pub fn check(dev: &dyn Device, opts: &CheckOpts) -> Result<Report> {
    run(dev, opts, true)
}

/// Check the image on `dev` as a store only: blocks, trees and allocation,
/// without the file-system checks. For images whose trees hold keys that
/// are not a file system (the engine's own tests write `KDAT` keys with
/// no files); everything else is as [`check`].
pub fn check_store(dev: &dyn Device, opts: &CheckOpts) -> Result<Report> {
    run(dev, opts, false)
}

fn run(dev: &dyn Device, opts: &CheckOpts, fs: bool) -> Result<Report> {
    let t0 = Instant::now();
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let chosen = sb::choose(dev, &mut problems, &mut warnings)?;
    let geo = chosen.sb.geometry;
    let (free, chains, mut runs) =
        allocation(&geo, &chosen.sb.arenas, chosen.replays, &mut problems);
    scan::number(&mut runs);
    let t1 = Instant::now();
    let (mut table, ss) = scan::scan(dev, runs, threads, opts.progress.as_ref())?;
    let scan_seconds = t1.elapsed().as_secs_f64();
    for bp in &chains {
        table.insert(
            bp.addr.index(),
            Entry {
                hash: bp.hash,
                owner: owner::LOG,
                tag: Tag::Plain,
                used: Use::Log,
                shared: false,
            },
        );
    }
    let mut c = Checker {
        dev,
        geo,
        table,
        free,
        problems,
        stats: Stats {
            device_bytes: dev.size(),
            blocks_checked: ss.blocks + chains.len() as u64,
            bytes_read: ss.bytes_read + chains.len() as u64 * BLKSZ_U64,
            reads: ss.reads + chains.len() as u64,
            log_blocks: chains.len() as u64,
            threads,
            scan_seconds,
            ..Stats::default()
        },
        trees: Vec::new(),
        deadlisted: Vec::new(),
        dead_hits: Default::default(),
        tree_owners: Vec::new(),
        fs,
        nextqid: chosen.sb.nextqid,
        version: chosen.sb.version,
        nextgen: chosen.sb.nextgen,
        max_gen: 0,
        gen_over: 0,
        damage: Vec::new(),
    };
    c.stats.free_blocks = c.free.iter().flatten().map(FreeMap::blocks).sum();
    let snap = TreeSpec {
        owner: owner::SNAP,
        name: "snapshot tree".into(),
        snap: 0,
        labels: Vec::new(),
        root: chosen.sb.snap_root,
        height: chosen.sb.snap_height,
        snap_tree: true,
        log: crate::format::Bptr::NONE,
        nodes: None,
    };
    let mut found = Vec::new();
    let info = c.walk_tree(&snap, &mut found);
    c.trees.push(info);
    c.snapshots(found);
    c.check_nextgen();
    c.leaks();
    let mut stats = c.stats;
    stats.bytes_checked = stats.blocks_checked * BLKSZ_U64;
    stats.shared_blocks = c.table.all().filter(|e| e.shared).count() as u64;
    stats.seconds = t0.elapsed().as_secs_f64();
    stats.mb_per_s = stats.bytes_checked as f64 / 1e6 / stats.seconds.max(1e-9);
    Ok(Report {
        problems: c.problems,
        warnings,
        superblock: chosen.info,
        trees: c.trees,
        stats,
    })
}

/// The allocator's view: each arena's free map (none when its log did not
/// replay, which is reported), every log-chain block, and the allocated
/// runs to scan (log-chain blocks excluded: replay has verified them).
fn allocation(
    geo: &Geometry,
    recs: &[crate::format::superblock::ArenaRec],
    replays: Vec<Result<crate::alloc::Replayed>>,
    problems: &mut Vec<Problem>,
) -> (Vec<Option<FreeMap>>, Vec<crate::format::Bptr>, Vec<Run>) {
    let mut free = Vec::with_capacity(replays.len());
    let mut chains = Vec::new();
    let mut runs = Vec::new();
    for (i, r) in replays.into_iter().enumerate() {
        match r {
            Ok(r) => {
                let lo = geo.arena_base(i as u32) / BLKSZ_U64;
                let mut skip: Vec<u64> = r.chain.iter().map(|p| p.addr.index()).collect();
                skip.sort_unstable();
                allocated(lo, lo + geo.arena_blocks(), &r.free, &skip, &mut runs);
                chains.extend(r.chain);
                free.push(Some(r.free));
            }
            Err(e) => {
                let at = recs.get(i).map_or(BlockAddr(0), |a| a.log_tail.addr);
                let mut p = Problem::from_error(&e, at, Role::Log, &format!("arena {i} log"));
                p.what.push_str(&format!(
                    "; arena {i}'s blocks are checked only as reached, and not for leaks"
                ));
                problems.push(p);
                free.push(None);
            }
        }
    }
    (free, chains, runs)
}

/// Append the allocated runs of `[lo, hi)` (blocks not in `free` and not in
/// `skip`, which is sorted) to `out`.
fn allocated(lo: u64, hi: u64, free: &FreeMap, skip: &[u64], out: &mut Vec<Run>) {
    let mut push = |s: u64, e: u64| {
        let mut s = s;
        let from = skip.partition_point(|&b| b < s);
        for &b in skip[from..].iter().take_while(|&&b| b < e) {
            if b > s {
                out.push(Run {
                    start: s,
                    len: b - s,
                    base: 0,
                });
            }
            s = b + 1;
        }
        if e > s {
            out.push(Run {
                start: s,
                len: e - s,
                base: 0,
            });
        }
    };
    let mut at = lo;
    for (s, l) in free.ranges() {
        let (s, e) = (s.max(lo), s.saturating_add(l).min(hi));
        if s >= e {
            continue;
        }
        if s > at {
            push(at, s);
        }
        at = at.max(e);
    }
    if hi > at {
        push(at, hi);
    }
}

impl Checker<'_> {
    /// What a block looks like, for a leak report.
    fn look(&self, blk: u64, e: &Entry) -> Role {
        match (self.table.sums.get(&blk), e.tag) {
            (Some(Sum::Node(n)), _) if n.leaf => Role::Leaf,
            (Some(Sum::Node(_)), _) => Role::Pivot,
            (Some(Sum::BadNode(_)), _) => Role::Node,
            (Some(Sum::Chain(c)), _) if c.hdr.kind == crate::format::BlockType::Log => Role::Log,
            (Some(Sum::Chain(c)), _) if c.hdr.kind == crate::format::BlockType::Mlog => Role::Mlog,
            (Some(Sum::Chain(_)), _) => Role::Deadlist,
            (None, Tag::Unreadable) => Role::Unknown,
            (None, _) => Role::Data,
        }
    }

    /// Report every allocated block nothing reached, as runs of adjacent
    /// blocks that look alike.
    fn leaks(&mut self) {
        let damaged = self.trees.iter().any(|t| t.damaged) || !self.problems.is_empty();
        let mut runs: Vec<(u64, u64, Role)> = Vec::new();
        for (blk, e) in self.table.scanned() {
            if e.owner != owner::NONE {
                continue;
            }
            let role = self.look(blk, e);
            match runs.last_mut() {
                Some((s, l, r)) if *s + *l == blk && *r == role => *l += 1,
                _ => runs.push((blk, 1, role)),
            }
        }
        for (s, l, role) in runs {
            self.stats.leaked_blocks += l;
            let arena = self.geo.arena_of(BlockAddr::from_index(s)).unwrap_or(0);
            let mut what = "allocated but unreachable (leak)".to_string();
            if damaged {
                what.push_str("; possibly orphaned by the damage reported above");
            }
            self.problems.push(Problem {
                kind: Kind::Leak,
                addr: Some(s * BLKSZ_U64),
                blocks: l,
                role,
                owner: format!("arena {arena}"),
                what,
                files: Vec::new(),
            });
        }
    }
}
