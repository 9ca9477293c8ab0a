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
//! - a node's location is changed only by the single writer: [`Nodes::begin`]
//!   before the upsert that moves or removes its key (the node is then
//!   `moving`, and so is any node registered for that qid until the end),
//!   then [`Nodes::moved`], [`Nodes::removed`] or [`Nodes::abort`] after it;
//!   each takes the table lock and bumps `seq`. A reader that misses the key
//!   of a `moving` node waits and looks again, so a rename in flight never
//!   looks like a remove;
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
    /// A move or remove of this key is in flight.
    pub moving: bool,
    /// Bumped by every change, so that a reader can tell "moved away and
    /// back" from "not moved".
    pub ver: u64,
}

impl Loc {
    /// The live entry `name` in directory `pqid`.
    pub fn at(pqid: u64, name: &[u8]) -> Loc {
        Loc {
            pqid,
            name: name.to_vec(),
            gone: false,
            moving: false,
            ver: 0,
        }
    }
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
    inflight: Option<(TreeId, u64)>,
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
    pub fn register(&self, tree: TreeId, qid: u64, mut loc: Loc, seen: u64) -> Registered {
        let mut t = self.t.lock();
        loc.moving = t.inflight == Some((tree, qid));
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

    /// The key of `qid` is about to move or go.
    pub fn begin(&self, tree: TreeId, qid: u64) {
        self.update(tree, qid, Some((tree, qid)), |l| l.moving = true);
    }

    /// The move of `qid` did not happen.
    pub fn abort(&self, tree: TreeId, qid: u64) {
        self.update(tree, qid, None, |l| l.moving = false);
    }

    /// `qid` was renamed to `name` in `pqid`.
    pub fn moved(&self, tree: TreeId, qid: u64, pqid: u64, name: &[u8]) {
        self.update(tree, qid, None, |l| *l = Loc::at(pqid, name));
    }

    /// `qid` was removed.
    pub fn removed(&self, tree: TreeId, qid: u64) {
        self.update(tree, qid, None, |l| {
            l.gone = true;
            l.moving = false;
        });
    }

    fn update(
        &self,
        tree: TreeId,
        qid: u64,
        inflight: Option<(TreeId, u64)>,
        f: impl FnOnce(&mut Loc),
    ) {
        let mut t = self.t.lock();
        t.seq += 1;
        t.inflight = inflight;
        if let Some(n) = t.live.get(&(tree, qid)).and_then(Weak::upgrade) {
            let mut l = n.loc.lock();
            let ver = l.ver;
            f(&mut l);
            l.ver = ver + 1;
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
