//! A connection's replies on their way to the socket: the queue, and the writer thread that
//! drains it.
//!
//! On a socket, the thread that queues a reply while no writer runs writes it itself, without
//! blocking (`MSG_DONTWAIT`), and with it whatever else is queued by then (up to
//! [`INLINE_MAX`] replies): a reply costs no hand-off to another thread. What the socket does
//! not take at once is kept in the sink and a writer thread takes over; a worker never waits
//! for a peer. The writer thread exists only while there is something to write that way: it
//! ends after [`LINGER`] with nothing to write, leaving the socket's sending half parked in
//! the outbox for the next one. So an idle connection costs one thread (its reader), not two.
//!
//! Writing: replies go out in the order they were queued; the flushes that waited on a reply
//! are answered right after it (see `conn`). An `Rread`'s data is written from the reply
//! itself, behind a separately encoded head, never copied into a frame buffer. A reply's bytes
//! stay charged to the memory budgets until it has been written. A peer that reads nothing for
//! [`STALL`] while other connections wait for memory, or for [`WRITE_TIMEOUT`] in any case,
//! loses its connection.
//!
//! Invariants (under the outbox mutex): `sink` is `Some` exactly when no writer runs (a writer
//! thread, or a thread writing its reply itself); a non-empty queue always has a writer; after
//! `close`, nothing more is queued. A parked sink holds no unwritten bytes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::conn::Conn;

use crate::proto::{self, Rmsg};

/// How long a writer thread waits for more replies before it ends.
pub const LINGER: Duration = Duration::from_secs(2);
/// How long a writer thread waits for more replies when the socket can also be written
/// without blocking (then the threads that queue replies write them themselves).
pub const LINGER_INLINE: Duration = Duration::from_millis(20);
/// At most this many replies are written by a thread that queued one; more go to a writer
/// thread, so that a worker returns to its own work.
pub const INLINE_MAX: usize = 8;
/// Unread replies are tolerated this long while other connections wait for memory.
pub const STALL: Duration = Duration::from_secs(10);
/// Unread replies are tolerated this long in any case.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The sockets' send timeout: how often a blocked write looks again at the two above.
pub const WRITE_STEP: Duration = Duration::from_secs(1);

/// Capacity the frame buffer keeps between replies.
const KEEP_BUF: usize = 64 << 10;

/// A reply-queue item of an in-process session (see `direct`).
pub enum Out {
    /// The reply to a tag.
    Reply(u16, Rmsg),
    /// The connection is done.
    Close,
}

