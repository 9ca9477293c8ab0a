//! A throwaway Linux guest in QEMU whose kernel mounts gefsd with its own 9P client (v9fs),
//! for `tests/tests/linux_v9fs.rs`; how it fits together is in `tests/vm/README.md`.
//!
//! [`Guest::prepare`] runs `tests/vm/setup`, which fetches Debian's kernel, busybox-static
//! and QEMU once into the target directory and packs the guest's initramfs.
//! [`Guest::boot`] starts QEMU with no network device at all: each of [`PORTS`]
//! virtio-serial ports is a Unix socket served by a [`LazyRelay`], which connects to gefsd's
//! socket only when the guest first writes to the port. QEMU opens every port's socket when
//! it starts, and gefsd closes a connection that has not attached within its frame timeout
//! (30 s); connecting at the first byte keeps ports the guest mounts late, or never, from
//! being dropped or holding a connection open.
//!
//! The guest prints one result per line on its serial console (`ok ...`, `FAIL ...`,
//! `verified: ...`, `time ...`) and then `GEFSVM-EXIT N`; [`Run`] holds that transcript.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;

/// The users table of every stage (the image is formatted with alice as administrator). The
/// 9P2000 mounts attach as `uname=root`; 9P2000.L's attach by Linux uid (`n_uname`), which
/// gefsd takes to be the table's id, and Linux's root (0) has the superuser's powers only as
/// a member of adm. So root is id 0 and in adm, `none` moves to id 2, and bob (1000) is
/// there to own files.
pub const USERS: &str =
    "-1:adm::alice,root\n0:root:root:\n1:alice:alice:\n2:none::\n1000:bob:bob:\n";

/// Replace adm's `/users` with `text` (through the `adm` attach, as the administrator `admin`)
/// and have gefsd reload the table.
pub fn write_users(d: &Daemon, admin: &str, text: &str) {
    let mut c = gefsd::client::Client::unix(&d.sock).expect("connect to gefsd");
    c.version(8192).expect("Tversion");
    c.attach(0, admin, "adm").expect("attach adm");
    c.walk(0, 1, &["users"]).expect("walk users");
    c.open(1, gefsd::proto::omode::OWRITE | gefsd::proto::omode::OTRUNC)
        .expect("open users to write");
    let n = c.write(1, 0, text.as_bytes()).expect("write users");
    assert_eq!(n as usize, text.len(), "short write of users");
    c.clunk(1).expect("clunk");
    let out = d.console_ok(&["users"]);
    assert!(out.contains("loaded"), "console users: {out}");
}

/// Virtio-serial ports the guest gets (`gefs0` ...); each carries one mount.
pub const PORTS: usize = 6;

/// The kernel and initramfs, ready to boot.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The uncompressed kernel.
    pub vmlinux: PathBuf,
    /// The initramfs (newc cpio).
    pub initrd: PathBuf,
    /// qboot, QEMU's minimal firmware, when the QEMU package has it (boots faster than
    /// SeaBIOS).
    pub bios: Option<PathBuf>,
}

