//! The snapshot tree's logical contents, and what they lead to: labels must
//! name existing snapshots (`records.rs` checks names, links and counts),
//! every deadlist chain is followed (`dead.rs`), and every snapshot
//! record's tree is walked.
//!
//! The contents are computed from the records the walk collected, without
//! the tree code: for each key, the leaf value comes first and the buffered
//! messages are applied from the lowest pivot up to the root, each buffer in
//! arrival order (the tree's ordering invariant). A damaged subtree simply
//! contributes nothing.

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use crate::format::key::{KeyView, KDLIST, KLABEL, KSNAP};
use crate::format::msg;
use crate::format::value::{DlistVal, LabelVal, TreeRec};
use crate::format::Decode;
use crate::ids::BlockAddr;

use super::records::{show_name, Label};
use super::report::{Kind, Role};
use super::table::owner;
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
        while let Some(first) = found.get(i) {
            let key = first.rec.key.clone();
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
                        let what = format!("{}: {e}", crate::format::key::show(&key));
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

    /// Check labels and snapshot records, follow every deadlist, then walk
    /// every snapshot's tree and check what the deadlists list.
    pub(super) fn snapshots(&mut self, found: Vec<Found>) {
        let finals = self.contents(found);
        let mut labels: Vec<Label> = Vec::new();
        let mut snaps: BTreeMap<u64, (TreeRec, BlockAddr)> = BTreeMap::new();
        let mut dlists = Vec::new();
        for f in &finals {
            let kv = KeyView::decode(&f.key);
            let shown = crate::format::key::show(&f.key);
            let bad = |what: &str| format!("{shown}: value of {} bytes is not {what}", f.val.len());
            match (f.key.first().copied(), &kv) {
                (Some(KLABEL), Ok(KeyView::Label { name })) => match LabelVal::decode(&f.val) {
                    Ok(l) => labels.push((name.to_vec(), l, f.addr)),
                    Err(_) => self.value(f.addr, bad("a label")),
                },
                (Some(KSNAP), Ok(KeyView::Snap { id })) => match TreeRec::decode(&f.val) {
                    Ok(r) if r.gen != *id => {
                        self.value(f.addr, format!("{shown}: record says snapshot {}", r.gen))
                    }
                    Ok(r) => {
                        snaps.insert(*id, (r, f.addr));
                    }
                    Err(_) => self.value(f.addr, bad("a snapshot record")),
                },
                (Some(KDLIST), Ok(KeyView::Dlist { owner, birth, seq })) => {
                    match DlistVal::decode(&f.val) {
                        Ok(d) => {
                            dlists.push((shown.to_string(), d, f.addr, [*owner, *birth, *seq]))
                        }
                        Err(_) => self.value(f.addr, bad("a deadlist")),
                    }
                }
                _ => {}
            }
        }
        self.stats.labels = labels.len() as u64;
        self.stats.snapshots = snaps.len() as u64;
        self.check_labels(&labels);
        for (name, l, addr) in &labels {
            if !snaps.contains_key(&l.id) {
                let what = format!(
                    "label {} names snapshot {}, which does not exist",
                    show_name(name),
                    l.id
                );
                self.value(*addr, what);
            }
        }
        self.check_records(&snaps, &labels);
        for (name, d, addr, [owner, birth, seq]) in dlists {
            if !snaps.contains_key(&owner) {
                let what = format!("{name}: owned by snapshot {owner}, which does not exist");
                self.value(addr, what);
            }
            self.gen_in_use(birth.max(seq), addr, &name);
            self.deadlist(&name, &d, addr, owner);
        }
        self.index_dead();
        for (k, (id, (rec, _))) in snaps.iter().enumerate() {
            let names: Vec<String> = labels
                .iter()
                .filter(|l| l.1.id == *id)
                .map(|l| String::from_utf8_lossy(&l.0).into_owned())
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
                nodes: (rec.nodes != TreeRec::NODES_UNKNOWN).then_some(rec.nodes),
            };
            self.tree_owners.push((spec.owner, *id));
            let info = self.walk_tree(&spec, &mut Vec::new());
            self.trees.push(info);
        }
        self.deadlisted_blocks(&snaps);
    }

    fn value(&mut self, addr: BlockAddr, what: String) {
        self.problem(Kind::Value, addr, Role::Node, SNAP_TREE, what);
    }
}
