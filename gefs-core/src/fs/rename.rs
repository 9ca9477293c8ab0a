//! Rename across directories, replacing an existing target as POSIX `rename` does: the
//! 9P2000.L `Trename` and `Trenameat`. (A 9P2000 wstat renames within a directory and never
//! replaces: `wstat.rs`.)
//!
//! One batch: the old key clobbered, the entry inserted under the new key (ctime now, muid
//! the requester, qid version bumped), a directory's `KUP` pointed at the new key, both
//! parents touched, and a replaced target removed with it (its `KUP` clobbered, or its data
//! queued for clearing with a durable note). A crash leaves either the old names or the new.
//!
//! Rules: a root is never moved; the new name is valid; the requester may write (POSIX: and
//! search) both parents, and in a sticky parent (POSIX) owns the entry or the parent; a
//! directory never moves under itself (EINVAL); a directory moving to another parent must be
//! writable by a POSIX requester (its `..` changes). A target is replaced only if asked:
//! a directory only by a directory, and only when empty; a file only by a non-directory.
//! Renaming an entry to its own name does nothing.

use super::dir::may_unlink;
use super::error::{Error, Result};
use super::nodes::Loc;
use super::perm::{self, EXEC, WRITE};
use super::walk::decode_xdir;
use super::wstat::touch;
use super::{names, now_ns, Entry, Fs, Mount, Who};
use crate::alloc::Tier;
use crate::format::key;
use crate::format::msg::{Msg, Op};
use crate::format::value::Xdir;
use crate::format::Encode;
use crate::store::TreeId;
use crate::CorruptKind;

/// Most parent links followed looking for a cycle; a deeper chain is corruption.
const MAX_DEPTH: usize = 1 << 20;

impl Fs {
    /// Move `e` to `name` in directory `to`. With `replace`, an existing entry of that name is
    /// replaced (POSIX); without, it is [`Error::Exists`].
    pub fn rename(
        &self,
        m: &Mount,
        e: &Entry,
        to: &Entry,
        name: &[u8],
        replace: bool,
        who: &Who,
    ) -> Result<()> {
        self.mutating(m)?;
        names::check(name)?;
        let _g = self.writer();
        let (loc, d) = self.current(m, e)?;
        if loc.pqid == key::ROOT_PQID {
            return Err(Error::Root);
        }
        let (tloc, td) = self.current(m, to)?;
        if !td.is_dir() {
            return Err(Error::NotDir);
        }
        if loc.pqid == td.qid_path && loc.name == name {
            return Ok(());
        }
        let users = self.users();
        let (ploc, pd) = self.parent_of(m.tree, &loc)?;
        let want = if who.posix { WRITE | EXEC } else { WRITE };
        if !perm::allowed(&users, who, &pd, want) || !perm::allowed(&users, who, &td, want) {
            return Err(Error::Perm);
        }
        if !may_unlink(who, &pd, &d) {
            return Err(Error::NotPermitted);
        }
        let moves_dir = d.is_dir() && td.qid_path != loc.pqid;
        if moves_dir && who.posix && !perm::allowed(&users, who, &d, WRITE) {
            return Err(Error::Perm);
        }
        if moves_dir {
            self.check_not_under(m.tree, d.qid_path, &tloc, &td)?;
        }
        let new = key::ent(td.qid_path, name);
        let target = match self.lookup_at(m.tree, &new)? {
            Some(v) => Some(decode_xdir(&v)?),
            None => None,
        };
        let mut msgs = Vec::new();
        if let Some(x) = &target {
            self.plan_replace(m, who, &td, &d, x, replace, &mut msgs)?;
        }
        let now = now_ns();
        let mut nd = d;
        nd.ctime = now;
        nd.muid = who.uid;
        nd.qid_vers = nd.qid_vers.wrapping_add(1);
        msgs.push(Msg::bare(Op::Clobber, key::ent(loc.pqid, &loc.name)));
        msgs.push(Msg::insert(new.clone(), nd.encode()));
        if d.is_dir() {
            msgs.push(Msg::insert(key::up(d.qid_path), new));
        }
        msgs.push(touch(&ploc, who));
        if tloc != ploc {
            msgs.push(touch(&tloc, who));
        }
        let q = d.qid_path;
        // Replacing a target frees space, as a remove does.
        let tier = if target.is_some() {
            Tier::Reserve
        } else {
            Tier::Normal
        };
        self.nodes.begin(m.tree, q);
        if let Err(err) = self.store.upsert(m.tree, msgs, tier) {
            self.nodes.abort(m.tree, q);
            return Err(err.into());
        }
        self.nodes.moved(m.tree, q, td.qid_path, name);
        if let Some(x) = target {
            if !x.is_dir() {
                self.queue_clear(m, x.qid_path, 0);
            }
            self.nodes.removed(m.tree, x.qid_path);
        }
        Ok(())
    }

    /// Check that `x`, the entry of the new name in `td`, may be replaced by `d`, and add the
    /// messages that remove it.
    #[allow(clippy::too_many_arguments)]
    fn plan_replace(
        &self,
        m: &Mount,
        who: &Who,
        td: &Xdir,
        d: &Xdir,
        x: &Xdir,
        replace: bool,
        msgs: &mut Vec<Msg>,
    ) -> Result<()> {
        if !replace {
            return Err(Error::Exists);
        }
        match (d.is_dir(), x.is_dir()) {
            (true, false) => return Err(Error::NotDir),
            (false, true) => return Err(Error::IsDir),
            _ => {}
        }
        if x.is_dir() && !self.dir_empty(m, x.qid_path)? {
            return Err(Error::NotEmpty);
        }
        if !may_unlink(who, td, x) {
            return Err(Error::NotPermitted);
        }
        if x.is_dir() {
            msgs.push(Msg::bare(Op::Clobber, key::up(x.qid_path)));
        } else {
            msgs.push(self.clear_note(m.tree, x.qid_path, 0));
        }
        Ok(())
    }

    /// Fail with [`Error::Invalid`] if directory `tq` (at `tloc`, value `td`) is directory `dq`
    /// or lies under it.
    fn check_not_under(&self, tree: TreeId, dq: u64, tloc: &Loc, td: &Xdir) -> Result<()> {
        let (mut loc, mut q) = (tloc.clone(), td.qid_path);
        for _ in 0..MAX_DEPTH {
            if q == dq {
                return Err(Error::Invalid(
                    "a directory cannot move under itself".into(),
                ));
            }
            if loc.pqid == key::ROOT_PQID {
                return Ok(());
            }
            let (ploc, pd) = self.parent_of(tree, &loc)?;
            (loc, q) = (ploc, pd.qid_path);
        }
        // Name the block of the last up-link followed.
        let at = self
            .lookup_at(tree, &key::up(loc.pqid))?
            .map_or(crate::BlockAddr::NONE, |l| l.addr);
        Err(Error::Store(crate::Error::corrupt(
            at,
            CorruptKind::Cycle,
            "directory chain without a root",
        )))
    }
}
