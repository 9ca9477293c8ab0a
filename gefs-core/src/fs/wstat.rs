//! Changing an entry: rename, mode, length, mtime, owner, group (reference
//! §7.11), as one atomic batch.
//!
//! Rules: a field that is `None` or equal to the current value is left
//! alone and needs no permission. A rename needs a valid name not yet in
//! the directory and write permission on the parent, and never applies to a
//! root; the length needs write permission on the file (or, POSIX's `ftruncate`, a handle
//! the requester opened for writing: [`Changes::writer`]) and is not a
//! directory's (nor a symbolic link's, pipe's or socket's) to change; mode
//! and times need the owner, the leader of the file's group, or a permissive
//! requester (POSIX: the owner or the superuser; times set to now also
//! anyone who may write); the kind bits (DMDIR, DMSYMLINK, DMNAMEDPIPE,
//! DMSOCKET) cannot change, and only DIR, APPEND, EXCL, TMP and 0777 bits
//! are allowed (POSIX adds set-user-id, set-group-id and sticky, and a
//! set-group-id bit the owner may not give, not being in the file's group,
//! is dropped as POSIX says; a POSIX requester who may write the file may clear its set-id
//! bits, as Linux's kernel does before a write); the owner changes only for a permissive
//! requester; the group for a permissive requester, the owner when a member
//! of the new group, or (Plan 9) the leader of both groups. New owners and
//! groups must be in the users table. muid becomes the requester, ctime
//! now. A length change sets mtime to now unless the request gives one (the
//! reference leaves it, defect #30). For a POSIX requester, a length change
//! or a new owner or group without a mode clears set-id bits as `perm.rs`
//! says.
//!
//! A rename writes the entry under its new key (`Clobber` old, `Insert`
//! new with the updated `Xdir`), moves a directory's `KUP`, and touches the
//! parent; otherwise one `Wstat` message carries the changes.

use super::error::{Error, Result, WstatRule};
use super::nodes::Loc;
use super::perm::{self, SetIdLoss, WRITE};
use super::{names, now_ns, Entry, Fs, Mount, Who};
use crate::alloc::Tier;
use crate::format::key;
use crate::format::msg::{Msg, Op, Wstat};
use crate::format::value::{Xdir, DMKIND, DMSETGID, DMSETUID};
use crate::format::Encode;
use crate::format::BLKSZ_U64;
use crate::users::POSIX_MODE_BITS;

/// Mode bits a wstat or create may set.
pub const MODE_BITS: u32 = crate::users::WSTAT_MODE_BITS;

/// A wstat request; `None` means "don't touch".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New name (a rename within the directory).
    pub name: Option<Vec<u8>>,
    /// New mode.
    pub mode: Option<u32>,
    /// New length.
    pub length: Option<u64>,
    /// New mtime, ns.
    pub mtime: Option<u64>,
    /// New atime, ns.
    pub atime: Option<u64>,
    /// The times given are the current time (POSIX `utimes(NULL)`): write
    /// permission suffices to set them.
    pub times_now: bool,
    /// New owner id.
    pub uid: Option<i32>,
    /// New group id.
    pub gid: Option<i32>,
    /// The request comes through a handle the requester opened for writing (POSIX
    /// `ftruncate`, `futimens(NULL)`): the length, and the times set to now, need no further
    /// permission, as the open was checked.
    pub writer: bool,
}

impl Changes {
    /// Whether every field is "don't touch" (9P's sync request).
    pub fn is_null(&self) -> bool {
        *self == Changes::default()
    }
}

/// A checked request.
struct Plan {
    ws: Wstat,
    rename: Option<(Loc, Vec<u8>)>,
    shrink: Option<u64>,
    grow: Option<u64>,
}

impl Fs {
    /// Apply `c` to `e` for `who` and return the entry as it is now. A null
    /// request only commits (9P: "commit to stable storage").
    pub fn wstat(&self, m: &Mount, e: &Entry, c: &Changes, who: &Who) -> Result<Entry> {
        if c.is_null() {
            self.sync()?;
        } else {
            self.apply_changes(m, e, c, who, true)?;
        }
        self.stat(m, e)
    }

