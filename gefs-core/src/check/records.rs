//! Labels and snapshot records as a whole: label names, the links between
//! records (`pred`, `succ`, `base`), the counts records keep (`nlbl`,
//! `nref`) and their ids against the superblock's `nextgen`.
//!
//! The rules (FORMAT.md §9, `snap/mod.rs`): a label name passes
//! [`valid_label`]; `pred` and `succ` are none or name an existing record,
//! and are mirror images (`P = R.pred` ⇔ `P.succ = R`); `base` is 0 or names
//! an existing record; following `pred`, `succ` or `base` never comes back
//! to where it started; `nlbl` is the number of labels naming the record
//! and `nref` the number of records whose `base` it is. Every chain is
//! followed at most `records + 1` steps, so a cycle is found, not followed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::format::value::{LabelVal, TreeRec};
use crate::ids::BlockAddr;
use crate::store::valid_label;

use super::report::{Kind, Role};
use super::Checker;

/// A label as found: raw name, value, and the block holding it.
pub(super) type Label = (Vec<u8>, LabelVal, BlockAddr);

/// Whether `name` is a label name the store could have made.
pub(crate) fn label_name_ok(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(|s| valid_label(s).is_ok())
}

/// A label name for messages.
pub(super) fn show_name(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

const SNAP_TREE: &str = "snapshot tree";

/// Which link of a record.
#[derive(Clone, Copy)]
enum Link {
    Pred,
    Succ,
    Base,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Pred => "pred",
            Link::Succ => "succ",
            Link::Base => "base",
        }
    }

    /// The record this link names, if any.
    fn of(self, r: &TreeRec) -> Option<u64> {
        match self {
            Link::Pred if r.pred != TreeRec::NONE => Some(r.pred),
            Link::Succ if r.succ != TreeRec::NONE => Some(r.succ),
            Link::Base if r.base != 0 => Some(r.base),
            _ => None,
        }
    }
}

impl Checker<'_> {
    fn rec_problem(&mut self, addr: BlockAddr, what: String) {
        self.problem(Kind::Value, addr, Role::Node, SNAP_TREE, what);
    }

    /// Label names and the ids labels name.
    pub(super) fn check_labels(&mut self, labels: &[Label]) {
        for (name, lv, addr) in labels {
            if !label_name_ok(name) {
                let what = format!(
                    "label name {} ({} bytes) is not a valid label name (1 to 200 printable \
                     UTF-8 bytes, no '/', not . or ..)",
                    show_name(name),
                    name.len()
                );
                self.rec_problem(*addr, what);
            }
            self.gen_in_use(lv.id, *addr, &format!("label {}", show_name(name)));
        }
    }

    /// Links, counts and ids of every record.
    pub(super) fn check_records(
        &mut self,
        snaps: &BTreeMap<u64, (TreeRec, BlockAddr)>,
        labels: &[Label],
    ) {
        let mut bases: HashMap<u64, u64> = HashMap::new();
        for (r, _) in snaps.values() {
            *bases.entry(r.base).or_default() += 1;
        }
        let mut named: HashMap<u64, u64> = HashMap::new();
        for l in labels {
            *named.entry(l.1.id).or_default() += 1;
        }
        for (&id, (r, addr)) in snaps {
            self.gen_in_use(id, *addr, &format!("snapshot record {id}"));
            for link in [Link::Pred, Link::Succ, Link::Base] {
                let Some(to) = link.of(r) else { continue };
                let Some((t, _)) = snaps.get(&to) else {
                    let what = format!(
                        "snapshot {id}: {} {to} names no snapshot record",
                        link.name()
                    );
                    self.rec_problem(*addr, what);
                    continue;
                };
                let back = match link {
                    Link::Pred => Some((t.succ, "succ")),
                    Link::Succ => Some((t.pred, "pred")),
                    Link::Base => None,
                };
                if let Some((b, name)) = back.filter(|(b, _)| *b != id) {
                    let what = format!(
                        "snapshot {id}: {} is {to}, whose {name} is {} instead of {id}",
                        link.name(),
                        if b == TreeRec::NONE {
                            "none".to_string()
                        } else {
                            b.to_string()
                        }
                    );
                    self.rec_problem(*addr, what);
                }
            }
            let nlbl = named.get(&id).copied().unwrap_or(0);
            if u64::from(r.nlbl) != nlbl {
                let what = format!(
                    "snapshot {id}: nlbl is {}, but {nlbl} labels name it",
                    r.nlbl
                );
                self.rec_problem(*addr, what);
            }
            let nref = bases.get(&id).copied().unwrap_or(0);
            if u64::from(r.nref) != nref {
                let what = format!(
                    "snapshot {id}: nref is {}, but {nref} records have it as base",
                    r.nref
                );
                self.rec_problem(*addr, what);
            }
        }
        for link in [Link::Pred, Link::Succ, Link::Base] {
            self.cycles(snaps, link);
        }
    }

    /// Report each cycle of `link` once.
    fn cycles(&mut self, snaps: &BTreeMap<u64, (TreeRec, BlockAddr)>, link: Link) {
        let mut reported: BTreeSet<u64> = BTreeSet::new();
        for &start in snaps.keys() {
            let mut path: Vec<u64> = vec![start];
            let mut at = start;
            // At most one step per record: a longer walk has repeated one.
            for _ in 0..=snaps.len() {
                let Some(next) = snaps.get(&at).and_then(|(r, _)| link.of(r)) else {
                    break;
                };
                if let Some(i) = path.iter().position(|&p| p == next) {
                    let cyc: BTreeSet<u64> = path[i..].iter().copied().collect();
                    let first = cyc.first().copied().unwrap_or(next);
                    if reported.insert(first) {
                        let addr = snaps.get(&first).map_or(BlockAddr::NONE, |x| x.1);
                        let ids: Vec<String> = cyc.iter().map(u64::to_string).collect();
                        let what = format!(
                            "snapshot records {} form a {} cycle",
                            ids.join(", "),
                            link.name()
                        );
                        self.rec_problem(addr, what);
                    }
                    break;
                }
                path.push(next);
                at = next;
            }
        }
    }

    /// `g` is a generation the image uses: it must be below `nextgen`.
    pub(super) fn gen_in_use(&mut self, g: u64, addr: BlockAddr, what: &str) {
        self.max_gen = self.max_gen.max(g);
        if g >= self.nextgen {
            self.gen_over += 1;
            if self.gen_over <= GEN_REPORTS {
                let what = format!(
                    "{what}: generation {g} is not below the superblock's nextgen {}",
                    self.nextgen
                );
                self.rec_problem(addr, what);
            }
        }
    }

    /// After every walk: `nextgen` must exceed every generation in use.
    pub(super) fn check_nextgen(&mut self) {
        if self.gen_over == 0 {
            return;
        }
        let what = format!(
            "nextgen {} is at or below generation {} in use ({} uses{}); new blocks and \
             snapshots would reuse generations",
            self.nextgen,
            self.max_gen,
            self.gen_over,
            if self.gen_over > GEN_REPORTS {
                format!(", the first {GEN_REPORTS} reported")
            } else {
                String::new()
            }
        );
        self.problems.push(super::Problem {
            kind: Kind::Superblock,
            addr: None,
            blocks: 0,
            role: Role::Superblock,
            owner: String::new(),
            what,
            files: Vec::new(),
        });
    }
}

/// Generations above `nextgen` reported one by one; the rest are counted.
pub(super) const GEN_REPORTS: u64 = 16;
