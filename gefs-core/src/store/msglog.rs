//! Message logs: how a commit makes a tree's buffered messages durable
//! without applying them to the tree.
//!
//! Each tree's snapshot record names the newest block of its message log
//! (`TreeRec::log`; FORMAT.md §5.6): a hash-chained list of message-log
//! blocks, oldest first from `seq` 0, holding in arrival order the messages
//! accepted since the tree at `TreeRec::root` was written. The tree's
//! contents are that root with the log's messages applied on top, which is
//! what the write buffer (`wbuf.rs`) holds in memory: mounting a tree
//! replays its log into its buffer.
//!
//! What a log write (at every commit, and when a snapshot is taken) does:
//! - if the tree's root has not changed since the chain was written, the
//!   records accepted since are appended: the head block's records and the
//!   new ones go into new blocks, the first of which takes the head's `seq`
//!   and `prev` (the head is copied, never rewritten in place);
//! - if the buffer was applied to the tree meanwhile (the chain is
//!   *stale*), a new chain from `seq` 0 holds the buffer as it is now (the
//!   messages accepted since the apply) and the old chain is dropped;
//! - either way the blocks the new chain no longer uses are freed under the
//!   tree's snapshot rules, like replaced tree nodes: reusable once the
//!   commit that stops referencing them is durable, or deadlisted while an
//!   older snapshot still holds them (a snapshot shares its tree's chain as
//!   it shares its nodes).
//!
//! Crash argument: log blocks are ordinary new blocks, written in the
//! commit's first flush epoch with the tree nodes, and reachable only
//! through the new snapshot record, so through the new superblock. Nothing
//! a durable superblock reaches is overwritten (replaced chain blocks are
//! freed like any other block), so a power cut leaves either the previous
//! commit's record with its whole chain, or the new one with its whole
//! chain; a torn or stale block is caught by the hash in the pointer to it.
//!
//! Invariants: after a log write, replaying the chain gives exactly the
//! tree's buffered messages (so `unlogged` is empty and the chain is not
//! stale); a record never spans two blocks; a chain never exceeds
//! [`MLOG_MAX_BLOCKS`] (the buffer is applied before it would).

use std::collections::HashMap;

use super::{Mutation, Store, TreeId};
use crate::alloc::{Kind, Tier};
use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::log::{payload, LogHeader};
use crate::format::mlog;
use crate::format::msg::{Msg, Op};
use crate::format::DecodeError;
use crate::format::{BlockType, Bptr, BLKSZ, LOGSPC, LOG_HDR, MLOG_MAX_BLOCKS, PTRSZ};
use crate::ids::Gen;
use crate::tree::pending::{Rec, Run};
use crate::tree::NodeStore;
use crate::CorruptKind;

/// A tree's message log, as its writer keeps it.
#[derive(Debug, Default, Clone)]
pub(super) struct Log {
    /// The chain, oldest block first (the last one is the head).
    chain: Vec<Bptr>,
    /// The head block's records.
    head: Vec<u8>,
    /// Records accepted since the chain was written, in arrival order
    /// (not kept while the chain is stale).
    unlogged: Vec<u8>,
    /// The buffer was applied to the tree since the chain was written: the
    /// next log write replaces the chain.
    stale: bool,
    /// For each `KDAT` key among the unlogged records, where its newest
    /// record starts in `unlogged` (`overwrite.rs` takes some back).
    newest: HashMap<Vec<u8>, usize>,
    /// Unlogged records taken back: where they start. The next log write
    /// leaves them out.
    dropped: Vec<usize>,
    /// Their bytes.
    dropped_bytes: usize,
}

/// Bytes of a `KDAT` key (tag, qid, offset), as the index counts them.
const KDAT_KEY: usize = 17;

/// Where a buffered message stands with respect to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unlogged {
    /// The chain is stale: the next log write writes the whole buffer, so
    /// no log holds any buffered message.
    Stale,
    /// The message is the unlogged record that starts there.
    At(usize),
}

impl Log {
    /// The pointer a snapshot record keeps: the head, or null.
    pub(super) fn head_ptr(&self) -> Bptr {
        self.chain.last().copied().unwrap_or(Bptr::NONE)
    }

    /// The chain's blocks, oldest first.
    pub(super) fn chain(&self) -> &[Bptr] {
        &self.chain
    }

    /// Record a batch just buffered.
    pub(super) fn accept(&mut self, msgs: &[Msg]) {
        if !self.stale {
            for m in msgs {
                if m.key.first() == Some(&KDAT) {
                    self.newest.insert(m.key.clone(), self.unlogged.len());
                }
                mlog::put(&mut self.unlogged, m.op, &m.key, &m.val);
            }
        }
    }

    /// The records are in the chain now, or no longer needed: start afresh.
    fn clear_unlogged(&mut self) {
        self.unlogged = Vec::new();
        self.newest = HashMap::new();
        self.dropped = Vec::new();
        self.dropped_bytes = 0;
    }