    /// Check (if `check`) and apply `c`; waits out a pending clear when the
    /// length grows.
    pub(super) fn apply_changes(
        &self,
        m: &Mount,
        e: &Entry,
        c: &Changes,
        who: &Who,
        check: bool,
    ) -> Result<()> {
        self.mutating(m)?;
        let q = e.qid.path;
        let (_g, loc, d, plan) = loop {
            let g = self.writer();
            let (loc, d) = self.current(m, e)?;
            let plan = self.plan(m, &loc, &d, c, who, check)?;
            if let Some(nl) = plan.grow {
                if !self.ready_to_grow(m, q, d.length, nl)? {
                    drop(g);
                    self.settle(m.tree, q)?;
                    continue;
                }
            }
            break (g, loc, d, plan);
        };
        let mut msgs = Vec::new();
        let tail = match plan.shrink {
            Some(nl) => self.shrink_msgs(m.tree, &d, nl, &mut msgs)?,
            None => None,
        };
        self.change_msgs(&loc, &d, &plan, who, &mut msgs);
        let tier = if plan.shrink.is_some() {
            Tier::Reserve
        } else {
            Tier::Normal
        };
        if plan.rename.is_some() {
            self.nodes.begin(m.tree, q);
        }
        if let Err(err) = self.store.upsert(m.tree, msgs, tier) {
            self.nodes.abort(m.tree, q);
            self.discard(m.tree, tail.as_slice());
            return Err(err.into());
        }
        if let Some(nl) = plan.shrink {
            self.queue_clear(m, q, nl.div_ceil(BLKSZ_U64) * BLKSZ_U64);
        }
        if let Some((_, name)) = &plan.rename {
            self.nodes.moved(m.tree, q, loc.pqid, name);
        }
        Ok(())
    }

    /// The messages that carry `plan`.
    fn change_msgs(&self, loc: &Loc, d: &Xdir, plan: &Plan, who: &Who, msgs: &mut Vec<Msg>) {
        let old = key::ent(loc.pqid, &loc.name);
        let Some((ploc, name)) = &plan.rename else {
            msgs.push(wstat_msg(old, &plan.ws));
            return;
        };
        let mut nd = *d;
        plan.ws.apply(&mut nd);
        let new = key::ent(loc.pqid, name);
        msgs.push(Msg::bare(Op::Clobber, old));
        msgs.push(Msg::insert(new.clone(), nd.encode()));
        if d.is_dir() {
            msgs.push(Msg::insert(key::up(d.qid_path), new));
        }
        msgs.push(touch(ploc, who));
    }

    /// Check `c` against `d` and the rules; build the wstat.
    fn plan(
        &self,
        m: &Mount,
        loc: &Loc,
        d: &Xdir,
        c: &Changes,
        who: &Who,
        check: bool,
    ) -> Result<Plan> {
        let users = self.users();
        let mut p = Plan {
            ws: Wstat {
                muid: Some(who.uid),
                ctime: Some(now_ns()),
                ..Wstat::default()
            },
            rename: None,
            shrink: None,
            grow: None,
        };
        if let Some(name) = c.name.as_ref().filter(|n| **n != loc.name) {
            p.rename = Some(self.plan_rename(m, loc, name, who, check)?);
        }
        // POSIX's truncate needs write permission and clears set-id bits even when the
        // length stays as it is.
        let truncate = c.length.filter(|&l| l != d.length || who.posix);
        if let Some(l) = truncate {
            if check && !c.writer && !d.is_dir() && !perm::allowed(&users, who, d, WRITE) {
                return Err(Error::Perm);
            }
            if l != d.length {
                plan_length(d, l, &mut p)?;
            }
        }
        let chmod = check && !perm::may_chmod(&users, who, d);
        if let Some(md) = c.mode.filter(|&md| md != d.mode) {
            if (md ^ d.mode) & DMKIND != 0 {
                return Err(Error::Wstat(WstatRule::DirBit));
            }
            // A Plan 9 requester may keep, but not add, the POSIX bits.
            let bits = if who.posix {
                MODE_BITS | POSIX_MODE_BITS | DMKIND
            } else {
                MODE_BITS | DMKIND | (d.mode & POSIX_MODE_BITS)
            };
            if md & !bits != 0 {
                return Err(Error::Wstat(WstatRule::UnknownBits));
            }
            // Linux's kernel clears set-id bits (forced, `ATTR_KILL_SUID`) before a cached
            // write or a truncate by whoever does it: anyone who may write the file may.
            let setid = DMSETUID | DMSETGID;
            let clears_setid = who.posix
                && md & !setid == d.mode & !setid
                && md & !d.mode == 0
                && perm::allowed(&users, who, d, WRITE);
            if chmod && !clears_setid {
                return Err(Error::Wstat(WstatRule::NotOwner));
            }
            let keep_sgid = !who.posix
                || who.permissive
                || d.is_dir()
                || users.is_member(who.uid, c.gid.unwrap_or(d.gid));
            p.ws.mode = Some(if keep_sgid { md } else { md & !DMSETGID });
        }
        // Times: the owner's to set, or (set to now) anyone's who may write.
        let may_touch = || {
            !chmod
                || (c.times_now && who.posix && (c.writer || perm::allowed(&users, who, d, WRITE)))
        };
        if let Some(t) = c.mtime.filter(|&t| t != d.mtime) {
            if !may_touch() {
                return Err(Error::Wstat(WstatRule::NotOwner));
            }
            p.ws.mtime = Some(t);
        }
        if let Some(t) = c.atime.filter(|&t| t != d.atime) {
            if !may_touch() {
                return Err(Error::Wstat(WstatRule::NotOwner));
            }
            p.ws.atime = Some(t);
        }
        self.plan_owner(d, c, who, check, &mut p.ws)?;
        if c.mode.is_none() {
            let mut lost = 0;
            if truncate.is_some() {
                lost |= perm::setid_lost(&users, who, d, SetIdLoss::Write);
            }
            if p.ws.uid.is_some() || p.ws.gid.is_some() {
                lost |= perm::setid_lost(&users, who, d, SetIdLoss::Chown);
            }
            if lost != 0 {
                p.ws.mode = Some(d.mode & !lost);
            }
        }
        Ok(p)
    }

