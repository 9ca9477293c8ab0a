//! Round trip through the real binaries: a real directory tree of
//! thousands of files (the Rust toolchain's `std` documentation, or the
//! cargo registry's sources when the docs are not installed) →
//! `gefs-mkfs --from` → `gefs-check` clean → `gefs-dump export` →
//! `diff -r` identical. Also `ls`, `stat` and `cat` of what was copied, and
//! skipped symlinks.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use gefs_tests::cli::{bin, ok};

fn files_under(p: &Path) -> usize {
    walk(p).0
}

/// (regular files, bytes) under `p`.
fn walk(p: &Path) -> (usize, u64) {
    let mut n = (0, 0);
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                let (a, b) = walk(&e.path());
                n = (n.0 + a, n.1 + b);
            } else if md.is_file() {
                n = (n.0 + 1, n.1 + md.len());
            }
        }
    }
    n
}

fn source_tree() -> PathBuf {
    let sysroot = Std::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let docs = sysroot.join("share/doc/rust/html/std");
    if files_under(&docs) >= 1000 {
        return docs;
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    let reg = home.join("registry/src");
    assert!(files_under(&reg) >= 1000, "no tree of ≥ 1000 files to copy");
    reg
}

#[test]
fn real_tree_round_trips() {
    let src = source_tree();
    let (files, bytes) = walk(&src);
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("rt.img");
    // Room for every file's whole blocks, twice over.
    let mib = ((files as u64 * 16384 + bytes) * 2)
        .max(256 << 20)
        .div_ceil(1 << 20);
    let out = ok(bin("gefs-mkfs")
        .args(["-s", &format!("{mib}M"), "-u", "alice", "--from"])
        .arg(&src)
        .arg(&img));
    assert!(out.contains(&format!("copied {files} files")), "{out}");
    println!("roundtrip: {}", out.lines().last().unwrap_or(""));
    let chk = bin("gefs-check").arg(&img).output().expect("runs");
    assert!(
        chk.status.success(),
        "{}",
        String::from_utf8_lossy(&chk.stdout)
    );
    let back = dir.path().join("back");
    ok(bin("gefs-dump")
        .arg(&img)
        .args(["export", "main"])
        .arg(&back));
    let diff = Std::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&back)
        .output()
        .expect("diff");
    assert!(
        diff.status.success(),
        "diff -r: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

#[test]
fn views_and_skipped_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).expect("mkdir");
    std::fs::write(src.join("a/b/hello"), b"hello, world\n").expect("write");
    std::fs::write(src.join("empty"), b"").expect("write");
    std::fs::write(src.join("big"), vec![42u8; 100_000]).expect("write");
    std::os::unix::fs::symlink("a/b/hello", src.join("link")).expect("symlink");
    let img = dir.path().join("v.img");
    let out = bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice", "--owner", "alice", "--from"])
        .arg(&src)
        .arg(&img)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("link: symbolic link skipped"), "{err}");
    assert_eq!(
        ok(bin("gefs-dump")
            .arg(&img)
            .args(["cat", "main", "a/b/hello"])),
        "hello, world\n"
    );
    let st: serde_json::Value = serde_json::from_str(&ok(bin("gefs-dump")
        .arg("--json")
        .arg(&img)
        .args(["stat", "main", "/big"])))
    .expect("json");
    assert_eq!(st["length"], 100_000);
    assert_eq!(st["uid"], "alice");
    let ls: serde_json::Value = serde_json::from_str(&ok(bin("gefs-dump")
        .arg("--json")
        .arg(&img)
        .args(["ls", "main", "/"])))
    .expect("json");
    let names: Vec<&str> = ls
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "big", "empty"]);
    let missing = bin("gefs-dump")
        .arg(&img)
        .args(["cat", "main", "nope"])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        bin("gefs-mkfs")
            .args(["-s", "64M", "--owner", "x"])
            .arg(dir.path().join("w.img"))
            .output()
            .expect("runs")
            .status
            .code()
            == Some(2)
    );
}
