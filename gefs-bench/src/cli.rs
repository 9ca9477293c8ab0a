//! The command line: `gefs-bench cache|alloc|tree [options]`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Report;
use crate::{alloc, cache, fsbench, tree, workdir, BenchResult};

/// Benchmarks of gefs-rs against in-process baselines. Each subcommand runs
/// ours and the baseline with the same parameters in the same run, and
/// prints ops/s, latency percentiles and the ratio ours/baseline.
///
/// Exit status: 0 when every run completed (whether or not a goal was
/// met), 1 when a run failed (an error from the code under test, a
/// baseline or the disk), 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "gefs-bench", version, about, long_about)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub common: Common,
    /// What to measure.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Worker threads (cache and alloc), reader threads (tree lookups and scans).
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
    /// Seconds each time-bounded run lasts, per implementation (fractions allowed).
    #[arg(long, global = true, default_value_t = 5.0)]
    pub seconds: f64,
    /// Print one JSON document with every figure instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Directory under which a temporary work directory is made for image
    /// files (default: $CARGO_TARGET_DIR, else ./target if it exists, else
    /// the current directory). It should be on the disk being measured, not
    /// a tmpfs.
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// No progress messages on standard error.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Block cache hits, misses and a mix, against a mutex-protected LRU map.
    Cache(CacheArgs),
    /// Block allocator alloc/free and commits, against a BTreeSet free set.
    Alloc(AllocArgs),
    /// Store inserts, lookups and scans on an image file, against redb.
    Tree(TreeArgs),
    /// File-system figures: import (against cp -r), snapshot create and
    /// delete on a big image, walks in a huge directory (against a small
    /// one), and sequential, random-overwrite and small-file workloads
    /// against the host file system.
    Fs(FsArgs),
}

/// Options of `fs`.
#[derive(Debug, Args)]
pub struct FsArgs {
    /// Host tree to import (default: the Rust std docs, else the cargo registry sources).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// MiB of file data on the snapshot image.
    #[arg(long, default_value_t = 1100)]
    pub data_mb: u64,
    /// Snapshot create/delete cycles.
    #[arg(long, default_value_t = 20)]
    pub cycles: u64,
    /// Entries in the big directory.
    #[arg(long, default_value_t = 100_000)]
    pub big_dir: u64,
    /// Walks timed per directory.
    #[arg(long, default_value_t = 20_000)]
    pub walks: u64,
    /// Size of the file of the seq-write, seq-read and overwrite phases, MiB.
    #[arg(long, default_value_t = 1024)]
    pub file_mb: u64,
    /// Random 4 KiB overwrites in the overwrite phase.
    #[arg(long, default_value_t = 100_000)]
    pub overwrites: u64,
    /// Overwrites per durable commit (ours: sync; host: fdatasync).
    #[arg(long, default_value_t = 1000)]
    pub commit_every: u64,
    /// Files the creates phase makes in one directory.
    #[arg(long, default_value_t = 10_000)]
    pub creates: u64,
    /// Bytes written to each created file.
    #[arg(long, default_value_t = 1024)]
    pub create_bytes: usize,
    /// Our cache for the file-level phases, in MiB.
    #[arg(long, default_value_t = 256)]
    pub cache_mb: usize,
    /// Phases to run (comma-separated): import, snapshot, walk, seq-write,
    /// seq-read, overwrite, creates.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "import,snapshot,walk,seq-write,seq-read,overwrite,creates",
        value_parser = clap::builder::PossibleValuesParser::new(fsbench::PHASES)
    )]
    pub phases: Vec<String>,
}

/// Options of `cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Size of each cache, in MiB of 16 KiB buffers.
    #[arg(long, default_value_t = 64)]
    pub cache_mb: usize,
    /// Blocks in the hot set (default: half the buffers).
    #[arg(long)]
    pub hot: Option<u64>,
    /// Percent of operations on the hot set in the mixed phase.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub hit_percent: u32,
    /// Handles each thread holds before dropping the oldest.
    #[arg(long, default_value_t = 4)]
    pub hold: usize,
    /// Time one operation in this many.
    #[arg(long, default_value_t = 8)]
    pub sample: u64,
    /// Alternate ours and the baseline over this many rounds per phase.
    #[arg(long, default_value_t = 2)]
    pub rounds: u32,
    /// Phases to run (comma-separated): hit, miss, mixed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hit,miss,mixed",
        value_parser = clap::builder::PossibleValuesParser::new(cache::PHASES)
    )]
    pub phases: Vec<String>,
}

/// Options of `alloc`.
#[derive(Debug, Args)]
pub struct AllocArgs {
    /// Device size in MiB (sparse).
    #[arg(long, default_value_t = 4096)]
    pub device_mb: u64,
    /// Live blocks each thread keeps.
    #[arg(long, default_value_t = 10_000)]
    pub live: usize,
    /// Changes per commit; a comma-separated list runs one phase per value.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub commit_every: Vec<u64>,
    /// Time one operation in this many.
    #[arg(long, default_value_t = 4)]
    pub sample: u64,
}

