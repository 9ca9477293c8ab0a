//! Space as an administrator sees it: how much the image holds, how much of
//! it only snapshots hold, and per snapshot what deleting it would free now
//! (its *unique* space) — what `df` and `snap -l` show, and what a "file
//! system full" explains.
//!
//! Everything comes from the deadlists, not from walking trees. A block in a
//! deadlist segment is one a live tree stopped using while an older snapshot
//! still held it, so the segments (the addresses they list, plus their own
//! chain blocks) are the space snapshots hold. Deleting a snapshot `R` with
//! predecessor `P` and successor `N` frees exactly `R`'s segments of blocks
//! born after `P` and `N`'s segments of blocks born after `P` (`snap/mod.rs`),
//! so those segments' sizes are `R`'s unique space. A segment's size is read
//! from its chain's block headers (one block per 2043 addresses), never from
//! the addresses themselves.
//!
//! The one exception is a *tip* snapshot: one whose live tree was deleted,
//! so that it has no successor. Deleting it sweeps its tree (every block
//! born after `max(P, base)`), which no deadlist describes, so its tree is
//! walked; only images that have such snapshots pay for that walk.
//!
//! What is *not* counted: blocks a live tree killed since the last commit
//! (they join the deadlists at the commit), and, for a history whose live
//! tree is gone, the blocks its tip shares with older snapshots. A fork's
//! live tree may still use blocks its origin's deadlists hold, so with forks
//! "held only by snapshots" is an upper bound. A label that another label or
//! a fork also holds frees nothing when deleted, and says so (0).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use serde::Serialize;

use crate::error::Result;
use crate::format::key::{self, KeyView};
use crate::format::log::LogHeader;
use crate::format::value::{DlistVal, TreeRec};
use crate::format::Decode;
use crate::format::{BlockType, BLKSZ_U64};
use crate::store::{ReadCtx, TreeId};
use crate::tree::{self, Root};
use crate::units::human;
use crate::CorruptKind;

use super::{Snaps, RESERVED};

/// One label with the space deleting it would free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelSpace {
    /// The label.
    pub name: String,
    /// The snapshot record it names.
    pub id: u64,
    /// Whether it names a live, mutable tree.
    pub mutable: bool,
    /// Bytes deleting this label would free now (its snapshot's unique
    /// space); `None` for a live tree or a label that cannot be deleted.
    pub unique_bytes: Option<u64>,
}

/// The image's space, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Bytes in the arenas.
    pub size: u64,
    /// Bytes in use (everything not free, including blocks freed but not
    /// yet reusable).
    pub used: u64,
    /// Bytes free now.
    pub free: u64,
    /// Bytes of the free space ordinary writes may not use (kept for
    /// removes, snapshot deletion and commits).
    pub reserve: u64,
    /// Bytes ordinary writes may still use (`free` less the reserve).
    pub available: u64,
    /// Bytes held only by snapshots: what no live tree uses any more.
    pub snapshots: u64,
}

/// A segment's key and size in blocks (addresses listed + chain blocks).
struct SegSize {
    owner: u64,
    birth: u64,
    blocks: u64,
}

