//! The worker threads and the channels between them.
//!
//! ```text
//! conn reader ──(attach, walk, open, read, stat: by fid)──► read[i] ──► read worker i ─┐
//!      │      └─(create, write, wstat, remove, open+TRUNC/RCLOSE, ORCLOSE clunk)──► mutator ─┤
//!      │                                            mutator (null wstat) ──► sync ──────┤
//!      └─(version, auth, flush, clunk: inline) ─────────────────────────────────────────┤
//! clock ──(every 5 s)──► sync        clock ──(retention pass, quiet checkpoint)──► sweep │
//! console ──► sync (sync, halt), sweep (snap, set, clear)                               │
//! sweeper: Fs::sweep in bounded steps, between requests                                 │
//!                                  replies ──► the connection's writer ◄────────────────┘
//! ```
//!
//! Read workers never take the writer lock or the mutation lock for reads (epochs protect
//! them); attaching a mutable tree takes the writer lock briefly. The mutator applies the
//! changes, one request at a time, except that a request that is its connection's only one in
//! flight runs on the connection's reader (`ops::route`), under the same file-system writer
//! lock; replies are written by the thread that made them (`outbox`), the connection's writer
//! takes only what the socket did not take at once. The sync worker coalesces queued sync
//! requests into one commit, and answers every request that was queued before the commit
//! began only once the commit is durable. The sweeper clears removed and truncated data a few hundred keys at a
//! time, releasing the writer lock between steps, and runs administrative work (snapshots,
//! configuration, retention). Every task runs under `catch_unwind`: a bug that panics fails
//! one request, not the server.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};

use gefs_core::fs::CommitInfo;

use super::conn::Conn;
use super::core::Core;
use super::err;
use crate::error::{Error, Result};
use crate::proto::{Dialect, Rmsg, RmsgL};

/// A unit of work for a read worker or the mutator.
pub enum Work {
    /// Run this.
    Run(Box<dyn FnOnce() + Send>),
    /// Finish: everything queued before has run.
    Stop,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Work::Run(_) => "Run",
            Work::Stop => "Stop",
        })
    }
}

/// Who waits for a commit.
pub enum SyncReq {
    /// The clock: commit if anything changed.
    Periodic,
    /// A null wstat: answer `tag` on `conn` once durable.
    Reply(Arc<Conn>, u16),
    /// A 9P2000.L Tfsync: answer `tag` on `conn` once durable.
    Fsync(Arc<Conn>, u16),
    /// The console (or shutdown): send the outcome.
    Notify(Sender<Result<CommitInfo>>),
    /// Finish after one last commit.
    Stop,
}

/// Work for the sweeper.
pub enum SweepReq {
    /// Clears were queued: look.
    Kick,
    /// Administrative work to run between sweep steps.
    Admin(Box<dyn FnOnce() + Send>),
    /// Finish.
    Stop,
}