/// Sends what it can of the parts without blocking (`MSG_DONTWAIT`): the bytes taken, or
/// `WouldBlock`.
pub type TrySend = Box<dyn Fn(&[IoSlice<'_>]) -> io::Result<usize> + Send>;

/// The socket's sending half and its frame buffer.
pub struct Sink {
    w: Box<dyn Write + Send>,
    buf: Vec<u8>,
    /// The non-blocking send, if the transport has one.
    try_send: Option<TrySend>,
    /// The data of a reply whose writing a worker began (the head is encoded in `buf`,
    /// `pending_sent` bytes of head and data are written): the writer thread writes the rest
    /// first, then gives back `pending_bytes` to the budgets.
    pending: Option<Vec<u8>>,
    pending_sent: usize,
    pending_bytes: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(u16, Rmsg)>,
    sink: Option<Sink>,
    running: bool,
    closed: bool,
}

/// The reply queue of one connection.
pub struct Outbox {
    st: Mutex<State>,
    cv: Condvar,
    channel: Option<Sender<Out>>,
}

impl Outbox {
    /// An outbox writing to `w`; with `try_send`, the threads that queue replies write them
    /// themselves when the socket takes them at once.
    pub fn socket(w: Box<dyn Write + Send>, try_send: Option<TrySend>) -> Outbox {
        Outbox {
            st: Mutex::new(State {
                sink: Some(Sink {
                    w,
                    buf: Vec::new(),
                    try_send,
                    pending: None,
                    pending_sent: 0,
                    pending_bytes: 0,
                }),
                ..State::default()
            }),
            cv: Condvar::new(),
            channel: None,
        }
    }

    /// An outbox handing replies to `tx` (in-process sessions).
    pub fn channel(tx: Sender<Out>) -> Outbox {
        Outbox {
            st: Mutex::new(State::default()),
            cv: Condvar::new(),
            channel: Some(tx),
        }
    }

    /// Queue a reply of `conn` (whose outbox this is), starting a writer if none runs.
    pub fn push(&self, conn: &Arc<Conn>, tag: u16, r: Rmsg) {
        if let Some(tx) = &self.channel {
            let _ = tx.send(Out::Reply(tag, r));
            return;
        }
        let mut st = self.st.lock();
        if st.closed {
            drop(st);
            discard(conn, tag);
            return;
        }
        st.queue.push_back((tag, r));
        if st.running {
            self.cv.notify_one();
            return;
        }
        let Some(sink) = st.sink.take() else {
            // The writer could not be started earlier: the connection is ending.
            let dropped: Vec<_> = st.queue.drain(..).collect();
            drop(st);
            for (t, _) in dropped {
                discard(conn, t);
            }
            return;
        };
        st.running = true;
        drop(st);
        let sink = if sink.try_send.is_some() {
            match write_inline(conn, sink) {
                Some(s) => s,
                None => return,
            }
        } else {
            sink
        };
        let linger = if sink.try_send.is_some() {
            LINGER_INLINE
        } else {
            LINGER
        };
        let c = conn.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("9p-write-{}", conn.id))
            .spawn(move || drain(&c, sink, Some(linger)));
        if let Err(e) = spawned {
            // No thread to be had, and the sink went with the closure: the connection ends,
            // and the replies queued are retired unwritten.
            tracing::error!(error = %e, "cannot start a writer thread: {e}; closing the connection");
            conn.abandon();
            let dropped: Vec<_> = {
                let mut st = self.st.lock();
                st.running = false;
                self.cv.notify_all();
                st.queue.drain(..).collect()
            };
            for (t, _) in dropped {
                discard(conn, t);
            }
        }
    }

    /// No more replies: wait until everything queued is written (or dropped) and no writer
    /// runs. Tells an in-process session the connection is done.
    pub fn close(&self) {
        if let Some(tx) = &self.channel {
            let _ = tx.send(Out::Close);
            return;
        }
        let mut st = self.st.lock();
        st.closed = true;
        self.cv.notify_all();
        while st.running {
            self.cv.wait(&mut st);
        }
    }
}

/// The writer: write queued replies until the queue has stayed empty for `linger` (or at once
/// with `None`), or the connection closes; then park the sink.
fn drain(conn: &Arc<Conn>, mut sink: Sink, linger: Option<Duration>) {
    let ob = conn.outbox();
    if let Some(data) = sink.pending.take() {
        let (h, d) = rest(&sink.buf, &data, sink.pending_sent);
        if !conn.is_broken() {
            if let Err(e) = write_parts(conn, &mut *sink.w, &[h, d]) {
                lost(conn, &e);
            }
        }
        drop(data);
        conn.uncharge(std::mem::take(&mut sink.pending_bytes));
        if sink.buf.capacity() > KEEP_BUF {
            sink.buf = Vec::new();
        }
    }
    loop {
        let (tag, msg) = {
            let mut st = ob.st.lock();
            loop {
                if let Some(x) = st.queue.pop_front() {
                    break x;
                }
                let idle = st.closed
                    || match linger {
                        None => true,
                        Some(d) => ob.cv.wait_for(&mut st, d).timed_out() && st.queue.is_empty(),
                    };
                if idle {
                    let _ = sink.w.flush();
                    st.sink = Some(sink);
                    st.running = false;
                    ob.cv.notify_all();
                    return;
                }
            }
        };
        // The tag is retired before its reply is written, so a client may reuse it as soon
        // as it has the reply. A Tflush that arrives after the retirement finds the tag free
        // and queues its Rflush behind this reply; the flushes that were waiting are written
        // right after it. The reply's bytes stay charged until it is written.
        let mut now = vec![(tag, msg)];
        while let Some((tag, msg)) = now.pop() {
            let done = conn.complete(tag);
            send(conn, &mut sink, tag, msg);
            conn.uncharge(done.bytes);
            for f in done.flushes.into_iter().rev() {
                now.push((f, Rmsg::Flush));
            }
        }
    }
}

/// Retire `tag` (and the flushes waiting on it) without writing anything: the connection is
/// gone.
fn discard(conn: &Conn, tag: u16) {
    let mut now = vec![tag];
    while let Some(t) = now.pop() {
        let done = conn.complete(t);
        conn.uncharge(done.bytes);
        now.extend(done.flushes);
    }
}

/// Encode and write one reply; a reply over msize becomes an Rerror; a failed write marks the
/// connection broken (the reader stops) and later replies are dropped.
fn send(conn: &Conn, sink: &mut Sink, tag: u16, msg: Rmsg) {
    if conn.is_broken() {
        return;
    }
    let Some(data) = encode(conn, &mut sink.buf, tag, &msg) else {
        return;
    };
    let wrote = write_parts(conn, &mut *sink.w, &[&sink.buf, data]);
    drop(msg);
    if sink.buf.capacity() > KEEP_BUF {
        sink.buf = Vec::new();
    }
    if let Err(e) = wrote {
        lost(conn, &e);
    }
}

/// A write failed: the connection ends.
fn lost(conn: &Conn, e: &io::Error) {
    if e.kind() == io::ErrorKind::TimedOut {
        tracing::info!(peer = %conn.peer.desc, "{}: closing the connection: {e}", conn.peer.desc);
    }
    conn.abandon();
}

/// What happened to a reply a worker tried to write itself.
enum Inline {
    /// The socket took all of it (or the connection is gone).
    Done,
    /// The socket took only part of it: the rest is the sink's `pending`.
    Blocked,
}

/// Write queued replies from the calling thread without blocking, the flushes that waited on
/// each right after it, at most [`INLINE_MAX`] replies. `None`: the queue is empty and the sink
/// parked. `Some(sink)`: a writer thread must take over (the socket is full, with the unwritten
/// rest of a reply in the sink, or more replies keep coming); `running` stays set.
fn write_inline(conn: &Arc<Conn>, mut sink: Sink) -> Option<Sink> {
    let ob = conn.outbox();
    let mut now: Vec<(u16, Rmsg)> = Vec::new();
    for _ in 0..INLINE_MAX {
        let (tag, msg) = match now.pop() {
            Some(x) => x,
            None => {
                let mut st = ob.st.lock();
                match st.queue.pop_front() {
                    Some(x) => x,
                    None => {
                        st.sink = Some(sink);
                        st.running = false;
                        ob.cv.notify_all();
                        return None;
                    }
                }
            }
        };
        let done = conn.complete(tag);
        now.extend(done.flushes.into_iter().rev().map(|f| (f, Rmsg::Flush)));
        match send_inline(conn, &mut sink, tag, msg) {
            Inline::Done => conn.uncharge(done.bytes),
            Inline::Blocked => {
                sink.pending_bytes = done.bytes;
                break;
            }
        }
    }
    // The flushes not yet written go first, in order.
    let mut st = ob.st.lock();
    for x in now {
        st.queue.push_front(x);
    }
    Some(sink)
}

/// The unwritten parts of a frame of `head` and `data` of which `sent` bytes are written.
fn rest<'a>(head: &'a [u8], data: &'a [u8], sent: usize) -> (&'a [u8], &'a [u8]) {
    match head.get(sent..) {
        Some(h) => (h, data),
        None => (&[], data.get(sent - head.len()..).unwrap_or_default()),
    }
}

