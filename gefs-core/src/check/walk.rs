//! The graph check: walk every tree from its root over the block table,
//! checking each pointer's hash against the hash the scan computed, and
//! each node's structure, level, fill and key range against its parent.
//!
//! Invariants: a block is entered at most once per owner (a second entry is
//! reported and not descended), and a child's level is exactly its parent's
//! minus one, so the walk terminates and its depth is bounded by
//! [`MAX_HEIGHT`]. A damaged block is reported once and its subtree
//! skipped; the walk goes on with every other subtree.

#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use crate::device::DeviceExt;
use crate::format::key::{KCLEAR, KCONF, KDAT, KDLIST, KENT, KLABEL, KSNAP, KUP};
use crate::format::superblock::MAX_HEIGHT;
use crate::format::{Bptr, BLKSZ_U64};
use crate::ids::BlockAddr;

use super::apply::{route, Pend};
use super::damage::Target;
use super::files::Files;
use super::report::{Kind, Problem, Role, TreeInfo};
use super::summary::{NodeSum, Rec, Sum};
use super::table::{Entry, Tag, Use};
use super::Checker;

/// A tree to walk.
#[derive(Debug, Clone)]
pub(super) struct TreeSpec {
    /// Owner id ([`super::table::owner`]).
    pub owner: u32,
    /// Name used in findings.
    pub name: String,
    /// Snapshot id (0 for the snapshot tree).
    pub snap: u64,
    /// Labels naming it.
    pub labels: Vec<String>,
    /// Root pointer.
    pub root: Bptr,
    /// Recorded height.
    pub height: u32,
    /// Whether this is the snapshot tree.
    pub snap_tree: bool,
    /// Newest block of its message log (null: none).
    pub log: Bptr,
    /// The node count its record gives (none for the snapshot tree).
    pub nodes: Option<u64>,
}

/// A snapshot-tree record with where it was found, for ordering messages.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// Level of the node holding it.
    pub level: u16,
    /// Visit number of that node.
    pub seq: u64,
    /// Position in the node.
    pub idx: usize,
    /// The node's address.
    pub addr: BlockAddr,
    /// The record.
    pub rec: Rec,
}

struct Visit {
    bp: Bptr,
    level: Option<u16>,
    lo: Box<[u8]>,
    hi: Option<Box<[u8]>>,
    fill: Option<u16>,
    parent: Option<BlockAddr>,
    /// Buffered messages of the ancestors that route into this subtree.
    above: Vec<Pend>,
}

fn fam_mask(fams: &[u8]) -> u16 {
    fams.iter().fold(0, |m, f| m | 1 << f)
}

fn hex(k: &[u8]) -> String {
    crate::format::key::show(k).to_string()
}

