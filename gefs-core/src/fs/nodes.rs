//! Live nodes: where each entry that some handle holds currently lives.
//!
//! A file's `KENT` key is its parent's qid and its name, so a rename moves
//! the key and a remove deletes it; a handle that remembered the old key
//! would lose the file, or find nothing. Like the reference's Dents, every
//! [`Entry`](super::Entry) of one file in one tree shares a [`Node`] that
//! records the current location and whether the file is gone.
//!
//! Invariants:
//! - the table maps `(tree, qid)` to at most one live node; a node is
//!   dropped when its last entry is, and dead slots are purged when the
//!   table has doubled since the last purge (amortised O(1));
//! - a node's location is changed only by [`Nodes::moved`] and
//!   [`Nodes::removed`], called by the single writer right after the upsert
//!   that moved or removed the key, under the table lock, which also bumps
//!   `seq`;
//! - a walk that registers a *new* node read its key before registering it;
//!   if `seq` changed in between, the key may have moved without the node
//!   hearing of it, so the walk re-checks the key ([`Registered::recheck`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::store::TreeId;

/// Where an entry lives: its parent's qid and its name (`KENT` key), or
/// nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    /// Parent directory's qid path ([`ROOT_PQID`](crate::format::key::ROOT_PQID)
    /// for a root).
    pub pqid: u64,
    /// The name in that directory.
    pub name: Vec<u8>,
    /// Removed.
    pub gone: bool,
}

/// One live file or directory of one tree.
#[derive(Debug)]
pub(super) struct Node {
    loc: Mutex<Loc>,
}

impl Node {
    /// Its current location.
    pub fn loc(&self) -> Loc {
        self.loc.lock().clone()
    }
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<(TreeId, u64), Weak<Node>>,
    seq: u64,
    purge_at: usize,
}

/// The table of live nodes.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    t: Mutex<Table>,
}

/// A node handed to a walk.
pub(super) struct Registered {
    /// The node.
    pub node: Arc<Node>,
    /// The node is new and a move or remove happened since the walk read its
    /// key: the key must be looked up again.
    pub recheck: bool,
}

const MIN_PURGE: usize = 1024;

impl Nodes {
    /// The move counter, read before a walk's lookup.
    pub fn seq(&self) -> u64 {
        self.t.lock().seq
    }

    /// The node of `qid` in `tree`, registering one at `loc` if there is
    /// none. `seen` is [`Nodes::seq`] as read before `loc` was looked up.
    pub fn register(&self, tree: TreeId, qid: u64, loc: Loc, seen: u64) -> Registered {
        let mut t = self.t.lock();
        if let Some(n) = t.live.get(&(tree, qid)).and_then(Weak::upgrade) {
            return Registered {
                node: n,
                recheck: false,
            };
        }
        let node = Arc::new(Node {
            loc: Mutex::new(loc),
        });
        t.live.insert((tree, qid), Arc::downgrade(&node));
        if t.live.len() >= t.purge_at.max(MIN_PURGE) {
            t.live.retain(|_, w| w.strong_count() > 0);
            t.purge_at = 2 * t.live.len();
        }
        Registered {
            node,
            recheck: t.seq != seen,
        }
    }

    /// `qid` was renamed to `name` in `pqid`.
    pub fn moved(&self, tree: TreeId, qid: u64, pqid: u64, name: &[u8]) {
        self.update(tree, qid, |l| {
            l.pqid = pqid;
            l.name = name.to_vec();
        });
    }

    /// `qid` was removed.
    pub fn removed(&self, tree: TreeId, qid: u64) {
        self.update(tree, qid, |l| l.gone = true);
    }

    fn update(&self, tree: TreeId, qid: u64, f: impl FnOnce(&mut Loc)) {
        let mut t = self.t.lock();
        t.seq += 1;
        if let Some(n) = t.live.get(&(tree, qid)).and_then(Weak::upgrade) {
            f(&mut n.loc.lock());
        }
    }

    /// Live nodes (for tests).
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.t
            .lock()
            .live
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}