/// The data written after an encoded reply's head (see [`encode`]).
fn data_of(msg: &Rmsg) -> &[u8] {
    match msg {
        Rmsg::Read { data } => data,
        _ => &[],
    }
}

/// Encode one reply and send what the socket takes at once; keep the reply as `pending` if
/// the socket did not take all of it.
fn send_inline(conn: &Conn, sink: &mut Sink, tag: u16, msg: Rmsg) -> Inline {
    if conn.is_broken() {
        return Inline::Done;
    }
    let Some(data) = encode(conn, &mut sink.buf, tag, &msg) else {
        return Inline::Done;
    };
    // `encode` writes an Rread's data after its head only if the Rread itself was encoded.
    let whole = data.len() == data_of(&msg).len();
    let head = &sink.buf[..];
    let total = head.len() + data.len();
    let mut sent = 0;
    let failed = match &sink.try_send {
        Some(try_send) => loop {
            if sent == total {
                break None;
            }
            let (h, d) = rest(head, data, sent);
            match try_send(&[IoSlice::new(h), IoSlice::new(d)]) {
                Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) => break Some(e),
            }
        },
        None => None,
    };
    let outcome = if let Some(e) = failed {
        lost(conn, &e);
        Inline::Done
    } else if sent >= total {
        Inline::Done
    } else {
        sink.pending_sent = sent;
        sink.pending = Some(match msg {
            Rmsg::Read { data } if whole => data,
            _ => Vec::new(),
        });
        return Inline::Blocked;
    };
    drop(msg);
    if sink.buf.capacity() > KEEP_BUF {
        sink.buf = Vec::new();
    }
    outcome
}

