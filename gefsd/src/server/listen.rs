//! Listen addresses, listeners and transports.
//!
//! Addresses are Plan 9 dial strings, `tcp!HOST!PORT` (`*` = every interface) and
//! `unix!PATH`, or `HOST:PORT` (`[V6]:PORT`). Only loopback TCP addresses are accepted: plain
//! 9P2000 has no encryption, and gefsd authenticates TCP peers only by local peer credentials
//! (`auth`), which exist only for connections from this machine. Remote clients tunnel to a
//! loopback listener (`ssh -L`).

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};

use super::auth;
use super::conn::{Peer, Transport};
use crate::error::AddrError;

/// A parsed listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// TCP: the resolved addresses, and the text given.
    Tcp(Vec<SocketAddr>, String),
    /// A Unix-domain socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(_, s) => f.write_str(s),
            ListenAddr::Unix(p) => write!(f, "unix!{}", p.display()),
        }
    }
}

/// The default listener.
pub const DEFAULT_ADDR: &str = "tcp!127.0.0.1!5640";

/// Parse a dial string or `host:port`.
pub fn parse_addr(s: &str) -> Result<ListenAddr, AddrError> {
    let bad = |why: &str| AddrError::Bad {
        addr: s.to_string(),
        why: why.to_string(),
    };
    let (host, port) = if let Some(p) = s.strip_prefix("unix!") {
        if p.is_empty() {
            return Err(bad("empty socket path"));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(p)));
    } else if let Some(rest) = s.strip_prefix("tcp!").or_else(|| s.strip_prefix("net!")) {
        let (h, p) = rest
            .split_once('!')
            .ok_or_else(|| bad("expected tcp!HOST!PORT"))?;
        (if h == "*" { "0.0.0.0" } else { h }, p)
    } else if s.contains('!') {
        return Err(bad("only tcp! and unix! dial strings are supported"));
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected tcp!HOST!PORT, unix!PATH or HOST:PORT"))?;
        (h.trim_start_matches('[').trim_end_matches(']'), p)
    };
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(bad("resolves to nothing"));
    }
    Ok(ListenAddr::Tcp(addrs, s.to_string()))
}

/// Refuse addresses gefsd will not listen on: any TCP address that is not loopback.
pub fn check_allowed(a: &ListenAddr, noauth: bool) -> Result<(), AddrError> {
    let ListenAddr::Tcp(addrs, text) = a else {
        return Ok(());
    };
    if addrs.iter().all(|x| x.ip().is_loopback()) {
        return Ok(());
    }
    Err(AddrError::NotLoopback {
        addr: text.clone(),
        noauth,
    })
}

/// A bound listener.
#[derive(Debug)]
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix, with the path to remove when done.
    Unix(UnixListener, PathBuf),
}

/// Bind `a`. A stale Unix socket file (nobody answers) is replaced; a live one is refused.
/// Both are non-blocking, for [`accept`].
pub fn bind(a: &ListenAddr) -> io::Result<Bound> {
    match a {
        ListenAddr::Tcp(addrs, _) => {
            let l = TcpListener::bind(&addrs[..])?;
            l.set_nonblocking(true)?;
            Ok(Bound::Tcp(l))
        }
        ListenAddr::Unix(p) => {
            let l = bind_unix(p, 0o666)?;
            l.set_nonblocking(true)?;
            Ok(Bound::Unix(l, p.clone()))
        }
    }
}

/// Bind a Unix socket at `p` with permission bits `mode` (whatever the umask), replacing a
/// stale one. The socket is made in a fresh private directory beside `p`, given its mode
/// there (where nobody else can swap it for a symbolic link), and renamed into place, so it
/// appears at `p` with its final mode.
pub fn bind_unix(p: &Path, mode: u32) -> io::Result<UnixListener> {
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if !md.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", p.display()),
            ));
        }
        if UnixStream::connect(p).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a running server", p.display()),
            ));
        }
        std::fs::remove_file(p)?;
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let private = dir.join(format!(
        ".gefsd-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let inner = private.join("s");
    let made = UnixListener::bind(&inner).and_then(|l| {
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&inner, p)?;
        Ok(l)
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&inner);
    }
    let _ = std::fs::remove_dir(&private);
    made
}

/// A blocked write returns after this, so that the writer can judge the stall (`outbox`).
const WRITE_TIMEOUT: Duration = super::outbox::WRITE_STEP;

/// A TCP connection as a transport (peer credentials looked up unless `noauth`).
pub fn tcp_transport(s: TcpStream, noauth: bool) -> io::Result<Transport> {
    let (pa, la) = (s.peer_addr()?, s.local_addr()?);
    let peer = if noauth {
        Peer {
            desc: format!("tcp!{}!{}", pa.ip(), pa.port()),
            ..Peer::default()
        }
    } else {
        auth::tcp_peer(pa, la)
    };
    let _ = s.set_nodelay(true);
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let s = Arc::new(s);
    let (t, sh, r, w) = (s.clone(), s.clone(), s.clone(), s.clone());
    Ok(Transport {
        reader: Box::new(Shared(s.clone())),
        writer: Box::new(Shared(s)),
        set_timeout: Some(Box::new(move |d| t.set_read_timeout(d))),
        shutdown: Some(Box::new(move || {
            let _ = sh.shutdown(Shutdown::Read);
        })),
        try_recv: Some(Box::new(move |buf| try_recv(&*r, buf))),
        try_send: Some(Box::new(move |parts| try_send(&*w, parts))),
        peer,
    })
}

