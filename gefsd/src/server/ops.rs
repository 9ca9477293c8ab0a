//! Request handlers: one function per T-message, mapping it onto `gefs_core::fs`.
//!
//! [`handle`] runs a request to completion on the calling thread and returns its reply (or
//! `None` when the reply comes later: a null wstat is answered by the sync worker once the
//! commit is durable). It depends on no transport, so tests and the fuzz target can call it
//! with a bare [`Conn`]. [`route`] is what a connection's reader calls: it answers clunks
//! inline and queues everything else to the worker that owns it (see `workers`).
//!
//! Every failure becomes an `Rerror` or `Rlerror` (the connection's dialect,
//! [`Conn::fail`]); a panic in a handler becomes "Remote I/O error" for that request only.
//! The 9P2000.L messages are `ops_l`'s; the messages both dialects share are here.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use gefs_core::fs::{self, Changes, Who};

use super::attach::{attach, dump_qid, Attach};
use super::conn::Conn;
use super::core::Core;
use super::dir::{self, qid, DirCursor};
use super::err::{msg, refuse, rerror, Error, Result};
use super::fid::{At, Fid, FidRef, Opened};
use super::workers::{SweepReq, SyncReq, Work};
use crate::proto::Dialect;
use crate::proto::{omode, Qid, Rmsg, Stat, Tmsg};

/// An `Rerror` with one of the server's strings.
pub fn err(r: super::err::Refusal) -> Rmsg {
    rerror(&Error::Server(r))
}

/// The answer to every `Tauth`: there are no auth files.
pub fn auth(core: &Core) -> Rmsg {
    if core.opts.noauth {
        err(msg::AUTH_NOT_NEEDED)
    } else {
        err(msg::AUTH_BY_PEER)
    }
}

/// Wake the sweeper: clears were queued.
pub(super) fn kick_sweeper(core: &Core) {
    let _ = core.queues.sweep.try_send(SweepReq::Kick);
}

/// Which queue serves a request.
pub(super) enum Route {
    Read(u32),
    Mutate,
}

fn route_of(msg: &Tmsg) -> Route {
    match msg {
        Tmsg::L(l) => super::ops_l::route_of(l),
        Tmsg::Attach { fid, .. }
        | Tmsg::Walk { fid, .. }
        | Tmsg::Read { fid, .. }
        | Tmsg::Stat { fid } => Route::Read(*fid),
        Tmsg::Open { fid, mode } if mode & (omode::OTRUNC | omode::ORCLOSE) == 0 => {
            Route::Read(*fid)
        }
        _ => Route::Mutate,
    }
}

/// Run `handle` and catch a panic as "internal error".
fn guarded(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg) -> Option<Rmsg> {
    catch_unwind(AssertUnwindSafe(|| handle(core, conn, tag, msg)))
        .unwrap_or_else(|_| Some(conn.fail(&Error::Server(msg::INTERNAL))))
}

/// Answer or queue one request from a connection's reader. Clunks are done inline unless the
/// fid must be removed (ORCLOSE), which is the mutator's work. With `alone` (the connection has
/// no other request in flight), the request runs on the calling thread: no other request of
/// the connection can be reordered around it, the file system serialises it with the
/// mutator's work (its writer lock), and it costs no hand-off to a worker.
pub fn route(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg, alone: bool) {
    if let Tmsg::Clunk { fid } = msg {
        return clunk(core, conn, tag, fid);
    }
    if alone {
        if let Some(r) = guarded(core, conn, tag, msg) {
            conn.reply(tag, r);
        }
        return;
    }
    let q = match route_of(&msg) {
        Route::Read(fid) => {
            let n = core.queues.read.len().max(1) as u64;
            let h = conn.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(fid);
            let i = usize::try_from(h % n).unwrap_or(0);
            core.queues.read.get(i).unwrap_or(&core.queues.mutate)
        }
        Route::Mutate => &core.queues.mutate,
    };
    let (c, k) = (core.clone(), conn.clone());
    let task = Box::new(move || {
        if let Some(r) = guarded(&c, &k, tag, msg) {
            k.reply(tag, r);
        }
    });
    if q.send(Work::Run(task)).is_err() {
        conn.reply(tag, conn.fail(&Error::Server(msg::SHUTTING_DOWN)));
    }
}

