//! Build a large image for measuring gefs-check: format a sparse file and
//! fill the `main` tree with `N` records of `VALUE` bytes through the store
//! API (KCONF keys, so no data blocks), syncing every 100,000 records.
//!
//! Usage: `cargo run --release -p gefs-check --example big_image -- IMAGE SIZE N [VALUE]`
//! (SIZE with a K, M, G or T suffix; VALUE defaults to 480 bytes).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use gefs_core::alloc::Tier;
use gefs_core::device::{Device, FileDev};
use gefs_core::format::key;
use gefs_core::format::msg::Msg;
use gefs_core::store::Store;

fn run(args: &[String]) -> Result<(), String> {
    let [img, size, n, rest @ ..] = args else {
        return Err("usage: big_image IMAGE SIZE N [VALUE]".into());
    };
    let size = gefs_core::units::parse_size(size).map_err(|e| e.to_string())?;
    let n: u64 = n.parse().map_err(|e| format!("N: {e}"))?;
    let vlen: usize = match rest.first() {
        Some(v) => v.parse().map_err(|e| format!("VALUE: {e}"))?,
        None => 480,
    };
    let path = PathBuf::from(img);
    let dev: Arc<dyn Device> =
        Arc::new(FileDev::create(&path, size).map_err(|e| format!("{img}: {e}"))?);
    let opts = gefs_core::testing::format_opts_for("bench", 256 << 20);
    let s = Store::format(dev, &opts).map_err(|e| e.to_string())?;
    let t = s.mount("main").map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let batch = 1000;
    let mut i = 0;
    while i < n {
        let msgs = (i..(i + batch).min(n))
            .map(|j| {
                // Ascending keys (BIG_RANDOM=1: spread all over the tree).
                let k = if std::env::var_os("BIG_RANDOM").is_some() {
                    j.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                } else {
                    j
                };
                let mut v = vec![(j % 251) as u8; vlen];
                v[..8].copy_from_slice(&j.to_be_bytes());
                Msg::insert(key::conf(&k.to_be_bytes()), v)
            })
            .collect();
        s.upsert(t, msgs, Tier::Normal).map_err(|e| e.to_string())?;
        i += batch;
        if i % 100_000 == 0 || i >= n {
            s.sync().map_err(|e| e.to_string())?;
            eprintln!(
                "{i} records, {:.0} s, {} blocks free",
                t0.elapsed().as_secs_f64(),
                s.allocator().free_blocks()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("big_image: {e}");
            ExitCode::from(2)
        }
    }
}
