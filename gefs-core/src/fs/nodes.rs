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
//! - a node in the table is at its file's current location (or `moving`):
//!   every other walker adopts a live node's location over its own lookup,
//!   so a location is published only when it is known to be current. A walk
//!   reads `seq`, looks the key up, and then registers; a *new* node is
//!   inserted only if its qid has had no update since that `seq`
//!   ([`Nodes::register`] answers `None` otherwise, and the walk looks
//!   again). The last [`RECENT`] updates are kept to tell; an older `seq` is
//!   treated as moved.

use std::collections::{HashMap, VecDeque};
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
    /// The last [`RECENT`] updates: the `seq` each one set and its node.
    recent: VecDeque<(u64, TreeId, u64)>,
    purge_at: usize,
}

impl Table {
    /// Whether `(tree, qid)` may have been updated after `seq` was `seen`.
    fn updated_since(&self, tree: TreeId, qid: u64, seen: u64) -> bool {
        if seen == self.seq {
            return false;
        }
        let covered = self.recent.front().is_some_and(|&(s, ..)| s <= seen + 1);
        !covered
            || self
                .recent
                .iter()
                .any(|&(s, t, q)| s > seen && (t, q) == (tree, qid))
    }
}

/// The table of live nodes.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    t: Mutex<Table>,
}

const MIN_PURGE: usize = 1024;
/// Updates remembered for [`Nodes::register`]: a walk whose lookup is older
/// than this many updates looks again.
const RECENT: usize = 64;

impl Nodes {
    /// The move counter, read before a walk's lookup.
    pub fn seq(&self) -> u64 {
        self.t.lock().seq
    }

    /// The node of `qid` in `tree`, registering one at `loc` if there is
    /// none. `seen` is [`Nodes::seq`] as read before `loc` was looked up.
    /// `None` if there is no live node and `qid` may have moved or gone
    /// since: `loc` may be stale, and a node registered there would mislead
    /// every walker that adopts it, so the caller must look the key up again.
    pub fn register(&self, tree: TreeId, qid: u64, loc: Loc, seen: u64) -> Option<Arc<Node>> {
        let mut t = self.t.lock();
        if let Some(n) = t.live.get(&(tree, qid)).and_then(Weak::upgrade) {
            return Some(n);
        }
        if t.updated_since(tree, qid, seen) {
            return None;
        }
        Some(Self::insert(&mut t, tree, qid, loc))
    }

    /// Like [`Nodes::register`], for a location that cannot be stale: the
    /// caller holds the writer lock (the only mover) or `loc` is a root's.
    pub fn register_current(&self, tree: TreeId, qid: u64, loc: Loc) -> Arc<Node> {
        let mut t = self.t.lock();
        match t.live.get(&(tree, qid)).and_then(Weak::upgrade) {
            Some(n) => n,
            None => Self::insert(&mut t, tree, qid, loc),
        }
    }

    fn insert(t: &mut Table, tree: TreeId, qid: u64, mut loc: Loc) -> Arc<Node> {
        // If the key's move is in flight, `loc` is its old or new place, and
        // the move's end will set it.
        loc.moving = t.inflight == Some((tree, qid));
        let node = Arc::new(Node {
            loc: Mutex::new(loc),
        });
        t.live.insert((tree, qid), Arc::downgrade(&node));
        if t.live.len() >= t.purge_at.max(MIN_PURGE) {
            t.live.retain(|_, w| w.strong_count() > 0);
            t.purge_at = 2 * t.live.len();
        }
        node
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
        let seq = t.seq;
        if t.recent.len() == RECENT {
            t.recent.pop_front();
        }
        t.recent.push_back((seq, tree, qid));
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: TreeId = TreeId::SNAP;

    /// Postmortem (`fs::tests::readers_racing_renames_never_see_a_live_file_gone`
    /// failed about once in 200 runs on a loaded machine, with `Gone` in two
    /// threads at once). A reader read `seq`, found qid 4 at "p", and was
    /// descheduled while the writer renamed it to "q". Nobody else held the
    /// file, so `register` made a new node at "p" and put it in the table
    /// before the walk re-checked the key. In that window the writer walked
    /// "q", got the stale node back (a live node's location wins over the
    /// walker's own lookup), and its wstat and the reader's stat both
    /// resolved "p": gone. The store was right throughout. A walk now never
    /// publishes a location that may be stale.
    #[test]
    fn a_stale_walk_never_publishes_its_location() {
        let n = Nodes::default();
        let seen = n.seq(); // the reader, then its lookup finds "p"
        let w = n.register(T, 4, Loc::at(0, b"p"), n.seq()).unwrap();
        n.begin(T, 4);
        n.moved(T, 4, 0, b"q");
        drop(w); // nobody holds the file now
        assert!(
            n.register(T, 4, Loc::at(0, b"p"), seen).is_none(),
            "a lookup from before the rename was registered"
        );
        let fresh = n.register(T, 4, Loc::at(0, b"q"), n.seq()).unwrap();
        assert_eq!(fresh.loc().name, b"q");
        assert_eq!(n.live(), 1);
    }

    #[test]
    fn a_walk_outlived_by_a_remove_registers_nothing() {
        let n = Nodes::default();
        let seen = n.seq();
        n.begin(T, 4);
        n.removed(T, 4);
        assert!(n.register(T, 4, Loc::at(0, b"p"), seen).is_none());
        assert_eq!(n.live(), 0);
    }

    #[test]
    fn only_a_move_of_the_walked_qid_or_a_long_gap_forces_a_retry() {
        let n = Nodes::default();
        let seen = n.seq();
        n.begin(T, 5);
        n.moved(T, 5, 0, b"z");
        let a = n.register(T, 4, Loc::at(0, b"p"), seen);
        assert!(a.is_some(), "another file's rename made the walk retry");
        drop(a);
        let seen = n.seq();
        for _ in 0..RECENT {
            n.begin(T, 5);
        }
        let a = n.register(T, 4, Loc::at(0, b"p"), seen);
        assert!(a.is_some(), "{RECENT} updates are remembered");
        drop(a);
        n.begin(T, 5);
        assert!(
            n.register(T, 4, Loc::at(0, b"p"), seen).is_none(),
            "updates older than the log reaches must count as moves"
        );
    }

    #[test]
    fn a_walk_during_a_move_registers_a_moving_node_the_move_settles() {
        let n = Nodes::default();
        n.begin(T, 4);
        let seen = n.seq();
        let r = n.register(T, 4, Loc::at(0, b"p"), seen).unwrap();
        assert!(r.loc().moving);
        n.moved(T, 4, 0, b"q");
        let l = r.loc();
        assert!(!l.moving && l.name == b"q");
    }
}
