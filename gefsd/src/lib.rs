//! gefsd: the GEFS file server, speaking 9P2000.
//!
//! For now this crate holds only the wire codec, [`proto`]: message types, a bounded decoder
//! for untrusted frames, the encoder, a frame reader that never allocates more than the
//! negotiated msize, and version negotiation. The connection loop, fid table and the mapping of
//! T-messages onto `gefs_core::fs` are to follow in `gefsd::server`.

pub mod proto;
