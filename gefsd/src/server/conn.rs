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
//! Limits: at most `max_inflight` requests in flight, and at most the connection's and the
//! server's memory budgets of bytes in flight (`budget`): while either is full the reader
//! stops reading the socket until a reply has been written (back-pressure); the buffers a
//! connection keeps between frames are small. A frame must arrive whole within
//! `frame_timeout` of its first byte (of the moment its bytes were charged, if it had to wait
//! for room); a connection must attach within `frame_timeout` of opening; after that it may
//! idle for `idle_timeout` (none by default: mounts idle for days). A duplicate in-flight tag
//! or a frame that cannot be resynchronised closes the connection; every other malformed
//! request gets an Rerror and the connection goes on.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver};
use parking_lot::{Condvar, Mutex};

use super::budget::{Budget, Held, SMALL_REPLY};
use super::core::Core;
use super::fid::FidTable;
use super::ops;
use super::outbox::{Out, Outbox};
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

/// Receives what is there without blocking (`MSG_DONTWAIT`): the bytes read, or `WouldBlock`.
pub type TryRecv = Box<dyn Fn(&mut [u8]) -> io::Result<usize> + Send>;

pub use super::outbox::TrySend;

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
    /// Reads without blocking (sockets): the rest of a frame that has already arrived is
    /// read without setting a timeout first.
    pub try_recv: Option<TryRecv>,
    /// Writes without blocking (sockets): workers write their replies themselves.
    pub try_send: Option<TrySend>,
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
    inflight: HashMap<u16, Inflight>,
}

/// A request in flight: the flushes waiting on it, and the bytes charged to the budgets for it.
#[derive(Debug, Default)]
pub(super) struct Inflight {
    pub(super) flushes: Vec<u16>,
    pub(super) bytes: usize,
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
    out: Outbox,
    me: Weak<Conn>,
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    broken: AtomicBool,
    budget: Arc<Budget>,
    held: Held,
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
    /// A new connection whose replies go to `out`.
    pub(super) fn new(
        core: &Core,
        peer: Peer,
        shutdown: Option<Box<dyn Fn() + Send + Sync>>,
        out: Outbox,
    ) -> Arc<Conn> {
        Arc::new_cyclic(|me| Conn {
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
            out,
            me: me.clone(),
            shutdown,
            broken: AtomicBool::new(false),
            budget: core.budget.clone(),
            held: Held::default(),
        })
    }

    /// A connection without a transport (in-process sessions): its replies come out of the
    /// returned channel.
    pub(super) fn new_direct(core: &Core, peer: Peer) -> (Arc<Conn>, Receiver<Out>) {
        let (tx, rx) = unbounded();
        (Conn::new(core, peer, None, Outbox::channel(tx)), rx)
    }

