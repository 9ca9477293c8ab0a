//! Shared helpers for gefsd's integration tests: an in-process server on an in-memory device,
//! and clients attached to it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gefsd::client::Client;
use gefsd::proto::dotl::{getattr, Attr};
use gefsd::proto::{omode, Dialect, Stat, MSIZE_DEFAULT};
use gefsd::server::{self, Options, Server};

/// Linux open flags (9P2000.L `Tlopen`, `Tlcreate`).
pub const O_RDONLY: u32 = 0;
/// Write only.
pub const O_WRONLY: u32 = 1;
/// Read and write.
pub const O_RDWR: u32 = 2;
/// Create.
pub const O_CREAT: u32 = 0o100;
/// With `O_CREAT`: the file must not exist.
pub const O_EXCL: u32 = 0o200;
/// Truncate.
pub const O_TRUNC: u32 = 0o1000;
/// Must be a directory.
pub const O_DIRECTORY: u32 = 0o200_000;
/// `Tunlinkat` of a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// The first administrator's id in a new image (and its group's).
pub const ME: u32 = 1;

/// The user the in-process server knows (its first administrator).
pub fn me() -> String {
    server::current_user()
}

/// Options for tests: no retention pass (labels stay predictable), fast syncs.
pub fn opts(noauth: bool) -> Options {
    Options {
        noauth,
        retain_every: None,
        sync_every: Duration::from_millis(500),
        ..Options::default()
    }
}

/// A server with `-A`, so tests may attach as any user.
pub fn start() -> (Server, SocketAddr) {
    start_with(opts(true))
}

/// A server with the given options.
pub fn start_with(o: Options) -> (Server, SocketAddr) {
    server::spawn_for_test(o).unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// A versioned TCP client.
pub fn client(addr: SocketAddr) -> Client<TcpStream> {
    let mut c = Client::tcp(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{e}"));
    c.version(gefsd::proto::MSIZE_DEFAULT)
        .unwrap_or_else(|e| panic!("version: {e}"));
    c
}

/// A client attached as the first administrator to `main` on fid 0.
pub fn attached(addr: SocketAddr) -> Client<TcpStream> {
    let mut c = client(addr);
    c.attach(0, &me(), "")
        .unwrap_or_else(|e| panic!("attach: {e}"));
    c
}

/// Create `name` under fid 0 on `fid`, write `data`, clunk.
pub fn put(c: &mut Client<TcpStream>, fid: u32, name: &str, data: &[u8]) {
    c.walk(0, fid, &[]).unwrap_or_else(|e| panic!("{e}"));
    c.create(fid, name, 0o664, omode::ORDWR)
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    if !data.is_empty() {
        assert_eq!(
            c.write(fid, 0, data).unwrap_or_else(|e| panic!("{e}")),
            data.len() as u32
        );
    }
    c.clunk(fid).unwrap_or_else(|e| panic!("{e}"));
}

/// Walk to `path` from fid 0, open for reading, read it all, clunk.
pub fn get(c: &mut Client<TcpStream>, fid: u32, path: &[&str]) -> Vec<u8> {
    c.walk(0, fid, path).unwrap_or_else(|e| panic!("walk: {e}"));
    c.open(fid, omode::OREAD)
        .unwrap_or_else(|e| panic!("open: {e}"));
    let d = c.read_all(fid).unwrap_or_else(|e| panic!("read: {e}"));
    c.clunk(fid).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// The Rerror string of a failed call, or a panic.
pub fn ename<T: std::fmt::Debug>(r: gefsd::client::Result<T>) -> String {
    match r {
        Err(e) => e
            .ename()
            .map(str::to_string)
            .unwrap_or_else(|| panic!("not an Rerror: {e}")),
        Ok(v) => panic!("expected an Rerror, got {v:?}"),
    }
}

/// A wstat changing only the name.
pub fn rename_to(name: &str) -> Stat {
    Stat {
        name: name.into(),
        ..Stat::dont_touch()
    }
}

/// Stop a server, asserting a clean final commit.
pub fn stop(s: Server) {
    s.stop().unwrap_or_else(|e| panic!("stop: {e}"));
}

/// A TCP client that negotiated 9P2000.L.
pub fn lclient(a: SocketAddr) -> Client<TcpStream> {
    let mut c = Client::tcp(a).expect("connect");
    c.version_in(MSIZE_DEFAULT, Dialect::L).expect("9P2000.L");
    c
}

/// A 9P2000.L client attached as the first administrator on fid 0.
pub fn lattached(a: SocketAddr) -> Client<TcpStream> {
    let mut c = lclient(a);
    c.attach_l(0, &me(), "", None).expect("attach");
    c
}

/// The errno of a failed 9P2000.L call, or a panic.
pub fn errno<T: std::fmt::Debug>(r: gefsd::client::Result<T>) -> u32 {
    match r {
        Err(e) => e.errno().unwrap_or_else(|| panic!("not an Rlerror: {e}")),
        Ok(v) => panic!("expected an Rlerror, got {v:?}"),
    }
}

/// Every attribute of `fid`.
pub fn attr(c: &mut Client<TcpStream>, fid: u32) -> Attr {
    c.getattr(fid, getattr::ALL).expect("getattr")
}

/// Replace the users table (as `%adm`, over 9P2000) and reload it.
pub fn set_users(s: &Server, a: SocketAddr, table: &str) {
    let mut p = client(a);
    p.attach(0, &me(), "%adm").expect("attach %adm");
    p.walk(0, 1, &["users"]).expect("walk");
    p.open(1, omode::OWRITE | omode::OTRUNC).expect("open");
    p.write(1, 0, table.as_bytes()).expect("write");
    p.clunk(1).expect("clunk");
    s.core().fs.reload_users().expect("reload");
}

/// The ordinary user (not an administrator) of the 9P2000.L tests' users tables.
pub const BOB: u32 = 1000;

/// A 9P2000.L client attached by Linux uid `uid`.
pub fn as_uid(a: SocketAddr, uid: u32) -> Client<TcpStream> {
    let mut c = lclient(a);
    c.attach_l(0, "", "", Some(uid)).expect("attach by uid");
    c
}

/// A Tsetattr argument with the `valid` mask, its fields filled by `f`.
pub fn set(
    valid: u32,
    f: impl FnOnce(&mut gefsd::proto::dotl::SetAttr),
) -> gefsd::proto::dotl::SetAttr {
    let mut a = gefsd::proto::dotl::SetAttr {
        valid,
        ..Default::default()
    };
    f(&mut a);
    a
}
