//! The read path under faults, through gefsd (issue 8; reliability plan T6 and T7).
//!
//! T6: an image is populated through the real gefsd (files of many sizes in four directories,
//! a sparse file, a 4 MiB file, a snapshot, then changes after it so that deadlists exist).
//! For every block class (superblocks, allocation log, snapshot tree, file-tree leaves and
//! pivots, data, deadlists) a few blocks are damaged in the image file (a bit flipped, or the
//! block zeroed), and gefsd serves the damaged image read-only. Every file and directory of
//! `main` and of the snapshot is then read over 9P and compared byte for byte with what was
//! written: each answer must be exactly right, or an Rerror naming corruption ("block
//! contents corrupted"); gefsd must log the damaged block's address and the path read. A
//! damaged allocation log may instead make gefsd refuse to start, naming the damage. A
//! damaged deadlist is read when its snapshot is deleted: that delete must fail naming the
//! damage, and the server must go on serving the rest. Silent answers: 0.
//!
//! T7: EIO from the device under an in-process gefsd (gefsd's library over gefs-core's
//! faulty device): a failed read answers Rerror "i/o error" for that request only; a failed
//! write makes the next sync an Rerror and latches the store read-only (no sync is
//! acknowledged afterwards, writes are refused), while reads go on being served; the device
//! then opens at the last acknowledged commit and checks clean.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gefs_core::device::{FaultyDev, IoKind, MemDev};
use gefs_core::format::BLKSZ;
use gefs_core::fs::errno::{EIO, EROFS};
use gefs_core::fs::Fs;
use gefs_core::store::{Config, Store};
use gefs_tests::blocks::classes;
use gefs_tests::daemon::{self, Daemon, Opts, ADMIN};
use gefsd::client::Client;
use gefsd::proto::{dmode, omode, Dialect, Stat, MSIZE_DEFAULT};
use gefsd::server::{self, Options, Server};

/// Corruption reaches 9P2000 clients as Linux's string for EBADMSG (what ext4 and XFS return
/// for a bad checksum), so a Linux client gets that errno; gefsd's log names the block.
const CORRUPT: &str = "Bad message";

type Files = BTreeMap<String, Vec<u8>>;

fn pattern(name: &str, gen: u8, len: usize) -> Vec<u8> {
    let h = name
        .bytes()
        .fold(gen, |a, b| a.wrapping_mul(33).wrapping_add(b));
    (0..len)
        .map(|i| h.wrapping_add((i / 512) as u8).wrapping_mul(7))
        .collect()
}

fn attached<S: std::io::Read + std::io::Write>(s: S, aname: &str) -> Result<Client<S>, String> {
    let mut c = Client::new(s);
    c.version(MSIZE_DEFAULT).map_err(|e| e.to_string())?;
    c.attach(0, ADMIN, aname)
        .map_err(|e| e.ename().map_or_else(|| e.to_string(), String::from))?;
    Ok(c)
}

fn put<S: std::io::Read + std::io::Write>(c: &mut Client<S>, path: &str, data: &[u8]) {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dirs: Vec<&str> = dir.split('/').filter(|d| !d.is_empty()).collect();
    c.walk(0, 1, &dirs).expect("walk to the directory");
    c.create(1, name, 0o644, omode::OWRITE).expect("create");
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        c.write(1, (i as u64) << 20, piece).expect("write");
    }
    c.clunk(1).expect("clunk");
}

fn sync<S: std::io::Read + std::io::Write>(c: &mut Client<S>) {
    c.wstat(0, &Stat::dont_touch()).expect("sync");
}