impl Guest {
    /// Run `tests/vm/setup` into `vmdir`, with `tree` copied into the guest as
    /// `/data/tree`. Panics with setup's message when a package cannot be had: the stage
    /// fails rather than skips.
    pub fn prepare(repo: &Path, vmdir: &Path, tree: &Path) -> Guest {
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(repo.join("tests/vm/setup"))
            .arg(vmdir)
            .arg(tree)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs tests/vm/setup");
        assert!(
            out.status.success(),
            "tests/vm/setup failed (it installs QEMU and downloads Debian's kernel and \
             busybox-static; the guest test cannot run without them):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "linux_v9fs: guest prepared in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let bios = PathBuf::from("/usr/share/qemu/qboot.rom");
        Guest {
            vmlinux: vmdir.join("vmlinux"),
            initrd: vmdir.join("initrd.cpio"),
            bios: bios.exists().then_some(bios),
        }
    }

    /// Boot the guest with `cmdline` appended to the kernel's command line, its ports
    /// relayed to the 9P server listening on `server` (a Unix socket); wait for it to power
    /// off (at most `limit`). Every console line but the `ok ...` ones is echoed to standard
    /// error as it comes, prefixed with `tag`.
    pub fn boot(
        &self,
        dir: &Path,
        server: &Path,
        cmdline: &str,
        tag: &str,
        limit: Duration,
    ) -> Run {
        let servers = [Server::Unix(server.to_path_buf())];
        self.boot_to(dir, &servers, cmdline, tag, limit)
    }

    /// [`Guest::boot`] with port `gefsI` relayed to `servers[I % servers.len()]`.
    pub fn boot_to(
        &self,
        dir: &Path,
        servers: &[Server],
        cmdline: &str,
        tag: &str,
        limit: Duration,
    ) -> Run {
        let t0 = Instant::now();
        let mut relays = Vec::new();
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-accel", "tcg", "-m", "1024", "-smp", "1"])
            .args([
                "-nographic",
                "-nodefaults",
                "-no-reboot",
                "-serial",
                "stdio",
            ])
            .arg("-kernel")
            .arg(&self.vmlinux)
            .arg("-initrd")
            .arg(&self.initrd)
            .arg("-append")
            .arg(format!("console=ttyS0 loglevel=4 panic=-1 {cmdline}"))
            .args(["-device", "virtio-serial-pci,id=vs"]);
        if let Some(b) = &self.bios {
            qemu.arg("-bios").arg(b);
        }
        for i in 0..PORTS {
            let sock = dir.join(format!("port{i}.sock"));
            let server = servers.get(i % servers.len().max(1)).cloned();
            relays.push(LazyRelay::start(&sock, server));
            qemu.arg("-chardev")
                .arg(format!("socket,id=c{i},path={}", sock.display()))
                .arg("-device")
                .arg(format!("virtserialport,bus=vs.0,chardev=c{i},name=gefs{i}"));
        }
        let mut child = qemu
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 starts (tests/vm/setup installs it)");
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        let etx = tx.clone();
        let tag_out = tag.to_string();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if !line.starts_with("ok ") {
                    eprintln!("[{tag_out}] {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            for l in s.lines() {
                let _ = etx.send(format!("qemu: {l}"));
            }
        });
        let mut lines = Vec::new();
        let mut timed_out = false;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if t0.elapsed() > limit {
                timed_out = true;
                let _ = child.kill();
                break;
            }
            while let Ok(l) = rx.try_recv() {
                lines.push(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().expect("wait for qemu");
        let _ = reader.join();
        lines.extend(rx.try_iter());
        drop(relays);
        Run {
            lines,
            status: status.code(),
            timed_out,
            secs: t0.elapsed().as_secs_f64(),
        }
    }
}

/// What one boot printed.
#[derive(Debug)]
pub struct Run {
    /// The console's lines (and QEMU's standard error, prefixed `qemu: `).
    pub lines: Vec<String>,
    /// QEMU's exit code.
    pub status: Option<i32>,
    /// Whether the guest was killed at the time limit.
    pub timed_out: bool,
    /// Wall time, boot to power-off.
    pub secs: f64,
}

impl Run {
    /// The guest script's exit status (`GEFSVM-EXIT N`), if it got that far.
    pub fn exit(&self) -> Option<u32> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("GEFSVM-EXIT "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Lines starting with `prefix`, without it.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter_map(move |l| l.strip_prefix(prefix))
    }

    /// The whole transcript.
    pub fn transcript(&self) -> String {
        self.lines.join("\n")
    }
}

/// Where a port's relay connects.
#[derive(Debug, Clone)]
pub enum Server {
    /// A Unix socket (gefsd's).
    Unix(PathBuf),
    /// A TCP address (diod's: it listens on TCP only).
    Tcp(SocketAddr),
}

/// A relayed connection's stream, of either kind.
#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(s: &Server) -> std::io::Result<Stream> {
        Ok(match s {
            Server::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
            Server::Tcp(a) => Stream::Tcp(TcpStream::connect(a)?),
        })
    }

    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A Unix socket for one QEMU chardev that connects to the server at the first byte.
#[derive(Debug)]
pub struct LazyRelay {
    path: PathBuf,
    _accept: JoinHandle<()>,
}

impl LazyRelay {
    /// Listen on `path`; relay its one connection to `server` once data arrives (with no
    /// server, the port leads nowhere: the guest's first byte closes it).
    pub fn start(path: &Path, server: Option<Server>) -> LazyRelay {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).expect("bind a port socket");
        let accept = std::thread::spawn(move || {
            let Ok((guest, _)) = l.accept() else { return };
            if let Some(server) = server {
                relay(guest, &server);
            }
        });
        LazyRelay {
            path: path.to_path_buf(),
            _accept: accept,
        }
    }
}