    fn plan_rename(
        &self,
        m: &Mount,
        loc: &Loc,
        name: &[u8],
        who: &Who,
        check: bool,
    ) -> Result<(Loc, Vec<u8>)> {
        if loc.pqid == key::ROOT_PQID {
            return Err(Error::Root);
        }
        names::check(name)?;
        let (ploc, pd) = self.parent_of(m.tree, loc)?;
        if check && !perm::allowed(&self.users(), who, &pd, WRITE) {
            return Err(Error::Perm);
        }
        if self
            .store
            .lookup(m.tree, &key::ent(loc.pqid, name))?
            .is_some()
        {
            return Err(Error::Exists);
        }
        Ok((ploc, name.to_vec()))
    }

    fn plan_owner(
        &self,
        d: &Xdir,
        c: &Changes,
        who: &Who,
        check: bool,
        ws: &mut Wstat,
    ) -> Result<()> {
        let users = self.users();
        if let Some(uid) = c.uid.filter(|&u| u != d.uid) {
            if users.by_id(uid).is_none() {
                return Err(Error::NoUser);
            }
            if check && !who.permissive {
                return Err(Error::Wstat(WstatRule::NotPermissive));
            }
            ws.uid = Some(uid);
        }
        if let Some(gid) = c.gid.filter(|&g| g != d.gid) {
            if users.by_id(gid).is_none() {
                return Err(Error::NoUser);
            }
            if check && !perm::may_chgrp(&users, who, d, gid) {
                return Err(Error::Wstat(WstatRule::NotInGroup));
            }
            ws.gid = Some(gid);
        }
        Ok(())
    }
}

/// Plan a length change of `d` to `l` (permission already checked).
fn plan_length(d: &Xdir, l: u64, p: &mut Plan) -> Result<()> {
    if d.is_dir() {
        return Err(Error::Wstat(WstatRule::DirLength));
    }
    if d.is_symlink() || d.is_special() || d.is_device() {
        return Err(Error::NotPermitted);
    }
    if l > super::MAX_LEN {
        return Err(Error::TooBig);
    }
    p.ws.size = Some(l);
    p.ws.mtime = Some(now_ns());
    if l < d.length {
        p.shrink = Some(l);
    } else {
        p.grow = Some(l);
    }
    Ok(())
}

/// A `Wstat` message to `key`.
pub(super) fn wstat_msg(key: Vec<u8>, ws: &Wstat) -> Msg {
    Msg {
        op: Op::Wstat,
        key,
        val: ws.encode(),
    }
}

/// Touch directory `ploc`: mtime = ctime = now, muid = `who` (and vers + 1).
pub(super) fn touch(ploc: &Loc, who: &Who) -> Msg {
    let now = now_ns();
    wstat_msg(
        key::ent(ploc.pqid, &ploc.name),
        &Wstat {
            mtime: Some(now),
            ctime: Some(now),
            muid: Some(who.uid),
            ..Wstat::default()
        },
    )
}
