//! `gefs-bench fs`: the file-system layer's figures.
//!
//! - `import`: `gefs-mkfs --from`'s copy of a host tree into an image
//!   (files/s), against a plain recursive copy of the same tree into a
//!   directory on the same disk (the baseline);
//! - `snapshot`: on an image holding `--data-mb` of file data, the time to
//!   take a snapshot (tree work only, and with its commit) and to delete one
//!   that holds blocks main has since overwritten (with its commit);
//! - `walk`: the time to walk one name in a directory of 100,000 entries,
//!   against one of 1,000 entries (the baseline; the goal is ≤ 2×);
//! - `seq-write`, `seq-read`, `overwrite`, `creates`: file-level workloads
//!   against the host file system (`fsfiles.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use gefs_core::device::FileDev;
use gefs_core::fs::{Fs, Who, MAX_IO, ORDWR, OREAD};
use gefs_core::snap::Snaps;
use gefs_core::store::Store;

use crate::hist::Histogram;
use crate::report::{Goal, Phase, Report, Run};
use crate::rng::Rng;
use crate::BenchResult;

/// Parameters of the fs benchmark.
#[derive(Debug, Clone)]
pub struct FsOpts {
    /// Host tree to import (default: the Rust docs, else the cargo registry).
    pub from: Option<PathBuf>,
    /// MiB of file data on the snapshot image.
    pub data_mb: u64,
    /// Snapshot create/delete cycles.
    pub cycles: u64,
    /// Entries in the big directory.
    pub big_dir: u64,
    /// Walks timed per directory.
    pub walks: u64,
    /// Phases to run.
    pub phases: Vec<String>,
    /// The file-level phases' parameters.
    pub files: crate::fsfiles::FileOpts,
}

/// The phases, in the order they run.
pub const PHASES: [&str; 7] = [
    "import",
    "snapshot",
    "walk",
    "seq-write",
    "seq-read",
    "overwrite",
    "creates",
];

fn store_on(path: &Path, size: u64) -> BenchResult<Arc<Store>> {
    let dev = Arc::new(FileDev::create(path, size)?);
    let opts = gefs_core::testing::format_opts_for("bench", 256 << 20);
    Ok(Arc::new(Store::format(dev, &opts)?))
}

fn default_tree() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let docs =
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("share/doc/rust/html/std");
    if docs.is_dir() {
        return Some(docs);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("registry/src")).filter(|p| p.is_dir())
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::create_dir_all(dst)?;
    let mut n = (0, 0);
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let ft = e.file_type()?;
        let to = dst.join(e.file_name());
        if ft.is_dir() {
            let (a, b) = copy_tree(&e.path(), &to)?;
            n = (n.0 + a, n.1 + b);
        } else if ft.is_file() {
            n.1 += std::fs::copy(e.path(), &to)?;
            n.0 += 1;
        }
    }
    Ok(n)
}

fn import(o: &FsOpts, dir: &Path, rep: &mut Report, progress: &dyn Fn(&str)) -> BenchResult<()> {
    let Some(src) = o.from.clone().or_else(default_tree) else {
        rep.notes
            .push("import: no host tree to copy (pass --from)".into());
        return Ok(());
    };
    progress(&format!("import: copying {}", src.display()));
    let t = Instant::now();
    let (files, bytes) = copy_tree(&src, &dir.join("copy"))?;
    // The baseline pays for its data reaching the disk too.
    std::process::Command::new("sync").status()?;
    let base_s = t.elapsed().as_secs_f64();
    let store = store_on(
        &dir.join("import.img"),
        ((files * 16384 + bytes) * 3).max(512 << 20),
    )?;
    let fs = Fs::new(store, false)?;
    let t = Instant::now();
    let r = gefs_core::import::import(&fs, "main", &src, "bench", &mut |_| {})?;
    fs.sync()?;
    let ours_s = t.elapsed().as_secs_f64();
    let h = Histogram::new();
    let ours = Run::new("gefs", r.files, ours_s, &h).counter("bytes", r.bytes as f64);
    let base = Run::new("cp -r + sync", files, base_s, &h).counter("bytes", bytes as f64);
    rep.phases.push(Phase::new(
        "import",
        &format!("copy {} ({files} files) into a new image, committed; baseline: a recursive copy into a directory on the same disk, then sync", src.display()),
        ours,
        Some(base),
    ));
    Ok(())
}

