//! `gefs-bench fs`: the file-level workloads, ours through [`Fs`] on an
//! image file against the same workload on a file or directory of the host
//! file system holding `--dir` (the baseline), in the same run:
//!
//! - `seq-write`, `seq-read`: one `--file-mb` file written front to back in
//!   `MAX_IO` (4 MiB) requests and made durable (ours: `Fs::sync`; host:
//!   `fdatasync`), then read back the same way;
//! - `overwrite`: `--overwrites` writes of 4 KiB at random 4 KiB-aligned
//!   offsets inside that file, durable every `--commit-every` writes (ours:
//!   `Fs::sync`; host: `fdatasync`) — BetrFS's headline workload;
//! - `creates`: `--creates` files of `--create-bytes` each, created and
//!   written in one new directory, made durable once at the end (ours:
//!   `Fs::sync`; host: `sync -f` of the directory's file system).
//!
//! The host's page cache holds the file (the machine has far more memory
//! than `--file-mb`), and so it holds our image file too: our cache misses
//! are served from it, as the host's reads are. Every byte read is checked.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gefs_core::device::FileDev;
use gefs_core::fs::{Fs, Mount, Open, Who, MAX_IO, ORDWR};
use gefs_core::store::Store;

use crate::cpu::Mark;
use crate::hist::Histogram;
use crate::report::{Goal, Phase, Report, Run};
use crate::rng::Rng;
use crate::BenchResult;

/// Parameters of the file-level phases.
#[derive(Debug, Clone)]
pub struct FileOpts {
    /// Size of the file of `seq-*` and `overwrite`, in MiB.
    pub file_mb: u64,
    /// Random 4 KiB overwrites.
    pub overwrites: u64,
    /// Overwrites per durable commit.
    pub commit_every: u64,
    /// Files the `creates` phase makes.
    pub creates: u64,
    /// Bytes written to each of them.
    pub create_bytes: usize,
    /// Our block cache, in MiB.
    pub cache_mb: usize,
}

/// Bytes per overwrite.
const PAGE: u64 = 4096;

/// Our side: a store on an image file, its file system, `main` attached.
struct Ours {
    fs: Fs,
    m: Mount,
    root: gefs_core::fs::Entry,
    who: Who,
}

fn ours(path: &Path, o: &FileOpts) -> BenchResult<Ours> {
    let file = o.file_mb << 20;
    let data = file + o.creates * 16384 * 2;
    let size = (data * 3).max(1 << 30);
    let dev = Arc::new(FileDev::create(path, size)?);
    let opts = gefs_core::testing::format_opts_for("bench", o.cache_mb << 20);
    let store = Arc::new(Store::format(dev, &opts)?);
    let fs = Fs::new(store, true)?;
    let who = Who::permissive(fs.uid("adm")?);
    let (m, root) = fs.attach("main")?;
    Ok(Ours { fs, m, root, who })
}

/// The byte the sequential file holds at `off` (so reads can be checked).
fn seq_byte(off: u64) -> u8 {
    (off / 4096) as u8 | 1
}

fn seq_chunk(off: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| seq_byte(off + i)).collect()
}

fn timed_run(name: &str, ops: u64, secs: f64, h: &Histogram, m: Mark) -> Run {
    Run::new(name, ops, secs, h).cpu(&m.since())
}

/// Write the sequential file through ours; returns the open file.
fn our_seq_write(u: &Ours, o: &FileOpts) -> BenchResult<(Open, Run)> {
    let f = u.fs.create(&u.m, &u.root, b"big", 0o664, ORDWR, &u.who)?;
    let total = o.file_mb << 20;
    let (mut h, m, t) = (Histogram::new(), Mark::now(), Instant::now());
    let mut off = 0;
    while off < total {
        let n = (total - off).min(MAX_IO as u64) as usize;
        let buf = seq_chunk(off, n);
        let t0 = Instant::now();
        off += u.fs.write(&f, off, &buf, &u.who)? as u64;
        h.record_since(t0);
    }
    let t0 = Instant::now();
    u.fs.sync()?;
    h.record_since(t0);
    let r = timed_run("gefs", h.count(), t.elapsed().as_secs_f64(), &h, m);
    Ok((f, r.counter("bytes", total as f64)))
}