    /// The buffer was applied to the tree: the chain no longer matches.
    pub(super) fn applied(&mut self) {
        self.stale = true;
        self.clear_unlogged();
    }

    /// Whether the buffer's newest message for the `KDAT` key `key`, which
    /// is `(op, key, arg)`, is in no log yet, and where: the chain is
    /// stale, or the newest unlogged record for `key` is that message (the
    /// unlogged records are the newest accepted, so if any is for `key`,
    /// the newest of them is the buffer's newest for it). `None` when it
    /// may be logged.
    pub(super) fn unlogged_at(&self, op: Op, key: &[u8], arg: &[u8]) -> Option<Unlogged> {
        if self.stale {
            return Some(Unlogged::Stale);
        }
        let at = *self.newest.get(key)?;
        let (rop, rkey, rarg, _) = mlog::record(&self.unlogged, at).ok()?;
        (rop == op && rkey == key && rarg == arg).then_some(Unlogged::At(at))
    }

    /// Leave an unlogged record out of the next log write (a message taken
    /// back before any log held it).
    pub(super) fn forget(&mut self, at: Unlogged) {
        let Unlogged::At(at) = at else { return };
        let Ok((_, key, _, end)) = mlog::record(&self.unlogged, at) else {
            return;
        };
        if self.newest.get(key) == Some(&at) {
            self.newest.remove(key);
        }
        self.dropped.push(at);
        self.dropped_bytes += end - at;
    }

    /// The unlogged records, but those taken back.
    fn records(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.dropped.is_empty() {
            return std::borrow::Cow::Borrowed(&self.unlogged);
        }
        let mut skip = self.dropped.clone();
        skip.sort_unstable();
        let mut out = Vec::with_capacity(self.unlogged());
        let (mut at, mut k) = (0, 0);
        while let Ok((_, _, _, next)) = mlog::record(&self.unlogged, at) {
            if skip.get(k) == Some(&at) {
                k += 1;
            } else if let Some(rec) = self.unlogged.get(at..next) {
                out.extend_from_slice(rec);
            }
            at = next;
        }
        std::borrow::Cow::Owned(out)
    }

    /// Bytes of records not yet written.
    pub(super) fn unlogged(&self) -> usize {
        self.unlogged.len().saturating_sub(self.dropped_bytes)
    }

    /// Memory the unlogged records take, with their index.
    pub(super) fn mem(&self) -> usize {
        let per_key = std::mem::size_of::<(Vec<u8>, usize)>() + 2 * KDAT_KEY;
        self.unlogged.len() + self.newest.len() * per_key + 8 * self.dropped.len()
    }

    /// Whether the next log write has anything to do.
    pub(super) fn pending(&self) -> bool {
        self.stale || self.unlogged() > 0
    }
}

/// Cut record streams into block payloads: every record whole, each payload
/// at most [`LOGSPC`] bytes; the first payload starts with `first`.
fn pack(first: &[u8], streams: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut out = vec![first.to_vec()];
    for s in streams {
        let mut at = 0;
        while let Ok((_, _, _, next)) = mlog::record(s, at) {
            let rec = s.get(at..next).unwrap_or_default();
            if out.last().is_some_and(|p| p.len() + rec.len() > LOGSPC) {
                out.push(Vec::with_capacity(LOGSPC));
            }
            if let Some(p) = out.last_mut() {
                p.extend_from_slice(rec);
            }
            at = next;
        }
    }
    if out.len() == 1 && out[0].is_empty() {
        out.clear();
    }
    out
}

/// A chain read back: its blocks and their records, oldest first.
pub(crate) struct ReadLog {
    /// The blocks.
    pub chain: Vec<Bptr>,
    /// Each block's records.
    pub payloads: Vec<Vec<u8>>,
}

impl ReadLog {
    /// Every message, oldest first, each checked as an upsert would check it.
    pub(crate) fn recs(&self) -> Result<Vec<Rec<'_>>> {
        let mut out = Vec::new();
        for (bp, p) in self.chain.iter().zip(&self.payloads) {
            let bad = |e: DecodeError| e.context("message log").at(bp.addr);
            for (op, key, arg) in mlog::decode(p).map_err(bad)? {
                if op == Op::Insert && key.first() == Some(&KDAT) && arg.len() != PTRSZ {
                    return Err(bad(DecodeError::new(
                        CorruptKind::Value,
                        "data key insert that is not a block pointer",
                    )));
                }
                out.push((op, key, arg));
            }
        }
        Ok(out)
    }
}

/// The data blocks `KDAT` inserts among `recs` point to.
pub(crate) fn data_ptrs<'a>(recs: impl Iterator<Item = Rec<'a>>) -> Vec<Bptr> {
    recs.filter(|r| r.0 == Op::Insert && r.1.first() == Some(&KDAT))
        .filter_map(|r| Bptr::from_slice(r.2).ok())
        .filter(|bp| !bp.is_none())
        .collect()
}