/// Run one request to completion. `None`: the reply will be sent by another worker.
pub fn handle(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg) -> Option<Rmsg> {
    let (name, fid) = (msg.name(), fid_of(&msg));
    let walked = match &msg {
        Tmsg::Walk { wnames, .. } if !wnames.is_empty() => format!(" + {}", wnames.join("/")),
        _ => String::new(),
    };
    let attach = match &msg {
        Tmsg::Attach { aname, .. } => Some(format!(" {aname}:/")),
        _ => None,
    };
    let r = run(core, conn, tag, msg);
    if let Some(Err(e)) = &r {
        if let Some(d) = e.damage() {
            let at = attach.unwrap_or_else(|| {
                fid.map_or_else(String::new, |f| format!(" {}{walked}", fid_path(conn, f)))
            });
            super::err::log_damage(&conn.peer.desc, &format!("{name}{at}"), d);
        }
    }
    r.map(|r| r.unwrap_or_else(|e| conn.fail(&e)))
}

/// The fid a request acts on (the new one for an attach).
fn fid_of(msg: &Tmsg) -> Option<u32> {
    match msg {
        Tmsg::Attach { fid, .. }
        | Tmsg::Walk { fid, .. }
        | Tmsg::Open { fid, .. }
        | Tmsg::Create { fid, .. }
        | Tmsg::Read { fid, .. }
        | Tmsg::Write { fid, .. }
        | Tmsg::Clunk { fid }
        | Tmsg::Remove { fid }
        | Tmsg::Stat { fid }
        | Tmsg::Wstat { fid, .. } => Some(*fid),
        _ => None,
    }
}

/// `label:path` of fid `f`, for logs.
fn fid_path(conn: &Conn, f: u32) -> String {
    let Ok(fr) = conn.fids.get(f) else {
        return format!("fid {f}");
    };
    let g = fr.lock();
    match &g.at {
        At::Dump => format!("dump:{}", g.path),
        At::Node {
            mount, from_dump, ..
        } => format!(
            "{}{}:{}",
            if *from_dump { "dump/" } else { "" },
            mount.label(),
            g.path
        ),
    }
}

fn run(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, msg: Tmsg) -> Option<Result<Rmsg>> {
    // The decoder keeps each dialect's messages apart; a message handed in decoded (sessions,
    // the fuzz target) is held to the same rule.
    let plan9_only = matches!(
        msg,
        Tmsg::Open { .. }
            | Tmsg::Create { .. }
            | Tmsg::Stat { .. }
            | Tmsg::Wstat { .. }
            | Tmsg::Auth { .. }
            | Tmsg::Attach { .. }
    );
    let foreign = match conn.dialect() {
        Dialect::P9 => matches!(msg, Tmsg::L(_)),
        Dialect::L => plan9_only,
    };
    if foreign {
        return Some(Err(Error::Server(msg::NOT_IN_DIALECT)));
    }
    let r = match msg {
        // Tversion is the connection's to handle; one that reaches here is misrouted.
        Tmsg::Version { .. } => refuse(msg::NO_VERSION),
        Tmsg::Auth { .. } => Ok(auth(core)),
        Tmsg::Flush { .. } => Ok(Rmsg::Flush),
        Tmsg::Attach {
            fid,
            afid,
            uname,
            aname,
        } => {
            let a = Attach {
                fid,
                afid,
                uname: &uname,
                aname: &aname,
                n_uname: None,
                dialect: conn.dialect(),
            };
            attach(core, conn, &a).map(|qid| Rmsg::Attach { qid })
        }
        Tmsg::Walk {
            fid,
            newfid,
            wnames,
        } => walk(core, conn, fid, newfid, &wnames),
        Tmsg::Open { fid, mode } => open(core, conn, fid, mode),
        Tmsg::Create {
            fid,
            name,
            perm,
            mode,
        } => create(core, conn, fid, &name, perm, mode),
        Tmsg::Read { fid, offset, count } => read(core, conn, fid, offset, count),
        Tmsg::Write { fid, offset, data } => write(core, conn, fid, offset, &data),
        Tmsg::Clunk { fid } => conn.fids.remove(fid).map(|f| {
            core.locks.release_fid(conn.id, fid);
            finish_clunk(core, &f);
            Rmsg::Clunk
        }),
        Tmsg::Remove { fid } => remove(core, conn, fid),
        Tmsg::Stat { fid } => stat(core, conn, fid),
        Tmsg::Wstat { fid, stat } => match wstat(core, conn, tag, fid, &stat) {
            Ok(None) => return None,
            Ok(Some(r)) => Ok(r),
            Err(e) => Err(e),
        },
        Tmsg::L(l) => match super::ops_l::handle(core, conn, tag, l) {
            Ok(None) => return None,
            Ok(Some(r)) => Ok(r),
            Err(e) => Err(e),
        },
    };
    if let Err(Error::Fs(fs::Error::NoSpace)) = &r {
        core.note_full();
    }
    Some(r)
}