/// Receive what is there without blocking.
fn try_recv(s: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let (_, n) = rustix::net::recv(s, buf, rustix::net::RecvFlags::DONTWAIT)?;
    Ok(n)
}

/// Send what the socket takes without blocking (and without `SIGPIPE`).
fn try_send(s: impl AsFd, parts: &[io::IoSlice<'_>]) -> io::Result<usize> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendFlags};
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    Ok(sendmsg(
        s,
        parts,
        &mut SendAncillaryBuffer::default(),
        flags,
    )?)
}

/// A Unix-socket connection as a transport.
pub fn unix_transport(s: UnixStream, desc: String) -> io::Result<Transport> {
    let peer = auth::unix_peer(&s, desc);
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let s = Arc::new(s);
    let (t, sh, r, w) = (s.clone(), s.clone(), s.clone(), s.clone());
    Ok(Transport {
        reader: Box::new(Shared(s.clone())),
        writer: Box::new(Shared(s)),
        set_timeout: Some(Box::new(move |d| t.set_read_timeout(d))),
        shutdown: Some(Box::new(move || {
            let _ = sh.shutdown(Shutdown::Read);
        })),
        try_recv: Some(Box::new(move |buf| try_recv(&*r, buf))),
        try_send: Some(Box::new(move |parts| try_send(&*w, parts))),
        peer,
    })
}

/// One socket shared by a connection's reader, writer and hooks: a connection costs one file
/// descriptor.
struct Shared<S>(Arc<S>);

impl<S> io::Read for Shared<S>
where
    for<'a> &'a S: io::Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl<S> io::Write for Shared<S>
where
    for<'a> &'a S: io::Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// Standard input and output as a transport; the peer is whoever runs the server.
pub fn stdio_transport() -> Transport {
    let uid = rustix::process::getuid().as_raw();
    Transport {
        reader: Box::new(io::stdin()),
        writer: Box::new(io::stdout()),
        set_timeout: None,
        shutdown: None,
        try_recv: None,
        try_send: None,
        peer: Peer {
            uid: Some(uid),
            user: gefs_core::host::user_name(uid),
            desc: "stdio".into(),
        },
    }
}

/// Wakes a thread blocked in [`accept`] without touching the listener or its path: the
/// socket file may be gone, and connecting to it is what made stopping hang.
#[derive(Debug)]
pub struct Waker(UnixStream);

/// The other end of a [`Waker`], polled beside a listener.
#[derive(Debug)]
pub struct Wakeable(UnixStream);

/// A waker and the end an accept loop polls.
pub fn waker() -> io::Result<(Waker, Wakeable)> {
    let (a, b) = UnixStream::pair()?;
    Ok((Waker(a), Wakeable(b)))
}

impl Waker {
    /// Wake the accept loop (for good: its end reads as closed).
    pub fn wake(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// What [`accept`] returned.
#[derive(Debug)]
pub enum Accepted<S> {
    /// A connection.
    Conn(S),
    /// The waker was used.
    Woken,
}

/// Wait for a connection on `listener` or a wake-up on `wake`, whichever comes first.
/// `listener` must be non-blocking; the stream returned is blocking.
pub fn accept<L: AsFd, S>(
    listener: &L,
    wake: &Wakeable,
    accept_one: impl Fn(&L) -> io::Result<S>,
) -> io::Result<Accepted<S>> {
    loop {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::new(&wake.0, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let [l, w] = &fds;
        if !w.revents().is_empty() {
            return Ok(Accepted::Woken);
        }
        if l.revents().is_empty() {
            continue;
        }
        match accept_one(listener) {
            Ok(s) => return Ok(Accepted::Conn(s)),
            // The connection went away between poll and accept.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Accept one TCP connection, as a blocking stream.
pub fn accept_tcp(l: &TcpListener) -> io::Result<TcpStream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(false)?;
    Ok(s)
}

/// Accept one Unix-socket connection, as a blocking stream.
pub fn accept_unix(l: &UnixListener) -> io::Result<UnixStream> {
    let (s, _) = l.accept()?;
    s.set_nonblocking(false)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_strings() {
        let a = parse_addr("tcp!127.0.0.1!5640").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_allowed(&a, false).is_ok());
        let a = parse_addr("127.0.0.1:564").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&a, ListenAddr::Tcp(v, _) if v[0].port() == 564));
        let a = parse_addr("[::1]:564").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_allowed(&a, true).is_ok());
        let a = parse_addr("tcp!*!5640").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_allowed(&a, true).is_err());
        assert!(check_allowed(&a, false).is_err());
        assert_eq!(
            parse_addr("unix!/tmp/x.sock"),
            Ok(ListenAddr::Unix("/tmp/x.sock".into()))
        );
        for bad in ["unix!", "tcp!x", "il!a!1", "nohost", "tcp!127.0.0.1!port"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }
}
