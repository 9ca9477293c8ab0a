//! Carrying out console commands. Commands that commit (snap, set, clear) run on the sweeper,
//! under the commit gate; `sync` and `halt` go through the sync worker, so "synced" is printed
//! only once the commit is durable, and `halt` commits before it stops (the reference marked
//! the file system read-only first and lost up to 5 s, §9.1 / #3). Commands that change the
//! server's security or availability (permit, users, halt, snap -d, set, clear) are logged to
//! standard error.

use std::fmt::Write as _;
use std::sync::Arc;

use crossbeam::channel::bounded;
use serde::Serialize;

use gefs_core::admin::{self, Snap};
use gefs_core::snap::Snaps;

use super::parse::{Command, Request, Show, HELP};
use crate::error::Error;
use crate::server::{Core, Stopper, SweepReq, SyncReq};

type Out = Result<String, String>;

/// A console answer: the header word the client maps to its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `ok`: done (client exit 0).
    Ok(String),
    /// `error`: the command failed, or a check found problems (exit 1).
    Error(String),
    /// `unable`: the command could not be carried out at all, as a check
    /// that cannot read the image (exit 2).
    Unable(String),
}

impl Answer {
    /// The header word.
    pub fn word(&self) -> &'static str {
        match self {
            Answer::Ok(_) => "ok",
            Answer::Error(_) => "error",
            Answer::Unable(_) => "unable",
        }
    }

    /// The body.
    pub fn body(&self) -> &str {
        match self {
            Answer::Ok(b) | Answer::Error(b) | Answer::Unable(b) => b,
        }
    }
}

impl From<Out> for Answer {
    fn from(o: Out) -> Answer {
        match o {
            Ok(b) => Answer::Ok(b),
            Err(b) => Answer::Error(b),
        }
    }
}

pub(super) fn json<T: Serialize>(v: &T) -> Out {
    serde_json::to_string_pretty(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string())
}

fn message(text: String, as_json: bool) -> Out {
    if as_json {
        json(&serde_json::json!({ "message": text.trim_end() }))
    } else {
        Ok(text)
    }
}

/// Carry out one console request; a failure of any kind is `Err`.
pub fn execute(core: &Arc<Core>, stopper: &Stopper, req: &Request) -> Out {
    match answer(core, stopper, req) {
        Answer::Ok(b) => Ok(b),
        Answer::Error(b) | Answer::Unable(b) => Err(b),
    }
}

/// Carry out one console request.
pub fn answer(core: &Arc<Core>, stopper: &Stopper, req: &Request) -> Answer {
    match &req.cmd {
        // The only command with three outcomes.
        Command::Check => super::scrub::run(core, req.json),
        _ => Answer::from(command(core, stopper, req)),
    }
}

/// The commands that succeed or fail.
fn command(core: &Arc<Core>, stopper: &Stopper, req: &Request) -> Out {
    let j = req.json;
    match &req.cmd {
        Command::Check => Err("check: answered by `answer`".into()),
        Command::Help => message(HELP.to_string(), j),
        Command::Df => df(core, j),
        Command::Halt => {
            let r = sync(core)?;
            stopper.stop();
            message(format!("{r}halting\n"), j)
        }
        Command::Permit(on) => {
            core.fs.set_permissive(*on);
            message(format!("permit {}\n", if *on { "on" } else { "off" }), j)
        }
        Command::Sync => message(sync(core)?, j),
        Command::Users => {
            core.fs
                .reload_users()
                .map_err(|e| format!("users: {e}; keeping the old table"))?;
            message(format!("users: {} loaded\n", core.fs.users().len()), j)
        }
        Command::Snap(Snap::List) => {
            let labels = Snaps::new(core.store())
                .labels_space()
                .map_err(|e| e.to_string())?;
            if j {
                return json(&labels);
            }
            Ok(admin::list_text(&labels))
        }
        Command::Snap(s) => {
            let s = s.clone();
            let out = on_sweeper(core, move |c| admin::run_snap(c.store(), &s))?;
            message(out, j)
        }
        Command::Set(args) => {
            let args = args.clone();
            let out = on_sweeper(core, move |c| {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                admin::run_set(c.store(), &a)
            })?;
            message(out, j)
        }
        Command::Clear(args) => {
            let args = args.clone();
            let out = on_sweeper(core, move |c| {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                admin::run_clear(c.store(), &a)
            })?;
            message(out, j)
        }
        Command::Show(s) => show(core, s, j),
    }
}

