//! gefsd's log through the real binary (issue 9): structured `tracing` events on standard
//! error, `RUST_LOG` choosing what is shown, `--log-format json` for machines. A damaged
//! block read through gefsd is logged with its address; attaches, refused attaches and
//! console commands are logged with who and what; `RUST_LOG=debug` shows every commit.

use gefs_tests::cli::bin;
use gefs_tests::daemon::{format, Daemon, Opts, ADMIN};
use gefs_tests::damage::{flip, root_of};
use gefsd::client::Client;

/// Poll gefsd's log (read in the background) until `want` holds, for up to 5 s.
fn log_until(d: &Daemon, want: impl Fn(&str) -> bool) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let log = d.log();
        if want(&log) || t0.elapsed() > std::time::Duration::from_secs(5) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_damaged_block_read_through_gefsd_is_logged_with_its_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    format(&img, "64M", ADMIN);
    let o = bin("gefs-check")
        .arg("--json")
        .arg(&img)
        .output()
        .expect("runs");
    let report = serde_json::from_slice(&o.stdout).expect("JSON report");
    let root = root_of(&report, "main");
    flip(&img, root + 40);
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    let e = c.attach(0, ADMIN, "").expect_err("main's root is damaged");
    let addr = format!("{root:#x}");
    // Both events: the corrupt block, then the request that met it (a line later, so wait
    // for that one too rather than for the first).
    let named = |l: &str| l.contains("Tattach") && l.contains(":/") && l.contains(&addr);
    let log = log_until(&d, |l| l.contains("corrupt block") && l.lines().any(&named));
    let line = log
        .lines()
        .find(|l| l.contains("corrupt block") && l.contains(&format!("addr={addr}")))
        .unwrap_or_else(|| panic!("no corrupt-block event for {addr} (client got {e}):\n{log}"));
    assert!(
        line.contains("ERROR") && line.contains("kind=node"),
        "{line}"
    );
    // The request that met it is named too, with the tree it was reading.
    assert!(log.lines().any(named), "{log}");
    // Attaches are logged: a refused one with the peer's uid.
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    assert!(c.attach(0, "nosuch", "").is_err());
    let log = log_until(&d, |l| l.contains("attach refused: nosuch"));
    assert!(
        log.lines()
            .any(|l| l.contains("attach refused: nosuch") && l.contains("peer_uid=")),
        "{log}"
    );
    d.stop();
}

#[test]
fn json_lines_name_their_fields_and_debug_shows_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    format(&img, "64M", ADMIN);
    let o = Opts {
        extra: vec!["--log-format".into(), "json".into()],
        ..Opts::default()
    };
    let d = Daemon::try_start_env(dir.path(), &img, &o, &[("RUST_LOG", "debug")])
        .unwrap_or_else(|e| panic!("{e}"));
    d.console_ok(&["snap", "main", "s1"]);
    d.console_ok(&["sync"]);
    let (ok, _, _) = d.console(&["snap", "-d", "nosuch"]);
    assert!(!ok);
    let mut d = d;
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait(std::time::Duration::from_secs(30)).success());
    let log = log_until(&d, |l| l.contains("stopped after commit"));
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let find = |msg: &str| {
        events
            .iter()
            .find(|e| {
                e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(msg))
            })
            .unwrap_or_else(|| panic!("no {msg:?} event in:\n{log}"))
    };
    let serving = find("serving");
    assert_eq!(serving["level"], "INFO");
    assert!(serving["timestamp"].is_string(), "{serving}");
    assert_eq!(serving["fields"]["image"], img.display().to_string());
    assert!(
        serving["fields"]["cache_bytes"].as_u64() > Some(0),
        "{serving}"
    );
    let commit = find("committed");
    assert_eq!(commit["level"], "DEBUG");
    assert!(commit["fields"]["commit"].as_u64() > Some(1), "{commit}");
    assert!(commit["fields"]["blocks"].as_u64() > Some(0), "{commit}");
    assert!(commit["fields"]["ms"].is_string(), "{commit}");
    assert_eq!(
        find("console: snap main s1")["fields"]["command"],
        "snap main s1"
    );
    let failed = find("console: snap -d nosuch: failed");
    assert_eq!(failed["level"], "WARN");
    assert!(failed["fields"]["error"].is_string(), "{failed}");
    find("stopped after commit");
}

#[test]
fn rust_log_filters_and_info_is_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    format(&img, "64M", ADMIN);
    // By default: info, so the start is logged but commits (debug) are not.
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    d.console_ok(&["snap", "main", "s1"]);
    d.console_ok(&["sync"]);
    let log = d.log();
    d.stop();
    assert!(
        log.contains(" INFO ") && !log.contains("committed"),
        "{log}"
    );
    // RUST_LOG=off hides events, but never why gefsd could not start.
    let o = bin("gefsd")
        .args(["-R", "-f"])
        .arg(dir.path().join("missing.img"))
        .env("RUST_LOG", "off")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("missing.img"), "{err}");
}
