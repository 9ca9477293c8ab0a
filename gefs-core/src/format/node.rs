//! Tree nodes: reading ([`NodeView`]) and building ([`LeafBuilder`],
//! [`PivotBuilder`]) pivot and leaf blocks.
//!
//! ```text
//! 0  type u16     1 = pivot, 2 = leaf
//! 2  level u16    0 for leaves; a pivot's children are one level lower
//! 4  nval u16     records in the key area
//! 6  valsz u16    bytes of those records (slots not counted)
//! 8  nbuf u16     messages in the buffer (pivots; 0 in leaves)
//! 10 bufsz u16    bytes of those messages (slots not counted)
//! 12 reserved u32 0
//! 16 key area     leaf: LEAFSPC bytes; pivot: PIVSPC bytes
//! .. buffer area  pivot only: BUFSPC bytes
//! ```
//!
//! Each area starts with an offset table of u16 slots, one per record in key
//! order, growing upwards; the records are packed downwards from the area's
//! end. A key/value record is `klen u16, key, vlen u16, value`; a pivot's value
//! is a child `Bptr` and the child's fill (u16). A message record is `op u8,
//! klen u16, key, vlen u16, arg`. Messages are ordered by key; equal keys keep
//! arrival order (oldest first).
//!
//! A pivot's first separator is always the empty key: child 0 takes every key
//! below separator 1, so separators never need lowering when smaller keys
//! arrive. Every accessor is bounds-checked and returns an error string on
//! malformed input instead of panicking; callers attach the block address.

use std::cmp::Ordering;

use super::codec::{get_u16, set_u16, set_u32, Reader};
use super::msg::{self, Op};
use super::{
    BlockType, Bptr, BLKSZ, BUFSPC, KEYMAX, LEAFSPC, NODE_HDR, PIVSPC, PIVVALSZ, SLOTSZ, VALMAX,
};

/// Bytes a key/value record takes, slot included.
pub fn kv_size(klen: usize, vlen: usize) -> usize {
    SLOTSZ + super::KV_OVERHEAD + klen + vlen
}

/// Bytes a key/pointer record takes, slot included.
pub fn child_size(klen: usize) -> usize {
    kv_size(klen, PIVVALSZ)
}

/// Bytes a message record takes, slot included.
pub fn msg_size(klen: usize, vlen: usize) -> usize {
    SLOTSZ + super::MSG_OVERHEAD + klen + vlen
}

/// A read-only view of a pivot or leaf block.
#[derive(Clone, Copy)]
pub struct NodeView<'a> {
    buf: &'a [u8],
    leaf: bool,
    level: u16,
    nval: usize,
    valsz: usize,
    nbuf: usize,
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

type R<T> = Result<T, String>;

