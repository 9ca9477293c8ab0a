//! gefs-check through its real binary: exit codes, the text and JSON
//! reports, and locking.

use std::path::Path;
use std::process::Output;

use gefs_core::device::{FileDev, OpenMode};
use gefs_tests::cli::{bin, open_image};
use gefs_tests::damage::{flip, root_of};

fn mkfs(img: &Path) {
    let o = bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice"])
        .arg(img)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn check(args: &[&str], img: &Path) -> Output {
    bin("gefs-check")
        .args(args)
        .arg(img)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(img: &Path) -> serde_json::Value {
    let o = check(&["--json"], img);
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

#[test]
fn fresh_image_is_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let o = check(&[], &img);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("0 problems, 0 warnings"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let q = check(&["-q", "-j", "1"], &img);
    assert_eq!(q.status.code(), Some(0));
    assert!(q.stdout.is_empty(), "{}", text(&q.stdout));
}

#[test]
fn json_has_the_documented_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let v = json(&img);
    assert_eq!(v["status"], "clean");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["image"], img.display().to_string());
    assert!(v["problems"].as_array().is_some_and(Vec::is_empty));
    assert!(v["warnings"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(v["superblock"]["used"], "A");
    assert_eq!(v["superblock"]["copies"][1]["state"], "ok");
    assert!(v["superblock"]["commit_gen"].is_u64());
    let trees = v["trees"].as_array().expect("trees");
    assert_eq!(trees.len(), 4);
    assert_eq!(trees[0]["name"], "snapshot tree");
    for t in trees {
        for f in [
            "name", "snap", "labels", "root", "height", "pivots", "leaves",
        ] {
            assert!(!t[f].is_null(), "tree field {f}");
        }
    }
    for f in [
        "blocks_checked",
        "bytes_checked",
        "bytes_read",
        "leaked_blocks",
        "free_blocks",
        "threads",
        "seconds",
        "mb_per_s",
    ] {
        assert!(v["stats"][f].is_number(), "stats field {f}");
    }
    assert!(v["stats"]["blocks_checked"].as_u64() > Some(5));
}

#[test]
fn corrupt_tree_block_exits_1_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let root = root_of(&json(&img), "main");
    flip(&img, root + 40);
    let o = check(&[], &img);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let name = format!("problem: block {root:#x} (");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&name) && l.contains("hash mismatch")),
        "{out}"
    );
    assert!(out.contains(r#"tree "main""#), "{out}");
    let v = json(&img);
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_u64()),
        (Some("problems"), Some(1))
    );
    let p = v["problems"].as_array().expect("problems");
    assert!(
        p.iter().any(|p| p["addr"] == root && p["kind"] == "hash"),
        "{v}"
    );
    // -q prints the problem lines and nothing else.
    let q = text(&check(&["-q"], &img).stdout);
    assert!(
        !q.is_empty() && q.lines().all(|l| l.starts_with("problem: ")),
        "{q}"
    );
}

/// The data is safe (copy A is intact), but the disk is corrupting blocks:
/// monitoring keys on the exit code, so any damage is exit 1 (issue 8).
#[test]
fn damaged_copy_b_is_a_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let len = std::fs::metadata(&img).expect("exists").len();
    for at in [20, 16000] {
        let d = dir.path().join(format!("{at}.img"));
        std::fs::copy(&img, &d).expect("copy");
        flip(&d, len - 16384 + at);
        let o = check(&[], &d);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
        let out = text(&o.stdout);
        assert!(
            out.starts_with("problem: block 0x3ffc000 (superblock"),
            "{out}"
        );
        assert!(out.contains("1 problems, 0 warnings"), "{out}");
    }
}

#[test]
fn random_bytes_missing_files_and_bad_arguments_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("r.img");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..(4 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&img, bytes).expect("write");
    let o = check(&[], &img);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a gefs-rs image"),
        "{}",
        text(&o.stderr)
    );
    let v = json(&img);
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_u64()),
        (Some("error"), Some(2))
    );
    assert!(v["error"].is_string());
    let o = check(&[], &dir.path().join("missing.img"));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("missing.img"));
    assert_eq!(check(&["-j", "0"], &img).status.code(), Some(2));
    assert_eq!(check(&["--bogus"], &img).status.code(), Some(2));
}

#[test]
fn a_writer_locks_the_checker_out_readers_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    let reader = FileDev::open(&img, OpenMode::ReadOnly).expect("shared lock");
    assert_eq!(check(&[], &img).status.code(), Some(0));
    drop(reader);
    // A child another test thread forked while `reader` was open may hold its shared lock a
    // moment longer (see `open_image`).
    let writer = open_image(&img, OpenMode::ReadWrite);
    let o = check(&[], &img);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("in use by another process"),
        "{}",
        text(&o.stderr)
    );
    drop(writer);
    // The same holds for `writer`'s lock: a child forked while it was open may keep it a
    // moment longer.
    let t0 = std::time::Instant::now();
    loop {
        let o = check(&[], &img);
        let busy = o.status.code() == Some(2) && text(&o.stderr).contains("in use by another");
        if !busy || t0.elapsed() > std::time::Duration::from_secs(5) {
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Problems of kind `kind` in the JSON report, with their owners.
fn findings(v: &serde_json::Value, kind: &str) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == kind)
        .map(|p| p["owner"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_imported_tree_of_files_is_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a/b/c")).expect("mkdir");
    std::fs::write(src.join("top"), b"hello\n").expect("write");
    std::fs::write(src.join("a/b/big"), vec![7u8; 300_000]).expect("write");
    std::fs::write(src.join("a/b/c/empty"), b"").expect("write");
    let img = dir.path().join("a.img");
    let o = bin("gefs-mkfs")
        .args(["-s", "64M", "-u", "alice", "--from"])
        .arg(&src)
        .arg(&img)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = check(&["--json"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let main = v["trees"]
        .as_array()
        .expect("trees")
        .iter()
        .find(|t| {
            t["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == "main"))
        })
        .expect("main");
    assert!(main["data_blocks"].as_u64() >= Some(19), "{main}");
}

#[test]
fn a_data_key_under_a_directory_exits_1_and_names_the_tree() {
    use gefs_core::alloc::Tier;
    use gefs_core::format::key;
    use gefs_core::format::msg::Msg;
    use gefs_core::store::{Config, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("a.img");
    mkfs(&img);
    {
        let dev = FileDev::open(&img, OpenMode::ReadWrite).expect("open");
        let cfg = Config {
            cache_bytes: 4 << 20,
            read_only: false,
        };
        let s = Store::open(std::sync::Arc::new(dev), &cfg).expect("store");
        let t = s.mount("main").expect("main");
        // qid 0 is main's root directory.
        let bp = s
            .write_data(t, 0, true, Tier::Normal, |b| b[0] = 1)
            .expect("data");
        let msgs = vec![Msg::insert(key::dat(0, 0), bp.to_bytes().to_vec())];
        s.upsert(t, msgs, Tier::Normal).expect("upsert");
        s.sync().expect("sync");
    }
    let o = check(&["--json"], &img);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let owners = findings(&v, "data_key");
    assert_eq!(owners.len(), 1, "{v}");
    assert!(owners[0].contains("\"main\""), "{owners:?}");
    let t = check(&["-q"], &img);
    assert!(text(&t.stdout).contains("data key"), "{}", text(&t.stdout));
}
