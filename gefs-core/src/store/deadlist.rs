//! Deadlists: the blocks a tree stopped using that an older snapshot still
//! holds.
//!
//! A block killed by a tree whose birth generation is at or before the
//! tree's newest snapshot (`pred`) cannot be freed: that snapshot uses it.
//! Such blocks collect in memory per birth generation and, at the commit,
//! are written as *segments*: chains of deadlist blocks (each hashed by the
//! pointer to it) under `KDLIST(owner, birth, seq)`, where `owner` is the
//! snapshot record of the tree that killed them. A list `(owner, birth)`
//! may have many segments; merging lists re-keys segments and never
//! rewrites a block (the reference rewrites a tail in place, outside the
//! commit protocol, and loses links, §13.2 #11).
//!
//! A segment is freed (its blocks and its own chain) when snapshot deletion
//! proves nobody else holds its blocks, or dropped (only its chain freed)
//! when its blocks are still live elsewhere.

use std::ops::Bound;

use super::{Mutation, Store, TreeId};
use crate::alloc::{Kind, Tier};
use crate::error::{Error, Result};
use crate::format::key::{self, KeyView};
use crate::format::log::{decode_addrs, payload, LogHeader};
use crate::format::msg::Msg;
use crate::format::value::DlistVal;
use crate::format::{BlockType, Bptr, BLKSZ_U64, LOGSPC};
use crate::ids::{BlockAddr, Gen};

/// Addresses per deadlist block.
const PER_BLOCK: usize = LOGSPC / 8;

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
}

impl Store {
    /// Write the deadlist blocks for `addrs` and return the segment's value.
    pub(super) fn write_segment(&self, wgen: Gen, addrs: &[BlockAddr]) -> Result<DlistVal> {
        let mut prev = Bptr::NONE;
        let mut tail = Bptr::NONE;
        for (i, chunk) in addrs.chunks(PER_BLOCK).enumerate() {
            let (bp, _b, ()) = self.new_zeroed(Kind::Meta, Tier::Reserve, wgen, |buf| {
                let h = LogHeader {
                    kind: BlockType::Dlist,
                    nbytes: chunk.len() * 8,
                    seq: i as u64,
                    prev,
                };
                h.encode(buf);
                for (j, a) in chunk.iter().enumerate() {
                    let at = crate::format::LOG_HDR + 8 * j;
                    buf[at..at + 8].copy_from_slice(&a.0.to_be_bytes());
                }
                Ok(())
            })?;
            if i == 0 {
                tail = bp;
            }
            prev = bp;
        }
        Ok(DlistVal { head: prev, tail })
    }

    /// Messages recording every tree's killed blocks as new segments.
    pub(super) fn flush_deadlists(&self, m: &mut Mutation) -> Result<Vec<Msg>> {
        let snap_wgen = m.tree(TreeId::SNAP)?.wgen;
        let mut lists = Vec::new();
        for t in m.trees.iter_mut().skip(1) {
            let owner = t.rec.gen;
            for (birth, addrs) in std::mem::take(&mut t.dead) {
                lists.push((owner, birth, addrs));
            }
        }
        let mut msgs = Vec::with_capacity(lists.len());
        for (owner, birth, addrs) in lists {
            let val = self.write_segment(snap_wgen, &addrs)?;
            let seq = m.take_gen().0;
            msgs.push(Msg::insert(key::dlist(owner, birth, seq), val.encode()));
        }
        Ok(msgs)
    }

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
            let batch = self.scan(TreeId::SNAP, from, to, 512)?;
            if batch.is_empty() {
                return Ok(out);
            }
            for (k, v) in &batch {
                let (KeyView::Dlist { owner, birth, seq }, Ok(val)) =
                    (KeyView::parse(k), DlistVal::decode(v))
                else {
                    return Err(self.snap_corrupt("deadlist segment"));
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

    /// [`Store::read_segment`], by a reader or (`writer`) by the writer,
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
            if !seen.insert(at.addr) || chain.len() as u64 >= self.geo.dev_size / BLKSZ_U64 {
                return Err(Error::corrupt(at.addr, "deadlist chain does not end"));
            }
            let b = if writer {
                self.read_block_writer(&at, false)?
            } else {
                self.read_block(&at, false)?
            };
            let h = LogHeader::decode(b.bytes()).map_err(|e| Error::corrupt(at.addr, e))?;
            if h.kind != BlockType::Dlist {
                return Err(Error::corrupt(at.addr, "not a deadlist block"));
            }
            if want.is_some_and(|w| w != h.seq) {
                return Err(Error::corrupt(at.addr, "deadlist chain out of sequence"));
            }
            want = h.seq.checked_sub(1);
            let a = decode_addrs(payload(b.bytes(), &h)).map_err(|e| Error::corrupt(at.addr, e))?;
            addrs.extend(a.into_iter().map(BlockAddr));
            chain.push(at);
            at = h.prev;
        }
        Ok((addrs, chain))
    }

    /// Release one block nobody references any more, whatever its age.
    pub(crate) fn release_block(&self, addr: BlockAddr) -> Result<()> {
        self.free_block(
            &Bptr {
                addr,
                hash: 0,
                gen: Gen(0),
            },
            Gen(u64::MAX),
        )
    }

    /// Free a segment: the blocks it lists and its own chain. Returns the
    /// message deleting its key.
    pub(crate) fn free_segment(&self, seg: &Segment) -> Result<Msg> {
        let (addrs, chain) = self.segment(seg, true)?;
        for a in addrs {
            self.release_block(a)?;
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
            self.release_block(bp.addr)?;
        }
        Ok(())
    }

    pub(crate) fn snap_corrupt(&self, what: &str) -> Error {
        let addr = self
            .root(TreeId::SNAP)
            .map_or(BlockAddr::NONE, |r| r.bp.addr);
        Error::corrupt(addr, format!("snapshot tree: malformed {what}"))
    }
}