/// One walk step from `at`.
pub(super) fn step(core: &Core, at: &At, name: &str, who: &Who) -> Result<(At, Qid)> {
    match at {
        At::Dump => {
            if name == ".." {
                return Ok((At::Dump, dump_qid()));
            }
            let (m, root) = core.fs.attach(name).map_err(|e| match e {
                fs::Error::Store(
                    gefs_core::Error::NotFound(_) | gefs_core::Error::NoLabel { .. },
                ) => Error::Fs(fs::Error::NotFound),
                e => Error::Fs(e),
            })?;
            let q = qid(root.qid);
            let at = At::Node {
                mount: m.read_only(),
                entry: root,
                from_dump: true,
            };
            Ok((at, q))
        }
        At::Node {
            mount,
            entry,
            from_dump,
        } => {
            if name == ".." && *from_dump && entry.is_root() {
                return Ok((At::Dump, dump_qid()));
            }
            let e = core.fs.walk(mount, entry, name.as_bytes(), who)?;
            let q = qid(e.qid);
            let at = At::Node {
                mount: mount.clone(),
                entry: e,
                from_dump: *from_dump,
            };
            Ok((at, q))
        }
    }
}

fn walk(core: &Core, conn: &Conn, fid: u32, newfid: u32, wnames: &[String]) -> Result<Rmsg> {
    let f = conn.fids.get(fid)?;
    let mut g = f.lock();
    // walk(5): never from an open fid. 9P2000.L (as diod serves it) allows a walk from an
    // open directory to a new fid, and takes "." for the directory itself.
    let dotl = conn.dialect() == Dialect::L;
    if g.open.is_some() && (!dotl || newfid == fid) {
        return refuse(msg::FID_OPEN);
    }
    if newfid != fid && conn.fids.contains(newfid) {
        return refuse(msg::FID_IN_USE);
    }
    let mut at = g.at.clone();
    let mut path = g.path.clone();
    let mut wqids = Vec::with_capacity(wnames.len());
    for (i, name) in wnames.iter().enumerate() {
        let here = if dotl && name == "." {
            match &at {
                At::Dump => Ok((At::Dump, dump_qid())),
                At::Node { entry, .. } if entry.is_dir() => Ok((at.clone(), qid(entry.qid))),
                At::Node { .. } => Err(Error::Fs(fs::Error::NotDir)),
            }
        } else {
            step(core, &at, name, &g.who)
        };
        match here {
            Ok((next, q)) => {
                at = next;
                path = Fid::path_after(&path, name);
                wqids.push(q);
            }
            // walk(5): an error only if the first element fails; otherwise the qids found
            // so far, and newfid stays unbound.
            Err(e) if i == 0 => return Err(e),
            Err(_) => return Ok(Rmsg::Walk { wqids }),
        }
    }
    if newfid == fid {
        g.at = at;
        g.path = path;
    } else {
        let mut nf = g.clone_unopened();
        nf.at = at;
        nf.path = path;
        drop(g);
        conn.fids.insert(newfid, nf)?;
    }
    Ok(Rmsg::Walk { wqids })
}

