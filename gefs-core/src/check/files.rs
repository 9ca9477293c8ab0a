//! The file-system checks of one file tree, over compact tables filled as
//! the walk resolves each leaf's keys (`apply.rs`), in key order.
//!
//! Only what the checks need is kept, so memory follows the number of
//! files, not data: per entry its parent, name, kind and length; the
//! up-links; the clear notes; and each file's `KDAT` keys as runs of
//! consecutive offsets (one run per leaf at most, for a file written in
//! order). The checks (module [`super`] lists them as "file-system
//! checks"):
//! - every entry is of one kind (at most one of `DMDIR`, `DMSYMLINK`,
//!   `DMDEVICE`, `DMNAMEDPIPE`, `DMSOCKET`); a symbolic link's length is a
//!   target's (1 to [`MAX_TARGET`](crate::fs::MAX_TARGET) bytes), a pipe's or
//!   socket's 0; a device node appears only in an image of format version 4
//!   or later and its length field is a valid device encoding
//!   ([`Device`](crate::format::value::Device)); it has no data keys;
//! - every entry's name is valid (`fs::names`), and the root entry
//!   `KENT(ROOT_PQID, "")` exists and is a directory (no other entry has
//!   the root marker as parent); no length is beyond `fs::MAX_LEN`;
//! - qid paths are unique within the tree and below the superblock's
//!   `nextqid`;
//! - every directory has a `KUP` naming its own entry, every `KUP` names a
//!   directory entry with its qid, every entry's parent is a directory, and
//!   every directory's parent chain reaches the root (no cycles);
//! - `KDAT` keys are block-aligned, and lie below a regular file's rounded
//!   length unless a `KCLEAR(qid)` note covers them (offset ≥ the note's);
//!   a note never lies below a live file's rounded length.
//!
//! In a tree whose walk met damage some keys were never seen, so only the
//! checks that do not rest on a key's absence are made there (names,
//! duplicates, `nextqid`, alignment); the damage itself is reported.

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use crate::format::key::{KeyView, KCLEAR, KDAT, KENT, KUP, ROOT_PQID};
use crate::format::value::{Xdir, DMKIND};
use crate::format::Decode;
use crate::format::BLKSZ_U64;
use crate::ids::BlockAddr;

use super::report::{Kind, Problem, Role};

/// Where a record was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    /// The node holding it.
    pub addr: BlockAddr,
    /// The node's kind.
    pub role: Role,
}

/// A directory entry, as the checks need it.
#[derive(Debug)]
struct Ent {
    pqid: u64,
    name: Box<[u8]>,
    dir: bool,
    length: u64,
    at: At,
}

/// A run of a file's data keys: `n` keys at `off`, `off + BLKSZ`, ….
#[derive(Debug, Clone, Copy)]
struct Run {
    off: u64,
    n: u64,
    at: At,
}

/// One file tree's tables.
#[derive(Debug)]
pub(super) struct Files {
    owner: String,
    nextqid: u64,
    /// The image's format version (device nodes need 4).
    version: u32,
    ents: HashMap<u64, Ent>,
    ups: HashMap<u64, (Box<[u8]>, At)>,
    clears: HashMap<u64, (u64, At)>,
    /// Data-key runs by file, in the order found (key order, except for
    /// keys that buffered messages created).
    dats: Vec<(u64, Run)>,
    problems: Vec<Problem>,
}

fn show(k: &[u8]) -> String {
    crate::format::key::show(k).to_string()
}

fn ent_name(pqid: u64, name: &[u8]) -> String {
    show(&crate::format::key::ent(pqid, name))
}

/// Round `n` up to a block multiple (saturating).
fn roundup(n: u64) -> u64 {
    n.div_ceil(BLKSZ_U64).saturating_mul(BLKSZ_U64)
}

