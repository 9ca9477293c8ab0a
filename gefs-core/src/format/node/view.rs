//! [`NodeView`]: a checked, read-only view of a pivot or leaf block, its
//! records and messages, and the whole-node validation the store runs on
//! every node it loads.

use crate::error::CorruptKind::{self, BlockType as WrongType, Count, Key, KeyOrder, Truncated};

use super::super::codec::{get_u16, DecodeError, DecodeResult, Reader};
use super::super::msg::{self, Op};
use super::super::{BlockType, Bptr, BLKSZ, BUFSPC, KEYMAX, LEAFSPC, PIVSPC, PIVVALSZ, VALMAX};
use super::{hdr, BUF_AREA, KEY_AREA};

/// A read-only view of a pivot or leaf block.
#[derive(Clone, Copy)]
pub struct NodeView<'a> {
    pub(super) buf: &'a [u8],
    pub(super) leaf: bool,
    level: u16,
    pub(super) nval: usize,
    valsz: usize,
    pub(super) nbuf: usize,
    bufsz: usize,
}

impl std::fmt::Debug for NodeView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeView")
            .field("leaf", &self.leaf)
            .field("level", &self.level)
            .field("nval", &self.nval)
            .field("nbuf", &self.nbuf)
            .finish()
    }
}

fn bad(kind: CorruptKind, detail: impl Into<String>) -> DecodeError {
    DecodeError::new(kind, detail)
}

impl<'a> NodeView<'a> {
    /// Check the header of a full block and return a view of it.
    pub fn new(buf: &'a [u8]) -> DecodeResult<NodeView<'a>> {
        if buf.len() != BLKSZ {
            return Err(bad(Truncated, format!("node of {} bytes", buf.len())));
        }
        let g = |o| usize::from(get_u16(buf, o).unwrap_or(0));
        let leaf = match super::super::block_type(buf) {
            Some(BlockType::Leaf) => true,
            Some(BlockType::Pivot) => false,
            _ => return Err(bad(WrongType, "not a tree node")),
        };
        let level = get_u16(buf, hdr::LEVEL).unwrap_or(0);
        let (nval, valsz, nbuf, bufsz) = (g(hdr::NVAL), g(hdr::VALSZ), g(hdr::NBUF), g(hdr::BUFSZ));
        if leaf != (level == 0) {
            return Err(bad(
                CorruptKind::Level,
                format!("level {level} in a {}", if leaf { "leaf" } else { "pivot" }),
            ));
        }
        let (kspc, bspc) = if leaf { (LEAFSPC, 0) } else { (PIVSPC, BUFSPC) };
        if 2 * nval + valsz > kspc || 2 * nbuf + bufsz > bspc {
            return Err(bad(
                Count,
                format!(
                    "counts overflow the node (nval {nval} valsz {valsz} nbuf {nbuf} bufsz {bufsz})"
                ),
            ));
        }
        if !leaf && nval == 0 {
            return Err(bad(Count, "pivot without children"));
        }
        Ok(NodeView {
            buf,
            leaf,
            level,
            nval,
            valsz,
            nbuf,
            bufsz,
        })
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// Height above the leaves.
    pub fn level(&self) -> u16 {
        self.level
    }

    /// Records in the key area (values in a leaf, children in a pivot).
    pub fn nval(&self) -> usize {
        self.nval
    }

    /// Buffered messages.
    pub fn nbuf(&self) -> usize {
        self.nbuf
    }

    /// Bytes used in the key area, slots included.
    pub fn key_used(&self) -> usize {
        2 * self.nval + self.valsz
    }

    /// Bytes used in the buffer, slots included.
    pub fn buf_used(&self) -> usize {
        2 * self.nbuf + self.bufsz
    }

    /// The fill a parent records for this node.
    pub fn fill(&self) -> u16 {
        (self.key_used() + self.buf_used()) as u16
    }

    pub(super) fn area(&self, buffer: bool) -> &'a [u8] {
        let start = if buffer { BUF_AREA } else { KEY_AREA };
        let len = match (buffer, self.leaf) {
            (true, _) => BUFSPC,
            (false, true) => LEAFSPC,
            (false, false) => PIVSPC,
        };
        self.buf.get(start..start + len).unwrap_or(&[])
    }

    fn record(&self, buffer: bool, i: usize) -> DecodeResult<Reader<'a>> {
        let n = if buffer { self.nbuf } else { self.nval };
        if i >= n {
            return Err(bad(Count, format!("record {i} of {n}")));
        }
        let area = self.area(buffer);
        let off = usize::from(
            get_u16(area, 2 * i).ok_or_else(|| bad(Truncated, "offset table truncated"))?,
        );
        match area.get(off..) {
            Some(rec) if off >= 2 * n && !rec.is_empty() => Ok(Reader::new(rec)),
            _ => Err(bad(
                Truncated,
                format!("record {i} offset {off} out of range"),
            )),
        }
    }