fn open(core: &Core, conn: &Conn, fid: u32, mode: u8) -> Result<Rmsg> {
    let (qid, iounit) = open_fid(core, conn, fid, mode, Dialect::P9)?;
    Ok(Rmsg::Open { qid, iounit })
}

/// Open `fid` in 9P mode `mode` for `dialect` (whose directory listing state it gets); its
/// qid and I/O unit. DMEXCL is enforced here, across connections.
pub(super) fn open_fid(
    core: &Core,
    conn: &Conn,
    fid: u32,
    mode: u8,
    dialect: Dialect,
) -> Result<(Qid, u32)> {
    let f = conn.fids.get(fid)?;
    let mut g = f.lock();
    if g.open.is_some() {
        return refuse(msg::FID_OPEN);
    }
    let iounit = conn.iounit();
    let (mount, entry) = match &g.at {
        At::Dump => {
            let acc = mode & omode::OACCMODE;
            if acc == omode::OWRITE
                || acc == omode::ORDWR
                || mode & (omode::OTRUNC | omode::ORCLOSE) != 0
            {
                return refuse(msg::PERM);
            }
            if dialect == Dialect::L {
                // The dump directory lists its labels to 9P2000 reads only.
                return Err(Error::Fs(fs::Error::NotDir));
            }
            g.open = Some(Opened::Dump(DirCursor::default()));
            return Ok((dump_qid(), iounit));
        }
        At::Node { mount, entry, .. } => (mount.clone(), entry.clone()),
    };
    let info = core.fs.check_open(&mount, &entry, mode, &g.who)?;
    let key = mount.file_id(entry.qid.path);
    let excl = if info.exclusive {
        if !core.fs.excl_take(key) {
            return refuse(msg::LOCKED);
        }
        Some(key)
    } else {
        None
    };
    let o = match core.fs.open(&mount, &entry, mode, &g.who) {
        Ok(o) => o,
        Err(e) => {
            if let Some(k) = excl {
                core.fs.excl_release(k);
            }
            return Err(e.into());
        }
    };
    if o.info().truncate {
        kick_sweeper(core);
    }
    let q = qid(o.entry().qid);
    g.open = Some(Opened::node(Box::new(o), excl, dialect));
    Ok((q, iounit))
}

fn create(core: &Core, conn: &Conn, fid: u32, name: &str, perm: u32, mode: u8) -> Result<Rmsg> {
    let f = conn.fids.get(fid)?;
    let mut g = f.lock();
    if g.open.is_some() {
        return refuse(msg::FID_OPEN);
    }
    let At::Node {
        mount,
        entry,
        from_dump,
    } = &g.at
    else {
        return refuse(msg::PERM);
    };
    let (mount, from_dump) = (mount.clone(), *from_dump);
    let o = core
        .fs
        .create(&mount, entry, name.as_bytes(), perm, mode, &g.who)?;
    let key = mount.file_id(o.entry().qid.path);
    let excl = (o.info().exclusive && core.fs.excl_take(key)).then_some(key);
    let q = qid(o.entry().qid);
    g.at = At::Node {
        mount,
        entry: o.entry().clone(),
        from_dump,
    };
    g.path = Fid::path_after(&g.path, name);
    g.open = Some(Opened::node(Box::new(o), excl, Dialect::P9));
    Ok(Rmsg::Create {
        qid: q,
        iounit: conn.iounit(),
    })
}