impl Store {
    /// Read the message log whose newest block is `head` (null: none),
    /// verifying every block and link.
    pub(crate) fn read_log(&self, head: &Bptr) -> Result<ReadLog> {
        let mut chain = Vec::new();
        let mut payloads = Vec::new();
        let mut at = *head;
        let mut want: Option<u64> = None;
        while !at.is_none() {
            let b = self.read_block(&at, false)?;
            let bad = |e: DecodeError| e.context("message log").at(at.addr);
            let h = LogHeader::decode(b.bytes()).map_err(bad)?;
            if h.kind != BlockType::Mlog {
                return Err(bad(DecodeError::new(
                    CorruptKind::BlockType,
                    format!("a {} block in the chain", h.kind.name()),
                )));
            }
            if want.is_some_and(|w| w != h.seq) || h.seq >= MLOG_MAX_BLOCKS {
                return Err(bad(DecodeError::new(
                    CorruptKind::Chain,
                    format!("block {} where {want:?} belongs", h.seq),
                )));
            }
            payloads.push(payload(b.bytes(), &h).to_vec());
            chain.push(at);
            if h.seq == 0 {
                break;
            }
            want = Some(h.seq - 1);
            at = h.prev;
        }
        chain.reverse();
        payloads.reverse();
        Ok(ReadLog { chain, payloads })
    }

    /// Replay the message log `head`: the writer's log state and the run
    /// its messages make.
    pub(super) fn replay(&self, head: &Bptr) -> Result<(Log, Run)> {
        let rl = self.read_log(head)?;
        let run = Run::from_recs(rl.recs()?);
        let log = Log {
            head: rl.payloads.last().cloned().unwrap_or_default(),
            chain: rl.chain,
            unlogged: Vec::new(),
            stale: false,
            newest: HashMap::new(),
            dropped: Vec::new(),
            dropped_bytes: 0,
        };
        Ok((log, run))
    }

    /// Make tree `t`'s buffered messages durable in its log (see the module
    /// docs). On error nothing has changed but that some blocks were
    /// written and freed again.
    pub(super) fn write_log(&self, m: &mut Mutation, t: TreeId) -> Result<()> {
        let ts = m.tree(t)?;
        if !ts.log.pending() {
            return Ok(());
        }
        let log = &ts.log;
        let (keep, payloads) = if log.stale {
            let streams: Vec<&[u8]> = ts.wbuf.run_list().iter().map(|r| r.encoded()).collect();
            (0, pack(&[], &streams))
        } else {
            let keep = log.chain.len().saturating_sub(1);
            (keep, pack(&log.head, &[&log.records()]))
        };
        let kill: Vec<Bptr> = log.chain[keep..].to_vec();
        let wgen = ts.wgen;
        let mut prev = keep
            .checked_sub(1)
            .and_then(|i| log.chain.get(i))
            .copied()
            .unwrap_or(Bptr::NONE);
        let mut new = Vec::with_capacity(payloads.len());
        for (i, p) in payloads.iter().enumerate() {
            match self.log_block(wgen, (keep + i) as u64, prev, p) {
                Ok(bp) => {
                    new.push(bp);
                    prev = bp;
                }
                Err(e) => {
                    for bp in &new {
                        let _ = self.free_block(bp, wgen);
                    }
                    return Err(e);
                }
            }
        }
        let ctx = super::ctx::WriteCtx::new(self, ts.policy(), Tier::Reserve);
        for bp in &kill {
            // Errors are remembered by the context and reported by finish.
            let _ = ctx.free(bp);
        }
        let killed = ctx.finish()?;
        let ts = m.tree_mut(t)?;
        for bp in killed {
            ts.dead.entry(bp.gen.0).or_default().push(bp.addr);
        }
        ts.log.chain.truncate(keep);
        ts.log.chain.extend(new);
        ts.log.head = payloads.last().cloned().unwrap_or_default();
        ts.log.clear_unlogged();
        ts.log.stale = false;
        Ok(())
    }

    /// Write one message-log block.
    fn log_block(&self, wgen: Gen, seq: u64, prev: Bptr, p: &[u8]) -> Result<Bptr> {
        let (bp, _b, ()) = self.new_block(Kind::Meta, Tier::Reserve, wgen, |buf| {
            let h = LogHeader {
                kind: BlockType::Mlog,
                nbytes: p.len(),
                seq,
                prev,
            };
            h.encode(buf);
            let end = LOG_HDR + p.len();
            buf.get_mut(LOG_HDR..end)
                .ok_or_else(|| Error::Internal("message-log payload overflows".into()))?
                .copy_from_slice(p);
            buf[end..BLKSZ].fill(0);
            Ok(())
        })?;
        Ok(bp)
    }

    /// Write every tree's log (a commit's first step).
    pub(super) fn write_logs(&self, m: &mut Mutation) -> Result<()> {
        for i in 0..m.trees.len() {
            // A dirty tree's record is written with its log head, closed
            // or not; a deleted tree is closed and clean.
            if !m.trees[i].closed || m.trees[i].dirty {
                self.write_log(m, TreeId(i))?;
            }
        }
        Ok(())
    }
}
