//! The file system over the store: files, directories, permissions, without
//! any 9P types (the server maps requests onto these calls and
//! [`Error::message`] onto `Rerror` strings).
//!
//! Mapping onto keys (see `format::key`): a directory entry is
//! `KENT(parent qid, name) → Xdir`; a directory also has
//! `KUP(qid) → its own KENT key`, so `..` is one lookup; a root is
//! `KENT(ROOT_PQID, "")`. File data is `KDAT(qid, block offset) → Bptr`;
//! a missing `KDAT` below the length is a hole and reads as zeros.
//!
//! Invariants kept by every operation:
//! - qid paths come from [`Store::next_qid`] and are never reused, so keys
//!   of a removed file can never be confused with a later file's;
//! - the bytes of a file's last block past its length are zero, and every
//!   `KDAT` key at or beyond `roundup(length, BLKSZ)` is either queued for
//!   clearing (`clear.rs`) or left over from a crash before its clear ran;
//!   anything that grows a file first drains the file's queued clear and
//!   clears leftovers in the range it grows over, so stale data can never
//!   reappear (reference defect #4);
//! - mutations are serialised by one writer lock (`wlock`), taken around
//!   each check-then-upsert; every change is one atomic upsert. Reads,
//!   walks and directory listings never take it;
//! - metadata that can be changed blindly (mtime, muid, size, vers) is
//!   changed with `Wstat` messages, never by rewriting the `Xdir`; only a
//!   rename, whose key changes, writes a whole new `Xdir`;
//! - an [`Entry`] is a snapshot of an entry plus a shared handle (`nodes.rs`)
//!   that follows renames and removes, so every handle on a file sees the
//!   same name and the same "gone" state.
//!
//! Lock order: `wlock`, then the clear queue, then the node table; the
//! store's own locks are inside all three.

mod clear;
mod dir;
pub mod error;
mod excl;
mod file;
pub mod format;
mod make;
pub mod names;
mod nodes;
mod perm;
mod rename;
mod walk;
mod wstat;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::format::Decode;
use crate::store::OpGuard;
use crate::CorruptKind;

use crate::format::key;
use crate::snap::{Snaps, Space};
use crate::store::TreeId;

pub use crate::users::{Access as Who, Users};
pub use clear::{SweepStep, CLEAR_CHUNK};
pub use error::{errno, Error, Result, WstatRule};
pub use excl::FileId;
pub use file::{Open, OpenInfo, MAX_IO, MAX_LEN, OEXEC, ORCLOSE, ORDWR, OREAD, OTRUNC, OWRITE};
pub use make::{Kind, MAX_TARGET};
pub use perm::{EXEC, READ, WRITE};
pub use wstat::Changes;

// What a server over the file system names besides `Fs`: the store it is
// opened on and what `Fs` hands back from it, the directory-entry record
// (an `Xdir` is a file's stat) with its mode bits and device numbers, and
// the block size files are stored in.
pub use crate::format::value::{
    Device, Xdir, DMAPPEND, DMDEVICE, DMDIR, DMEXCL, DMKIND, DMNAMEDPIPE, DMSETGID, DMSETUID,
    DMSETVTX, DMSOCKET, DMSYMLINK, DMTMP,
};
pub use crate::format::{BLKSZ, BLKSZ_U64};
pub use crate::store::{CommitInfo, Config, LabelInfo, Store};

use nodes::{Loc, Node, Nodes};

/// A 9P qid: the entry's identity, version and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qid {
    /// Unique across the file system, never reused.
    pub path: u64,
    /// Bumped by every change to the entry.
    pub vers: u32,
    /// `mode >> 24`.
    pub ty: u8,
}

impl Qid {
    /// The qid of a directory entry value.
    pub fn of(d: &Xdir) -> Qid {
        Qid {
            path: d.qid_path,
            vers: d.qid_vers,
            ty: d.qid_type,
        }
    }
}

/// An entry some handle holds: a snapshot of its name, parent and `Xdir`,
/// plus the shared node that tracks renames and removal. Refresh the
/// snapshot with [`Fs::stat`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// The qid when the snapshot was taken.
    pub qid: Qid,
    /// The name (empty for a root).
    pub name: Vec<u8>,
    /// The parent directory's qid path (a root is its own parent).
    pub parent: u64,
    /// The directory entry value.
    pub dir: Xdir,
    node: Arc<Node>,
}

impl Entry {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.dir.is_dir()
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.dir.is_symlink()
    }

    /// Whether this is the root of its tree.
    pub fn is_root(&self) -> bool {
        self.parent == self.qid.path
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: Vec<u8>,
    /// The directory entry value.
    pub dir: Xdir,
}

