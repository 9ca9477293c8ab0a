//! Deadlists: every segment's chain is followed from its head to its tail,
//! and every block a segment lists is checked against the rest of the image.
//!
//! A segment owned by record `R` lists blocks a tree killed while `R` was
//! its newest version (FORMAT.md §9), blocks some older snapshot still holds
//! and that are freed when that snapshot goes. So a listed block:
//! - lies in an arena and is allocated;
//! - is not an allocation-log or deadlist block (freeing it later would
//!   destroy a log or a list);
//! - is listed once in the whole image (a second listing frees it twice);
//! - is reached by no tree of `R`'s own history from `R` on: not `R`'s tree,
//!   nor the tree of any record on `R`'s `succ` chain (those are all later
//!   than the kill).
//!
//! The chains are followed before the file trees are walked, so that the
//! walk can note which listed blocks each tree reaches ([`Checker::dead_hit`]).
//! Memory follows the number of listed blocks.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::format::value::{DlistVal, TreeRec};
use crate::format::BlockType;
use crate::ids::BlockAddr;

use super::report::{Kind, Role};
use super::summary::Sum;
use super::table::{owner, Use};
use super::Checker;

/// One listed block: its address, the deadlist block listing it, and the
/// record owning the segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dead {
    pub addr: u64,
    pub at: BlockAddr,
    pub owner: u64,
}

/// Longest deadlist chain followed (a chain block is entered once per owner
/// anyway, so this is a second guard).
const MAX_CHAIN: u64 = 1 << 32;

