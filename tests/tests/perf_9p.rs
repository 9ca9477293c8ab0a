//! Comparison figures, not assertions (ignored by default; it takes minutes and needs
//! Debian's `diod`):
//!
//!     apt-get install -y diod
//!     cargo test --release -p gefs-tests --test perf_9p -- --ignored --nocapture
//!
//! Over loopback TCP, `tests/py/bench.py` measures sequential write and read of one file
//! (`GEFS_PERF_SIZE`, default 1G) and creates of 2,000 files of 1 KiB, through
//! - gefsd (`-m 256M`, on a 4 GiB image in a temp directory) with python-9p and with p9fs
//!   (9P2000), each at msize 1 MiB + 24 (gefsd's largest);
//! - diod (`diod -f -n -e DIR -l 127.0.0.1:PORT`, serving a temp directory on the same disk)
//!   with p9fs speaking 9P2000.L (python-9p speaks only 9P2000), at the msize diod grants;
//!
//! and gefsd's peak RSS (VmHWM) during its runs against its cache size. Prints a table.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gefs_tests::daemon::{self, proc_rss, Daemon, Opts, ADMIN};
use gefs_tests::py::{self, Py};

fn bench(client: Py, args: &[&str]) -> serde_json::Value {
    let out = py::run_ok(
        py::command(client, "bench.py").args(args),
        Duration::from_secs(3600),
    );
    py::last_json(&out)
}

#[test]
#[ignore = "figures for the closing note: minutes long, needs diod (apt-get install -y diod)"]
fn loopback_throughput_gefsd_and_diod() {
    let size = std::env::var("GEFS_PERF_SIZE").unwrap_or_else(|_| "1G".into());
    for c in Py::all() {
        py::python(c);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "4G", ADMIN);
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            cache: "256M".into(),
            ..Opts::default()
        },
    );
    let pid = d.pid();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                if let Some((_, hwm)) = proc_rss(pid) {
                    peak = peak.max(hwm);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            peak
        })
    };
    let tcp = format!("tcp:{}", d.tcp);
    let mut rows = vec![
        bench(
            Py::Python9p,
            &[
                "--client",
                "python-9p",
                "--addr",
                &tcp,
                "--user",
                ADMIN,
                "--size",
                &size,
                "--dir",
                "b-python-9p",
            ],
        ),
        bench(
            Py::P9fs,
            &[
                "--client", "p9fs", "--addr", &tcp, "--user", ADMIN, "--size", &size, "--dir",
                "b-p9fs",
            ],
        ),
    ];
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    d.stop();
    // diod on a directory of the same disk.
    let export = dir.path().join("export");
    std::fs::create_dir(&export).expect("export dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut diod = Command::new("diod")
        .args(["-f", "-n", "-e"])
        .arg(&export)
        .args(["-l", &format!("127.0.0.1:{port}"), "-L", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("diod (apt-get install -y diod)");
    std::thread::sleep(Duration::from_secs(1));
    let user = gefsd::server::current_user();
    rows.push(bench(
        Py::P9fs,
        &[
            "--client",
            "p9fs",
            "--server",
            "diod",
            "--version",
            "9P2000.L",
            "--addr",
            &format!("tcp:127.0.0.1:{port}"),
            "--aname",
            &export.display().to_string(),
            "--user",
            &user,
            "--size",
            &size,
            "--dir",
            "b-diod",
        ],
    ));
    let _ = diod.kill();
    let _ = diod.wait();
    println!("| server | client | protocol | msize | write MB/s | read MB/s | creates/s (2000 x 1 KiB) |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r["server"].as_str().unwrap_or("?"),
            r["client"].as_str().unwrap_or("?"),
            r["version"].as_str().unwrap_or("?"),
            r["msize"],
            r["write_MBps"],
            r["read_MBps"],
            r["creates_per_s"]
        );
    }
    println!(
        "gefsd -m 256M: peak RSS (VmHWM) {:.1} MiB during its runs; file size {size}",
        peak as f64 / 1048576.0
    );
}