impl<'a> NodeView<'a> {
    /// Check the header of a full block and return a view of it.
    pub fn new(buf: &'a [u8]) -> R<NodeView<'a>> {
        if buf.len() != BLKSZ {
            return Err(format!("node of {} bytes", buf.len()));
        }
        let g = |o| usize::from(get_u16(buf, o).unwrap_or(0));
        let leaf = match super::block_type(buf) {
            Some(BlockType::Leaf) => true,
            Some(BlockType::Pivot) => false,
            _ => return Err("not a tree node".into()),
        };
        let level = g(2) as u16;
        let (nval, valsz, nbuf, bufsz) = (g(4), g(6), g(8), g(10));
        if leaf != (level == 0) {
            return Err(format!(
                "level {level} in a {}",
                if leaf { "leaf" } else { "pivot" }
            ));
        }
        let (kspc, bspc) = if leaf { (LEAFSPC, 0) } else { (PIVSPC, BUFSPC) };
        if 2 * nval + valsz > kspc || 2 * nbuf + bufsz > bspc {
            return Err(format!(
                "counts overflow the node (nval {nval} valsz {valsz} nbuf {nbuf} bufsz {bufsz})"
            ));
        }
        if !leaf && nval == 0 {
            return Err("pivot without children".into());
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

    fn area(&self, buffer: bool) -> &'a [u8] {
        let start = if buffer { NODE_HDR + PIVSPC } else { NODE_HDR };
        let len = match (buffer, self.leaf) {
            (true, _) => BUFSPC,
            (false, true) => LEAFSPC,
            (false, false) => PIVSPC,
        };
        self.buf.get(start..start + len).unwrap_or(&[])
    }

    fn record(&self, buffer: bool, i: usize) -> R<Reader<'a>> {
        let n = if buffer { self.nbuf } else { self.nval };
        if i >= n {
            return Err(format!("record {i} of {n}"));
        }
        let area = self.area(buffer);
        let off = usize::from(get_u16(area, 2 * i).ok_or("offset table truncated")?);
        if off < 2 * n || off >= area.len() {
            return Err(format!("record {i} offset {off} out of range"));
        }
        Ok(Reader::new(&area[off..]))
    }

    fn kv_at(&self, i: usize) -> R<(&'a [u8], &'a [u8])> {
        let mut r = self.record(false, i)?;
        let bad = |_| format!("record {i} overruns the node");
        let kl = usize::from(r.u16().map_err(bad)?);
        let k = r.bytes(kl).map_err(bad)?;
        let vl = usize::from(r.u16().map_err(bad)?);
        let v = r.bytes(vl).map_err(bad)?;
        Ok((k, v))
    }

    /// Key `i` of the key area (its value is not parsed: a search probes
    /// only keys).
    pub fn key(&self, i: usize) -> R<&'a [u8]> {
        let mut r = self.record(false, i)?;
        let bad = |_| format!("record {i} overruns the node");
        let kl = usize::from(r.u16().map_err(bad)?);
        r.bytes(kl).map_err(bad)
    }

    /// Key and value `i` of a leaf.
    pub fn kv(&self, i: usize) -> R<(&'a [u8], &'a [u8])> {
        self.kv_at(i)
    }

    /// Separator, child pointer and recorded fill of child `i` of a pivot.
    pub fn child(&self, i: usize) -> R<(&'a [u8], Bptr, u16)> {
        let (k, v) = self.kv_at(i)?;
        if v.len() != PIVVALSZ {
            return Err(format!("child {i}: value of {} bytes", v.len()));
        }
        let mut r = Reader::new(v);
        let bp = Bptr::read(&mut r).map_err(|_| "child pointer truncated")?;
        let fill = r.u16().map_err(|_| "child fill truncated")?;
        Ok((k, bp, fill))
    }

    /// Message `j` of a pivot's buffer: op, key, argument.
    pub fn msg(&self, j: usize) -> R<(Op, &'a [u8], &'a [u8])> {
        let mut r = self.record(true, j)?;
        let bad = |_| format!("message {j} overruns the buffer");
        let op = r.u8().map_err(bad)?;
        let op = Op::from_code(op).ok_or_else(|| format!("message {j}: bad op {op}"))?;
        let kl = usize::from(r.u16().map_err(bad)?);
        let k = r.bytes(kl).map_err(bad)?;
        let vl = usize::from(r.u16().map_err(bad)?);
        let v = r.bytes(vl).map_err(bad)?;
        Ok((op, k, v))
    }

    /// Binary search of the key area: `Ok(i)` if key `i` equals `key`, else
    /// `Err(i)` where it would be inserted.
    pub fn search(&self, key: &[u8]) -> R<Result<usize, usize>> {
        let (area, n) = (self.area(false), self.nval);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = key_at(area, n, mid, 2).ok_or_else(|| format!("record {mid} is malformed"))?;
            match cmp_keys(k, key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// [`NodeView::search`] of a node whose keys all lie in `[lo, hi)` (the
    /// separators its parent records): interpolation steps first, which
    /// find keys spread evenly over the range in a few probes instead of
    /// `log2(nval)` (each probe of a cold node is a cache miss), then a
    /// binary search of what is left; the answer is the same.
    pub fn search_in(&self, key: &[u8], lo: &[u8], hi: &[u8]) -> R<Result<usize, usize>> {
        let (area, n) = (self.area(false), self.nval);
        if n < 16 {
            return self.search(key);
        }
        // The answer lies in [l, r); every key below l is < key, every key
        // from r on is > key. `blo` and `bhi` bound the keys of [l, r).
        let (mut l, mut r) = (0, n);
        let (mut blo, mut bhi) = (lo, hi);
        for _ in 0..3 {
            if r - l < 8 {
                break;
            }
            let Some(est) = interpolate(blo, bhi, key, l, r) else {
                break;
            };
            let k = key_at(area, n, est, 2).ok_or_else(|| format!("record {est} is malformed"))?;
            match cmp_keys(k, key) {
                Ordering::Less => {
                    l = est + 1;
                    blo = k;
                }
                Ordering::Greater => {
                    r = est;
                    bhi = k;
                }
                Ordering::Equal => return Ok(Ok(est)),
            }
        }
        while l < r {
            let mid = l + (r - l) / 2;
            let k = key_at(area, n, mid, 2).ok_or_else(|| format!("record {mid} is malformed"))?;
            match cmp_keys(k, key) {
                Ordering::Less => l = mid + 1,
                Ordering::Greater => r = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(l))
    }

    /// The child of a pivot whose range holds `key`: the last one whose
    /// separator is ≤ `key` (child 0 for anything smaller).
    pub fn route(&self, key: &[u8]) -> R<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        })
    }

