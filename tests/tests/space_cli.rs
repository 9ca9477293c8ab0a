//! Space you can see (issue 9), through the real binaries: `gefs-mkfs --retain` sets and
//! prints the schedule; `df` (console and `gefs-dump IMAGE df`) shows size, used, free,
//! reserve and what only snapshots hold; `snap -l` (console and `gefs-snap -l`, text and
//! JSON) shows each snapshot's unique space; a full file system is explained in gefsd's log
//! (how much snapshots hold, how to free it), and deleting the snapshot brings the space back.

use std::path::Path;

use gefs_tests::cli::{bin, code, ok};
use gefs_tests::daemon::{check_clean, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::omode;

const MIB: u64 = 1 << 20;

fn mkfs(img: &Path, retain: &str) -> String {
    ok(bin("gefs-mkfs")
        .args(["-s", "64M", "-u", ADMIN, "--retain", retain])
        .arg(img))
}

/// A figure of `df --json`.
fn df(d: &Daemon, field: &str) -> u64 {
    let out = d.console_ok(&["--json", "df"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("df json");
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("df {field}: {v}"))
}

/// Write `bytes` to a new file `name` in main's root; the bytes written before any error.
fn write_file(c: &mut Client<std::os::unix::net::UnixStream>, name: &str, bytes: u64) -> u64 {
    c.walk(0, 1, &[]).expect("walk");
    c.create(1, name, 0o644, omode::OWRITE).expect("create");
    let chunk = vec![0x5a; 64 << 10];
    let mut off = 0;
    while off < bytes {
        match c.write(1, off, &chunk) {
            Ok(n) => off += u64::from(n),
            Err(e) => {
                assert!(e.to_string().contains("file system is full"), "{e}");
                break;
            }
        }
    }
    c.clunk(1).expect("clunk");
    off
}

#[test]
fn mkfs_sets_and_prints_the_retention_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    let out = ok(bin("gefs-mkfs").args(["-s", "64M", "-u", ADMIN]).arg(&img));
    assert!(
        out.contains("retention: \"60@1m 24@1h @1d\", the default")
            && out.contains("every minute (the last 60 kept)"),
        "{out}"
    );
    let out = ok(bin("gefs-mkfs")
        .args(["-f", "-s", "64M", "-u", ADMIN, "--retain", "2@1h"])
        .arg(&img));
    assert!(
        out.contains("retention: \"2@1h\"") && out.contains("every hour (the last 2 kept)"),
        "{out}"
    );
    // The schedule is in force: a retention pass takes the hourly snapshots.
    let j = ok(bin("gefs-snap")
        .args(["--json", "--now", "1700000000"])
        .arg(&img)
        .arg("retain"));
    assert!(
        j.contains("main@hour.") && !j.contains("main@minute."),
        "{j}"
    );
    let out = mkfs(&img.with_extension("none"), "");
    assert!(out.contains("no automatic snapshots"), "{out}");
    let (c, e) = code(
        bin("gefs-mkfs")
            .args(["-s", "64M", "-u", ADMIN, "--retain", "bogus"])
            .arg(dir.path().join("bad.img")),
    );
    assert_eq!(c, Some(2), "{e}");
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn snapshots_space_is_shown_explained_and_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("s.img");
    mkfs(&img, "");
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let text = d.console_ok(&["df"]);
    for w in [
        "total: used",
        "reserve: ",
        "snapshots: 0 B held only by snapshots",
    ] {
        assert!(text.contains(w), "df lacks {w:?}:\n{text}");
    }
    let size = df(&d, "size");
    assert!(size > 60 * MIB && size <= 64 * MIB, "size {size}");
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    c.attach(0, ADMIN, "").expect("attach");
    assert_eq!(write_file(&mut c, "big", 24 * MIB), 24 * MIB);
    d.console_ok(&["snap", "main", "s1"]);
    c.walk(0, 2, &["big"]).expect("walk");
    c.remove(2).expect("remove");
    d.console_ok(&["sync"]);
    // Removing the file freed nothing: s1 holds it, and says so.
    let held = df(&d, "snapshots");
    assert!(
        (24 * MIB..26 * MIB).contains(&held),
        "snapshots hold {held}"
    );
    let l = d.console_ok(&["snap", "-l"]);
    assert!(l.contains("s1  unique 24"), "{l}");
    let j: serde_json::Value =
        serde_json::from_str(&d.console_ok(&["--json", "snap", "-l"])).expect("json");
    let s1 = j
        .as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == "s1"))
        .expect("s1 listed");
    assert_eq!(s1["unique_bytes"].as_u64(), Some(held), "{j}");
    // Fill the rest: the write fails cleanly, and gefsd's log explains.
    let wrote = write_file(&mut c, "fill", 64 * MIB);
    assert!(wrote < 40 * MIB, "wrote {wrote} into a 64 MiB image");
    // The log reaches the test through a pipe and a reader thread: give it a moment.
    let t0 = std::time::Instant::now();
    let mut log = d.log();
    while !log.contains("snap -d LABEL") && t0.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = d.log();
    }
    assert!(
        log.contains("file system full:")
            && log.contains("snapshots hold 24")
            && log.contains("s1 24")
            && log.contains("snap -d LABEL"),
        "{log}"
    );
    let before = df(&d, "available");
    d.console_ok(&["snap", "-d", "s1"]);
    d.console_ok(&["sync"]);
    assert_eq!(df(&d, "snapshots"), 0);
    let after = df(&d, "available");
    assert!(after >= before + 24 * MIB, "available {before} -> {after}");
    assert!(write_file(&mut c, "more", 8 * MIB) == 8 * MIB);
    drop(c);
    d.stop();
    check_clean(&img);
    // The offline views agree.
    let text = ok(bin("gefs-dump").arg(&img).arg("df"));
    assert!(
        text.contains("total: used") && text.contains("snapshots: 0 B"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(bin("gefs-dump").arg("--json").arg(&img).arg("df")))
            .expect("json");
    assert_eq!(v["size"].as_u64(), Some(size), "{v}");
    assert!(v["arenas"].as_array().is_some_and(|a| a.len() == 8), "{v}");
    ok(bin("gefs-snap").arg(&img).args(["main", "s2"]));
    let l = ok(bin("gefs-snap").arg(&img).arg("-l"));
    assert!(l.contains("s2  unique 0 B"), "{l}");
    let j = ok(bin("gefs-snap").arg("--json").arg(&img).arg("-l"));
    assert!(j.contains("\"unique_bytes\": 0"), "{j}");
}
