//! diod's 9P2000.L clients against the real gefsd binary, over loopback TCP, authenticated by
//! peer credentials (no `-A`): `diodls` (plain and long listings, through a directory opened
//! for reading), `diodcat` (small and multi-megabyte files, compared byte for byte) and
//! `diodload` (reads and writes, and getattrs, on the `ctl` label it attaches). The clients
//! attach by uid, so the image's users table gives this process's uid to its user. The image
//! checks clean afterwards. Debian's `diod` is installed if missing (`gefs_tests::diod`).

use std::time::{Duration, Instant};

use gefs_tests::daemon::{self, Daemon, Opts};
use gefs_tests::diod;
use gefsd::client::Client;
use gefsd::proto::{dmode, omode};

const LIMIT: Duration = Duration::from_secs(120);

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4096) as u8).collect()
}

/// Put `bytes` at `path` (a name under the root of `aname`) through a 9P2000 client.
fn put(c: &mut Client<std::os::unix::net::UnixStream>, dir: &[&str], name: &str, bytes: &[u8]) {
    c.walk(0, 9, dir).expect("walk");
    c.create(9, name, 0o644, omode::ORDWR).expect("create");
    let chunk = gefsd::proto::iounit(c.msize()) as usize;
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        c.write(9, (i * chunk) as u64, piece).expect("write");
    }
    c.clunk(9).expect("clunk");
}

/// Serve a fresh image whose users table maps this uid to its user, with a `ctl` label holding
/// diodload's `zero` and `null`, and a few files in `main`.
fn serve(dir: &std::path::Path) -> Daemon {
    diod::ensure();
    let me = gefsd::server::current_user();
    let img = dir.join("gefs.img");
    daemon::format(&img, "1G", &me);
    let d = Daemon::start(
        dir,
        &img,
        &Opts {
            noauth: false,
            ..Opts::default()
        },
    );
    let mut c = Client::unix(&d.sock).expect("connect");
    c.version(1 << 20).expect("version");
    c.attach(0, &me, "%adm").expect("attach %adm");
    c.walk(0, 1, &["users"]).expect("walk users");
    c.open(1, omode::OWRITE | omode::OTRUNC)
        .expect("open users");
    c.write(1, 0, diod::users_table(&me).as_bytes())
        .expect("write users");
    c.clunk(1).expect("clunk");
    c.clunk(0).expect("clunk");
    d.console_ok(&["users"]);
    d.console_ok(&["snap", "-m", "main", "ctl"]);
    c.attach(0, &me, "ctl").expect("attach ctl");
    put(&mut c, &[], "zero", &vec![0; 2 << 20]);
    put(&mut c, &[], "null", &[]);
    c.clunk(0).expect("clunk");
    c.attach(0, &me, "").expect("attach main");
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, "d", dmode::DMDIR | 0o755, omode::OREAD)
        .expect("mkdir");
    c.clunk(1).expect("clunk");
    put(&mut c, &["d"], "hello", b"hello from gefs\n");
    put(&mut c, &["d"], "big", &data(3 << 20));
    c.walk(0, 1, &["d"]).expect("walk");
    c.create(1, "sub", dmode::DMDIR | 0o700, omode::OREAD)
        .expect("mkdir");
    c.clunk(1).expect("clunk");
    c.clunk(0).expect("clunk");
    d
}

#[test]
fn diodls_diodcat_and_diodload_against_gefsd() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = serve(dir.path());
    let server = d.tcp.to_string();
    let s = server.as_str();
    // diodls: the root, a directory, and a long listing (stat of every entry by walking from
    // the open directory).
    let root = diod::run_ok("diodls", &["-s", s, "-a", "main"], LIMIT);
    assert_eq!(root.lines().collect::<Vec<_>>(), ["d"], "{root}");
    let ls = diod::run_ok("diodls", &["-s", s, "-a", "main", "d"], LIMIT);
    assert_eq!(
        ls.lines().collect::<Vec<_>>(),
        ["big", "hello", "sub"],
        "{ls}"
    );
    let long = diod::run_ok("diodls", &["-s", s, "-a", "main", "-l", "d"], LIMIT);
    let rows: Vec<&str> = long.lines().collect();
    assert_eq!(rows.len(), 5, "{long}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("drwx------") && r.ends_with(" sub")),
        "{long}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("-rw-r--r--") && r.contains(" 16 ") && r.ends_with(" hello")),
        "{long}"
    );
    // diodcat: small and large, at diod's default msize and at 1 MiB.
    let hello = diod::run_ok("diodcat", &["-s", s, "-a", "main", "d/hello"], LIMIT);
    assert_eq!(hello, "hello from gefs\n");
    for msize in ["65536", "1048576"] {
        let out = diod::run(
            "diodcat",
            &["-s", s, "-a", "main", "-m", msize, "d/big"],
            LIMIT,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == data(3 << 20),
            "d/big read back differs at msize {msize}"
        );
    }
    // A missing file is an error, not empty output.
    let missing = diod::run("diodcat", &["-s", s, "-a", "main", "d/nope"], LIMIT);
    assert!(!missing.status.success());
    // diodload: I/O and getattrs on ctl/zero and ctl/null.
    let io = diod::load(s, 65536, 2, 2, false);
    let ga = diod::load(s, 65536, 2, 2, true);
    eprintln!("diodload against gefsd, 2 threads, 2 s: {io:?}, getattr {ga:?}");
    assert!(io.ops > 0 && ga.ops > 0, "{io:?} {ga:?}");
    let log = d.log();
    d.stop();
    daemon::check_clean(&dir.path().join("gefs.img"));
    assert!(!log.contains("panicked"), "{log}");
    eprintln!("diod clients stage: {:.1} s", t0.elapsed().as_secs_f64());
}