fn write_file(
    fs: &Fs,
    m: &gefs_core::fs::Mount,
    root: &gefs_core::fs::Entry,
    name: &str,
    bytes: u64,
    fill: u8,
    who: &Who,
) -> BenchResult<()> {
    let o = fs.create(m, root, name.as_bytes(), 0o664, ORDWR, who)?;
    let chunk = vec![fill; MAX_IO];
    let mut off = 0;
    while off < bytes {
        let n = (bytes - off).min(MAX_IO as u64) as usize;
        off += fs.write(&o, off, &chunk[..n], who)? as u64;
    }
    Ok(())
}

fn snapshots(o: &FsOpts, dir: &Path, rep: &mut Report, progress: &dyn Fn(&str)) -> BenchResult<()> {
    let data = o.data_mb << 20;
    let store = store_on(&dir.join("snap.img"), data * 3 + (256 << 20))?;
    let fs = Fs::new(store.clone(), true)?;
    let who = Who::permissive(fs.uid("adm")?);
    let (m, root) = fs.attach("main")?;
    progress(&format!("snapshot: writing {} MiB", o.data_mb));
    let files = 16;
    for i in 0..files {
        write_file(
            &fs,
            &m,
            &root,
            &format!("f{i}"),
            data / files,
            i as u8,
            &who,
        )?;
    }
    fs.sync()?;
    let mut take = Histogram::new();
    let mut take_sync = Histogram::new();
    let mut del = Histogram::new();
    let mut del_sync = Histogram::new();
    let mut r = Rng::new(7);
    for c in 0..o.cycles {
        let name = format!("s{c}");
        let t = Instant::now();
        Snaps::new(&store).take("main", &name, false)?;
        take.record(t.elapsed().as_nanos() as u64);
        store.sync()?;
        take_sync.record(t.elapsed().as_nanos() as u64);
        // Overwrite a few MiB so the snapshot holds blocks main dropped.
        for _ in 0..4 {
            let f = fs.walk(&m, &root, format!("f{}", r.below(files)).as_bytes(), &who)?;
            let op = fs.open(&m, &f, ORDWR, &who)?;
            fs.write(&op, r.below(data / files / 2), &vec![0xee; 1 << 20], &who)?;
        }
        fs.sync()?;
        let t = Instant::now();
        Snaps::new(&store).delete(&name)?;
        del.record(t.elapsed().as_nanos() as u64);
        store.sync()?;
        del_sync.record(t.elapsed().as_nanos() as u64);
    }
    let used: u64 = store
        .allocator()
        .stats()
        .iter()
        .map(|a| (a.blocks - a.free) * 16384)
        .sum();
    let run = |name: &str, h: &Histogram| {
        Run::new("gefs", h.count(), h.sum() as f64 / 1e9, h)
            .counter("image_used_bytes", used as f64)
            .kind(name, h)
    };
    rep.phases.push(Phase::new(
        "snapshot-take",
        "take a snapshot of main (tree work only)",
        run("take", &take),
        None,
    ));
    rep.phases.push(Phase::new(
        "snapshot-take+sync",
        "take a snapshot and commit it",
        run("take+sync", &take_sync),
        None,
    ));
    rep.phases.push(Phase::new(
        "snapshot-delete",
        "delete a snapshot holding 4 MiB main overwrote (tree work and frees)",
        run("delete", &del),
        None,
    ));
    rep.phases.push(Phase::new(
        "snapshot-delete+sync",
        "delete a snapshot and commit it",
        run("delete+sync", &del_sync),
        None,
    ));
    let p50 = take.summary().p50 as f64;
    rep.goals.push(Goal::new(
        "snapshot-take under 1 ms",
        "taking a snapshot is constant tree work, under 1 ms at any size",
        1.0,
        1e6 / p50.max(1.0),
        true,
    ));
    Ok(())
}