impl Checker<'_> {
    /// Follow one deadlist segment from its head back to its tail, owned by
    /// record `owner_id`.
    pub(super) fn deadlist(&mut self, name: &str, d: &DlistVal, at: BlockAddr, owner_id: u64) {
        let owner_name = format!("deadlist {name}");
        let mut bp = d.head;
        let mut from = (at, Role::Node);
        let mut want: Option<u64> = None;
        for _ in 0..=MAX_CHAIN {
            let role = Role::Deadlist;
            if let Some(e) = self.table.get_mut(bp.addr.index()) {
                if e.used == Use::Log && !bp.is_none() {
                    let what = format!("chain leads to {}, an allocation log block", bp.addr);
                    self.problem(Kind::Structure, from.0, role, &owner_name, what);
                    return;
                }
            }
            if !bp.is_none() {
                self.gen_in_use(bp.gen.0, from.0, &format!("{owner_name}: pointer"));
            }
            let Some(blk) =
                self.reach(&bp, Use::Dlist, role, owner::DLIST, &owner_name, Some(from))
            else {
                return;
            };
            let c = match self.table.sums.get(&blk) {
                Some(Sum::Chain(c)) if c.hdr.kind == BlockType::Dlist => c.clone(),
                Some(Sum::Chain(_)) => {
                    let what = "an allocation log block where a deadlist block belongs";
                    self.problem(Kind::Structure, bp.addr, role, &owner_name, what.into());
                    return;
                }
                _ => {
                    let what = "not a deadlist block".to_string();
                    self.problem(Kind::Structure, bp.addr, role, &owner_name, what);
                    return;
                }
            };
            self.stats.deadlist_blocks += 1;
            if let Some(e) = &c.defect {
                self.problem(Kind::Structure, bp.addr, role, &owner_name, e.clone());
            }
            if want.is_some_and(|w| w != c.hdr.seq) {
                let what = format!("sequence {} where {want:?} belongs", c.hdr.seq);
                self.problem(Kind::Structure, bp.addr, role, &owner_name, what);
                return;
            }
            self.deadlisted.extend(c.addrs.iter().map(|&a| Dead {
                addr: a,
                at: bp.addr,
                owner: owner_id,
            }));
            if bp == d.tail {
                return;
            }
            if c.hdr.seq == 0 {
                let what = format!("chain ends here, before its tail {}", d.tail);
                self.problem(Kind::Structure, bp.addr, role, &owner_name, what);
                return;
            }
            want = Some(c.hdr.seq - 1);
            from = (bp.addr, role);
            bp = c.hdr.prev;
        }
    }

    /// Get ready to note which listed blocks the trees reach.
    pub(super) fn index_dead(&mut self) {
        self.dead_hits = self
            .deadlisted
            .iter()
            .filter(|d| d.addr.is_multiple_of(crate::format::BLKSZ_U64))
            .map(|d| (d.addr / crate::format::BLKSZ_U64, Vec::new()))
            .collect();
    }

    /// A tree (`owner`) reached block `blk`: note it if a deadlist lists it.
    pub(super) fn dead_hit(&mut self, blk: u64, owner: u32) {
        if let Some(v) = self.dead_hits.get_mut(&blk) {
            if v.last() != Some(&owner) {
                v.push(owner);
            }
        }
    }

    /// Check every listed block (see the module docs). Blocks listed stay
    /// allocated until their list is reclaimed, so they are not leaks even
    /// if no tree reaches them any more.
    pub(super) fn deadlisted_blocks(&mut self, snaps: &BTreeMap<u64, (TreeRec, BlockAddr)>) {
        let mut list = std::mem::take(&mut self.deadlisted);
        list.sort_by_key(|d| (d.addr, d.at));
        let hits = std::mem::take(&mut self.dead_hits);
        // Snapshot id of each tree owner.
        let tree_of: HashMap<u32, u64> = self.tree_owners.iter().map(|&(o, s)| (o, s)).collect();
        let mut later: HashMap<u64, HashSet<u64>> = HashMap::new();
        let mut prev: Option<u64> = None;
        for d in list {
            let addr = BlockAddr(d.addr);
            let dup = prev == Some(d.addr);
            prev = Some(d.addr);
            let problem = |c: &mut Self, kind: Kind, what: String| {
                c.problem(kind, d.at, Role::Deadlist, "deadlist", what);
            };
            if dup {
                problem(self, Kind::Value, format!("entry {addr} is listed twice"));
                continue;
            }
            let Some(arena) = self.geo.arena_of(addr) else {
                let what = format!("entry {addr} lies outside the arenas");
                problem(self, Kind::Pointer, what);
                continue;
            };
            if !d.addr.is_multiple_of(crate::format::BLKSZ_U64) {
                problem(self, Kind::Pointer, format!("entry {addr} is not aligned"));
                continue;
            }
            let blk = addr.index();
            let free = self.free.get(arena as usize).and_then(|f| f.as_ref());
            if free.is_some_and(|f| f.contains(blk)) {
                let what = format!("entry {addr} names a block that is free");
                problem(self, Kind::ReachableFree, what);
                continue;
            }
            match self.table.get_mut(blk).map(|e| e.used) {
                Some(Use::Log) => {
                    let what = format!("entry {addr} names an allocation log block");
                    problem(self, Kind::Value, what);
                    continue;
                }
                Some(Use::Dlist) => {
                    let what = format!("entry {addr} names a deadlist block");
                    problem(self, Kind::Value, what);
                    continue;
                }
                _ => {}
            }
            let trees = hits.get(&blk).map_or(&[][..], Vec::as_slice);
            let live = if trees.is_empty() {
                None
            } else {
                let later = later
                    .entry(d.owner)
                    .or_insert_with(|| history_from(snaps, d.owner));
                trees
                    .iter()
                    .filter_map(|o| tree_of.get(o))
                    .find(|s| later.contains(s))
                    .copied()
            };
            if let Some(s) = live {
                let what = format!(
                    "entry {addr} (owner {}) names a block that is live in snapshot {s}'s tree",
                    d.owner
                );
                problem(self, Kind::Value, what);
                continue;
            }
            if let Some(e) = self.table.get_mut(blk) {
                if e.owner == owner::NONE {
                    e.owner = owner::DLIST;
                    self.stats.deadlisted_blocks += 1;
                }
            }
        }
    }
}

/// Record `id` and every record on its `succ` chain (bounded: a cycle ends
/// the walk, and is reported with the records).
fn history_from(snaps: &BTreeMap<u64, (TreeRec, BlockAddr)>, id: u64) -> HashSet<u64> {
    let mut out = HashSet::new();
    let mut at = id;
    while out.insert(at) && out.len() <= snaps.len() {
        match snaps.get(&at) {
            Some((r, _)) if r.succ != TreeRec::NONE => at = r.succ,
            _ => break,
        }
    }
    out
}
