//! gefs-core: the storage engine and file-system library of gefs-rs, a Rust
//! reimplementation of GEFS, the copy-on-write Bε-tree file system of Plan 9.
//!
//! Layers, lowest first, and the crate modules each one's library code may
//! use (DESIGN.md §1, which holds the same table; `tests/layers.rs` enforces
//! it, and that no import cycle exists):
//!
//! | module | owns | may use |
//! |---|---|---|
//! | `ids` | block addresses, generations, the block size and the format version | — |
//! | `units` | the size grammar of every tool, printing sizes | — |
//! | `host` | facts about the host (login name) | — |
//! | `sync` | the lock and atomic primitives of cache and epochs (loom-swappable) | — |
//! | `error` | the library's error type | `ids` |
//! | `format` | every on-disk byte layout; pure encode/decode (`Encode`, `Decode`, one `DecodeError`); never panics on input | `error`, `ids`, `units` |
//! | `device` | the `Device` trait: file/block device (`fdatasync` flush), memory, recording and faulty test devices | `error`, `format` |
//! | `epoch` | epoch-based reclamation: slots, limbo lists | `sync` |
//! | `cache` | the fixed buffer pool, address index, per-shard LRU that is the free list | `error`, `format`, `ids`, `sync` |
//! | `alloc` | arenas, free maps, allocation logs, space tiers | `device`, `error`, `format`, `ids` |
//! | `tree` | the Bε tree, generic over `NodeStore` | `error`, `format`, `ids` |
//! | `store` | the engine: one device, its cache, allocator, epochs and trees; labels, open, format, commit | `alloc`, `cache`, `device`, `epoch`, `error`, `format`, `ids`, `tree`, `units` |
//! | `snap` | snapshots: taking, forking, deleting; deadlists, settings, space accounting | `alloc`, `error`, `format`, `ids`, `store`, `tree`, `units` |
//! | `retain` | the retention schedule and its stateless planner | `error` |
//! | `users` | the users table and permission rules | `error`, `format` |
//! | `fs` | the file system: files, directories, permissions, exclusive-use opens | `alloc`, `device`, `error`, `format`, `ids`, `snap`, `store`, `tree`, `users` |
//! | `check` | the offline checker | `alloc`, `device`, `error`, `format`, `fs`, `ids`, `store` |
//! | `dump` | read-only views of an image (`gefs-dump`) | `alloc`, `device`, `error`, `format`, `fs`, `ids`, `snap`, `store`, `tree` |
//! | `export` | copying a snapshot's files out to a host directory | `error`, `format`, `fs` |
//! | `import` | populating a tree from a host directory | `error`, `format`, `fs` |
//! | `probe` | recognizing what a device holds before formatting it | `device` |
//! | `image` | image files and block devices as the tools open them (locks, refusals) | `device`, `error`, `format`, `ids`, `probe`, `store`, `users` |
//! | `admin` | snapshot and retention commands in the console's syntax | `error`, `format`, `retain`, `snap`, `store`, `units` |
//! | `testing` | the one test surface: `Rng`, fresh stores and file systems (feature `testing`) | any |
//!
//! `doc/DESIGN.md` describes the threads, lock order, epochs and the crash
//! argument.
//!
//! Comments cite documents outside the repository by label: the GEFS
//! reference's defects (`§13.2 #N`, `defect #N`), its list of improvements
//! (`§14.3 #N`), sections of its digest (`§N.N`), findings (`F#`),
//! reliability tests (`T#`) and security checks (`S#`). `doc/REFERENCE.md`
//! explains each one.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod device;
pub mod dump;
pub mod error;
pub mod export;
pub mod format;
pub mod fs;
pub mod host;
pub mod ids;
pub mod image;
pub mod import;
pub(crate) mod probe;
pub mod retain;
pub mod snap;

pub use error::{CorruptKind, Error, Result};
pub use ids::{BlockAddr, Gen};
pub mod admin;
pub mod alloc;
pub mod cache;
pub mod check;
pub(crate) mod epoch;
pub mod store;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;
pub mod units;
pub mod users;
