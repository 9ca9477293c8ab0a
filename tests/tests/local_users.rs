//! Issue 8, finding 9 (reliability plan S1, S7): the 9P Unix socket is created mode 0666 and
//! the console's mode 0600, whatever the umask, and a second local user can connect and attach
//! only as itself.
//!
//! The test runs as root (as CI does) with a umask of 077, so a socket created with the umask
//! would be closed to everyone else. gefsd authenticates by peer credentials (`-A` off); the
//! image's administrator is root, who adds an unprivileged login (`nobody`, or the first
//! non-root account) to adm's `/users`. Then a client process run under that uid (the attach
//! probe, `src/bin/gefs-attach-probe.rs`, copied where that user can execute it) connects over
//! the Unix socket and loopback TCP: attaching as itself works, as root does not; and `gefsd
//! console` run under that uid is refused.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use gefs_tests::cli::bin_path;
use gefs_tests::daemon::{self, Daemon, Opts};
use gefsd::client::Client;
use gefsd::proto::{omode, MSIZE_DEFAULT};

/// An unprivileged account: `nobody` if there is one, else the first with a uid above 0.
fn other_account() -> Option<(u32, u32, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let accounts: Vec<(u32, u32, String)> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
                (*f.first()?).to_string(),
            ))
        })
        .filter(|(uid, _, _)| *uid > 0)
        .collect();
    accounts
        .iter()
        .find(|(_, _, n)| n == "nobody")
        .or_else(|| accounts.first())
        .cloned()
}

/// Add `line` to adm's `/users` as root (attached to `adm`), then reload the table.
fn add_user(d: &Daemon, line: &str) {
    let mut c = Client::unix(&d.sock).expect("connect as root");
    c.version(MSIZE_DEFAULT).expect("version");
    c.attach(0, "root", "adm").expect("attach adm as root");
    c.walk(0, 1, &["users"]).expect("walk users");
    c.open(1, omode::ORDWR).expect("open users");
    let mut text = c.read_all(1).expect("read users");
    text.extend_from_slice(line.as_bytes());
    text.push(b'\n');
    c.write(1, 0, &text).expect("write users");
    c.clunk(1).expect("clunk");
    let out = d.console_ok(&["users"]);
    assert!(out.contains("loaded"), "{out}");
}

/// Copy workspace binary `name` into `dir` (which the other user can reach, unlike a target
/// directory under root's home).
fn reachable(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(bin_path(name), &to).expect("copy the binary");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    to
}

/// Run the attach probe under `uid`/`gid`: its JSON answer.
fn attach_as(probe: &Path, uid: u32, gid: u32, addr: &str, user: &str) -> serde_json::Value {
    let out = Command::new(probe)
        .args([addr, user])
        .uid(uid)
        .gid(gid)
        .output()
        .expect("run the attach probe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe as uid {uid}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).expect("a JSON line")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_second_local_user_connects_and_attaches_only_as_itself() {
    if !rustix::process::getuid().is_root() {
        eprintln!("local_users: SKIPPED: needs root to run a client under a second uid");
        return;
    }
    let (uid, gid, name) = other_account().expect("an unprivileged account in /etc/passwd");
    // Sockets made with the umask would be closed to other users.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let img = dir.path().join("gefs.img");
    daemon::format(&img, "64M", "root");
    let d = Daemon::start(
        dir.path(),
        &img,
        &Opts {
            noauth: false,
            ..Opts::default()
        },
    );
    assert_eq!(mode(&d.sock), 0o666, "the 9P socket");
    assert_eq!(mode(&d.console), 0o600, "the console socket");
    add_user(&d, &format!("{uid}:{name}::"));
    let bins = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(bins.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let probe = reachable("gefs-attach-probe", bins.path());
    let unix = format!("unix:{}", d.sock.display());
    let tcp = format!("tcp:127.0.0.1:{}", d.tcp.port());
    for addr in [&unix, &tcp] {
        let v = attach_as(&probe, uid, gid, addr, &name);
        assert_eq!(
            v["ok"],
            true,
            "{name} as itself over {addr}: {v}\n{}",
            d.log()
        );
        let v = attach_as(&probe, uid, gid, addr, "root");
        assert_eq!(v["ok"], false, "{name} as root over {addr}: {v}");
    }
    // The console is the server owner's only: the socket's mode keeps the other user out.
    let out = Command::new(reachable("gefsd", bins.path()))
        .args(["console", "--socket"])
        .arg(&d.console)
        .arg("help")
        .uid(uid)
        .gid(gid)
        .output()
        .expect("gefsd console");
    assert!(!out.status.success(), "console as {name}: {out:?}");
    // Root, the server's owner, still gets in.
    assert!(UnixStream::connect(&d.console).is_ok());
    d.stop();
    daemon::check_clean(&img);
}
