//! T5: the real gefsd SIGKILLed under load, again and again.
//!
//! Four client threads (gefsd's Rust client, each on its own connection) rewrite files of
//! their own and send null wstats (syncs); each remembers, for every acknowledged sync, the
//! version of each of its files that the sync covered (every write it had seen answered before
//! sending it) and the last version it ever sent. gefsd is SIGKILLed at a random moment 0–3 s
//! into the load; then `gefs-check` must pass on the image, gefsd must restart on it, and
//! every file must hold at least what its client's last acknowledged sync covered: each
//! 64-byte record of a file names its file and version, and every record's version must lie
//! between the acknowledged one and the last one sent (later versions, even half-written, are
//! contents its own client wrote). Files of earlier rounds must be unchanged. Beside them, a
//! churner creates, truncates and removes files (some large enough that the sweeper clears
//! them in several steps) and the console takes and deletes snapshots, so that kills also
//! land inside clears, truncations and snapshot deletions.
//!
//! `GEFS_CRASH_KILLS` (default 20) sets the number of kills, `GEFS_KILL_SEED` (default 1) the
//! seed; both are printed.
//! Prints `kills=N recoveries=N lost_acked_syncs=0 fsck_errors=0`.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, Daemon, Opts, ADMIN};
use gefs_tests::rng::Rng;
use gefsd::client::Client;
use gefsd::proto::{omode, Stat};

const THREADS: usize = 4;
const FILES: usize = 6;
const REC: usize = 64;
const MAGIC: &[u8; 4] = b"GEFS";

fn name(round: usize, t: usize, j: usize) -> String {
    format!("k{round}-t{t}-f{j}")
}

/// Each file's fixed length: 4 KiB to 192 KiB, one Twrite.
fn len_of(round: usize, t: usize, j: usize) -> usize {
    4096 * (1 + (round * 5 + t * 7 + j * 13) % 48)
}

/// Version `v` of file (round, t, j): self-describing 64-byte records.
fn contents(round: usize, t: usize, j: usize, v: u64) -> Vec<u8> {
    let n = len_of(round, t, j);
    let mut out = Vec::with_capacity(n);
    for off in (0..n).step_by(REC) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(round as u32).to_be_bytes());
        out.push(t as u8);
        out.push(j as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(&(off as u64).to_be_bytes());
        let fill = (v as u8).wrapping_mul(31).wrapping_add(off as u8);
        out.extend(std::iter::repeat_n(fill, REC - 28));
    }
    out
}

/// The version of the record at `off`, if it is a whole record of file (round, t, j).
fn record_version(b: &[u8], round: usize, t: usize, j: usize, off: usize) -> Option<u64> {
    let r = b.get(off..off + REC)?;
    let v = u64::from_be_bytes(r[12..20].try_into().ok()?);
    let ok = &r[..4] == MAGIC
        && r[4..8] == (round as u32).to_be_bytes()
        && r[8] == t as u8
        && r[9] == j as u8
        && r[20..28] == (off as u64).to_be_bytes()
        && r[28..]
            .iter()
            .all(|x| *x == (v as u8).wrapping_mul(31).wrapping_add(off as u8));
    ok.then_some(v)
}

/// What one writer thread knows when its connection dies.
#[derive(Debug, Default, Clone)]
struct Known {
    /// Per file: the version the last acknowledged sync covered (0: none).
    acked: [u64; FILES],
    /// Per file: the last version sent (answered or not).
    sent: [u64; FILES],
    /// Per file: whether a create was sent.
    created: [bool; FILES],
    writes: u64,
    syncs: u64,
}

