//! T13: a 2-minute soak of the real gefsd with a small cache (`-m 4M`): 16 clients at once
//! (6 python-9p, 5 p9fs, 5 of gefsd's Rust client; over Unix and TCP) doing mixed operations
//! (create, write, append, read, readdir, rename, remove, stat, sync) on files of their own
//! and in one shared directory, each checking every answer against its own model, while the
//! console takes and deletes snapshots every 10 s (`GEFS_SOAK_SNAP_SECS`). gefsd's `/proc/PID/status` (VmRSS, VmHWM)
//! and `/proc/PID/fd` are sampled every 500 ms.
//!
//! Asserts: no client error; peak RSS below cache + 64 MiB + the in-flight allowance (every
//! connection's in-flight limit × its msize: the worst case of buffered requests); the
//! descriptor count back to its baseline once the clients are gone; `check` clean from the
//! console, and `gefs-check` clean after the stop. `GEFS_SOAK_SECS` changes the length.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, proc_fds, proc_rss, Daemon, Opts, ADMIN};
use gefs_tests::py::{self, Py};
use gefs_tests::rng::Rng;
use gefsd::client::Client;
use gefsd::proto::{omode, Stat};

const MSIZE: u32 = 65536;
/// gefsd's per-connection in-flight limit (`Limits::default().max_inflight`).
const MAX_INFLIGHT: u64 = 64;
const CACHE: u64 = 4 << 20;
const MIB: f64 = 1048576.0;

fn content(seed: u64, n: usize) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.next_u64() as u8).collect()
}

/// One Rust client: mixed operations in `dir`, checked against its model.
fn rust_client(sock: PathBuf, id: u64, secs: f64) -> Result<u64, String> {
    let e = |what: &str, err: gefsd::client::ClientError| format!("rust {id}: {what}: {err}");
    let mut c = Client::new(UnixStream::connect(&sock).map_err(|x| x.to_string())?);
    c.version(MSIZE).map_err(|x| e("version", x))?;
    c.attach(0, ADMIN, "").map_err(|x| e("attach", x))?;
    let dir = format!("r{id}");
    c.walk(0, 1, &[]).map_err(|x| e("walk", x))?;
    c.create(1, &dir, 0x8000_0000 | 0o755, omode::OREAD)
        .map_err(|x| e("mkdir", x))?;
    c.clunk(1).map_err(|x| e("clunk", x))?;
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng::new(id * 1_000_003 + 17);
    let (t0, mut ops, mut serial) = (Instant::now(), 0u64, 0u64);
    while t0.elapsed().as_secs_f64() < secs {
        ops += 1;
        let names: Vec<String> = model.keys().cloned().collect();
        let pick = |rng: &mut Rng| names[rng.below(names.len() as u64) as usize].clone();
        match rng.below(10) {
            0 | 1 if names.len() < 40 => {
                serial += 1;
                let n = format!("f{serial}");
                let data = content(rng.next_u64(), rng.below(96 << 10) as usize);
                c.walk(0, 2, &[&dir]).map_err(|x| e("walk", x))?;
                c.create(2, &n, 0o644, omode::OWRITE)
                    .map_err(|x| e("create", x))?;
                for (i, ch) in data.chunks((MSIZE - 24) as usize).enumerate() {
                    c.write(2, (i * (MSIZE as usize - 24)) as u64, ch)
                        .map_err(|x| e("write", x))?;
                }
                c.clunk(2).map_err(|x| e("clunk", x))?;
                model.insert(n, data);
            }
            2 | 3 if !names.is_empty() => {
                let n = pick(&mut rng);
                c.walk(0, 2, &[&dir, &n]).map_err(|x| e("walk", x))?;
                c.open(2, omode::OREAD).map_err(|x| e("open", x))?;
                let got = c.read_all(2).map_err(|x| e("read", x))?;
                c.clunk(2).map_err(|x| e("clunk", x))?;
                if got != model[&n] {
                    return Err(format!("rust {id}: {dir}/{n}: contents differ"));
                }
            }
            4 if !names.is_empty() => {
                let n = pick(&mut rng);
                let extra = content(rng.next_u64(), 1 + rng.below(4096) as usize);
                c.walk(0, 2, &[&dir, &n]).map_err(|x| e("walk", x))?;
                c.open(2, omode::OWRITE).map_err(|x| e("open", x))?;
                let len = model[&n].len() as u64;
                c.write(2, len, &extra).map_err(|x| e("append", x))?;
                c.clunk(2).map_err(|x| e("clunk", x))?;
                model.get_mut(&n).expect("model").extend_from_slice(&extra);
            }
            5 if !names.is_empty() => {
                let n = pick(&mut rng);
                serial += 1;
                let new = format!("r{serial}");
                c.walk(0, 2, &[&dir, &n]).map_err(|x| e("walk", x))?;
                let st = Stat {
                    name: new.clone(),
                    ..Stat::dont_touch()
                };
                c.wstat(2, &st).map_err(|x| e("rename", x))?;
                c.clunk(2).map_err(|x| e("clunk", x))?;
                let v = model.remove(&n).expect("model");
                model.insert(new, v);
            }
            6 if !names.is_empty() => {
                let n = pick(&mut rng);
                c.walk(0, 2, &[&dir, &n]).map_err(|x| e("walk", x))?;
                c.remove(2).map_err(|x| e("remove", x))?;
                model.remove(&n);
            }
            7 => {
                c.walk(0, 2, &[&dir]).map_err(|x| e("walk", x))?;
                c.open(2, omode::OREAD).map_err(|x| e("open dir", x))?;
                let ents = c.read_dir(2).map_err(|x| e("readdir", x))?;
                c.clunk(2).map_err(|x| e("clunk", x))?;
                let got: BTreeMap<String, u64> =
                    ents.into_iter().map(|s| (s.name, s.length)).collect();
                let want: BTreeMap<String, u64> = model
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len() as u64))
                    .collect();
                if got != want {
                    return Err(format!("rust {id}: listing of {dir} differs"));
                }
            }
            8 if !names.is_empty() => {
                let n = pick(&mut rng);
                c.walk(0, 2, &[&dir, &n]).map_err(|x| e("walk", x))?;
                let st = c.stat(2).map_err(|x| e("stat", x))?;
                c.clunk(2).map_err(|x| e("clunk", x))?;
                if st.length != model[&n].len() as u64 {
                    return Err(format!("rust {id}: stat {n}: length {}", st.length));
                }
            }
            _ => {
                if rng.chance(1, 3) {
                    c.wstat(0, &Stat::dont_touch()).map_err(|x| e("sync", x))?;
                }
            }
        }
    }
    Ok(ops)
}

