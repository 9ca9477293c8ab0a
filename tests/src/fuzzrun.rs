//! The image fuzzer's subject and its oracles (reliability plan T9).
//!
//! [`base_image`] builds a populated image: nested directories, small,
//! multi-block and sparse files, a directory big enough to give `main` a
//! pivot with buffered messages, global settings enough to give the
//! snapshot tree a pivot, two snapshots and a fork (so snapshot records
//! link by `pred`, `succ` and `base`), rewrites after each snapshot (so
//! there are deadlists), and changes after the last apply of the write
//! buffers (so `main` has a message log, one of whose records points to a
//! data block).
//!
//! [`in_process`] runs every reader on a mutant through the library: the
//! checker, open, every `gefs-dump` view of every label (superblock, arenas,
//! snapshots, trees, deadlists, `ls`/`stat`/`cat` of every entry), export
//! into a sandbox, and the block decoder on every block. [`external`] runs
//! the same through the real binaries. The outcome of each is a clean
//! error or an answer; a panic, or an export that writes outside its
//! directory or through a planted symbolic link, is a [`Violation`]. Hangs,
//! aborts and memory are watched by the driver (`tests/image_fuzz.rs`),
//! which runs this in worker processes under a time limit and an
//! `RLIMIT_AS`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gefs_core::check::{check, CheckOpts};
use gefs_core::device::MemDev;
use gefs_core::format::BLKSZ_U64;
use gefs_core::fs::{Entry, Fs, Mount, Who, OREAD};
use gefs_core::snap::Snaps;
use gefs_core::store::{Config, Store};

use crate::craft::{dir, file, me};
use crate::mutate::{Indexed, Mutant};

/// Bytes of the fuzzed image.
pub const SIZE: u64 = 32 << 20;

/// Build the populated image (see the module docs).
pub fn base_image() -> MemDev {
    let dev = Arc::new(MemDev::new(SIZE));
    let opts = gefs_core::testing::format_opts_for(&me(), 8 << 20);
    drop(Store::format(dev.clone(), &opts).expect("format"));
    let cfg = Config {
        cache_bytes: 8 << 20,
        read_only: false,
    };
    let store = Arc::new(Store::open(dev.clone(), &cfg).expect("open"));
    let fs = Fs::new(store, false).expect("fs");
    let who = Who::permissive(fs.uid("adm").expect("adm"));
    let (m, root) = fs.attach("main").expect("main");
    file(&fs, &m, &root, b"a", b"abc", &who);
    let d = dir(&fs, &m, &root, b"dir", &who);
    let big: Vec<u8> = (0..40 << 10).map(|i| (i % 253) as u8).collect();
    let b = file(&fs, &m, &d, b"b", &big, &who);
    let sub = dir(&fs, &m, &d, b"sub", &who);
    file(&fs, &m, &sub, b"deep", b"deep file", &who);
    let sp = file(&fs, &m, &root, b"sparse", b"", &who);
    let o = fs.open(&m, &sp, gefs_core::fs::ORDWR, &who).expect("open");
    fs.write(&o, 1 << 20, b"far away", &who).expect("write");
    drop(o);
    // Long names: few entries fill a leaf, so `main` gets a pivot cheaply.
    let many = dir(&fs, &m, &root, b"many", &who);
    for i in 0..64 {
        let name = long_name(i);
        file(&fs, &m, &many, name.as_bytes(), name.as_bytes(), &who);
    }
    for i in 0..70 {
        let v = format!("{i:0400}");
        Snaps::new(fs.store())
            .set_conf(None, &format!("setting{i:04}"), v.as_bytes())
            .expect("conf");
    }
    fs.sync().expect("sync");
    Snaps::new(fs.store())
        .take("main", "s1", false)
        .expect("s1");
    let o = fs.open(&m, &b, gefs_core::fs::ORDWR, &who).expect("open b");
    fs.write(&o, 0, &[7u8; 20 << 10], &who).expect("rewrite");
    drop(o);
    fs.sync().expect("sync");
    Snaps::new(fs.store())
        .take("main", "s2", false)
        .expect("s2");
    Snaps::new(fs.store()).take("s1", "m1", true).expect("fork");
    for i in 0..8 {
        let name = long_name(i);
        let e = fs.walk(&m, &many, name.as_bytes(), &who).expect("walk");
        fs.remove(&m, &e, &who).expect("remove");
    }
    // Wstats buffered above the leaves of main.
    let c = gefs_core::fs::Changes {
        mtime: Some(1_234_567_890_000_000_000),
        ..Default::default()
    };
    for i in 8..40 {
        let name = long_name(i);
        let e = fs.walk(&m, &many, name.as_bytes(), &who).expect("walk");
        fs.wstat(&m, &e, &c, &who).expect("wstat");
    }
    // Apply the write buffers: the trees get their pivots, the wstats ride
    // in main's root buffer. What follows stays in main's message log (a
    // new entry, its data pointer, a wstat) for the mutator's `message-log`
    // class.
    fs.store().checkpoint().expect("checkpoint");
    fs.sync().expect("sync");
    file(&fs, &m, &root, b"late", &[5u8; 3000], &who);
    let e = fs
        .walk(&m, &many, long_name(40).as_bytes(), &who)
        .expect("walk");
    fs.wstat(&m, &e, &c, &who).expect("wstat");
    drop((m, root, d, b, sub, sp, many, e));
    fs.sync().expect("sync");
    drop(fs);
    dev.snapshot()
}

