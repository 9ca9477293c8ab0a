//! Compact summaries of blocks, made once while scanning so that the graph
//! can be checked in memory without reading any block again.
//!
//! A summary keeps only what the graph check needs: a node's level, fill,
//! key bounds, children, data pointers, the snapshot-tree records it holds
//! and the defects found in its values; a chain block's header. Data blocks
//! have no summary (their hash is all the check needs), so memory follows
//! metadata, not data: a leaf's `KDAT` values are kept as their pointers
//! plus runs of consecutive offsets ([`DatRun`]), not as keys. Everything is
//! decoded with bounds-checked accessors: a summary of hostile bytes is an
//! error string, never a panic.

#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use crate::format::key::{KeyView, KCLEAR, KCONF, KDAT, KENT, KUP};
use crate::format::log::{decode_addrs, decode_entries, payload, LogHeader};
use crate::format::msg::Op;
use crate::format::node::NodeView;
use crate::format::value::Xdir;
use crate::format::{block_type, BlockType, Bptr, BLKSZ_U64, PTRSZ};
use crate::format::{Decode, DecodeResult};

/// A pivot's child.
#[derive(Debug, Clone)]
pub(super) struct ChildRef {
    /// The separator (the lowest key the child may hold).
    pub sep: Box<[u8]>,
    /// Where the child is.
    pub bp: Bptr,
    /// The fill the pivot records for it.
    pub fill: u16,
}

/// A record found in a node: a leaf value (`op` none) or a buffered message.
/// Kept for snapshot-tree keys, file-system keys (`KENT`, `KUP`, `KCLEAR`)
/// and buffered `KDAT` messages; not for `KCONF` keys nor `KDAT` leaf values.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    /// The key.
    pub key: Box<[u8]>,
    /// The message op, or none for a leaf value.
    pub op: Option<Op>,
    /// The value or the message argument.
    pub val: Box<[u8]>,
}

/// The first and the last of a sorted run of keys.
pub(super) type Bounds = (Box<[u8]>, Box<[u8]>);

/// What the graph check needs from a tree node.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeSum {
    /// Whether it is a leaf.
    pub leaf: bool,
    /// Its level (0 for leaves).
    pub level: u16,
    /// Its fill, as a parent must record it.
    pub fill: u16,
    /// Records in the key area.
    pub nval: usize,
    /// A leaf's first and last key.
    pub keys: Option<Bounds>,
    /// The first and last buffered message key.
    pub msgs: Option<Bounds>,
    /// A pivot's children, in order.
    pub children: Vec<ChildRef>,
    /// A leaf's `KDAT` values, in key order ([`Bptr::NONE`] for a null or
    /// malformed value); their keys are in `dat_runs`.
    pub data: Vec<Bptr>,
    /// The keys of `data`, as runs of consecutive block offsets.
    pub dat_runs: Vec<DatRun>,
    /// Records other than `KCONF` keys and `KDAT` leaf values, in node
    /// order (a leaf's values, then its buffered messages).
    pub recs: Vec<Rec>,
    /// Bit `f` set: a key of family `f` occurs (values or messages).
    pub families: u16,
    /// Malformed keys and values.
    pub defects: Vec<String>,
}

/// A run of a leaf's `KDAT` keys: file `qid`, offsets `off`, `off + BLKSZ`,
/// … (`n` keys), whose values are `data[first..first + n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DatRun {
    /// The file.
    pub qid: u64,
    /// The first key's offset.
    pub off: u64,
    /// Index of the first value in [`NodeSum::data`].
    pub first: u32,
    /// Keys in the run.
    pub n: u32,
}

impl DatRun {
    /// The offset just past the run (saturating).
    pub fn end(&self) -> u64 {
        self.off
            .saturating_add(u64::from(self.n).saturating_mul(BLKSZ_U64))
    }
}

impl NodeSum {
    /// The index in [`NodeSum::data`] of the value of `KDAT(qid, off)`.
    pub fn dat_index(&self, qid: u64, off: u64) -> Option<usize> {
        let i = self
            .dat_runs
            .partition_point(|r| (r.qid, r.off) <= (qid, off))
            .checked_sub(1)?;
        let r = self.dat_runs.get(i)?;
        if r.qid != qid || off >= r.end() || !(off - r.off).is_multiple_of(BLKSZ_U64) {
            return None;
        }
        Some(r.first as usize + ((off - r.off) / BLKSZ_U64) as usize)
    }
}

/// What the graph check needs from a log or deadlist block.
#[derive(Debug, Clone)]
pub(super) struct ChainSum {
    /// The decoded header.
    pub hdr: LogHeader,
    /// A payload that does not decode.
    pub defect: Option<String>,
    /// A deadlist block's entries: addresses of blocks it keeps allocated.
    pub addrs: Vec<u64>,
    /// A message-log block's messages, as a node's buffered messages are
    /// summarized (records, families, defects).
    pub msgs: Option<Arc<NodeSum>>,
}

/// A block's summary.
#[derive(Debug, Clone)]
pub(super) enum Sum {
    /// A well-formed tree node.
    Node(Arc<NodeSum>),
    /// A block whose type tag says tree node but which does not validate.
    BadNode(Arc<str>),
    /// A log or deadlist block with a valid header.
    Chain(Arc<ChainSum>),
}

