//! One 9P connection: the reader (decode, dispatch, inline Tversion/Tauth/Tflush/Tclunk) and
//! the writer (replies in order of completion, then the flushes that waited on them).
//!
//! State and its owners:
//! - `ConnState` (one mutex per connection): msize, whether Tversion and an authenticated
//!   attach happened, and the in-flight table `tag → flushes waiting on it`. The reader adds a
//!   tag before dispatching the request; only the writer removes it, right before writing its
//!   reply (so the client may reuse the tag the moment it reads the reply). A Tflush that finds
//!   its old tag in flight is answered right after that reply; one that does not is queued to
//!   the same writer, behind any reply already retired. So a flushed request never answers
//!   after its Rflush.
//!   Nothing is cancelled: a flushed write still happens, as in the reference.
//! - The fid table: see `fid.rs`.
//!
//! Limits: at most `max_inflight` requests in flight (the reader stops reading the socket until
//! one completes: back-pressure); a frame must arrive whole within `frame_timeout` of its first
//! byte; a connection must attach within `frame_timeout` of opening; after that it may idle for
//! `idle_timeout` (none by default: mounts idle for days). A duplicate in-flight tag or a frame
//! that cannot be resynchronised closes the connection; every other malformed request gets an
//! Rerror and the connection goes on.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::core::Core;
use super::fid::FidTable;
use super::ops;
use crate::proto::{self, read_frame, Dialect, Rmsg, Tmsg, NOTAG};

/// Who is at the other end, as the transport tells it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The peer's uid, from `SO_PEERCRED` or `/proc/net/tcp`.
    pub uid: Option<u32>,
    /// The login name of that uid.
    pub user: Option<String>,
    /// For logs and `show fid`: the address.
    pub desc: String,
}

/// Sets a stream's receive timeout (`None`: block).
pub type SetTimeout = Box<dyn Fn(Option<Duration>) -> io::Result<()> + Send>;

/// A byte stream to serve, with the hooks the server needs.
pub struct Transport {
    /// The receiving half.
    pub reader: Box<dyn Read + Send>,
    /// The sending half.
    pub writer: Box<dyn Write + Send>,
    /// Sets the receive timeout of `reader` (`None`: block); absent for pipes.
    pub set_timeout: Option<SetTimeout>,
    /// Shuts the stream down so a blocked read returns (server stop, writer failure).
    pub shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    /// The peer.
    pub peer: Peer,
}

#[derive(Debug)]
struct ConnState {
    msize: u32,
    dialect: Dialect,
    versioned: bool,
    authenticated: bool,
    attached: bool,
    inflight: HashMap<u16, Vec<u16>>,
}

pub(super) enum Out {
    Reply(u16, Rmsg),
    Close,
}