/// Populate `img` through gefsd: returns what `main` and snapshot `s1` hold.
fn populate(dir: &Path, img: &Path) -> (Files, Files) {
    daemon::format(img, "64M", ADMIN);
    let d = Daemon::start(dir, img, &Opts::default());
    let mut c = attached(UnixStream::connect(&d.sock).expect("connect"), "").expect("attach");
    let mut main = Files::new();
    for k in 0..4 {
        c.walk(0, 1, &[]).expect("clone");
        c.create(1, &format!("d{k}"), dmode::DMDIR | 0o755, omode::OREAD)
            .expect("mkdir");
        c.clunk(1).expect("clunk");
    }
    for i in 0..48usize {
        let name = format!("d{}/f{i}", i % 4);
        let data = pattern(&name, 1, (i * 37 % 17 + 1) * 8192 + i);
        put(&mut c, &name, &data);
        main.insert(name, data);
    }
    let big = pattern("big", 1, 4 << 20);
    put(&mut c, "big", &big);
    main.insert("big".into(), big);
    // A sparse file: 8 KiB, a hole to 1 MiB, 8 KiB.
    let mut sparse = pattern("sparse", 1, (1 << 20) + 8192);
    sparse[8192..1 << 20].fill(0);
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "sparse", 0o644, omode::OWRITE).expect("create");
    c.write(1, 0, &sparse[..8192]).expect("write");
    c.write(1, 1 << 20, &sparse[1 << 20..]).expect("write");
    c.clunk(1).expect("clunk");
    main.insert("sparse".into(), sparse);
    sync(&mut c);
    d.console_ok(&["snap", "main", "s1"]);
    let s1 = main.clone();
    // Changes after the snapshot free blocks the snapshot still holds: deadlists.
    let first = pattern("big", 2, 1 << 20);
    c.walk(0, 1, &["big"]).expect("walk");
    c.open(1, omode::OWRITE).expect("open");
    c.write(1, 0, &first).expect("write");
    c.clunk(1).expect("clunk");
    if let Some(b) = main.get_mut("big") {
        b[..1 << 20].copy_from_slice(&first);
    }
    for i in (0..48).filter(|i| i % 8 == 0) {
        let name = format!("d0/f{i}");
        c.walk(0, 1, &["d0", &format!("f{i}")]).expect("walk");
        c.remove(1).expect("remove");
        main.remove(&name);
    }
    sync(&mut c);
    drop(c);
    d.stop();
    (main, s1)
}

/// How one tree read back.
#[derive(Debug, Default)]
struct Outcome {
    exact: usize,
    refused: usize,
    wrong: Vec<String>,
}

/// Read every file and directory of `want` through attach `aname` and compare.
fn read_back(sock: &Path, aname: &str, want: &Files, out: &mut Outcome) {
    let mut note = |r: Result<bool, String>, what: &str| match r {
        Ok(true) => out.exact += 1,
        Ok(false) => out.wrong.push(format!("{aname}:{what}: wrong answer")),
        Err(e) if e == CORRUPT => out.refused += 1,
        Err(e) => out
            .wrong
            .push(format!("{aname}:{what}: unexpected error {e:?}")),
    };
    let ename =
        |e: gefsd::client::ClientError| e.ename().map_or_else(|| e.to_string(), String::from);
    let mut c = match attached(UnixStream::connect(sock).expect("connect"), aname) {
        Ok(c) => c,
        Err(e) => {
            for p in want.keys() {
                note(Err(e.clone()), p);
            }
            return;
        }
    };
    let mut dirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in want.keys() {
        let (d, n) = p.rsplit_once('/').unwrap_or(("", p));
        dirs.entry(d.to_string()).or_default().push(n.to_string());
        if !d.is_empty() {
            dirs.entry(String::new()).or_default().push(d.to_string());
        }
    }
    for (d, names) in &mut dirs {
        names.sort();
        names.dedup();
        let parts: Vec<&str> = d.split('/').filter(|x| !x.is_empty()).collect();
        let r = c
            .walk(0, 2, &parts)
            .and_then(|_| c.open(2, omode::OREAD))
            .and_then(|_| c.read_dir(2))
            .map_err(ename);
        let _ = c.clunk(2);
        let r = r.map(|st| {
            let mut got: Vec<String> = st.into_iter().map(|s| s.name).collect();
            got.sort();
            got == *names
        });
        note(r, &format!("{d}/ (listing)"));
    }
    for (p, data) in want {
        let parts: Vec<&str> = p.split('/').collect();
        let r = c
            .walk(0, 2, &parts)
            .and_then(|_| c.open(2, omode::OREAD))
            .and_then(|_| c.read_all(2))
            .map_err(ename);
        let _ = c.clunk(2);
        note(r.map(|got| got == *data), p);
    }
}

/// Flip a bit of, or zero, the block at `addr` of `img`; returns the original bytes.
fn damage(img: &Path, addr: u64, fault: &str, n: usize) -> Vec<u8> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open image");
    let mut orig = vec![0u8; BLKSZ];
    f.read_exact_at(&mut orig, addr).expect("read block");
    let mut bad = orig.clone();
    match fault {
        "flip" => bad[(n * 977 + 13) % 600] ^= 0x10,
        _ => bad.fill(0),
    }
    f.write_all_at(&bad, addr).expect("damage");
    orig
}

