//! Snapshots: labels, snapshot records, taking, forking and deleting.
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
//! Space is reclaimed exactly (the deadlist rules, `deadlist.rs`). Deleting
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
//! rewritten). A tree is its root plus its message log (`msglog.rs`): the
//! live tree's log is written first (the messages accepted since the last
//! commit, at most), and the snapshot shares the chain as it shares the
//! nodes; its own buffered messages are never applied for it.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::{Mutation, Store, TreeId};
use crate::alloc::Tier;
use crate::error::{Error, Result};
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::{LabelVal, TreeRec, LABEL_MUTABLE};
use crate::ids::BlockAddr;
use crate::tree::{self, Root};

/// Labels that name something other than a snapshot, or that may never be
/// created or deleted.
pub const RESERVED: [&str; 3] = ["dump", "empty", "adm"];

/// One label as [`Store::labels`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LabelInfo {
    /// The label.
    pub name: String,
    /// The snapshot record it names.
    pub id: u64,
    /// Whether it names a live, mutable tree.
    pub mutable: bool,
}

/// Check a label name.
pub fn valid_label(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 200
        || name == "."
        || name == ".."
        || name.bytes().any(|c| c < 0x20 || c == b'/' || c == 0x7f);
    if bad {
        return Err(Error::Invalid(format!(
            "label {name:?}: 1 to 200 printable bytes, no '/'"
        )));
    }
    Ok(())
}

/// Pending changes to the snapshot tree, applied as one batch.
#[derive(Default)]
struct Batch {
    recs: BTreeMap<u64, TreeRec>,
    gone: HashSet<u64>,
    msgs: Vec<Msg>,
}

impl Store {
    fn label_val(&self, name: &str) -> Result<Option<LabelVal>> {
        match self.lookup(TreeId::SNAP, &key::label(name.as_bytes()))? {
            None => Ok(None),
            Some(v) => LabelVal::decode(&v)
                .map(Some)
                .map_err(|_| self.snap_corrupt("label")),
        }
    }

    fn record(&self, b: &Batch, id: u64) -> Result<TreeRec> {
        if let Some(r) = b.recs.get(&id) {
            return Ok(*r);
        }
        let v = self
            .lookup(TreeId::SNAP, &key::snap(id))?
            .ok_or_else(|| Error::NotFound(format!("snapshot record {id}")))?;
        TreeRec::decode(&v).map_err(|_| self.snap_corrupt("snapshot record"))
    }

    /// The mounted tree whose record is `id`, if any.
    fn mounted(m: &Mutation, id: u64) -> Option<usize> {
        m.trees
            .iter()
            .skip(1)
            .position(|t| !t.closed && t.rec.gen == id)
            .map(|i| i + 1)
    }

    /// A record with its tree's current root, log and node count: the
    /// in-memory ones for a mounted tree (whose log the caller has written
    /// if it must be exact).
    fn current(m: &Mutation, rec: &TreeRec) -> TreeRec {
        match Self::mounted(m, rec.gen) {
            Some(i) => {
                let ts = &m.trees[i];
                TreeRec {
                    root: ts.root.bp,
                    ht: ts.root.height,
                    log: ts.log.head_ptr(),
                    nodes: ts.nodes,
                    ..*rec
                }
            }
            None => *rec,
        }
    }

    /// The error for a label that does not exist, naming the labels that do.
    pub fn no_label(&self, name: &str) -> Error {
        Error::NoLabel {
            name: name.to_string(),
            labels: self
                .labels()
                .map(|l| l.into_iter().map(|l| l.name).collect())
                .unwrap_or_default(),
        }
    }

