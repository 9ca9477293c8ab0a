//! Messages accepted for a tree but not yet applied to it: a store's write
//! buffer, as sorted runs that readers apply on top of the tree.
//!
//! The store buffers upserts and applies them to the tree in large batches
//! (see `store/wbuf.rs`); until then, lookups and scans must answer as if
//! they had been applied. A [`Runs`] list is the buffer as readers see it:
//! immutable runs, oldest first, each sorted by key with arrival order kept
//! among equal keys. Applying the runs' messages for a key in list order,
//! then run order, on top of the tree's answer is exactly what the tree
//! itself would answer once they are applied: every message in a run is
//! newer than everything in the tree, and every message of a run is newer
//! than those of the runs before it.
//!
//! A run keeps its messages encoded back to back in one buffer, in the
//! message-log record format (`format::mlog`), with an index of offsets: no
//! allocation per message, and merging two runs is a copy of bytes (nobody
//! has to give up a run readers may hold).
//!
//! Invariants kept here: a run never changes once shared (readers hold it
//! through an `Arc` while the writer goes on); merging two runs keeps the
//! older one's messages first among equal keys; a message that has nothing
//! to act on leaves its key absent, as everywhere else (`msg::apply`).
//!
//! Folding: when a run is built or two are merged, a wstat that follows a
//! message for the same key is folded into it when one message has exactly
//! their combined effect — an insert followed by a wstat becomes the insert
//! of the changed value (`msg::apply` itself computes it), two wstats become
//! one (`Wstat::then`). A directory that gains thousands of entries
//! between two syncs thus has one buffered wstat (mtime, version), not one
//! per create for every walk through it to apply; a wstat after a delete,
//! clearb or clobber is an orphan and vanishes. Nothing else is folded:
//! a data pointer replaced in the buffer must still reach the tree, which
//! frees the old block (the store takes out of its buffer, with
//! [`Run::without`], inserts whose blocks it freed itself: `store/overwrite.rs`).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::mlog;
use crate::format::msg::{self, Msg, Op};
use crate::format::SLOTSZ;
use crate::ids::BlockAddr;
use crate::CorruptKind;

/// One message of a run: op, key, argument.
pub type Rec<'a> = mlog::Record<'a>;

/// One immutable run of buffered messages: sorted by key, arrival order
/// among equal keys.
#[derive(Debug, Default)]
pub struct Run {
    /// The records, in order.
    buf: Vec<u8>,
    /// Where each record starts in `buf`.
    idx: Vec<u32>,
}

impl Run {
    fn with_capacity(bytes: usize, n: usize) -> Run {
        Run {
            buf: Vec::with_capacity(bytes),
            idx: Vec::with_capacity(n),
        }
    }

    /// Append a record (in key order), folding a wstat into the last record
    /// when both are for one key and one message has their combined effect
    /// (see the module doc). Arguments that do not decode are kept as they
    /// are, for the tree to report.
    fn push(&mut self, (op, key, arg): Rec<'_>) {
        if op == Op::Wstat {
            if let Some(&at) = self.idx.last() {
                if let Ok((lop, lkey, larg, _)) = mlog::record(&self.buf, at as usize) {
                    if lkey == key {
                        if let Some(val) = msg::fold_wstat(lop, larg, arg) {
                            let lkey = lkey.to_vec();
                            self.buf.truncate(at as usize);
                            mlog::put(&mut self.buf, lop, &lkey, &val);
                            return;
                        }
                    }
                }
            }
        }
        self.idx.push(self.buf.len() as u32);
        mlog::put(&mut self.buf, op, key, arg);
    }

    /// Append message `i` of `src` (in key order), as [`Run::push`] does:
    /// its encoded bytes are copied as they are, unless it is a wstat,
    /// which may fold into the last record.
    fn push_from(&mut self, src: &Run, i: usize) {
        let Some(&at) = src.idx.get(i) else { return };
        let at = at as usize;
        let end = src.idx.get(i + 1).map_or(src.buf.len(), |&e| e as usize);
        match src.buf.get(at..end) {
            Some(rec) if rec.first().copied() != Some(Op::Wstat.code()) => {
                self.idx.push(self.buf.len() as u32);
                self.buf.extend_from_slice(rec);
            }
            _ => {
                if let Some(r) = src.get(i) {
                    self.push(r);
                }
            }
        }
    }

