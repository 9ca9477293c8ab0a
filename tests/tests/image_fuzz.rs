//! Structure-aware image fuzzing (reliability plan T9; issue 8).
//!
//! Each mutant changes one field of one block of a populated image and
//! re-hashes every pointer up to both superblocks (`src/mutate.rs`), so the
//! damage is "valid-looking". Every mutant goes through every reader in
//! process (`src/fuzzrun.rs`: gefs-check's library, open, each gefs-dump
//! view of each label, export into a sandbox that is then inspected, the
//! block decoder); every [`EXTERNAL_EVERY`]th also through the real
//! binaries: gefs-check, each gefs-dump view, gefs-dump export, and
//! `gefsd -R -s` serving a walk and read of the whole tree to the 9P client.
//!
//! Why mostly in process: the library is what the binaries call, and a
//! mutant costs about 20 ms there against about 0.5 s through ten processes;
//! this is what makes thousands of mutants fit the CI budget. The in-process
//! runs still get the binaries' protections: they happen in worker
//! processes (this test binary re-run as the ignored test `worker`) under an
//! `RLIMIT_AS` of [`MEM_LIMIT`] (inherited by the binaries they start), and
//! the parent kills a worker that reports no progress for [`HANG_LIMIT`].
//! A panic, an abort (a worker or binary killed by a signal), a hang, an
//! allocation beyond the limit, or an export that writes outside its
//! directory or through a planted symbolic link fails the test; every
//! other outcome is a clean error or an answer.
//!
//! Outcomes per mutant: `rejected` (not checkable: no superblock decodes),
//! `detected` (the checker reports problems), `clean` (the checker finds
//! nothing and every view answers), `missed` (the checker finds nothing but
//! a view fails with a clean error: listed, not a failure).
//!
//! Knobs: `GEFS_FUZZ_SEED` (default [`DEFAULT_SEED`], printed; never the
//! clock), `GEFS_FUZZ_MUTANTS` (default [`DEFAULT_MUTANTS`]). Mutant `i` is
//! made from the seed and `i` alone, so any mutant replays on its own:
//! `GEFS_FUZZ_SEED=S GEFS_FUZZ_ONLY=i cargo test --release -p gefs-tests
//! --test image_fuzz`. `GEFS_FUZZ_PROFILE=1` shows each reader's time per
//! mutant (the workers' standard error).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gefs_core::device::{Device, MemDev};
use gefs_core::format::BLKSZ;
use gefs_tests::craft::me;
use gefs_tests::fuzzrun::{base_image, external, in_process, Outcome, SIZE};
use gefs_tests::mutate::{Class, Indexed};
use gefs_tests::rng::Rng;
use gefsd::client::{Client, ClientError};

const DEFAULT_SEED: u64 = 0x6765_6673_0054_0009;
const DEFAULT_MUTANTS: u64 = 2400;
const WORKERS: u64 = 2;
/// One mutant in this many also goes through the real binaries and gefsd.
const EXTERNAL_EVERY: u64 = 24;
/// No progress for this long is a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// Address space of a worker and of every binary it runs.
const MEM_LIMIT: u64 = 3 << 30;

/// Print a line of the figures even when the test passes: the standard
/// error handle, unlike `eprintln!`, is not captured by the test harness, so
/// `tests/run` shows the counts and the time of this stage.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The generator of mutant `i`.
fn rng_for(seed: u64, i: u64) -> Rng {
    Rng::new(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
}

/// Write `dev` to a (sparse) file.
fn save(dev: &MemDev, path: &Path) {
    let f = std::fs::File::create(path).expect("create image file");
    f.set_len(dev.size()).expect("size");
    let mut b = vec![0u8; BLKSZ];
    for a in (0..dev.size()).step_by(BLKSZ) {
        dev.read_at(&mut b, a).expect("read");
        if b.iter().any(|&x| x != 0) {
            std::os::unix::fs::FileExt::write_all_at(&f, &b, a).expect("write");
        }
    }
}

fn load(path: &Path) -> MemDev {
    let dev = MemDev::new(SIZE);
    let f = std::fs::File::open(path).expect("open image file");
    let mut b = vec![0u8; BLKSZ];
    for a in (0..SIZE).step_by(BLKSZ) {
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, a).expect("read");
        if b.iter().any(|&x| x != 0) {
            dev.write_at(&b, a).expect("write");
        }
    }
    dev
}