/// Commit through the sync worker; the text once durable.
pub(super) fn sync(core: &Core) -> Out {
    let (tx, rx) = bounded(1);
    core.queues
        .sync
        .send(SyncReq::Notify(tx))
        .map_err(|_| Error::Stopped.to_string())?;
    match rx.recv() {
        Ok(Ok(c)) => Ok(format!("synced (commit {})\n", c.gen)),
        Ok(Err(e)) => Err(format!("sync failed: {e}")),
        Err(_) => Err(Error::Stopped.to_string()),
    }
}

/// Run `f` on the sweeper, under the commit gate, and wait for its answer.
fn on_sweeper(
    core: &Arc<Core>,
    f: impl FnOnce(&Core) -> gefs_core::Result<String> + Send + 'static,
) -> Out {
    let (tx, rx) = bounded(1);
    let c = core.clone();
    let task = Box::new(move || {
        let r = {
            let _g = c.commit_gate.lock();
            f(&c).map_err(|e| e.to_string())
        };
        let _ = tx.send(r);
    });
    core.queues
        .sweep
        .send(SweepReq::Admin(task))
        .map_err(|_| Error::Stopped.to_string())?;
    rx.recv()
        .unwrap_or_else(|_| Err("the command failed (internal error)".to_string()))
}

fn df(core: &Core, j: bool) -> Out {
    let d = admin::df(core.store()).map_err(|e| format!("df: {e}"))?;
    if j {
        return json(&d);
    }
    Ok(d.text())
}

#[derive(Serialize)]
struct FidView {
    conn: u64,
    peer: String,
    fid: u32,
    what: String,
}

fn show(core: &Core, s: &Show, j: bool) -> Out {
    let st = core.store();
    let text = |v: &dyn erased::View| -> Out {
        if j {
            v.json()
        } else {
            Ok(v.text())
        }
    };
    match s {
        Show::Cache => text(&st.stats().cache),
        Show::Alloc => text(&st.stats().arenas),
        Show::Free => {
            let n = st.geometry().narena;
            let free: Vec<Vec<(u64, u64)>> =
                (0..n).map(|i| st.allocator().free_ranges(i)).collect();
            if j {
                return json(&free);
            }
            let mut out = String::new();
            for (i, ranges) in free.iter().enumerate() {
                let _ = write!(out, "arena {i}:");
                for (a, b) in ranges {
                    let _ = write!(out, " {a}..{b}");
                }
                out.push('\n');
            }
            Ok(out)
        }
        Show::Tree(l) => {
            let label = l.as_deref().unwrap_or("main");
            let levels =
                gefs_core::dump::tree_levels(st, Some(label)).map_err(|e| e.to_string())?;
            text(&levels)
        }
        Show::Check => {
            let v = core.scrub.view();
            if j {
                json(&v)
            } else {
                Ok(v.text())
            }
        }
        Show::Users => {
            let u = core.fs.users();
            if j {
                let v: Vec<_> = u
                    .iter()
                    .map(|x| serde_json::json!({"id": x.id(), "name": x.name()}))
                    .collect();
                return json(&v);
            }
            Ok(u.serialize())
        }
        Show::Fid => {
            let mut v = Vec::new();
            for c in core.conns() {
                let peer = match &c.peer.user {
                    Some(u) => format!("{} ({u})", c.peer.desc),
                    None => c.peer.desc.clone(),
                };
                for (n, f) in c.fids.snapshot() {
                    v.push(FidView {
                        conn: c.id,
                        peer: peer.clone(),
                        fid: n,
                        what: f.lock().describe(),
                    });
                }
            }
            if j {
                return json(&v);
            }
            let mut out = String::new();
            for f in &v {
                let _ = writeln!(out, "conn {} {} fid {}: {}", f.conn, f.peer, f.fid, f.what);
            }
            Ok(out)
        }
    }
}

/// Serializable values shown as indented text or JSON.
mod erased {
    use serde::Serialize;

    /// A value the console can show.
    pub trait View {
        /// As JSON.
        fn json(&self) -> super::Out;
        /// As indented text.
        fn text(&self) -> String;
    }

    impl<T: Serialize> View for T {
        fn json(&self) -> super::Out {
            super::json(self)
        }
        fn text(&self) -> String {
            gefs_core::dump::text(self)
        }
    }
}