/// A connection's shared state: what workers need to answer a request.
pub struct Conn {
    /// Server-wide connection number.
    pub id: u64,
    /// The peer.
    pub peer: Peer,
    /// The fids.
    pub fids: FidTable,
    state: Mutex<ConnState>,
    cv: Condvar,
    out: Sender<Out>,
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    broken: AtomicBool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl Conn {
    /// A new connection and the receiving end of its reply queue.
    pub(super) fn new(
        core: &Core,
        peer: Peer,
        shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    ) -> (Arc<Conn>, Receiver<Out>) {
        let (tx, rx) = unbounded();
        let conn = Arc::new(Conn {
            id: core.next_conn_id(),
            peer,
            fids: FidTable::new(core.opts.limits.max_fids),
            state: Mutex::new(ConnState {
                msize: proto::MSIZE_MIN,
                dialect: Dialect::P9,
                versioned: false,
                authenticated: false,
                attached: false,
                inflight: HashMap::new(),
            }),
            cv: Condvar::new(),
            out: tx,
            shutdown,
            broken: AtomicBool::new(false),
        });
        (conn, rx)
    }

    /// The reply in a reply-queue item, if it is one.
    pub(super) fn unpack(o: Out) -> Option<(u16, Rmsg)> {
        match o {
            Out::Reply(t, r) => Some((t, r)),
            Out::Close => None,
        }
    }

    /// Tversion (version(5)): every fid is clunked (outstanding requests have finished: the
    /// caller waited), then the msize and version are negotiated. A refused version leaves the
    /// connection unversioned.
    pub(super) fn version(core: &Arc<Core>, conn: &Arc<Conn>, msize: u32, version: &str) -> Rmsg {
        ops::clunk_all(core, conn);
        match proto::negotiate(msize, version, core.opts.msize) {
            Ok((m, v)) => {
                let mut st = conn.state.lock();
                st.msize = m;
                st.dialect = Dialect::of(v).unwrap_or_default();
                st.versioned = true;
                st.authenticated = false;
                st.attached = false;
                Rmsg::Version {
                    msize: m,
                    version: v.to_string(),
                }
            }
            Err(e) => {
                conn.state.lock().versioned = false;
                e.reply(msize, core.opts.msize)
            }
        }
    }

    /// Whether Tversion succeeded.
    pub(super) fn versioned(&self) -> bool {
        self.state.lock().versioned
    }

    /// Send the reply to request `tag` (any thread).
    pub fn reply(&self, tag: u16, r: Rmsg) {
        // The writer lives as long as any request is in flight, so this cannot fail while
        // `tag` is; a send after teardown is dropped.
        let _ = self.out.send(Out::Reply(tag, r));
    }

    /// The negotiated msize.
    pub fn msize(&self) -> u32 {
        self.state.lock().msize
    }

    /// The negotiated dialect (9P2000 until a Tversion says otherwise).
    pub fn dialect(&self) -> Dialect {
        self.state.lock().dialect
    }

    /// The reply for a failed request, in the connection's dialect: `Rerror` or `Rlerror`.
    pub fn fail(&self, e: &super::err::Error) -> Rmsg {
        super::err::reply(self.dialect(), e)
    }

    /// The I/O unit: `msize − IOHDRSZ`.
    pub fn iounit(&self) -> u32 {
        proto::iounit(self.msize())
    }

    /// Whether an attach by a user other than `none` succeeded on this connection.
    pub fn authenticated(&self) -> bool {
        self.state.lock().authenticated
    }

    /// Record a successful attach (`authenticated`: by a user other than `none`). The
    /// connection may then idle for the idle timeout instead of the frame timeout.
    pub fn set_attached(&self, authenticated: bool) {
        let mut st = self.state.lock();
        st.attached = true;
        st.authenticated |= authenticated;
    }

    /// Requests in flight.
    pub fn inflight(&self) -> usize {
        self.state.lock().inflight.len()
    }

    /// Stop the connection: its reader sees the end of the stream.
    pub fn shut(&self) {
        if let Some(s) = &self.shutdown {
            s();
        }
    }

    /// The writer wrote `tag`'s reply: retire it and return the flushes that waited on it.
    fn complete(&self, tag: u16) -> Vec<u16> {
        let mut st = self.state.lock();
        let waiters = st.inflight.remove(&tag).unwrap_or_default();
        self.cv.notify_all();
        waiters
    }

    /// Wait until at most `n` requests are in flight.
    fn wait_inflight(&self, n: usize) {
        let mut st = self.state.lock();
        while st.inflight.len() > n {
            self.cv.wait(&mut st);
        }
    }
}

/// Wraps the receiving half: a timeout for a frame's remaining bytes once its first byte has
/// arrived, and an idle timeout between frames.
struct TimedReader {
    inner: Box<dyn Read + Send>,
    set: Option<SetTimeout>,
    idle: Option<Duration>,
    frame: Duration,
    started: Option<Instant>,
    current: Option<Option<Duration>>,
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.started {
            None => self.idle,
            Some(s) => {
                let left = self.frame.saturating_sub(s.elapsed());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "frame timeout"));
                }
                Some(left)
            }
        };
        if let Some(set) = &self.set {
            if self.current != Some(want) {
                set(want)?;
                self.current = Some(want);
            }
        }
        let n = self.inner.read(buf)?;
        if n > 0 && self.started.is_none() {
            self.started = Some(Instant::now());
        }
        Ok(n)
    }
}

/// Serve `t` until the peer goes away or the server stops. Runs on the calling thread (the
/// connection's reader); spawns the writer.
pub fn serve(core: Arc<Core>, t: Transport) {
    let (conn, rx) = Conn::new(&core, t.peer, t.shutdown);
    core.register(&conn);
    let wconn = conn.clone();
    let writer = std::thread::Builder::new()
        .name(format!("9p-write-{}", conn.id))
        .spawn(move || write_loop(wconn, t.writer, rx));
    let mut r = TimedReader {
        inner: t.reader,
        set: t.set_timeout,
        idle: Some(core.opts.limits.frame_timeout),
        frame: core.opts.limits.frame_timeout,
        started: None,
        current: None,
    };
    if writer.is_ok() {
        read_loop(&core, &conn, &mut r);
    }
    teardown(&core, &conn);
    let _ = conn.out.send(Out::Close);
    if let Ok(w) = writer {
        let _ = w.join();
    }
    core.unregister(conn.id);
}