fn writer(sock: &Path, round: usize, t: usize, seed: u64, stop: &AtomicBool) -> Known {
    let mut k = Known::default();
    let Ok(s) = UnixStream::connect(sock) else {
        return k;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut c = Client::new(s);
    if c.version(1 << 20).is_err() || c.attach(0, ADMIN, "").is_err() {
        return k;
    }
    let mut rng = Rng::new(seed);
    let mut have = [0u64; FILES];
    while !stop.load(Ordering::Relaxed) {
        let j = rng.below(FILES as u64) as usize;
        let v = have[j] + 1;
        let data = contents(round, t, j, v);
        let (fid, n) = (1, name(round, t, j));
        let r = if have[j] == 0 {
            k.created[j] = true;
            c.walk(0, fid, &[])
                .and_then(|_| c.create(fid, &n, 0o644, omode::OWRITE))
        } else {
            c.walk(0, fid, &[&n])
                .and_then(|_| c.open(fid, omode::OWRITE))
        };
        if r.is_err() {
            return k;
        }
        k.sent[j] = v;
        match c.write(fid, 0, &data) {
            Ok(n) if n as usize == data.len() => {}
            _ => return k,
        }
        if c.clunk(fid).is_err() {
            return k;
        }
        have[j] = v;
        k.writes += 1;
        if rng.chance(1, 4) {
            // A null wstat: acknowledged once everything answered before it is durable.
            let covered = have;
            if c.wstat(0, &Stat::dont_touch()).is_err() {
                return k;
            }
            k.acked = covered;
            k.syncs += 1;
        }
    }
    k
}

/// Churn beside the writers, on a connection of its own: files of 0 to 256 KiB (one in eight
/// of 5 MiB, whose remove takes the sweeper more than one step) are created, sometimes
/// truncated, and mostly removed. Their contents are not checked; gefs-check after each kill
/// is the oracle (a leak or a double free from a clear, a truncation or a snapshot deletion
/// cut short shows there). Returns the files it created.
fn churner(sock: &Path, round: usize, seed: u64, stop: &AtomicBool) -> u64 {
    let Ok(s) = UnixStream::connect(sock) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut c = Client::new(s);
    if c.version(1 << 20).is_err() || c.attach(0, ADMIN, "").is_err() {
        return 0;
    }
    let mut rng = Rng::new(seed);
    let mut made = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = format!("c{round}-{made}");
        let len = if rng.chance(1, 8) {
            5 << 20
        } else {
            rng.below(256 << 10) as usize
        };
        let piece = vec![made as u8; 512 << 10];
        let r = c
            .walk(0, 1, &[])
            .and_then(|_| c.create(1, &n, 0o644, omode::OWRITE));
        if r.is_err() {
            return made;
        }
        made += 1;
        let mut off = 0;
        while off < len {
            let k = piece.len().min(len - off);
            if c.write(1, off as u64, &piece[..k]).is_err() {
                return made;
            }
            off += k;
        }
        if c.clunk(1).is_err() || c.walk(0, 1, &[&n]).is_err() {
            return made;
        }
        if rng.chance(1, 3) {
            let mut st = Stat::dont_touch();
            st.length = rng.below(len as u64 + 1);
            if c.wstat(1, &st).is_err() {
                return made;
            }
        }
        let r = if rng.chance(7, 8) {
            c.remove(1)
        } else {
            c.clunk(1)
        };
        if r.is_err() {
            return made;
        }
    }
    made
}

/// Take a snapshot of `main` through the console every 100-400 ms and delete the one
/// before the last, until stopped. Returns the snapshots taken.
fn snapper(console: &Path, round: usize, seed: u64, stop: &AtomicBool) -> u64 {
    let mut rng = Rng::new(seed);
    let mut taken = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100 + rng.below(300)));
        let (ok, _, _) =
            daemon::console_at(console, &["snap", "main", &format!("s{round}-{taken}")]);
        if !ok {
            break;
        }
        if taken >= 1 {
            let _ =
                daemon::console_at(console, &["snap", "-d", &format!("s{round}-{}", taken - 1)]);
        }
        taken += 1;
    }
    taken
}

/// Read a whole file through a fresh connection; None if absent.
fn read(c: &mut Client<UnixStream>, name: &str) -> Option<Vec<u8>> {
    c.walk(0, 2, &[name]).ok()?;
    c.open(2, omode::OREAD).expect("open");
    let d = c.read_all(2).expect("read");
    c.clunk(2).expect("clunk");
    Some(d)
}