fn long_name(i: usize) -> String {
    format!("{i:04}-{}", "n".repeat(200))
}

/// What happened to one mutant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The checker could not check it (not a gefs image any more).
    Rejected,
    /// The checker reported problems.
    Detected,
    /// The checker found nothing, and every view answered.
    Clean,
    /// The checker found nothing, but a view failed with a clean error
    /// (damage the checker does not see; listed, not a failure).
    Missed(String),
}

impl Outcome {
    /// Its name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Detected => "detected",
            Outcome::Clean => "clean",
            Outcome::Missed(_) => "missed",
        }
    }
}

/// A broken promise: a panic, a write outside the export directory, a
/// binary killed by a signal or a time limit.
pub type Violation = String;

/// Run `f`, turning a panic into a violation.
fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, Violation> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("{what}: panic: {msg}")
    })
}

/// Most entries visited per label, and bytes read per file.
const MAX_ENTRIES: usize = 3000;
const MAX_READ: u64 = 256 << 10;

/// Every reader, in process, on mutant `m`; `sandbox` is an empty directory.
pub fn in_process(ix: &Indexed, m: &Mutant, sandbox: &Path) -> Result<Outcome, Violation> {
    let prof = std::env::var_os("GEFS_FUZZ_PROFILE").is_some();
    let t0 = Instant::now();
    let lap = |what: &str| {
        if prof {
            eprintln!("{what}: {:?}", t0.elapsed());
        }
    };
    let opts = CheckOpts {
        threads: 1,
        progress: None,
    };
    let report = guard("check", || check(&m.dev, &opts))?;
    lap("check");
    // `dump blk` of the changed block, the superblocks and a spread of others
    // (every ancestor of the changed block was re-hashed, not changed).
    let addrs: Vec<u64> = ix.addrs().collect();
    let sample = addrs.iter().step_by(addrs.len() / 12 + 1);
    for &a in sample.chain([m.addr, 0, SIZE - BLKSZ_U64].iter()) {
        guard("dump blk", || gefs_core::dump::decode_block(&m.dev, a))?.ok();
    }
    let cfg = Config {
        cache_bytes: 4 << 20,
        read_only: true,
    };
    lap("blk");
    let store = guard("open", || Store::open(Arc::new(m.dev.snapshot()), &cfg))?;
    lap("open");
    let mut failed: Vec<String> = Vec::new();
    let mut note = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            failed.push(format!("{what}: {e}"));
        }
    };
    if let Ok(s) = store {
        let s = Arc::new(s);
        note(
            "super",
            guard("super", || gefs_core::dump::superblock(&s))?
                .map(drop)
                .map_err(|e| e.to_string()),
        );
        guard("arenas", || gefs_core::dump::arenas(&s))?;
        note(
            "snaps",
            guard("snaps", || gefs_core::dump::snaps(&s))?
                .map(drop)
                .map_err(|e| e.to_string()),
        );
        note(
            "tree",
            guard("tree", || gefs_core::dump::tree_levels(&s, None))?
                .map(drop)
                .map_err(|e| e.to_string()),
        );
        let labels = guard("labels", || s.labels())?;
        let labels: Vec<String> = match labels {
            Ok(l) => l.into_iter().map(|l| l.name).take(16).collect(),
            Err(e) => {
                note("labels", Err(e.to_string()));
                Vec::new()
            }
        };
        for l in &labels {
            let t = guard("tree LABEL", || gefs_core::dump::tree_levels(&s, Some(l)))?;
            note(&format!("tree {l}"), t.map(drop).map_err(|e| e.to_string()));
            let d = guard("deadlist", || gefs_core::dump::deadlist(&s, l))?;
            note(
                &format!("deadlist {l}"),
                d.map(drop).map_err(|e| e.to_string()),
            );
        }
        lap("views");
        match guard("fs", || Fs::new(s.clone(), true))? {
            Ok(fs) => {
                lap("fs");
                for l in labels.iter().filter(|l| l.as_str() != "adm") {
                    let r = guard("walk", || walk_label(&fs, l))?;
                    note(&format!("walk {l}"), r);
                }
                lap("walk");
                let out = sandbox.join("out");
                plant(sandbox, &out);
                let r = guard("export", || gefs_core::export::export(&fs, "main", &out))?;
                confined(sandbox, &out)?;
                lap("export");
                // The planted links are reported and skipped by design.
                match r {
                    Ok(x) => {
                        let other: Vec<&String> = x
                            .skipped
                            .iter()
                            .filter(|s| !s.contains("symbolic link is in the way"))
                            .collect();
                        if !other.is_empty() {
                            let s: Vec<&str> = other.iter().map(|s| s.as_str()).collect();
                            note("export", Err(s.join("; ")));
                        }
                    }
                    Err(e) => note("export", Err(e.to_string())),
                }
            }
            Err(e) => note("users", Err(e.to_string())),
        }
    }
    Ok(match report {
        Err(_) => Outcome::Rejected,
        Ok(r) if !r.problems.is_empty() => Outcome::Detected,
        Ok(_) if failed.is_empty() => Outcome::Clean,
        Ok(_) => Outcome::Missed(failed.join(" | ")),
    })
}

