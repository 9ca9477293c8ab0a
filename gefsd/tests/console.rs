//! The console: every command, argument-count errors, long lines, live check, halt.

mod common;

use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::*;
use gefsd::proto::omode;

struct Console {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Console {
    fn open(p: &Path) -> Console {
        let w = UnixStream::connect(p).expect("connect console");
        let r = BufReader::new(w.try_clone().expect("clone"));
        Console { w, r }
    }

    fn run(&mut self, line: &str) -> (bool, String) {
        gefsd::console::request(&mut self.w, &mut self.r, line).expect("console request")
    }

    fn ok(&mut self, line: &str) -> String {
        let (ok, body) = self.run(line);
        assert!(ok, "{line}: {body}");
        body
    }

    fn err(&mut self, line: &str) -> String {
        let (ok, body) = self.run(line);
        assert!(!ok, "{line} should fail: {body}");
        body
    }
}

fn with_console() -> (
    gefsd::server::Server,
    std::net::SocketAddr,
    tempfile::TempDir,
    Console,
) {
    let (mut s, a) = start();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("gefs.cmd");
    s.start_console(p.clone()).expect("console");
    let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "console socket mode");
    let c = Console::open(&p);
    (s, a, dir, c)
}

#[test]
fn commands_and_argument_counts() {
    let (s, a, _d, mut k) = with_console();
    let mut c = attached(a);
    put(&mut c, 1, "f", b"data");
    assert!(k.ok("help").contains("snap -d [-f] name"));
    assert!(k.err("frobnicate").contains("unknown command"));
    assert!(k.ok("sync").starts_with("synced (commit "));
    let df = k.ok("df");
    assert!(
        df.contains("arena 0: used") && df.contains("total: used"),
        "{df}"
    );
    let j: serde_json::Value = serde_json::from_str(&k.ok("json df")).expect("json");
    assert!(j["arenas"].as_array().is_some_and(|a| a.len() > 1));
    assert!(j["snapshots"].is_u64() && j["reserve"].is_u64(), "{j}");
    let c = k.ok("check");
    assert!(c.starts_with("commit ") && c.ends_with("; clean\n"), "{c}");
    let j: serde_json::Value = serde_json::from_str(&k.ok("json check")).expect("json");
    assert_eq!(
        (j["status"].as_str(), j["exit_code"].as_u64()),
        (Some("clean"), Some(0)),
        "{j}"
    );
    assert!(k.ok("show check").contains("last check: commit "));
    assert_eq!(k.ok("permit on"), "permit on\n");
    assert_eq!(k.ok("permit off"), "permit off\n");
    assert!(k.ok("snap main s1").contains("labeled: main as s1"));
    assert!(k.ok("snap -m s1 fork").contains("forked: s1 as fork"));
    let l = k.ok("snap -l");
    // A fork holds s1: deleting s1 would free nothing.
    assert!(
        l.contains("s1  unique 0 B\n")
            && l.contains("fork [mutable]")
            && l.contains("main [mutable]"),
        "{l}"
    );
    assert!(k.ok("snap -d s1").contains("deleted: s1"));
    // main needs -f; with it, main is mounted (attached): refused.
    assert!(k.err("snap -d main").contains("-f"));
    assert!(k.err("snap -d -f main").contains("in use"));
    assert!(k.ok("set main retain '10@m'").contains("set main retain"));
    k.err("set main retain 'bogus'");
    assert!(k.ok("clear main retain").contains("cleared main retain"));
    assert!(k.ok("clear never-set").contains("cleared"));
    assert!(k.ok("users").contains("loaded"));
    assert!(k.ok("show users").contains(&format!(":{}:", me())));
    assert!(k.ok("show fid").contains("fid 0:"));
    let j: serde_json::Value = serde_json::from_str(&k.ok("json show fid")).expect("json");
    assert!(j.as_array().is_some_and(|a| !a.is_empty()));
    assert!(k.ok("show cache").contains("capacity"));
    assert!(k.ok("show alloc").contains("free"));
    assert!(k.ok("show free").starts_with("arena 0:"));
    assert!(!k.ok("show tree").is_empty());
    assert!(!k.ok("show tree adm").is_empty());
    for bad in [
        "help me",
        "check now",
        "df -h",
        "halt now",
        "sync all",
        "users x",
        "permit",
        "permit yes",
        "permit on off",
        "snap",
        "snap -m",
        "snap -d",
        "snap -l x",
        "snap a b c",
        "set",
        "set k",
        "set a b c d",
        "clear",
        "clear a b c",
        "show",
        "show nothing",
        "show tree a b",
        "json",
        "'unterminated",
    ] {
        let e = k.err(bad);
        assert!(!e.is_empty(), "{bad}");
    }
    // A line over the limit is refused and the console goes on.
    let long = "x".repeat(gefsd::console::MAX_LINE + 10);
    assert!(k.err(&long).contains("longer than"));
    assert!(k.ok("sync").starts_with("synced"));
    // Blank lines are fine.
    assert_eq!(k.ok(""), "");
    stop(s);
}

#[test]
fn broken_users_file_keeps_the_old_table() {
    let (s, a, _d, mut k) = with_console();
    let mut c = attached(a);
    c.attach(1, &me(), "%adm").expect("attach %adm");
    c.walk(1, 2, &["users"]).expect("walk users");
    c.open(2, omode::OWRITE | omode::OTRUNC)
        .expect("open users");
    c.write(2, 0, b"this is not a users file\n").expect("write");
    c.clunk(2).expect("clunk");
    let e = k.err("users");
    assert!(e.contains("keeping the old table"), "{e}");
    // The old table still lets us in.
    c.attach(3, &me(), "").expect("attach with the old table");
    stop(s);
}

#[test]
fn halt_syncs_first() {
    let (s, a, _d, mut k) = with_console();
    let mut c = attached(a);
    put(&mut c, 1, "unsynced", b"x");
    let before = s.core().store().commit_gen();
    let out = k.ok("halt");
    assert!(
        out.starts_with("synced (commit ") && out.contains("halting"),
        "{out}"
    );
    assert!(
        s.core().store().commit_gen() > before,
        "halt committed before stopping"
    );
    s.wait();
    stop(s);
}

#[test]
fn retention_does_not_pin_labels() {
    // The retention pass reads every mutable label's `retain`; reading must not mount the
    // label, or `snap -d` of a fork would fail forever after ("in use").
    let mut o = opts(true);
    o.sync_every = std::time::Duration::from_millis(20);
    o.retain_every = Some(std::time::Duration::from_millis(1));
    let (mut s, _a) = start_with(o);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("gefs.cmd");
    s.start_console(p.clone()).expect("console");
    let mut k = Console::open(&p);
    assert!(k.ok("snap -m main fork").contains("forked"));
    let t0 = std::time::Instant::now();
    // Wait for a retention pass to have read fork's schedule: it takes fork's first automatic
    // snapshot.
    loop {
        if k.ok("snap -l").contains("fork@minute.") {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "no retention pass"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // fork is its tree's last label: deleting it needs -f.
    assert!(k.err("snap -d fork").contains("add -f"));
    assert!(k.ok("snap -d -f fork").contains("deleted: fork"));
    stop(s);
}