    /// A run of messages given in arrival order; sorts them stably by key.
    pub fn from_recs(mut recs: Vec<Rec<'_>>) -> Run {
        recs.sort_by(|a, b| a.1.cmp(b.1));
        let bytes = recs.iter().map(|r| mlog::size(r.1.len(), r.2.len())).sum();
        let mut out = Run::with_capacity(bytes, recs.len());
        for r in recs {
            out.push(r);
        }
        out
    }

    /// A run of one batch; sorts it stably by key.
    pub fn new(msgs: &[Msg]) -> Run {
        Run::from_recs(
            msgs.iter()
                .map(|m| (m.op, &m.key[..], &m.val[..]))
                .collect(),
        )
    }

    /// Merge an older and a newer run into one (the older one's messages
    /// first among equal keys).
    pub fn merge(older: &Run, newer: &Run) -> Run {
        let mut out =
            Run::with_capacity(older.buf.len() + newer.buf.len(), older.len() + newer.len());
        // Records are copied whole; keys are decoded once each.
        let (mut i, mut j) = (0, 0);
        let (mut ka, mut kb) = (older.get(0).map(|r| r.1), newer.get(0).map(|r| r.1));
        loop {
            let take_a = match (ka, kb) {
                (Some(x), Some(y)) => x <= y,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_a {
                out.push_from(older, i);
                i += 1;
                ka = older.get(i).map(|r| r.1);
            } else {
                out.push_from(newer, j);
                j += 1;
                kb = newer.get(j).map(|r| r.1);
            }
        }
        out
    }

    /// Message `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Rec<'_>> {
        let at = *self.idx.get(i)? as usize;
        mlog::record(&self.buf, at)
            .ok()
            .map(|(op, k, v, _)| (op, k, v))
    }

    /// The messages in order.
    pub fn iter(&self) -> impl Iterator<Item = Rec<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The records, encoded back to back (a message-log payload).
    pub fn encoded(&self) -> &[u8] {
        &self.buf
    }

    /// Messages in the run.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether the run is empty.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// Buffer bytes the messages would take in a node ([`Msg::size`]).
    pub fn bytes(&self) -> usize {
        self.buf.len() + SLOTSZ * self.idx.len()
    }

    /// Memory the run takes.
    pub fn mem(&self) -> usize {
        self.buf.capacity() + 4 * self.idx.capacity() + std::mem::size_of::<Run>()
    }

    fn key(&self, i: usize) -> &[u8] {
        self.get(i).map_or(&[][..], |r| r.1)
    }

    /// Index of the first message whose key is ≥ `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The run's messages for `key`, in order.
    pub fn msgs_for<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = Rec<'a>> + 'a {
        (self.lower_bound(key)..self.len()).map_while(move |i| self.get(i).filter(|m| m.1 == key))
    }

    /// Whether the run holds a message for `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        let i = self.lower_bound(key);
        i < self.len() && self.key(i) == key
    }

    /// Index of the run's newest message for `key` (the last of its
    /// messages for it), if any.
    pub fn last_of(&self, key: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (self.lower_bound(key), self.len());
        if lo == hi || self.key(lo) != key {
            return None;
        }
        // Index of the first message whose key is > `key`.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Some(lo - 1)
    }

    /// A copy of the run without the messages `drop` names (sorted
    /// indices); the others keep their order and their bytes: nothing is
    /// folded again.
    pub fn without(&self, drop: &[usize]) -> Run {
        let mut out = Run::with_capacity(self.buf.len(), self.len());
        let mut k = 0;
        for (j, &at) in self.idx.iter().enumerate() {
            if drop.get(k) == Some(&j) {
                k += 1;
                continue;
            }
            let at = at as usize;
            let end = self.idx.get(j + 1).map_or(self.buf.len(), |&e| e as usize);
            if let Some(rec) = self.buf.get(at..end) {
                out.idx.push(out.buf.len() as u32);
                out.buf.extend_from_slice(rec);
            }
        }
        out
    }
}

/// A tree's buffered messages as readers see them: runs, oldest first.
pub type Runs = Arc<[Arc<Run>]>;

