//! T8 through gefsd (issue 8): a full disk, with 8 writers over 9P.
//!
//! On a 128 MiB image served by the real gefsd:
//! 1. a file is written and snapshotted (console `snap`), then removed from `main`, so that
//!    only the snapshot holds it;
//! 2. 8 writers, each on its own connection, write 1 MiB files (in 256 KiB Twrites) until
//!    each gets an error, which must be the clean "file system is full" (never read-only,
//!    never another error);
//! 3. while full: the snapshot is deleted and every writer's files but its first are removed,
//!    all of which must succeed;
//! 4. one null wstat (a commit), and right after it a 4 MiB write must succeed: the space is
//!    back within one commit of the remove (`df` shows it);
//! 5. the writers fill the disk again; one null wstat acknowledges everything written; then
//!    a few more writes (unacknowledged by any sync), SIGKILL, restart: every file covered by
//!    the acknowledged sync reads back exactly, and gefs-check passes.
//!
//! Prints the figures: writers, bytes written, space back after the remove (and in how many
//! commits), files checked after the kill.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gefs_tests::daemon::{self, attached, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::{omode, Stat};

const WRITERS: usize = 8;
const MIB: usize = 1 << 20;
const PIECE: usize = 256 << 10;
const FULL: &str = "file system is full";

/// The byte at `off` of file `name`.
fn byte(name: &str, off: usize) -> u8 {
    let h = name
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    h.wrapping_add((off / 4096) as u8)
}

fn contents(name: &str, len: usize) -> Vec<u8> {
    (0..len).map(|i| byte(name, i)).collect()
}

/// Write `name` (`len` bytes, in PIECE Twrites). Ok(()) if every write was acknowledged;
/// Err(ename) at the first refusal (the file stays, possibly short).
fn write_file(c: &mut Client<UnixStream>, name: &str, len: usize) -> Result<(), String> {
    let e = |x: gefsd::client::ClientError| x.ename().map_or_else(|| x.to_string(), String::from);
    c.walk(0, 1, &[]).map_err(e)?;
    if let Err(x) = c.create(1, name, 0o644, omode::OWRITE) {
        let _ = c.clunk(1);
        return Err(e(x));
    }
    let data = contents(name, len);
    let mut r = Ok(());
    for (i, piece) in data.chunks(PIECE).enumerate() {
        if let Err(x) = c.write(1, (i * PIECE) as u64, piece) {
            r = Err(e(x));
            break;
        }
    }
    c.clunk(1).map_err(e)?;
    r
}

fn remove(c: &mut Client<UnixStream>, name: &str) {
    c.walk(0, 1, &[name]).expect("walk");
    c.remove(1)
        .unwrap_or_else(|x| panic!("remove {name} on a full disk: {x}"));
}

fn sync(c: &mut Client<UnixStream>) {
    c.wstat(0, &Stat::dont_touch()).expect("null wstat (sync)");
}

/// Free bytes, from console `df --json`.
fn free(d: &Daemon) -> u64 {
    let out = d.console_ok(&["--json", "df"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("df JSON");
    v["free"]
        .as_u64()
        .unwrap_or_else(|| panic!("no free figure in {out}"))
}

/// What one writer did until the disk was full.
#[derive(Debug, Default, Clone)]
struct Filled {
    /// Files whose every write was acknowledged.
    whole: Vec<String>,
    /// The file whose write was refused, if any.
    partial: Option<String>,
    bytes: usize,
    error: String,
}

/// 8 writers fill the disk with 1 MiB files named `{round}-{w}-{i}`.
fn fill(sock: &Path, round: &str) -> Vec<Filled> {
    let out = Arc::new(Mutex::new(vec![Filled::default(); WRITERS]));
    let hs: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (sock, out, round) = (sock.to_path_buf(), out.clone(), round.to_string());
            std::thread::spawn(move || {
                let mut c = attached(&sock);
                let mut f = Filled::default();
                for i in 0.. {
                    let name = format!("{round}-{w}-{i}");
                    match write_file(&mut c, &name, MIB) {
                        Ok(()) => {
                            f.whole.push(name);
                            f.bytes += MIB;
                        }
                        Err(e) => {
                            f.partial = Some(name);
                            f.error = e;
                            break;
                        }
                    }
                }
                out.lock().expect("lock")[w] = f;
            })
        })
        .collect();
    for h in hs {
        h.join().expect("writer");
    }
    let v = out.lock().expect("lock").clone();
    v
}

