//! Message runs: each key's current value, and which data pointers a tree
//! owns, from the node summaries.
//!
//! A key's run is its leaf value, then the buffered messages of its
//! ancestors from the lowest pivot up to the root, each buffer in arrival
//! order. The walk carries, down each path, the messages of the families
//! it resolves (`KDAT`, `KENT`, `KUP`, `KCLEAR`) that route into the
//! subtree ([`route`]), and resolves them at the leaf ([`Checker::resolve`]),
//! so memory is bounded by the buffers on one path.
//!
//! Ownership follows `tree::owned` (the rule snapshot-deletion sweeps use):
//! a data pointer is owned — must be allocated, and is reached — when it is
//! a `KDAT` key's current value or a value that a later insert, delete or
//! clearb replaces (those free it when they reach the leaf). A value
//! removed by a later `Clobber` is not owned: whoever sent the clobber
//! released the block in the same batch (`Store::upsert_freeing`), so it
//! may well be free, or reused.

#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::format::key::{KeyView, KDAT};
use crate::format::msg::{self, Op};
use crate::format::Decode;
use crate::format::{Bptr, BLKSZ_U64};
use crate::ids::BlockAddr;

use super::damage::Target;
use super::files::{tabled, At, Files};
use super::report::{Kind, Role, TreeInfo};
use super::summary::{NodeSum, Rec};
use super::table::Use;
use super::walk::TreeSpec;
use super::Checker;

/// A buffered message carried down toward the leaf it applies to.
#[derive(Debug, Clone)]
pub(super) struct Pend {
    node: Arc<NodeSum>,
    idx: u32,
    at: At,
}

impl Pend {
    fn rec(&self) -> Option<&Rec> {
        self.node.recs.get(self.idx as usize)
    }

    fn key(&self) -> &[u8] {
        self.rec().map_or(&[][..], |r| &r.key)
    }
}

/// The buffered messages of `n` (at `addr`) of the carried families.
fn own(n: &Arc<NodeSum>, addr: BlockAddr, role: Role) -> impl Iterator<Item = Pend> + '_ {
    n.recs.iter().enumerate().filter_map(move |(i, r)| {
        let carried = r.op.is_some() && r.key.first().is_some_and(|&f| tabled(f));
        carried.then(|| Pend {
            node: n.clone(),
            idx: i as u32,
            at: At { addr, role },
        })
    })
}

/// The carried messages of a message-log block's summary `n` (at `addr`),
/// in order.
pub(super) fn log_pends(n: &Arc<NodeSum>, addr: BlockAddr) -> impl Iterator<Item = Pend> + '_ {
    own(n, addr, Role::Mlog)
}

/// Split the messages a pivot `n` (at `addr`) passes to its children: for
/// each child, in order, its own buffered messages that route there (older),
/// then those of `above` (its ancestors', already in application order).
pub(super) fn route(n: &Arc<NodeSum>, addr: BlockAddr, above: Vec<Pend>) -> Vec<Vec<Pend>> {
    let k = n.children.len();
    let mut per: Vec<Vec<Pend>> = vec![Vec::new(); k];
    let rest = n.children.get(1..).unwrap_or_default();
    let child = |key: &[u8]| rest.partition_point(|c| *c.sep <= *key);
    for p in own(n, addr, Role::Pivot).chain(above) {
        if let Some(v) = per.get_mut(child(p.key())) {
            v.push(p);
        }
    }
    per
}

