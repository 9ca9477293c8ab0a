//! An arena's allocation log: building its blocks and replaying them.
//!
//! The log is a chain of log blocks running backwards from the tail, which the
//! superblock's arena record points to with a full hashed pointer; each block
//! points to its predecessor the same way. So the whole log is verified like a
//! tree: a stale, torn or misdirected log block fails its hash (F3).
//!
//! The open tail is never rewritten in place: each commit that changes the
//! arena writes the tail's contents to a newly allocated block (recording
//! that allocation, and the release of the previous copy, in the tail
//! itself). A crash therefore always finds the log of the last durable
//! commit intact. Replay starts from "everything allocated" and applies the
//! entries in order; the result must end in a commit barrier, and every block
//! of the chain must come out allocated.

use crate::device::{Device, DeviceExt};
use crate::error::{Error, Result};
use crate::format::log::{decode_entries, payload, LogEntry, LogHeader};
use crate::format::superblock::{ArenaRec, Geometry};
use crate::format::{block_hash, BlockType, Bptr, BLKSZ, BLKSZ_U64, LOGSPC, LOG_HDR};
use crate::ids::{BlockAddr, Gen};
use crate::CorruptKind;

use super::freemap::FreeMap;

/// Room kept free in an open log block so that sealing it can always record
/// the sealed block's own allocation.
pub(crate) const SEAL_SLACK: usize = 8;

/// Build a log block image.
pub(crate) fn build_block(seq: u64, prev: Bptr, payload: &[u8]) -> Box<[u8; BLKSZ]> {
    let mut b = Box::new([0u8; BLKSZ]);
    let n = payload.len().min(LOGSPC);
    LogHeader {
        kind: BlockType::Log,
        nbytes: n,
        seq,
        prev,
    }
    .encode(&mut b);
    b[LOG_HDR..LOG_HDR + n].copy_from_slice(&payload[..n]);
    b
}

/// The in-memory state of an arena's log.
#[derive(Debug, Clone)]
pub(crate) struct OpenLog {
    /// Sequence number of the open tail.
    pub(crate) seq: u64,
    /// The last sealed block (none when the tail is the first block).
    pub(crate) prev: Bptr,
    /// Entries of the open tail.
    pub(crate) payload: Vec<u8>,
    /// Where the last durable copy of the open tail is.
    pub(crate) disk: Option<BlockAddr>,
    /// Sealed blocks, oldest first.
    pub(crate) sealed: Vec<Bptr>,
}

impl OpenLog {
    /// Blocks in the chain, the open tail included.
    pub(crate) fn nblocks(&self) -> u64 {
        self.sealed.len() as u64 + 1
    }

    /// Whether `n` more bytes fit in the open tail with room left to seal.
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.payload.len() + n + SEAL_SLACK <= LOGSPC
    }

    /// Append an entry (the caller checked it fits).
    pub(crate) fn push(&mut self, e: &LogEntry) {
        e.encode(&mut self.payload);
    }

    /// Seal the open tail at `addr` (whose allocation the caller has already
    /// pushed), returning the block to write; the next tail starts empty.
    pub(crate) fn seal(&mut self, addr: BlockAddr, gen: Gen) -> Box<[u8; BLKSZ]> {
        let b = build_block(self.seq, self.prev, &self.payload);
        let bp = Bptr {
            addr,
            hash: block_hash(&b[..]),
            gen,
        };
        self.sealed.push(bp);
        self.prev = bp;
        self.seq += 1;
        self.payload.clear();
        b
    }
}

/// What replaying an arena's log found.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The free blocks as of the commit.
    pub free: FreeMap,
    /// Every block of the chain, oldest first (the tail last).
    pub chain: Vec<Bptr>,
    /// Entries replayed.
    pub entries: u64,
    /// Commit barriers seen, in order.
    pub syncs: Vec<u64>,
    pub(crate) open: OpenLog,
}

fn read_log_block(dev: &dyn Device, bp: &Bptr) -> Result<Box<[u8; BLKSZ]>> {
    let mut b = Box::new([0u8; BLKSZ]);
    dev.read_block(bp, &mut b)?;
    Ok(b)
}

