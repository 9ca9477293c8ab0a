//! gefs-core: the storage engine and file-system library of gefs-rs, a Rust
//! reimplementation of GEFS, the copy-on-write Bε-tree file system of Plan 9.
//!
//! Layers, lowest first; a layer never imports one above it:
//!
//! | module | owns |
//! |---|---|
//! | [`format`] | every on-disk byte layout (see `doc/FORMAT.md`) |
//! | [`device`] | the [`Device`](device::Device) trait and its file, memory and test devices |
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
pub mod probe;
pub mod retain;

pub use error::{Error, Result};
pub use ids::{BlockAddr, Gen};
pub mod admin;
pub mod alloc;
pub mod cache;
pub mod check;
pub mod epoch;
pub mod store;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;
pub mod units;
pub mod users;