fn restore(img: &Path, addr: u64, orig: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open image");
    f.write_all_at(orig, addr).expect("restore");
}

#[test]
fn damaged_blocks_of_a_served_image_are_refused_never_read_wrong() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    let (main, s1) = populate(dir.path(), &img);
    let dev = gefs_core::image::open_device(&img, true).expect("open image");
    let cls = classes(dev);
    for want in [
        "log",
        "snap leaf",
        "fs leaf",
        "fs pivot",
        "data",
        "deadlist",
    ] {
        assert!(
            cls.get(want).is_some_and(|s| !s.is_empty()),
            "the image has no {want} block: {:?}",
            cls.keys()
        );
    }
    let ro = Opts {
        cache: "8M".into(),
        extra: vec!["-R".into()],
        ..Opts::default()
    };
    let mut table: BTreeMap<(&str, &str), (usize, usize, usize, usize)> = BTreeMap::new();
    let mut silent = Vec::new();
    let mut trials = 0;
    for (class, addrs) in &cls {
        let picks: Vec<u64> = {
            let v: Vec<u64> = addrs.iter().copied().collect();
            let step = (v.len() / 3).max(1);
            v.into_iter().step_by(step).take(3).collect()
        };
        for (n, &a) in picks.iter().enumerate() {
            for fault in ["flip", "zero"] {
                trials += 1;
                let orig = damage(&img, a, fault, n);
                let cell = table.entry((class, fault)).or_default();
                match Daemon::try_start(dir.path(), &img, &ro) {
                    Err(e) => {
                        // Refusing to serve is a clean outcome only if the damage is named.
                        if e.contains("hash mismatch") || e.contains("corrupt") {
                            cell.3 += 1;
                        } else {
                            silent.push(format!("{class} {a:#x} {fault}: start failed: {e}"));
                        }
                    }
                    Ok(d) => {
                        let mut out = Outcome::default();
                        read_back(&d.sock, "", &main, &mut out);
                        read_back(&d.sock, "s1", &s1, &mut out);
                        let names_it = |log: &str| {
                            log.lines()
                                .any(|l| l.contains(&format!("block {a:#x}")) && l.contains(":/"))
                        };
                        // gefsd's standard error is read in the background: give it a moment.
                        let t = Instant::now();
                        while out.refused > 0
                            && !names_it(&d.log())
                            && t.elapsed() < Duration::from_secs(5)
                        {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let log = d.log();
                        d.stop();
                        cell.0 += out.exact;
                        cell.1 += out.refused;
                        if out.refused > 0 {
                            cell.2 += 1;
                            let named = names_it(&log);
                            if !named {
                                silent.push(format!(
                                    "{class} {a:#x} {fault}: refused, but the log does not \
                                     name the block and a path:\n{log}"
                                ));
                            }
                        }
                        for w in out.wrong {
                            silent.push(format!("{class} {a:#x} {fault}: {w}"));
                        }
                    }
                }
                restore(&img, a, &orig);
            }
        }
    }
    println!("read faults (T6 through gefsd): {trials} damaged blocks");
    println!("  class         fault  reads-exact  reads-refused  trials-refusing  open-refused");
    for ((class, fault), (exact, refused, trials, open)) in &table {
        println!("  {class:<13} {fault:<6} {exact:>11} {refused:>14} {trials:>16} {open:>13}");
    }
    println!(
        "  silent: {}; {:.1} s",
        silent.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(silent.is_empty(), "{}", silent.join("\n"));
    // Damage to file data or file trees must actually be met by the reads.
    for class in ["data", "fs leaf", "fs pivot"] {
        let met: usize = table
            .iter()
            .filter(|((c, _), _)| *c == class)
            .map(|(_, v)| v.2)
            .sum();
        assert!(met > 0, "no damaged {class} block was ever refused");
    }
    daemon::check_clean(&img);
}

#[test]
fn a_damaged_deadlist_fails_its_snapshot_delete_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    let (main, _) = populate(dir.path(), &img);
    let dev = gefs_core::image::open_device(&img, true).expect("open image");
    let cls = classes(dev);
    let heads: Vec<u64> = cls
        .get("deadlist")
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    assert!(!heads.is_empty(), "no deadlist");
    for (n, &a) in heads.iter().enumerate() {
        damage(&img, a, "flip", n);
    }
    let d = Daemon::start(dir.path(), &img, &Opts::default());
    let (ok, out, err) = d.console(&["snap", "-d", "s1"]);
    assert!(!ok, "deleting s1 over a damaged deadlist succeeded: {out}");
    assert!(
        err.contains("hash mismatch") || err.contains("corrupt") || out.contains("corrupt"),
        "the refusal does not name the damage: {out}{err}"
    );
    let mut o = Outcome::default();
    read_back(&d.sock, "", &main, &mut o);
    assert!(o.wrong.is_empty() && o.refused == 0, "{o:?}");
    println!(
        "read faults: damaged deadlist: snap -d s1 refused ({}), main still reads exactly ({} \
         files and listings)",
        format!("{out}{err}").trim(),
        o.exact
    );
    d.stop();
}