/// `ls`, `stat` and `cat` (capped) of every entry of `label`.
fn walk_label(fs: &Fs, label: &str) -> Result<(), String> {
    let (m, root) = fs.attach(label).map_err(|e| e.to_string())?;
    let who = Who::permissive(fs.uid("adm").map_err(|e| e.to_string())?);
    let mut stack: Vec<(Entry, String)> = vec![(root, String::new())];
    let mut seen = 0usize;
    let mut errs = Vec::new();
    while let Some((d, path)) = stack.pop() {
        if seen > MAX_ENTRIES {
            break;
        }
        let listed = gefs_core::dump::ls(fs, label, if path.is_empty() { "/" } else { &path });
        if let Err(e) = listed {
            errs.push(format!("ls {path}: {e}"));
        }
        let o = fs.open(&m, &d, OREAD, &who).map_err(|e| e.to_string())?;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = match fs.readdir(&o, after.as_deref(), 128) {
                Ok(b) => b,
                Err(e) => {
                    errs.push(format!("readdir {path}: {e}"));
                    break;
                }
            };
            let Some(last) = batch.last() else { break };
            after = Some(last.name.clone());
            for de in batch {
                seen += 1;
                let Ok(name) = std::str::from_utf8(&de.name) else {
                    continue;
                };
                if gefs_core::fs::names::check(&de.name).is_err() {
                    continue;
                }
                let p = format!("{path}/{name}");
                let e = match fs.walk(&m, &d, &de.name, &who) {
                    Ok(e) => e,
                    Err(e) => {
                        errs.push(format!("walk {p}: {e}"));
                        continue;
                    }
                };
                // `stat` resolves the path from the root: a few per directory.
                if seen % 16 == 1 {
                    if let Err(x) = gefs_core::dump::stat(fs, label, &p) {
                        errs.push(format!("stat {p}: {x}"));
                    }
                }
                if e.is_dir() {
                    stack.push((e, p));
                } else if let Err(x) = read_capped(fs, &m, &e, &who) {
                    errs.push(format!("read {p}: {x}"));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

fn read_capped(fs: &Fs, m: &Mount, e: &Entry, who: &Who) -> gefs_core::fs::Result<()> {
    let o = fs.open(m, e, OREAD, who)?;
    let mut off = 0u64;
    while off < e.dir.length.min(MAX_READ) {
        let c = fs.read(&o, off, 64 << 10)?;
        if c.is_empty() {
            break;
        }
        off += c.len() as u64;
    }
    Ok(())
}

/// Plant, in the export directory, symbolic links named like entries of the
/// image, leading to a file and a directory outside it.
pub fn plant(sandbox: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("out");
    std::fs::write(sandbox.join("victim"), b"keep").expect("victim");
    std::fs::create_dir_all(sandbox.join("victimdir")).expect("victim dir");
    std::os::unix::fs::symlink("../victim", out.join("a")).expect("link");
    std::os::unix::fs::symlink("../victimdir", out.join("dir")).expect("link");
}

/// The export wrote nothing outside `out` and nothing through the planted
/// links.
pub fn confined(sandbox: &Path, out: &Path) -> Result<(), Violation> {
    let mut top: Vec<String> = std::fs::read_dir(sandbox)
        .map_err(|e| format!("sandbox: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "img" && !n.ends_with(".cmd") && n != "err")
        .collect();
    top.sort();
    if top != ["out", "victim", "victimdir"] {
        return Err(format!("export wrote beside its directory: {top:?}"));
    }
    if std::fs::read(sandbox.join("victim")).ok().as_deref() != Some(&b"keep"[..]) {
        return Err("export wrote through a planted symbolic link".into());
    }
    if std::fs::read_dir(sandbox.join("victimdir")).map_or(1, |d| d.count()) != 0 {
        return Err("export wrote into a directory through a planted link".into());
    }
    for l in ["a", "dir"] {
        let md = std::fs::symlink_metadata(out.join(l));
        if !md.is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("export replaced the planted link {l}"));
        }
    }
    let used = du(out);
    if used > SIZE {
        return Err(format!(
            "export wrote {used} bytes from a {SIZE}-byte image"
        ));
    }
    Ok(())
}

/// Bytes allocated under `p`.
fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(md) = e.path().symlink_metadata() {
                n += md.blocks() * 512;
                if md.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    n
}

/// Run a binary with a time limit; a signal or the limit is a violation,
/// any exit status a clean answer.
pub fn run_bin(name: &str, args: &[&str], limit: Duration) -> Result<i32, Violation> {
    let mut c = Command::new(crate::cli::bin_path(name));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().map_err(|e| format!("{name}: spawn: {e}"))?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("{name}: wait: {e}"))? {
            return st
                .code()
                .ok_or_else(|| format!("{name} {args:?}: killed by {st}"));
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{name} {args:?}: no answer in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every tool binary on the image file `img`: `gefs-check`, each `gefs-dump`
/// view, and `gefs-dump export` into the sandbox (then inspected).
pub fn external(img: &Path, sandbox: &Path) -> Result<(), Violation> {
    let limit = Duration::from_secs(30);
    let i = img.to_string_lossy().into_owned();
    let code = run_bin("gefs-check", &["-q", "-j", "1", &i], limit)?;
    if code > 2 {
        return Err(format!("gefs-check exit {code}"));
    }
    let views: [&[&str]; 8] = [
        &["super"],
        &["arenas"],
        &["snaps"],
        &["tree"],
        &["tree", "main"],
        &["ls", "main", "/dir"],
        &["deadlist", "s2"],
        &["cat", "main", "/dir/b"],
    ];
    for v in views {
        let mut args = vec![i.as_str()];
        args.extend_from_slice(v);
        let code = run_bin("gefs-dump", &args, limit)?;
        if code > 2 {
            return Err(format!("gefs-dump {v:?} exit {code}"));
        }
    }
    let out: PathBuf = sandbox.join("out");
    plant(sandbox, &out);
    let o = out.to_string_lossy().into_owned();
    let code = run_bin("gefs-dump", &[&i, "export", "main", &o], limit)?;
    if code > 2 {
        return Err(format!("gefs-dump export exit {code}"));
    }
    confined(sandbox, &out)
}