/// Encode a reply's frame into `buf`: the frame, or for an `Rread` its head, with the data to
/// write after it (empty for every other reply). A reply over msize becomes an Rerror; `None`
/// if not even that can be encoded.
fn encode<'m>(conn: &Conn, buf: &mut Vec<u8>, tag: u16, msg: &'m Rmsg) -> Option<&'m [u8]> {
    buf.clear();
    let msize = usize::try_from(conn.msize()).unwrap_or(usize::MAX);
    let fits = msg.encoded_len() <= msize.max(proto::MSIZE_MIN as usize);
    let encoded = match msg {
        Rmsg::Read { data } if fits => proto::encode_rread_head(tag, data.len(), buf),
        _ if fits => proto::encode_r(tag, msg, buf),
        _ => Err(proto::EncodeError::FrameTooLarge {
            len: msg.encoded_len(),
        }),
    };
    if encoded.is_err() {
        buf.clear();
        let e = conn.fail(&super::err::Error::Server(super::err::msg::REPLY_TOO_BIG));
        if proto::encode_r(tag, &e, buf).is_err() {
            return None;
        }
    }
    Some(match msg {
        Rmsg::Read { data } if encoded.is_ok() => data,
        _ => &[],
    })
}

/// Write every part, tolerating a peer that does not read for a while (see the module doc).
fn write_parts(conn: &Conn, w: &mut dyn Write, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    IoSlice::advance_slices(&mut bufs, 0);
    let mut progress = Instant::now();
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut bufs, n);
                progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let stalled = progress.elapsed();
                if stalled >= WRITE_TIMEOUT {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("replies unread for {} s", stalled.as_secs()),
                    ));
                }
                if stalled >= STALL && conn.holds_shared_memory() && conn.memory_contended() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "replies unread for {} s while other connections wait for memory",
                            stalled.as_secs()
                        ),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    w.flush()
}

/// The reply in a reply-queue item of an in-process session, if it is one.
pub fn unpack(o: Out) -> Option<(u16, Rmsg)> {
    match o {
        Out::Reply(t, r) => Some((t, r)),
        Out::Close => None,
    }
}

impl Conn {
    /// Stop the connection after a failed write: the reader ends, later replies are dropped.
    pub(super) fn abandon(&self) {
        self.set_broken();
        self.shut();
    }

    /// Whether the connection holds any of the shared memory budget.
    fn holds_shared_memory(&self) -> bool {
        self.bytes_in_flight() > super::budget::CONN_RESERVE
    }
}