/// Options of `tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Keys each insert phase writes.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys per durable commit (both implementations).
    #[arg(long, default_value_t = 1000)]
    pub commit_every: u64,
    /// Keys per Store::upsert call (ours only).
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Cache size in MiB, for ours and for redb.
    #[arg(long, default_value_t = 256)]
    pub cache_mb: usize,
    /// Entries per range scan.
    #[arg(long, default_value_t = 100)]
    pub scan_len: usize,
    /// Size of our image files in MiB (sparse; default: 2 KiB per key, at least 512).
    #[arg(long)]
    pub image_mb: Option<u64>,
    /// Write our image files out in full before formatting (measures what a
    /// sparse image's block allocation costs; redb's file still grows).
    #[arg(long)]
    pub preallocate: bool,
    /// Phases to run (comma-separated): random-insert, seq-insert, lookup,
    /// scan. A read phase runs random-insert too: it reads its data.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "random-insert,seq-insert,lookup,scan",
        value_parser = clap::builder::PossibleValuesParser::new(tree::PHASES)
    )]
    pub phases: Vec<String>,
    /// Run ours only, without redb and fjall (no ratios; for profiling ours).
    #[arg(long)]
    pub ours_only: bool,
}

/// Run the benchmark `cli` names. `progress` receives one line per step.
pub fn execute(cli: &Cli, progress: &dyn Fn(&str)) -> BenchResult<Report> {
    let c = &cli.common;
    if !(c.seconds > 0.0 && c.seconds.is_finite()) {
        return Err("--seconds must be a positive number".into());
    }
    match &cli.cmd {
        Cmd::Cache(a) => {
            let buffers = (a.cache_mb << 20) / gefs_core::format::BLKSZ;
            let o = cache::CacheOpts {
                threads: c.threads,
                seconds: c.seconds,
                buffers,
                hot: a.hot.unwrap_or(buffers as u64 / 2),
                hit_percent: a.hit_percent,
                hold: a.hold,
                sample: a.sample,
                rounds: a.rounds,
                phases: a.phases.clone(),
            };
            cache::run(&o, progress)
        }
        Cmd::Alloc(a) => {
            let o = alloc::AllocOpts {
                threads: c.threads,
                seconds: c.seconds,
                device_bytes: a.device_mb << 20,
                live: a.live,
                commit_every: a.commit_every.clone(),
                sample: a.sample,
            };
            with_dir(c, |dir| alloc::run(&o, dir, progress))
        }
        Cmd::Tree(a) => {
            let o = tree::TreeOpts {
                threads: c.threads,
                seconds: c.seconds,
                keys: a.keys,
                value_size: a.value_size,
                commit_every: a.commit_every,
                batch: a.batch,
                cache_bytes: a.cache_mb << 20,
                scan_len: a.scan_len,
                image_bytes: a.image_mb.unwrap_or((a.keys * 2048) >> 20).max(512) << 20,
                phases: a.phases.clone(),
                preallocate: a.preallocate,
                ours_only: a.ours_only,
            };
            with_dir(c, |dir| tree::run(&o, dir, progress))
        }
        Cmd::Fs(a) => {
            let o = fsbench::FsOpts {
                from: a.from.clone(),
                data_mb: a.data_mb,
                cycles: a.cycles,
                big_dir: a.big_dir,
                walks: a.walks,
                phases: a.phases.clone(),
                files: crate::fsfiles::FileOpts {
                    file_mb: a.file_mb,
                    overwrites: a.overwrites,
                    commit_every: a.commit_every,
                    creates: a.creates,
                    create_bytes: a.create_bytes,
                    cache_mb: a.cache_mb,
                },
            };
            with_dir(c, |dir| fsbench::run(&o, dir, progress))
        }
    }
}

/// Run `f` in a fresh work directory, recording where it was.
fn with_dir(
    c: &Common,
    f: impl FnOnce(&std::path::Path) -> BenchResult<Report>,
) -> BenchResult<Report> {
    let parent = c.dir.clone().unwrap_or_else(workdir::default_parent);
    let tmp = workdir::create(&parent)?;
    let fs = workdir::fs_type(tmp.path());
    let mut rep = f(tmp.path())?;
    rep.param("dir", tmp.path().display().to_string());
    rep.param("dir_fs", fs.as_deref().unwrap_or("unknown"));
    if fs.as_deref() == Some("tmpfs") {
        rep.notes
            .push("--dir is on a tmpfs: the disk figures measure memory, not a disk".into());
    }
    tmp.close()?;
    Ok(rep)
}
