//! Compact summaries of blocks, made once while scanning so that the graph
//! can be checked in memory without reading any block again.
//!
//! A summary keeps only what the graph check needs: a node's level, fill,
//! key bounds, children, data pointers, the snapshot-tree records it holds
//! and the defects found in its values; a chain block's header. Data blocks
//! have no summary (their hash is all the check needs), so memory follows
//! metadata, not data. Everything is decoded with bounds-checked accessors:
//! a summary of hostile bytes is an error string, never a panic.

use std::sync::Arc;

use crate::format::key::{KeyView, KDAT, KDLIST, KENT, KLABEL, KSNAP, KUP};
use crate::format::log::{decode_addrs, decode_entries, payload, LogHeader};
use crate::format::msg::Op;
use crate::format::node::NodeView;
use crate::format::value::Xdir;
use crate::format::{block_type, BlockType, Bptr, PTRSZ};

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

/// A snapshot-tree record (label, snapshot or deadlist key) found in a node:
/// a leaf value (`op` none) or a buffered message.
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
    /// Data pointers: `KDAT` leaf values and buffered `KDAT` inserts.
    pub data: Vec<Bptr>,
    /// Snapshot-tree records.
    pub recs: Vec<Rec>,
    /// Bit `f` set: a key of family `f` occurs (values or messages).
    pub families: u16,
    /// Malformed keys and values.
    pub defects: Vec<String>,
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
            Err(e) => Sum::BadNode(e.into()),
        }),
        BlockType::Log | BlockType::Dlist => {
            let hdr = LogHeader::decode(buf).ok()?;
            let p = payload(buf, &hdr);
            let (defect, addrs) = match hdr.kind {
                BlockType::Log => (decode_entries(p).err(), Vec::new()),
                _ => match decode_addrs(p) {
                    Ok(a) => (None, a),
                    Err(e) => (Some(e), Vec::new()),
                },
            };
            Some(Sum::Chain(Arc::new(ChainSum { hdr, defect, addrs })))
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
    KeyView::parse(k).to_string()
}

/// Check one record's key and value, collecting data pointers and
/// snapshot-tree records.
fn record(n: &mut NodeSum, k: &[u8], op: Option<Op>, v: &[u8]) {
    n.families |= family_bit(k);
    let kv = KeyView::parse(k);
    if let KeyView::Other(_) = kv {
        n.defects.push(format!("malformed key {kv}"));
        return;
    }
    let Some(&fam) = k.first() else { return };
    if matches!(fam, KLABEL | KSNAP | KDLIST) {
        n.recs.push(Rec {
            key: k.into(),
            op,
            val: v.into(),
        });
        return;
    }
    if !matches!(op, None | Some(Op::Insert)) {
        return;
    }
    match fam {
        KDAT if v.len() != PTRSZ => n.defects.push(format!(
            "{}: value of {} bytes is not a block pointer",
            show(k),
            v.len()
        )),
        KDAT => {
            if let Ok(bp) = Bptr::from_slice(v) {
                if !bp.is_none() {
                    n.data.push(bp);
                }
            }
        }
        KENT if Xdir::decode(v).is_err() => n.defects.push(format!(
            "{}: value of {} bytes is not a directory entry",
            show(k),
            v.len()
        )),
        KUP if !matches!(KeyView::parse(v), KeyView::Ent { .. }) => n
            .defects
            .push(format!("{}: value is not an entry key", show(k))),
        _ => {}
    }
}

/// Validate and summarize a tree node.
pub(super) fn node(buf: &[u8]) -> Result<NodeSum, String> {
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
