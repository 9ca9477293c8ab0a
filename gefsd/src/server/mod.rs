//! The 9P2000 and 9P2000.L server: connections, fids, request handlers and the worker threads.
//!
//! Structure (see `workers` for the channel graph):
//! - [`Server::start`] spawns the workers over a [`Fs`]: read workers, one mutator, the sync
//!   worker, the sweeper and the clock;
//! - [`Server::listen`] binds an address and accepts connections, each served by a reader
//!   thread and a writer thread (`conn`); [`Server::connect`] makes an in-process connection
//!   over a socket pair, [`Server::serve_stdio`] serves standard input and output;
//! - [`Server::stop`] stops accepting, lets every in-flight request finish, clunks every fid,
//!   stops the workers, commits, and returns the last commit.
//!
//! The request handlers (`ops`, and `ops_l` for 9P2000.L) take decoded messages and return
//! replies, independent of any transport. [`spawn_for_test`] runs a whole server on an in-memory device.

mod attach;
mod auth;
pub mod budget;
mod conn;
mod core;
mod dir;
mod dir_l;
mod direct;
pub mod err;
mod fid;
pub mod listen;
pub mod locks;
mod ops;
mod ops_l;
mod outbox;
pub mod posix;
mod workers;
mod wstat;

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, unbounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use gefs_core::fs::Fs;
use gefs_core::fs::{CommitInfo, Store};

pub use self::core::Core;
pub use conn::{Conn, Peer, SetTimeout, Transport};
pub use direct::Session;
pub use listen::{parse_addr, ListenAddr};
pub use workers::{last_commit, log_failed_commit, SweepReq, SyncReq};

use listen::Bound;
use workers::Work;