/// Replay the log of arena `index` as recorded in `rec`, verifying every
/// block, every entry and the final state.
pub fn replay(dev: &dyn Device, geo: &Geometry, index: u32, rec: &ArenaRec) -> Result<Replayed> {
    let lo = geo.arena_base(index) / BLKSZ_U64;
    let hi = lo + geo.arena_blocks();
    let within =
        |bp: &Bptr| geo.arena_of(bp.addr) == Some(index) && bp.addr.0.is_multiple_of(BLKSZ_U64);
    if rec.log_blocks == 0 || rec.log_blocks > geo.arena_blocks() {
        return Err(Error::corrupt(
            rec.log_tail.addr,
            CorruptKind::Count,
            format!("arena {index}: log of {} blocks", rec.log_blocks),
        ));
    }
    // Walk back from the tail, verifying each block against its pointer.
    let mut blocks = Vec::new();
    let mut ptr = rec.log_tail;
    let mut want_seq = rec.log_blocks - 1;
    loop {
        if !within(&ptr) {
            return Err(Error::corrupt(
                ptr.addr,
                CorruptKind::Pointer,
                format!("arena {index}: log block outside the arena"),
            ));
        }
        let b = read_log_block(dev, &ptr)?;
        let h = LogHeader::decode(&b[..]).map_err(|e| e.at(ptr.addr))?;
        if h.kind != BlockType::Log || h.seq != want_seq {
            return Err(Error::corrupt(
                ptr.addr,
                CorruptKind::Chain,
                format!("log block has sequence {} (expected {want_seq})", h.seq),
            ));
        }
        blocks.push((ptr, h, b));
        if h.seq == 0 {
            break;
        }
        ptr = h.prev;
        want_seq -= 1;
    }
    blocks.reverse();
    let mut free = FreeMap::new();
    let mut entries = 0;
    let mut syncs = Vec::new();
    let mut last = None;
    for (bp, h, b) in &blocks {
        let es = decode_entries(payload(&b[..], h)).map_err(|e| e.at(bp.addr))?;
        for e in es {
            entries += 1;
            last = Some(e);
            let (start, len, is_free) = match e {
                LogEntry::Sync { gen } => {
                    if syncs.last().is_some_and(|&g| g > gen) {
                        return Err(Error::corrupt(
                            bp.addr,
                            CorruptKind::Chain,
                            format!("barrier {gen} after a later one"),
                        ));
                    }
                    syncs.push(gen);
                    continue;
                }
                LogEntry::Alloc { addr, len } => (addr / BLKSZ_U64, len / BLKSZ_U64, false),
                LogEntry::Free { addr, len } => (addr / BLKSZ_U64, len / BLKSZ_U64, true),
            };
            if start < lo || start.saturating_add(len) > hi {
                return Err(Error::corrupt(
                    bp.addr,
                    CorruptKind::Pointer,
                    format!("entry {e:?} outside arena {index}"),
                ));
            }
            let r = if is_free {
                free.insert(start, len)
            } else {
                free.remove(start, len)
            };
            r.map_err(|c| {
                let what = if is_free {
                    "freed while free"
                } else {
                    "allocated while not free"
                };
                Error::corrupt(
                    bp.addr,
                    CorruptKind::Accounting,
                    format!("blocks {:#x}+{} {what}", c.start * BLKSZ_U64, c.len),
                )
            })?;
        }
    }
    let (tail_bp, tail_h, tail_b) = match blocks.last() {
        Some(t) => t,
        None => {
            return Err(Error::corrupt(
                rec.log_tail.addr,
                CorruptKind::Chain,
                "empty log",
            ))
        }
    };
    if !matches!(last, Some(LogEntry::Sync { .. })) {
        return Err(Error::corrupt(
            tail_bp.addr,
            CorruptKind::Chain,
            "log does not end with a commit barrier",
        ));
    }
    for (bp, _, _) in &blocks {
        if free.contains(bp.addr.index()) {
            return Err(Error::corrupt(
                bp.addr,
                CorruptKind::Accounting,
                "log block is marked free by its own log",
            ));
        }
    }
    if free.blocks() != rec.free_blocks {
        return Err(Error::corrupt(
            tail_bp.addr,
            CorruptKind::Accounting,
            format!(
                "arena {index}: log leaves {} blocks free, superblock says {}",
                free.blocks(),
                rec.free_blocks
            ),
        ));
    }
    let chain: Vec<Bptr> = blocks.iter().map(|(bp, _, _)| *bp).collect();
    let open = OpenLog {
        seq: tail_h.seq,
        prev: tail_h.prev,
        payload: payload(&tail_b[..], tail_h).to_vec(),
        disk: Some(tail_bp.addr),
        sealed: chain[..chain.len() - 1].to_vec(),
    };
    Ok(Replayed {
        free,
        chain,
        entries,
        syncs,
        open,
    })
}
