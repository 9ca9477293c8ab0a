//! Exclusive-use files (`DMEXCL`): such a file is open at most once at a
//! time, over every connection and every mount of its tree. The file
//! system keeps the table of open exclusive files; a server takes an entry
//! when it opens one ([`Fs::excl_take`]) and gives it back when the open
//! ends ([`Fs::excl_release`]).
//!
//! Invariant: an entry is in the table exactly while its count is above 0.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{Fs, Mount};
use crate::store::TreeId;

/// A file across connections and mounts: the open tree it is in and its
/// qid path ([`Mount::file_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    tree: TreeId,
    qid: u64,
}

/// The exclusive-use files open now, with their number of opens.
#[derive(Debug, Default)]
pub(super) struct ExclTable(Mutex<HashMap<FileId, usize>>);

impl Mount {
    /// The file with qid path `qid` in this mount's tree.
    pub fn file_id(&self, qid: u64) -> FileId {
        FileId {
            tree: self.tree(),
            qid,
        }
    }
}

impl Fs {
    /// Take the exclusive open of `f`; false if it is open already.
    pub fn excl_take(&self, f: FileId) -> bool {
        let mut t = self.excl.0.lock();
        let n = t.entry(f).or_insert(0);
        if *n > 0 {
            return false;
        }
        *n = 1;
        true
    }

    /// Give back an exclusive open of `f`.
    pub fn excl_release(&self, f: FileId) {
        let mut t = self.excl.0.lock();
        if let Some(n) = t.get_mut(&f) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&f);
            }
        }
    }

    /// Whether `f` is open exclusively.
    pub fn excl_held(&self, f: FileId) -> bool {
        self.excl.0.lock().get(&f).is_some_and(|n| *n > 0)
    }
}