impl Checker<'_> {
    /// Reach an owned data pointer found at `at`, the value of
    /// `KDAT(qid, off)`.
    fn own_data(&mut self, t: &TreeSpec, bp: Bptr, at: At, info: &mut TreeInfo, key: (u64, u64)) {
        let from = Some((at.addr, at.role));
        let before = self.problems.len();
        if self
            .reach(&bp, Use::Data, Role::Data, t.owner, &t.name, from)
            .is_some()
        {
            info.data_blocks += 1;
        } else {
            let (qid, off) = key;
            self.lost(before, &Target::Data { qid, off });
        }
    }

    /// Resolve the keys of one leaf (`leaf` none when the node at `addr`
    /// could not be used: its messages then apply to no value) with the
    /// messages carried to it: reach the data pointers the tree owns, and
    /// give every current file-system key to `files`.
    pub(super) fn resolve(
        &mut self,
        t: &TreeSpec,
        addr: BlockAddr,
        leaf: Option<&Arc<NodeSum>>,
        above: Vec<Pend>,
        info: &mut TreeInfo,
        mut files: Option<&mut Files>,
    ) {
        let at = At {
            addr,
            role: Role::Leaf,
        };
        let mut msgs: Vec<Pend> = match leaf {
            Some(n) => own(n, addr, Role::Leaf).chain(above).collect(),
            None => above,
        };
        // Stable: each key's messages stay in application order.
        msgs.sort_by(|a, b| a.key().cmp(b.key()));
        let split = msgs.partition_point(|p| p.key().first() == Some(&KDAT));
        let (dat, rest) = msgs.split_at(split);
        let mut touched = Vec::new();
        for group in dat.chunk_by(|a, b| a.key() == b.key()) {
            self.data_run(t, leaf, at, group, info, files.as_deref_mut(), &mut touched);
        }
        if let Some(n) = leaf {
            touched.sort_unstable();
            let untouched = |i: usize| touched.is_empty() || touched.binary_search(&i).is_err();
            for r in &n.dat_runs {
                for j in 0..r.n as usize {
                    let i = r.first as usize + j;
                    let Some(bp) = n.data.get(i) else { break };
                    if !bp.is_none() && untouched(i) {
                        let off = r.off.saturating_add(j as u64 * BLKSZ_U64);
                        self.own_data(t, *bp, at, info, (r.qid, off));
                    }
                }
            }
            if let Some(f) = files.as_deref_mut() {
                for r in &n.dat_runs {
                    let first = r.first as usize;
                    let hit = touched
                        .iter()
                        .any(|&i| i >= first && i < first + r.n as usize);
                    if !hit {
                        f.dat(r.qid, r.off, u64::from(r.n), at);
                        continue;
                    }
                    for j in 0..r.n {
                        if untouched(first + j as usize) {
                            let off = r.off.saturating_add(u64::from(j) * BLKSZ_U64);
                            f.dat(r.qid, off, 1, at);
                        }
                    }
                }
            }
        }
        if let Some(f) = files {
            self.fs_records(t, leaf.map(|n| &**n), at, rest, f);
        }
    }

    /// Apply one `KDAT` key's messages to its leaf value.
    #[allow(clippy::too_many_arguments)]
    fn data_run(
        &mut self,
        t: &TreeSpec,
        leaf: Option<&Arc<NodeSum>>,
        at: At,
        group: &[Pend],
        info: &mut TreeInfo,
        files: Option<&mut Files>,
        touched: &mut Vec<usize>,
    ) {
        let Some(first) = group.first() else { return };
        let Ok(KeyView::Dat { qid, off }) = KeyView::decode(first.key()) else {
            return;
        };
        let li = leaf.and_then(|n| n.dat_index(qid, off));
        let mut cur = None;
        let mut exists = None;
        if let (Some(i), Some(n)) = (li, leaf) {
            touched.push(i);
            exists = Some(at);
            cur = n.data.get(i).filter(|b| !b.is_none()).map(|&b| (b, at));
        }
        for p in group {
            let Some(op) = p.rec().and_then(|r| r.op) else {
                continue;
            };
            match op {
                Op::Insert => {
                    if let Some((b, a)) = cur.take() {
                        self.own_data(t, b, a, info, (qid, off));
                    }
                    let val = p.rec().map_or(&[][..], |r| &r.val);
                    cur = Bptr::from_slice(val)
                        .ok()
                        .filter(|b| !b.is_none())
                        .map(|b| (b, p.at));
                    exists = Some(p.at);
                }
                Op::Delete | Op::Clearb => {
                    if let Some((b, a)) = cur.take() {
                        self.own_data(t, b, a, info, (qid, off));
                    }
                    exists = None;
                }
                Op::Clobber => {
                    cur = None;
                    exists = None;
                }
                other => {
                    let what = format!(
                        "{}: {} message on a data key",
                        crate::format::key::show(p.key()),
                        other.name()
                    );
                    self.problem(Kind::Value, p.at.addr, p.at.role, &t.name, what);
                }
            }
        }
        if let Some((b, a)) = cur {
            self.own_data(t, b, a, info, (qid, off));
        }
        if let (Some(f), Some(a)) = (files, exists) {
            f.dat(qid, off, 1, a);
        }
    }

    /// Give the current value of every `KENT`, `KUP` and `KCLEAR` key of a
    /// leaf to `files`, applying `msgs` (sorted by key, each key's in
    /// application order).
    fn fs_records(
        &mut self,
        t: &TreeSpec,
        leaf: Option<&NodeSum>,
        at: At,
        msgs: &[Pend],
        files: &mut Files,
    ) {
        let vals = leaf
            .map(|n| n.recs.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|r| r.op.is_none() && r.key.first().is_some_and(|&f| f != KDAT && tabled(f)));
        if msgs.is_empty() {
            for r in vals {
                files.record(&r.key, &r.val, at);
            }
            return;
        }
        let mut cur: BTreeMap<&[u8], (Cow<'_, [u8]>, At)> = vals
            .map(|r| (&*r.key, (Cow::Borrowed(&*r.val), at)))
            .collect();
        let mut done: Vec<(Vec<u8>, Vec<u8>, At)> = Vec::new();
        for group in msgs.chunk_by(|a, b| a.key() == b.key()) {
            let Some(key) = group.first().map(Pend::key) else {
                continue;
            };
            let mut v = cur.remove(key).map(|(v, a)| (v.into_owned(), a));
            for p in group {
                let Some((Some(op), arg)) = p.rec().map(|r| (r.op, &r.val)) else {
                    continue;
                };
                let before = v.clone();
                match msg::apply(op, arg, v.take().map(|x| x.0)) {
                    Ok(nv) => v = nv.map(|nv| (nv, p.at)),
                    Err(e) => {
                        let what = format!("{}: {e}", crate::format::key::show(key));
                        self.problem(Kind::Value, p.at.addr, p.at.role, &t.name, what);
                        v = before;
                    }
                }
            }
            if let Some((val, a)) = v {
                done.push((key.to_vec(), val, a));
            }
        }
        for (k, (v, a)) in cur {
            files.record(k, &v, a);
        }
        for (k, v, a) in done {
            files.record(&k, &v, a);
        }
    }
}
