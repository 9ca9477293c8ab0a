//! Tattach, for both dialects: who the new fid's user is, and whether the peer may attach as
//! that user.
//!
//! The user: in 9P2000 (and in 9P2000.L without a numeric id) the `uname`, which must be in
//! the users table. In 9P2000.L with `n_uname` (a Linux uid), the user of the table whose id
//! that number carries (`posix::table_id`: the number itself, or a negative id for numbers of
//! 2147483648 and up); a number no user has is `none`, never another user. Linux's uid 0 is
//! therefore the table's id 0: by default `none` (the root squash of NFS), and only if the
//! administrator makes id 0 a member of `adm` does it get the powers POSIX gives the
//! superuser (documented in the README, "Mount it from Linux").
//!
//! Who may attach as whom (unless `-A`): a peer whose uid is 0 (a kernel mounting for its local
//! users with `access=user`) as any user of the table; any other peer only as the user of its
//! own login name. `none` needs an earlier authenticated attach on the connection, and never
//! gets `dump`. A `%` specifier asks for a permissive attach (adm members, or everyone when
//! permission checks are off), logged.
//!
//! A 9P2000.L fid is checked by POSIX's rules ([`Who::posix`]); a 9P2000 fid by Plan 9's.

use gefs_core::fs::{self, Who};

use super::conn::Conn;
use super::core::Core;
use super::dir::{qid, DUMP_QID};
use super::err::{msg, refuse, Error, Result};
use super::fid::{At, Fid};
use crate::proto::{qidtype, Dialect, Qid, NOFID};

/// A Tattach of either dialect.
#[derive(Debug)]
pub struct Attach<'a> {
    /// The new fid.
    pub fid: u32,
    /// The auth fid (only NOFID is accepted).
    pub afid: u32,
    /// The user name.
    pub uname: &'a str,
    /// The tree.
    pub aname: &'a str,
    /// 9P2000.L's numeric user id, if given.
    pub n_uname: Option<u32>,
    /// The connection's dialect.
    pub dialect: Dialect,
}

/// The qid of the dump directory.
pub fn dump_qid() -> Qid {
    Qid {
        ty: qidtype::QTDIR,
        version: 0,
        path: DUMP_QID,
    }
}

/// Attach `a.fid`; its root's qid.
pub fn attach(core: &Core, conn: &Conn, a: &Attach<'_>) -> Result<Qid> {
    if a.afid != NOFID {
        return refuse(msg::NO_AUTH_FILE);
    }
    if conn.fids.contains(a.fid) {
        return refuse(msg::FID_IN_USE);
    }
    let users = core.fs.users();
    let user = match a.n_uname {
        Some(n) => super::posix::table_id(n)
            .and_then(|id| users.by_id(id))
            .or_else(|| users.by_id(users.none_id())),
        None => users.by_name(a.uname),
    };
    let Some(user) = user else {
        return refuse(msg::ATTACH_USER);
    };
    let uname = user.name().to_string();
    let mut uid = user.id();
    let is_none = uid == users.none_id();
    if !core.opts.noauth {
        if is_none {
            if !conn.authenticated() {
                return refuse(msg::NONE_REFUSED);
            }
        } else if conn.peer.uid != Some(0) && conn.peer.user.as_deref() != Some(&uname) {
            return refuse(msg::ATTACH_USER);
        }
    }
    let (mut permissive, label) = match a.aname.strip_prefix('%') {
        Some(l) => (true, l),
        None => (false, a.aname),
    };
    let label = if label.is_empty() { "main" } else { label };
    if permissive && (is_none || !core.fs.may_permit(uid)) {
        return refuse(msg::PERM);
    }
    let posix = a.dialect == Dialect::L;
    // Linux's root is the superuser only if the table makes its id an administrator.
    let root = posix && a.n_uname == Some(0) && !is_none && users.is_member(uid, users.adm_id());
    if core.fs.is_permissive() && label == "adm" {
        // The reference's rule: with permission checks off, whoever attaches `adm` is adm,
        // so that a broken users file can be fixed.
        uid = users.adm_id();
    }
    if permissive || root || uid != user.id() {
        // Audit (reliability plan S4): permission checks are off for this attach.
        eprintln!(
            "gefsd: permissive attach: {uname} to {label}{}",
            if root {
                " (Linux uid 0, an administrator)"
            } else if permissive {
                ""
            } else {
                " as adm (permit on)"
            }
        );
    }
    permissive |= root;
    let who = match (posix, permissive) {
        (false, false) => Who::user(uid),
        (false, true) => Who::permissive(uid),
        (true, false) => Who::posix(uid),
        (true, true) => Who::posix_root(uid),
    };
    let (at, q) = if label == "dump" {
        if is_none {
            return refuse(msg::NONE_REFUSED);
        }
        (At::Dump, dump_qid())
    } else {
        let (m, root) = core.fs.attach(label).map_err(|e| match e {
            fs::Error::Store(gefs_core::Error::NotFound(_)) => Error::Server(msg::BAD_SPEC),
            e => Error::Fs(e),
        })?;
        let q = qid(root.qid);
        (
            At::Node {
                mount: m,
                entry: root,
                from_dump: false,
            },
            q,
        )
    };
    conn.fids.insert(
        a.fid,
        Fid {
            who,
            uname,
            at,
            path: "/".to_string(),
            open: None,
        },
    )?;
    conn.set_attached(!is_none);
    Ok(q)
}
