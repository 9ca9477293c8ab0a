//! The console's online check (issue 9), through the real gefsd and `gefsd console`: it
//! checks a commit while the server goes on writing and committing (a sync issued during the
//! check completes during it; the check used to hold every commit back until it ended), shows
//! its progress in `show check`, and its answer and exit status follow gefs-check's (0 clean,
//! 1 problems, 2 could not check). Both checkers name the file a damaged block belongs to.
//!
//! Prints the write and sync latencies seen during the check, on a 1 GiB image holding
//! 512 MiB. `GEFS_TEST_GEFSD=/path/to/old/gefsd` runs the same workload against another
//! build, for a before/after comparison (its assertions then fail where it differs).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gefs_core::format::{key, Bptr, BLKSZ_U64};
use gefs_core::fs::{Fs, Who};
use gefs_core::store::Config;
use gefs_tests::cli::{bin, code};
use gefs_tests::daemon::{console_at, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::{omode, Stat};

const MIB: u64 = 1 << 20;

/// A 1 GiB image whose main holds `/big`, `mib` MiB (copied by `gefs-mkfs --from`).
fn image(dir: &Path, mib: u64) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let f = std::fs::File::create(src.join("big")).expect("create");
    f.set_len(mib * MIB).expect("size");
    let img = dir.join("c.img");
    let out = bin("gefs-mkfs")
        .args(["-s", "1G", "-u", ADMIN, "--retain", "", "--from"])
        .arg(&src)
        .arg(&img)
        .output()
        .expect("gefs-mkfs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

/// The data block of `/big` at byte `off`, read offline.
fn data_block(img: &Path, off: u64) -> Bptr {
    let cfg = Config {
        cache_bytes: 16 << 20,
        read_only: true,
    };
    let s = gefs_core::image::open_store(img, &cfg).expect("open");
    let fs = Fs::new(Arc::new(s), false).expect("fs");
    let (m, root) = fs.attach("main").expect("attach");
    let e = fs
        .walk(&m, &root, b"big", &Who::permissive(-1))
        .expect("walk");
    let v = fs
        .store()
        .lookup(m.tree(), &key::dat(e.dir.qid_path, off))
        .expect("lookup")
        .expect("block");
    Bptr::from_slice(&v).expect("pointer")
}

fn flip(img: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open");
    f.write_all_at(&[0xee; 8], at).expect("write");
}

/// Percentile `p` of `v` (sorted here), in ms.
fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Postmortem: the console check held the commit gate for the whole check, so a sync issued
/// during it waited for the end (0-1 writes completed during a check of 512 MiB). Pins: syncs
/// complete while the check runs, and the check stays clean.
#[test]
fn check_runs_while_commits_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), 512);
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    c.attach(0, ADMIN, "").expect("attach");
    c.walk(0, 1, &[]).expect("walk");
    c.create(1, "log", 0o644, omode::ORDWR).expect("create");
    c.walk(0, 2, &["log"]).expect("walk");
    // The check, on its own thread; this one writes and syncs meanwhile.
    let done = Arc::new(AtomicBool::new(false));
    let console = d.console.clone();
    let flag = done.clone();
    let checker = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = console_at(&console, &["check"]);
        let t1 = Instant::now();
        flag.store(true, Ordering::SeqCst);
        (t0, t1, r)
    });
    let chunk = vec![0x33u8; 64 << 10];
    let (mut writes, mut syncs) = (Vec::new(), Vec::new());
    let mut off = 0u64;
    let mut progress = String::new();
    while !done.load(Ordering::SeqCst) {
        let t = Instant::now();
        off += u64::from(c.write(1, off, &chunk).expect("write"));
        let w = Instant::now();
        c.wstat(2, &Stat::dont_touch()).expect("sync");
        syncs.push((w, Instant::now()));
        writes.push((t, w));
        if progress.is_empty() {
            let (_, out, _) = d.console(&["show", "check"]);
            if out.starts_with("checking commit") {
                progress = out;
            }
        }
    }
    let (t0, t1, (ok, out, err)) = checker.join().expect("checker");
    let during = |v: &[(Instant, Instant)]| -> Vec<f64> {
        v.iter()
            .filter(|(a, b)| *a >= t0 && *b <= t1)
            .map(|(a, b)| (*b - *a).as_secs_f64() * 1e3)
            .collect()
    };
    let (mut w, mut s) = (during(&writes), during(&syncs));
    // A sync started before the check and ending after it waited for it.
    let longest = syncs
        .iter()
        .map(|(a, b)| (*b - *a).as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    println!(
        "online check of 512 MiB on a 1 GiB image: {:.2} s; during it {} writes of 64 KiB \
         (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms) and {} syncs completed (p50 {:.1} ms, max \
         {:.1} ms); longest sync overall {longest:.1} ms",
        (t1 - t0).as_secs_f64(),
        w.len(),
        pct(&mut w, 0.5),
        pct(&mut w, 0.99),
        pct(&mut w, 1.0),
        s.len(),
        pct(&mut s, 0.5),
        pct(&mut s, 1.0),
    );
    assert!(ok, "check: {out}{err}");
    assert!(out.trim_end().ends_with("; clean"), "{out}");
    assert!(
        !s.is_empty(),
        "no sync completed during the check ({:.2} s): commits waited for it",
        (t1 - t0).as_secs_f64()
    );
    // `show check`: the outcome (the progress line, if a poll caught it running).
    assert!(progress.is_empty() || progress.contains('%'), "{progress}");
    let last = d.console_ok(&["show", "check"]);
    assert!(
        last.contains("no check running") && last.contains("clean"),
        "{last}"
    );
    drop(c);
    d.stop();
}

#[test]
fn damaged_blocks_name_their_files_and_exit_codes_follow_gefs_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = image(dir.path(), 8);
    let bp = data_block(&img, 2 * BLKSZ_U64);
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let (ok, out, err) = d.console(&["check"]);
    assert!(ok, "{out}{err}");
    // Damage one block of /big on the medium while gefsd serves the image.
    flip(&img, bp.addr.0 + 100);
    let want = format!(
        "snapshot main: /big, bytes {}–{}",
        2 * BLKSZ_U64,
        3 * BLKSZ_U64 - 1
    );
    let o = std::process::Command::new(gefs_tests::cli::bin_path("gefsd"))
        .args(["console", "--socket"])
        .arg(&d.console)
        .arg("check")
        .output()
        .expect("console");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("problem: block {:#x} (data", bp.addr.0)) && text.contains(&want),
        "{text}"
    );
    let j = d.console(&["--json", "check"]);
    let v: serde_json::Value = serde_json::from_str(&j.2).expect("json on stderr");
    assert_eq!(v["exit_code"].as_u64(), Some(1), "{v}");
    assert!(v["problems"][0]["files"][0].as_str() == Some(&want), "{v}");
    d.stop();
    // Offline, gefs-check names the same file.
    let out = bin("gefs-check").arg(&img).output().expect("gefs-check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("    {want}")), "{text}");
    let (c, _) = code(bin("gefs-check").arg("-q").arg(&img));
    assert_eq!(c, Some(1));
    // An image that cannot be read any more: 2, as gefs-check.
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open");
    f.set_len(1 << 20).expect("truncate");
    let o = std::process::Command::new(gefs_tests::cli::bin_path("gefsd"))
        .args(["console", "--socket"])
        .arg(&d.console)
        .arg("check")
        .output()
        .expect("console");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("i/o error"), "{text}");
    let last = d.console_ok(&["show", "check"]);
    assert!(last.contains("could not check"), "{last}");
}
