//! The console's online check (`check`) and its progress (`show check`).
//!
//! `check` commits (through the sync worker, like `sync`), pins that commit
//! (`Store::pin_commit`: nothing it reaches is reused while pinned) and
//! checks it with `gefs_core::check::check_pinned`, on every core, while the
//! server goes on serving and committing: no lock is held for the check's
//! duration, so writers and syncs never wait for it (they used to wait on the
//! commit gate for the whole check). The cost is space: what commits free
//! during the check is reusable only once it ends.
//!
//! The answer follows gefs-check: the problems (each damaged block with the
//! files it takes with it) and a summary, answered `ok` when clean (client
//! exit 0), `error` when problems were found (exit 1), and `unable` when the
//! commit could not be checked (exit 2). One check runs at a time; `show
//! check` shows its progress, or the outcome of the last one.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

use gefs_core::check::{check_pinned, CheckOpts, Progress, Report};
use gefs_core::units::human;

use super::run::{json, Answer};
use crate::server::Core;

/// Online checks: the running one, and the outcome of the last.
#[derive(Debug, Default)]
pub struct ScrubState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: Option<Running>,
    last: Option<Finished>,
}

#[derive(Debug)]
struct Running {
    /// The commit being checked (0 until pinned).
    commit: u64,
    started: Instant,
    /// Bytes scanned and to scan.
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

/// How the last check ended.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// The commit checked (0 if none could be pinned).
    pub commit: u64,
    /// When it ended, Unix seconds.
    pub finished: u64,
    /// How long it took, seconds.
    pub seconds: f64,
    /// `clean`, `problems` or `error` (could not check).
    pub status: &'static str,
    /// Problems found.
    pub problems: usize,
    /// Warnings found.
    pub warnings: usize,
    /// Why it could not check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A running check, as `show check` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunningView {
    /// The commit being checked.
    pub commit: u64,
    /// Seconds since it started.
    pub seconds: f64,
    /// Bytes scanned so far.
    pub done_bytes: u64,
    /// Bytes to scan.
    pub total_bytes: u64,
}

/// What `show check` shows.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// The check in progress.
    pub running: Option<RunningView>,
    /// The last check that ended.
    pub last: Option<Finished>,
}

impl ScrubState {
    /// The running check's progress and the last outcome.
    pub fn view(&self) -> CheckView {
        let st = self.inner.lock();
        CheckView {
            running: st.running.as_ref().map(|r| RunningView {
                commit: r.commit,
                seconds: r.started.elapsed().as_secs_f64(),
                done_bytes: r.done.load(Ordering::Relaxed),
                total_bytes: r.total.load(Ordering::Relaxed),
            }),
            last: st.last.clone(),
        }
    }
}

impl CheckView {
    /// As text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match &self.running {
            Some(r) if r.commit == 0 => {
                let _ = writeln!(out, "check starting ({:.1} s)", r.seconds);
            }
            Some(r) => {
                let pct = (u128::from(r.done_bytes) * 100)
                    .checked_div(u128::from(r.total_bytes))
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "checking commit {}: {pct}% ({} of {}), {:.1} s",
                    r.commit,
                    human(r.done_bytes),
                    human(r.total_bytes),
                    r.seconds
                );
            }
            None => out.push_str("no check running\n"),
        }
        if let Some(l) = &self.last {
            let what = match (l.status, &l.error) {
                (_, Some(e)) => format!("could not check: {e}"),
                ("clean", _) => "clean".to_string(),
                _ => format!("{} problems, {} warnings", l.problems, l.warnings),
            };
            let _ = writeln!(
                out,
                "last check: commit {}, {what}, in {:.2} s, ended at {} (Unix time)",
                l.commit, l.seconds, l.finished
            );
        }
        out
    }
}

/// Marks the check finished however `run` returns.
struct Ending<'a> {
    state: &'a ScrubState,
    commit: u64,
    outcome: Option<(&'static str, usize, usize, Option<String>)>,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut st = self.state.inner.lock();
        let seconds = st
            .running
            .take()
            .map_or(0.0, |r| r.started.elapsed().as_secs_f64());
        let (status, problems, warnings, error) = self.outcome.take().unwrap_or((
            "error",
            0,
            0,
            Some("the check stopped (internal error)".into()),
        ));
        st.last = Some(Finished {
            commit: self.commit,
            finished: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seconds,
            status,
            problems,
            warnings,
            error,
        });
    }
}

