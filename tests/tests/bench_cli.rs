//! gefs-bench through its real binary: every subcommand with tiny
//! parameters and `--json`, checking the documented fields. Figures are
//! only checked to be present and positive, never compared: these runs are
//! far too short, and the machines too noisy, to say anything about speed.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn bench() -> Command {
    Command::new(gefs_tests::cli::bin_path("gefs-bench"))
}

/// Run gefs-bench with `args` and parse its JSON report.
fn run_json(args: &[&str], dir: &Path) -> Value {
    let out = bench()
        .args(args)
        .args(["--json", "--quiet", "--threads", "2"])
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("gefs-bench runs");
    assert!(
        out.status.success(),
        "gefs-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "--quiet printed progress");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// A latency summary: every field present, ordered, and positive when
/// anything was timed.
fn check_latency(l: &Value, what: &str) {
    let f = |k: &str| num(&l[k], &format!("{what}.{k}"));
    let count = f("count");
    let (min, p50, p90, p99, p999, max) =
        (f("min"), f("p50"), f("p90"), f("p99"), f("p999"), f("max"));
    assert!(f("mean") >= 0.0, "{what}");
    if count > 0.0 {
        assert!(p50 > 0.0 && max > 0.0, "{what}: {l}");
        assert!(
            min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
            "{what}: {l}"
        );
    }
}

/// A run: positive operation count, time and rate; latency summaries.
fn check_run(r: &Value, implementation: &str, what: &str) {
    assert_eq!(r["implementation"], implementation, "{what}");
    assert!(num(&r["ops"], what) > 0.0, "{what}: no operations: {r}");
    assert!(num(&r["seconds"], what) > 0.0, "{what}: {r}");
    assert!(num(&r["ops_per_sec"], what) > 0.0, "{what}: {r}");
    check_latency(&r["latency_ns"], &format!("{what}.latency_ns"));
    assert!(
        num(&r["latency_ns"]["count"], what) > 0.0,
        "{what}: nothing timed"
    );
    let kinds = r["latency_by_kind_ns"]
        .as_object()
        .expect("latency_by_kind_ns is an object");
    for (k, l) in kinds {
        check_latency(l, &format!("{what}.{k}"));
    }
    let counters = r["counters"].as_object().expect("counters is an object");
    for (k, v) in counters {
        assert!(num(v, k) >= 0.0, "{what}.{k} = {v}");
    }
}

/// The common envelope, and the phases in order; returns the phases.
fn check_report(v: &Value, bench: &str, phases: &[&str], baseline: Option<&str>) -> Vec<Value> {
    assert_eq!(v["schema"], 1);
    assert_eq!(v["bench"], bench);
    assert!(v["params"].is_object());
    assert!(v["notes"].is_array());
    let ps = v["phases"].as_array().expect("phases is an array").clone();
    let names: Vec<&str> = ps
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, phases);
    for p in &ps {
        let name = p["name"].as_str().expect("name");
        assert!(!p["description"].as_str().expect("description").is_empty());
        let fields = p.as_object().expect("a phase is an object");
        assert!(
            fields.contains_key("ratio") && fields.contains_key("cpu_ratio"),
            "{name}"
        );
        check_run(&p["ours"], "gefs", name);
        match baseline {
            Some(b) if !p["baseline"].is_null() => {
                check_run(&p["baseline"], b, name);
                assert!(num(&p["ratio"], name) > 0.0, "{name}: ratio");
            }
            _ => {
                assert!(p["baseline"].is_null() && p["ratio"].is_null(), "{name}");
            }
        }
    }
    ps
}

fn check_goal(v: &Value, name: &str, threshold: f64) {
    let goals = v["goals"].as_array().expect("goals is an array");
    let g = goals
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no goal {name}: {goals:?}"));
    assert_eq!(num(&g["threshold"], name), threshold);
    let ratio = num(&g["ratio"], name);
    assert!(ratio > 0.0);
    assert_eq!(g["met"].as_bool(), Some(ratio >= threshold));
    assert!(g["applicable"].is_boolean() && g["description"].is_string());
}

#[test]
fn cache_reports_every_phase_against_the_mutex_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = run_json(
        &[
            "cache",
            "--seconds",
            "0.2",
            "--cache-mb",
            "8",
            "--rounds",
            "1",
            "--sample",
            "2",
        ],
        dir.path(),
    );
    let ps = check_report(&v, "cache", &["hit", "miss", "mixed"], Some("mutex-lru"));
    for p in &ps {
        for r in [&p["ours"], &p["baseline"]] {
            let hits = num(&r["counters"]["hits"], "hits");
            let misses = num(&r["counters"]["misses"], "misses");
            assert_eq!(hits + misses, num(&r["ops"], "ops"));
            match p["name"].as_str() {
                Some("hit") => assert_eq!(misses, 0.0, "the hot set fits: {r}"),
                Some("miss") => assert_eq!(hits, 0.0, "cold addresses are new: {r}"),
                _ => assert!(hits > 0.0 && misses > 0.0, "{r}"),
            }
        }
    }
    assert_eq!(v["params"]["threads"], 2);
    check_goal(&v, "cache-hit-path", 1.0);
    assert_eq!(v["goals"][0]["applicable"], true);
}