impl Snaps<'_> {
    /// The size of a segment in blocks: the addresses its chain lists plus
    /// the chain's own blocks, from the chain's headers.
    fn segment_blocks(&self, val: &DlistVal) -> Result<u64> {
        let mut n = 0u64;
        let mut at = val.head;
        let limit = self.s.geometry().dev_size / BLKSZ_U64;
        let mut hops = 0u64;
        while !at.is_none() {
            hops += 1;
            if hops > limit {
                return Err(crate::Error::corrupt(
                    at.addr,
                    CorruptKind::Chain,
                    "deadlist chain does not end",
                ));
            }
            let b = self.s.read_block(&at, false)?;
            let h = LogHeader::decode(b.bytes()).map_err(|e| e.at(at.addr))?;
            if h.kind != BlockType::Dlist {
                return Err(crate::Error::corrupt(
                    at.addr,
                    CorruptKind::BlockType,
                    "not a deadlist block",
                ));
            }
            n += 1 + (h.nbytes / 8) as u64;
            at = h.prev;
        }
        Ok(n)
    }

    /// Every deadlist segment with its size.
    fn segment_sizes(&self) -> Result<Vec<SegSize>> {
        let lo = [key::KDLIST];
        let hi = [key::KDLIST + 1];
        let mut out = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let from = match &last {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Included(&lo[..]),
            };
            let batch = self
                .s
                .scan(TreeId::SNAP, from, Bound::Excluded(&hi[..]), 512)?;
            if batch.is_empty() {
                return Ok(out);
            }
            for (k, v) in &batch {
                let (Ok(KeyView::Dlist { owner, birth, .. }), Ok(val)) =
                    (KeyView::decode(k), DlistVal::decode(v))
                else {
                    return Err(self.s.snap_corrupt("deadlist segment"));
                };
                out.push(SegSize {
                    owner,
                    birth,
                    blocks: self.segment_blocks(&val)?,
                });
            }
            last = batch.last().map(|(k, _)| k.clone());
        }
    }

    /// Blocks a tip's deletion sweeps: its tree's nodes and owned data
    /// blocks born after `thr`, and its message log's blocks and the data
    /// blocks its records point to (as `sweep_tree` frees them).
    fn tip_blocks(&self, r: &TreeRec, thr: u64) -> Result<u64> {
        // Pinned before the root is read: the tree's blocks cannot be
        // reused under the walk even if the snapshot is deleted meanwhile.
        let _g = self.s.pin_epoch();
        let Some(r) = self.s.snap_record(r.gen)? else {
            return Ok(0);
        };
        let root = Root {
            bp: r.root,
            height: r.ht,
        };
        let ctx = ReadCtx::new(self.s);
        let mut seen = HashSet::new();
        let rl = self.s.read_log(&r.log)?;
        let data = crate::store::data_ptrs(rl.recs()?.into_iter());
        for bp in rl.chain.iter().chain(&data) {
            if bp.gen.0 > thr {
                seen.insert(bp.addr);
            }
        }
        born_after(&ctx, &root, thr, &mut seen)?;
        Ok(seen.len() as u64)
    }

    /// Blocks deleting record `r` would free, given every segment's size
    /// by owner.
    fn unique_blocks(&self, r: &TreeRec, segs: &HashMap<u64, Vec<(u64, u64)>>) -> Result<u64> {
        let pv = if r.pred == TreeRec::NONE { 0 } else { r.pred };
        let born_after = |owner: u64| -> u64 {
            segs.get(&owner).map_or(0, |v| {
                v.iter()
                    .filter(|(birth, _)| *birth > pv)
                    .map(|(_, n)| n)
                    .sum()
            })
        };
        if r.succ != TreeRec::NONE {
            return Ok(born_after(r.gen) + born_after(r.succ));
        }
        // A tip: its tree is swept, its segments of blocks born after P are
        // freed, and the chains of its other segments are dropped.
        let chains: u64 = match segs.get(&r.gen) {
            Some(v) => {
                let mut n = 0;
                for (birth, _) in v.iter().filter(|(b, _)| *b <= pv) {
                    n += self.segment_chain_len(r.gen, *birth)?;
                }
                n
            }
            None => 0,
        };
        Ok(self.tip_blocks(r, pv.max(r.base))? + born_after(r.gen) + chains)
    }

    /// Chain blocks of `owner`'s segments of blocks born at `birth`.
    fn segment_chain_len(&self, owner: u64, birth: u64) -> Result<u64> {
        let mut n = 0;
        for seg in self.segments(owner)?.iter().filter(|s| s.birth == birth) {
            n += self.read_segment(seg)?.1.len() as u64;
        }
        Ok(n)
    }

    /// Every segment's size, by owner: `(birth, blocks)`.
    fn sizes_by_owner(&self) -> Result<HashMap<u64, Vec<(u64, u64)>>> {
        let mut by: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for s in self.segment_sizes()? {
            by.entry(s.owner).or_default().push((s.birth, s.blocks));
        }
        Ok(by)
    }

    /// Every label, with what deleting it would free now.
    pub fn labels_space(&self) -> Result<Vec<LabelSpace>> {
        let segs = self.sizes_by_owner()?;
        let mut out = Vec::new();
        for l in self.s.labels()? {
            let unique = if l.mutable || RESERVED.contains(&l.name.as_str()) {
                None
            } else {
                match self.s.snap_record(l.id)? {
                    // Another label or a fork keeps the snapshot.
                    Some(r) if r.nlbl > 1 || r.nref > 0 => Some(0),
                    Some(r) => Some(self.unique_blocks(&r, &segs)? * BLKSZ_U64),
                    None => return Err(self.s.snap_corrupt("label naming no record")),
                }
            };
            out.push(LabelSpace {
                name: l.name,
                id: l.id,
                mutable: l.mutable,
                unique_bytes: unique,
            });
        }
        Ok(out)
    }

    /// The image's space: size, used, free, reserve, and what only
    /// snapshots hold.
    pub fn space(&self) -> Result<Space> {
        let mut s = Space {
            size: 0,
            used: 0,
            free: 0,
            reserve: 0,
            available: 0,
            snapshots: 0,
        };
        for a in self.s.allocator().stats() {
            s.size += a.blocks * BLKSZ_U64;
            s.used += a.blocks.saturating_sub(a.free) * BLKSZ_U64;
            s.free += a.free * BLKSZ_U64;
            s.reserve += a.reserve.min(a.free) * BLKSZ_U64;
            s.available += a.free.saturating_sub(a.reserve) * BLKSZ_U64;
        }
        let segs = self.sizes_by_owner()?;
        let mut held: u64 = segs.values().flatten().map(|(_, n)| n).sum();
        for l in self.s.labels()? {
            if l.mutable || RESERVED.contains(&l.name.as_str()) {
                continue;
            }
            if let Some(r) = self.s.snap_record(l.id)? {
                if r.succ == TreeRec::NONE {
                    let pv = if r.pred == TreeRec::NONE { 0 } else { r.pred };
                    held += self.tip_blocks(&r, pv.max(r.base))?;
                }
            }
        }
        s.snapshots = held * BLKSZ_U64;
        Ok(s)
    }

    /// What to tell an administrator when the image is full: the space,
    /// what snapshots hold (the largest first), and how to free it. Never
    /// fails: if the figures cannot be read, says so.
    pub fn explain_full(&self) -> String {
        let (space, labels) = match (self.space(), self.labels_space()) {
            (Ok(s), Ok(l)) => (s, l),
            (Err(e), _) | (_, Err(e)) => {
                return format!("file system full (the space figures cannot be read: {e})")
            }
        };
        let mut text = format!(
            "file system full: {} available of {} ({} free, {} of it reserved)",
            human(space.available),
            human(space.size),
            human(space.free),
            human(space.reserve)
        );
        let mut snaps: Vec<(u64, &str)> = labels
            .iter()
            .filter_map(|l| l.unique_bytes.filter(|&b| b > 0).map(|b| (b, &*l.name)))
            .collect();
        snaps.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        if space.snapshots == 0 {
            text.push_str(
                "; no snapshot holds space: remove files, or grow the image \
                 (gefs-mkfs --grow)",
            );
            return text;
        }
        text.push_str(&format!("; snapshots hold {}", human(space.snapshots)));
        if !snaps.is_empty() {
            let top: Vec<String> = snaps
                .iter()
                .take(5)
                .map(|(b, n)| format!("{n} {}", human(*b)))
                .collect();
            let more = if snaps.len() > 5 { ", ..." } else { "" };
            text.push_str(&format!(" (deleting one frees: {}{more})", top.join(", ")));
        }
        text.push_str(
            ": delete snapshots with `snap -d LABEL` (gefsd console, or gefs-snap IMAGE -d \
             LABEL offline), or keep fewer with a shorter `retain` schedule",
        );
        text
    }
}

/// Add to `out` the tree's nodes and the data blocks it owns that were born
/// after generation `thr`: what deleting a tip frees of its tree.
pub(super) fn born_after(
    ctx: &ReadCtx<'_>,
    root: &Root,
    thr: u64,
    out: &mut HashSet<crate::ids::BlockAddr>,
) -> Result<()> {
    tree::walk(ctx, root, |bp, _| {
        if bp.gen.0 > thr {
            out.insert(bp.addr);
        }
        Ok(())
    })?;
    tree::owned_data_ptrs(ctx, root, |bp| {
        if bp.gen.0 > thr {
            out.insert(bp.addr);
        }
        Ok(())
    })
}
