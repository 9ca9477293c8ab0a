//! The snapshot layer: taking, forking and deleting snapshots, the
//! deadlists that make deletion exact (`deadlist.rs`), per-label settings
//! (`conf.rs`) and space accounting (`space.rs`). It changes the store only
//! through the store's writer API (`store/writer.rs`): batch upserts on a
//! tree, re-keyed deadlist segments, and the allocator's free path.
//! Labels themselves (reading them, mounting by label) are the store's
//! (`store/labels.rs`).
//!
//! A *mutable* label names a live tree, whose record is rewritten in place
//! at every commit with the tree's new root. A *snapshot* is an immutable
//! record sharing blocks with the tree it was taken from; labels name it.
//! Records of one history are linked: `pred` is the next older snapshot,
//! `succ` the next newer one or the live tree. A *fork* (`snap -m`) is a new
//! live tree whose `base` is the snapshot it started from: blocks born at or
//! before its base belong to the original history, and the fork never
//! frees them. `nlbl` counts the labels naming a record and `nref` the
//! records based on it; both are kept exactly, in the same batch as the
//! change that alters them (the reference lets them drift and never
//! reclaims some snapshots, §13.2 #12). A record with neither is deleted.
//!
//! Space is reclaimed exactly (the deadlist rules, `deadlist.rs` and `store/deadlist.rs`). Deleting
//! record `R` with predecessor `P` and successor `N`:
//! - `R`'s lists of blocks born at or before `P` move to `N` (P still
//!   holds those blocks, and now `N` is the one that killed them);
//! - `R`'s other lists, and `N`'s lists of blocks born after `P`, are freed:
//!   only `R` held them;
//! - with no successor (a tip: a live tree, or a snapshot whose live tree is
//!   gone) the tree itself is swept: every node and data block born after
//!   `max(P, base)` is freed.
//!
//! Taking a snapshot is constant work: two records, a label, and moving the
//! live tree's own deadlist segments to the new snapshot (re-keyed, never
//! rewritten). A tree is its root plus its message log (`store/msglog.rs`): the
//! live tree's log is written first (the messages accepted since the last
//! commit, at most), and the snapshot shares the chain as it shares the
//! nodes; its own buffered messages are never applied for it.

use std::collections::{BTreeMap, HashSet};

use crate::alloc::Tier;
use crate::error::{Error, Result};
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::{LabelVal, TreeRec, LABEL_MUTABLE};
use crate::format::Encode;
use crate::ids::BlockAddr;
use crate::store::{valid_label, ReadCtx, Store, TreeId, Writer};
use crate::tree::Root;

mod conf;
pub mod deadlist;
mod space;

pub use deadlist::Segment;
pub use space::{LabelSpace, Space};

/// The snapshot layer over one store: taking, forking and deleting
/// snapshots, reading deadlists, settings and space figures all go through
/// it. It borrows the store and holds nothing else, so make one wherever it
/// is needed:
/// `Snaps::new(&store).take("main", "monday", false)`.
#[derive(Debug, Clone, Copy)]
pub struct Snaps<'s> {
    s: &'s Store,
}

impl<'s> Snaps<'s> {
    /// The snapshot layer of `store`.
    pub fn new(store: &'s Store) -> Snaps<'s> {
        Snaps { s: store }
    }
}

/// Labels that name something other than a snapshot, or that may never be
/// created or deleted.
pub const RESERVED: [&str; 3] = ["dump", "empty", "adm"];

/// Pending changes to the snapshot tree, applied as one batch.
#[derive(Default)]
struct Batch {
    recs: BTreeMap<u64, TreeRec>,
    gone: HashSet<u64>,
    msgs: Vec<Msg>,
}

impl Batch {
    fn put(&mut self, r: TreeRec) {
        self.recs.insert(r.gen, r);
    }
}

impl Snaps<'_> {
    /// Record `id`, as changed in `b` or else as stored.
    fn record(&self, b: &Batch, id: u64) -> Result<TreeRec> {
        if let Some(r) = b.recs.get(&id) {
            return Ok(*r);
        }
        self.s
            .snap_record(id)?
            .ok_or_else(|| Error::NotFound(format!("snapshot record {id}")))
    }

