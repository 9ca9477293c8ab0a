//! The store as the snapshot layer (`crate::snap`) changes it, and no wider:
//! under the mutation lock, find the open tree a snapshot record is mounted
//! as, write its message log, hand the blocks it killed over to a snapshot
//! as deadlist segments, retire it, keep its record in step, and upsert one
//! batch on a tree. Reading deadlist blocks (`io.rs`) and releasing blocks
//! nobody references (`reclaim.rs`) are the rest of that API.
//!
//! Everything a [`Writer`] does happens under the one mutation lock it
//! holds, so a snapshot change is one batch that a commit sees whole or not
//! at all.

use parking_lot::MutexGuard;

use super::{Mutation, Store, TreeId};
use crate::alloc::Tier;
use crate::epoch::Guard;
use crate::error::Result;
use crate::format::key;
use crate::format::msg::Msg;
use crate::format::value::TreeRec;
use crate::format::Bptr;
use crate::format::Encode;

/// The store's writer, held under the mutation lock.
pub(crate) struct Writer<'s> {
    s: &'s Store,
    m: MutexGuard<'s, Mutation>,
}

impl Store {
    /// Take the mutation lock to change snapshots; refused when the store
    /// does not accept changes.
    pub(crate) fn writer(&self) -> Result<Writer<'_>> {
        self.writable()?;
        Ok(Writer {
            s: self,
            m: self.mutlk.lock(),
        })
    }

    /// The open tree `label` names, if it is mounted.
    pub(crate) fn mounted_label(&self, label: &str) -> Option<TreeId> {
        let m = self.mutlk.lock();
        m.trees
            .iter()
            .skip(1)
            .position(|t| t.label == label && !t.closed)
            .map(|i| TreeId(i + 1))
    }

    /// Pin the current epoch: no block freed from now on is reused until
    /// the guard is gone.
    pub(crate) fn pin_epoch(&self) -> Guard<'_, super::reclaim::Deferred> {
        self.epochs.pin()
    }
}

impl<'s> Writer<'s> {
    /// A new generation number.
    pub(crate) fn take_gen(&mut self) -> u64 {
        self.m.take_gen().0
    }

    /// The open tree whose record is `id`, if any.
    pub(crate) fn mounted(&self, id: u64) -> Option<TreeId> {
        self.m
            .trees
            .iter()
            .skip(1)
            .position(|t| !t.closed && t.rec.gen == id)
            .map(|i| TreeId(i + 1))
    }

    /// Holders of the tree record `id` is open as (0 if it is not).
    pub(crate) fn holders(&self, id: u64) -> u32 {
        Store::holders(&self.m, id)
    }

    /// `rec` with its tree's current root, log and node count: the
    /// in-memory ones for a mounted tree (whose log the caller has written
    /// if it must be exact).
    pub(crate) fn current(&self, rec: &TreeRec) -> TreeRec {
        match self.mounted(rec.gen) {
            Some(t) => {
                let ts = &self.m.trees[t.0];
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

    /// Write tree `t`'s message log (its buffered messages).
    pub(crate) fn write_log(&mut self, t: TreeId) -> Result<()> {
        self.s.write_log(&mut self.m, t)
    }

    /// Write the blocks tree `t` killed since the last commit as deadlist
    /// segments owned by record `owner`, and start a new working
    /// generation for `t` (blocks born so far are `owner`'s too). Returns
    /// the messages that record the segments.
    pub(crate) fn hand_over_dead(&mut self, t: TreeId, owner: u64) -> Result<Vec<Msg>> {
        let snap_wgen = self.m.tree(TreeId::SNAP)?.wgen;
        let dead = std::mem::take(&mut self.m.tree_mut(t)?.dead);
        let mut msgs = Vec::with_capacity(dead.len());
        for (birth, addrs) in dead {
            let val = self.s.write_segment(snap_wgen, &addrs)?;
            let seq = self.m.take_gen().0;
            msgs.push(Msg::insert(key::dlist(owner, birth, seq), val.encode()));
        }
        let wgen = self.m.take_gen();
        self.m.tree_mut(t)?.wgen = wgen;
        Ok(msgs)
    }

    /// Mounted tree `t`'s message-log chain and the data blocks its write
    /// buffer's messages point to.
    pub(crate) fn pending_blocks(&self, t: TreeId) -> Result<(Vec<Bptr>, Vec<Bptr>)> {
        let ts = self.m.tree(t)?;
        let recs = ts.wbuf.run_list().iter().flat_map(|r| r.iter());
        Ok((ts.log.chain().to_vec(), super::msglog::data_ptrs(recs)))
    }

    /// Retire open tree `t`, whose snapshot is gone: nothing of it is
    /// committed again.
    pub(crate) fn retire(&mut self, t: TreeId) -> Result<()> {
        let ts = self.m.tree_mut(t)?;
        ts.closed = true;
        ts.dirty = false;
        ts.dead.clear();
        ts.wbuf = Default::default();
        ts.log = Default::default();
        Ok(())
    }

    /// Make `rec` the record of open tree `t`, with `t`'s current root, log
    /// and node count; returns it so completed.
    pub(crate) fn set_rec(&mut self, t: TreeId, rec: TreeRec) -> Result<TreeRec> {
        let ts = self.m.tree_mut(t)?;
        let r = TreeRec {
            root: ts.root.bp,
            ht: ts.root.height,
            log: ts.log.head_ptr(),
            nodes: ts.nodes,
            ..rec
        };
        ts.rec = r;
        Ok(r)
    }

    /// Apply a batch of messages to tree `t` atomically ([`Store::upsert`]
    /// under the lock already held).
    pub(crate) fn upsert(&mut self, t: TreeId, msgs: Vec<Msg>, tier: Tier) -> Result<()> {
        self.s.upsert_locked(&mut self.m, t, msgs, tier)
    }
}