impl DirEntry {
    /// Its qid.
    pub fn qid(&self) -> Qid {
        Qid::of(&self.dir)
    }
}

/// The file system's size and free space, for `statfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Block size in bytes.
    pub bsize: u32,
    /// Blocks on the device (every arena's).
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks ordinary writes may use (the reserve kept for removes and
    /// syncs excluded).
    pub bavail: u64,
    /// The longest name, in bytes.
    pub namelen: u32,
}

/// An attached tree. Clones share one hold on the store's mount of the
/// tree; dropping the last releases it ([`Store::unmount`]), so a snapshot
/// nobody has attached can be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    tree: TreeId,
    mutable: bool,
    label: String,
    root: u64,
    hold: Arc<Hold>,
}

/// One [`Store::mount`], released when dropped.
struct Hold {
    store: Arc<Store>,
    tree: TreeId,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.store.unmount(self.tree);
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hold({:?})", self.tree)
    }
}

impl PartialEq for Hold {
    fn eq(&self, o: &Hold) -> bool {
        self.tree == o.tree
    }
}

impl Eq for Hold {}

impl Mount {
    /// The store's tree.
    pub fn tree(&self) -> TreeId {
        self.tree
    }

    /// Whether `other` is a mount of the same tree (a rename cannot cross
    /// trees).
    pub fn same_tree(&self, other: &Mount) -> bool {
        self.tree == other.tree
    }

    /// Whether changes are allowed (a mutable label, not a snapshot).
    pub fn is_mutable(&self) -> bool {
        self.mutable
    }

    /// The label it was attached by.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The root directory's qid path.
    pub fn root_qid(&self) -> u64 {
        self.root
    }

    /// The same tree, refusing every change (the server's `dump` view of a
    /// mutable label).
    pub fn read_only(&self) -> Mount {
        Mount {
            mutable: false,
            ..self.clone()
        }
    }
}

/// The writer lock held (fields drop in order: the store operation ends
/// before the lock is released).
struct Writer<'a> {
    _op: OpGuard<'a>,
    _lock: MutexGuard<'a, ()>,
}

/// The file system over one store.
pub struct Fs {
    store: Arc<Store>,
    users: RwLock<Arc<Users>>,
    permissive: AtomicBool,
    /// The writer lock: one mutator at a time.
    wlock: Mutex<()>,
    clears: Mutex<clear::Queue>,
    nodes: Nodes,
    /// Exclusive-use files open now (`excl.rs`).
    excl: excl::ExclTable,
}

