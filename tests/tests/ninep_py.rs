//! The real gefsd binary driven by two independent 9P2000 clients from PyPI (`python-9p` and
//! `p9fs`, see `gefs_tests::py`), over its Unix and loopback TCP listeners: file operations
//! on files of 0 bytes to 100 MiB (`tests/py/ops.py`), Tflush during large reads
//! (`flush.py`), the attach names (`attaches.py`), eight clients at once on separate files and
//! one shared directory (`worker.py`), and authentication by peer credentials without `-A`.
//! Every image is checked with `gefs-check` after the server stops.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use gefs_tests::cli::bin_path;
use gefs_tests::daemon::{self, Daemon, Opts, ADMIN};
use gefs_tests::py::{self, Py};
use gefsd::client::Client;
use gefsd::proto::omode;

const LIMIT: Duration = Duration::from_secs(600);

fn unix(d: &Daemon) -> String {
    format!("unix:{}", d.sock.display())
}

fn tcp(d: &Daemon) -> String {
    format!("tcp:{}", d.tcp)
}

/// A fresh 1 GiB image served with `-A`.
fn serve(dir: &Path) -> Daemon {
    let img = dir.join("gefs.img");
    daemon::format(&img, "1G", ADMIN);
    Daemon::start(dir, &img, &Opts::default())
}

fn ops(client: Py, addr: &str, user: &str, dir: &str, sizes: &str) -> serde_json::Value {
    let t0 = Instant::now();
    let out = py::run_ok(
        py::command(client, "ops.py").args([
            "--addr", addr, "--user", user, "--dir", dir, "--sizes", sizes,
        ]),
        LIMIT,
    );
    let v = py::last_json(&out);
    eprintln!(
        "ops.py {} {addr} sizes {sizes}: {v} ({:.1} s)",
        client.name(),
        t0.elapsed().as_secs_f64()
    );
    assert!(v["checks"].as_u64().unwrap_or(0) >= 70, "{v}");
    v
}

fn ops_both_transports(client: Py) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = serve(dir.path());
    // The largest files over one transport, the rest over both.
    ops(
        client,
        &unix(&d),
        ADMIN,
        "over-unix",
        "0,1,100,4095,4096,65536,1M,8M,100M",
    );
    ops(client, &tcp(&d), ADMIN, "over-tcp", "0,1,100,65537,3M,17M");
    let img = d.image.clone();
    d.stop();
    daemon::check_clean(&img);
}

#[test]
fn python9p_file_operations_0_to_100mib() {
    ops_both_transports(Py::Python9p);
}

#[test]
fn p9fs_file_operations_0_to_100mib() {
    ops_both_transports(Py::P9fs);
}

#[test]
fn flush_during_large_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    // flush.py sends its whole batch (24 requests of 1 MiB, then their flushes) before it
    // reads a reply. gefsd takes in only what its memory budgets allow (4 MiB per connection
    // by default) and then stops reading until replies are read, so such a client blocks in
    // its own send; the budgets here are large enough for the batch.
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "1G", ADMIN);
    let opts = Opts {
        extra: ["--conn-mem", "64M", "--server-mem", "64M"]
            .map(String::from)
            .to_vec(),
        ..Opts::default()
    };
    let d = Daemon::start(dir.path(), &img, &opts);
    for addr in [unix(&d), tcp(&d)] {
        let out = py::run_ok(
            py::command(Py::Python9p, "flush.py")
                .args(["--addr", &addr, "--user", ADMIN, "--rounds", "8"]),
            LIMIT,
        );
        let v = py::last_json(&out);
        eprintln!("flush.py {addr}: {v}");
        assert_eq!(v["requests"], 8 * 24, "{v}");
    }
    let img = d.image.clone();
    d.stop();
    daemon::check_clean(&img);
}

