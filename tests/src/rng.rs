//! The seeded generator every test shares (one copy, in gefs-core's `testing`
//! surface), so every failure replays from its seed.

pub use gefs_core::testing::Rng;
