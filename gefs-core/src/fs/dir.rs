//! Create, remove, and directory listings.
//!
//! Create and remove are one batch each, including a touch of the parent
//! directory (mtime and muid; the reference leaves its mtime, defect #30).
//! A created entry is returned with the directory it was created in as its
//! parent (defect #35). A root can never be removed (defect #29). A removed
//! file's data is cleared in the background ([`Fs::sweep`]); the entry is
//! gone for every handle at once.

use std::ops::Bound;

use super::error::{Error, Result};
use super::file::Open;
use super::make::Kind;
use super::perm::{self, READ, WRITE};
use super::wstat::{touch, MODE_BITS};
use super::{names, DirEntry, Entry, Fs, Mount, Who};
use crate::alloc::Tier;
use crate::format::key::{self, KeyView};
use crate::format::msg::{Msg, Op};
use crate::format::value::{Xdir, DMDIR, DMSETVTX};
use crate::format::Decode;

impl Fs {
    /// Create `name` in directory `dir` with permissions `perm` (Plan 9
    /// bits: DMDIR for a directory, DMAPPEND, DMEXCL, DMTMP, 0777) and open
    /// it in `omode`. The mode inherits from the parent as in Plan 9:
    /// `perm & (~0777 | parent & 0777)` for directories, `0666` for files.
    pub fn create(
        &self,
        m: &Mount,
        dir: &Entry,
        name: &[u8],
        perm: u32,
        omode: u8,
        who: &Who,
    ) -> Result<Open> {
        self.mutating(m)?;
        names::check(name)?;
        if perm & !MODE_BITS != 0 {
            return Err(Error::Invalid(format!("create mode {perm:#x}")));
        }
        let (kind, inherit) = if perm & DMDIR != 0 {
            (Kind::Dir, 0o777)
        } else {
            (Kind::File, 0o666)
        };
        let mode = |pd: &Xdir| perm & !DMDIR & (!inherit | (pd.mode & inherit));
        let e = self.make_with(m, dir, name, kind, mode, None, who)?;
        self.opened(m, e, omode)
    }

    /// Remove a file or an empty directory: needs write permission on the
    /// parent; never a root.
    pub fn remove(&self, m: &Mount, e: &Entry, who: &Who) -> Result<()> {
        self.mutating(m)?;
        let _g = self.writer();
        let (loc, d) = self.current(m, e)?;
        if loc.pqid == key::ROOT_PQID {
            return Err(Error::Root);
        }
        let (ploc, pd) = self.parent_of(m.tree, &loc)?;
        let users = self.users();
        if !perm::allowed(&users, who, &pd, WRITE) {
            return Err(Error::Perm);
        }
        if !may_unlink(who, &pd, &d) {
            return Err(Error::NotPermitted);
        }
        if d.is_dir() && !self.dir_empty(m, d.qid_path)? {
            return Err(Error::NotEmpty);
        }
        let mut msgs = vec![Msg::delete(key::ent(loc.pqid, &loc.name))];
        if d.is_dir() {
            msgs.push(Msg::bare(Op::Clobber, key::up(d.qid_path)));
        } else {
            msgs.push(self.clear_note(m.tree, d.qid_path, 0));
        }
        msgs.push(touch(&ploc, who));
        self.nodes.begin(m.tree, d.qid_path);
        if let Err(e) = self.store.upsert(m.tree, msgs, Tier::Reserve) {
            self.nodes.abort(m.tree, d.qid_path);
            return Err(e.into());
        }
        if !d.is_dir() {
            self.queue_clear(m, d.qid_path, 0);
        }
        self.nodes.removed(m.tree, d.qid_path);
        Ok(())
    }

    /// Whether directory `q` has no entries: a scan of exactly its own
    /// `KENT` prefix.
    pub(super) fn dir_empty(&self, m: &Mount, q: u64) -> Result<bool> {
        let lo = key::ent_prefix(q);
        let hi = key::prefix_end(&lo).ok_or_else(|| Error::Invalid("directory qid".into()))?;
        let one = self
            .store
            .scan(m.tree, Bound::Included(&lo), Bound::Excluded(&hi), 1)?;
        Ok(one.is_empty())
    }

    /// Up to `limit` entries of an open directory, in name (byte) order,
    /// starting after `after` (from the first when `None`).
    pub fn readdir(&self, o: &Open, after: Option<&[u8]>, limit: usize) -> Result<Vec<DirEntry>> {
        if o.info().want & READ == 0 {
            return Err(Error::NotOpen);
        }
        let (m, e) = (o.mount(), o.entry());
        let (_, d) = self.current(m, e)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        let lo = key::ent_prefix(d.qid_path);
        let hi = key::prefix_end(&lo).ok_or_else(|| Error::Invalid("directory qid".into()))?;
        let start = after.map(|a| key::ent(d.qid_path, a));
        let from = match &start {
            Some(k) => Bound::Excluded(&k[..]),
            None => Bound::Included(&lo[..]),
        };
        let kvs = self.scan_at(m.tree, from, Bound::Excluded(&hi), limit)?;
        let mut out = Vec::with_capacity(kvs.len());
        for (k, v) in kvs {
            if let Ok(KeyView::Ent { name, .. }) = KeyView::decode(&k) {
                out.push(DirEntry {
                    name: name.to_vec(),
                    dir: super::walk::decode_xdir(&v)?,
                });
            }
        }
        Ok(out)
    }
}

/// POSIX's sticky directories: an entry of sticky directory `pd` may be
/// removed or replaced only by its owner, the directory's owner, or the
/// superuser. Plan 9 has no such rule.
pub(super) fn may_unlink(who: &Who, pd: &Xdir, d: &Xdir) -> bool {
    !who.posix || who.permissive || pd.mode & DMSETVTX == 0 || who.uid == d.uid || who.uid == pd.uid
}