#[test]
fn eight_writers_fill_the_disk_and_get_the_space_back() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "128M", ADMIN);
    let opts = Opts {
        cache: "16M".into(),
        ..Opts::default()
    };
    let mut d = Daemon::start(dir.path(), &img, &opts);
    let mut c = attached(&d.sock);
    // 1. Data only a snapshot holds.
    write_file(&mut c, "pinned", 8 * MIB).expect("write pinned");
    sync(&mut c);
    d.console_ok(&["snap", "main", "s1"]);
    remove(&mut c, "pinned");
    sync(&mut c);
    // 2. Fill.
    let filled = fill(&d.sock, "a");
    let written: usize = filled.iter().map(|f| f.bytes).sum();
    for (w, f) in filled.iter().enumerate() {
        assert!(
            f.error.contains(FULL),
            "writer {w} stopped on {:?}, not {FULL:?}",
            f.error
        );
        assert!(!f.whole.is_empty(), "writer {w} wrote nothing");
    }
    assert!(written >= 80 * MIB, "only {} MiB fit", written / MIB);
    // Still writable in principle: the error is "full", a metadata change works.
    c.walk(0, 1, &["a-0-0"]).expect("walk");
    let st = Stat {
        mode: 0o600,
        ..Stat::dont_touch()
    };
    c.wstat(1, &st).expect("chmod on a full disk");
    c.clunk(1).expect("clunk");
    let low = free(&d);
    // 3. Deletions while full.
    d.console_ok(&["snap", "-d", "s1"]);
    let mut removed = 0;
    for f in &filled {
        for n in f.whole.iter().skip(1) {
            remove(&mut c, n);
            removed += 1;
        }
        if let Some(n) = &f.partial {
            remove(&mut c, n);
        }
    }
    // 4. One commit, then a 4 MiB write at once.
    sync(&mut c);
    let back = free(&d).saturating_sub(low);
    let deleted = removed * MIB + 8 * MIB;
    write_file(&mut c, "after", 4 * MIB)
        .unwrap_or_else(|e| panic!("4 MiB right after remove + one commit: {e}"));
    let mut commits = 1;
    while (back as usize) * 100 < deleted * 95 && commits < 4 {
        sync(&mut c);
        commits += 1;
    }
    let back_final = free(&d).saturating_sub(low) + 4 * MIB as u64;
    assert!(
        (back as usize) * 100 >= deleted * 95,
        "one commit after removing {} MiB, only {} MiB back",
        deleted / MIB,
        back / MIB as u64
    );
    // 5. Full again; one acknowledged sync; a few unacknowledged writes; SIGKILL.
    let refilled = fill(&d.sock, "b");
    for f in &refilled {
        assert!(f.error.contains(FULL), "refill stopped on {:?}", f.error);
    }
    sync(&mut c);
    let acked: Vec<String> = filled
        .iter()
        .filter_map(|f| f.whole.first())
        .chain(refilled.iter().flat_map(|f| &f.whole))
        .cloned()
        .collect();
    // Not covered by any acknowledged sync: may or may not survive.
    let _ = write_file(&mut c, "unacked", 2 * MIB);
    drop(c);
    d.kill();
    let (code, report) = daemon::check(&img);
    assert_eq!(
        code,
        Some(0),
        "gefs-check after SIGKILL on a full disk: {report}"
    );
    d = Daemon::start(dir.path(), &img, &opts);
    let mut c = attached(&d.sock);
    let mut checked = 0;
    for n in acked.iter().chain(std::iter::once(&"after".to_string())) {
        c.walk(0, 1, &[n])
            .unwrap_or_else(|e| panic!("{n} lost after SIGKILL: {e}"));
        c.open(1, omode::OREAD).expect("open");
        let got = c.read_all(1).expect("read");
        c.clunk(1).expect("clunk");
        let len = if n == "after" { 4 * MIB } else { MIB };
        assert!(got == contents(n, len), "{n}: wrong contents after SIGKILL");
        checked += 1;
    }
    drop(c);
    d.stop();
    daemon::check_clean(&img);
    println!(
        "full disk: {WRITERS} writers, {} MiB written until full ({} files), errors all \
         {FULL:?}; removed {} MiB + snapshot s1 (8 MiB) while full; {} MiB back after 1 commit \
         ({} MiB after {commits}); 4 MiB write right after: ok; refilled {} MiB; SIGKILL while \
         full: {checked} acknowledged files intact; {:.1} s",
        written / MIB,
        filled.iter().map(|f| f.whole.len()).sum::<usize>(),
        removed,
        back / MIB as u64,
        back_final / MIB as u64,
        refilled.iter().map(|f| f.bytes).sum::<usize>() / MIB,
        t0.elapsed().as_secs_f64()
    );
}