#[derive(Default, Debug, Clone)]
struct Samples {
    n: u64,
    rss_max: u64,
    hwm: u64,
    fds_max: usize,
}

#[test]
fn soak_sixteen_clients_small_cache() {
    let secs: f64 = std::env::var("GEFS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120.0);
    // Set the Python environments up before the clock starts.
    for c in Py::all() {
        py::python(c);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "2G", ADMIN);
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            cache: "4M".into(),
            ..Opts::default()
        },
    );
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(300));
    let base_fds = d.fds().expect("fds");
    let (base_rss, _) = d.rss().expect("rss");
    // The sampler.
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let sampler = {
        let (done, samples) = (done.clone(), samples.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let (Some((rss, hwm)), Some(fds)) = (proc_rss(pid), proc_fds(pid)) {
                    let mut s = samples.lock().expect("samples");
                    s.n += 1;
                    s.rss_max = s.rss_max.max(rss);
                    s.hwm = s.hwm.max(hwm);
                    s.fds_max = s.fds_max.max(fds);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    // 11 Python clients, started together.
    let secs_s = format!("{secs}");
    let mut kids = Vec::new();
    for id in 0..11u32 {
        let client = if id < 6 { Py::Python9p } else { Py::P9fs };
        let addr = if id % 2 == 0 {
            format!("unix:{}", d.sock.display())
        } else {
            format!("tcp:{}", d.tcp)
        };
        let (k, line) = py::start_worker(
            client,
            &addr,
            ADMIN,
            id,
            &format!("p{id}"),
            &["--seconds", &secs_s, "--msize", &MSIZE.to_string()],
        );
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("ready JSON");
        assert!(
            v["msize"].as_u64().unwrap_or(u64::MAX) <= u64::from(MSIZE) + 24,
            "{v}"
        );
        kids.push((id, client, k));
    }
    let t0 = Instant::now();
    for (_, _, k) in &mut kids {
        let s = k.stdin.as_mut().expect("stdin");
        s.write_all(b"go\n").expect("go");
        s.flush().expect("flush");
    }
    // 5 Rust clients.
    let rust: Vec<_> = (0..5u64)
        .map(|id| {
            let sock = d.sock.clone();
            std::thread::spawn(move || rust_client(sock, id, secs))
        })
        .collect();
    // Snapshots from the console now and then.
    let mut snaps = 0;
    let every: f64 = std::env::var("GEFS_SOAK_SNAP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    while t0.elapsed().as_secs_f64() < secs - 5.0 {
        std::thread::sleep(Duration::from_secs_f64(every));
        snaps += 1;
        d.console_ok(&["snap", "main", &format!("soak{snaps}")]);
        if snaps > 2 {
            d.console_ok(&["snap", "-d", &format!("soak{}", snaps - 2)]);
        }
        if snaps % 3 == 0 {
            d.console_ok(&["df"]);
        }
    }
    let mut failures = Vec::new();
    let mut ops_by = BTreeMap::<&str, u64>::new();
    for (id, client, k) in kids {
        let out = py::wait(k, Duration::from_secs_f64(secs + 300.0));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            failures.push(format!(
                "{} worker {id}: {}\n{}",
                client.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let v = py::last_json(&stdout);
        *ops_by.entry(client.name()).or_default() += v["rounds"].as_u64().unwrap_or(0);
    }
    for (id, h) in rust.into_iter().enumerate() {
        match h.join().expect("rust client thread") {
            Ok(n) => *ops_by.entry("rust").or_default() += n,
            Err(e) => failures.push(format!("rust client {id}: {e}")),
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Descriptors back to the baseline once the clients are gone.
    let t1 = Instant::now();
    let mut fds_after = d.fds().expect("fds");
    while fds_after > base_fds && t1.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        fds_after = d.fds().expect("fds");
    }
    std::thread::sleep(Duration::from_millis(600));
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let s = samples.lock().expect("samples").clone();
    let check = d.console_ok(&["check"]);
    let inflight = 16 * MAX_INFLIGHT * u64::from(MSIZE);
    let allowance = CACHE + (64 << 20) + inflight;
    let total: u64 = ops_by.values().sum();
    println!(
        "soak: {elapsed:.0} s, 16 clients, {total} operations ({ops_by:?}), {snaps} snapshots"
    );
    println!(
        "soak: gefsd -m 4M: RSS {:.1} MiB at start, peak {:.1} MiB (VmHWM {:.1} MiB); \
         allowance {:.0} MiB = cache 4 + 64 + 16 conns x {MAX_INFLIGHT} in flight x msize {MSIZE} \
         ({:.0} MiB); {} samples",
        base_rss as f64 / MIB,
        s.rss_max as f64 / MIB,
        s.hwm as f64 / MIB,
        allowance as f64 / MIB,
        inflight as f64 / MIB,
        s.n
    );
    println!(
        "soak: descriptors {base_fds} before, peak {}, {fds_after} after the clients left; \
         console check: {}",
        s.fds_max,
        check.trim()
    );
    if !failures.is_empty() {
        // Keep what is needed to look into it: gefsd's log, a check of the image, the image.
        eprintln!("soak: gefsd's log:\n{}", d.log());
        let img = d.image.clone();
        d.stop();
        let (code, report) = daemon::check(&img);
        let kept = dir.keep();
        panic!(
            "{}\ngefs-check after the stop: exit {code:?}: {report}\nimage kept in {}",
            failures.join("\n"),
            kept.display()
        );
    }
    assert!(total > 1000, "the soak did almost nothing: {ops_by:?}");
    assert!(s.n >= (secs as u64), "too few samples: {}", s.n);
    assert!(
        s.hwm < allowance,
        "peak RSS {} over the allowance {allowance}",
        s.hwm
    );
    assert!(
        fds_after <= base_fds,
        "descriptors: {fds_after} after, {base_fds} before"
    );
    assert!(check.trim_end().ends_with("; clean"), "{check}");
    d.stop();
    daemon::check_clean(&img);
}
