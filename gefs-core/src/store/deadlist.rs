//! Writing deadlists: the blocks a tree stopped using that an older
//! snapshot still holds.
//!
//! A block killed by a tree whose birth generation is at or before the
//! tree's newest snapshot (`pred`) cannot be freed: that snapshot uses it.
//! Such blocks collect in memory per birth generation and, at the commit,
//! are written as *segments*: chains of deadlist blocks (each hashed by the
//! pointer to it) under `KDLIST(owner, birth, seq)`, where `owner` is the
//! snapshot record of the tree that killed them. Reading, re-keying and
//! freeing segments is the snapshot layer's (`crate::snap::deadlist`); the
//! store only ever appends new ones.

use super::{Mutation, Store, TreeId};
use crate::alloc::{Kind, Tier};
use crate::error::Result;
use crate::format::key;
use crate::format::log::LogHeader;
use crate::format::msg::Msg;
use crate::format::value::DlistVal;
use crate::format::Encode;
use crate::format::{BlockType, Bptr, LOGSPC};
use crate::ids::{BlockAddr, Gen};

/// Addresses per deadlist block.
const PER_BLOCK: usize = LOGSPC / 8;

impl Store {
    /// Write the deadlist blocks for `addrs` and return the segment's value.
    pub(crate) fn write_segment(&self, wgen: Gen, addrs: &[BlockAddr]) -> Result<DlistVal> {
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
}
