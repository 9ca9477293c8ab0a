//! Packaging (issue 9), through the real binaries: every tool writes its man page and its
//! bash, zsh and fish completions from its own clap definition (`--generate`), and gefsd
//! tells a service manager it is ready (`READY=1` on `NOTIFY_SOCKET`, what systemd's
//! `Type=notify` in contrib/gefsd.service waits for) only once it listens.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use gefs_tests::cli::{bin, code, ok};
use gefs_tests::daemon::{format, Daemon, Opts, ADMIN};

#[test]
fn every_tool_generates_its_man_page_and_completions() {
    let dir = tempfile::tempdir().expect("tempdir");
    for t in ["gefsd", "gefs-mkfs", "gefs-snap", "gefs-check", "gefs-dump"] {
        ok(bin(t).args(["--generate", "all"]).arg(dir.path()));
        let man = std::fs::read_to_string(dir.path().join(format!("{t}.1"))).expect("man page");
        assert!(
            man.starts_with(".ie") || man.contains(&format!(".TH {t}")),
            "{t}: {man}"
        );
        assert!(
            man.contains("Exit status"),
            "{t}: the man page has the exit codes"
        );
        for f in [format!("{t}.bash"), format!("_{t}"), format!("{t}.fish")] {
            let s = std::fs::read_to_string(dir.path().join(&f)).expect("completion");
            assert!(s.contains("log-format"), "{f} completes the options");
        }
    }
    let man = std::fs::read_to_string(dir.path().join("gefsd.1")).expect("man");
    assert!(
        man.contains("no\\-auth") || man.contains("no-auth"),
        "{man}"
    );
    let (c, e) = code(bin("gefsd").args(["--generate", "pdf"]).arg(dir.path()));
    assert_eq!(c, Some(2), "{e}");
}

#[test]
fn gefsd_tells_the_service_manager_it_is_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    format(&img, "64M", ADMIN);
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let p = sock_path.to_str().expect("utf-8");
    let d = Daemon::try_start_env(dir.path(), &img, &Opts::default(), &[("NOTIFY_SOCKET", p)])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Ready means serving: the console answers.
    d.console_ok(&["df"]);
    d.stop();
    let n = sock.recv(&mut buf).expect("the stop notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}
