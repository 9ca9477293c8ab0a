//! The snapshot tree's logical contents, and what they lead to: labels must
//! name existing snapshots, every snapshot record's tree is walked, and every
//! deadlist chain is followed.
//!
//! The contents are computed from the records the walk collected, without
//! the tree code: for each key, the leaf value comes first and the buffered
//! messages are applied from the lowest pivot up to the root, each buffer in
//! arrival order (the tree's ordering invariant). A damaged subtree simply
//! contributes nothing.

use std::collections::BTreeMap;

use crate::format::key::{KeyView, KDLIST, KLABEL, KSNAP};
use crate::format::msg;
use crate::format::value::{DlistVal, LabelVal, TreeRec};
use crate::format::BlockType;
use crate::ids::BlockAddr;

use super::report::{Kind, Role};
use super::summary::Sum;
use super::table::{owner, Use};
use super::walk::{Found, TreeSpec};
use super::Checker;

/// A key's final value and the block that decided it.
struct Final {
    key: Vec<u8>,
    val: Vec<u8>,
    addr: BlockAddr,
}

const SNAP_TREE: &str = "snapshot tree";

impl Checker<'_> {
    /// Apply the collected records key by key.
    fn contents(&mut self, mut found: Vec<Found>) -> Vec<Final> {
        found.sort_by(|a, b| {
            (&a.rec.key, a.level, a.seq, a.idx).cmp(&(&b.rec.key, b.level, b.seq, b.idx))
        });
        let mut out = Vec::new();
        let mut i = 0;
        while i < found.len() {
            let key = found[i].rec.key.clone();
            let mut cur: Option<(Vec<u8>, BlockAddr)> = None;
            while let Some(f) = found.get(i).filter(|f| f.rec.key == key) {
                i += 1;
                let r = match f.rec.op {
                    None => Ok(Some(f.rec.val.to_vec())),
                    Some(op) => msg::apply(op, &f.rec.val, cur.take().map(|c| c.0)),
                };
                match r {
                    Ok(v) => cur = v.map(|v| (v, f.addr)),
                    Err(e) => {
                        let what = format!("{}: {e}", KeyView::parse(&key));
                        self.problem(Kind::Value, f.addr, Role::Node, SNAP_TREE, what);
                    }
                }
            }
            if let Some((val, addr)) = cur {
                out.push(Final {
                    key: key.to_vec(),
                    val,
                    addr,
                });
            }
        }
        out
    }

    /// Check labels and snapshot records, then walk every snapshot's tree
    /// and every deadlist.
    pub(super) fn snapshots(&mut self, found: Vec<Found>) {
        let finals = self.contents(found);
        let mut labels: Vec<(String, LabelVal, BlockAddr)> = Vec::new();
        let mut snaps: BTreeMap<u64, TreeRec> = BTreeMap::new();
        let mut dlists = Vec::new();
        for f in &finals {
            let kv = KeyView::parse(&f.key);
            let bad = |what: &str| format!("{kv}: value of {} bytes is not {what}", f.val.len());
            match (f.key.first().copied(), &kv) {
                (Some(KLABEL), KeyView::Label { name }) => match LabelVal::decode(&f.val) {
                    Ok(l) => labels.push((String::from_utf8_lossy(name).into(), l, f.addr)),
                    Err(_) => self.value(f.addr, bad("a label")),
                },
                (Some(KSNAP), KeyView::Snap { id }) => match TreeRec::decode(&f.val) {
                    Ok(r) if r.gen != *id => {
                        self.value(f.addr, format!("{kv}: record says snapshot {}", r.gen))
                    }
                    Ok(r) => {
                        snaps.insert(*id, r);
                    }
                    Err(_) => self.value(f.addr, bad("a snapshot record")),
                },
                (Some(KDLIST), KeyView::Dlist { .. }) => match DlistVal::decode(&f.val) {
                    Ok(d) => dlists.push((kv.to_string(), d, f.addr)),
                    Err(_) => self.value(f.addr, bad("a deadlist")),
                },
                _ => {}
            }
        }
        self.stats.labels = labels.len() as u64;
        self.stats.snapshots = snaps.len() as u64;
        for (name, l, addr) in &labels {
            if !snaps.contains_key(&l.id) {
                let what = format!(
                    "label {name:?} names snapshot {}, which does not exist",
                    l.id
                );
                self.value(*addr, what);
            }
        }
        for (k, (id, rec)) in snaps.iter().enumerate() {
            let names: Vec<String> = labels
                .iter()
                .filter(|l| l.1.id == *id)
                .map(|l| l.0.clone())
                .collect();
            let name = match names.as_slice() {
                [] => format!("snap {id}"),
                [one] => format!("tree {one:?} (snap {id})"),
                many => format!("tree {:?} (snap {id})", many.join(",")),
            };
            let spec = TreeSpec {
                owner: owner::FIRST_TREE.saturating_add(k as u32),
                name,
                snap: *id,
                labels: names,
                root: rec.root,
                height: rec.ht,
                snap_tree: false,
                log: rec.log,
                nodes: Some(rec.nodes),
            };
            let info = self.walk_tree(&spec, &mut Vec::new());
            self.trees.push(info);
        }
        for (name, d, addr) in dlists {
            self.deadlist(&name, &d, addr);
        }
    }

    fn value(&mut self, addr: BlockAddr, what: String) {
        self.problem(Kind::Value, addr, Role::Node, SNAP_TREE, what);
    }

    /// Blocks named by deadlist entries stay allocated until their list is
    /// reclaimed: each must be allocated, and is not a leak even if no tree
    /// reaches it any more.
    pub(super) fn deadlisted_blocks(&mut self) {
        let list = std::mem::take(&mut self.deadlisted);
        for (a, at) in list {
            let addr = BlockAddr(a);
            let Some(arena) = self.geo.arena_of(addr) else {
                let what = format!("entry {addr} lies outside the arenas");
                self.problem(Kind::Pointer, at, Role::Deadlist, "deadlist", what);
                continue;
            };
            let blk = addr.index();
            let free = self.free.get(arena as usize).and_then(|f| f.as_ref());
            if free.is_some_and(|f| f.contains(blk)) {
                let what = format!("entry {addr} names a block that is free");
                self.problem(Kind::ReachableFree, at, Role::Deadlist, "deadlist", what);
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

    /// Follow one deadlist segment from its head back to its tail.
    fn deadlist(&mut self, name: &str, d: &DlistVal, at: BlockAddr) {
        let owner_name = format!("deadlist {name}");
        let mut bp = d.head;
        let mut from = (at, Role::Node);
        let mut want: Option<u64> = None;
        // Each block is entered once per owner, so the walk ends; the bound
        // is a second guard.
        for _ in 0..=MAX_CHAIN {
            let role = Role::Deadlist;
            let Some(blk) =
                self.reach(&bp, Use::Dlist, role, owner::DLIST, &owner_name, Some(from))
            else {
                return;
            };
            let c = match self.table.sums.get(&blk) {
                Some(Sum::Chain(c)) if c.hdr.kind == BlockType::Dlist => c.clone(),
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
            self.deadlisted
                .extend(c.addrs.iter().map(|&a| (a, bp.addr)));
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
}

/// Longest deadlist chain followed.
const MAX_CHAIN: u64 = 1 << 32;