fn walks(o: &FsOpts, dir: &Path, rep: &mut Report, progress: &dyn Fn(&str)) -> BenchResult<()> {
    let store = store_on(&dir.join("walk.img"), (o.big_dir * 3 * 16384).max(1 << 30))?;
    let fs = Fs::new(store, true)?;
    let who = Who::permissive(fs.uid("adm")?);
    let (m, root) = fs.attach("main")?;
    let mut runs = Vec::new();
    for (name, n) in [("small", 1000u64), ("big", o.big_dir)] {
        progress(&format!("walk: making a directory of {n} entries"));
        let d = fs.create(
            &m,
            &root,
            name.as_bytes(),
            gefs_core::format::value::DMDIR | 0o775,
            OREAD,
            &who,
        )?;
        let d = d.entry().clone();
        for i in 0..n {
            fs.create(
                &m,
                &d,
                format!("entry{i:07}").as_bytes(),
                0o664,
                OREAD,
                &who,
            )?;
        }
        fs.sync()?;
        // Warm the cache with a pass over other names: the figure is the
        // cost of a walk, not of a cold disk.
        let mut r = Rng::new(n ^ 0xabc);
        for _ in 0..o.walks {
            fs.walk(&m, &d, format!("entry{:07}", r.below(n)).as_bytes(), &who)?;
        }
        let mut h = Histogram::new();
        let mut r = Rng::new(n);
        let t = Instant::now();
        for _ in 0..o.walks {
            let k = r.below(n);
            let t0 = Instant::now();
            fs.walk(&m, &d, format!("entry{k:07}").as_bytes(), &who)?;
            h.record(t0.elapsed().as_nanos() as u64);
        }
        runs.push(
            Run::new("gefs", o.walks, t.elapsed().as_secs_f64(), &h).counter("entries", n as f64),
        );
    }
    let small = runs.remove(0);
    let big = runs.remove(0);
    let slow = big.latency_ns.p50 as f64 / (small.latency_ns.p50 as f64).max(1.0);
    rep.phases.push(Phase::new(
        "walk",
        &format!(
            "walk one name in a directory of {} entries; baseline: in one of 1000",
            o.big_dir
        ),
        big,
        Some(small),
    ));
    rep.goals.push(Goal::new(
        "walk at 100k entries ≤ 2× 1k",
        "a walk costs O(log n): a median walk at 100k entries takes at most twice as long as at 1k (ratio = p50 at 1k / p50 at 100k)",
        0.5,
        1.0 / slow,
        true,
    ));
    Ok(())
}

/// Run the fs benchmark in `dir`.
pub fn run(o: &FsOpts, dir: &Path, progress: &dyn Fn(&str)) -> BenchResult<Report> {
    let mut rep = Report::new("fs");
    rep.param("data_mb", o.data_mb);
    rep.param("cycles", o.cycles);
    rep.param("big_dir", o.big_dir);
    rep.param("walks", o.walks);
    rep.param("phases", &o.phases);
    let f = &o.files;
    rep.param("file_mb", f.file_mb);
    rep.param("overwrites", f.overwrites);
    rep.param("commit_every", f.commit_every);
    rep.param("creates", f.creates);
    rep.param("create_bytes", f.create_bytes);
    rep.param("cache_mb", f.cache_mb);
    if let Some(p) = o.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        return Err(format!("unknown fs phase {p:?} ({})", PHASES.join(", ")).into());
    }
    let want = |p: &str| o.phases.iter().any(|x| x == p);
    if want("import") {
        import(o, dir, &mut rep, progress)?;
    }
    if want("snapshot") {
        snapshots(o, dir, &mut rep, progress)?;
    }
    if want("walk") {
        walks(o, dir, &mut rep, progress)?;
    }
    crate::fsfiles::run(f, &want, dir, &mut rep, progress)?;
    Ok(rep)
}