/// The empty buffer.
pub fn no_runs() -> Runs {
    Arc::from(Vec::new())
}

/// Whether any run holds a message for `key`.
pub(crate) fn has_key(runs: &[Arc<Run>], key: &[u8]) -> bool {
    runs.iter().any(|r| r.contains(key))
}

fn apply(op: Op, key: &[u8], arg: &[u8], cur: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
    msg::apply(op, arg, cur).map_err(|e| {
        Error::corrupt(
            BlockAddr::NONE,
            CorruptKind::Message,
            format!("buffered message for key {key:02x?}: {e}"),
        )
    })
}

/// A cursor over the buffered messages, in key order.
pub(crate) struct Cursor<'a> {
    runs: &'a [Arc<Run>],
    /// Next message of each run.
    at: Vec<usize>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first key ≥ `start` (or at the beginning).
    pub fn new(runs: &'a [Arc<Run>], start: Option<&[u8]>) -> Cursor<'a> {
        let at = runs
            .iter()
            .map(|r| start.map_or(0, |k| r.lower_bound(k)))
            .collect();
        Cursor { runs, at }
    }

    /// The smallest key not consumed yet.
    pub fn peek(&self) -> Option<&'a [u8]> {
        self.runs
            .iter()
            .zip(&self.at)
            .filter_map(|(r, &i)| r.get(i).map(|m| m.1))
            .min()
    }

    /// Consume every message for `key` (the smallest key not consumed yet, or
    /// any smaller key, which has none), applying them to `cur`.
    pub fn apply(&mut self, key: &[u8], mut cur: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        for (r, i) in self.runs.iter().zip(self.at.iter_mut()) {
            while let Some((op, k, arg)) = r.get(*i).filter(|m| m.1 == key) {
                cur = apply(op, k, arg, cur)?;
                *i += 1;
            }
        }
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(k: &[u8], v: &[u8]) -> Msg {
        Msg::insert(k.to_vec(), v.to_vec())
    }

    #[test]
    fn merge_keeps_arrival_order() {
        let a = Run::new(&[ins(b"b", b"1"), ins(b"a", b"1"), ins(b"b", b"2")]);
        let b = Run::new(&[ins(b"b", b"3"), Msg::delete(b"a".to_vec())]);
        let m = Run::merge(&a, &b);
        let got: Vec<Rec<'_>> = m.iter().collect();
        assert_eq!(
            got,
            vec![
                (Op::Insert, &b"a"[..], &b"1"[..]),
                (Op::Delete, b"a", b""),
                (Op::Insert, b"b", b"1"),
                (Op::Insert, b"b", b"2"),
                (Op::Insert, b"b", b"3"),
            ]
        );
        assert_eq!(
            m.bytes(),
            got.iter()
                .map(|r| SLOTSZ + mlog::size(r.1.len(), r.2.len()))
                .sum::<usize>()
        );
        assert_eq!(mlog::decode(m.encoded()).unwrap(), got);
        assert!(m.contains(b"a") && m.contains(b"b") && !m.contains(b"c") && !m.contains(b""));
    }

    #[test]
    fn apply_and_cursor() {
        let runs: Runs = Arc::from(vec![
            Arc::new(Run::new(&[ins(b"a", b"1"), ins(b"c", b"1")])),
            Arc::new(Run::new(&[Msg::delete(b"a".to_vec()), ins(b"b", b"2")])),
        ]);
        assert_eq!(runs[0].msgs_for(b"a").count(), 1);
        assert_eq!(
            runs[1].msgs_for(b"a").next(),
            Some((Op::Delete, &b"a"[..], &b""[..]))
        );
        assert_eq!(runs[0].msgs_for(b"b").count(), 0);
        assert!(has_key(&runs, b"c") && !has_key(&runs, b"d"));
        let mut c = Cursor::new(&runs, Some(b"b"));
        assert_eq!(c.peek(), Some(&b"b"[..]));
        assert_eq!(c.apply(b"b", None).unwrap(), Some(b"2".to_vec()));
        assert_eq!(c.peek(), Some(&b"c"[..]));
        assert_eq!(c.apply(b"c", None).unwrap(), Some(b"1".to_vec()));
        assert_eq!(c.peek(), None);
    }
}