#[derive(Default)]
struct Tally {
    by_class: BTreeMap<(Class, &'static str), u64>,
    fields: BTreeMap<String, u64>,
    violations: Vec<String>,
    missed: Vec<String>,
    done: u64,
    external: u64,
}

/// Supervise one worker slice: respawn after a crash or a hang, skipping
/// the mutant that caused it.
fn supervise(img: &Path, seed: u64, n: u64, w: u64, only: Option<u64>, tally: &Mutex<Tally>) {
    let mut from = w;
    while from < n {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "worker",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "GEFS_FUZZ_WORKER",
                format!(
                    "{} {seed} {from} {n} {WORKERS} {}",
                    img.display(),
                    only.map_or(-1, |o| o as i64)
                ),
            )
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("GEFS_FUZZ_PROFILE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .spawn()
            .expect("worker starts");
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take();
        let errs = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = err {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let mut current: Option<u64> = None;
        let (mut finished, mut hung) = (false, false);
        loop {
            match rx.recv_timeout(HANG_LIMIT) {
                Ok(l) => {
                    let Some(rest) = l.strip_prefix("fuzz ") else {
                        continue;
                    };
                    let mut p = rest.splitn(2, ' ');
                    match (p.next(), p.next()) {
                        (Some("start"), Some(i)) => current = i.parse().ok(),
                        (Some("end"), _) => finished = true,
                        (Some("done"), Some(r)) => record(tally, r),
                        (Some("violation"), Some(r)) => {
                            lock(tally).violations.push(r.to_string());
                        }
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    lock(tally).violations.push(format!(
                        "mutant {current:?}: hang (no progress in {HANG_LIMIT:?})"
                    ));
                    hung = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let st = child.wait().expect("wait");
        let stderr = errs.join().unwrap_or_default();
        if finished {
            return;
        }
        let tail: String = stderr.lines().rev().take(8).collect::<Vec<_>>().join(" / ");
        if !hung {
            lock(tally)
                .violations
                .push(format!("mutant {current:?}: worker died ({st}): {tail}"));
        }
        let Some(at) = current else { return };
        from = at + WORKERS;
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `done` line: `i \t class \t field \t outcome \t external \t detail`.
fn record(tally: &Mutex<Tally>, r: &str) {
    let p: Vec<&str> = r.split('\t').collect();
    let [i, class, field, outcome, ext, detail] = p[..] else {
        return;
    };
    let class = Class::ALL.into_iter().find(|c| c.name() == class);
    let Some(class) = class else { return };
    let outcome = ["rejected", "detected", "clean", "missed"]
        .into_iter()
        .find(|o| *o == outcome)
        .unwrap_or("?");
    let mut t = lock(tally);
    t.done += 1;
    t.external += u64::from(ext == "1");
    *t.by_class.entry((class, outcome)).or_default() += 1;
    let kind = field.split(" (").next().unwrap_or(field).to_string();
    *t.fields.entry(kind).or_default() += 1;
    if outcome == "missed" && t.missed.len() < 12 {
        let d: String = detail.chars().take(300).collect();
        t.missed
            .push(format!("mutant {i} {} {field}: {d}", class.name()));
    }
}

#[test]
fn image_fuzz() {
    let t0 = Instant::now();
    let seed = env_u64("GEFS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let n = env_u64("GEFS_FUZZ_MUTANTS").unwrap_or(DEFAULT_MUTANTS);
    let only = env_u64("GEFS_FUZZ_ONLY");
    say!("image fuzz: seed {seed:#x}, {n} mutants, {WORKERS} workers");
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("base.img");
    let base = base_image();
    let ix = Indexed::new(base.snapshot());
    let counts: Vec<String> = Class::ALL
        .iter()
        .map(|&c| format!("{} {}", c.name(), ix.count(c)))
        .collect();
    say!("image fuzz: base image blocks: {}", counts.join(", "));
    for c in Class::ALL {
        assert!(ix.count(c) > 0, "the base image has no {} block", c.name());
    }
    save(&base, &img);
    // Build the binaries before the clock of any worker starts.
    gefs_tests::cli::bin_path("gefsd");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let slices: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (img, tally) = (img.clone(), tally.clone());
            std::thread::spawn(move || supervise(&img, seed, n, w, only, &tally))
        })
        .collect();
    for s in slices {
        s.join().expect("supervisor");
    }
    let t = lock(&tally);
    say!("image fuzz: mutants by block type and outcome:");
    say!(
        "  {:<12} {:>9} {:>9} {:>9} {:>9}",
        "block",
        "rejected",
        "detected",
        "clean",
        "missed"
    );
    for c in Class::ALL {
        let g = |o| t.by_class.get(&(c, o)).copied().unwrap_or(0);
        say!(
            "  {:<12} {:>9} {:>9} {:>9} {:>9}",
            c.name(),
            g("rejected"),
            g("detected"),
            g("clean"),
            g("missed")
        );
    }
    say!("image fuzz: fields mutated:");
    for (f, k) in &t.fields {
        say!("  {k:>5}  {f}");
    }
    for m in &t.missed {
        say!("image fuzz: missed by the checker: {m}");
    }
    say!(
        "image fuzz: {} mutants ({} also through the binaries and gefsd) in {:.1} s; {} violations",
        t.done,
        t.external,
        t0.elapsed().as_secs_f64(),
        t.violations.len()
    );
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
    let want = if only.is_some() { 1 } else { n };
    assert_eq!(t.done, want, "every mutant ran");
    if only.is_none() {
        for c in Class::ALL {
            let k: u64 = t
                .by_class
                .iter()
                .filter(|((x, _), _)| *x == c)
                .map(|(_, v)| v)
                .sum();
            assert!(k >= n / 16, "only {k} mutants of {}", c.name());
        }
    }
}

/// A worker: run the slice the parent gives in `GEFS_FUZZ_WORKER`, one
/// line per mutant on standard output.
#[test]
#[ignore = "run by image_fuzz in a child process"]
fn worker() {
    let Ok(spec) = std::env::var("GEFS_FUZZ_WORKER") else {
        eprintln!("worker runs only under image_fuzz");
        return;
    };
    let p: Vec<&str> = spec.split(' ').collect();
    let [img, seed, from, n, step, only] = p[..] else {
        panic!("bad worker spec {spec}");
    };
    let num = |s: &str| s.parse::<u64>().expect("number");
    let (seed, from, n, step) = (num(seed), num(from), num(n), num(step));
    let only: Option<u64> = only
        .parse::<i64>()
        .ok()
        .filter(|&o| o >= 0)
        .map(|o| o as u64);
    let lim = rustix::process::Rlimit {
        current: Some(MEM_LIMIT),
        maximum: Some(MEM_LIMIT),
    };
    rustix::process::setrlimit(rustix::process::Resource::As, lim).expect("RLIMIT_AS");
    let ix = Indexed::new(load(Path::new(img)));
    // Sandboxes in memory where there is a tmpfs: an export creates a few
    // hundred files per mutant.
    let shm = Path::new("/dev/shm");
    let work = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let mut out = std::io::stdout().lock();
    for i in (from..n).step_by(step as usize) {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        writeln!(out, "fuzz start {i}").expect("stdout");
        out.flush().expect("flush");
        let m = ix.mutant(&mut rng_for(seed, i));
        let sb = work.path().join(format!("m{i}"));
        let ip = sb.join("ip");
        std::fs::create_dir_all(&ip).expect("sandbox");
        let mut r = in_process(&ix, &m, &ip);
        let ext = (i % EXTERNAL_EVERY == 0) || only.is_some();
        if ext && r.is_ok() {
            let ex = sb.join("ext");
            std::fs::create_dir_all(&ex).expect("sandbox");
            let file = ex.join("img");
            save(&m.dev, &file);
            if let Err(v) = external(&file, &ex).and_then(|()| serve_walk(&file, &ex)) {
                r = Err(v);
            }
        }
        let _ = std::fs::remove_dir_all(&sb);
        let line = match r {
            Ok(o) => {
                let detail = match &o {
                    Outcome::Missed(d) => d.replace(['\t', '\n'], " "),
                    _ => String::new(),
                };
                format!(
                    "fuzz done {i}\t{}\t{}\t{}\t{}\t{detail}",
                    m.class.name(),
                    m.field.replace('\t', " "),
                    o.name(),
                    u8::from(ext)
                )
            }
            Err(v) => format!(
                "fuzz violation mutant {i} ({} block {:#x}, {}): {}",
                m.class.name(),
                m.addr,
                m.field,
                v.replace('\n', " ")
            ),
        };
        writeln!(out, "{line}").expect("stdout");
    }
    writeln!(out, "fuzz end").expect("stdout");
    out.flush().expect("flush");
}

/// Serve `img` read-only with `gefsd -R -s` and walk and read everything
/// through the 9P client. Any Rerror is a clean answer; gefsd dying by a
/// signal, or not answering, is a violation.
fn serve_walk(img: &Path, dir: &Path) -> Result<(), String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let theirs2 = theirs.try_clone().map_err(|e| e.to_string())?;
    let errf = std::fs::File::create(dir.join("err")).map_err(|e| e.to_string())?;
    let mut child = Command::new(gefs_tests::cli::bin_path("gefsd"))
        .args(["-R", "-s", "-m", "16M", "-n", "fuzz", "-f"])
        .arg(img)
        .current_dir(dir)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs2)))
        .stderr(Stdio::from(errf))
        .spawn()
        .map_err(|e| format!("gefsd: {e}"))?;
    ours.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut c = Client::new(ours);
    let walked = walk_9p(&mut c);
    drop(c);
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let t0 = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("gefsd did not stop on SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    if st.code().is_none() {
        return Err(format!("gefsd killed by {st}: {err}"));
    }
    walked.map_err(|e| format!("gefsd: {e}; {err}"))
}

/// Attach to `main` and to `dump`, walk every directory, read every file
/// (capped). Rerrors are answers; only a stream failure is returned.
fn walk_9p(c: &mut Client<UnixStream>) -> Result<(), String> {
    let io = |e: ClientError| -> Result<(), String> {
        match e {
            ClientError::Rerror(_) => Ok(()),
            // gefsd refused the image and exited: checked by the caller.
            ClientError::Closed => Ok(()),
            ClientError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(())
            }
            e => Err(e.to_string()),
        }
    };
    if let Err(e) = c.version(64 << 10) {
        return io(e);
    }
    let mut next_fid = 10u32;
    for (root, aname) in [(1u32, ""), (2, "dump")] {
        if let Err(e) = c.attach(root, &me(), aname) {
            io(e)?;
            continue;
        }
        let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
        let mut visited = 0;
        while let Some((fid, depth)) = stack.pop() {
            visited += 1;
            if visited > 2000 {
                break;
            }
            let dfid = next_fid;
            next_fid += 1;
            if let Err(e) = c.walk(fid, dfid, &[]) {
                io(e)?;
                continue;
            }
            let entries = match c.open(dfid, 0).and_then(|_| c.read_dir(dfid)) {
                Ok(x) => x,
                Err(e) => {
                    io(e)?;
                    continue;
                }
            };
            let _ = c.clunk(dfid);
            for st in entries.iter().take(500) {
                let f = next_fid;
                next_fid += 1;
                match c.walk(fid, f, &[st.name.as_str()]) {
                    Ok(q) if q.len() == 1 => {}
                    Ok(_) => continue,
                    Err(e) => {
                        io(e)?;
                        continue;
                    }
                }
                if st.mode & 0x8000_0000 != 0 {
                    if depth < 64 {
                        stack.push((f, depth + 1));
                    }
                    continue;
                }
                match c.open(f, 0) {
                    Ok(_) => {
                        let mut off = 0u64;
                        while off < (256 << 10) {
                            match c.read(f, off, 32 << 10) {
                                Ok(b) if b.is_empty() => break,
                                Ok(b) => off += b.len() as u64,
                                Err(e) => {
                                    io(e)?;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => io(e)?,
                }
                let _ = c.clunk(f);
            }
        }
    }
    Ok(())
}
