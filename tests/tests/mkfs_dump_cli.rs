//! gefs-mkfs and gefs-dump through their real binaries.

use assert_cmd::Command;
use gefs_tests::cli::{bin, ok as stdout};

fn mkfs() -> Command {
    bin("gefs-mkfs")
}

fn dump() -> Command {
    bin("gefs-dump")
}

#[test]
fn mkfs_creates_refuses_and_forces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    let out = stdout(mkfs().args(["-s", "64M", "-u", "alice"]).arg(&img));
    assert!(
        out.contains("new gefs image of 64 MiB") && out.contains("alice"),
        "{out}"
    );
    assert_eq!(std::fs::metadata(&img).expect("exists").len(), 64 << 20);
    // A second format is refused without -f, and the image survives.
    let o = mkfs().args(["-u", "bob"]).arg(&img).output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use -f"));
    let snaps: serde_json::Value =
        serde_json::from_str(&stdout(dump().arg("--json").arg(&img).arg("snaps"))).expect("json");
    assert_eq!(snaps.as_array().map(Vec::len), Some(3));
    // -f reformats, and -s resizes an existing file.
    let out = stdout(mkfs().args(["-f", "-s", "40M", "-u", "bob"]).arg(&img));
    assert!(out.contains("bob"), "{out}");
    assert_eq!(std::fs::metadata(&img).expect("exists").len(), 40 << 20);
}

#[test]
fn mkfs_rejects_bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("b.img");
    assert_eq!(
        mkfs()
            .args(["-s", "12X"])
            .arg(&img)
            .output()
            .expect("runs")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        mkfs()
            .args(["-s", "1M", "-u", "x"])
            .arg(&img)
            .output()
            .expect("runs")
            .status
            .code(),
        Some(2)
    );
    assert!(!img.exists(), "a failed format leaves no file behind");
    let o = mkfs()
        .args(["-s", "64M", "-u", "a:b"])
        .arg(&img)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("user name"));
    assert_eq!(mkfs().output().expect("runs").status.code(), Some(2));
}

#[test]
fn dump_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("c.img");
    stdout(mkfs().args(["-s", "64M", "-u", "alice"]).arg(&img));
    let sup: serde_json::Value =
        serde_json::from_str(&stdout(dump().arg("--json").arg(&img).arg("super"))).expect("json");
    assert_eq!(sup["commit_gen"], 1);
    assert_eq!(sup["narena"], 8);
    assert_eq!(sup["used"], 0);
    let tree: serde_json::Value = serde_json::from_str(&stdout(
        dump().arg("--json").arg(&img).args(["tree", "adm"]),
    ))
    .expect("json");
    let root = &tree[0][0];
    let addr = root["ptr"]["addr"].as_u64().expect("addr");
    let blk = stdout(dump().arg(&img).args(["blk", &format!("{addr:#x}")]));
    assert!(blk.contains("kind: leaf") && blk.contains("users"), "{blk}");
    assert!(stdout(dump().arg(&img).arg("arenas")).contains("free_ranges"));
    // Not an image: exit 2 with a message, no panic.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0x5au8; 1 << 20]).expect("write");
    let o = dump().arg(&junk).arg("super").output().expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a gefs-rs image"));
    // A damaged block still decodes as far as it can.
    let o = dump()
        .arg(&junk)
        .args(["blk", "0x4000"])
        .output()
        .expect("runs");
    assert!(o.status.success());
}
