//! The real binary: default image creation, SIGTERM after a final commit, SIGKILL keeping the
//! last acknowledged sync, console halt, -R opening the image read-only, and the refusal to
//! listen on non-loopback addresses.

mod common;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::me;
use gefsd::client::Client;
use gefsd::proto::{omode, Stat};

const BIN: &str = env!("CARGO_BIN_EXE_gefsd");

fn gefsd(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("USER", me())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gefsd")
}

/// Start gefsd on `dir/9p.sock` with `extra` arguments; wait until it serves.
fn serve(dir: &Path, extra: &[&str]) -> (Child, PathBuf) {
    let sock = dir.join("9p.sock");
    let a = format!("unix!{}", sock.display());
    let mut args = vec!["-m", "32", "-a", &a];
    args.extend_from_slice(extra);
    let mut child = gefsd(dir, &args);
    let t0 = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("gefsd exited {st}: {}", stderr(&mut child));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "gefsd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, sock)
}

fn stderr(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(e) = c.stderr.as_mut() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn client(sock: &Path) -> Client<UnixStream> {
    let mut c = Client::unix(sock).expect("connect");
    c.version(gefsd::proto::MSIZE_DEFAULT).expect("version");
    c.attach(0, &me(), "")
        .expect("attach as myself (peer credentials)");
    c
}

fn signal(c: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(c.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

fn wait(c: &mut Child) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            return st;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "gefsd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_file(c: &mut Client<UnixStream>, name: &str, data: &[u8]) {
    c.walk(0, 1, &[]).expect("clone");
    c.create(1, name, 0o644, omode::ORDWR).expect("create");
    c.write(1, 0, data).expect("write");
    c.clunk(1).expect("clunk");
}

fn read_file(c: &mut Client<UnixStream>, name: &str) -> Option<Vec<u8>> {
    c.walk(0, 2, &[name]).ok()?;
    c.open(2, omode::OREAD).expect("open");
    let d = c.read_all(2).expect("read");
    c.clunk(2).expect("clunk");
    Some(d)
}

fn check_clean(img: &Path) {
    let dev = gefs_core::image::open_device(img, true).expect("open image");
    let rep = gefs_core::check::check(dev.as_ref(), &Default::default()).expect("check");
    assert!(rep.is_clean(), "{:?}", rep.problems);
}

#[test]
fn default_image_sigterm_and_halt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, sock) = serve(dir.path(), &[]);
    assert!(dir.path().join("gefs.img").exists());
    assert!(
        dir.path().join("gefs.cmd").exists(),
        "console beside the unix listener"
    );
    let mut c = client(&sock);
    write_file(&mut c, "hello", b"hello, world");
    drop(c);
    signal(&child, rustix::process::Signal::TERM);
    let st = wait(&mut child);
    let err = stderr(&mut child);
    assert!(st.success(), "{st}: {err}");
    assert!(
        err.contains("created") && err.contains("first administrator"),
        "{err}"
    );
    assert!(err.contains("stopped after commit"), "{err}");
    assert!(!sock.exists(), "socket removed at exit");
    // The change made just before SIGTERM was committed by the stop.
    let (mut child, sock) = serve(dir.path(), &["-f", "gefs.img"]);
    let mut c = client(&sock);
    assert_eq!(
        read_file(&mut c, "hello").as_deref(),
        Some(&b"hello, world"[..])
    );
    write_file(&mut c, "second", b"2");
    // Console halt: commits first, then the process exits 0.
    let out = Command::new(BIN)
        .args(["console", "--socket"])
        .arg(dir.path().join("gefs.cmd"))
        .arg("halt")
        .output()
        .expect("console");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("synced") && text.contains("halting"),
        "{text}"
    );
    assert!(wait(&mut child).success());
    check_clean(&dir.path().join("gefs.img"));
    let (mut child, sock) = serve(dir.path(), &["-f", "gefs.img"]);
    let mut c = client(&sock);
    assert_eq!(read_file(&mut c, "second").as_deref(), Some(&b"2"[..]));
    drop(c);
    // The image is locked: a second server on it is refused.
    let mut second = gefsd(
        dir.path(),
        &["-m", "16", "-f", "gefs.img", "-a", "tcp!127.0.0.1!0"],
    );
    let st = wait(&mut second);
    let err = stderr(&mut second);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("in use by another process"), "{err}");
    signal(&child, rustix::process::Signal::INT);
    assert!(wait(&mut child).success());
}

#[test]
fn sigkill_keeps_the_last_acknowledged_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, sock) = serve(dir.path(), &[]);
    let mut c = client(&sock);
    write_file(&mut c, "acked", b"durable");
    c.wstat(0, &Stat::dont_touch()).expect("sync");
    write_file(&mut c, "maybe", b"not acknowledged");
    signal(&child, rustix::process::Signal::KILL);
    let _ = wait(&mut child);
    check_clean(&dir.path().join("gefs.img"));
    let (mut child, sock) = serve(dir.path(), &["-f", "gefs.img"]);
    let mut c = client(&sock);
    assert_eq!(read_file(&mut c, "acked").as_deref(), Some(&b"durable"[..]));
    drop(c);
    signal(&child, rustix::process::Signal::TERM);
    assert!(wait(&mut child).success());
    check_clean(&dir.path().join("gefs.img"));
}

/// The open flags of the image in process `pid` (from /proc/PID/fdinfo).
fn image_open_flags(pid: u32, img: &Path) -> Option<u32> {
    let img = std::fs::canonicalize(img).ok()?;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let e = e.ok()?;
        if std::fs::read_link(e.path()).ok()? == img {
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_str()?))
                    .ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            return u32::from_str_radix(flags.trim(), 8).ok();
        }
    }
    None
}

#[test]
fn read_only_opens_the_image_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("ro.img");
    drop(gefs_core::image::format_image(&img, Some(64 << 20), &me(), false).expect("format"));
    let before = std::fs::read(&img).expect("read image");
    let (mut child, sock) = serve(dir.path(), &["-R", "-f", "ro.img"]);
    let flags = image_open_flags(child.id(), &img).expect("image open in gefsd");
    assert_eq!(flags & 3, 0, "O_RDONLY (reference defect #34)");
    let mut c = client(&sock);
    c.walk(0, 1, &[]).expect("clone");
    let e = c
        .create(1, "x", 0o644, omode::OWRITE)
        .expect_err("create on -R");
    assert_eq!(e.ename(), Some("read only file system"));
    c.wstat(0, &Stat::dont_touch())
        .expect("a sync of a read-only server succeeds");
    drop(c);
    signal(&child, rustix::process::Signal::TERM);
    assert!(wait(&mut child).success());
    assert!(
        std::fs::read(&img).expect("read image") == before,
        "nothing written"
    );
}

#[test]
fn refuses_non_loopback_listeners() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, want) in [
        (&["-A", "-a", "tcp!0.0.0.0!5640"][..], "-A"),
        (&["-a", "tcp!*!5640"][..], "not a loopback address"),
    ] {
        let mut child = gefsd(dir.path(), args);
        let st = wait(&mut child);
        let err = stderr(&mut child);
        assert_eq!(st.code(), Some(2), "{err}");
        assert!(
            err.contains("refusing to listen") && err.contains(want),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("gefs.img").exists(),
        "refused before touching any image"
    );
}