fn read(core: &Core, conn: &Conn, fid: u32, offset: u64, count: u32) -> Result<Rmsg> {
    // Never more than the I/O unit, whatever the client asks (reference §13.2 #16).
    let count = count.min(conn.iounit());
    let f = conn.fids.get(fid)?;
    let mut g = f.lock();
    let data = match g.open.as_mut() {
        None => return refuse(msg::FID_NOT_OPEN),
        Some(Opened::DumpL(_)) => return Err(Error::Fs(fs::Error::IsDir)),
        Some(Opened::Dump(cur)) => {
            let labels = core.fs.labels()?;
            let started = core.started;
            let mut src = |after: Option<&[u8]>, limit: usize| -> Result<Vec<(Vec<u8>, Stat)>> {
                Ok(labels
                    .iter()
                    .filter(|l| after.is_none_or(|a| l.name.as_bytes() > a))
                    .take(limit)
                    .map(|l| {
                        (
                            l.name.clone().into_bytes(),
                            dir::dump_entry_stat(l, started),
                        )
                    })
                    .collect())
            };
            cur.read(offset, count, &mut src)?
        }
        Some(Opened::Node {
            open,
            cursor: Some(cur),
            ..
        }) => {
            let users = core.fs.users();
            let fs = &core.fs;
            let open = &*open;
            let mut src = |after: Option<&[u8]>, limit: usize| -> Result<Vec<(Vec<u8>, Stat)>> {
                Ok(fs
                    .readdir(open, after, limit)?
                    .into_iter()
                    .map(|d| {
                        let st = dir::stat_of(&users, &d.name, &d.dir);
                        (d.name, st)
                    })
                    .collect())
            };
            cur.read(offset, count, &mut src)?
        }
        Some(Opened::Node {
            open, cursor: None, ..
        }) => core
            .fs
            .read(open, offset, usize::try_from(count).unwrap_or(usize::MAX))?,
    };
    Ok(Rmsg::Read { data })
}

fn write(core: &Core, conn: &Conn, fid: u32, offset: u64, data: &[u8]) -> Result<Rmsg> {
    let f = conn.fids.get(fid)?;
    let g = f.lock();
    match &g.open {
        None => refuse(msg::FID_NOT_OPEN),
        Some(Opened::Dump(_) | Opened::DumpL(_)) => refuse(msg::READ_ONLY),
        Some(Opened::Node {
            cursor: Some(_), ..
        }) => Err(Error::Fs(fs::Error::IsDir)),
        Some(Opened::Node {
            open, cursor: None, ..
        }) => {
            let n = core.fs.write(open, offset, data, &g.who)?;
            Ok(Rmsg::Write {
                count: u32::try_from(n).unwrap_or(u32::MAX),
            })
        }
    }
}

/// Clunk from a connection's reader: the fid leaves the table at once; an ORCLOSE fid is
/// removed by the mutator, which then answers.
fn clunk(core: &Arc<Core>, conn: &Arc<Conn>, tag: u16, fid: u32) {
    let f = match conn.fids.remove(fid) {
        Ok(f) => f,
        Err(e) => return conn.reply(tag, conn.fail(&e)),
    };
    core.locks.release_fid(conn.id, fid);
    if !f.lock().open.as_ref().is_some_and(Opened::rclose) {
        finish_clunk(core, &f);
        return conn.reply(tag, Rmsg::Clunk);
    }
    let (c, k) = (core.clone(), conn.clone());
    let task = Box::new(move || {
        super::workers::run_guarded("clunk", || finish_clunk(&c, &f));
        k.reply(tag, Rmsg::Clunk);
    });
    if let Err(e) = core.queues.mutate.send(Work::Run(task)) {
        if let Work::Run(t) = e.into_inner() {
            t();
        }
    }
}

/// Close a fid that has left its table: ORCLOSE removes its file, DMEXCL is released.
fn finish_clunk(core: &Core, f: &FidRef) {
    let mut g = f.lock();
    if let Some(Opened::Node { open, excl, .. }) = g.open.take() {
        if open.info().rclose && core.fs.remove(open.mount(), open.entry(), &g.who).is_ok() {
            kick_sweeper(core);
        }
        if let Some(k) = excl {
            core.fs.excl_release(k);
        }
    }
}

/// Clunk every fid of a connection (Tversion, teardown). ORCLOSE removes are queued to the
/// mutator, so they run before the mutator stops.
pub fn clunk_all(core: &Arc<Core>, conn: &Arc<Conn>) {
    core.locks.release_conn(conn.id);
    for (_, f) in conn.fids.drain() {
        if f.lock().open.as_ref().is_some_and(Opened::rclose) {
            let c = core.clone();
            let task = Box::new(move || finish_clunk(&c, &f));
            if let Err(e) = core.queues.mutate.send(Work::Run(task)) {
                if let Work::Run(t) = e.into_inner() {
                    t();
                }
            }
        } else {
            finish_clunk(core, &f);
        }
    }
}

