//! A connection's replies on their way to the socket: the queue, and the writer thread that
//! drains it.
//!
//! The writer thread exists only while there is something to write: the first reply queued
//! starts it, and it ends after [`LINGER`] with nothing to write, leaving the socket's sending
//! half parked in the outbox for the next one. So an idle connection costs one thread (its
//! reader), not two.
//!
//! Writing: replies go out in the order they were queued; the flushes that waited on a reply
//! are answered right after it (see `conn`). An `Rread`'s data is written from the reply
//! itself, behind a separately encoded head, never copied into a frame buffer. A reply's bytes
//! stay charged to the memory budgets until it has been written. A peer that reads nothing for
//! [`STALL`] while other connections wait for memory, or for [`WRITE_TIMEOUT`] in any case,
//! loses its connection.
//!
//! Invariants (under the outbox mutex): `sink` is `Some` exactly when no writer runs; a
//! non-empty queue always has a writer; after `close`, nothing more is queued.

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

/// The socket's sending half and its frame buffer.
pub struct Sink {
    w: Box<dyn Write + Send>,
    buf: Vec<u8>,
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
    /// An outbox writing to `w`.
    pub fn socket(w: Box<dyn Write + Send>) -> Outbox {
        Outbox {
            st: Mutex::new(State {
                sink: Some(Sink { w, buf: Vec::new() }),
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
        let c = conn.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("9p-write-{}", conn.id))
            .spawn(move || drain(&c, sink, Some(LINGER)));
        if let Err(e) = spawned {
            // No thread to be had, and the sink went with the closure: the connection ends,
            // and the replies queued are retired unwritten.
            eprintln!("gefsd: cannot start a writer thread: {e}; closing the connection");
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
    let buf = &mut sink.buf;
    buf.clear();
    let msize = usize::try_from(conn.msize()).unwrap_or(usize::MAX);
    let fits = msg.encoded_len() <= msize.max(proto::MSIZE_MIN as usize);
    let encoded = match &msg {
        Rmsg::Read { data } if fits => proto::encode_rread_head(tag, data.len(), buf),
        _ if fits => proto::encode_r(tag, &msg, buf),
        _ => Err(proto::EncodeError::FrameTooLarge {
            len: msg.encoded_len(),
        }),
    };
    if encoded.is_err() {
        buf.clear();
        let e = conn.fail(&super::err::Error::Server(super::err::msg::REPLY_TOO_BIG));
        if proto::encode_r(tag, &e, buf).is_err() {
            return;
        }
    }
    let data: &[u8] = match &msg {
        Rmsg::Read { data } if encoded.is_ok() => data,
        _ => &[],
    };
    let wrote = write_parts(conn, &mut *sink.w, &[&sink.buf, data]);
    drop(msg);
    if sink.buf.capacity() > KEEP_BUF {
        sink.buf = Vec::new();
    }
    if let Err(e) = wrote {
        if e.kind() == io::ErrorKind::TimedOut {
            eprintln!("gefsd: {}: closing the connection: {e}", conn.peer.desc);
        }
        conn.abandon();
    }
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
