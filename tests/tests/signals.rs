//! Issue 8, finding 6: stopping gefsd by signal, through the real binary.
//!
//! - SIGTERM stops the server even when its Unix socket files have been removed (stopping
//!   once connected to the socket path to wake the accept loop, and hung forever without it);
//! - SIGHUP commits and stops like SIGTERM: a write acknowledged before it survives;
//! - a second SIGTERM during a stop that waits (here on a client that never reads its
//!   replies) makes one last commit and exits at once.
//!
//! Each case restarts gefsd on the image and reads back what was written before the signal
//! (acknowledged, never explicitly synced), then runs gefs-check.

use std::path::Path;
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, attached, Daemon, Opts, ADMIN};
use gefsd::proto::{encode_t, omode, Tmsg};
use rustix::process::Signal;

fn put(sock: &Path, name: &str, data: &[u8]) {
    let mut c = attached(sock);
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, name, 0o644, omode::OWRITE).expect("create");
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        c.write(1, (i as u64) << 20, piece).expect("write");
    }
    c.clunk(1).expect("clunk");
}

fn get(sock: &Path, name: &str) -> Option<Vec<u8>> {
    let mut c = attached(sock);
    c.walk(0, 1, &[name]).ok()?;
    c.open(1, omode::OREAD).expect("open");
    Some(c.read_all(1).expect("read"))
}

/// Format, start, and write `name` (acknowledged, not synced).
fn started(dir: &Path, name: &str, data: &[u8]) -> Daemon {
    let img = dir.join("gefs.img");
    daemon::format(&img, "128M", ADMIN);
    let d = Daemon::start(dir, &img, &Opts::default());
    put(&d.sock, name, data);
    d
}

/// Restart on the same image: `name` must hold `data`; then stop and check the image.
fn survived(dir: &Path, name: &str, data: &[u8]) {
    let img = dir.join("gefs.img");
    daemon::check_clean(&img);
    let d = Daemon::start(dir, &img, &Opts::default());
    assert_eq!(
        get(&d.sock, name).as_deref(),
        Some(data),
        "{name} after restart"
    );
    d.stop();
}

#[test]
fn sigterm_stops_with_the_socket_files_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = started(dir.path(), "before", b"acknowledged before SIGTERM");
    std::fs::remove_file(&d.sock).expect("remove the 9P socket");
    std::fs::remove_file(&d.console).expect("remove the console socket");
    let t0 = Instant::now();
    d.signal(Signal::TERM);
    let st = d.wait(Duration::from_secs(30));
    let log = d.log();
    assert!(st.success(), "exit {st}: {log}");
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    assert!(log.contains("stopped after commit"), "{log}");
    eprintln!(
        "signals: SIGTERM with the sockets removed: stopped in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    survived(dir.path(), "before", b"acknowledged before SIGTERM");
}

#[test]
fn sighup_commits_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = started(dir.path(), "hup", b"acknowledged before SIGHUP");
    d.signal(Signal::HUP);
    let st = d.wait(Duration::from_secs(30));
    let log = d.log();
    assert!(st.success(), "exit {st}: {log}");
    assert!(log.contains("SIGHUP: stopping"), "{log}");
    assert!(log.contains("stopped after commit"), "{log}");
    assert!(!d.sock.exists() && !d.console.exists(), "sockets removed");
    survived(dir.path(), "hup", b"acknowledged before SIGHUP");
}

#[test]
fn a_second_sigterm_during_the_stop_commits_and_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = started(
        dir.path(),
        "small",
        b"acknowledged before the first SIGTERM",
    );
    put(&d.sock, "big", &vec![7u8; 4 << 20]);
    // A client that pipelines reads and never reads a reply: the stop waits for its replies
    // to be written (up to a minute).
    let mut stuck = attached(&d.sock);
    stuck.walk(0, 1, &["big"]).expect("walk");
    stuck.open(1, omode::OREAD).expect("open");
    let mut batch = Vec::new();
    for tag in 1..=32u16 {
        let m = Tmsg::Read {
            fid: 1,
            offset: 0,
            count: 1 << 20,
        };
        encode_t(tag, &m, &mut batch).expect("encode");
    }
    stuck.send_raw(&batch).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    d.signal(Signal::TERM);
    let t0 = Instant::now();
    while !d.log().contains("SIGTERM: stopping") {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(d.alive(), "the stop should still wait: {}", d.log());
    let t1 = Instant::now();
    d.signal(Signal::TERM);
    let st = d.wait(Duration::from_secs(20));
    let took = t1.elapsed();
    let log = d.log();
    assert!(st.success(), "exit {st}: {log}");
    assert!(log.contains("during the stop"), "{log}");
    assert!(log.contains("exiting after commit"), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "second SIGTERM took {took:?}"
    );
    eprintln!(
        "signals: second SIGTERM exited {:.2} s after it was sent",
        took.as_secs_f64()
    );
    drop(stuck);
    survived(
        dir.path(),
        "small",
        b"acknowledged before the first SIGTERM",
    );
}