#[test]
fn attach_names_main_label_percent_dump_adm_empty() {
    for (client, transport) in [(Py::Python9p, "unix"), (Py::P9fs, "tcp")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = serve(dir.path());
        let addr = if transport == "unix" {
            unix(&d)
        } else {
            tcp(&d)
        };
        let gefsd = bin_path("gefsd");
        let out = py::run_ok(
            py::command(client, "attaches.py")
                .args(["--addr", &addr, "--user", ADMIN, "--gefsd"])
                .arg(&gefsd)
                .arg("--console")
                .arg(&d.console),
            LIMIT,
        );
        let v = py::last_json(&out);
        eprintln!("attaches.py {} {addr}: {v}", client.name());
        assert!(v["checks"].as_u64().unwrap_or(0) >= 50, "{v}");
        // Permissive attaches are audit-logged (S4).
        let log = d.log();
        assert!(
            log.contains(&format!("gefsd: permissive attach: {ADMIN} to main")),
            "{log}"
        );
        let img = d.image.clone();
        d.stop();
        daemon::check_clean(&img);
    }
}

/// The names in directory `path` of the image, through gefsd's own Rust client.
fn names(sock: &Path, path: &[&str]) -> BTreeSet<String> {
    let mut c = Client::unix(sock).expect("connect");
    c.version(1 << 16).expect("version");
    c.attach(0, ADMIN, "").expect("attach");
    c.walk(0, 1, path).expect("walk");
    c.open(1, omode::OREAD).expect("open");
    c.read_dir(1)
        .expect("readdir")
        .into_iter()
        .map(|s| s.name)
        .collect()
}

#[test]
fn eight_clients_at_once_on_separate_files_and_one_shared_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = serve(dir.path());
    let t0 = Instant::now();
    let mut kids = Vec::new();
    for id in 0..8u32 {
        // Four of each client; the python-9p ones over Unix, the p9fs ones over TCP.
        let (client, addr) = if id % 2 == 0 {
            (Py::Python9p, unix(&d))
        } else {
            (Py::P9fs, tcp(&d))
        };
        // Wait for its "ready" line: connected and attached.
        let (child, line) = py::start_worker(
            client,
            &addr,
            ADMIN,
            id,
            &format!("w{id}"),
            &["--rounds", "300"],
        );
        assert!(line.contains("ready"), "worker {id}: {line}");
        kids.push((id, child));
    }
    // Everyone is attached: go.
    for (_, k) in &mut kids {
        let stdin = k.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("go");
        stdin.flush().expect("flush");
    }
    let mut shared = BTreeSet::new();
    for (id, k) in kids {
        let out = py::wait(k, LIMIT);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "worker {id}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v = py::last_json(&stdout);
        assert_eq!(v["rounds"], 300, "{v}");
        for n in v["shared"].as_array().expect("shared names") {
            shared.insert(n.as_str().expect("name").to_string());
        }
    }
    eprintln!(
        "8 clients x 300 rounds in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    // The shared directory holds exactly what the clients say they left.
    assert_eq!(names(&d.sock, &["shared"]), shared);
    let top = names(&d.sock, &[]);
    for id in 0..8 {
        assert!(top.contains(&format!("w{id}")), "{top:?}");
    }
    let img = d.image.clone();
    d.stop();
    daemon::check_clean(&img);
}

#[test]
fn peer_credentials_without_dash_a() {
    // Without -A, the attach must name the login name of the connecting uid.
    let me = gefsd::server::current_user();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", &me);
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            noauth: false,
            ..Opts::default()
        },
    );
    assert!(UnixStream::connect(&d.sock).is_ok());
    for client in Py::all() {
        for addr in [unix(&d), tcp(&d)] {
            let attach = |user: &str| {
                py::last_json(&py::run_ok(
                    py::command(client, "attach.py").args(["--addr", &addr, "--user", user]),
                    LIMIT,
                ))
            };
            let ok = attach(&me);
            assert_eq!(ok["ok"], true, "{} {addr} as {me}: {ok}", client.name());
            // Another user of the table: refused, whatever the client claims, unless the
            // peer is root (a kernel mounting for its users may attach as any of them).
            let other = attach("adm");
            let root = rustix::process::getuid().is_root();
            assert_eq!(
                other["ok"],
                root,
                "{} {addr} as adm: {other}",
                client.name()
            );
        }
        ops(
            client,
            &unix(&d),
            &me,
            &format!("peer-{}", client.name()),
            "0,1,70000",
        );
    }
    d.stop();
    daemon::check_clean(&img);
}
