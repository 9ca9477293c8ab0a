//! gefs-bench: workload benchmarks of gefs-rs, each run against an
//! in-process baseline with the same parameters, in the same run.
//!
//! | subcommand | ours | baseline |
//! |---|---|---|
//! | `cache` | [`gefs_core::cache::Cache`] | [`cache::MutexLru`]: one mutex over a map and an LRU list |
//! | `alloc` | [`gefs_core::alloc::Allocator`] on a `MemDev` and a file | [`alloc::BTreeAlloc`]: one mutex over a `BTreeSet` of free blocks |
//! | `tree` | [`gefs_core::store::Store`] on an image file | redb 4 on the same disk; fjall 3 beside it |
//! | `fs` | [`gefs_core::fs::Fs`]: import, snapshots, walks, files | `cp -r`; a 1k-entry directory; the host file system |
//!
//! The machine these run on is shared and noisy: compare the ratio
//! ours/baseline measured in one run, never absolute figures across runs.
//! [`report`] describes the JSON document `--json` prints.

pub mod alloc;
pub mod cache;
pub mod cli;
pub mod cpu;
pub mod fsbench;
pub mod fsfiles;
pub mod hist;
pub mod peers;
pub mod report;
pub mod rng;
pub mod tree;
pub mod workdir;

/// Errors of a benchmark run: from the code under test, a baseline, or I/O.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a benchmark step.
pub type BenchResult<T> = Result<T, BenchError>;
