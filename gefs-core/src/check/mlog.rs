//! Message logs: each snapshot record's chain of message-log blocks (the
//! messages applied on top of its tree, FORMAT.md §5.6), checked block by
//! block and handed to the tree walk as the messages above its root.
//!
//! Every block is reached like any other (pointer, hash, allocation); its
//! header must say message log, with `seq` counting down to 0 from the
//! newest block, within [`MLOG_MAX_BLOCKS`]; every record must decode and
//! be a valid message whose key belongs in a file tree. Snapshots share
//! chain blocks as they share nodes, so a block reached by two trees is
//! shared, and twice by one tree is corruption. The messages, oldest
//! first, are the newest messages of the tree: the walk carries them down
//! from the root like a pivot's buffer (`apply.rs`), so the file-system
//! checks and the owned data blocks see the tree as a reader does.

use std::sync::Arc;

use crate::format::key::{KCLEAR, KCONF, KDAT, KENT, KUP};
use crate::format::{BlockType, MLOG_MAX_BLOCKS};
use crate::ids::BlockAddr;

use super::apply::{log_pends, Pend};
use super::report::{Kind, Role, TreeInfo};
use super::summary::{NodeSum, Sum};
use super::table::Use;
use super::walk::TreeSpec;
use super::Checker;

impl Checker<'_> {
    /// Follow tree `t`'s message log; its carried messages, oldest first.
    pub(super) fn msg_log(&mut self, t: &TreeSpec, info: &mut TreeInfo) -> Vec<Pend> {
        let role = Role::Mlog;
        let mut blocks: Vec<(BlockAddr, Arc<NodeSum>)> = Vec::new();
        let mut bp = t.log;
        let mut from = (t.root.addr, Role::Node);
        let mut want: Option<u64> = None;
        while !bp.is_none() {
            let Some(blk) = self.reach(&bp, Use::Mlog, role, t.owner, &t.name, Some(from)) else {
                info.damaged = true;
                break;
            };
            let c = match self.table.sums.get(&blk) {
                Some(Sum::Chain(c)) if c.hdr.kind == BlockType::Mlog => c.clone(),
                _ => {
                    let what = "not a message-log block".to_string();
                    self.problem(Kind::Structure, bp.addr, role, &t.name, what);
                    info.damaged = true;
                    break;
                }
            };
            self.stats.mlog_blocks += 1;
            info.log_blocks += 1;
            let seq = c.hdr.seq;
            if want.is_some_and(|w| w != seq) || seq >= MLOG_MAX_BLOCKS {
                let what = format!("sequence {seq} where {want:?} belongs");
                self.problem(Kind::Structure, bp.addr, role, &t.name, what);
                info.damaged = true;
                break;
            }
            match (&c.defect, &c.msgs) {
                (None, Some(n)) => {
                    self.log_contents(t, bp.addr, n);
                    blocks.push((bp.addr, n.clone()));
                }
                (defect, _) => {
                    let what = defect.clone().unwrap_or_else(|| "no messages".into());
                    self.problem(Kind::Structure, bp.addr, role, &t.name, what);
                    info.damaged = true;
                }
            }
            if seq == 0 {
                break;
            }
            want = Some(seq - 1);
            from = (bp.addr, role);
            bp = c.hdr.prev;
        }
        blocks.reverse();
        let mut out = Vec::new();
        for (addr, n) in &blocks {
            info.log_msgs += n.recs.len() as u64;
            out.extend(log_pends(n, *addr));
        }
        out
    }

    /// Families and value defects of one block's messages.
    fn log_contents(&mut self, t: &TreeSpec, addr: BlockAddr, n: &NodeSum) {
        let allowed = [KDAT, KENT, KUP, KCONF, KCLEAR]
            .iter()
            .fold(0u16, |m, f| m | 1 << f);
        if n.families & !allowed != 0 {
            let what = format!(
                "holds messages of key families {:#06x} that do not belong in a file tree",
                n.families & !allowed
            );
            self.problem(Kind::Value, addr, Role::Mlog, &t.name, what);
        }
        for d in &n.defects {
            self.problem(Kind::Value, addr, Role::Mlog, &t.name, d.clone());
        }
    }
}
