//! Walk, stat, and finding an entry's current key.
//!
//! A walk step is one `KENT` lookup (`..` is a `KUP` lookup and a `KENT`
//! lookup), so its cost is O(log n) in the size of the tree, whatever the
//! size of the directory. `..` at a root stays at the root, any number of
//! times (reference defect #29).

use std::ops::Bound;
use std::sync::Arc;

use super::error::{Error, Result};
use super::nodes::{Loc, Node};
use super::perm::{self, EXEC};
use super::{names, Entry, Fs, Mount, Who};
use crate::format::key::{self, KeyView};
use crate::format::value::Xdir;
use crate::format::Decode;
use crate::ids::BlockAddr;
use crate::store::TreeId;
use crate::tree::Located;
use crate::CorruptKind;

/// Attempts to find an entry whose key moves under a reader.
const RETRIES: usize = 8;
/// Attempts to follow a node whose key is moving (yields, then 50 µs naps:
/// well over a second in all).
const FOLLOW_TRIES: usize = 20_000;

/// A damaged value found in block `at` (for a value that is missing, the
/// root of the tree that should hold it).
fn bad_value(at: BlockAddr, what: &str) -> Error {
    Error::Store(crate::Error::corrupt(at, CorruptKind::Value, what))
}

/// Decode a `KENT` value, naming the block it was found in if it is
/// damaged.
pub(super) fn decode_xdir(v: &Located) -> Result<Xdir> {
    Ok(v.decode::<Xdir>()?)
}

impl Fs {
    /// Look `key` up in `tree`, with the block its value was found in.
    pub(super) fn lookup_at(&self, tree: TreeId, key: &[u8]) -> Result<Option<Located>> {
        Ok(self
            .store
            .with_reader(tree, |ctx, root| crate::tree::lookup_at(ctx, root, key))?)
    }

    /// Scan `tree` over `[from, to)` for at most `limit` entries, with the
    /// block each value was found in.
    pub(super) fn scan_at(
        &self,
        tree: TreeId,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Located)>> {
        Ok(self.store.with_reader(tree, |ctx, root| {
            crate::tree::scan_at(ctx, root, from, to, limit)
        })?)
    }

    /// The value of the entry at `loc`, if there is one.
    pub(super) fn xdir_at(&self, tree: TreeId, loc: &Loc) -> Result<Option<Xdir>> {
        match self.lookup_at(tree, &key::ent(loc.pqid, &loc.name))? {
            Some(v) => Ok(Some(decode_xdir(&v)?)),
            None => Ok(None),
        }
    }

    /// The current location and value of `node` (qid `qid`): [`Error::Gone`]
    /// if it was removed.
    pub(super) fn resolve(&self, tree: TreeId, node: &Node, qid: u64) -> Result<(Loc, Xdir)> {
        self.follow(node, |loc| {
            Ok(self.xdir_at(tree, loc)?.filter(|d| d.qid_path == qid))
        })
    }

    /// Run `f` at the node's current location until it finds the entry
    /// (`Some`). A miss while the node is moving (a rename or remove in
    /// flight), or after it moved, is retried; a miss at a settled location
    /// means the entry is gone.
    pub(super) fn follow<T>(
        &self,
        node: &Node,
        mut f: impl FnMut(&Loc) -> Result<Option<T>>,
    ) -> Result<(Loc, T)> {
        let mut loc = node.loc();
        for i in 0..FOLLOW_TRIES {
            if loc.gone {
                return Err(Error::Gone);
            }
            if let Some(x) = f(&loc)? {
                return Ok((loc, x));
            }
            let now = node.loc();
            if now == loc && !now.moving {
                return Err(Error::Gone);
            }
            if now.moving {
                if i < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
            loc = now;
        }
        Err(Error::Gone)
    }

    /// The current location and value of `e`.
    pub(super) fn current(&self, m: &Mount, e: &Entry) -> Result<(Loc, Xdir)> {
        self.resolve(m.tree, &e.node, e.qid.path)
    }

    /// The location and value of the directory containing `loc` (a root
    /// contains itself).
    pub(super) fn parent_of(&self, tree: TreeId, loc: &Loc) -> Result<(Loc, Xdir)> {
        if loc.pqid == key::ROOT_PQID {
            let d = self.xdir_at(tree, loc)?.ok_or(Error::Gone)?;
            return Ok((loc.clone(), d));
        }
        // Both lookups on one tree: a reader may race a rename of the parent.
        self.store.with_reader(tree, |ctx, root| {
            let tree_at = root.bp.addr;
            let Some(up) = crate::tree::lookup_at(ctx, root, &key::up(loc.pqid))? else {
                return Ok(Err(bad_value(tree_at, "directory without an up-link")));
            };
            let Ok(KeyView::Ent { pqid, name }) = KeyView::decode(&up.val) else {
                return Ok(Err(bad_value(up.addr, "up-link is not an entry key")));
            };
            let ploc = Loc::at(pqid, name);
            let Some(v) = crate::tree::lookup_at(ctx, root, &key::ent(pqid, name))? else {
                return Ok(Err(bad_value(up.addr, "up-link to a missing entry")));
            };
            Ok(decode_xdir(&v).and_then(|d| {
                if d.qid_path == loc.pqid {
                    Ok((ploc, d))
                } else {
                    Err(bad_value(up.addr, "up-link to another directory"))
                }
            }))
        })?
    }

    /// A fresh snapshot of `e`: its current name, parent and value.
    pub fn stat(&self, m: &Mount, e: &Entry) -> Result<Entry> {
        let (loc, d) = self.current(m, e)?;
        Ok(self.entry(e.node.clone(), &loc, d))
    }

    /// Walk one element from directory `dir`: needs exec permission on it.
    /// `..` goes to the parent, and stays at a root.
    pub fn walk(&self, m: &Mount, dir: &Entry, name: &[u8], who: &Who) -> Result<Entry> {
        if name != b".." {
            names::check_walk(name).map_err(|e| match e {
                Error::BadName => Error::NotFound,
                e => e,
            })?;
        }
        let (loc, d) = self.current(m, dir)?;
        if !d.is_dir() {
            return Err(Error::NotDir);
        }
        if !perm::allowed(&self.users(), who, &d, EXEC) {
            return Err(Error::Perm);
        }
        for _ in 0..RETRIES {
            let seen = self.nodes.seq();
            let (cloc, cd) = if name == b".." {
                self.parent_of(m.tree, &loc)?
            } else {
                let cloc = Loc::at(d.qid_path, name);
                let cd = self.xdir_at(m.tree, &cloc)?.ok_or(Error::NotFound)?;
                (cloc, cd)
            };
            // `None`: the entry moved or went since the lookup, which may be
            // stale; look again rather than publish a stale location.
            if let Some(node) = self.nodes.register(m.tree, cd.qid_path, cloc.clone(), seen) {
                return Ok(self.found(node, &cloc, cd));
            }
        }
        Err(Error::NotFound)
    }

    /// The entry for a walk's result: if the node was already live, its
    /// own location is the authority.
    fn found(&self, node: Arc<Node>, cloc: &Loc, cd: Xdir) -> Entry {
        let loc = node.loc();
        if loc.gone || (loc.pqid == cloc.pqid && loc.name == cloc.name) {
            self.entry(node, cloc, cd)
        } else {
            self.entry(node, &loc, cd)
        }
    }
}
