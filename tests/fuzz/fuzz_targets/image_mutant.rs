//! Fuzz target: structure-aware image mutants (reliability plan T9), for runs longer than the
//! 2,400 mutants `tests/tests/image_fuzz.rs` runs in CI. The input's first 8 bytes seed the
//! mutator (`gefs_tests::mutate`): one field of one block of a populated image is changed and
//! every pointer up to both superblocks re-hashed; then every reader runs on it in process
//! (`gefs_tests::fuzzrun::in_process`: check, open, every gefs-dump view, export into a
//! sandbox that is then inspected, the block decoder). A panic or an export outside its
//! directory is a crash; libFuzzer's `-timeout` and `-rss_limit_mb` catch hangs and memory:
//!
//!   cargo fuzz run image_mutant --fuzz-dir tests/fuzz --sanitizer none \
//!       tests/fuzz/corpus-work tests/fuzz/corpus/image_mutant -- \
//!       -max_total_time=3600 -timeout=30 -rss_limit_mb=2048
#![no_main]

use std::sync::OnceLock;

use gefs_tests::fuzzrun::{base_image, in_process};
use gefs_tests::mutate::Indexed;
use gefs_tests::rng::Rng;
use libfuzzer_sys::fuzz_target;

fn image() -> &'static Indexed {
    static IX: OnceLock<Indexed> = OnceLock::new();
    IX.get_or_init(|| Indexed::new(base_image()))
}

fuzz_target!(|data: &[u8]| {
    let mut seed = [0u8; 8];
    for (i, b) in data.iter().take(8).enumerate() {
        seed[i] = *b;
    }
    let ix = image();
    let m = ix.mutant(&mut Rng::new(u64::from_be_bytes(seed)));
    let dir = tempfile::tempdir().expect("tempdir");
    if let Err(v) = in_process(ix, &m, dir.path()) {
        panic!("{} block {:#x}, {}: {v}", m.class.name(), m.addr, m.field);
    }
});
