//! Log, deadlist and message-log blocks: a header with a back pointer, then
//! 8-byte entries (allocation logs, deadlists) or messages (message logs,
//! `mlog.rs`).
//!
//! ```text
//! 0  type u16        3 = allocation log, 4 = deadlist, 5 = message log
//! 2  nbytes u16      payload bytes in use (a multiple of 8, but for message logs)
//! 4  flags u32       0
//! 8  seq u64         position in the chain (the oldest block is 0)
//! 16 prev Bptr[24]   the previous (older) block, with its hash; none for seq 0
//! 40 payload
//! ```
//!
//! Chains run backwards from the newest block, which the superblock (for
//! allocation logs) or a deadlist key points to with a full `Bptr`. Every link
//! therefore carries the hash of the block it leads to, so a stale, torn or
//! misdirected log block is detected like any other block.
//!
//! Allocation-log entries keep the op in the low byte of an 8-byte word (block
//! addresses are multiples of 16 KiB): `addr|1` alloc one block, `addr|2` free
//! one block, `gen<<8|3` commit barrier, `addr|4 len` alloc a range, `addr|5
//! len` free a range. Deadlist entries are bare block addresses.
//!
//! The header's offsets are [`hdr`]'s constants, which encoder and decoder
//! share. Decoders answer [`DecodeResult`]; the caller names the block.

use super::codec::{
    get_u16, get_u32, get_u64, set_u16, set_u32, set_u64, DecodeError, DecodeResult, Reader,
};
use super::{BlockType, Bptr, BLKSZ, BLKSZ_U64, LOGSPC, LOG_HDR, PTRSZ};
use crate::error::CorruptKind;

/// Offsets of the log header's fields, each the previous one plus its size.
pub mod hdr {
    /// Block type, u16.
    pub const TYPE: usize = 0;
    /// Payload bytes in use, u16.
    pub const NBYTES: usize = TYPE + 2;
    /// Flags, u32, zero.
    pub const FLAGS: usize = NBYTES + 2;
    /// Position in the chain, u64.
    pub const SEQ: usize = FLAGS + 4;
    /// The previous block, a `Bptr`.
    pub const PREV: usize = SEQ + 8;
}

const _: () = assert!(hdr::PREV + PTRSZ == LOG_HDR);

const OP_ALLOC1: u64 = 1;
const OP_FREE1: u64 = 2;
const OP_SYNC: u64 = 3;
const OP_ALLOC: u64 = 4;
const OP_FREE: u64 = 5;

/// One allocation-log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEntry {
    /// `len` bytes from `addr` became allocated.
    Alloc {
        /// First byte.
        addr: u64,
        /// Bytes (a multiple of the block size).
        len: u64,
    },
    /// `len` bytes from `addr` became free.
    Free {
        /// First byte.
        addr: u64,
        /// Bytes (a multiple of the block size).
        len: u64,
    },
    /// The commit with this sequence number ends here.
    Sync {
        /// The superblock's `commit_gen` of that commit.
        gen: u64,
    },
}

impl LogEntry {
    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        match self {
            LogEntry::Alloc { len, .. } | LogEntry::Free { len, .. } if *len == BLKSZ_U64 => 8,
            LogEntry::Sync { .. } => 8,
            _ => 16,
        }
    }

    /// Append the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (w0, w1) = match *self {
            LogEntry::Alloc { addr, len } if len == BLKSZ_U64 => (addr | OP_ALLOC1, None),
            LogEntry::Free { addr, len } if len == BLKSZ_U64 => (addr | OP_FREE1, None),
            LogEntry::Alloc { addr, len } => (addr | OP_ALLOC, Some(len)),
            LogEntry::Free { addr, len } => (addr | OP_FREE, Some(len)),
            LogEntry::Sync { gen } => ((gen << 8) | OP_SYNC, None),
        };
        out.extend_from_slice(&w0.to_be_bytes());
        if let Some(w) = w1 {
            out.extend_from_slice(&w.to_be_bytes());
        }
    }
}

/// Decode the entries of an allocation-log payload.
pub fn decode_entries(payload: &[u8]) -> DecodeResult<Vec<LogEntry>> {
    let mut r = Reader::new(payload);
    let mut out = Vec::with_capacity(payload.len() / 8);
    while r.remaining() > 0 {
        let at = r.pos();
        let w = r
            .u64()
            .map_err(|e| e.context(format_args!("entry at {at}")))?;
        let op = w & 0xff;
        let addr = w & !(BLKSZ_U64 - 1);
        let aligned = w & (BLKSZ_U64 - 1) & !0xff == 0;
        let e = match op {
            OP_SYNC => LogEntry::Sync { gen: w >> 8 },
            OP_ALLOC1 | OP_FREE1 if aligned => {
                if op == OP_ALLOC1 {
                    LogEntry::Alloc {
                        addr,
                        len: BLKSZ_U64,
                    }
                } else {
                    LogEntry::Free {
                        addr,
                        len: BLKSZ_U64,
                    }
                }
            }
            OP_ALLOC | OP_FREE if aligned => {
                let len = r
                    .u64()
                    .map_err(|e| e.context(format_args!("entry at {at}")))?;
                if len == 0 || len % BLKSZ_U64 != 0 || addr.checked_add(len).is_none() {
                    return Err(DecodeError::new(
                        CorruptKind::Accounting,
                        format!("entry at {at}: bad length {len:#x}"),
                    ));
                }
                if op == OP_ALLOC {
                    LogEntry::Alloc { addr, len }
                } else {
                    LogEntry::Free { addr, len }
                }
            }
            _ => {
                return Err(DecodeError::new(
                    CorruptKind::Accounting,
                    format!("entry at {at}: bad word {w:#018x}"),
                ))
            }
        };
        out.push(e);
    }
    Ok(out)
}

