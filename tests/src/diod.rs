//! Debian's `diod` package: its 9P2000.L clients (`diodls`, `diodcat`, `diodload`) and the
//! `diod` server itself, for the end-to-end tests and the comparison.
//!
//! [`ensure`] installs the package with `apt-get` when its programs are missing (as root, or
//! through `sudo -n`), once per process, and panics with what to do when it cannot, so a
//! fresh CI machine needs nothing prepared. [`run`] runs one of the programs with a time limit.
//!
//! The clients attach with `n_uname` = their effective uid, so gefsd's users table must give
//! that uid to a user ([`users_table`]).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

/// Where Debian puts the programs.
const SBIN: &str = "/usr/sbin";

/// The path of program `name` of the package.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(SBIN).join(name)
}

fn present() -> bool {
    ["diod", "diodls", "diodcat", "diodload"]
        .iter()
        .all(|p| bin(p).is_file())
}

/// Install `diod` if its programs are missing.
pub fn ensure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if present() {
            return;
        }
        let root = rustix::process::geteuid().is_root();
        let apt = |args: &[&str]| {
            let mut c = if root {
                Command::new("apt-get")
            } else {
                let mut c = Command::new("sudo");
                c.args(["-n", "apt-get"]);
                c
            };
            c.args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let t0 = std::time::Instant::now();
        if !apt(&["install", "-y", "-q", "diod"]) {
            apt(&["update", "-q"]);
            apt(&["install", "-y", "-q", "diod"]);
        }
        assert!(
            present(),
            "Debian's diod is needed and could not be installed: run `apt-get install -y diod`"
        );
        eprintln!("installed diod in {:.1} s", t0.elapsed().as_secs_f64());
    });
}

/// Run `prog` of the package with `args`, killed after `limit`; its output.
pub fn run(prog: &str, args: &[&str], limit: Duration) -> Output {
    ensure();
    let child = Command::new(bin(prog))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    crate::py::wait(child, limit)
}

/// Run `prog` and require success; its standard output.
pub fn run_ok(prog: &str, args: &[&str], limit: Duration) -> String {
    let out = run(prog, args, limit);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

/// `diodload`'s summary, "N ops/s, R rMB/s, W wMB/s" (it writes it to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Operations per second (read-write pairs, or getattrs).
    pub ops: u64,
    /// MiB read per second.
    pub read_mb: u64,
    /// MiB written per second.
    pub write_mb: u64,
}

/// Run `diodload` against `server` (`HOST:PORT`); `getattr`: getattrs instead of I/O.
pub fn load(server: &str, msize: u32, threads: u32, secs: u32, getattr: bool) -> Load {
    let (m, n, r) = (msize.to_string(), threads.to_string(), secs.to_string());
    let mut args = vec!["-s", server, "-m", &m, "-n", &n, "-r", &r];
    if getattr {
        args.push("-g");
    }
    let out = run("diodload", &args, Duration::from_secs(u64::from(secs) + 60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "diodload {args:?}: {text}");
    parse_load(&text).unwrap_or_else(|| panic!("diodload {args:?}: no summary in {text:?}"))
}

/// The numbers of a `diodload` summary line.
pub fn parse_load(text: &str) -> Option<Load> {
    let line = text.lines().rev().find(|l| l.contains("ops/s"))?;
    let num = |unit: &str| -> Option<u64> {
        let i = line.find(unit)?;
        line[..i]
            .split_whitespace()
            .last()?
            .trim_end_matches(',')
            .parse()
            .ok()
    };
    Some(Load {
        ops: num(" ops/s")?,
        read_mb: num(" rMB/s")?,
        write_mb: num(" wMB/s")?,
    })
}

/// A users table for gefsd that gives this process's uid to `me` (an administrator) and keeps
/// `none` off it, so that diod's clients, which attach by uid, are `me`.
pub fn users_table(me: &str) -> String {
    let uid = rustix::process::geteuid().as_raw();
    let none = if uid == 0 { 99_999 } else { 0 };
    format!("-1:adm::{me}\n{none}:none::\n{uid}:{me}:{me}:\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_summary() {
        let l = parse_load("diodload: 1234 ops/s, 56 rMB/s, 78 wMB/s\n");
        assert_eq!(
            l,
            Some(Load {
                ops: 1234,
                read_mb: 56,
                write_mb: 78
            })
        );
        assert_eq!(parse_load("nothing"), None);
    }
}
