//! The Linux kernel's own 9P client (v9fs) against the real gefsd, in a throwaway QEMU guest
//! with no IP networking: each mount reaches gefsd's Unix socket through a virtio-serial
//! port (`tests/vm/README.md` has the whole picture).
//!
//! One guest boot per dialect, each on a fresh image: `9P2000` always; `9P2000.L` (with
//! `cache=loose` and `cache=mmap` mounts) when gefsd answers a Tversion for it, and
//! otherwise a line saying the stage was skipped because the server does not speak it.
//! The guest runs `tests/vm/guest.sh`: file operations, fsx, a source tree copied in and
//! compared with `diff -r`, git, and for 9P2000.L symlinks, statfs, owners, nanosecond
//! times, byte-range locks and SQLite across two mounts. After each boot gefsd stops and
//! `gefs-check` must find the image clean. What the guest cannot check (a Linux user's
//! supplementary groups never reach gefsd; Linux 6.1's v9fs cuts the nanoseconds of the times
//! a program sets) is in `tests/vm/README.md`, "What the guest cannot show".
//!
//! This target has `test = false` (tests/Cargo.toml): it runs only when named, as
//! `tests/run` does: `cargo test --release -p gefs-tests --test linux_v9fs -- --nocapture`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, Daemon, Opts};
use gefs_tests::vm::{repo, vmdir, write_users, Guest, Run, USERS};
use gefsd::client::Client;
use gefsd::proto::dmode::DMDIR;
use gefsd::proto::omode::OREAD;
use gefsd::proto::{Rmsg, Stat, Tmsg};

/// fsx operations per dialect (9P2000.L splits them between a loose and an mmap mount).
const FSX_OPS: u32 = 5000;
/// One boot's limit: a hung guest fails the test. Generous, because a busy machine slows
/// the emulated guest several times over.
const BOOT_LIMIT: Duration = Duration::from_secs(900);

/// The version gefsd answers to a Tversion for `version` on its Unix socket.
fn answers(sock: &Path, version: &str) -> String {
    let mut c = Client::unix(sock).expect("connect to gefsd");
    match c.rpc(Tmsg::Version {
        msize: 8192,
        version: version.into(),
    }) {
        Ok(Rmsg::Version { version, .. }) => version,
        other => panic!("Tversion {version}: {other:?}"),
    }
}

/// Make `/t` as `owner`, owner and group, through 9P2000. The 9P2000.L checks run in it; the
/// top directory of a fresh image belongs to adm (id -1, which travels as 4294967294: Linux
/// keeps 4294967295 for "no id" and would deny root its overriding powers on it), and the
/// guest checks once, on its own, that root creates there.
fn make_t(d: &Daemon, owner: &str) {
    let mut c = Client::unix(&d.sock).expect("connect to gefsd");
    c.version(8192).expect("Tversion");
    c.attach(0, owner, "").expect("attach main");
    c.walk(0, 1, &[]).expect("clone the root fid");
    c.create(1, "t", DMDIR | 0o777, OREAD).expect("create /t");
    c.clunk(1).expect("clunk");
    c.walk(0, 2, &["t"]).expect("walk t");
    let mut st = Stat::dont_touch();
    st.gid = owner.into();
    c.wstat(2, &st).expect("chgrp /t");
    c.clunk(2).expect("clunk");
}

/// Boot the guest on a fresh image for `dialect`; check the transcript and the image.
fn stage(guest: &Guest, dialect: &str) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    let img = tmp.path().join("gefs.img");
    daemon::format(&img, "2G", "alice");
    let d = Daemon::start(tmp.path(), &img, &Opts::default());
    write_users(&d, "alice", USERS);
    make_t(&d, "alice");
    let run = guest.boot(
        tmp.path(),
        &d.sock,
        &format!("gefs.dialect={dialect} gefs.fsxops={FSX_OPS}"),
        dialect,
        BOOT_LIMIT,
    );
    let log = d.log();
    d.stop();
    let fails: Vec<&str> = run.with_prefix("FAIL ").collect();
    assert!(
        !run.timed_out && run.exit() == Some(0) && fails.is_empty(),
        "{dialect}: the guest {} (exit {:?}); failures:\n  {}\ntranscript:\n{}\ngefsd:\n{log}",
        if run.timed_out {
            "timed out"
        } else {
            "finished"
        },
        run.exit(),
        fails.join("\n  "),
        run.transcript()
    );
    let (code, text) = daemon::check(&img);
    assert_eq!(
        code,
        Some(0),
        "{dialect}: gefs-check after the guest: {text}"
    );
    run
}

#[test]
fn linux_v9fs() {
    let t0 = Instant::now();
    let guest = Guest::prepare(&repo(), &vmdir(), &repo().join("gefs-core/src"));
    let mut dialects = vec!["9p2000"];
    {
        let tmp = tempfile::tempdir().expect("tempdir");
        let img = tmp.path().join("gefs.img");
        daemon::format(&img, "64M", "root");
        let d = Daemon::start(tmp.path(), &img, &Opts::default());
        let v = answers(&d.sock, "9P2000.L");
        d.stop();
        if v == "9P2000.L" {
            dialects.push("9p2000.L");
        } else {
            eprintln!("linux_v9fs: 9P2000.L skipped: gefsd answers Tversion 9P2000.L with {v:?}");
        }
    }
    if let Ok(only) = std::env::var("GEFS_VM_DIALECT") {
        dialects.retain(|d| *d == only);
    }
    let mut summary = Vec::new();
    for dialect in dialects {
        let run = stage(&guest, dialect);
        for v in run.with_prefix("verified: ") {
            summary.push(format!("{v} (boot to power-off {:.1} s)", run.secs));
        }
        summary.push(format!("{dialect}: gefs-check clean"));
    }
    for s in &summary {
        eprintln!("linux_v9fs: {s}");
    }
    eprintln!("linux_v9fs: stage time {:.1} s", t0.elapsed().as_secs_f64());
}