fn host_seq_write(path: &Path, o: &FileOpts) -> BenchResult<(File, Run)> {
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let total = o.file_mb << 20;
    let (mut h, m, t) = (Histogram::new(), Mark::now(), Instant::now());
    let mut off = 0;
    while off < total {
        let n = (total - off).min(MAX_IO as u64) as usize;
        let buf = seq_chunk(off, n);
        let t0 = Instant::now();
        f.write_all_at(&buf, off)?;
        h.record_since(t0);
        off += n as u64;
    }
    let t0 = Instant::now();
    f.sync_data()?;
    h.record_since(t0);
    let r = timed_run("host", h.count(), t.elapsed().as_secs_f64(), &h, m);
    Ok((f, r.counter("bytes", total as f64)))
}

/// Read a file of `total` bytes with `read(off, n)`, checking every byte.
fn seq_read(
    name: &str,
    total: u64,
    mut read: impl FnMut(u64, usize) -> BenchResult<Vec<u8>>,
) -> BenchResult<Run> {
    let (mut h, m, t) = (Histogram::new(), Mark::now(), Instant::now());
    let mut off = 0;
    while off < total {
        let n = (total - off).min(MAX_IO as u64) as usize;
        let t0 = Instant::now();
        let b = read(off, n)?;
        h.record_since(t0);
        if b.len() != n
            || b.iter()
                .enumerate()
                .any(|(i, &x)| x != seq_byte(off + i as u64))
        {
            return Err(format!("{name}: wrong bytes read at {off}").into());
        }
        off += n as u64;
    }
    let r = timed_run(name, h.count(), t.elapsed().as_secs_f64(), &h, m);
    Ok(r.counter("bytes", total as f64))
}

/// `o.overwrites` random 4 KiB writes into a file of `o.file_mb`, durable
/// every `o.commit_every`: `write(off, page)` then `commit()`.
fn overwrite(
    name: &str,
    o: &FileOpts,
    mut write: impl FnMut(u64, &[u8]) -> BenchResult<()>,
    mut commit: impl FnMut() -> BenchResult<()>,
) -> BenchResult<Run> {
    let pages = (o.file_mb << 20) / PAGE;
    let mut r = Rng::new(0xb37f5);
    let mut page = vec![0u8; PAGE as usize];
    let (mut h, mut c, m, t) = (
        Histogram::new(),
        Histogram::new(),
        Mark::now(),
        Instant::now(),
    );
    for i in 0..o.overwrites {
        let off = r.below(pages) * PAGE;
        page.fill(i as u8);
        let t0 = Instant::now();
        write(off, &page)?;
        h.record_since(t0);
        if (i + 1) % o.commit_every == 0 || i + 1 == o.overwrites {
            let t0 = Instant::now();
            commit()?;
            c.record_since(t0);
        }
    }
    let r = timed_run(name, o.overwrites, t.elapsed().as_secs_f64(), &h, m);
    Ok(r.kind("commit", &c))
}

/// Create `o.creates` files of `o.create_bytes` in a new directory, then
/// make them durable with `commit()`.
fn creates(
    name: &str,
    o: &FileOpts,
    mut create: impl FnMut(&str, &[u8]) -> BenchResult<()>,
    commit: impl FnOnce() -> BenchResult<()>,
) -> BenchResult<Run> {
    let body = vec![0x5au8; o.create_bytes];
    let (mut h, m, t) = (Histogram::new(), Mark::now(), Instant::now());
    for i in 0..o.creates {
        let t0 = Instant::now();
        create(&format!("f{i:06}"), &body)?;
        h.record_since(t0);
    }
    let mut c = Histogram::new();
    let t0 = Instant::now();
    commit()?;
    c.record_since(t0);
    let r = timed_run(name, o.creates, t.elapsed().as_secs_f64(), &h, m);
    Ok(r.kind("commit", &c))
}

/// `sync -f dir`: make the file system holding `dir` durable.
fn syncfs(dir: &Path) -> BenchResult<()> {
    let st = std::process::Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()?;
    if !st.success() {
        return Err(format!("sync -f {} failed: {st}", dir.display()).into());
    }
    Ok(())
}

