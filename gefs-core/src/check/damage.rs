//! Which files a damaged block takes with it, as `zpool status -v` lists
//! them: "snapshot main: /home/x/report.pdf, bytes 0–16383".
//!
//! While a file tree is walked, every problem that stops the walk from
//! using a block is noted with what the block held ([`Target`]): a data
//! block holds one block of one file (its `KDAT` key); a tree node holds
//! every key of its range, which the parent's separators give. When the
//! tree's walk ends its entry table is complete (as far as the damage
//! allows), and each target is named: the files whose data keys fall in the
//! range (with the bytes concerned), and the directories whose entries do.
//! A file whose own entry was lost is named by its qid.

#![deny(clippy::indexing_slicing)]

use crate::format::key::{KeyView, KDAT, KENT, ROOT_PQID};
use crate::format::Decode;
use crate::format::BLKSZ_U64;

use super::files::Files;

/// What a damaged block held.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// One data block: file `qid`, bytes from `off`.
    Data {
        /// The file.
        qid: u64,
        /// The block's offset in it.
        off: u64,
    },
    /// A tree node: every key in `[lo, hi)` (`hi` none: to the end).
    Range {
        /// The lowest key.
        lo: Box<[u8]>,
        /// The first key past the range.
        hi: Option<Box<[u8]>>,
    },
}

/// Most files named for one damaged node.
const MOST: usize = 16;

/// A key's family and, within it, its first field (qid or parent qid) and
/// second (offset), for range arithmetic. The empty key sorts first.
fn split(k: &[u8]) -> (u8, u64, u64) {
    match KeyView::decode(k) {
        Ok(KeyView::Dat { qid, off }) => (KDAT, qid, off),
        Ok(KeyView::Ent { pqid, .. }) => (KENT, pqid, 0),
        _ => (k.first().copied().unwrap_or(0), 0, 0),
    }
}

/// Whether `(fam, a)` lies in the range `[lo, hi)`, comparing only family
/// and first field (the bounds' own first field counts as inside).
fn covers(lo: (u8, u64), hi: Option<(u8, u64)>, fam: u8, a: u64) -> bool {
    (fam, a) >= lo && hi.is_none_or(|h| (fam, a) <= h)
}

impl Files {
    /// The path of `qid` in this tree: `/a/b`, or with an unknown part
    /// `…/b`; `None` if its own entry is unknown.
    pub(super) fn path(&self, qid: u64) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut q = qid;
        // Each step goes one directory up; a chain longer than the table
        // is a cycle (reported elsewhere).
        for _ in 0..=self.len() {
            let Some((pqid, name, _, _)) = self.entry(q) else {
                if q == qid {
                    return None;
                }
                parts.push("…".into());
                break;
            };
            if pqid == ROOT_PQID {
                break;
            }
            parts.push(String::from_utf8_lossy(name).into_owned());
            q = pqid;
        }
        parts.reverse();
        Some(format!("/{}", parts.join("/")))
    }

    fn file(&self, qid: u64) -> String {
        self.path(qid)
            .unwrap_or_else(|| format!("file qid {qid} (its entry is lost)"))
    }

    /// Name what `t` held, each line starting with `prefix`.
    pub(super) fn describe(&self, prefix: &str, t: &Target) -> Vec<String> {
        match t {
            Target::Data { qid, off } => {
                let end = off.saturating_add(BLKSZ_U64 - 1);
                vec![format!("{prefix}: {}, bytes {off}–{end}", self.file(*qid))]
            }
            Target::Range { lo, hi } => self.range(prefix, lo, hi.as_deref()),
        }
    }

    fn range(&self, prefix: &str, lo: &[u8], hi: Option<&[u8]>) -> Vec<String> {
        let (lf, lq, loff) = split(lo);
        let h = hi.map(split);
        let (lo2, hi2) = ((lf, lq), h.map(|(f, q, _)| (f, q)));
        let mut out = Vec::new();
        let mut more = 0usize;
        let mut ents: Vec<(u64, bool, u64)> = self.qids().collect();
        ents.sort_unstable();
        for (q, dir, length) in ents {
            let data = !dir && covers(lo2, hi2, KDAT, q);
            let entries = dir && covers(lo2, hi2, KENT, q);
            if !data && !entries {
                continue;
            }
            if out.len() == MOST {
                more += 1;
                continue;
            }
            if entries {
                out.push(format!("{prefix}: entries of directory {}", self.file(q)));
                continue;
            }
            // The bytes of this file the range holds.
            let first = if (lf, lq) == (KDAT, q) { loff } else { 0 };
            let last = match h {
                Some((KDAT, hq, hoff)) if hq == q => hoff,
                _ => length.div_ceil(BLKSZ_U64) * BLKSZ_U64,
            };
            if last <= first {
                continue;
            }
            out.push(format!(
                "{prefix}: {}, bytes {first}–{}",
                self.file(q),
                last - 1
            ));
        }
        if more > 0 {
            out.push(format!("{prefix}: and {more} more files"));
        }
        if out.is_empty() {
            out.push(format!(
                "{prefix}: keys {} to {} (no known file)",
                crate::format::key::show(lo),
                hi.map_or("the end".into(), |k| crate::format::key::show(k)
                    .to_string())
            ));
        }
        out
    }
}
