//! A command line people can guess (issue 9), through the real binaries: every tool's
//! `--help` has examples and its exit codes; one size grammar (a unit is required, decimals
//! allowed) everywhere; options and `--json` anywhere on the line; the exit codes the README
//! documents; no panic when the reader of standard output goes away; messages that say what
//! was wrong and what to do. (The long options of gefsd are what tests/src/daemon.rs starts
//! every test server with.)

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use gefs_tests::cli::{bin, code, ok};
use gefs_tests::daemon::{Daemon, Opts, ADMIN};

const TOOLS: [&str; 5] = ["gefsd", "gefs-mkfs", "gefs-snap", "gefs-check", "gefs-dump"];

fn mkfs(img: &Path) {
    ok(bin("gefs-mkfs")
        .args(["--size", "48.5M", "--user", ADMIN])
        .arg(img));
}

#[test]
fn every_help_has_examples_and_exit_codes() {
    for t in TOOLS {
        let out = ok(bin(t).arg("--help"));
        for want in [
            "Examples:",
            "Exit status:",
            "  0  ",
            "  1  ",
            "  2  ",
            "--log-format",
        ] {
            assert!(out.contains(want), "{t} --help lacks {want:?}:\n{out}");
        }
    }
    let out = ok(bin("gefsd").arg("--help"));
    for long in [
        "--image",
        "--listen",
        "--cache",
        "--no-auth",
        "--read-only",
        "--permissive",
        "--stdio",
        "--name",
    ] {
        assert!(out.contains(long), "gefsd --help lacks {long}");
    }
}

#[test]
fn one_size_grammar_a_unit_is_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    for (tool, args) in [
        ("gefs-mkfs", &["-s", "64"][..]),
        ("gefs-mkfs", &["--size", "64"]),
        ("gefsd", &["--cache", "64"]),
        ("gefsd", &["-m", "64"]),
        ("gefsd", &["--conn-mem", "64"]),
    ] {
        let image = if tool == "gefsd" { "--image" } else { "--" };
        let (c, e) = code(bin(tool).args(args).arg(image).arg(&img));
        assert_eq!(c, Some(2), "{tool} {args:?}: {e}");
        assert!(
            e.contains("no unit") && e.contains("64M"),
            "{tool} {args:?}: {e}"
        );
    }
    assert!(!img.exists(), "nothing made from a refused size");
    // Decimals, and any case: 48.5M is 48.5 MiB.
    mkfs(&img);
    assert_eq!(std::fs::metadata(&img).expect("image").len(), 97 << 19);
    // Too small is a bad argument (2), said with the minimum.
    let (c, e) = code(bin("gefs-mkfs").args(["-f", "-s", "16m"]).arg(&img));
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("at least 32M"), "{e}");
}

#[test]
fn options_and_json_anywhere_on_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let i = img.to_str().expect("utf-8 path");
    for (tool, args) in [
        ("gefs-snap", &[i, "-l", "--json"][..]),
        ("gefs-snap", &["--json", i, "-l"]),
        ("gefs-snap", &[i, "--list", "--json"]),
        ("gefs-dump", &[i, "snaps", "--json"]),
        ("gefs-dump", &["--json", i, "snaps"]),
        ("gefs-check", &[i, "--json"]),
    ] {
        let out = ok(bin(tool).args(args));
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("{tool} {args:?}: {e}: {out}"));
    }
    ok(bin("gefs-snap").arg(&img).args(["main", "s1"]));
    ok(bin("gefs-snap").arg(&img).args(["s1", "--delete"]));
    // The console client takes --json after the command too.
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let out = Command::new(gefs_tests::cli::bin_path("gefsd"))
        .args(["console", "--socket"])
        .arg(&d.console)
        .args(["df", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("df --json");
    assert!(v["size"].as_u64() > Some(0), "{v}");
    d.stop();
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    let none = dir.path().join("none.img");
    mkfs(&img);
    let cases: &[(&str, Vec<&std::ffi::OsStr>, i32)] = &[
        // 2: bad arguments, or the image could not be opened.
        ("gefs-mkfs", vec!["--bogus".as_ref(), img.as_os_str()], 2),
        ("gefs-check", vec![none.as_os_str()], 2),
        (
            "gefs-check",
            vec!["--threads".as_ref(), "0".as_ref(), img.as_os_str()],
            2,
        ),
        ("gefs-dump", vec![none.as_os_str(), "super".as_ref()], 2),
        ("gefs-dump", vec![img.as_os_str(), "nosuchview".as_ref()], 2),
        ("gefs-snap", vec![none.as_os_str(), "-l".as_ref()], 2),
        ("gefs-snap", vec![img.as_os_str(), "-x".as_ref()], 2),
        ("gefs-snap", vec![img.as_os_str()], 2),
        (
            "gefsd",
            vec!["--listen".as_ref(), "tcp!10.1.2.3!564".as_ref()],
            2,
        ),
        ("gefsd", vec!["--max-conns".as_ref(), "0".as_ref()], 2),
        // 1: the command failed.
        ("gefs-mkfs", vec![img.as_os_str()], 1),
        (
            "gefs-dump",
            vec![
                img.as_os_str(),
                "ls".as_ref(),
                "main".as_ref(),
                "/nosuch".as_ref(),
            ],
            1,
        ),
        (
            "gefs-snap",
            vec![img.as_os_str(), "-d".as_ref(), "nosuch".as_ref()],
            1,
        ),
        (
            "gefsd",
            vec!["--read-only".as_ref(), "--image".as_ref(), none.as_os_str()],
            1,
        ),
        // 0.
        ("gefs-check", vec![img.as_os_str()], 0),
        ("gefs-dump", vec![img.as_os_str(), "df".as_ref()], 0),
    ];
    for (tool, args, want) in cases {
        let (c, e) = code(bin(tool).args(args).current_dir(dir.path()));
        assert_eq!(c, Some(*want), "{tool} {args:?}: {e}");
        assert!(!e.contains("panicked"), "{tool} {args:?}: {e}");
    }
    // What was wrong and what to do.
    let (_, e) = code(bin("gefs-dump").arg(&img).args(["ls", "nosuch"]));
    assert!(
        e.contains("label nosuch not found; labels: adm, empty, main"),
        "{e}"
    );
    let (_, e) = code(bin("gefs-mkfs").arg(&img));
    assert!(
        e.contains("already holds a gefs image") && e.contains("-f"),
        "{e}"
    );
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("big"), vec![7u8; 4 << 20]).expect("write");
    let img = dir.path().join("a.img");
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", ADMIN, "--from"])
        .arg(&src)
        .arg(&img));
    for args in [
        &["cat", "main", "/big"][..],
        &["tree", "main"],
        &["--json", "arenas"],
    ] {
        let mut child = Command::new(gefs_tests::cli::bin_path("gefs-dump"))
            .arg(&img)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out = child.stdout.take().expect("stdout");
        let mut first = [0u8; 1];
        out.read_exact(&mut first).expect("some output");
        drop(out); // `| head -c 1`
        let o = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "gefs-dump {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn an_image_in_use_names_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    mkfs(&img);
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let (c, e) = code(bin("gefs-snap").arg(&img).args(["main", "s1"]));
    assert_eq!(c, Some(2), "{e}");
    assert!(
        e.contains(&format!("in use by gefsd (pid {})", d.pid())) && e.contains("gefsd console"),
        "{e}"
    );
    d.stop();
}