/// An in-process gefsd over a faulty in-memory device with a small cache.
fn faulty_server() -> (Arc<MemDev>, Arc<FaultyDev<Arc<MemDev>>>, Server) {
    let mem = Arc::new(MemDev::new(64 << 20));
    let fo = gefs_core::testing::format_opts_for(&server::current_user(), 4 << 20);
    drop(Store::format(mem.clone(), &fo).expect("format"));
    let dev = Arc::new(FaultyDev::new(mem.clone()));
    let cfg = Config {
        cache_bytes: 1 << 20,
        read_only: false,
    };
    let store = Store::open(dev.clone(), &cfg).expect("open");
    let fs = Fs::new(Arc::new(store), false).expect("fs");
    let opts = Options {
        sync_every: Duration::from_secs(3600),
        retain_every: None,
        ..Options::default()
    };
    (mem, dev, Server::start(Arc::new(fs), opts).expect("server"))
}

fn client(s: &Server) -> Client<UnixStream> {
    let mut c = Client::new(s.connect().expect("connect"));
    c.version(MSIZE_DEFAULT).expect("version");
    c.attach(0, &server::current_user(), "").expect("attach");
    c
}

fn get(c: &mut Client<UnixStream>, name: &str) -> Result<Vec<u8>, String> {
    let r = c
        .walk(0, 2, &[name])
        .and_then(|_| c.open(2, omode::OREAD))
        .and_then(|_| c.read_all(2))
        .map_err(|e| e.ename().map_or_else(|| e.to_string(), String::from));
    let _ = c.clunk(2);
    r
}

#[test]
fn eio_through_gefsd_refuses_the_request_latches_writes_and_keeps_serving_reads() {
    let (mem, dev, srv) = faulty_server();
    let mut c = client(&srv);
    let a = pattern("a", 3, 3 << 20);
    let b = pattern("b", 4, 3 << 20);
    put(&mut c, "a", &a);
    put(&mut c, "b", &b);
    sync(&mut c);
    let acked = srv.core().store().commit_gen();
    // A failed read fails that request only: the cache (1 MiB) cannot hold `a`.
    dev.fail_nth(IoKind::Read, 1, false);
    assert_eq!(get(&mut c, "a"), Err("i/o error".to_string()));
    assert!(!srv.core().store().is_read_only(), "a read error latched");
    assert_eq!(get(&mut c, "a").as_deref(), Ok(&a[..]));
    // A failed write: the next sync is refused and the store latches read-only.
    dev.fail_nth(IoKind::Write, 1, false);
    put(&mut c, "c", &pattern("c", 5, 64 << 10));
    let e = c
        .wstat(0, &Stat::dont_touch())
        .expect_err("a sync over a failed write");
    assert!(e.ename().is_some(), "{e}");
    assert!(srv.core().store().is_read_only(), "not latched read-only");
    // No later sync is acknowledged, nothing is written, and reads go on.
    assert!(
        c.wstat(0, &Stat::dont_touch()).is_err(),
        "a sync acknowledged after the failure"
    );
    c.walk(0, 1, &[]).expect("clone");
    let e = c
        .create(1, "d", 0o644, omode::OWRITE)
        .expect_err("create after the latch");
    assert_eq!(e.ename(), Some("Input/output error"));
    let _ = c.clunk(1);
    assert_eq!(get(&mut c, "a").as_deref(), Ok(&a[..]));
    assert_eq!(get(&mut c, "b").as_deref(), Ok(&b[..]));
    drop(c);
    let _ = srv.stop();
    // The device holds the last acknowledged commit, which checks clean.
    let s = Store::open(
        mem.clone(),
        &Config {
            cache_bytes: 2 << 20,
            read_only: true,
        },
    )
    .expect("reopen");
    assert_eq!(s.commit_gen(), acked, "reopened at another commit");
    drop(s);
    let p = gefs_tests::checker::problems(&mem);
    assert!(p.is_empty(), "{p:?}");
    println!(
        "read faults (T7 through gefsd): read EIO -> Rerror \"i/o error\", next read exact; \
         write EIO -> sync refused, store read-only, later syncs refused, reads served; \
         reopened at acknowledged commit {acked}"
    );
}

