//! Messages accepted for a tree but not yet applied to it: a store's write
//! buffer, as sorted runs that readers apply on top of the tree.
//!
//! The store buffers upserts between syncs and applies them to the tree in
//! large batches (see `store/wbuf.rs`); until then, lookups and scans must
//! answer as if they had been applied. A [`Runs`] list is the buffer as
//! readers see it: immutable runs, oldest first, each sorted by key with
//! arrival order kept among equal keys. Applying the runs' messages for a key
//! in list order, then run order, on top of the tree's answer is exactly what
//! the tree itself would answer once they are applied: every message in a
//! run is newer than everything in the tree, and every message of a run is
//! newer than those of the runs before it.
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
//! frees the old block.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::msg::{self, Msg, Op};
use crate::ids::BlockAddr;

/// One immutable run of buffered messages: sorted by key, arrival order
/// among equal keys.
#[derive(Debug, Default)]
pub struct Run {
    msgs: Vec<Msg>,
    bytes: usize,
}

/// Append `m` to the sorted messages `out`, folding it into the last one
/// when both are for one key and one message has their combined effect (see
/// the module doc). Arguments that do not decode are kept as they are, for
/// the tree to report.
fn push_folded(out: &mut Vec<Msg>, m: Msg) {
    if m.op == Op::Wstat {
        if let Some(last) = out.last_mut().filter(|l| l.key == m.key) {
            if let Some(val) = msg::fold_wstat(last.op, &last.val, &m.val) {
                last.val = val;
                return;
            }
        }
    }
    out.push(m);
}

/// A tree's buffered messages as readers see them: runs, oldest first.
pub type Runs = Arc<[Arc<Run>]>;

/// The empty buffer.
pub fn no_runs() -> Runs {
    Arc::from(Vec::new())
}

impl Run {
    /// A run of one batch; sorts it stably by key.
    pub fn new(mut msgs: Vec<Msg>) -> Run {
        msgs.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            push_folded(&mut out, m);
        }
        let bytes = out.iter().map(Msg::size).sum();
        Run { msgs: out, bytes }
    }

    /// Merge an older and a newer run into one (the older one's messages
    /// first among equal keys). Takes the messages over when no reader holds
    /// a run, and copies them otherwise.
    pub fn merge(older: Arc<Run>, newer: Arc<Run>) -> Run {
        let take = |r: Arc<Run>| {
            Arc::try_unwrap(r)
                .unwrap_or_else(|r| Run::clone_of(&r))
                .msgs
        };
        let (a, b) = (take(older), take(newer));
        let mut out = Vec::with_capacity(a.len() + b.len());
        let mut a = a.into_iter().peekable();
        for m in b {
            while let Some(o) = a.next_if(|o| o.key <= m.key) {
                push_folded(&mut out, o);
            }
            push_folded(&mut out, m);
        }
        for o in a {
            push_folded(&mut out, o);
        }
        let bytes = out.iter().map(Msg::size).sum();
        Run { msgs: out, bytes }
    }

    fn clone_of(r: &Run) -> Run {
        Run {
            msgs: r.msgs.clone(),
            bytes: r.bytes,
        }
    }

    /// The messages, sorted.
    pub fn msgs(&self) -> &[Msg] {
        &self.msgs
    }

    /// Messages in the run.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Whether the run is empty.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Buffer bytes the messages would take in a node ([`Msg::size`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Index of the first message whose key is ≥ `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        self.msgs.partition_point(|m| m.key.as_slice() < key)
    }
}

/// Apply every buffered message for `key` on top of the tree's answer.
pub(crate) fn apply_key(
    runs: &[Arc<Run>],
    key: &[u8],
    base: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>> {
    let mut cur = base;
    for r in runs {
        for m in r.msgs.iter().skip(r.lower_bound(key)) {
            if m.key != key {
                break;
            }
            cur = apply(m, cur)?;
        }
    }
    Ok(cur)
}

fn apply(m: &Msg, cur: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
    msg::apply(m.op, &m.val, cur).map_err(|e| {
        Error::corrupt(
            BlockAddr::NONE,
            format!("buffered message for key {:02x?}: {e}", m.key),
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
            .filter_map(|(r, &i)| r.msgs.get(i).map(|m| m.key.as_slice()))
            .min()
    }

    /// Consume every message for `key` (the smallest key not consumed yet, or
    /// any smaller key, which has none), applying them to `cur`.
    pub fn apply(&mut self, key: &[u8], mut cur: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        for (r, i) in self.runs.iter().zip(self.at.iter_mut()) {
            while let Some(m) = r.msgs.get(*i).filter(|m| m.key == key) {
                cur = apply(m, cur)?;
                *i += 1;
            }
        }
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::msg::Op;

    fn ins(k: &[u8], v: &[u8]) -> Msg {
        Msg::insert(k.to_vec(), v.to_vec())
    }

    #[test]
    fn merge_keeps_arrival_order() {
        let a = Arc::new(Run::new(vec![
            ins(b"b", b"1"),
            ins(b"a", b"1"),
            ins(b"b", b"2"),
        ]));
        let b = Arc::new(Run::new(vec![ins(b"b", b"3"), Msg::delete(b"a".to_vec())]));
        let m = Run::merge(a, b);
        let got: Vec<(&[u8], Op, &[u8])> = m
            .msgs()
            .iter()
            .map(|m| (m.key.as_slice(), m.op, m.val.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], Op::Insert, &b"1"[..]),
                (b"a", Op::Delete, b""),
                (b"b", Op::Insert, b"1"),
                (b"b", Op::Insert, b"2"),
                (b"b", Op::Insert, b"3"),
            ]
        );
        assert_eq!(m.bytes(), m.msgs().iter().map(Msg::size).sum::<usize>());
    }

    #[test]
    fn apply_and_cursor() {
        let runs: Runs = Arc::from(vec![
            Arc::new(Run::new(vec![ins(b"a", b"1"), ins(b"c", b"1")])),
            Arc::new(Run::new(vec![Msg::delete(b"a".to_vec()), ins(b"b", b"2")])),
        ]);
        assert_eq!(apply_key(&runs, b"a", Some(b"0".to_vec())).unwrap(), None);
        assert_eq!(apply_key(&runs, b"b", None).unwrap(), Some(b"2".to_vec()));
        assert_eq!(
            apply_key(&runs, b"d", Some(b"x".to_vec())).unwrap(),
            Some(b"x".to_vec())
        );
        let mut c = Cursor::new(&runs, Some(b"b"));
        assert_eq!(c.peek(), Some(&b"b"[..]));
        assert_eq!(c.apply(b"b", None).unwrap(), Some(b"2".to_vec()));
        assert_eq!(c.peek(), Some(&b"c"[..]));
        assert_eq!(c.apply(b"c", None).unwrap(), Some(b"1".to_vec()));
        assert_eq!(c.peek(), None);
    }
}