    /// Take a snapshot of `old` named `new`: an immutable snapshot, or with
    /// `mutable` a fork (a new live tree starting from `old`'s contents).
    /// Takes effect at the next commit (call [`Store::sync`]). Returns the
    /// id of the record `new` names.
    pub fn take(&self, old: &str, new: &str, mutable: bool) -> Result<u64> {
        self.s.writable()?;
        valid_label(new)?;
        if RESERVED.contains(&new) {
            return Err(Error::Invalid(format!("{new} is a reserved name")));
        }
        let mut w = self.s.writer()?;
        if self.s.label_val(new)?.is_some() {
            return Err(Error::Exists(format!("label {new}")));
        }
        let lv = self.s.label_val(old)?.ok_or_else(|| self.s.no_label(old))?;
        // The snapshot takes the tree's root and log: make the log hold the
        // tree's buffered messages (those since the last commit at most).
        if let Some(t) = w.mounted(lv.id) {
            w.write_log(t)?;
        }
        let mut b = Batch::default();
        let src = self.record(&b, lv.id)?;
        let snap = if lv.is_mutable() {
            self.freeze(&mut w, &mut b, src)?
        } else {
            src
        };
        let id = if mutable {
            let f = TreeRec {
                nref: 0,
                nlbl: 1,
                ht: snap.ht,
                flag: 0,
                gen: w.take_gen(),
                pred: TreeRec::NONE,
                succ: TreeRec::NONE,
                base: snap.gen,
                root: snap.root,
                log: snap.log,
                nodes: snap.nodes,
            };
            b.put(TreeRec {
                nref: snap.nref + 1,
                ..snap
            });
            b.put(f);
            f.gen
        } else {
            b.put(TreeRec {
                nlbl: snap.nlbl + 1,
                ..snap
            });
            snap.gen
        };
        let flags = if mutable { LABEL_MUTABLE } else { 0 };
        b.msgs.push(Msg::insert(
            key::label(new.as_bytes()),
            LabelVal { id, flags }.encode(),
        ));
        apply_batch(&mut w, b)?;
        Ok(id)
    }

    /// Make an immutable snapshot of the live tree `live` (no label yet):
    /// the live tree's current root, linked between its old predecessor and
    /// the live tree, which takes it as its new predecessor.
    fn freeze(&self, w: &mut Writer<'_>, b: &mut Batch, live: TreeRec) -> Result<TreeRec> {
        let cur = w.current(&live);
        let id = w.take_gen();
        let s = TreeRec {
            nref: 0,
            nlbl: 0,
            ht: cur.ht,
            flag: 0,
            gen: id,
            pred: live.pred,
            succ: live.gen,
            base: live.base,
            root: cur.root,
            log: cur.log,
            nodes: cur.nodes,
        };
        if live.pred != TreeRec::NONE {
            let p = self.record(b, live.pred)?;
            b.put(TreeRec { succ: id, ..p });
        }
        if live.base != 0 {
            let o = self.record(b, live.base)?;
            b.put(TreeRec {
                nref: o.nref + 1,
                ..o
            });
        }
        b.put(s);
        b.put(TreeRec { pred: id, ..live });
        // What the live tree killed so far was killed relative to the old
        // predecessor, before the snapshot: it is the snapshot's now.
        for seg in self.segments(live.gen)? {
            b.msgs.extend(seg.rekey(id));
        }
        if let Some(t) = w.mounted(live.gen) {
            // Blocks born so far are the snapshot's too: new ones get a new
            // generation.
            b.msgs.extend(w.hand_over_dead(t, id)?);
        }
        Ok(s)
    }