/// How many of the `n` keys `off + i·BLKSZ` lie in `[lo, hi)`, and the
/// first of them.
fn overlap(off: u64, n: u64, lo: u64, hi: Option<u64>) -> (u64, u64) {
    let idx = |x: u64| {
        if x <= off {
            0
        } else {
            (x - off).div_ceil(BLKSZ_U64).min(n)
        }
    };
    let a = idx(lo);
    let b = hi.map_or(n, idx);
    let first = off.saturating_add(a.saturating_mul(BLKSZ_U64));
    (b.saturating_sub(a), first)
}

impl Files {
    /// Empty tables for the tree named `owner`.
    pub fn new(owner: &str, nextqid: u64, version: u32) -> Files {
        Files {
            owner: owner.to_string(),
            nextqid,
            version,
            ents: HashMap::new(),
            ups: HashMap::new(),
            clears: HashMap::new(),
            dats: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Entries known.
    pub(super) fn len(&self) -> usize {
        self.ents.len()
    }

    /// The entry of `qid`: parent, name, whether a directory, length.
    pub(super) fn entry(&self, qid: u64) -> Option<(u64, &[u8], bool, u64)> {
        self.ents
            .get(&qid)
            .map(|e| (e.pqid, &*e.name, e.dir, e.length))
    }

    /// Every entry's qid, whether a directory, and length.
    pub(super) fn qids(&self) -> impl Iterator<Item = (u64, bool, u64)> + '_ {
        self.ents.iter().map(|(&q, e)| (q, e.dir, e.length))
    }

    fn problem(&mut self, kind: Kind, at: At, what: String) {
        self.problems
            .push(Problem::block(kind, at.addr, at.role, &self.owner, what));
    }

    /// The current value of a `KENT`, `KUP` or `KCLEAR` key.
    pub fn record(&mut self, key: &[u8], val: &[u8], at: At) {
        match (key.first().copied(), KeyView::decode(key)) {
            (Some(KENT), Ok(KeyView::Ent { pqid, name })) => self.ent(pqid, name, val, at),
            (Some(KUP), Ok(KeyView::Up { qid })) => {
                self.ups.insert(qid, (val.into(), at));
            }
            (Some(KCLEAR), Ok(KeyView::Clear { qid })) => {
                if qid >= self.nextqid {
                    let what = format!(
                        "clear note of qid {qid}, not below the next qid {}",
                        self.nextqid
                    );
                    self.problem(Kind::Qid, at, what);
                }
                // A malformed note was reported with its node; it covers
                // nothing.
                if let Ok(b) = <[u8; 8]>::try_from(val) {
                    let v = u64::from_be_bytes(b);
                    if v.is_multiple_of(BLKSZ_U64) {
                        self.clears.insert(qid, (v, at));
                    }
                }
            }
            _ => {}
        }
    }

    fn ent(&mut self, pqid: u64, name: &[u8], val: &[u8], at: At) {
        // A value that is not an entry was reported with its node.
        let Ok(d) = Xdir::decode(val) else { return };
        let key = || ent_name(pqid, name);
        if pqid == ROOT_PQID {
            if !name.is_empty() {
                let what = format!(
                    "{}: only the root entry may have the root marker as parent",
                    key()
                );
                self.problem(Kind::Entry, at, what);
            } else if !d.is_dir() {
                let what = format!("{}: the root entry is not a directory", key());
                self.problem(Kind::Entry, at, what);
            }
        } else if crate::fs::names::check(name).is_err() {
            let what = format!("{}: invalid name ({} bytes)", key(), name.len());
            self.problem(Kind::Entry, at, what);
        }
        if d.length > crate::fs::MAX_LEN {
            let what = format!(
                "{}: length {} is beyond the largest file length {}",
                key(),
                d.length,
                crate::fs::MAX_LEN
            );
            self.problem(Kind::Entry, at, what);
        }
        if let Some(what) = kind_problem(&d, self.version) {
            self.problem(Kind::Entry, at, format!("{}: {what}", key()));
        }
        let q = d.qid_path;
        if q >= self.nextqid {
            let what = format!(
                "{}: qid path {q} is not below the next qid {} (it would be reused)",
                key(),
                self.nextqid
            );
            self.problem(Kind::Qid, at, what);
        }
        if let Some(other) = self.ents.get(&q) {
            let what = format!(
                "{}: qid path {q} is also the qid of {} (block {})",
                key(),
                ent_name(other.pqid, &other.name),
                other.at.addr
            );
            self.problem(Kind::Qid, at, what);
            return;
        }
        self.ents.insert(
            q,
            Ent {
                pqid,
                name: name.into(),
                dir: d.is_dir(),
                // A device node's length field holds its device; it has no data.
                length: d.size(),
                at,
            },
        );
    }

    /// `n` existing `KDAT` keys of `qid` at `off`, `off + BLKSZ`, ….
    pub fn dat(&mut self, qid: u64, off: u64, n: u64, at: At) {
        if n == 0 {
            return;
        }
        if !off.is_multiple_of(BLKSZ_U64) {
            let what = format!(
                "{}: data key offset is not block-aligned ({n} such key(s) here)",
                show(&crate::format::key::dat(qid, off))
            );
            self.problem(Kind::DataKey, at, what);
            return;
        }
        match self.dats.last_mut() {
            Some((q, r))
                if *q == qid && r.at == at && r.off.saturating_add(r.n * BLKSZ_U64) == off =>
            {
                r.n += n
            }
            _ => self.dats.push((qid, Run { off, n, at })),
        }
    }

    /// Make the checks that need the whole tree; return every finding.
    /// `root` is the tree's root block, named when the root entry is
    /// missing; `damaged` limits the checks (see the module docs).
    pub fn finish(mut self, root: BlockAddr, damaged: bool) -> Vec<Problem> {
        let mut dats = std::mem::take(&mut self.dats);
        // Stable: each file's runs stay in the order found.
        dats.sort_by_key(|d| d.0);
        for group in dats.chunk_by(|a, b| a.0 == b.0) {
            self.data_keys(group, damaged);
        }
        if !damaged {
            self.structure(root);
        }
        self.problems
    }

    /// The data-key checks of one file, from its runs.
    fn data_keys(&mut self, runs: &[(u64, Run)], damaged: bool) {
        let Some(&(qid, first)) = runs.first() else {
            return;
        };
        if qid >= self.nextqid {
            let what = format!(
                "{}: data of qid {qid}, not below the next qid {}",
                show(&crate::format::key::dat(qid, first.off)),
                self.nextqid
            );
            self.problem(Kind::Qid, first.at, what);
        }
        let ent = self.ents.get(&qid).map(|e| (e.dir, e.length));
        let lim = match ent {
            Some((true, _)) => 0,
            Some((false, length)) => roundup(length),
            None if damaged => return,
            None => 0,
        };
        let whose = |ents: &HashMap<u64, Ent>| match ents.get(&qid) {
            Some(e) if e.dir => format!("directory {}", ent_name(e.pqid, &e.name)),
            Some(e) => format!("file {}", ent_name(e.pqid, &e.name)),
            None => format!("qid {qid}, which has no entry,"),
        };
        let note = self.clears.get(&qid).copied();
        if let (Some((v, at)), Some((false, _))) = (note, ent) {
            if v < lim {
                let what = format!(
                    "clear note of {} at offset {v:#x}, below its rounded length {lim:#x}: \
                     the clear would delete live data",
                    whose(&self.ents)
                );
                self.problem(Kind::DataKey, at, what);
            }
        }
        let hi = note.map(|n| n.0);
        let mut count = 0u64;
        let mut worst: Option<(u64, At)> = None;
        for (_, r) in runs {
            let (c, f) = overlap(r.off, r.n, lim, hi);
            if c > 0 {
                count += c;
                if worst.is_none_or(|w| f < w.0) {
                    worst = Some((f, r.at));
                }
            }
        }
        let Some((f, at)) = worst else { return };
        let span = match ent {
            Some((false, length)) => format!("past its length {length}"),
            _ => "holding data".to_string(),
        };
        let cover = match hi {
            Some(v) => format!("below its clear note's offset {v:#x}"),
            None => "with no clear note".to_string(),
        };
        let what = format!(
            "{count} data key(s) of {} {span}, {cover} (first {})",
            whose(&self.ents),
            show(&crate::format::key::dat(qid, f))
        );
        self.problem(Kind::DataKey, at, what);
    }

    /// Root, up-links, parents and cycles.
    fn structure(&mut self, root: BlockAddr) {
        let root_qid = self
            .ents
            .iter()
            .find(|(_, e)| e.pqid == ROOT_PQID && e.name.is_empty())
            .map(|(&q, _)| q);
        if root_qid.is_none() {
            let at = At {
                addr: root,
                role: Role::Node,
            };
            let what = format!("no root entry {}", ent_name(ROOT_PQID, b""));
            self.problem(Kind::Entry, at, what);
        }
        let mut found = Vec::new();
        for (&q, (val, at)) in &self.ups {
            let what = match (KeyView::decode(val), self.ents.get(&q)) {
                (Ok(KeyView::Ent { .. }), None) => format!(
                    "up-link of qid {q} names {}, but no entry has qid {q}",
                    show(val)
                ),
                (Ok(KeyView::Ent { .. }), Some(e)) if !e.dir => format!(
                    "up-link of qid {q}, whose entry {} is not a directory",
                    ent_name(e.pqid, &e.name)
                ),
                (Ok(KeyView::Ent { pqid, name }), Some(e))
                    if pqid != e.pqid || *name != *e.name =>
                {
                    format!(
                        "up-link of directory {q} names {}, but its entry is {}",
                        show(val),
                        ent_name(e.pqid, &e.name)
                    )
                }
                // A value that is not an entry key was reported with its
                // node.
                _ => continue,
            };
            found.push((Kind::Uplink, *at, what));
        }
        for (&q, e) in &self.ents {
            let key = || ent_name(e.pqid, &e.name);
            if e.dir && !self.ups.contains_key(&q) {
                found.push((
                    Kind::Uplink,
                    e.at,
                    format!("directory {} (qid {q}) has no up-link", key()),
                ));
            }
            if e.pqid == ROOT_PQID {
                continue;
            }
            match self.ents.get(&e.pqid) {
                None => found.push((
                    Kind::Entry,
                    e.at,
                    format!("{}: parent directory {} does not exist", key(), e.pqid),
                )),
                Some(p) if !p.dir => found.push((
                    Kind::Entry,
                    e.at,
                    format!(
                        "{}: parent {} is not a directory",
                        key(),
                        ent_name(p.pqid, &p.name)
                    ),
                )),
                Some(_) => {}
            }
        }
        for (kind, at, what) in found {
            self.problem(kind, at, what);
        }
        self.cycles();
    }

    /// Report every cycle of directories whose parent chains never reach
    /// the root (each once). Chains broken by a missing or non-directory
    /// parent were reported already.
    fn cycles(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum St {
            OnPath,
            Reaches,
            Lost,
        }
        let mut st: HashMap<u64, St> = HashMap::new();
        let mut found = Vec::new();
        let dirs: Vec<u64> = self
            .ents
            .iter()
            .filter(|(_, e)| e.dir)
            .map(|(&q, _)| q)
            .collect();
        for q in dirs {
            let mut path = Vec::new();
            let mut cur = q;
            // Each qid joins the path at most once, so this ends.
            let verdict = loop {
                match st.get(&cur) {
                    Some(St::Reaches) => break St::Reaches,
                    Some(St::Lost) => break St::Lost,
                    Some(St::OnPath) => {
                        if let Some(e) = self.ents.get(&cur) {
                            let what = format!(
                                "directory {} (qid {cur}) is its own ancestor: \
                                 its parent chain never reaches the root",
                                ent_name(e.pqid, &e.name)
                            );
                            found.push((e.at, what));
                        }
                        break St::Lost;
                    }
                    None => {}
                }
                let Some(e) = self.ents.get(&cur) else {
                    break St::Lost;
                };
                if !e.dir {
                    break St::Lost;
                }
                st.insert(cur, St::OnPath);
                path.push(cur);
                if e.pqid == ROOT_PQID {
                    break if e.name.is_empty() {
                        St::Reaches
                    } else {
                        St::Lost
                    };
                }
                cur = e.pqid;
            };
            for p in path {
                st.insert(p, verdict);
            }
        }
        for (at, what) in found {
            self.problem(Kind::Entry, at, what);
        }
    }
}

/// Whether keys of family `fam` go into the file-system tables.
pub(super) fn tabled(fam: u8) -> bool {
    matches!(fam, KDAT | KENT | KUP | KCLEAR)
}

/// What is wrong with the kind of entry `d` says it is, if anything.
fn kind_problem(d: &Xdir, version: u32) -> Option<String> {
    let kinds = (d.mode & DMKIND).count_ones();
    if kinds > 1 {
        return Some(format!("mode {:#x} names {kinds} kinds of entry", d.mode));
    }
    if d.is_device() {
        if version < 4 {
            return Some(format!(
                "device node in an image of format version {version} (devices need 4)"
            ));
        }
        if d.device().is_none() {
            return Some(format!(
                "device node with no valid device ({:#x})",
                d.length
            ));
        }
    }
    if d.is_symlink() && !(1..=crate::fs::MAX_TARGET as u64).contains(&d.length) {
        return Some(format!("symbolic link of length {}", d.length));
    }
    if d.is_special() && d.length != 0 {
        return Some(format!("pipe or socket of length {}", d.length));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_keys_in_range() {
        let b = BLKSZ_U64;
        assert_eq!(overlap(0, 10, 3 * b, None), (7, 3 * b));
        assert_eq!(overlap(0, 10, 3 * b, Some(5 * b)), (2, 3 * b));
        assert_eq!(overlap(0, 10, 10 * b, None).0, 0);
        assert_eq!(overlap(4 * b, 2, 0, Some(4 * b)).0, 0);
        assert_eq!(overlap(4 * b, 2, b + 1, None), (2, 4 * b));
        assert_eq!(roundup(1), b);
        assert_eq!(roundup(0), 0);
    }

    #[test]
    fn entry_kinds() {
        use crate::format::value::{Device, DMDEVICE, DMDIR, DMNAMEDPIPE, DMSOCKET, DMSYMLINK};
        let d = |mode, length| Xdir {
            mode,
            length,
            ..Xdir::default()
        };
        let kind_problem = |d: &Xdir| kind_problem(d, 4);
        let cdev = Device::new(false, 1, 3).unwrap().encode();
        assert_eq!(kind_problem(&d(DMDEVICE | 0o666, cdev)), None);
        assert!(super::kind_problem(&d(DMDEVICE | 0o666, cdev), 3).is_some());
        assert!(kind_problem(&d(DMDEVICE | 0o666, 0)).is_some());
        assert!(kind_problem(&d(DMDEVICE | 0o666, cdev | 1 << 40)).is_some());
        assert!(kind_problem(&d(DMDEVICE | DMSYMLINK, cdev)).is_some());
        assert_eq!(kind_problem(&d(0o644, 9)), None);
        assert_eq!(kind_problem(&d(DMDIR | 0o755, 0)), None);
        assert_eq!(kind_problem(&d(DMSYMLINK | 0o777, 4095)), None);
        assert!(kind_problem(&d(DMSYMLINK | 0o777, 0)).is_some());
        assert!(kind_problem(&d(DMSYMLINK | 0o777, 4096)).is_some());
        assert!(kind_problem(&d(DMNAMEDPIPE, 1)).is_some());
        assert_eq!(kind_problem(&d(DMSOCKET, 0)), None);
        assert!(kind_problem(&d(DMDIR | DMSYMLINK, 1)).is_some());
    }
}