impl std::fmt::Debug for Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fs")
            .field("store", &self.store)
            .field("permissive", &self.is_permissive())
            .finish()
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Fs {
    /// The file system over `store`, with the users table loaded from the
    /// `adm` tree. A broken table is an error unless `permissive`, which
    /// then uses the fallback table (`adm` and `none` only).
    pub fn new(store: Arc<Store>, permissive: bool) -> Result<Fs> {
        let fs = Fs {
            store,
            users: RwLock::new(Arc::new(Users::fallback())),
            permissive: AtomicBool::new(permissive),
            wlock: Mutex::new(()),
            clears: Mutex::new(clear::Queue::default()),
            nodes: Nodes::default(),
            excl: Default::default(),
        };
        match fs.load_users() {
            Ok(t) => *fs.users.write() = Arc::new(t),
            Err(_) if permissive => {}
            Err(e) => return Err(e),
        }
        Ok(fs)
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether the server is permissive (`-S`, or console `permit on`).
    pub fn is_permissive(&self) -> bool {
        self.permissive.load(Ordering::SeqCst)
    }

    /// Turn permissive mode on or off.
    pub fn set_permissive(&self, on: bool) {
        self.permissive.store(on, Ordering::SeqCst);
    }

    /// Whether `uid` may attach permissively (`%` spec): members of `adm`,
    /// or anyone when the server is permissive.
    pub fn may_permit(&self, uid: i32) -> bool {
        let t = self.users();
        self.is_permissive() || t.is_member(uid, t.adm_id())
    }

    /// The current users table.
    pub fn users(&self) -> Arc<Users> {
        self.users.read().clone()
    }

    /// The id of user `name`.
    pub fn uid(&self, name: &str) -> Result<i32> {
        self.users()
            .by_name(name)
            .map(crate::users::User::id)
            .ok_or(Error::NoUser)
    }

    /// Re-read `/users` from the `adm` tree. A broken table leaves the
    /// current one in place and is reported.
    pub fn reload_users(&self) -> Result<()> {
        let t = self.load_users()?;
        *self.users.write() = Arc::new(t);
        Ok(())
    }

    fn load_users(&self) -> Result<Users> {
        let (m, root) = self.attach("adm")?;
        let adm = Who::permissive(self.users().adm_id());
        let users = self.walk(&m, &root, b"users", &adm)?;
        let bytes = self.read_all(&m, &users, crate::users::MAX_FILE_BYTES as u64)?;
        Ok(Users::parse_bytes(&bytes)?)
    }

    /// Attach to the tree `label` names: its mount and root entry.
    pub fn attach(&self, label: &str) -> Result<(Mount, Entry)> {
        let tree = self.store.mount(label)?;
        let hold = Arc::new(Hold {
            store: self.store.clone(),
            tree,
        });
        let loc = Loc::at(key::ROOT_PQID, b"");
        let d = self
            .xdir_at(tree, &loc)?
            .ok_or_else(|| crate::Error::NotFound(format!("root of {label}")))?;
        let mutable = self.label_is_mutable(label)?;
        let m = Mount {
            tree,
            mutable,
            label: label.to_string(),
            root: d.qid_path,
            hold,
        };
        if mutable {
            let _g = self.writer();
            self.resume_clears(&m)?;
        }
        // A root never moves.
        let node = self.nodes.register_current(tree, d.qid_path, loc.clone());
        Ok((m, self.entry(node, &loc, d)))
    }

    /// Size and free space, from the allocator's counts.
    pub fn statfs(&self) -> StatFs {
        let stats = self.store.stats();
        let (mut blocks, mut bfree, mut bavail) = (0u64, 0u64, 0u64);
        for a in &stats.arenas {
            blocks += a.blocks;
            bfree += a.free;
            bavail += a.free.saturating_sub(a.reserve);
        }
        StatFs {
            bsize: crate::format::BLKSZ as u32,
            blocks,
            bfree,
            bavail,
            namelen: names::MAX_NAME as u32,
        }
    }

    /// Every label and the record it names: the entries of a server's
    /// `dump` directory.
    pub fn labels(&self) -> Result<Vec<LabelInfo>> {
        Ok(self.store.labels()?)
    }

    /// The image's space, with what only snapshots hold
    /// ([`Snaps::space`]).
    pub fn space(&self) -> crate::Result<Space> {
        Snaps::new(&self.store).space()
    }

    /// What to tell an administrator when the file system is full: the
    /// space, what snapshots hold (the largest first), and how to free it
    /// ([`Snaps::explain_full`]).
    pub fn explain_full(&self) -> String {
        Snaps::new(&self.store).explain_full()
    }

    /// Finish every queued clear, then commit: everything done so far is
    /// durable when this returns.
    pub fn sync(&self) -> Result<CommitInfo> {
        let clearing = self.clears_pending() > 0;
        while self.sweep(usize::MAX)? {}
        if clearing {
            // The clears' messages free their blocks when they reach the
            // leaves: apply the write buffers so the space comes back with
            // this commit.
            self.store.checkpoint()?;
        }
        Ok(self.store.sync()?)
    }

    /// Whether `label` moves with commits (changes allowed). The store
    /// knows this per tree but does not say; the label's flags do.
    fn label_is_mutable(&self, label: &str) -> Result<bool> {
        let v = self
            .lookup_at(TreeId::SNAP, &key::label(label.as_bytes()))?
            .ok_or_else(|| self.store.no_label(label))?;
        let lv = crate::format::value::LabelVal::decode(&v.val)
            .map_err(|_| crate::Error::corrupt(v.addr, CorruptKind::Value, "label value"))?;
        Ok(lv.is_mutable())
    }

    /// Fail unless `m` accepts changes: [`Error::ReadOnly`] for a snapshot
    /// or a store opened read-only, the store's [`crate::Error::Failed`] once
    /// a device failure latched it.
    fn mutating(&self, m: &Mount) -> Result<()> {
        if !m.mutable {
            return Err(Error::ReadOnly);
        }
        Ok(self.store.writable()?)
    }

    /// Take the writer lock, inside a store operation: a commit waits until
    /// it drops, so a write's data blocks and the keys that reference them
    /// are made durable together.
    fn writer(&self) -> Writer<'_> {
        let lock = self.wlock.lock();
        Writer {
            _op: self.store.begin_op(),
            _lock: lock,
        }
    }

    /// Build an entry from a node, its location and its value.
    fn entry(&self, node: Arc<Node>, loc: &Loc, d: Xdir) -> Entry {
        let parent = if loc.pqid == key::ROOT_PQID {
            d.qid_path
        } else {
            loc.pqid
        };
        Entry {
            qid: Qid::of(&d),
            name: loc.name.clone(),
            parent,
            dir: d,
            node,
        }
    }
}