    /// Delete a label; when no label and no fork holds its record any more,
    /// delete the snapshot and free exactly the blocks only it held. Takes
    /// effect at the next commit.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.s.writable()?;
        if RESERVED.contains(&name) {
            return Err(Error::Invalid(format!("{name} cannot be deleted")));
        }
        let mut w = self.s.writer()?;
        let lv = self
            .s
            .label_val(name)?
            .ok_or_else(|| self.s.no_label(name))?;
        if w.holders(lv.id) > 0 {
            return Err(Error::Invalid(format!("{name} is in use")));
        }
        let mut b = Batch::default();
        b.msgs.push(Msg::delete(key::label(name.as_bytes())));
        let r = self.record(&b, lv.id)?;
        let r = TreeRec {
            nlbl: r.nlbl.saturating_sub(1),
            ..r
        };
        b.put(r);
        // Deleting a fork releases its origin, which may go too: follow the
        // `base` chain, each record at most once (a damaged image may hold
        // a cycle).
        let mut next = Some(r.gen);
        while let Some(id) = next.take() {
            if b.gone.contains(&id) {
                return Err(self.s.snap_corrupt("snapshot record (base chain cycle)"));
            }
            let r = self.record(&b, id)?;
            if r.nlbl == 0 && r.nref == 0 && w.holders(id) == 0 {
                next = self.delete_record(&w, &mut b, r)?;
            }
        }
        apply_batch(&mut w, b)
    }

    /// Delete record `r`; returns the fork origin whose reference it held.
    fn delete_record(&self, w: &Writer<'_>, b: &mut Batch, r: TreeRec) -> Result<Option<u64>> {
        let pv = if r.pred == TreeRec::NONE { 0 } else { r.pred };
        let segs = self.segments(r.gen)?;
        if r.succ != TreeRec::NONE {
            let n = self.record(b, r.succ)?;
            for seg in &segs {
                if seg.birth <= pv {
                    b.msgs.extend(seg.rekey(n.gen));
                } else {
                    b.msgs.push(self.free_segment(seg)?);
                }
            }
            for seg in self.segments(n.gen)? {
                if seg.birth > pv {
                    b.msgs.push(self.free_segment(&seg)?);
                }
            }
            b.put(TreeRec { pred: r.pred, ..n });
        } else {
            self.sweep_tree(w, &r, pv.max(r.base))?;
            for seg in &segs {
                let msg = if seg.birth > pv {
                    self.free_segment(seg)?
                } else {
                    self.drop_segment(seg)?
                };
                b.msgs.push(msg);
            }
        }
        if r.pred != TreeRec::NONE {
            let p = self.record(b, r.pred)?;
            b.put(TreeRec { succ: r.succ, ..p });
        }
        b.recs.remove(&r.gen);
        b.gone.insert(r.gen);
        if r.base == 0 {
            return Ok(None);
        }
        let o = self.record(b, r.base)?;
        b.put(TreeRec {
            nref: o.nref.saturating_sub(1),
            ..o
        });
        Ok(Some(o.gen))
    }

    /// Free every node, data block and message-log block of a deleted tip
    /// born after `thr`: the tree's, and what its log (or, mounted, its
    /// write buffer) references.
    fn sweep_tree(&self, w: &Writer<'_>, r: &TreeRec, thr: u64) -> Result<()> {
        let cur = w.current(r);
        let root = Root {
            bp: cur.root,
            height: cur.ht,
        };
        let mut doomed: HashSet<BlockAddr> = HashSet::new();
        let (chain, data) = match w.mounted(r.gen) {
            Some(t) => w.pending_blocks(t)?,
            None => {
                let rl = self.s.read_log(&r.log)?;
                let data = crate::store::data_ptrs(rl.recs()?.into_iter());
                (rl.chain, data)
            }
        };
        for bp in chain.iter().chain(&data) {
            if bp.gen.0 > thr {
                doomed.insert(bp.addr);
            }
        }
        space::born_after(&ReadCtx::new(self.s), &root, thr, &mut doomed)?;
        let mut v: Vec<BlockAddr> = doomed.into_iter().collect();
        v.sort();
        for a in v {
            self.s.release_block(a)?;
        }
        Ok(())
    }
}

/// Apply a batch to the snapshot tree and to mounted trees' state.
fn apply_batch(w: &mut Writer<'_>, b: Batch) -> Result<()> {
    let mut msgs = b.msgs;
    for id in &b.gone {
        msgs.push(Msg::delete(key::snap(*id)));
        // An open tree nobody holds whose snapshot is gone: retire it;
        // its blocks were swept or handed to its successor above.
        if let Some(t) = w.mounted(*id) {
            w.retire(t)?;
        }
    }
    for (id, r) in b.recs {
        let r = match w.mounted(id) {
            Some(t) => w.set_rec(t, r)?,
            None => r,
        };
        msgs.push(Msg::insert(key::snap(id), r.encode()));
    }
    w.upsert(TreeId::SNAP, msgs, Tier::Reserve)
}

#[cfg(test)]
mod space_tests;
#[cfg(test)]
mod tests;
