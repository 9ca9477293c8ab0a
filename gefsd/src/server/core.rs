//! The server's shared state: the file system, the options, the worker queues, the registry
//! of connections and of exclusive opens.
//!
//! Who owns what:
//! - `Fs` (and the `Store` under it) is shared by every worker; the file-system layer's writer
//!   lock serialises changes, readers take no lock (DESIGN.md §2);
//! - `excl` counts open fids per exclusive-use file (DMEXCL), across connections;
//! - `commit_gate` is held by everything that commits (the sync worker, the sweeper's
//!   snapshot and configuration commands, the retention pass), so that commits never
//!   interleave; the console's `check` holds nothing while it checks (it pins a commit,
//!   `console/scrub.rs`);
//! - `conns` maps connection numbers to connections, for `show fid` and for stopping;
//! - `locks` holds 9P2000.L record locks (`locks.rs`), released on clunk and disconnect.
//!
//! Lock order: a fid lock, then `excl`; `conns` and `commit_gate` are never held while taking
//! a fid lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::channel::Sender;
use parking_lot::Mutex;

use gefs_core::fs::Fs;
use gefs_core::fs::Store;

use super::budget::Budget;
use super::conn::Conn;
use super::locks::Locks;
use super::workers::{SweepReq, SyncReq, Work};
use super::Options;

/// Least seconds between two explanations of a full file system in the log.
pub const FULL_NOTE_SECS: u64 = 10;

/// The senders of the worker queues.
#[derive(Debug)]
pub struct Queues {
    /// One queue per read worker; a request for fid `f` goes to `read[hash(conn, f) % n]`.
    pub read: Vec<Sender<Work>>,
    /// The mutator's queue.
    pub mutate: Sender<Work>,
    /// The sync worker's queue.
    pub sync: Sender<SyncReq>,
    /// The sweeper's queue.
    pub sweep: Sender<SweepReq>,
    /// Tells whoever waits on the server (main, tests) that the console asked to halt.
    pub halt: Sender<()>,
}

/// State shared by every thread of the server.
pub struct Core {
    /// The file system.
    pub fs: Arc<Fs>,
    /// The options the server was started with.
    pub opts: Options,
    /// Start time, Unix seconds (the dump directory's times).
    pub started: u32,
    /// The worker queues.
    pub queues: Queues,
    /// Held while committing.
    pub commit_gate: Mutex<()>,
    /// The memory budget of bytes in flight, shared by every connection.
    pub budget: Arc<Budget>,
    /// 9P2000.L record locks.
    pub locks: Locks,
    /// The console's online checks.
    pub scrub: crate::console::ScrubState,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    stopping: AtomicBool,
    /// When a full file system was last explained in the log (seconds since
    /// `started`, plus one; 0: never).
    full_noted: AtomicU64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("opts", &self.opts).finish()
    }
}

impl Core {
    /// A core over `fs`.
    pub fn new(fs: Arc<Fs>, opts: Options, queues: Queues) -> Core {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let budget = Arc::new(Budget::new(opts.limits.conn_bytes, opts.limits.total_bytes));
        Core {
            budget,
            fs,
            opts,
            started,
            queues,
            commit_gate: Mutex::new(()),
            locks: Locks::default(),
            scrub: crate::console::ScrubState::default(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            full_noted: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        self.fs.store()
    }

    /// Whether the server is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Mark the server as stopping (listeners and readers check this).
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// A new connection number.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Record a live connection.
    pub fn register(&self, c: &Arc<Conn>) {
        self.conns.lock().insert(c.id, c.clone());
    }

    /// Forget a connection.
    pub fn unregister(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    /// Live connections.
    pub fn conns(&self) -> Vec<Arc<Conn>> {
        let mut v: Vec<_> = self.conns.lock().values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Number of live connections.
    pub fn nconns(&self) -> usize {
        self.conns.lock().len()
    }

    /// A request failed because the file system is full: say in the log how
    /// much snapshots hold and how to free it (at most once every
    /// [`FULL_NOTE_SECS`] seconds: a full device fails many requests).
    pub fn note_full(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(u64::from(self.started))
            + 1;
        let last = self.full_noted.load(Ordering::Relaxed);
        if last != 0 && now < last + FULL_NOTE_SECS {
            return;
        }
        if self
            .full_noted
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let space = self.fs.space().ok();
            tracing::warn!(
                size = space.as_ref().map(|s| s.size),
                free = space.as_ref().map(|s| s.free),
                reserve = space.as_ref().map(|s| s.reserve),
                available = space.as_ref().map(|s| s.available),
                snapshots = space.as_ref().map(|s| s.snapshots),
                "{}",
                self.fs.explain_full()
            );
        }
    }
}