fn remove(core: &Core, conn: &Conn, fid: u32) -> Result<Rmsg> {
    // remove(5): the fid is clunked even if the remove fails.
    let f = conn.fids.remove(fid)?;
    core.locks.release_fid(conn.id, fid);
    let mut g = f.lock();
    let excl = match g.open.take() {
        Some(Opened::Node { excl, .. }) => excl,
        _ => None,
    };
    let r = match &g.at {
        At::Dump => refuse(msg::PERM),
        At::Node { mount, entry, .. } => remove_entry(core, mount, entry, &g.who, excl.is_some()),
    };
    if let Some(k) = excl {
        core.fs.excl_release(k);
    }
    r.map(|()| Rmsg::Remove)
}

/// Remove `entry`, unless another fid holds it open exclusively (`ours`: the caller's own
/// exclusive open is the one).
pub(super) fn remove_entry(
    core: &Core,
    mount: &fs::Mount,
    entry: &fs::Entry,
    who: &Who,
    ours: bool,
) -> Result<()> {
    let key = mount.file_id(entry.qid.path);
    if !ours && core.fs.excl_held(key) {
        return refuse(msg::LOCKED);
    }
    core.fs.remove(mount, entry, who)?;
    kick_sweeper(core);
    Ok(())
}

fn stat(core: &Core, conn: &Conn, fid: u32) -> Result<Rmsg> {
    let f = conn.fids.get(fid)?;
    let g = f.lock();
    let stat = match &g.at {
        At::Dump => dir::dump_root_stat(core.started),
        At::Node {
            mount,
            entry,
            from_dump,
        } => {
            let e = core.fs.stat(mount, entry)?;
            let mut st = dir::stat_of_entry(&core.fs.users(), &e);
            if *from_dump && e.is_root() {
                st.name = mount.label().to_string();
            }
            st
        }
    };
    Ok(Rmsg::Stat { stat })
}

/// A user or group name of a wstat, as an id.
fn user_id(core: &Core, name: &str) -> Result<i32> {
    if name.len() > gefs_core::users::MAX_NAME_BYTES {
        return refuse(msg::NAME_TOO_LONG);
    }
    core.fs.uid(name).map_err(Error::Fs)
}

fn wstat(core: &Core, conn: &Arc<Conn>, tag: u16, fid: u32, st: &Stat) -> Result<Option<Rmsg>> {
    let f = conn.fids.get(fid)?;
    if st.is_dont_touch() {
        // stat(5): "commit to stable storage"; answered by the sync worker once durable.
        if core
            .queues
            .sync
            .send(SyncReq::Reply(conn.clone(), tag))
            .is_err()
        {
            return refuse(msg::SHUTTING_DOWN);
        }
        return Ok(None);
    }
    let g = f.lock();
    let At::Node { mount, entry, .. } = &g.at else {
        return refuse(msg::READ_ONLY);
    };
    // Fields equal to what a Tstat reports now are no change (see `wstat.rs`).
    let users = core.fs.users();
    let now = dir::stat_of_entry(&users, &core.fs.stat(mount, entry)?);
    let st = super::wstat::normalize(st, &now, &[users.name_of(g.who.uid), &g.uname]);
    if st.wstat_changes_fixed() {
        return refuse(msg::WSTAT_QID);
    }
    if st.wstat_muid().is_some() {
        return refuse(msg::WSTAT_MUID);
    }
    let changes = Changes {
        name: st.wstat_name().map(|n| n.as_bytes().to_vec()),
        mode: st.wstat_mode(),
        length: st.wstat_length(),
        mtime: st.wstat_mtime().map(|s| u64::from(s) * 1_000_000_000),
        uid: st.wstat_uid().map(|u| user_id(core, u)).transpose()?,
        gid: st.wstat_gid().map(|g| user_id(core, g)).transpose()?,
        ..Changes::default()
    };
    // A request that changes nothing kept (the access time is not kept) must not turn into a
    // sync.
    if changes.is_null() {
        return Ok(Some(Rmsg::Wstat));
    }
    core.fs.wstat(mount, entry, &changes, &g.who)?;
    if changes.length.is_some() {
        kick_sweeper(core);
    }
    Ok(Some(Rmsg::Wstat))
}