/// The decoded header of a log, deadlist or message-log block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// Log or deadlist.
    pub kind: BlockType,
    /// Payload bytes in use.
    pub nbytes: usize,
    /// Position in the chain.
    pub seq: u64,
    /// The previous (older) block.
    pub prev: Bptr,
}

impl LogHeader {
    /// Parse and validate the header of a (hash-verified) block.
    pub fn decode(buf: &[u8]) -> DecodeResult<LogHeader> {
        let kind = match super::block_type(buf) {
            Some(t @ (BlockType::Log | BlockType::Dlist | BlockType::Mlog)) => t,
            _ => {
                return Err(DecodeError::new(
                    CorruptKind::BlockType,
                    "not a log, deadlist or message-log block",
                ))
            }
        };
        let nbytes = usize::from(get_u16(buf, hdr::NBYTES).ok_or_else(DecodeError::truncated)?);
        if nbytes > LOGSPC || (kind != BlockType::Mlog && nbytes % 8 != 0) {
            return Err(DecodeError::new(
                CorruptKind::Count,
                format!("bad payload size {nbytes}"),
            ));
        }
        if get_u32(buf, hdr::FLAGS) != Some(0) {
            return Err(DecodeError::new(CorruptKind::Header, "unknown flags"));
        }
        let seq = get_u64(buf, hdr::SEQ).ok_or_else(DecodeError::truncated)?;
        let prev = Bptr::from_slice(buf.get(hdr::PREV..).unwrap_or_default())?;
        if (seq == 0) != prev.is_none() {
            return Err(DecodeError::new(
                CorruptKind::Chain,
                format!("sequence {seq} disagrees with back pointer {prev}"),
            ));
        }
        Ok(LogHeader {
            kind,
            nbytes,
            seq,
            prev,
        })
    }

    /// Write this header into the first [`LOG_HDR`] bytes of `buf`.
    pub fn encode(&self, buf: &mut [u8; BLKSZ]) {
        set_u16(buf, hdr::TYPE, self.kind.tag());
        set_u16(buf, hdr::NBYTES, self.nbytes as u16);
        set_u32(buf, hdr::FLAGS, 0);
        set_u64(buf, hdr::SEQ, self.seq);
        if let Some(prev) = buf.get_mut(hdr::PREV..LOG_HDR) {
            prev.copy_from_slice(&self.prev.to_bytes());
        }
    }
}

/// The payload of a block whose header is `h`.
pub fn payload<'a>(buf: &'a [u8], h: &LogHeader) -> &'a [u8] {
    buf.get(LOG_HDR..LOG_HDR + h.nbytes).unwrap_or(&[])
}

/// Decode the addresses in a deadlist payload.
pub fn decode_addrs(payload: &[u8]) -> DecodeResult<Vec<u64>> {
    let mut r = Reader::new(payload);
    let mut out = Vec::with_capacity(payload.len() / 8);
    while r.remaining() > 0 {
        let a = r.u64()?;
        if a % BLKSZ_U64 != 0 {
            return Err(DecodeError::new(
                CorruptKind::Pointer,
                format!("unaligned address {a:#x}"),
            ));
        }
        out.push(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BlockAddr, Gen};

    #[test]
    fn entries_round_trip() {
        let es = [
            LogEntry::Alloc {
                addr: 0x4000,
                len: BLKSZ_U64,
            },
            LogEntry::Free {
                addr: 0x8000,
                len: 3 * BLKSZ_U64,
            },
            LogEntry::Sync { gen: 42 },
            LogEntry::Alloc {
                addr: 0xc000,
                len: 2 * BLKSZ_U64,
            },
            LogEntry::Free {
                addr: 0x10000,
                len: BLKSZ_U64,
            },
        ];
        let mut v = Vec::new();
        for e in &es {
            e.encode(&mut v);
        }
        assert_eq!(v.len(), es.iter().map(LogEntry::size).sum::<usize>());
        assert_eq!(decode_entries(&v).unwrap(), es);
        assert!(decode_entries(&[0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        assert!(decode_entries(&[0, 0, 0, 0, 0, 0, 0x40, 4]).is_err());
        assert!(decode_entries(&[0, 0, 0, 0, 0, 0, 0x41, 1]).is_err());
    }

    #[test]
    fn header_round_trip() {
        let mut b = Box::new([0u8; BLKSZ]);
        let h = LogHeader {
            kind: BlockType::Log,
            nbytes: 16,
            seq: 2,
            prev: Bptr {
                addr: BlockAddr(0x4000),
                hash: 7,
                gen: Gen(1),
            },
        };
        h.encode(&mut b);
        assert_eq!(LogHeader::decode(&b[..]), Ok(h));
        set_u16(&mut b[..], hdr::NBYTES, 12);
        assert!(LogHeader::decode(&b[..]).is_err());
    }
}
