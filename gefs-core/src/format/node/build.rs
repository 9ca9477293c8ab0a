//! Building nodes: [`LeafBuilder`] and [`PivotBuilder`] append records in
//! key order to a block buffer and define every byte of it on `finish`.

use super::super::codec::{set_u16, set_u32};
use super::super::msg::Op;
use super::super::{BlockType, Bptr, BLKSZ, BUFSPC, KEYMAX, LEAFSPC, PIVSPC, PIVVALSZ, VALMAX};
use super::{child_size, hdr, kv_size, msg_size, BUF_AREA, KEY_AREA};

fn write_header(buf: &mut [u8; BLKSZ], leaf: bool, level: u16, counts: [usize; 4]) {
    let t = if leaf {
        BlockType::Leaf
    } else {
        BlockType::Pivot
    };
    let [nval, valsz, nbuf, bufsz] = counts;
    set_u16(buf, hdr::TYPE, t.tag());
    set_u16(buf, hdr::LEVEL, level);
    set_u16(buf, hdr::NVAL, nval as u16);
    set_u16(buf, hdr::VALSZ, valsz as u16);
    set_u16(buf, hdr::NBUF, nbuf as u16);
    set_u16(buf, hdr::BUFSZ, bufsz as u16);
    set_u32(buf, hdr::RESERVED, 0);
}

/// Appends records to one area of a node being built.
struct Area {
    start: usize,
    len: usize,
    n: usize,
    sz: usize,
}

impl Area {
    fn free(&self) -> usize {
        self.len - 2 * self.n - self.sz
    }

    /// Zero the bytes between the offset table and the records: a builder
    /// works in a buffer that may hold stale bytes, and defines every one.
    fn zero_gap(&self, buf: &mut [u8; BLKSZ]) {
        let from = self.start + 2 * self.n;
        let to = self.start + self.len - self.sz;
        if let Some(gap) = buf.get_mut(from..to) {
            gap.fill(0);
        }
    }

    /// Append a record made of `parts`; the caller has checked it fits
    /// (so every write below lands inside the block).
    fn push(&mut self, buf: &mut [u8; BLKSZ], parts: &[&[u8]]) {
        let rlen: usize = parts.iter().map(|p| p.len()).sum();
        self.sz += rlen;
        let off = self.len - self.sz;
        set_u16(buf, self.start + 2 * self.n, off as u16);
        let mut at = self.start + off;
        for p in parts {
            if let Some(dst) = buf.get_mut(at..at + p.len()) {
                dst.copy_from_slice(p);
            }
            at += p.len();
        }
        self.n += 1;
    }
}

/// The node has no room for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Builds a leaf from records appended in ascending key order. The buffer
/// may hold anything: [`LeafBuilder::finish`] defines every byte (header,
/// offset table, zeros, records).
pub struct LeafBuilder<'a> {
    buf: &'a mut [u8; BLKSZ],
    area: Area,
}

impl<'a> LeafBuilder<'a> {
    /// Start an empty leaf in `buf`.
    pub fn new(buf: &'a mut [u8; BLKSZ]) -> LeafBuilder<'a> {
        LeafBuilder {
            buf,
            area: Area {
                start: KEY_AREA,
                len: LEAFSPC,
                n: 0,
                sz: 0,
            },
        }
    }

    /// Bytes still free.
    pub fn free(&self) -> usize {
        self.area.free()
    }

    /// Records so far.
    pub fn count(&self) -> usize {
        self.area.n
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.area.n == 0
    }

    /// Append a record (keys must ascend; the caller guarantees it).
    pub fn push(&mut self, key: &[u8], val: &[u8]) -> Result<(), Full> {
        if kv_size(key.len(), val.len()) > self.area.free()
            || key.len() > KEYMAX
            || val.len() > VALMAX
        {
            return Err(Full);
        }
        let kl = (key.len() as u16).to_be_bytes();
        let vl = (val.len() as u16).to_be_bytes();
        self.area.push(self.buf, &[&kl, key, &vl, val]);
        Ok(())
    }

    /// Write the header and zero the free space; returns the fill.
    pub fn finish(self) -> u16 {
        write_header(self.buf, true, 0, [self.area.n, self.area.sz, 0, 0]);
        self.area.zero_gap(self.buf);
        (2 * self.area.n + self.area.sz) as u16
    }
}

/// Builds a pivot from children and messages, each appended in key order.
/// The buffer may hold anything: [`PivotBuilder::finish`] defines every
/// byte.
pub struct PivotBuilder<'a> {
    buf: &'a mut [u8; BLKSZ],
    level: u16,
    keys: Area,
    msgs: Area,
}

impl<'a> PivotBuilder<'a> {
    /// Start an empty pivot at `level` (≥ 1) in `buf`.
    pub fn new(buf: &'a mut [u8; BLKSZ], level: u16) -> PivotBuilder<'a> {
        PivotBuilder {
            buf,
            level,
            keys: Area {
                start: KEY_AREA,
                len: PIVSPC,
                n: 0,
                sz: 0,
            },
            msgs: Area {
                start: BUF_AREA,
                len: BUFSPC,
                n: 0,
                sz: 0,
            },
        }
    }

    /// Bytes free in the key area.
    pub fn key_free(&self) -> usize {
        self.keys.free()
    }

    /// Bytes free in the buffer.
    pub fn buf_free(&self) -> usize {
        self.msgs.free()
    }

    /// Children so far.
    pub fn nchild(&self) -> usize {
        self.keys.n
    }

    /// Append a child (separators must ascend; the first must be empty).
    pub fn push_child(&mut self, sep: &[u8], bp: &Bptr, fill: u16) -> Result<(), Full> {
        if child_size(sep.len()) > self.keys.free() || sep.len() > KEYMAX {
            return Err(Full);
        }
        let kl = (sep.len() as u16).to_be_bytes();
        let vl = (PIVVALSZ as u16).to_be_bytes();
        let p = bp.to_bytes();
        let f = fill.to_be_bytes();
        self.keys.push(self.buf, &[&kl, sep, &vl, &p, &f]);
        Ok(())
    }

    /// Append a message (keys must not descend).
    pub fn push_msg(&mut self, op: Op, key: &[u8], arg: &[u8]) -> Result<(), Full> {
        if msg_size(key.len(), arg.len()) > self.msgs.free()
            || key.len() > KEYMAX
            || arg.len() > VALMAX
        {
            return Err(Full);
        }
        let o = [op.code()];
        let kl = (key.len() as u16).to_be_bytes();
        let vl = (arg.len() as u16).to_be_bytes();
        self.msgs.push(self.buf, &[&o, &kl, key, &vl, arg]);
        Ok(())
    }

    /// Write the header and zero the free space; returns the fill.
    pub fn finish(self) -> u16 {
        write_header(
            self.buf,
            false,
            self.level,
            [self.keys.n, self.keys.sz, self.msgs.n, self.msgs.sz],
        );
        self.keys.zero_gap(self.buf);
        self.msgs.zero_gap(self.buf);
        (2 * self.keys.n + self.keys.sz + 2 * self.msgs.n + self.msgs.sz) as u16
    }
}
