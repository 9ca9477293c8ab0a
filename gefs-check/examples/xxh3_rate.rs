//! The hash-bound ceiling of a check: read FILE into memory, then hash it
//! in 16 KiB blocks with xxh3-64 on `THREADS` threads (default 2) and print
//! the rate. Usage: `cargo run --release -p gefs-check --example xxh3_rate -- FILE [THREADS]`.

use std::process::ExitCode;
use std::time::Instant;

use gefs_core::format::{block_hash, BLKSZ};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: xxh3_rate FILE [THREADS]");
        return ExitCode::from(2);
    };
    let threads: usize = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(2).max(1);
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xxh3_rate: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let blocks: Vec<&[u8]> = data.chunks(BLKSZ).collect();
    let per = blocks.len().div_ceil(threads);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        let acc: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = blocks
                .chunks(per.max(1))
                .map(|part| s.spawn(move || part.iter().fold(0u64, |a, b| a ^ block_hash(b))))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0, |a, b| a ^ b)
        });
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(acc);
    }
    println!(
        "{} bytes hashed in {:.3} s on {threads} threads: {:.0} MB/s",
        data.len(),
        best,
        data.len() as f64 / 1e6 / best
    );
    ExitCode::SUCCESS
}
