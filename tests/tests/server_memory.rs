//! T15 with memory (issue 8, finding 5): clients that never read their replies cannot grow
//! gefsd's memory past its budgets, and other clients keep being served meanwhile.
//!
//! The real gefsd serves an image with an 8 MiB cache (`-m 8M`). Against it, at once:
//! - 16 flood connections, each pipelining 64 `Tread`s of 1 MiB and never reading a reply;
//! - 1,000 idle connections (versioned and attached, then silent);
//! - 4 slow readers, each pipelining 64 `Tread`s of 1 MiB and reading the replies at about
//!   256 KiB/s;
//! - a probe client that walks, opens, reads 64 KiB and clunks, over and over, timing each
//!   round trip.
//!
//! A sampler reads `VmHWM` from `/proc/PID/status`. Passing: the peak stays within the cache +
//! 64 MiB, the probe's p99 stays under a second, every slow reader's reply that arrives is
//! right, and the server still answers after the flood is gone. Prints the figures.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, attached, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::{encode_t, omode, Tmsg};

const MIB: u64 = 1 << 20;
const FLOOD_CONNS: usize = 16;
const IDLE_CONNS: usize = 1000;
const SLOW_READERS: usize = 4;
const PIPELINE: u16 = 64;
const FILE_MIB: u64 = 16;
const CACHE_MIB: u64 = 8;
const FLOOD_SECS: u64 = 14;

/// Raise this process's open-file limit to its hard limit (1,000 idle connections need more
/// descriptors than a default soft limit of 1,024 allows); gefsd, our child, inherits it.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(max) = l.maximum {
        l.current = Some(max);
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// `count`-byte reads of `big`, pipelined: walk fid 1 to it, open it, then send
/// `PIPELINE` Treads without reading their replies.
fn pipeline_reads(c: &mut Client<UnixStream>) {
    c.walk(0, 1, &["big"]).expect("walk");
    c.open(1, omode::OREAD).expect("open");
    let mut batch = Vec::new();
    for tag in 1..=PIPELINE {
        let m = Tmsg::Read {
            fid: 1,
            offset: (u64::from(tag) % FILE_MIB) * MIB,
            count: MIB as u32,
        };
        encode_t(tag, &m, &mut batch).expect("encode");
    }
    c.send_raw(&batch).expect("send the pipeline");
}

/// The byte at `off` of `big`.
fn pattern(off: u64) -> u8 {
    (off / 4096 % 251) as u8
}

fn populate(sock: &Path) {
    let mut c = attached(sock);
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "big", 0o644, omode::OWRITE).expect("create");
    for m in 0..FILE_MIB {
        let data: Vec<u8> = (0..MIB).map(|i| pattern(m * MIB + i)).collect();
        c.write(1, m * MIB, &data).expect("write");
    }
    c.clunk(1).expect("clunk");
}

/// Read replies at about 256 KiB/s until `stop`; checks every complete Rread.
fn slow_reader(sock: &Path, stop: &AtomicBool) -> u64 {
    let mut c = attached(sock);
    pipeline_reads(&mut c);
    let s = c.stream();
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut got = 0u64;
    let mut chunk = [0u8; 16 << 10];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    got
}

