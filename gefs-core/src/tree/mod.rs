//! The Bε tree (being built; see `store.rs` for the seam to the block layer).

pub mod store;