/// A 9P2000.L client attached as the current user on fid 0, over `s`'s socket pair.
fn lclient(s: &Server) -> Client<UnixStream> {
    let mut c = Client::new(s.connect().expect("connect"));
    c.version_in(MSIZE_DEFAULT, Dialect::L).expect("9P2000.L");
    c.attach_l(0, &server::current_user(), "", None)
        .expect("attach");
    c
}

/// A device failure and a read-only server are told apart in both dialects: after a failed
/// flush latched the store, changes get "Input/output error" over 9P2000 and EIO over
/// 9P2000.L (a Tfsync too); a server started read-only answers "read only file system" and
/// EROFS, and its syncs succeed.
#[test]
fn a_failed_device_says_eio_and_a_read_only_server_erofs_in_both_dialects() {
    const O_RDWR_CREAT: u32 = 0o2 | 0o100;
    let (mem, dev, srv) = faulty_server();
    let mut c = client(&srv);
    let mut l = lclient(&srv);
    put(&mut c, "a", b"durable");
    sync(&mut c);
    dev.fail_nth(IoKind::Flush, 1, false);
    put(&mut c, "b", b"lost");
    l.walk(0, 1, &["a"]).expect("walk");
    let e = l.fsync(1).expect_err("a Tfsync over a failed flush");
    assert_eq!(e.errno(), Some(EIO), "{e}");
    assert!(srv.core().store().has_failed(), "not latched");
    assert_eq!(l.fsync(1).expect_err("a later Tfsync").errno(), Some(EIO));
    l.walk(0, 2, &[]).expect("clone");
    let e = l
        .lcreate(2, "c", O_RDWR_CREAT, 0o644, 0)
        .expect_err("Tlcreate after the latch");
    assert_eq!(e.errno(), Some(EIO), "{e}");
    c.walk(0, 1, &[]).expect("clone");
    let e = c
        .create(1, "c", 0o644, omode::OWRITE)
        .expect_err("Tcreate after the latch");
    assert_eq!(e.ename(), Some("Input/output error"));
    let e = c
        .wstat(0, &Stat::dont_touch())
        .expect_err("a sync after the latch");
    assert_eq!(e.ename(), Some("Input/output error"));
    drop((c, l));
    let _ = srv.stop();

    let store = Store::open(
        mem.clone(),
        &Config {
            cache_bytes: 1 << 20,
            read_only: true,
        },
    )
    .expect("reopen read-only");
    let fs = Fs::new(Arc::new(store), false).expect("fs");
    let opts = Options {
        read_only: true,
        ..Options::default()
    };
    let srv = Server::start(Arc::new(fs), opts).expect("server");
    let mut c = client(&srv);
    let mut l = lclient(&srv);
    assert_eq!(get(&mut c, "a").as_deref(), Ok(&b"durable"[..]));
    l.walk(0, 1, &[]).expect("clone");
    let e = l
        .lcreate(1, "c", O_RDWR_CREAT, 0o644, 0)
        .expect_err("Tlcreate on a read-only server");
    assert_eq!(e.errno(), Some(EROFS), "{e}");
    l.walk(0, 2, &["a"]).expect("walk");
    l.fsync(2).expect("a Tfsync on a read-only server succeeds");
    c.walk(0, 1, &[]).expect("clone");
    let e = c
        .create(1, "c", 0o644, omode::OWRITE)
        .expect_err("Tcreate on a read-only server");
    assert_eq!(e.ename(), Some("read only file system"));
    assert!(!srv.core().store().has_failed());
    drop((c, l));
    let _ = srv.stop();
    println!(
        "failed vs read-only through gefsd: after a failed flush, Tcreate -> \"Input/output \
         error\", Tlcreate and Tfsync -> EIO; on a read-only server, Tcreate -> \"read only \
         file system\", Tlcreate -> EROFS, Tfsync ok"
    );
}