    /// The reply in a reply-queue item, if it is one.
    pub(super) fn unpack(o: Out) -> Option<(u16, Rmsg)> {
        super::outbox::unpack(o)
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

    /// Send the reply to request `tag` (any thread). A reply larger than what its request was
    /// charged for is charged the difference.
    pub fn reply(&self, tag: u16, r: Rmsg) {
        let len = r.encoded_len();
        {
            let mut st = self.state.lock();
            if let Some(f) = st.inflight.get_mut(&tag) {
                let more = len.saturating_sub(f.bytes);
                if more > 0 {
                    f.bytes += more;
                    self.budget.force(&self.held, more);
                }
            }
        }
        // A connection lives as long as any request is in flight, so this cannot fail while
        // `tag` is; a reply after teardown is dropped.
        if let Some(me) = self.me.upgrade() {
            self.out.push(&me, tag, r);
        }
    }

    /// The reply queue.
    pub(super) fn outbox(&self) -> &Outbox {
        &self.out
    }

    /// Whether a write failed (the connection is ending).
    pub(super) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Mark the connection as ending: its reader stops and later replies are dropped.
    pub(super) fn set_broken(&self) {
        self.broken.store(true, Ordering::SeqCst);
    }

    /// Whether some connection waits for room in the shared memory budget.
    pub(super) fn memory_contended(&self) -> bool {
        self.budget.contended()
    }

    /// Bytes in flight on this connection, as charged to the budgets.
    pub fn bytes_in_flight(&self) -> usize {
        self.held.get()
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

    /// The writer is about to write `tag`'s reply: retire the tag and return the flushes that
    /// waited on it and the bytes charged for it (released once the reply is written).
    pub(super) fn complete(&self, tag: u16) -> Inflight {
        let mut st = self.state.lock();
        let f = st.inflight.remove(&tag).unwrap_or_default();
        self.cv.notify_all();
        f
    }

    /// Wait until `n` more bytes fit the budgets; false if the connection or server stops
    /// first (nothing charged).
    fn charge(&self, core: &Core, n: usize) -> bool {
        self.budget.acquire(&self.held, n, || {
            core.stopping() || self.broken.load(Ordering::SeqCst)
        })
    }

    /// Give back `n` bytes charged with [`Conn::charge`].
    pub(super) fn uncharge(&self, n: usize) {
        self.budget.release(&self.held, n);
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
/// arrived, and an idle timeout between frames. Inside a frame, bytes already received are
/// taken without blocking first, so the timeout is set only when the reader must wait.
struct TimedReader {
    inner: Box<dyn Read + Send>,
    try_recv: Option<TryRecv>,
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
                if let Some(try_recv) = self.try_recv.as_ref().filter(|_| !buf.is_empty()) {
                    match try_recv(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        r => return r,
                    }
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
/// connection's reader); the outbox runs a writer thread while there are replies to write.
pub fn serve(core: Arc<Core>, t: Transport) {
    let conn = Conn::new(
        &core,
        t.peer,
        t.shutdown,
        Outbox::socket(t.writer, t.try_send),
    );
    core.register(&conn);
    tracing::debug!(
        conn = conn.id,
        peer = %conn.peer.desc,
        peer_uid = conn.peer.uid,
        peer_user = conn.peer.user.as_deref(),
        "connection opened"
    );
    let mut r = TimedReader {
        inner: t.reader,
        try_recv: t.try_recv,
        set: t.set_timeout,
        idle: Some(core.opts.limits.frame_timeout),
        frame: core.opts.limits.frame_timeout,
        started: None,
        current: None,
    };
    read_loop(&core, &conn, &mut r);
    teardown(&core, &conn);
    conn.out.close();
    core.unregister(conn.id);
    tracing::debug!(conn = conn.id, peer = %conn.peer.desc, "connection closed");
}

/// Capacity a connection keeps in its frame buffer between frames; a larger buffer (after a
/// large Twrite) is given back, so idle connections hold little.
const KEEP_BUF: usize = 64 << 10;

fn read_loop(core: &Arc<Core>, conn: &Arc<Conn>, r: &mut TimedReader) {
    let mut buf = Vec::new();
    let max_inflight = core.opts.limits.max_inflight.max(1);
    loop {
        conn.wait_inflight(max_inflight - 1);
        if core.stopping() || conn.is_broken() {
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
        // The size field first: the frame's bytes are charged before its body is read.
        let mut size = [0u8; 4];
        match read_size(r, &mut size) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let claimed = u32::from_le_bytes(size).min(limit);
        let mut cost = usize::try_from(claimed).unwrap_or(usize::MAX);
        if !conn.charge(core, cost) {
            return;
        }
        // Waiting for room is not the peer's delay: the frame's time starts now.
        r.started = Some(Instant::now());
        let got = read_frame(&mut (&size[..]).chain(&mut *r), limit, &mut buf);
        let decoded = match got {
            Ok(Some(frame)) => Some(proto::decode_t_in(frame, limit, dialect)),
            Ok(None) | Err(_) => None,
        };
        if buf.capacity() > KEEP_BUF {
            buf = Vec::new();
        }
        let (tag, msg) = match decoded {
            Some(Ok(x)) => x,
            Some(Err(e)) => match e.tag() {
                Some(tag) if !e.is_framing() => {
                    if !begin(conn, tag, cost) {
                        conn.uncharge(cost);
                        return;
                    }
                    conn.reply(tag, super::err::decode_reply(dialect, &e));
                    continue;
                }
                _ => {
                    conn.uncharge(cost);
                    return;
                }
            },
            None => {
                conn.uncharge(cost);
                return;
            }
        };
        let reply = reply_cost(&msg, proto::iounit(limit));
        if !conn.charge(core, reply) {
            conn.uncharge(cost);
            return;
        }
        cost += reply;
        if !begin(conn, tag, cost) {
            conn.uncharge(cost);
            return;
        }
        if !dispatch(core, conn, tag, msg, reply <= INLINE_REPLY_MAX) {
            return;
        }
    }
}

/// Read a frame's size field; false if the stream ended cleanly before it.
fn read_size(r: &mut TimedReader, size: &mut [u8; 4]) -> io::Result<bool> {
    let mut got = 0;
    while let Some(dst) = size.get_mut(got..).filter(|d| !d.is_empty()) {
        let n = match r.read(dst) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    Ok(true)
}

/// What a request's reply is charged before it exists: a read's data (its count, at most the
/// I/O unit) and header, or a small reply's allowance.
fn reply_cost(m: &Tmsg, iounit: u32) -> usize {
    match m {
        Tmsg::Read { count, .. } | Tmsg::L(proto::TmsgL::Readdir { count, .. }) => {
            usize::try_from((*count).min(iounit) + proto::IOHDRSZ).unwrap_or(usize::MAX)
        }
        _ => SMALL_REPLY,
    }
}

/// Register `tag` as in flight, charged `bytes`; false (close the connection) if it already is.
fn begin(conn: &Conn, tag: u16, bytes: usize) -> bool {
    let mut st = conn.state.lock();
    if st.inflight.contains_key(&tag) {
        return false;
    }
    st.inflight.insert(
        tag,
        Inflight {
            flushes: Vec::new(),
            bytes,
        },
    );
    true
}

/// The largest reply (as charged before it exists) of a request the reader may run itself.
/// Larger replies (reads of more than 64 KiB) are made by the workers: their buffers come from
/// the workers' few allocator arenas, not from those of every connection's reader, which would
/// each keep some freed.
const INLINE_REPLY_MAX: usize = (64 << 10) + proto::IOHDRSZ as usize;

/// Handle or route one request; false to close the connection. `small`: its reply is small
/// enough for the reader to make ([`INLINE_REPLY_MAX`]).
fn dispatch(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg, small: bool) -> bool {
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
                    w.flushes.push(tag);
                }
            } else {
                drop(st);
                conn.reply(tag, Rmsg::Flush);
            }
        }
        Tmsg::Auth { .. } => conn.reply(tag, ops::auth(core)),
        msg => {
            let alone = small && conn.inflight() == 1;
            ops::route(core, conn, tag, msg, alone);
        }
    }
    true
}

/// The peer is gone (or the server stops): let in-flight requests finish, then clunk every
/// fid (ORCLOSE removes go to the mutator, reference §11.6).
fn teardown(core: &Arc<Core>, conn: &Arc<Conn>) {
    conn.wait_inflight(0);
    ops::clunk_all(core, conn);
}
