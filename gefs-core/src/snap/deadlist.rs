//! Deadlists as the snapshot layer uses them: listing a snapshot's
//! segments, reading them, and freeing them when a snapshot is deleted.
//!
//! A list `(owner, birth)` may have many segments (written at commits by
//! the store, `store/deadlist.rs`); merging lists re-keys segments and
//! never rewrites a block (the reference rewrites a tail in place, outside
//! the commit protocol, and loses links, §13.2 #11).
//!
//! A segment is freed (its blocks and its own chain) when snapshot deletion
//! proves nobody else holds its blocks, or dropped (only its chain freed)
//! when its blocks are still live elsewhere.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::format::key::{self, KeyView};
use crate::format::log::{decode_addrs, payload, LogHeader};
use crate::format::msg::Msg;
use crate::format::value::DlistVal;
use crate::format::{BlockType, Bptr, BLKSZ_U64};
use crate::format::{Decode, Encode};
use crate::ids::BlockAddr;
use crate::store::TreeId;
use crate::CorruptKind;

use super::Snaps;

/// One deadlist segment as stored in the snapshot tree.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The snapshot record that owns it.
    pub owner: u64,
    /// Birth generation of its blocks.
    pub birth: u64,
    /// Segment number.
    pub seq: u64,
    /// Head and tail of its chain.
    pub val: DlistVal,
}

impl Segment {
    pub(crate) fn key(&self) -> Vec<u8> {
        key::dlist(self.owner, self.birth, self.seq)
    }

    /// The messages that move this segment to record `owner`: re-keyed,
    /// its blocks untouched.
    pub(crate) fn rekey(&self, owner: u64) -> [Msg; 2] {
        [
            Msg::delete(self.key()),
            Msg::insert(key::dlist(owner, self.birth, self.seq), self.val.encode()),
        ]
    }
}

impl Snaps<'_> {
    /// Every deadlist segment owned by snapshot `owner`.
    pub fn segments(&self, owner: u64) -> Result<Vec<Segment>> {
        let lo = key::dlist_prefix(owner);
        let hi = key::prefix_end(&lo);
        let mut out = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let from = match &last {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Included(&lo[..]),
            };
            let to = hi.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let batch = self.s.scan(TreeId::SNAP, from, to, 512)?;
            if batch.is_empty() {
                return Ok(out);
            }
            for (k, v) in &batch {
                let (Ok(KeyView::Dlist { owner, birth, seq }), Ok(val)) =
                    (KeyView::decode(k), DlistVal::decode(v))
                else {
                    return Err(self.s.snap_corrupt("deadlist segment"));
                };
                out.push(Segment {
                    owner,
                    birth,
                    seq,
                    val,
                });
            }
            last = batch.last().map(|(k, _)| k.clone());
        }
    }

    /// The addresses a segment lists, and its own chain (each block verified).
    pub fn read_segment(&self, seg: &Segment) -> Result<(Vec<BlockAddr>, Vec<Bptr>)> {
        self.segment(seg, false)
    }

    /// [`Snaps::read_segment`], by a reader or (`writer`) by the writer,
    /// which makes room in the cache itself (`io.rs`).
    fn segment(&self, seg: &Segment, writer: bool) -> Result<(Vec<BlockAddr>, Vec<Bptr>)> {
        let mut addrs = Vec::new();
        let mut chain: Vec<Bptr> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut at = seg.val.head;
        // A chain is at most as long as the image has blocks, and visits
        // each block once; its sequence numbers count down to 0 at the tail.
        let mut want: Option<u64> = None;
        while !at.is_none() {
            if !seen.insert(at.addr) || chain.len() as u64 >= self.s.geometry().dev_size / BLKSZ_U64
            {
                return Err(Error::corrupt(
                    at.addr,
                    CorruptKind::Chain,
                    "deadlist chain does not end",
                ));
            }
            let b = if writer {
                self.s.read_block_writer(&at, false)?
            } else {
                self.s.read_block(&at, false)?
            };
            let h = LogHeader::decode(b.bytes()).map_err(|e| e.at(at.addr))?;
            if h.kind != BlockType::Dlist {
                return Err(Error::corrupt(
                    at.addr,
                    CorruptKind::BlockType,
                    "not a deadlist block",
                ));
            }
            if want.is_some_and(|w| w != h.seq) {
                return Err(Error::corrupt(
                    at.addr,
                    CorruptKind::Chain,
                    "deadlist chain out of sequence",
                ));
            }
            want = h.seq.checked_sub(1);
            let a = decode_addrs(payload(b.bytes(), &h)).map_err(|e| e.at(at.addr))?;
            addrs.extend(a.into_iter().map(BlockAddr));
            chain.push(at);
            at = h.prev;
        }
        Ok((addrs, chain))
    }

    /// Free a segment: the blocks it lists and its own chain. Returns the
    /// message deleting its key.
    pub(crate) fn free_segment(&self, seg: &Segment) -> Result<Msg> {
        let (addrs, chain) = self.segment(seg, true)?;
        for a in addrs {
            self.s.release_block(a)?;
        }
        self.drop_chain(&chain)?;
        Ok(Msg::delete(seg.key()))
    }

    /// Drop a segment whose blocks are still used elsewhere: only its chain
    /// is freed.
    pub(crate) fn drop_segment(&self, seg: &Segment) -> Result<Msg> {
        let (_, chain) = self.segment(seg, true)?;
        self.drop_chain(&chain)?;
        Ok(Msg::delete(seg.key()))
    }

    fn drop_chain(&self, chain: &[Bptr]) -> Result<()> {
        for bp in chain {
            self.s.release_block(bp.addr)?;
        }
        Ok(())
    }
}
