//! Every console command through the real `gefsd console` client against the real gefsd (the
//! server's own tests cover each command's semantics in Rust; this is the CLI smoke pass):
//! one command per invocation, `--json`, the interactive `gefs#` prompt on standard input,
//! errors and exit codes, and `halt`, after which the image checks clean.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use gefs_tests::cli::bin_path;
use gefs_tests::daemon::{self, console_at, Daemon, Opts, ADMIN};

#[test]
fn every_console_command_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "256M", ADMIN);
    let mut d = Daemon::start(dir.path(), &img, &Opts::default());
    // (command, what the output must contain)
    let cases: &[(&[&str], &str)] = &[
        (&["help"], "snap -d [-f] name"),
        (&["sync"], "synced (commit"),
        (&["df"], "total: used"),
        (&["snap", "-l"], "main [mutable]"),
        (&["snap", "main", "s"], "labeled: main as s"),
        (&["snap", "-l"], "\ns  unique "),
        (&["snap", "-m", "s", "fork"], "fork"),
        (&["snap", "-d", "-f", "fork"], "deleted: fork"),
        (&["snap", "-d", "s"], "deleted: s"),
        (&["set", "main", "retain", ""], "set main retain"),
        (&["set", "main", "retain", "2@1h"], "set main retain"),
        (&["clear", "main", "retain"], "retain"),
        (&["show", "cache"], "capacity:"),
        (&["show", "alloc"], ""),
        (&["show", "free"], ""),
        (&["show", "fid"], ""),
        (&["show", "users"], "-1:adm::alice"),
        (&["show", "tree"], "level"),
        (&["users"], "loaded"),
        (&["permit", "on"], "permit on"),
        (&["permit", "off"], "permit off"),
        (&["check"], "; clean"),
        (&["show", "check"], "last check: commit"),
    ];
    for (args, want) in cases {
        let (ok, out, err) = d.console(args);
        assert!(ok, "console {args:?}: {out}{err}");
        assert!(
            out.contains(want),
            "console {args:?}: {out:?} lacks {want:?}"
        );
    }
    // Commands that change security or availability are audit-logged (S7). The log reaches
    // the test through a pipe and a reader thread: give the last lines a moment.
    let t0 = std::time::Instant::now();
    let mut log = d.log();
    while !log.contains("console: snap") && t0.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = d.log();
    }
    for line in [
        "console: permit on",
        "console: permit off",
        "console: users",
        "console: set",
        "console: snap",
    ] {
        assert!(log.contains(line), "{line:?} not in gefsd's log:\n{log}");
    }
    let (ok, out, _) = d.console(&["snap", "-l"]);
    assert!(
        ok && !out.contains("\ns ") && !out.contains("fork"),
        "{out}"
    );
    // JSON where there is data.
    let out = Command::new(bin_path("gefsd"))
        .args(["console", "--json", "--socket"])
        .arg(&d.console)
        .arg("df")
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("df --json");
    assert!(v.is_array() || v.is_object(), "{v}");
    // Failures exit non-zero with a message on standard error.
    for bad in [
        &["bogus"][..],
        &["snap", "-d", "nosuch"],
        &["snap", "-d", "adm"],
    ] {
        let (ok, _, err) = d.console(bad);
        assert!(!ok && !err.is_empty(), "console {bad:?} succeeded");
    }
    let (ok, _, err) = console_at(&dir.path().join("nosuch.cmd"), &["sync"]);
    assert!(!ok && err.contains("is gefsd running"), "{err}");
    // The interactive prompt: commands on standard input, one answer each.
    let mut c = Command::new(bin_path("gefsd"))
        .args(["console", "--socket"])
        .arg(&d.console)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn console");
    c.stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"sync\nsnap -l\ndf\n")
        .expect("write");
    drop(c.stdin.take());
    let out = c.wait_with_output().expect("console");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gefs# ") && text.contains("synced") && text.contains("main [mutable]"),
        "{text}"
    );
    // halt: commits, then the server exits 0.
    let out = d.console_ok(&["halt"]);
    assert!(out.contains("halting"), "{out}");
    let st = d.wait(Duration::from_secs(60));
    assert!(st.success(), "{st}: {}", d.log());
    daemon::check_clean(&img);
}