/// `check`: commit, pin, check in parallel while serving, report.
pub fn run(core: &Core, j: bool) -> Answer {
    let done = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    {
        let mut st = core.scrub.inner.lock();
        if st.running.is_some() {
            return Answer::Error(
                "a check is already running; `show check` shows its progress".into(),
            );
        }
        st.running = Some(Running {
            commit: 0,
            started: Instant::now(),
            done: done.clone(),
            total: total.clone(),
        });
    }
    let mut end = Ending {
        state: &core.scrub,
        commit: 0,
        outcome: None,
    };
    if !core.opts.read_only {
        if let Err(e) = super::run::sync(core) {
            return give_up(&mut end, format!("sync before check failed: {e}"), j);
        }
    }
    let store = core.store();
    let pin = match store.pin_commit() {
        Ok(p) => p,
        Err(e) => return give_up(&mut end, format!("check: {e}"), j),
    };
    end.commit = pin.commit_gen;
    if let Some(r) = core.scrub.inner.lock().running.as_mut() {
        r.commit = pin.commit_gen;
    }
    eprintln!("gefsd: console: check of commit {} started", pin.commit_gen);
    let (d, t) = (done.clone(), total.clone());
    let opts = CheckOpts {
        threads: 0,
        progress: Some(Arc::new(move |p: Progress| {
            d.store(p.done, Ordering::Relaxed);
            t.store(p.total, Ordering::Relaxed);
        })),
    };
    let r = check_pinned(&pin, &opts);
    let commit = pin.commit_gen;
    drop(pin);
    let rep = match r {
        Ok(rep) => rep,
        Err(e) => return give_up(&mut end, format!("check: {e}"), j),
    };
    let clean = rep.is_clean();
    let status = if clean { "clean" } else { "problems" };
    end.outcome = Some((status, rep.problems.len(), rep.warnings.len(), None));
    eprintln!(
        "gefsd: console: check of commit {commit}: {}",
        if clean {
            "clean".to_string()
        } else {
            format!("{} problems", rep.problems.len())
        }
    );
    let body = if j {
        json(&CheckJson {
            status,
            exit_code: u8::from(!clean),
            commit,
            error: None,
            report: Some(&rep),
        })
    } else {
        Ok(text(commit, &rep))
    };
    match (body, clean) {
        (Ok(b), true) => Answer::Ok(b),
        (Ok(b), false) => Answer::Error(b),
        (Err(e), _) => Answer::Unable(e),
    }
}

/// The JSON answer: gefs-check's document, with the commit checked.
#[derive(Serialize)]
struct CheckJson<'a> {
    status: &'static str,
    exit_code: u8,
    commit: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    report: Option<&'a Report>,
}

/// The check could not be made: record why, and answer `unable`.
fn give_up(end: &mut Ending<'_>, e: String, j: bool) -> Answer {
    end.outcome = Some(("error", 0, 0, Some(e.clone())));
    if !j {
        return Answer::Unable(e);
    }
    let doc = CheckJson {
        status: "error",
        exit_code: 2,
        commit: 0,
        error: Some(e.clone()),
        report: None,
    };
    Answer::Unable(json(&doc).unwrap_or(e))
}

/// The text answer: gefs-check's lines, and a summary naming the commit.
fn text(commit: u64, r: &Report) -> String {
    let mut out = String::new();
    for p in &r.problems {
        let _ = writeln!(out, "problem: {p}");
        for f in &p.files {
            let _ = writeln!(out, "    {f}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let s = &r.stats;
    let verdict = if r.is_clean() {
        "clean".to_string()
    } else {
        format!(
            "{} problems, {} warnings",
            r.problems.len(),
            r.warnings.len()
        )
    };
    let _ = writeln!(
        out,
        "commit {commit} checked while serving: {} blocks ({}) in {:.2} s ({:.0} MB/s, {} \
         threads), {} trees; {verdict}",
        s.blocks_checked,
        human(s.bytes_checked),
        s.seconds,
        s.mb_per_s,
        s.threads,
        r.trees.len()
    );
    out
}