    fn kv_at(&self, i: usize) -> DecodeResult<(&'a [u8], &'a [u8])> {
        let mut r = self.record(false, i)?;
        let over = |_| bad(Truncated, format!("record {i} overruns the node"));
        let kl = usize::from(r.u16().map_err(over)?);
        let k = r.bytes(kl).map_err(over)?;
        let vl = usize::from(r.u16().map_err(over)?);
        let v = r.bytes(vl).map_err(over)?;
        Ok((k, v))
    }

    /// Key `i` of the key area (its value is not parsed: a search probes
    /// only keys).
    pub fn key(&self, i: usize) -> DecodeResult<&'a [u8]> {
        let mut r = self.record(false, i)?;
        let over = |_| bad(Truncated, format!("record {i} overruns the node"));
        let kl = usize::from(r.u16().map_err(over)?);
        r.bytes(kl).map_err(over)
    }

    /// Key and value `i` of a leaf.
    pub fn kv(&self, i: usize) -> DecodeResult<(&'a [u8], &'a [u8])> {
        self.kv_at(i)
    }

    /// Separator, child pointer and recorded fill of child `i` of a pivot.
    pub fn child(&self, i: usize) -> DecodeResult<(&'a [u8], Bptr, u16)> {
        let (k, v) = self.kv_at(i)?;
        if v.len() != PIVVALSZ {
            return Err(bad(
                CorruptKind::Value,
                format!("child {i}: value of {} bytes", v.len()),
            ));
        }
        let mut r = Reader::new(v);
        let bp = Bptr::read(&mut r).map_err(|e| e.context("child pointer"))?;
        let fill = r.u16().map_err(|e| e.context("child fill"))?;
        Ok((k, bp, fill))
    }

    /// Message `j` of a pivot's buffer: op, key, argument.
    pub fn msg(&self, j: usize) -> DecodeResult<(Op, &'a [u8], &'a [u8])> {
        let mut r = self.record(true, j)?;
        let over = |_| bad(Truncated, format!("message {j} overruns the buffer"));
        let op = r.u8().map_err(over)?;
        let op = Op::from_code(op)
            .ok_or_else(|| bad(CorruptKind::Message, format!("message {j}: bad op {op}")))?;
        let kl = usize::from(r.u16().map_err(over)?);
        let k = r.bytes(kl).map_err(over)?;
        let vl = usize::from(r.u16().map_err(over)?);
        let v = r.bytes(vl).map_err(over)?;
        Ok((op, k, v))
    }

    /// Check every record: bounds, limits, strict key order, message order and
    /// validity, and (for pivots) that separator 0 is empty.
    pub fn validate(&self) -> DecodeResult<()> {
        let mut total = 0;
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.nval {
            let (k, v) = self.kv_at(i)?;
            total += super::super::KV_OVERHEAD + k.len() + v.len();
            if k.len() > KEYMAX || v.len() > VALMAX {
                return Err(bad(
                    Count,
                    format!("record {i} exceeds the key or value limit"),
                ));
            }
            if self.leaf && k.is_empty() {
                return Err(bad(Key, format!("record {i}: empty key")));
            }
            if !self.leaf {
                let (_, bp, _) = self.child(i)?;
                if bp.is_none() {
                    return Err(bad(
                        CorruptKind::Pointer,
                        format!("child {i}: null pointer"),
                    ));
                }
                if i == 0 && !k.is_empty() {
                    return Err(bad(Key, "first separator is not empty"));
                }
            }
            if let Some(p) = prev {
                if p >= k {
                    return Err(bad(KeyOrder, format!("keys out of order at record {i}")));
                }
            }
            prev = Some(k);
        }
        if total != self.valsz {
            return Err(bad(
                Count,
                format!("records hold {total} bytes, header says {}", self.valsz),
            ));
        }
        let mut total = 0;
        let mut prev: Option<&[u8]> = None;
        for j in 0..self.nbuf {
            let (op, k, v) = self.msg(j)?;
            total += super::super::MSG_OVERHEAD + k.len() + v.len();
            msg::check(op, k, v).map_err(|e| e.context(format_args!("message {j}")))?;
            if let Some(p) = prev {
                if p > k {
                    return Err(bad(KeyOrder, format!("messages out of order at {j}")));
                }
            }
            prev = Some(k);
        }
        if total != self.bufsz {
            return Err(bad(
                Count,
                format!("messages hold {total} bytes, header says {}", self.bufsz),
            ));
        }
        Ok(())
    }
}
