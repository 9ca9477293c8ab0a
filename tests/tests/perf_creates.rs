//! Comparison figures, not assertions (ignored by default; a few minutes under TCG):
//!
//!     cargo test --release -p gefs-tests --test perf_creates -- --ignored --nocapture
//!
//! Creates per second of small files through the Linux kernel's 9P client (v9fs, 9P2000.L,
//! no cache, `msize=262144`), gefsd against diod, from the same guest in one boot (the QEMU
//! guest of `linux_v9fs`, `tests/vm/README.md`): `gefsvm creates` makes `FILES` files of
//! 100 bytes each in a fresh directory (open `O_CREAT|O_EXCL`, write, close), through the
//! port to gefsd (`-m 256M`, a 4 GiB image in a temp directory) and through the port to diod
//! (`diod -f -n -e DIR -l 127.0.0.1:PORT`, exporting a temp directory on the same disk; diod
//! listens on TCP only, so that port's relay connects there), twice each, alternating. The
//! guest is emulated (TCG): its own share of each create is large, and the same for both
//! servers; so the test also prints the CPU time each server used over the boot, per create.
//! `GEFS_CREATES=N` changes the count. After the boot gefsd stops and `gefs-check` must find
//! the image clean.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use gefs_tests::daemon::{self, Daemon, Opts};
use gefs_tests::diod;
use gefs_tests::vm::{repo, vmdir, write_users, Guest, Server, USERS};

/// Files per run.
const FILES: u32 = 10_000;
/// The boot's limit.
const BOOT_LIMIT: Duration = Duration::from_secs(1800);

#[test]
#[ignore = "figures for the closing note: a few minutes, needs QEMU and diod (installed if missing)"]
fn creates_gefsd_and_diod() {
    diod::ensure();
    let files: u32 = std::env::var("GEFS_CREATES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(FILES);
    let guest = Guest::prepare(&repo(), &vmdir(), &repo().join("gefs-core/src"));
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "4G", "alice");
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            cache: "256M".into(),
            ..Opts::default()
        },
    );
    write_users(&d, "alice", USERS);
    let export = dir.path().join("export");
    std::fs::create_dir_all(&export).expect("export dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut srv = Command::new(diod::bin("diod"))
        .args(["-f", "-n", "-e"])
        .arg(&export)
        .args(["-l", &listen.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start diod");
    std::thread::sleep(Duration::from_millis(500));
    let servers = [Server::Unix(d.sock.clone()), Server::Tcp(listen)];
    let cpu = || [d.pid(), srv.id()].map(|p| daemon::proc_cpu(p).expect("a server's CPU time"));
    let cpu0 = cpu();
    let run = guest.boot_to(
        dir.path(),
        &servers,
        &format!(
            "gefs.dialect=9p2000.L gefs.creates={files} gefs.diod={}",
            export.display()
        ),
        "creates",
        BOOT_LIMIT,
    );
    let cpu1 = cpu();
    // The diod this test started, by its id.
    let _ = srv.kill();
    let _ = srv.wait();
    let log = d.log();
    d.stop();
    let fails: Vec<&str> = run.with_prefix("FAIL ").collect();
    assert!(
        !run.timed_out && run.exit() == Some(0) && fails.is_empty(),
        "the guest {} (exit {:?}); failures:\n  {}\ntranscript:\n{}\ngefsd:\n{log}",
        if run.timed_out {
            "timed out"
        } else {
            "finished"
        },
        run.exit(),
        fails.join("\n  "),
        run.transcript()
    );
    println!("v9fs (9P2000.L, no cache, msize 262144) creates of {files} files of 100 bytes, QEMU TCG guest");
    let mut seen = 0;
    for l in run.with_prefix("creates ") {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [server, round, n, secs] = f[..] else {
            panic!("unexpected result line {l:?}");
        };
        let (n, secs): (f64, f64) = (n.parse().expect("count"), secs.parse().expect("seconds"));
        println!(
            "{server:>6} run {round}: {n} files in {secs:>7.2} s: {:>7.0} creates/s",
            n / secs
        );
        seen += 1;
    }
    assert_eq!(seen, 4, "two runs per server:\n{}", run.transcript());
    for (i, name) in ["gefsd", "diod"].iter().enumerate() {
        let used = cpu1[i].saturating_sub(cpu0[i]);
        println!(
            "{name:>6} CPU over the boot (mounts and {} creates): {:.2} s, {:.0} µs per create",
            2 * files,
            used.as_secs_f64(),
            used.as_secs_f64() * 1e6 / f64::from(2 * files)
        );
    }
    daemon::check_clean(&img);
}
