//! Making entries of every kind: files, directories, symbolic links, named pipes and sockets.
//!
//! [`Fs::make`] is the one place an entry comes into being: one batch inserts the entry (with
//! its `KUP` for a directory, and a symbolic link's target block), and touches the parent.
//! Plan 9's create ([`Fs::create`]) computes the inherited mode and calls it; a 9P2000.L
//! requester passes the mode it wants (its umask applied) and the group it asks for.
//!
//! Rules (the requester's permission to write the parent was checked; a POSIX requester also
//! needs search):
//! - the group is the one asked for if the requester may give it (it is the parent's, or it is
//!   a group of the users table and the requester is a member of it or permissive), otherwise
//!   the parent's; under a set-group-id
//!   directory (POSIX) it is always the parent's, and a new directory keeps the bit;
//! - a symbolic link's target is 1 to [`MAX_TARGET`] bytes with no NUL; it is stored as the
//!   link's contents and never interpreted;
//! - pipes and sockets have no contents, and the file system never opens them for data;
//! - a device node has no contents either (its entry's `length` field holds the device,
//!   [`Device`]); only a requester with the superuser's powers (POSIX's `CAP_MKNOD`) may make
//!   one, and the file system never opens it for data (the client's kernel interprets it).

use super::error::{Error, Result};
use super::nodes::Loc;
use super::perm::{self, EXEC, WRITE};
use super::wstat::touch;
use super::{names, now_ns, Entry, Fs, Mount, Who};
use crate::alloc::Tier;
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::{
    Device, Xdir, DMDEVICE, DMDIR, DMNAMEDPIPE, DMSETGID, DMSOCKET, DMSYMLINK,
};
use crate::format::Encode;

/// The longest symbolic-link target, in bytes (Linux's `PATH_MAX` less its NUL).
pub const MAX_TARGET: usize = 4095;

/// What kind of entry to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to this target.
    Symlink(&'a [u8]),
    /// A named pipe (FIFO).
    Pipe,
    /// A Unix-domain socket.
    Socket,
    /// A device node.
    Device(Device),
}

impl Kind<'_> {
    /// The mode bits of the kind.
    fn bits(self) -> u32 {
        match self {
            Kind::File => 0,
            Kind::Dir => DMDIR,
            Kind::Symlink(_) => DMSYMLINK,
            Kind::Pipe => DMNAMEDPIPE,
            Kind::Socket => DMSOCKET,
            Kind::Device(_) => DMDEVICE,
        }
    }
}

impl Fs {
    /// Make `name` in directory `dir`: an entry of `kind` with permission and attribute bits
    /// `perm` (no kind bits), in group `gid` if the requester may give it (`None`: the
    /// parent's). Returns the new entry.
    #[allow(clippy::too_many_arguments)]
    pub fn make(
        &self,
        m: &Mount,
        dir: &Entry,
        name: &[u8],
        kind: Kind<'_>,
        perm: u32,
        gid: Option<i32>,
        who: &Who,
    ) -> Result<Entry> {
        let allowed = (super::wstat::MODE_BITS | crate::users::POSIX_MODE_BITS) & !DMDIR;
        if perm & !allowed != 0 {
            return Err(Error::Invalid(format!("create mode {perm:#x}")));
        }
        self.make_with(m, dir, name, kind, |_| perm, gid, who)
    }

    /// [`Fs::make`] with the permission bits computed from the parent's value, under the
    /// writer lock (Plan 9's inheritance).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_with(
        &self,
        m: &Mount,
        dir: &Entry,
        name: &[u8],
        kind: Kind<'_>,
        perm_of: impl FnOnce(&Xdir) -> u32,
        gid: Option<i32>,
        who: &Who,
    ) -> Result<Entry> {
        self.mutating(m)?;
        names::check(name)?;
        if let Kind::Symlink(t) = kind {
            if t.is_empty() || t.len() > MAX_TARGET || t.contains(&0) {
                return Err(Error::Invalid("symbolic link target".into()));
            }
        }
        let g = self.writer();
        let (ploc, pd) = self.current(m, dir)?;
        if !pd.is_dir() {
            return Err(Error::NotDir);
        }
        let users = self.users();
        let want = if who.posix { WRITE | EXEC } else { WRITE };
        if !perm::allowed(&users, who, &pd, want) {
            return Err(Error::Perm);
        }
        let ent = key::ent(pd.qid_path, name);
        if self.store.lookup(m.tree, &ent)?.is_some() {
            return Err(Error::Exists);
        }
        if matches!(kind, Kind::Device(_)) && !who.permissive {
            return Err(Error::NotPermitted);
        }
        let sgid_dir = who.posix && pd.mode & DMSETGID != 0;
        let gid = match gid {
            _ if sgid_dir => pd.gid,
            Some(g)
                if g == pd.gid
                    || (users.by_id(g).is_some()
                        && (who.permissive || users.is_member(who.uid, g))) =>
            {
                g
            }
            _ => pd.gid,
        };
        let mut mode = kind.bits() | perm_of(&pd);
        if sgid_dir && kind == Kind::Dir {
            mode |= DMSETGID;
        }
        let now = now_ns();
        let q = self.store.next_qid();
        let mut d = Xdir {
            ctime: now,
            qid_path: q,
            qid_type: (mode >> 24) as u8,
            mode,
            atime: now,
            mtime: now,
            uid: who.uid,
            gid,
            muid: who.uid,
            ..Xdir::default()
        };
        if let Kind::Device(dev) = kind {
            d.length = dev.encode();
        }
        let mut msgs = Vec::new();
        let mut block = None;
        if let Kind::Symlink(t) = kind {
            let bp = self
                .store
                .write_data(m.tree, q, false, Tier::Normal, |buf| {
                    buf[..t.len()].copy_from_slice(t);
                })?;
            d.length = t.len() as u64;
            msgs.push(Msg::insert(key::dat(q, 0), bp.to_bytes().to_vec()));
            block = Some(bp);
        }
        msgs.push(Msg::insert(ent.clone(), d.encode()));
        if d.is_dir() {
            msgs.push(Msg::insert(key::up(q), ent));
        }
        msgs.push(touch(&ploc, who));
        if let Err(e) = self.store.upsert(m.tree, msgs, Tier::Normal) {
            self.discard(m.tree, block.as_slice());
            return Err(e.into());
        }
        let loc = Loc::at(pd.qid_path, name);
        // Under the writer lock: nothing can have moved the new entry.
        let node = self.nodes.register_current(m.tree, q, loc.clone());
        drop(g);
        Ok(self.entry(node, &loc, d))
    }

    /// Make a regular file as [`Fs::make`] does and open it in `omode` (9P2000.L create).
    #[allow(clippy::too_many_arguments)]
    pub fn make_open(
        &self,
        m: &Mount,
        dir: &Entry,
        name: &[u8],
        perm: u32,
        gid: Option<i32>,
        omode: u8,
        who: &Who,
    ) -> Result<super::Open> {
        let e = self.make(m, dir, name, Kind::File, perm, gid, who)?;
        self.opened(m, e, omode)
    }

    /// The target of symbolic link `e`.
    pub fn readlink(&self, m: &Mount, e: &Entry) -> Result<Vec<u8>> {
        let (_, d) = self.current(m, e)?;
        if !d.is_symlink() {
            return Err(Error::Invalid("not a symbolic link".into()));
        }
        self.read_all(m, e, MAX_TARGET as u64 + 1)
    }
}