#[test]
fn sigkill_under_load_keeps_every_acknowledged_sync() {
    let kills: usize = std::env::var("GEFS_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    // A fixed default seed: a failure in CI replays from the seed printed below, never from
    // the clock.
    let seed: u64 = std::env::var("GEFS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    eprintln!("daemon_crash: seed {seed} (GEFS_KILL_SEED), {kills} kills (GEFS_CRASH_KILLS)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "512M", ADMIN);
    let opts = Opts {
        cache: "32M".into(),
        ..Opts::default()
    };
    let mut d = Daemon::start(dir.path(), &img, &opts);
    let (mut recoveries, mut lost, mut fsck_errors) = (0, 0, 0);
    let (mut writes, mut syncs, mut torn, mut absent_ok) = (0u64, 0u64, 0u64, 0u64);
    let (mut churned, mut snapshots) = (0u64, 0u64);
    let mut problems = Vec::new();
    // Files of earlier rounds: name -> contents seen after their round's restart.
    let mut settled: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let t0 = Instant::now();
    for round in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (sock, stop) = (d.sock.clone(), stop.clone());
                let s = rng.next_u64();
                std::thread::spawn(move || writer(&sock, round, t, s, &stop))
            })
            .collect();
        let churn = {
            let (sock, stop, s) = (d.sock.clone(), stop.clone(), rng.next_u64());
            std::thread::spawn(move || churner(&sock, round, s, &stop))
        };
        let snaps = {
            let (console, stop, s) = (d.console.clone(), stop.clone(), rng.next_u64());
            std::thread::spawn(move || snapper(&console, round, s, &stop))
        };
        std::thread::sleep(Duration::from_millis(rng.below(3001)));
        d.kill();
        stop.store(true, Ordering::Relaxed);
        let known: Vec<Known> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        churned += churn.join().expect("churn thread");
        snapshots += snaps.join().expect("snapshot thread");
        let (code, report) = daemon::check(&img);
        if code != Some(0) {
            fsck_errors += 1;
            problems.push(format!("round {round}: gefs-check exit {code:?}: {report}"));
        }
        d = Daemon::start(dir.path(), &img, &opts);
        let mut c = Client::unix(&d.sock).expect("connect after restart");
        c.version(1 << 20).expect("version");
        c.attach(0, ADMIN, "").expect("attach");
        for (t, k) in known.iter().enumerate() {
            writes += k.writes;
            syncs += k.syncs;
            let mut lost_here = false;
            for j in 0..FILES {
                let n = name(round, t, j);
                let got = read(&mut c, &n);
                let (acked, sent) = (k.acked[j], k.sent[j]);
                match &got {
                    None => {
                        if acked > 0 {
                            lost_here = true;
                            problems.push(format!(
                                "round {round}: {n} missing; sync acknowledged version {acked}"
                            ));
                        } else if k.created[j] {
                            absent_ok += 1;
                        }
                    }
                    Some(b) if b.is_empty() && acked == 0 => {}
                    Some(b) => {
                        let want_len = len_of(round, t, j);
                        let mut versions = Vec::new();
                        for off in (0..want_len).step_by(REC) {
                            versions.push(record_version(b, round, t, j, off));
                        }
                        let bad = b.len() != want_len
                            || versions
                                .iter()
                                .any(|v| !matches!(v, Some(v) if *v >= acked.max(1) && *v <= sent));
                        if bad {
                            lost_here = lost_here || acked > 0;
                            problems.push(format!(
                                "round {round}: {n}: {} bytes (want {want_len}), versions \
                                 {:?}..{:?}, acknowledged {acked}, last sent {sent}",
                                b.len(),
                                versions.iter().min(),
                                versions.iter().max()
                            ));
                        } else if versions.windows(2).any(|w| w[0] != w[1]) {
                            torn += 1;
                        }
                    }
                }
                settled.insert(n, got);
            }
            if lost_here {
                lost += 1;
            }
        }
        // Everything of earlier rounds is as it was found after its own restart.
        for (n, want) in &settled {
            if n.starts_with(&format!("k{round}-")) {
                continue;
            }
            let got = read(&mut c, n);
            if &got != want {
                problems.push(format!("round {round}: {n} changed since its round"));
            }
        }
        drop(c);
        recoveries += 1;
    }
    let img = d.image.clone();
    d.stop();
    let (code, report) = daemon::check(&img);
    if code != Some(0) {
        fsck_errors += 1;
        problems.push(format!(
            "after the last stop: gefs-check exit {code:?}: {report}"
        ));
    }
    eprintln!(
        "daemon_crash: {writes} writes, {syncs} acknowledged syncs, {torn} files with two \
         versions (unacknowledged writes), {absent_ok} created but unsynced files absent, \
         {churned} files churned, {snapshots} snapshots taken, {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "kills={kills} recoveries={recoveries} lost_acked_syncs={lost} fsck_errors={fsck_errors}"
    );
    assert!(
        problems.is_empty() && lost == 0 && fsck_errors == 0 && recoveries == kills,
        "seed {seed}:\n{}",
        problems.join("\n")
    );
    assert!(
        syncs > 0,
        "no sync was ever acknowledged: the test tested nothing"
    );
}