    /// Every label and the record it names. A name that is not UTF-8 (only
    /// a damaged image has one) is shown lossily.
    ///
    /// Each batch resumes after the raw key the previous one ended on, and
    /// a scan returns strictly ascending keys, so the loop ends after at
    /// most one pass over the labels.
    pub fn labels(&self) -> Result<Vec<LabelInfo>> {
        let lo = [key::KLABEL];
        let hi = [key::KLABEL + 1];
        let mut out: Vec<LabelInfo> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let from = match &last {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Included(&lo[..]),
            };
            let batch = self.scan(TreeId::SNAP, from, Bound::Excluded(&hi[..]), 512)?;
            let Some((k, _)) = batch.last() else {
                return Ok(out);
            };
            last = Some(k.clone());
            for (k, v) in batch {
                let lv = LabelVal::decode(&v).map_err(|_| self.snap_corrupt("label"))?;
                out.push(LabelInfo {
                    name: String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned(),
                    id: lv.id,
                    mutable: lv.is_mutable(),
                });
            }
        }
    }

    /// Take a snapshot of `old` named `new`: an immutable snapshot, or with
    /// `mutable` a fork (a new live tree starting from `old`'s contents).
    /// Takes effect at the next commit (call [`Store::sync`]). Returns the
    /// id of the record `new` names.
    pub fn snapshot(&self, old: &str, new: &str, mutable: bool) -> Result<u64> {
        self.writable()?;
        valid_label(new)?;
        if RESERVED.contains(&new) {
            return Err(Error::Invalid(format!("{new} is a reserved name")));
        }
        let mut m = self.mutlk.lock();
        if self.label_val(new)?.is_some() {
            return Err(Error::Exists(format!("label {new}")));
        }
        let lv = self.label_val(old)?.ok_or_else(|| self.no_label(old))?;
        // The snapshot takes the tree's root and log: make the log hold the
        // tree's buffered messages (those since the last commit at most).
        if let Some(i) = Self::mounted(&m, lv.id) {
            self.write_log(&mut m, TreeId(i))?;
        }
        let mut b = Batch::default();
        let src = self.record(&b, lv.id)?;
        let snap = if lv.is_mutable() {
            self.freeze(&mut m, &mut b, src)?
        } else {
            src
        };
        let id = if mutable {
            let f = TreeRec {
                nref: 0,
                nlbl: 1,
                ht: snap.ht,
                flag: 0,
                gen: m.take_gen().0,
                pred: TreeRec::NONE,
                succ: TreeRec::NONE,
                base: snap.gen,
                root: snap.root,
                log: snap.log,
                nodes: snap.nodes,
            };
            self.rec_put(
                &mut b,
                TreeRec {
                    nref: snap.nref + 1,
                    ..snap
                },
            );
            self.rec_put(&mut b, f);
            f.gen
        } else {
            self.rec_put(
                &mut b,
                TreeRec {
                    nlbl: snap.nlbl + 1,
                    ..snap
                },
            );
            snap.gen
        };
        let flags = if mutable { LABEL_MUTABLE } else { 0 };
        b.msgs.push(Msg::insert(
            key::label(new.as_bytes()),
            LabelVal { id, flags }.encode(),
        ));
        self.apply_batch(&mut m, b)?;
        Ok(id)
    }

    /// Make an immutable snapshot of the live tree `live` (no label yet):
    /// the live tree's current root, linked between its old predecessor and
    /// the live tree, which takes it as its new predecessor.
    fn freeze(&self, m: &mut Mutation, b: &mut Batch, live: TreeRec) -> Result<TreeRec> {
        let cur = Self::current(m, &live);
        let id = m.take_gen().0;
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
            self.rec_put(b, TreeRec { succ: id, ..p });
        }
        if live.base != 0 {
            let o = self.record(b, live.base)?;
            self.rec_put(
                b,
                TreeRec {
                    nref: o.nref + 1,
                    ..o
                },
            );
        }
        self.rec_put(b, s);
        self.rec_put(b, TreeRec { pred: id, ..live });
        // What the live tree killed so far was killed relative to the old
        // predecessor, before the snapshot: it is the snapshot's now.
        for seg in self.segments(live.gen)? {
            b.msgs.push(Msg::delete(seg.key()));
            b.msgs.push(Msg::insert(
                key::dlist(id, seg.birth, seg.seq),
                seg.val.encode(),
            ));
        }
        if let Some(i) = Self::mounted(m, live.gen) {
            let snap_wgen = m.tree(TreeId::SNAP)?.wgen;
            let dead = std::mem::take(&mut m.trees[i].dead);
            for (birth, addrs) in dead {
                let val = self.write_segment(snap_wgen, &addrs)?;
                let seq = m.take_gen().0;
                b.msgs
                    .push(Msg::insert(key::dlist(id, birth, seq), val.encode()));
            }
            // Blocks born so far are the snapshot's too: new ones get a new
            // generation.
            m.trees[i].wgen = m.take_gen();
        }
        Ok(s)
    }

    fn rec_put(&self, b: &mut Batch, r: TreeRec) {
        b.recs.insert(r.gen, r);
    }

    /// Delete a label; when no label and no fork holds its record any more,
    /// delete the snapshot and free exactly the blocks only it held. Takes
    /// effect at the next commit.
    pub fn delete_label(&self, name: &str) -> Result<()> {
        self.writable()?;
        if RESERVED.contains(&name) {
            return Err(Error::Invalid(format!("{name} cannot be deleted")));
        }
        let mut m = self.mutlk.lock();
        let lv = self.label_val(name)?.ok_or_else(|| self.no_label(name))?;
        if Self::holders(&m, lv.id) > 0 {
            return Err(Error::Invalid(format!("{name} is in use")));
        }
        let mut b = Batch::default();
        b.msgs.push(Msg::delete(key::label(name.as_bytes())));
        let r = self.record(&b, lv.id)?;
        let r = TreeRec {
            nlbl: r.nlbl.saturating_sub(1),
            ..r
        };
        self.rec_put(&mut b, r);
        // Deleting a fork releases its origin, which may go too: follow the
        // `base` chain, each record at most once (a damaged image may hold
        // a cycle).
        let mut next = Some(r.gen);
        while let Some(id) = next.take() {
            if b.gone.contains(&id) {
                return Err(self.snap_corrupt("snapshot record (base chain cycle)"));
            }
            let r = self.record(&b, id)?;
            if r.nlbl == 0 && r.nref == 0 && Self::holders(&m, id) == 0 {
                next = self.delete_record(&m, &mut b, r)?;
            }
        }
        self.apply_batch(&mut m, b)
    }

    /// Delete record `r`; returns the fork origin whose reference it held.
    fn delete_record(&self, m: &Mutation, b: &mut Batch, r: TreeRec) -> Result<Option<u64>> {
        let pv = if r.pred == TreeRec::NONE { 0 } else { r.pred };
        let segs = self.segments(r.gen)?;
        if r.succ != TreeRec::NONE {
            let n = self.record(b, r.succ)?;
            for seg in &segs {
                if seg.birth <= pv {
                    b.msgs.push(Msg::delete(seg.key()));
                    b.msgs.push(Msg::insert(
                        key::dlist(n.gen, seg.birth, seg.seq),
                        seg.val.encode(),
                    ));
                } else {
                    b.msgs.push(self.free_segment(seg)?);
                }
            }
            for seg in self.segments(n.gen)? {
                if seg.birth > pv {
                    b.msgs.push(self.free_segment(&seg)?);
                }
            }
            self.rec_put(b, TreeRec { pred: r.pred, ..n });
        } else {
            self.sweep_tree(m, &r, pv.max(r.base))?;
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
            self.rec_put(b, TreeRec { succ: r.succ, ..p });
        }
        b.recs.remove(&r.gen);
        b.gone.insert(r.gen);
        if r.base == 0 {
            return Ok(None);
        }
        let o = self.record(b, r.base)?;
        self.rec_put(
            b,
            TreeRec {
                nref: o.nref.saturating_sub(1),
                ..o
            },
        );
        Ok(Some(o.gen))
    }

    /// Free every node, data block and message-log block of a deleted tip
    /// born after `thr`: the tree's, and what its log (or, mounted, its
    /// write buffer) references.
    fn sweep_tree(&self, m: &Mutation, r: &TreeRec, thr: u64) -> Result<()> {
        let cur = Self::current(m, r);
        let root = Root {
            bp: cur.root,
            height: cur.ht,
        };
        let mut doomed: HashSet<BlockAddr> = HashSet::new();
        let (chain, data) = match Self::mounted(m, r.gen) {
            Some(i) => {
                let ts = &m.trees[i];
                let recs = ts.wbuf.run_list().iter().flat_map(|r| r.iter());
                (ts.log.chain().to_vec(), super::msglog::data_ptrs(recs))
            }
            None => {
                let rl = self.read_log(&r.log)?;
                let data = super::msglog::data_ptrs(rl.recs()?.into_iter());
                (rl.chain, data)
            }
        };
        for bp in chain.iter().chain(&data) {
            if bp.gen.0 > thr {
                doomed.insert(bp.addr);
            }
        }
        let ctx = super::ReadCtx::new(self);
        super::space::born_after(&ctx, &root, thr, &mut doomed)?;
        let mut v: Vec<BlockAddr> = doomed.into_iter().collect();
        v.sort();
        for a in v {
            self.release_block(a)?;
        }
        Ok(())
    }

    /// Apply a batch to the snapshot tree and to mounted trees' state.
    fn apply_batch(&self, m: &mut Mutation, b: Batch) -> Result<()> {
        let mut msgs = b.msgs;
        for id in &b.gone {
            msgs.push(Msg::delete(key::snap(*id)));
            // An open tree nobody holds whose snapshot is gone: retire it;
            // its blocks were swept or handed to its successor above.
            if let Some(i) = Self::mounted(m, *id) {
                let ts = &mut m.trees[i];
                ts.closed = true;
                ts.dirty = false;
                ts.dead.clear();
                ts.wbuf = Default::default();
                ts.log = Default::default();
            }
        }
        for (id, mut r) in b.recs {
            if let Some(i) = Self::mounted(m, id) {
                let ts = &mut m.trees[i];
                r.root = ts.root.bp;
                r.ht = ts.root.height;
                r.log = ts.log.head_ptr();
                r.nodes = ts.nodes;
                ts.rec = r;
            }
            msgs.push(Msg::insert(key::snap(id), r.encode()));
        }
        self.upsert_locked(m, TreeId::SNAP, msgs, Tier::Reserve)
    }

    /// Set a configuration key: globally (in the snapshot tree) or for the
    /// tree a mutable label names.
    pub fn set_conf(&self, label: Option<&str>, name: &str, val: &[u8]) -> Result<()> {
        let t = self.conf_tree(label)?;
        let r = self.upsert(
            t,
            vec![Msg::insert(key::conf(name.as_bytes()), val.to_vec())],
            Tier::Reserve,
        );
        self.unmount(t);
        r
    }

    /// Remove a configuration key (removing one that is not set is not an
    /// error; the reference asserts, §13.2 #17).
    pub fn clear_conf(&self, label: Option<&str>, name: &str) -> Result<()> {
        let t = self.conf_tree(label)?;
        let r = self.upsert(
            t,
            vec![Msg::delete(key::conf(name.as_bytes()))],
            Tier::Reserve,
        );
        self.unmount(t);
        r
    }

    /// A configuration key, looked up in a label's tree (if given and set
    /// there), then globally.
    ///
    /// Reading a label's setting does not mount its tree (a mounted label cannot be deleted,
    /// and the daemon's retention pass reads every mutable label's `retain`).
    pub fn conf(&self, label: Option<&str>, name: &str) -> Result<Option<Vec<u8>>> {
        if let Some(l) = label {
            if let Some(v) = self.label_lookup(l, &key::conf(name.as_bytes()))? {
                return Ok(Some(v));
            }
        }
        self.lookup(TreeId::SNAP, &key::conf(name.as_bytes()))
    }

    /// Look a key up in the tree `label` names without mounting it: a mounted tree's current
    /// root and write buffer, else the root and message log its snapshot record holds (which
    /// only a mount can change).
    fn label_lookup(&self, label: &str, k: &[u8]) -> Result<Option<Vec<u8>>> {
        let mounted = {
            let m = self.mutlk.lock();
            m.trees
                .iter()
                .skip(1)
                .position(|t| t.label == label && !t.closed)
                .map(|i| TreeId(i + 1))
        };
        if let Some(t) = mounted {
            return self.lookup(t, k);
        }
        let _g = self.epochs.pin();
        let lv = self.label_val(label)?.ok_or_else(|| self.no_label(label))?;
        let rec = self.record(&Batch::default(), lv.id)?;
        let root = Root {
            bp: rec.root,
            height: rec.ht,
        };
        let rl = self.read_log(&rec.log)?;
        let recs = rl.recs()?;
        let run = crate::tree::pending::Run::from_recs(recs);
        let runs: crate::tree::pending::Runs = std::sync::Arc::from(vec![std::sync::Arc::new(run)]);
        tree::lookup(&super::ReadCtx::with_runs(self, runs), &root, k)
    }

    fn conf_tree(&self, label: Option<&str>) -> Result<TreeId> {
        let Some(l) = label else {
            return Ok(TreeId::SNAP);
        };
        match self.label_val(l)? {
            Some(lv) if lv.is_mutable() => self.mount(l),
            Some(_) => Err(Error::Invalid(format!(
                "{l} is an immutable snapshot; settings go on mutable labels"
            ))),
            None => Err(self.no_label(l)),
        }
    }
}