impl Drop for LazyRelay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Wait for `guest`'s first bytes, then connect to `server` and copy both ways until either
/// side closes.
fn relay(mut guest: UnixStream, server: &Server) {
    let mut first = vec![0u8; 64 * 1024];
    let n = match guest.read(&mut first) {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let Ok(mut srv) = Stream::connect(server) else {
        eprintln!("linux_v9fs: relay cannot connect to {server:?}");
        return;
    };
    let (Ok(g2), Ok(mut s2)) = (guest.try_clone(), srv.try_clone()) else {
        return;
    };
    let mut g2 = Stream::Unix(g2);
    if let Some(dir) = std::env::var_os("GEFS_VM_TRACE") {
        first.truncate(n);
        trace::relay(
            std::io::Cursor::new(first).chain(guest),
            srv,
            g2,
            s2,
            Path::new(&dir),
        );
        return;
    }
    if srv.write_all(&first[..n]).is_err() {
        return;
    }
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut guest, &mut srv);
        let _ = srv.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut s2, &mut g2);
    let _ = g2.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// `GEFS_VM_TRACE=DIR`: every relayed connection also writes the 9P messages it carries,
/// decoded, one a line, to `DIR/conn-N.trace` (for debugging by hand; see the README).
mod trace {
    use std::fs::File;
    use std::io::{BufWriter, Read, Write};
    use std::net::Shutdown;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use gefsd::proto::{decode_r_in, decode_t_in, read_frame, Dialect, Tmsg, MSIZE_LIMIT};

    use super::Stream;

    static CONNS: AtomicUsize = AtomicUsize::new(0);

    /// Copy frames both ways, writing each one decoded to the connection's trace file.
    pub fn relay<G: Read + Send + 'static>(
        guest: G,
        srv: Stream,
        g2: Stream,
        s2: Stream,
        dir: &Path,
    ) {
        let n = CONNS.fetch_add(1, Ordering::Relaxed);
        let Ok(f) = File::create(dir.join(format!("conn-{n}.trace"))) else {
            return;
        };
        let out = Arc::new(Mutex::new(BufWriter::new(f)));
        let dotl = Arc::new(AtomicBool::new(false));
        let (o2, d2) = (out.clone(), dotl.clone());
        let up = std::thread::spawn(move || pump(guest, srv, true, &o2, &d2));
        pump(s2, g2, false, &out, &dotl);
        let _ = up.join();
        let flushed = out.lock().map(|mut o| o.flush());
        drop(flushed);
    }

    fn pump<R: Read>(
        mut from: R,
        mut to: Stream,
        tmsg: bool,
        out: &Mutex<BufWriter<File>>,
        dotl: &AtomicBool,
    ) {
        let mut buf = Vec::new();
        while let Ok(Some(frame)) = read_frame(&mut from, MSIZE_LIMIT, &mut buf) {
            if to.write_all(frame).is_err() {
                break;
            }
            let dialect = if dotl.load(Ordering::Relaxed) {
                Dialect::L
            } else {
                Dialect::P9
            };
            let line = if tmsg {
                match decode_t_in(frame, MSIZE_LIMIT, dialect) {
                    Ok((tag, m)) => {
                        if let Tmsg::Version { version, .. } = &m {
                            dotl.store(version == "9P2000.L", Ordering::Relaxed);
                        }
                        format!("-> {tag} {m:?}")
                    }
                    Err(e) => format!("-> undecodable: {e}"),
                }
            } else {
                match decode_r_in(frame, MSIZE_LIMIT, dialect) {
                    Ok((tag, m)) => format!("<- {tag} {m:?}"),
                    Err(e) => format!("<- undecodable: {e}"),
                }
            };
            let line: String = line.chars().take(400).collect();
            if let Ok(mut o) = out.lock() {
                let _ = writeln!(o, "{line}");
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    }
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Where [`Guest::prepare`] keeps the guest: `vm/` in the target directory
/// (`CARGO_TARGET_DIR`, relative to the workspace root, or `target`).
pub fn vmdir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { repo().join(t) })
        .unwrap_or_else(|| repo().join("target"))
        .join("vm")
}