/// Run the selected file-level phases (`want`) in `dir`.
pub fn run(
    o: &FileOpts,
    want: &dyn Fn(&str) -> bool,
    dir: &Path,
    rep: &mut Report,
    progress: &dyn Fn(&str),
) -> BenchResult<()> {
    if o.commit_every == 0 || o.file_mb == 0 {
        return Err("--commit-every and --file-mb must be at least 1".into());
    }
    let u = ours(&dir.join("files.img"), o)?;
    let hostfile = dir.join("host-big");
    let total = o.file_mb << 20;
    if want("seq-write") || want("seq-read") || want("overwrite") {
        progress(&format!("seq-write: gefs, {} MiB", o.file_mb));
        let (f, a) = our_seq_write(&u, o)?;
        progress(&format!("seq-write: host, {} MiB", o.file_mb));
        let (hf, b) = host_seq_write(&hostfile, o)?;
        if want("seq-write") {
            let desc = format!(
                "write a {} MiB file front to back in 4 MiB requests, then make it durable; \
                 ops = requests + the final sync; baseline: the same on a host file, fdatasync",
                o.file_mb
            );
            rep.phases.push(Phase::new("seq-write", &desc, a, Some(b)));
        }
        if want("seq-read") {
            progress("seq-read: gefs");
            let a = seq_read("gefs", total, |off, n| Ok(u.fs.read(&f, off, n)?))?;
            progress("seq-read: host");
            let b = seq_read("host", total, |off, n| {
                let mut buf = vec![0u8; n];
                hf.read_exact_at(&mut buf, off)?;
                Ok(buf)
            })?;
            let desc = format!(
                "read the {} MiB file back in 4 MiB requests, checking every byte; \
                 baseline: the host file (both through the host's page cache)",
                o.file_mb
            );
            rep.phases.push(Phase::new("seq-read", &desc, a, Some(b)));
        }
        if want("overwrite") {
            progress(&format!("overwrite: gefs, {} writes", o.overwrites));
            let a = overwrite(
                "gefs",
                o,
                |off, p| {
                    u.fs.write(&f, off, p, &u.who)?;
                    Ok(())
                },
                || {
                    u.fs.sync()?;
                    Ok(())
                },
            )?;
            progress(&format!("overwrite: host, {} writes", o.overwrites));
            let b = overwrite(
                "host",
                o,
                |off, p| Ok(hf.write_all_at(p, off)?),
                || Ok(hf.sync_data()?),
            )?;
            let desc = format!(
                "{} writes of 4 KiB at random 4 KiB-aligned offsets in the {} MiB file, durable \
                 every {} (ours: Fs::sync; baseline: the host file, fdatasync)",
                o.overwrites, o.file_mb, o.commit_every
            );
            let p = Phase::new("overwrite", &desc, a, Some(b));
            rep.goals.push(Goal::new(
                "fs-overwrite",
                "4 KiB random overwrites in a 1 GiB file, durable every 1000: >= 1.5x the host \
                 file system",
                1.5,
                p.ratio.unwrap_or(0.0),
                o.file_mb == 1024 && o.commit_every == 1000,
            ));
            rep.phases.push(p);
        }
        drop(hf);
        std::fs::remove_file(&hostfile)?;
    }
    if want("creates") {
        progress(&format!("creates: gefs, {} files", o.creates));
        let d = u.fs.create(
            &u.m,
            &u.root,
            b"many",
            gefs_core::format::value::DMDIR | 0o775,
            gefs_core::fs::OREAD,
            &u.who,
        )?;
        let d = d.entry().clone();
        let a = creates(
            "gefs",
            o,
            |name, body| {
                let f =
                    u.fs.create(&u.m, &d, name.as_bytes(), 0o664, ORDWR, &u.who)?;
                u.fs.write(&f, 0, body, &u.who)?;
                Ok(())
            },
            || {
                u.fs.sync()?;
                Ok(())
            },
        )?;
        progress(&format!("creates: host, {} files", o.creates));
        let hd = dir.join("host-many");
        std::fs::create_dir(&hd)?;
        let b = creates(
            "host",
            o,
            |name, body| {
                let mut f = File::create(hd.join(name))?;
                f.write_all(body)?;
                Ok(())
            },
            || syncfs(&hd),
        )?;
        std::fs::remove_dir_all(&hd)?;
        let desc = format!(
            "create {} files of {} bytes in one new directory, then make them durable once \
             (ours: Fs::sync; baseline: the host directory, sync -f)",
            o.creates, o.create_bytes
        );
        rep.phases.push(Phase::new("creates", &desc, a, Some(b)));
    }
    Ok(())
}