impl Checker<'_> {
    pub(super) fn problem(
        &mut self,
        kind: Kind,
        addr: BlockAddr,
        role: Role,
        owner: &str,
        what: String,
    ) {
        self.problems
            .push(Problem::block(kind, addr, role, owner, what));
    }

    /// The problems found since `before` lost a block that held `t`: note
    /// them, to be named once the tree's entries are known.
    pub(super) fn lost(&mut self, before: usize, t: &Target) {
        if self.fs {
            for i in before..self.problems.len() {
                self.damage.push((i, t.clone()));
            }
        }
    }

    /// Read one block the scan did not cover and enter it in the table.
    fn read_one(&mut self, blk: u64, role: Role, name: &str) {
        let addr = BlockAddr::from_index(blk);
        let mut buf = vec![0u8; crate::format::BLKSZ];
        self.stats.reads += 1;
        let mut e = Entry::default();
        match self.dev.read_bytes(&mut buf, addr.0) {
            Ok(()) => {
                self.stats.bytes_read += BLKSZ_U64;
                self.stats.blocks_checked += 1;
                e.hash = crate::format::block_hash(&buf);
                if let Some(s) = super::summary::summarize(&buf) {
                    e.tag = Tag::Summarized;
                    self.table.sums.insert(blk, s);
                }
            }
            Err(_) => e.tag = Tag::Unreadable,
        }
        self.table.insert(blk, e);
        let arena = self.geo.arena_of(addr).map(|i| i as usize);
        let free = arena
            .and_then(|i| self.free.get(i))
            .and_then(|f| f.as_ref());
        if free.is_some_and(|f| f.contains(blk)) {
            self.problem(
                Kind::ReachableFree,
                addr,
                role,
                name,
                "reachable block is free according to its arena's allocation log".into(),
            );
        }
    }

    /// Follow `bp` to a block used as `used` by `owner`: check the pointer,
    /// enter the block, and compare hashes. `None` when the block cannot be
    /// used (already reported).
    pub(super) fn reach(
        &mut self,
        bp: &Bptr,
        used: Use,
        role: Role,
        owner: u32,
        name: &str,
        from: Option<(BlockAddr, Role)>,
    ) -> Option<u64> {
        let addr = bp.addr;
        let inside = !bp.is_none()
            && addr.0.is_multiple_of(BLKSZ_U64)
            && self.geo.arena_of(addr).is_some()
            && addr
                .0
                .checked_add(BLKSZ_U64)
                .is_some_and(|e| e <= self.dev.size());
        if !inside {
            let (at, r) = from.unwrap_or((addr, role));
            let what = format!("pointer to {} block {addr} outside the arenas", role.name());
            self.problem(Kind::Pointer, at, r, name, what);
            return None;
        }
        let blk = addr.index();
        if self.table.get_mut(blk).is_none() {
            self.read_one(blk, role, name);
        }
        let e = self.table.get_mut(blk)?;
        let prev = (e.owner, e.used);
        let (tag, hash) = (e.tag, e.hash);
        if prev.0 != owner {
            if prev.0 != super::table::owner::NONE {
                e.shared = true;
            }
            e.owner = owner;
            if e.used == Use::None {
                e.used = used;
            }
        }
        if prev.0 == owner {
            self.problem(Kind::Shared, addr, role, name, "reached twice".into());
            return None;
        }
        if prev.1 != Use::None && prev.1 != used {
            let what = format!("reached as {:?} here, but as {:?} elsewhere", used, prev.1);
            self.problem(Kind::Shared, addr, role, name, what);
            return None;
        }
        if tag == Tag::Unreadable {
            self.problem(Kind::Io, addr, role, name, "unreadable".into());
            return None;
        }
        if hash != bp.hash {
            let what = format!(
                "hash mismatch: pointer says {:016x}, block hashes to {hash:016x}",
                bp.hash
            );
            self.problem(Kind::Hash, addr, role, name, what);
            return None;
        }
        if matches!(used, Use::Node | Use::Data) {
            self.ptr_gen(bp, from.map_or(addr, |f| f.0), name);
            if owner >= super::table::owner::FIRST_TREE {
                self.dead_hit(blk, owner);
            }
        }
        Some(blk)
    }

    /// A tree pointer's birth generation must be below `nextgen` (log
    /// pointers carry the commit number instead, FORMAT.md Note 2).
    fn ptr_gen(&mut self, bp: &Bptr, at: BlockAddr, name: &str) {
        let g = bp.gen.0;
        self.max_gen = self.max_gen.max(g);
        if g < self.nextgen {
            return;
        }
        self.gen_over += 1;
        if self.gen_over <= super::records::GEN_REPORTS {
            let what = format!(
                "pointer to {} has generation {g}, not below the superblock's nextgen {}",
                bp.addr, self.nextgen
            );
            self.problem(Kind::Pointer, at, Role::Node, name, what);
        }
    }

    /// Walk one tree; snapshot-tree records go to `found`.
    pub(super) fn walk_tree(&mut self, t: &TreeSpec, found: &mut Vec<Found>) -> TreeInfo {
        let mut info = TreeInfo {
            name: t.name.clone(),
            snap: t.snap,
            labels: t.labels.clone(),
            root: t.root.addr.0,
            height: t.height,
            pivots: 0,
            leaves: 0,
            data_blocks: 0,
            log_blocks: 0,
            log_msgs: 0,
            damaged: false,
        };
        let level = if t.height == 0 || t.height > MAX_HEIGHT {
            let what = format!("recorded tree height {} is out of range", t.height);
            self.problem(Kind::Level, t.root.addr, Role::Node, &t.name, what);
            None
        } else {
            Some((t.height - 1) as u16)
        };
        // The message log's messages are the newest of all: they ride
        // above the root.
        let above = self.msg_log(t, &mut info);
        let mut stack = vec![Visit {
            bp: t.root,
            level,
            lo: Box::default(),
            hi: None,
            fill: None,
            parent: None,
            above,
        }];
        let mut files =
            (self.fs && !t.snap_tree).then(|| Files::new(&t.name, self.nextqid, self.version));
        let mut seq = 0u64;
        while let Some(mut v) = stack.pop() {
            seq += 1;
            let above = std::mem::take(&mut v.above);
            let before = self.problems.len();
            match self.node(t, &v, &mut info) {
                Some(n) => {
                    let mut w = Walking {
                        info: &mut info,
                        stack: &mut stack,
                        found,
                        files: files.as_mut(),
                    };
                    self.descend(t, &v, &n, above, seq, &mut w);
                }
                None => {
                    info.damaged = true;
                    let lost = Target::Range {
                        lo: v.lo.clone(),
                        hi: v.hi.clone(),
                    };
                    self.lost(before, &lost);
                    if !above.is_empty() {
                        self.resolve(t, v.bp.addr, None, above, &mut info, files.as_mut());
                    }
                }
            }
        }
        let damage = std::mem::take(&mut self.damage);
        if let Some(f) = files {
            let prefix = match t.labels.as_slice() {
                [] => format!("snapshot {}", t.snap),
                l => format!("snapshot {}", l.join(", ")),
            };
            for (i, target) in damage {
                let names = f.describe(&prefix, &target);
                if let Some(p) = self.problems.get_mut(i) {
                    p.files.extend(names);
                }
            }
            let found = f.finish(t.root.addr, info.damaged);
            self.problems.extend(found);
        }
        let have = info.pivots + info.leaves;
        if let Some(n) = t.nodes.filter(|&n| n != have && !info.damaged) {
            let what = format!("the snapshot record counts {n} nodes, the tree has {have}");
            self.problem(Kind::Structure, t.root.addr, Role::Node, &t.name, what);
        }
        self.stats.pivots += info.pivots;
        self.stats.leaves += info.leaves;
        self.stats.data_blocks += info.data_blocks;
        info
    }

    /// Enter one node and check it against what its parent expects.
    fn node(&mut self, t: &TreeSpec, v: &Visit, info: &mut TreeInfo) -> Option<Arc<NodeSum>> {
        let from = v.parent.map(|p| (p, Role::Pivot));
        let blk = self.reach(&v.bp, Use::Node, Role::Node, t.owner, &t.name, from)?;
        let addr = v.bp.addr;
        let n = match self.table.sums.get(&blk) {
            Some(Sum::Node(n)) => n.clone(),
            Some(Sum::BadNode(e)) => {
                let what = format!("malformed tree node: {e}");
                self.problem(Kind::Structure, addr, Role::Node, &t.name, what);
                return None;
            }
            Some(Sum::Chain(c)) => {
                let what = format!("a {} block where a tree node belongs", c.hdr.kind.name());
                self.problem(Kind::Structure, addr, Role::Node, &t.name, what);
                return None;
            }
            None => {
                let what = "not a tree node (no node header)".to_string();
                self.problem(Kind::Structure, addr, Role::Node, &t.name, what);
                return None;
            }
        };
        let role = if n.leaf { Role::Leaf } else { Role::Pivot };
        match v.level {
            Some(l) if l != n.level && v.parent.is_none() => {
                let what = format!(
                    "recorded tree height {} but the root is at level {} (height {})",
                    t.height,
                    n.level,
                    u32::from(n.level) + 1
                );
                self.problem(Kind::Level, addr, role, &t.name, what);
                if u32::from(n.level) >= MAX_HEIGHT {
                    return None;
                }
            }
            Some(l) if l != n.level => {
                let what = format!(
                    "{} at level {} where level {l} belongs",
                    role.name(),
                    n.level
                );
                self.problem(Kind::Level, addr, role, &t.name, what);
                return None;
            }
            None if u32::from(n.level) >= MAX_HEIGHT => return None,
            _ => {}
        }
        if let Some(f) = v.fill {
            if f != n.fill {
                let what = format!("parent records fill {f}, the node has fill {}", n.fill);
                self.problem(Kind::Fill, addr, role, &t.name, what);
            }
        }
        self.node_contents(t, v, &n, role);
        if n.leaf {
            info.leaves += 1;
        } else {
            info.pivots += 1;
        }
        Some(n)
    }

    /// Key ranges, emptiness, families and value defects of a node.
    fn node_contents(&mut self, t: &TreeSpec, v: &Visit, n: &NodeSum, role: Role) {
        let addr = v.bp.addr;
        let inside = |k: &[u8]| *k >= *v.lo && v.hi.as_deref().is_none_or(|h| k < h);
        let mut bad = Vec::new();
        if let Some((a, b)) = &n.keys {
            if !inside(a) || !inside(b) {
                bad.push(format!("keys {}..{}", hex(a), hex(b)));
            }
        }
        if let Some((a, b)) = &n.msgs {
            if !inside(a) || !inside(b) {
                bad.push(format!("messages {}..{}", hex(a), hex(b)));
            }
        }
        if let (Some(first), Some(last)) = (n.children.get(1), n.children.last()) {
            if !inside(&first.sep) || !inside(&last.sep) {
                bad.push(format!(
                    "separators {}..{}",
                    hex(&first.sep),
                    hex(&last.sep)
                ));
            }
        }
        if !bad.is_empty() {
            let hi = v.hi.as_deref().map_or("end".into(), hex);
            let what = format!(
                "{} outside the range [{}, {hi}) its parent gives it",
                bad.join(" and "),
                hex(&v.lo)
            );
            self.problem(Kind::KeyRange, addr, role, &t.name, what);
        }
        if n.leaf && n.nval == 0 && v.parent.is_some() {
            let what = "empty leaf below the root".to_string();
            self.problem(Kind::Structure, addr, role, &t.name, what);
        }
        let allowed = if t.snap_tree {
            fam_mask(&[KLABEL, KSNAP, KDLIST, KCONF])
        } else {
            fam_mask(&[KDAT, KENT, KUP, KCONF, KCLEAR])
        };
        if n.families & !allowed != 0 {
            let what = format!(
                "holds keys of families {:#06x} that do not belong in {}",
                n.families & !allowed,
                if t.snap_tree {
                    "the snapshot tree"
                } else {
                    "a file tree"
                }
            );
            self.problem(Kind::Value, addr, role, &t.name, what);
        }
        for d in &n.defects {
            self.problem(Kind::Value, addr, role, &t.name, d.clone());
        }
    }

    fn descend(
        &mut self,
        t: &TreeSpec,
        v: &Visit,
        n: &Arc<NodeSum>,
        above: Vec<Pend>,
        seq: u64,
        w: &mut Walking<'_>,
    ) {
        let addr = v.bp.addr;
        if t.snap_tree {
            for (idx, rec) in n.recs.iter().enumerate() {
                w.found.push(Found {
                    level: n.level,
                    seq,
                    idx,
                    addr,
                    rec: rec.clone(),
                });
            }
        }
        if n.leaf {
            self.resolve(t, addr, Some(n), above, w.info, w.files.as_deref_mut());
            return;
        }
        let Some(below) = n.level.checked_sub(1) else {
            return;
        };
        let mut per = route(n, addr, above);
        let k = n.children.len();
        for i in (0..k).rev() {
            let above = per.pop().unwrap_or_default();
            let Some(c) = n.children.get(i) else { continue };
            let lo = if i == 0 { v.lo.clone() } else { c.sep.clone() };
            let hi = match n.children.get(i + 1) {
                Some(next) => Some(next.sep.clone()),
                None => v.hi.clone(),
            };
            w.stack.push(Visit {
                bp: c.bp,
                level: Some(below),
                lo,
                hi,
                fill: Some(c.fill),
                parent: Some(addr),
                above,
            });
        }
    }
}

/// The state of one tree's walk that [`Checker::descend`] adds to.
struct Walking<'a> {
    info: &'a mut TreeInfo,
    stack: &'a mut Vec<Visit>,
    found: &'a mut Vec<Found>,
    files: Option<&'a mut Files>,
}
