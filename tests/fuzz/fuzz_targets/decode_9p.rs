//! Fuzz target for the 9P2000 codec: `gefsd::proto` must never panic on any bytes, must accept
//! only canonical frames, and must never hand out more than msize. The checks live in
//! `oracle_9p.rs`, shared with the corpus replay in `gefsd/tests/proto_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle_9p.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::check(data));