/// Run a task; a panic is caught and reported, never propagated.
pub fn run_guarded(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!(
            task = what,
            "internal error: a {what} task panicked; the request failed"
        );
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// A read worker or the mutator: run tasks in order until told to stop.
pub fn spawn_runner(name: String, rx: Receiver<Work>) -> std::io::Result<JoinHandle<()>> {
    let what = name.clone();
    spawn(name, move || {
        while let Ok(w) = rx.recv() {
            match w {
                Work::Run(f) => run_guarded(&what, f),
                Work::Stop => break,
            }
        }
    })
}

/// The sync worker.
pub fn spawn_syncer(core: Arc<Core>, rx: Receiver<SyncReq>) -> std::io::Result<JoinHandle<()>> {
    spawn("gefs-sync".into(), move || loop {
        let Ok(first) = rx.recv() else { return };
        let mut reqs = vec![first];
        while let Ok(r) = rx.try_recv() {
            reqs.push(r);
        }
        let stop = reqs.iter().any(|r| matches!(r, SyncReq::Stop));
        let outcome = commit(&core);
        for r in reqs {
            match r {
                SyncReq::Reply(conn, tag) => match &outcome {
                    Ok(_) => conn.reply(tag, Rmsg::Wstat),
                    Err(e) => conn.reply(tag, err::commit_failed(Dialect::P9, e)),
                },
                SyncReq::Fsync(conn, tag) => match &outcome {
                    Ok(_) => conn.reply(tag, Rmsg::L(RmsgL::Fsync)),
                    Err(e) => conn.reply(tag, err::commit_failed(Dialect::L, e)),
                },
                SyncReq::Notify(tx) => {
                    let _ = tx.send(outcome.clone());
                }
                SyncReq::Periodic | SyncReq::Stop => {}
            }
        }
        if let Err(e) = &outcome {
            // A store that failed said so once, when it latched.
            if !core.store().has_failed() {
                log_failed_commit("sync", e);
            }
        }
        if stop {
            return;
        }
    })
}

/// Sweep steps a commit runs first, finishing the clears of removed and truncated files so
/// that their space comes back with this commit (each step clears up to
/// `gefs_core::fs::CLEAR_CHUNK` blocks: 256 steps are 1 GiB of file data). Larger clears go on
/// in the sweeper and come back with later commits.
pub const COMMIT_SWEEP_STEPS: usize = 256;

/// One commit under the commit gate, after finishing pending clears (up to
/// [`COMMIT_SWEEP_STEPS`]). A server started read-only (`-R`) has nothing to commit and
/// succeeds; a store latched by a device failure fails ([`gefs_core::Error::Failed`]), because
/// earlier changes may not be durable.
pub fn commit(core: &Core) -> Result<CommitInfo> {
    let s = core.store();
    if core.opts.read_only {
        return Ok(CommitInfo {
            gen: s.commit_gen(),
            wrote: false,
        });
    }
    let _g = core.commit_gate.lock();
    if core.fs.clears_pending() > 0 && !s.is_read_only() {
        if let Err(e) = core.fs.sweep(COMMIT_SWEEP_STEPS) {
            // The commit goes on: it makes durable what was done, and the sweeper retries.
            tracing::warn!(error = %e, "clearing before a commit: {e}");
        }
        // Cleared blocks are freed when the clears reach the leaves: apply the write buffers
        // so that their space comes back with this commit.
        if let Err(e) = s.checkpoint() {
            tracing::warn!(error = %e, "applying the write buffers before a commit: {e}");
        }
    }
    Ok(s.sync()?)
}

/// Log a failed commit (`what`: which one), with the engine's detail (the device offset or
/// the block) that the client-safe text of `e` leaves out.
pub fn log_failed_commit(what: &str, e: &Error) {
    tracing::error!(error = %e, "{what} failed: {}", e.detailed());
}

/// A last commit before an immediate exit (a second stop signal): like [`commit`], but gives
/// up if the commit gate cannot be had within `wait` (a console `check` holding it, or a commit
/// stuck on the device).
pub fn last_commit(core: &Core, wait: Duration) -> Result<CommitInfo> {
    let s = core.store();
    if core.opts.read_only {
        return Ok(CommitInfo {
            gen: s.commit_gen(),
            wrote: false,
        });
    }
    let Some(_g) = core.commit_gate.try_lock_for(wait) else {
        return Err(Error::Busy(wait));
    };
    Ok(s.sync()?)
}

/// The sweeper.
pub fn spawn_sweeper(core: Arc<Core>, rx: Receiver<SweepReq>) -> std::io::Result<JoinHandle<()>> {
    spawn("gefs-sweep".into(), move || {
        let mut quiet_until = Instant::now();
        loop {
            let busy = core.fs.clears_pending() > 0
                && !core.store().is_read_only()
                && Instant::now() >= quiet_until;
            let req = if busy {
                rx.try_recv().ok()
            } else {
                match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            match req {
                Some(SweepReq::Stop) => return,
                Some(SweepReq::Admin(f)) => run_guarded("sweeper", f),
                Some(SweepReq::Kick) | None => {}
            }
            if busy {
                let fs = core.fs.clone();
                let mut failed = false;
                run_guarded("sweeper", || {
                    if let Err(e) = fs.sweep(4) {
                        tracing::warn!(error = %e, "background clear: {e}");
                        failed = true;
                    }
                });
                if failed {
                    quiet_until = Instant::now() + Duration::from_secs(5);
                }
            }
        }
    })
}

/// The clock: a sync request every `sync_every`, a retention pass every `retain_every`, and
/// at a quiet moment (no upsert for a whole tick while messages wait in the write buffers)
/// a checkpoint that applies the buffered messages to their trees, on the sweeper, so that
/// the message logs the syncs write stay short and lookups find their keys in the trees.
pub fn spawn_clock(core: Arc<Core>, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    spawn("gefs-clock".into(), move || {
        let tick = core.opts.sync_every.max(Duration::from_millis(10));
        let mut last_retain = Instant::now();
        let mut last_upserts = core.store().upserts();
        loop {
            match stop.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            if core.opts.read_only || core.store().is_read_only() {
                continue;
            }
            let upserts = core.store().upserts();
            if upserts == last_upserts && core.store().stats().buffered > 0 {
                let c = core.clone();
                let _ = core
                    .queues
                    .sweep
                    .try_send(SweepReq::Admin(Box::new(move || {
                        if let Err(e) = c.store().checkpoint() {
                            tracing::warn!(error = %e, "quiet-moment checkpoint: applying the write buffers: {e}");
                        }
                    })));
            }
            last_upserts = upserts;
            let _ = core.queues.sync.try_send(SyncReq::Periodic);
            if let Some(every) = core.opts.retain_every {
                if last_retain.elapsed() >= every {
                    last_retain = Instant::now();
                    let c = core.clone();
                    let _ = core
                        .queues
                        .sweep
                        .try_send(SweepReq::Admin(Box::new(move || retention(&c))));
                }
            }
        }
    })
}

/// One retention pass (automatic snapshots per `retain`), under the commit gate.
pub fn retention(core: &Core) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _g = core.commit_gate.lock();
    match gefs_core::admin::run_retention(core.store(), now) {
        Ok(rep) => {
            for label in &rep.taken {
                tracing::info!(label = %label, "retention: took snapshot {label}");
            }
            for label in &rep.deleted {
                tracing::info!(label = %label, "retention: aged out snapshot {label}");
            }
            for e in rep.errors {
                tracing::warn!(error = %e, "retention: {e}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "retention: {e}"),
    }
}
