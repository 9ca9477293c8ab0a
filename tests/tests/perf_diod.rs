//! Comparison figures, not assertions (ignored by default; it takes about a minute):
//!
//!     cargo test --release -p gefs-tests --test perf_diod -- --ignored --nocapture
//!
//! One client, diod's `diodload` (9P2000.L; Debian's `diod` is installed if missing), against
//! - gefsd (`-m 256M`, a 4 GiB image in a temp directory), whose `ctl` label holds a 2 MiB
//!   `zero` file and an empty `null` file: each operation reads msize bytes of `zero` at offset
//!   0 and writes msize bytes to `null` at offset 0 (a real copy-on-write, committed every 5 s);
//! - diod (`diod -f -n -e DIR -l 127.0.0.1:PORT`, exporting a temp directory on the same disk),
//!   whose `ctl` file system diodload always attaches: `zero` and `null` there are synthetic
//!   (diodload cannot name another tree), so diod's figures are its protocol path without a
//!   disk, an upper bound for it;
//!
//! at msize 64 KiB and 1 MiB, 4 threads, 5 s per run: read and write MiB/s, and getattrs/s
//! (`diodload -g`, on `null`). Then, since diodload cannot reach a directory of diod's, the same
//! workload from one 9P2000.L client of our own (`gefsd::client`, 4 connections) against gefsd
//! and against diod's exported directory, where `zero` and `null` are real files on the same
//! disk. Prints two tables.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, Daemon, Opts};
use gefs_tests::diod::{self, Load};
use gefsd::client::Client;
use gefsd::proto::dotl::getattr;
use gefsd::proto::{omode, Dialect};

const THREADS: u32 = 4;
const SECS: u32 = 5;

fn row(name: &str, msize: u32, io: Load, ga: Load) {
    println!(
        "{name:>6} msize {msize:>8}: read {:>5} MB/s  write {:>5} MB/s  ({:>6} io ops/s)  getattr {:>7}/s",
        io.read_mb, io.write_mb, io.ops, ga.ops
    );
}

#[test]
#[ignore = "figures for the closing note: about a minute, needs diod (installed if missing)"]
fn diodload_gefsd_and_diod() {
    diod::ensure();
    let me = gefsd::server::current_user();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "4G", &me);
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            cache: "256M".into(),
            noauth: false,
            ..Opts::default()
        },
    );
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    c.attach(0, &me, "%adm").expect("attach %adm");
    c.walk(0, 1, &["users"]).expect("walk");
    c.open(1, omode::OWRITE | omode::OTRUNC).expect("open");
    c.write(1, 0, diod::users_table(&me).as_bytes())
        .expect("write");
    c.clunk(1).expect("clunk");
    c.clunk(0).expect("clunk");
    d.console_ok(&["users"]);
    d.console_ok(&["snap", "-m", "main", "ctl"]);
    c.attach(0, &me, "ctl").expect("attach ctl");
    for (name, len) in [("zero", 2usize << 20), ("null", 0)] {
        c.walk(0, 1, &[]).expect("clone");
        c.create(1, name, 0o666, omode::ORDWR).expect("create");
        let chunk = gefsd::proto::iounit(c.msize()) as usize;
        let zeros = vec![0u8; chunk];
        let mut off = 0;
        while off < len {
            let n = chunk.min(len - off);
            c.write(1, off as u64, &zeros[..n]).expect("write");
            off += n;
        }
        c.clunk(1).expect("clunk");
    }
    drop(c);
    let export = dir.path().join("export");
    std::fs::create_dir_all(&export).expect("export dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut srv = Command::new(diod::bin("diod"))
        .args(["-f", "-n", "-e", "ctl", "-e"])
        .arg(&export)
        .args(["-l", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start diod");
    std::thread::sleep(Duration::from_millis(500));
    let gefsd = d.tcp.to_string();
    println!("diodload, {THREADS} threads, {SECS} s per run");
    for msize in [65_536, 1 << 20] {
        for (name, server) in [("gefsd", gefsd.as_str()), ("diod", listen.as_str())] {
            eprintln!("{name} at msize {msize}...");
            let io = diod::load(server, msize, THREADS, SECS, false);
            let ga = diod::load(server, msize, THREADS, SECS, true);
            row(name, msize, io, ga);
        }
    }
    // The same workload on real files of both, from our own 9P2000.L client.
    std::fs::write(export.join("zero"), vec![0u8; 2 << 20]).expect("zero");
    std::fs::write(export.join("null"), b"").expect("null");
    let uid = rustix::process::geteuid().as_raw();
    let exp = export.display().to_string();
    let listen_addr: SocketAddr = listen.parse().expect("address");
    println!("gefsd::client (9P2000.L), {THREADS} connections, {SECS} s per run, real files");
    for msize in [65_536, 1 << 20] {
        for (name, addr, aname) in [("gefsd", d.tcp, "ctl"), ("diod", listen_addr, exp.as_str())] {
            let io = rust_load(addr, aname, uid, msize, false);
            let ga = rust_load(addr, aname, uid, msize, true);
            row(name, msize, io, ga);
        }
    }
    // The diod this test started, by its id.
    let _ = srv.kill();
    let _ = srv.wait();
    d.stop();
    daemon::check_clean(&img);
}

/// diodload's workload from `THREADS` connections of our own client: read msize bytes of
/// `zero` and write them to `null`, both at offset 0, or getattr `null`.
fn rust_load(addr: SocketAddr, aname: &str, uid: u32, msize: u32, ga: bool) -> Load {
    let stop = Instant::now() + Duration::from_secs(u64::from(SECS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let aname = aname.to_string();
            std::thread::spawn(move || {
                let mut c = Client::tcp(addr).expect("connect");
                c.version_in(msize, Dialect::L).expect("version");
                c.attach_l(0, "", &aname, Some(uid)).expect("attach");
                let n = gefsd::proto::iounit(c.msize());
                let (mut ops, mut bytes) = (0u64, 0u64);
                c.walk(0, 2, &["null"]).expect("walk null");
                if ga {
                    while Instant::now() < stop {
                        c.getattr(2, getattr::BASIC).expect("getattr");
                        ops += 1;
                    }
                    return (ops, 0);
                }
                c.walk(0, 1, &["zero"]).expect("walk zero");
                c.lopen(1, 0).expect("open zero");
                c.lopen(2, 1).expect("open null");
                while Instant::now() < stop {
                    let b = c.read(1, 0, n).expect("read");
                    c.write(2, 0, &b).expect("write");
                    bytes += b.len() as u64;
                    ops += 1;
                }
                (ops, bytes)
            })
        })
        .collect();
    let (mut ops, mut bytes) = (0, 0);
    for t in threads {
        let (o, b) = t.join().expect("load thread");
        ops += o;
        bytes += b;
    }
    let secs = u64::from(SECS);
    Load {
        ops: ops / secs,
        read_mb: (bytes / secs) >> 20,
        write_mb: (bytes / secs) >> 20,
    }
}