/// Per-connection and server-wide limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub max_conns: usize,
    /// Fids per connection; an attach or walk beyond it gets "too many fids".
    pub max_fids: usize,
    /// Requests in flight per connection; beyond it the connection is not read
    /// (back-pressure).
    pub max_inflight: usize,
    /// Bytes in flight per connection (requests read but not answered, replies not yet
    /// written); beyond it the connection is not read (back-pressure). See `budget`.
    pub conn_bytes: usize,
    /// Bytes in flight over all connections, beyond each connection's first
    /// [`budget::CONN_RESERVE`]; beyond it, connections wanting more are not read.
    pub total_bytes: usize,
    /// A frame must arrive whole within this of its first byte, and a new connection must
    /// attach within it (slowloris).
    pub frame_timeout: Duration,
    /// An attached connection may idle this long between frames (`None`: forever).
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 256,
            max_fids: 4096,
            max_inflight: 64,
            conn_bytes: 4 << 20,
            total_bytes: 16 << 20,
            frame_timeout: Duration::from_secs(30),
            idle_timeout: None,
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-A`: no authentication; any uname in the users table may attach.
    pub noauth: bool,
    /// `-R`: the store is read-only; nothing is ever written.
    pub read_only: bool,
    /// The largest msize offered.
    pub msize: u32,
    /// Limits.
    pub limits: Limits,
    /// Read workers.
    pub read_workers: usize,
    /// How often the clock asks for a commit.
    pub sync_every: Duration,
    /// How often the clock runs the retention pass (`None`: never).
    pub retain_every: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            noauth: false,
            read_only: false,
            msize: crate::proto::MSIZE_DEFAULT,
            limits: Limits::default(),
            read_workers: cpus.clamp(2, 4),
            sync_every: Duration::from_secs(5),
            retain_every: Some(Duration::from_secs(60)),
        }
    }
}

/// Connection threads alive, so that stopping can wait for them.
#[derive(Debug, Default)]
struct Live {
    n: Mutex<usize>,
    cv: Condvar,
}

impl Live {
    fn enter(self: &Arc<Self>) -> LiveGuard {
        *self.n.lock() += 1;
        LiveGuard(self.clone())
    }

    fn wait_zero(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut n = self.n.lock();
        while *n > 0 {
            if self.cv.wait_until(&mut n, deadline).timed_out() {
                return false;
            }
        }
        true
    }
}

struct LiveGuard(Arc<Live>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut n = self.0.n.lock();
        *n = n.saturating_sub(1);
        self.0.cv.notify_all();
    }
}

/// A requester of a graceful stop (from a signal thread or the console).
#[derive(Debug, Clone)]
pub struct Stopper(Sender<()>);

impl Stopper {
    /// Ask the server to stop; whoever waits in [`Server::wait`] wakes.
    pub fn stop(&self) {
        let _ = self.0.try_send(());
    }
}

/// A running server.
pub struct Server {
    core: Arc<Core>,
    workers: Vec<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    clock_stop: Sender<()>,
    listeners: Vec<(Arc<Bound>, listen::Waker, JoinHandle<()>)>,
    live: Arc<Live>,
    halt_rx: Receiver<()>,
    halt_tx: Sender<()>,
    console: Option<crate::console::Handle>,
    addrs: Vec<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Server {
    /// Start the workers over `fs`.
    pub fn start(fs: Arc<Fs>, opts: Options) -> io::Result<Server> {
        let n = opts.read_workers.max(1);
        let (mut read_tx, mut read_rx) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (t, r) = bounded(256);
            read_tx.push(t);
            read_rx.push(r);
        }
        let (mut_tx, mut_rx) = bounded(256);
        let (sync_tx, sync_rx) = unbounded();
        let (sweep_tx, sweep_rx) = bounded(64);
        let (halt_tx, halt_rx) = bounded(1);
        let queues = core::Queues {
            read: read_tx,
            mutate: mut_tx,
            sync: sync_tx,
            sweep: sweep_tx,
            halt: halt_tx.clone(),
        };
        let core = Arc::new(Core::new(fs, opts, queues));
        let mut workers = Vec::new();
        for (i, r) in read_rx.into_iter().enumerate() {
            workers.push(workers::spawn_runner(format!("gefs-read-{i}"), r)?);
        }
        workers.push(workers::spawn_runner("gefs-mutate".into(), mut_rx)?);
        workers.push(workers::spawn_sweeper(core.clone(), sweep_rx)?);
        let (clock_stop, clock_rx) = bounded(1);
        workers.push(workers::spawn_clock(core.clone(), clock_rx)?);
        let syncer = Some(workers::spawn_syncer(core.clone(), sync_rx)?);
        Ok(Server {
            core,
            workers,
            syncer,
            clock_stop,
            listeners: Vec::new(),
            live: Arc::new(Live::default()),
            halt_rx,
            halt_tx,
            console: None,
            addrs: Vec::new(),
        })
    }

    /// The shared state (for the console and tests).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Bind `a` and accept connections on it. Returns the address bound, as a dial string.
    pub fn listen(&mut self, a: &ListenAddr) -> io::Result<String> {
        listen::check_allowed(a, self.core.opts.noauth)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        let b = Arc::new(listen::bind(a)?);
        let name = match &*b {
            Bound::Tcp(l) => {
                let la = l.local_addr()?;
                format!("tcp!{}!{}", la.ip(), la.port())
            }
            Bound::Unix(_, p) => format!("unix!{}", p.display()),
        };
        let (core, live, b2) = (self.core.clone(), self.live.clone(), b.clone());
        let (waker, wake) = listen::waker()?;
        let h = std::thread::Builder::new()
            .name(format!("gefs-listen {name}"))
            .spawn(move || accept_loop(core, live, b2, wake))?;
        self.listeners.push((b, waker, h));
        self.addrs.push(name.clone());
        Ok(name)
    }

    /// The first TCP address listened on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find_map(|(b, _, _)| match &**b {
            Bound::Tcp(l) => l.local_addr().ok(),
            Bound::Unix(..) => None,
        })
    }

    /// Every address listened on, as dial strings.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Serve 9P on standard input and output (`-s`), on a thread of its own. A pipe cannot be
    /// woken, so stopping does not wait for this connection: requests already queued still
    /// run before the workers stop, but their replies may not be written.
    pub fn serve_stdio(&self) -> io::Result<()> {
        let core = self.core.clone();
        std::thread::Builder::new()
            .name("9p-stdio".into())
            .spawn(move || conn::serve(core, listen::stdio_transport()))?;
        Ok(())
    }

    /// An in-process connection: the returned socket is the client's end.
    pub fn connect(&self) -> io::Result<UnixStream> {
        let (client, server) = UnixStream::pair()?;
        let t = listen::unix_transport(server, "pair".into())?;
        let (core, guard) = (self.core.clone(), self.live.enter());
        std::thread::Builder::new()
            .name("9p-pair".into())
            .spawn(move || {
                let _g = guard;
                conn::serve(core, t);
            })?;
        Ok(client)
    }

    /// Serve the console on a Unix socket at `path` (created mode 0600).
    pub fn start_console(&mut self, path: PathBuf) -> io::Result<()> {
        let h = crate::console::start(self.core.clone(), self.stopper(), path)?;
        self.console = Some(h);
        Ok(())
    }

    /// The console socket's path, if one is served.
    pub fn console_path(&self) -> Option<&std::path::Path> {
        self.console.as_ref().map(|c| c.path())
    }

    /// An in-process session whose requests are handled on the calling thread (tests, fuzzing);
    /// `user` is the identity peer credentials would report.
    pub fn session(&self, user: Option<String>) -> Session {
        Session::new(self.core.clone(), user)
    }

    /// An in-process session whose peer credentials are `peer`'s.
    pub fn session_with(&self, peer: Peer) -> Session {
        Session::with_peer(self.core.clone(), peer)
    }

    /// A handle that asks the server to stop.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.halt_tx.clone())
    }

    /// Block until a stop is asked for (console `halt`, [`Stopper::stop`]).
    pub fn wait(&self) {
        let _ = self.halt_rx.recv();
    }

    /// Stop gracefully: stop accepting, finish every in-flight request, clunk every fid (ORCLOSE
    /// removes included), stop the workers, and commit. Returns the final commit.
    pub fn stop(mut self) -> crate::error::Result<CommitInfo> {
        self.core.set_stopping();
        if let Some(c) = self.console.take() {
            c.stop();
        }
        for (b, waker, h) in self.listeners.drain(..) {
            waker.wake();
            let _ = h.join();
            if let Bound::Unix(_, p) = &*b {
                let _ = std::fs::remove_file(p);
            }
        }
        for c in self.core.conns() {
            c.shut();
        }
        self.core.budget.wake_all();
        // Every socket was shut for reading, so each reader ends once its in-flight requests
        // are answered; the bound only guards against a writer stuck on a peer that does not
        // read (its write times out after a minute).
        self.live.wait_zero(Duration::from_secs(90));
        let _ = self.clock_stop.send(());
        for q in &self.core.queues.read {
            let _ = q.send(Work::Stop);
        }
        let _ = self.core.queues.mutate.send(Work::Stop);
        let _ = self.core.queues.sweep.send(SweepReq::Stop);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        let (tx, rx) = bounded(1);
        let _ = self.core.queues.sync.send(SyncReq::Notify(tx));
        let _ = self.core.queues.sync.send(SyncReq::Stop);
        let r = rx.recv().unwrap_or(Err(crate::error::Error::Stopped));
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
        r
    }
}

fn accept_loop(core: Arc<Core>, live: Arc<Live>, b: Arc<Bound>, wake: listen::Wakeable) {
    loop {
        let t = match &*b {
            Bound::Tcp(l) => listen::accept(l, &wake, listen::accept_tcp).map(|a| match a {
                listen::Accepted::Conn(s) => Some(listen::tcp_transport(s, core.opts.noauth)),
                listen::Accepted::Woken => None,
            }),
            Bound::Unix(l, p) => listen::accept(l, &wake, listen::accept_unix).map(|a| match a {
                listen::Accepted::Conn(s) => {
                    Some(listen::unix_transport(s, format!("unix!{}", p.display())))
                }
                listen::Accepted::Woken => None,
            }),
        };
        if core.stopping() {
            return;
        }
        let t = match t {
            Ok(Some(Ok(t))) => t,
            Ok(None) => return,
            Ok(Some(Err(e))) | Err(e) => {
                tracing::warn!(error = %e, "accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if core.nconns() >= core.opts.limits.max_conns {
            // Dropping the transport closes the connection.
            tracing::warn!(
                peer = %t.peer.desc,
                max_conns = core.opts.limits.max_conns,
                "refused a connection: already serving --max-conns connections"
            );
            continue;
        }
        let (c, guard) = (core.clone(), live.enter());
        let r = std::thread::Builder::new()
            .name("9p-conn".into())
            .spawn(move || {
                let _g = guard;
                conn::serve(c, t);
            });
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot start a connection thread: {e}");
        }
    }
}

/// A fresh in-memory store of `size` bytes, formatted with `user` as first administrator.
pub fn memory_store(size: u64, user: &str) -> Result<Arc<Store>, gefs_core::Error> {
    let dev = Arc::new(gefs_core::device::MemDev::new(size));
    let opts = gefs_core::store::FormatOpts {
        user: user.to_string(),
        cache_bytes: 16 << 20,
    };
    Ok(Arc::new(Store::format(dev, &opts)?))
}

/// The login name tests and the in-process server use: the password database's name for
/// this process's uid (what peer credentials will report).
pub fn current_user() -> String {
    gefs_core::host::user_name(rustix::process::getuid().as_raw())
        .unwrap_or_else(|| "glenda".to_string())
}

/// A whole server on a 256 MiB in-memory device whose first administrator is
/// [`current_user`], listening on `127.0.0.1:0`. Returns the server and its address; stop it
/// with [`Server::stop`].
pub fn spawn_for_test(opts: Options) -> io::Result<(Server, SocketAddr)> {
    let store = memory_store(256 << 20, &current_user()).map_err(io::Error::other)?;
    let fs = Arc::new(Fs::new(store, false).map_err(io::Error::other)?);
    let mut s = Server::start(fs, opts)?;
    let a = listen::parse_addr("tcp!127.0.0.1!0").map_err(io::Error::other)?;
    s.listen(&a)?;
    let addr = s
        .tcp_addr()
        .ok_or_else(|| io::Error::other("no TCP address"))?;
    Ok((s, addr))
}