/// Hold a connection that pipelines reads and never reads a reply, until `stop`. Then read
/// what is there: whether the server had closed the connection.
fn flooder(sock: &Path, stop: &AtomicBool) -> bool {
    let mut c = attached(sock);
    pipeline_reads(&mut c);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = c.stream();
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// One probe round: walk, open, read 64 KiB at a varying offset, check it, clunk.
fn probe_round(c: &mut Client<UnixStream>, i: u64) -> Duration {
    let t0 = Instant::now();
    let off = (i * 7 % FILE_MIB) * MIB + 4096;
    c.walk(0, 2, &["big"]).expect("probe walk");
    c.open(2, omode::OREAD).expect("probe open");
    let d = c.read(2, off, 64 << 10).expect("probe read");
    c.clunk(2).expect("probe clunk");
    let dt = t0.elapsed();
    assert_eq!(d.len(), 64 << 10);
    assert!(
        d.iter()
            .enumerate()
            .all(|(k, b)| *b == pattern(off + k as u64)),
        "probe read wrong bytes at {off}"
    );
    dt
}

fn percentile(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

#[test]
fn flood_of_unread_replies_stays_within_the_memory_budget() {
    raise_fd_limit();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", ADMIN);
    let opts = Opts {
        cache: format!("{CACHE_MIB}M"),
        noauth: true,
        extra: vec!["--max-conns".into(), "1200".into()],
    };
    let d = Daemon::start(dir.path(), &img, &opts);
    populate(&d.sock);
    let stop = Arc::new(AtomicBool::new(false));
    let pid = d.pid();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((_, hwm)) = daemon::proc_rss(pid) {
                    peak.fetch_max(hwm, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let t0 = Instant::now();
    let idle: Vec<Client<UnixStream>> = (0..IDLE_CONNS).map(|_| attached(&d.sock)).collect();
    let idle_secs = t0.elapsed().as_secs_f64();
    let flood: Vec<_> = (0..FLOOD_CONNS)
        .map(|_| {
            let (sock, stop) = (d.sock.clone(), stop.clone());
            std::thread::spawn(move || flooder(&sock, &stop))
        })
        .collect();
    let slow: Vec<_> = (0..SLOW_READERS)
        .map(|_| {
            let (sock, stop) = (d.sock.clone(), stop.clone());
            std::thread::spawn(move || slow_reader(&sock, &stop))
        })
        .collect();
    let mut probe = attached(&d.sock);
    let mut lat = Vec::new();
    let t1 = Instant::now();
    let mut i = 0;
    while t1.elapsed() < Duration::from_secs(FLOOD_SECS) {
        lat.push(probe_round(&mut probe, i));
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let closed = flood
        .into_iter()
        .map(|h| h.join().expect("flooder"))
        .filter(|c| *c)
        .count();
    let slow_bytes: u64 = slow
        .into_iter()
        .map(|h| h.join().expect("slow reader"))
        .sum();
    sampler.join().expect("sampler");
    let (_, hwm) = d.rss().expect("rss");
    if let Ok(dump) = std::env::var("GEFS_SMAPS") {
        let _ = std::fs::copy(format!("/proc/{pid}/smaps"), &dump);
    }
    let peak = peak.load(Ordering::Relaxed).max(hwm);
    drop(idle);
    // The server is still whole: a fresh client is served, and it stops cleanly.
    let after = probe_round(&mut attached(&d.sock), 3);
    let (p50, p99, max) = (
        percentile(&mut lat, 50),
        percentile(&mut lat, 99),
        percentile(&mut lat, 100),
    );
    let budget = (CACHE_MIB + 64) * MIB;
    println!(
        "server memory: -m {CACHE_MIB}M, {FLOOD_CONNS} conns x {PIPELINE} unread 1 MiB Treads, \
         {IDLE_CONNS} idle conns (opened in {idle_secs:.1} s), {SLOW_READERS} slow readers \
         ({} KiB read): VmHWM {:.1} MiB (limit {} MiB); probe {} rounds p50 {:.1} ms p99 {:.1} ms \
         max {:.1} ms; after the flood {:.1} ms; {closed} flood connections closed by the server",
        slow_bytes >> 10,
        peak as f64 / MIB as f64,
        budget / MIB,
        lat.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3,
    );
    assert!(
        peak <= budget,
        "VmHWM {} MiB over the cache + 64 MiB",
        peak / MIB
    );
    assert!(p99 < Duration::from_secs(1), "probe p99 {p99:?}");
    assert!(slow_bytes > 0, "the slow readers got nothing");
    d.stop();
    daemon::check_clean(&img);
}