/// Summarize a block that may be a tree node or a chain block; `None` for
/// anything else (a data block, or garbage).
pub(super) fn summarize(buf: &[u8]) -> Option<Sum> {
    match block_type(buf)? {
        BlockType::Pivot | BlockType::Leaf => Some(match node(buf) {
            Ok(n) => Sum::Node(Arc::new(n)),
            Err(e) => Sum::BadNode(e.to_string().into()),
        }),
        BlockType::Log | BlockType::Dlist | BlockType::Mlog => {
            let hdr = LogHeader::decode(buf).ok()?;
            let p = payload(buf, &hdr);
            let mut msgs = None;
            let (defect, addrs) = match hdr.kind {
                BlockType::Log => (decode_entries(p).err().map(|e| e.to_string()), Vec::new()),
                BlockType::Mlog => match mlog(p) {
                    Ok(n) => {
                        msgs = Some(Arc::new(n));
                        (None, Vec::new())
                    }
                    Err(e) => (Some(e.to_string()), Vec::new()),
                },
                _ => match decode_addrs(p) {
                    Ok(a) => (None, a),
                    Err(e) => (Some(e.to_string()), Vec::new()),
                },
            };
            Some(Sum::Chain(Arc::new(ChainSum {
                hdr,
                defect,
                addrs,
                msgs,
            })))
        }
        _ => None,
    }
}

fn family_bit(k: &[u8]) -> u16 {
    match k.first() {
        Some(&f) if f < 16 => 1 << f,
        _ => 1 << 15,
    }
}

fn show(k: &[u8]) -> String {
    crate::format::key::show(k).to_string()
}

/// A defect of a value (a leaf value or an insert's argument) of a key of
/// family `fam`, if any.
fn bad_value(fam: u8, v: &[u8]) -> Option<&'static str> {
    match fam {
        KDAT if v.len() != PTRSZ => Some("is not a block pointer"),
        KDAT if Bptr::from_slice(v).is_err() => Some("is not a block pointer"),
        KENT if Xdir::decode(v).is_err() => Some("is not a directory entry"),
        KUP if !matches!(KeyView::decode(v), Ok(KeyView::Ent { .. })) => {
            Some("is not an entry key")
        }
        KCLEAR => match <[u8; 8]>::try_from(v) {
            Err(_) => Some("is not a block offset"),
            Ok(b) if !u64::from_be_bytes(b).is_multiple_of(BLKSZ_U64) => {
                Some("is not a block-aligned offset")
            }
            Ok(_) => None,
        },
        _ => None,
    }
}

/// Append a leaf's `KDAT` value to `n.data` and its key to `n.dat_runs`.
fn leaf_dat(n: &mut NodeSum, qid: u64, off: u64, bp: Bptr) {
    let first = n.data.len() as u32;
    n.data.push(bp);
    match n.dat_runs.last_mut() {
        Some(r) if r.qid == qid && r.n < u32::MAX && r.end() == off && off != u64::MAX => r.n += 1,
        _ => n.dat_runs.push(DatRun {
            qid,
            off,
            first,
            n: 1,
        }),
    }
}

/// Check one record's key and value, and keep what the graph check needs.
fn record(n: &mut NodeSum, k: &[u8], op: Option<Op>, v: &[u8]) {
    n.families |= family_bit(k);
    let Ok(kv) = KeyView::decode(k) else {
        n.defects.push(format!("malformed key {}", show(k)));
        return;
    };
    let Some(&fam) = k.first() else { return };
    let bad = match op {
        None | Some(Op::Insert) => bad_value(fam, v),
        _ => None,
    };
    if let Some(what) = bad {
        n.defects
            .push(format!("{}: value of {} bytes {what}", show(k), v.len()));
    }
    match (fam, op, kv) {
        (KCONF, _, _) => {}
        (KDAT, None, KeyView::Dat { qid, off }) => {
            let bp = match bad {
                None => Bptr::from_slice(v).unwrap_or(Bptr::NONE),
                Some(_) => Bptr::NONE,
            };
            leaf_dat(n, qid, off, bp);
        }
        _ => n.recs.push(Rec {
            key: k.into(),
            op,
            val: v.into(),
        }),
    }
}

/// Validate and summarize a message-log payload: its messages, kept as a
/// node's buffered messages are (families, defects, and every record but
/// `KCONF` ones, in order).
fn mlog(p: &[u8]) -> DecodeResult<NodeSum> {
    let mut n = NodeSum::default();
    for (op, k, arg) in crate::format::mlog::decode(p)? {
        record(&mut n, k, Some(op), arg);
    }
    Ok(n)
}

/// Validate and summarize a tree node.
pub(super) fn node(buf: &[u8]) -> DecodeResult<NodeSum> {
    let v = NodeView::new(buf)?;
    v.validate()?;
    let mut n = NodeSum {
        leaf: v.is_leaf(),
        level: v.level(),
        fill: v.fill(),
        nval: v.nval(),
        ..NodeSum::default()
    };
    if v.is_leaf() {
        for i in 0..v.nval() {
            let (k, val) = v.kv(i)?;
            record(&mut n, k, None, val);
        }
        if v.nval() > 0 {
            n.keys = Some((v.key(0)?.into(), v.key(v.nval() - 1)?.into()));
        }
    } else {
        for i in 0..v.nval() {
            let (sep, bp, fill) = v.child(i)?;
            n.children.push(ChildRef {
                sep: sep.into(),
                bp,
                fill,
            });
        }
    }
    for j in 0..v.nbuf() {
        let (op, k, arg) = v.msg(j)?;
        record(&mut n, k, Some(op), arg);
    }
    if v.nbuf() > 0 {
        n.msgs = Some((v.msg(0)?.1.into(), v.msg(v.nbuf() - 1)?.1.into()));
    }
    Ok(n)
}