fn read_loop(core: &Arc<Core>, conn: &Arc<Conn>, r: &mut TimedReader) {
    let mut buf = Vec::new();
    let max_inflight = core.opts.limits.max_inflight.max(1);
    loop {
        conn.wait_inflight(max_inflight - 1);
        if core.stopping() || conn.broken.load(Ordering::SeqCst) {
            return;
        }
        let (limit, dialect) = {
            let st = conn.state.lock();
            r.idle = if st.attached {
                core.opts.limits.idle_timeout
            } else {
                Some(core.opts.limits.frame_timeout)
            };
            let limit = if st.versioned {
                st.msize
            } else {
                core.opts.msize
            };
            (limit, st.dialect)
        };
        r.started = None;
        let frame = match read_frame(r, limit, &mut buf) {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => return,
        };
        let (tag, msg) = match proto::decode_t_in(frame, limit, dialect) {
            Ok(x) => x,
            Err(e) => match e.tag() {
                Some(tag) if !e.is_framing() => {
                    if !begin(conn, tag) {
                        return;
                    }
                    conn.reply(tag, super::err::decode_reply(dialect, &e));
                    continue;
                }
                _ => return,
            },
        };
        if !begin(conn, tag) {
            return;
        }
        if !dispatch(core, conn, tag, msg) {
            return;
        }
    }
}

/// Register `tag` as in flight; false (close the connection) if it already is.
fn begin(conn: &Conn, tag: u16) -> bool {
    let mut st = conn.state.lock();
    if st.inflight.contains_key(&tag) {
        return false;
    }
    st.inflight.insert(tag, Vec::new());
    true
}

/// Handle or route one request; false to close the connection.
fn dispatch(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg) -> bool {
    match msg {
        Tmsg::Version { msize, version } => {
            // version(5): all outstanding I/O is finished (nothing is cancelled) and every
            // fid is clunked before the reply.
            conn.wait_inflight(1);
            let reply = Conn::version(core, conn, msize, &version);
            conn.reply(tag, reply);
        }
        _ if !conn.state.lock().versioned => {
            conn.reply(tag, ops::err(super::err::msg::NO_VERSION));
        }
        Tmsg::Flush { oldtag } => {
            let mut st = conn.state.lock();
            let waiting = oldtag != tag && oldtag != NOTAG && st.inflight.contains_key(&oldtag);
            if waiting {
                if let Some(w) = st.inflight.get_mut(&oldtag) {
                    w.push(tag);
                }
            } else {
                drop(st);
                conn.reply(tag, Rmsg::Flush);
            }
        }
        Tmsg::Auth { .. } => conn.reply(tag, ops::auth(core)),
        msg => {
            ops::route(core, conn, tag, msg);
        }
    }
    true
}

fn write_loop(conn: Arc<Conn>, mut w: Box<dyn Write + Send>, rx: Receiver<Out>) {
    let mut buf = Vec::new();
    while let Ok(out) = rx.recv() {
        let (tag, msg) = match out {
            Out::Reply(tag, msg) => (tag, msg),
            Out::Close => break,
        };
        // The tag is retired before its reply is written, so a client may reuse it as soon
        // as it has the reply. A Tflush that arrives after the retirement finds the tag free
        // and queues its Rflush behind this reply; the flushes that were waiting are written
        // right after it.
        let mut queue = vec![(tag, msg)];
        while let Some((tag, msg)) = queue.pop() {
            let waiting = conn.complete(tag);
            send(&conn, &mut w, &mut buf, tag, &msg);
            for f in waiting.into_iter().rev() {
                queue.push((f, Rmsg::Flush));
            }
        }
    }
    let _ = w.flush();
}

/// Encode and write one reply; a reply over msize becomes an Rerror; a failed write marks the
/// connection broken (the reader stops) and later replies are dropped.
fn send(conn: &Conn, w: &mut Box<dyn Write + Send>, buf: &mut Vec<u8>, tag: u16, msg: &Rmsg) {
    if conn.broken.load(Ordering::SeqCst) {
        return;
    }
    buf.clear();
    let msize = usize::try_from(conn.msize()).unwrap_or(usize::MAX);
    let fits = msg.encoded_len() <= msize.max(proto::MSIZE_MIN as usize);
    let r = if fits {
        proto::encode_r(tag, msg, buf)
    } else {
        Err(proto::EncodeError::FrameTooLarge {
            len: msg.encoded_len(),
        })
    };
    if r.is_err() {
        buf.clear();
        let e = conn.fail(&super::err::Error::Server(super::err::msg::REPLY_TOO_BIG));
        if proto::encode_r(tag, &e, buf).is_err() {
            return;
        }
    }
    if w.write_all(buf).and_then(|()| w.flush()).is_err() {
        conn.broken.store(true, Ordering::SeqCst);
        conn.shut();
    }
}

/// The peer is gone (or the server stops): let in-flight requests finish, then clunk every
/// fid (ORCLOSE removes go to the mutator, reference §11.6).
fn teardown(core: &Arc<Core>, conn: &Arc<Conn>) {
    conn.wait_inflight(0);
    ops::clunk_all(core, conn);
}