    /// Index of the first buffered message whose key is ≥ `key`.
    pub fn msg_lower_bound(&self, key: &[u8]) -> R<usize> {
        let (area, n) = (self.area(true), self.nbuf);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = key_at(area, n, mid, 3).ok_or_else(|| format!("message {mid} is malformed"))?;
            if cmp_keys(k, key) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Check every record: bounds, limits, strict key order, message order and
    /// validity, and (for pivots) that separator 0 is empty.
    pub fn validate(&self) -> R<()> {
        let mut total = 0;
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.nval {
            let (k, v) = self.kv_at(i)?;
            total += super::KV_OVERHEAD + k.len() + v.len();
            if k.len() > KEYMAX || v.len() > VALMAX {
                return Err(format!("record {i} exceeds the key or value limit"));
            }
            if self.leaf && k.is_empty() {
                return Err(format!("record {i}: empty key"));
            }
            if !self.leaf {
                let (_, bp, _) = self.child(i)?;
                if bp.is_none() {
                    return Err(format!("child {i}: null pointer"));
                }
                if i == 0 && !k.is_empty() {
                    return Err("first separator is not empty".into());
                }
            }
            if let Some(p) = prev {
                if p >= k {
                    return Err(format!("keys out of order at record {i}"));
                }
            }
            prev = Some(k);
        }
        if total != self.valsz {
            return Err(format!(
                "records hold {total} bytes, header says {}",
                self.valsz
            ));
        }
        let mut total = 0;
        let mut prev: Option<&[u8]> = None;
        for j in 0..self.nbuf {
            let (op, k, v) = self.msg(j)?;
            total += super::MSG_OVERHEAD + k.len() + v.len();
            msg::validate(op, k, v).map_err(|e| format!("message {j}: {e}"))?;
            if let Some(p) = prev {
                if p > k {
                    return Err(format!("messages out of order at {j}"));
                }
            }
            prev = Some(k);
        }
        if total != self.bufsz {
            return Err(format!(
                "messages hold {total} bytes, header says {}",
                self.bufsz
            ));
        }
        Ok(())
    }
}

/// Byte-wise key order, comparing the first 8 bytes as one word (keys
/// usually differ there; this saves the call into `memcmp`).
#[inline]
pub fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let word = |k: &[u8]| k.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok());
    if let (Some(x), Some(y)) = (word(a), word(b)) {
        let (x, y) = (u64::from_be_bytes(x), u64::from_be_bytes(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// Where `key` should sit among the `r - l` keys of `[l, r)`, all in
/// `[lo, hi)`, if they were spread evenly: the 8 bytes after the common
/// prefix of `lo` and `hi` are read as numbers. `None` when that says
/// nothing (the key outside the bounds, or bounds too close).
fn interpolate(lo: &[u8], hi: &[u8], key: &[u8], l: usize, r: usize) -> Option<usize> {
    let c = lo.iter().zip(hi).take_while(|(a, b)| a == b).count();
    let word = |k: &[u8]| {
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(k.iter().skip(c)) {
            *d = *s;
        }
        u64::from_be_bytes(w)
    };
    if key.get(..c)? != lo.get(..c)? {
        return None;
    }
    let (a, b, x) = (word(lo), word(hi), word(key));
    if !(a <= x && x < b) || b - a < (r - l) as u64 {
        return None;
    }
    let off = (u128::from(x - a) * (r - l) as u128 / u128::from(b - a)) as usize;
    Some((l + off).min(r - 1))
}

/// The level a (validated) node's header gives, if it has one.
#[inline]
pub fn level_of(buf: &[u8]) -> Option<u16> {
    get_u16(buf, 2)
}

/// The key of record `i` of an area of `n` records whose key length sits
/// `at` bytes into the record (2 in the key area, 3 in a buffer: after the
/// op), checked as [`NodeView::key`] checks it.
#[inline]
fn key_at(area: &[u8], n: usize, i: usize, at: usize) -> Option<&[u8]> {
    let off = usize::from(get_u16(area, 2 * i)?);
    if off < 2 * n {
        return None;
    }
    let kl = usize::from(get_u16(area, off + at - 2)?);
    area.get(off + at..off + at + kl)
}

fn write_header(buf: &mut [u8; BLKSZ], leaf: bool, level: u16, counts: [usize; 4]) {
    let t = if leaf {
        BlockType::Leaf
    } else {
        BlockType::Pivot
    };
    set_u16(buf, 0, t.tag());
    set_u16(buf, 2, level);
    for (i, c) in counts.iter().enumerate() {
        set_u16(buf, 4 + 2 * i, *c as u16);
    }
    set_u32(buf, 12, 0);
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

    /// Append a record made of `parts`; the caller has checked it fits.
    fn push(&mut self, buf: &mut [u8; BLKSZ], parts: &[&[u8]]) {
        let rlen: usize = parts.iter().map(|p| p.len()).sum();
        self.sz += rlen;
        let off = self.len - self.sz;
        set_u16(&mut buf[self.start..], 2 * self.n, off as u16);
        let mut at = self.start + off;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
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
                start: NODE_HDR,
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
                start: NODE_HDR,
                len: PIVSPC,
                n: 0,
                sz: 0,
            },
            msgs: Area {
                start: NODE_HDR + PIVSPC,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BlockAddr, Gen};

    /// Builders define every byte: in a buffer of stale bytes they write
    /// exactly what they write in a zeroed one.
    #[test]
    fn builders_define_every_byte() {
        let build = |fill: u8| {
            let mut l = Box::new([fill; BLKSZ]);
            let mut lb = LeafBuilder::new(&mut l);
            for i in 0u32..40 {
                lb.push(&i.to_be_bytes(), &[i as u8; 30]).unwrap();
            }
            lb.finish();
            let mut p = Box::new([fill; BLKSZ]);
            let mut pb = PivotBuilder::new(&mut p, 2);
            let bp = Bptr {
                addr: BlockAddr(0x4000),
                hash: 1,
                gen: Gen(1),
            };
            pb.push_child(b"", &bp, 9).unwrap();
            pb.push_child(b"m", &bp, 9).unwrap();
            pb.push_msg(Op::Insert, b"k", b"v").unwrap();
            pb.finish();
            (l, p)
        };
        assert_eq!(build(0), build(0xa5));
        assert_eq!(build(0), build(0xff));
    }

    #[test]
    fn leaf_round_trip() {
        let mut b = Box::new([0u8; BLKSZ]);
        let mut lb = LeafBuilder::new(&mut b);
        for i in 0u32..100 {
            lb.push(&i.to_be_bytes(), &[i as u8; 7]).unwrap();
        }
        let fill = lb.finish();
        let v = NodeView::new(&b[..]).unwrap();
        v.validate().unwrap();
        assert!(v.is_leaf());
        assert_eq!(v.nval(), 100);
        assert_eq!(v.fill(), fill);
        assert_eq!(
            v.kv(42).unwrap(),
            (&42u32.to_be_bytes()[..], &[42u8; 7][..])
        );
        assert_eq!(v.search(&50u32.to_be_bytes()).unwrap(), Ok(50));
        assert_eq!(v.search(&[0, 0, 0, 200]).unwrap(), Err(100));
    }

    /// The interpolating search gives the same answer as the binary one
    /// for evenly spread, skewed and variable-length keys, and for bounds
    /// that are tight, loose, or wrong (they only steer the probes).
    #[test]
    fn search_in_matches_search() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for shape in 0..4 {
            let mut keys: Vec<Vec<u8>> = (0..150)
                .map(|i| match shape {
                    0 => (i as u64 * 0x0101_0101_0101).to_be_bytes().to_vec(),
                    1 => (next() >> (next() % 60)).to_be_bytes().to_vec(),
                    2 => {
                        let mut k = b"prefix/".to_vec();
                        k.extend_from_slice(&next().to_be_bytes()[..(next() % 8) as usize]);
                        k
                    }
                    _ => next().to_be_bytes()[..3].to_vec(),
                })
                .collect();
            keys.sort();
            keys.dedup();
            let mut b = Box::new([0u8; BLKSZ]);
            let mut lb = LeafBuilder::new(&mut b);
            for k in &keys {
                lb.push(k, b"").unwrap();
            }
            lb.finish();
            let v = NodeView::new(&b[..]).unwrap();
            let (first, last) = (keys[0].clone(), keys[keys.len() - 1].clone());
            let mut above = last.clone();
            above.push(0xff);
            let bounds: [(&[u8], &[u8]); 4] = [
                (&first, &above),
                (b"", &[0xff; 9]),
                (&last, &first),
                (&keys[keys.len() / 2], &keys[keys.len() / 2 + 1]),
            ];
            let mut probes = keys.clone();
            for _ in 0..300 {
                probes.push(next().to_be_bytes()[..(1 + next() % 8) as usize].to_vec());
            }
            for (lo, hi) in bounds {
                for k in &probes {
                    assert_eq!(
                        v.search_in(k, lo, hi).unwrap(),
                        v.search(k).unwrap(),
                        "shape {shape} key {k:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn leaf_fills_up() {
        let mut b = Box::new([0u8; BLKSZ]);
        let mut lb = LeafBuilder::new(&mut b);
        let mut n = 0u32;
        while lb.push(&n.to_be_bytes(), &[0; 512]).is_ok() {
            n += 1;
        }
        assert!(n >= 4, "a leaf must hold at least four maximal records");
        assert!(lb.free() < kv_size(4, 512));
    }

    #[test]
    fn pivot_round_trip() {
        let mut b = Box::new([0u8; BLKSZ]);
        let mut pb = PivotBuilder::new(&mut b, 1);
        let bp = |a| Bptr {
            addr: BlockAddr(a),
            hash: a,
            gen: Gen(1),
        };
        pb.push_child(b"", &bp(0x4000), 10).unwrap();
        pb.push_child(b"m", &bp(0x8000), 20).unwrap();
        pb.push_msg(Op::Insert, b"a", b"1").unwrap();
        pb.push_msg(Op::Delete, b"a", b"").unwrap();
        pb.push_msg(Op::Insert, b"z", b"2").unwrap();
        pb.finish();
        let v = NodeView::new(&b[..]).unwrap();
        v.validate().unwrap();
        assert_eq!(v.level(), 1);
        assert_eq!(v.child(1).unwrap(), (&b"m"[..], bp(0x8000), 20));
        assert_eq!(v.route(b"a").unwrap(), 0);
        assert_eq!(v.route(b"m").unwrap(), 1);
        assert_eq!(v.route(b"zz").unwrap(), 1);
        assert_eq!(v.msg(1).unwrap(), (Op::Delete, &b"a"[..], &b""[..]));
        assert_eq!(v.msg_lower_bound(b"b").unwrap(), 2);
    }

    #[test]
    fn garbage_never_panics() {
        let mut b = Box::new([0u8; BLKSZ]);
        let mut lb = LeafBuilder::new(&mut b);
        for i in 0u32..20 {
            lb.push(&i.to_be_bytes(), b"x").unwrap();
        }
        lb.finish();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut c = b.clone();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c[(x as usize) % 400] = (x >> 32) as u8;
            }
            if let Ok(v) = NodeView::new(&c[..]) {
                let _ = v.validate();
                for i in 0..v.nval() + 1 {
                    let _ = v.kv(i);
                    let _ = v.child(i);
                }
                for j in 0..v.nbuf() + 1 {
                    let _ = v.msg(j);
                }
                let _ = v.search(b"abc");
            }
        }
    }
}