#[test]
fn alloc_reports_per_op_costs_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = run_json(
        &[
            "alloc",
            "--seconds",
            "0.2",
            "--device-mb",
            "64",
            "--live",
            "200",
            "--commit-every",
            "50",
        ],
        dir.path(),
    );
    let ps = check_report(
        &v,
        "alloc",
        &["alloc-free", "mem k=50", "file k=50"],
        Some("btreeset"),
    );
    for p in &ps[1..] {
        let o = &p["ours"];
        assert!(num(&o["counters"]["commits"], "commits") > 0.0, "{o}");
        assert!(
            num(&o["counters"]["log_blocks_per_commit"], "log blocks") > 0.0,
            "{o}"
        );
        assert!(
            num(&o["latency_by_kind_ns"]["commit"]["p50"], "commit p50") > 0.0,
            "{o}"
        );
    }
    assert!(ps[0]["ours"]["latency_by_kind_ns"]["alloc"].is_object());
    assert!(ps[0]["ours"]["latency_by_kind_ns"]["free"].is_object());
    // The work directory is removed afterwards.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn tree_reports_inserts_lookups_and_scans_against_redb_and_fjall() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = run_json(
        &[
            "tree",
            "--keys",
            "1500",
            "--commit-every",
            "500",
            "--seconds",
            "0.2",
            "--scan-len",
            "10",
            "--cache-mb",
            "16",
        ],
        dir.path(),
    );
    let ps = check_report(
        &v,
        "tree",
        &["random-insert", "seq-insert", "lookup", "scan"],
        Some("redb"),
    );
    for p in &ps {
        let peers = p["peers"].as_array().expect("peers is an array");
        assert_eq!(peers.len(), 1, "{p}");
        check_run(&peers[0]["run"], "fjall", "fjall");
        assert!(num(&peers[0]["ratio"], "ratio to fjall") > 0.0);
    }
    for p in &ps[..2] {
        for r in [&p["ours"], &p["baseline"], &p["peers"][0]["run"]] {
            assert_eq!(num(&r["ops"], "ops"), 1500.0);
            assert_eq!(num(&r["counters"]["commits"], "commits"), 3.0);
            assert!(num(&r["latency_by_kind_ns"]["commit"]["count"], "commit") == 3.0);
        }
        assert!(num(&p["ours"]["counters"]["bytes_written_per_op"], "bytes/op") > 0.0);
    }
    for p in &ps[2..] {
        assert!(num(&p["ours"]["counters"]["entries_per_sec"], "entries") > 0.0);
    }
    assert_eq!(v["params"]["keys"], 1500);
    check_goal(&v, "tree-random-insert-redb", 5.0);
    check_goal(&v, "tree-random-insert-fjall", 1.0);
    check_goal(&v, "tree-write-amplification", 1.0);
    for g in ["tree-lookup", "tree-scan", "tree-seq-insert"] {
        check_goal(&v, g, 1.0);
    }
    assert_eq!(
        v["goals"][0]["applicable"], false,
        "--commit-every 500 is not the goal's setting"
    );
}

#[test]
fn fs_file_phases_against_the_host_file_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = run_json(
        &[
            "fs",
            "--phases",
            "seq-write,seq-read,overwrite,creates",
            "--file-mb",
            "4",
            "--overwrites",
            "300",
            "--commit-every",
            "100",
            "--creates",
            "50",
            "--cache-mb",
            "16",
        ],
        dir.path(),
    );
    let ps = check_report(
        &v,
        "fs",
        &["seq-write", "seq-read", "overwrite", "creates"],
        Some("host"),
    );
    for p in &ps[..2] {
        for r in [&p["ours"], &p["baseline"]] {
            assert_eq!(num(&r["counters"]["bytes"], "bytes"), (4 << 20) as f64);
        }
    }
    for r in [&ps[2]["ours"], &ps[2]["baseline"]] {
        assert_eq!(num(&r["ops"], "ops"), 300.0);
        assert_eq!(
            num(&r["latency_by_kind_ns"]["commit"]["count"], "commits"),
            3.0
        );
    }
    for r in [&ps[3]["ours"], &ps[3]["baseline"]] {
        assert_eq!(num(&r["ops"], "ops"), 50.0);
    }
    check_goal(&v, "fs-overwrite", 1.5);
    assert_eq!(v["goals"][0]["applicable"], false, "4 MiB is not 1 GiB");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn table_output_and_usage_errors() {
    let out = bench()
        .args([
            "cache",
            "--seconds",
            "0.1",
            "--cache-mb",
            "8",
            "--rounds",
            "1",
            "--phases",
            "hit",
            "-q",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for s in [
        "phase",
        "ops/s",
        "p99.9",
        "ours/base",
        "gefs",
        "mutex-lru",
        "goal cache-hit-path",
    ] {
        assert!(text.contains(s), "{s} missing from:\n{text}");
    }
    for bad in [
        &["cache", "--hit-percent", "101"][..],
        &["tree", "--phases", "nope"],
        &["fs", "--phases", "nope"],
        &["frobnicate"],
        &["alloc", "--seconds", "soon"],
    ] {
        let o = bench().args(bad).output().expect("runs");
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    let o = bench()
        .args(["cache", "--seconds", "0", "-q"])
        .output()
        .expect("runs");
    assert_eq!(
        o.status.code(),
        Some(1),
        "a run that cannot start fails with 1"
    );
}
