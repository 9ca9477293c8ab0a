//! Replays the `server_seq` and `console` fuzz corpora (`tests/fuzz/corpus/{server_seq,
//! console}/`) through the fuzz targets' oracles in plain `cargo test`, against one in-process
//! server, so the seeds and every regression input keep being checked without cargo-fuzz.
//!
//! The seeds are generated here. After changing them, rewrite the files with
//! `GEFSD_WRITE_CORPUS=1 cargo test -p gefsd --test server_corpus`.

use std::fs;
use std::path::PathBuf;

#[path = "../../tests/fuzz/oracle_server.rs"]
mod oracle_server;

#[path = "../../tests/fuzz/oracle_console.rs"]
mod oracle_console;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/corpus")
        .join(name)
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn server_seeds() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = (0..24u64)
        .map(|i| (format!("noise_{i:02}"), noise(i + 1, 256 + 64 * i as usize)))
        .collect();
    v.push(("zeros".into(), vec![0; 512]));
    v.push(("ones".into(), vec![0xff; 512]));
    v
}

const CONSOLE_SEEDS: [&str; 24] = [
    "help",
    "df",
    "json df",
    "show fid",
    "show cache",
    "show alloc",
    "show free",
    "show users",
    "json show users",
    "snap -l",
    "json snap -l",
    "snap",
    "snap -m",
    "snap -d",
    "snap -ml a",
    "set main retain '60@m 24@h'",
    "set",
    "clear a b c",
    "permit",
    "permit maybe",
    "'unterminated",
    "show tree a b",
    "a b c d e f g h i j",
    "sync now",
];

fn corpus(name: &str, seeds: Vec<(String, Vec<u8>)>) -> Vec<Vec<u8>> {
    let d = dir(name);
    if std::env::var_os("GEFSD_WRITE_CORPUS").is_some() {
        fs::create_dir_all(&d).expect("corpus dir");
        for (n, b) in &seeds {
            fs::write(d.join(n), b).expect("write seed");
        }
    }
    let mut out: Vec<Vec<u8>> = seeds.into_iter().map(|(_, b)| b).collect();
    if let Ok(rd) = fs::read_dir(&d) {
        for e in rd.flatten() {
            out.push(fs::read(e.path()).expect("read corpus file"));
        }
    }
    out
}

#[test]
fn server_seq_corpus() {
    let me = gefsd::server::current_user();
    let o = gefsd::server::Options {
        retain_every: None,
        ..Default::default()
    };
    let (s, _) = gefsd::server::spawn_for_test(o).expect("server");
    let inputs = corpus("server_seq", server_seeds());
    assert!(inputs.len() >= 26);
    let ok: usize = inputs
        .iter()
        .map(|data| oracle_server::check_in(&s, &me, data, gefsd::proto::Dialect::P9))
        .sum();
    let ok_l: usize = inputs
        .iter()
        .map(|data| oracle_server::check_in(&s, &me, data, gefsd::proto::Dialect::L))
        .sum();
    eprintln!("server_seq: {ok} requests succeeded in 9P2000, {ok_l} in 9P2000.L");
    // Floors, so that a change that makes every request fail cannot pass silently.
    assert!(ok >= 100, "only {ok} requests succeeded");
    assert!(ok_l >= 50, "only {ok_l} requests succeeded in 9P2000.L");
    s.stop().expect("stop");
}

#[test]
fn console_corpus() {
    let o = gefsd::server::Options {
        retain_every: None,
        ..Default::default()
    };
    let (s, _) = gefsd::server::spawn_for_test(o).expect("server");
    let seeds = CONSOLE_SEEDS
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("seed_{i:02}"), l.as_bytes().to_vec()))
        .collect();
    for data in corpus("console", seeds) {
        oracle_console::check(Some(&s), &data);
    }
    oracle_console::check(None, &vec![b'x'; 5000]);
    s.stop().expect("stop");
}
