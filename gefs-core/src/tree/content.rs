//! Decoded node contents: what the upsert path edits in memory between reading
//! a node and writing its replacement.
//!
//! Invariants kept here:
//! - a [`Pivot`]'s `children[0].sep` is the pivot's *materialized* lower
//!   bound (the separator its parent records for it), not the empty key that
//!   is stored on disk; [`encode`] writes the empty key in its place, so
//!   separator 0 on disk is always empty;
//! - children's separators ascend strictly, and each is ≤ every key (value or
//!   buffered message) in that child's subtree;
//! - leaf records ascend strictly by key; buffered messages ascend by key and
//!   keep arrival order (oldest first) among equal keys;
//! - sizes are computed exactly as the node builders account them, so a
//!   content that [`fits`] always encodes.

use std::cmp::Ordering;
use std::ops::Deref;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::format::msg::{self, Op};
use crate::format::node::{child_size, kv_size, LeafBuilder, NodeView, PivotBuilder};
use crate::format::{Bptr, BLKSZ, BUFSPC, LEAFSPC, MSG_OVERHEAD, PIVSPC, SLOTSZ};
use crate::ids::BlockAddr;

use super::pending::Rec;

/// A byte string inside a shared, immutable buffer: the copy of a node's
/// block it was decoded from, or the arena an incoming batch was packed
/// into. Cloning and dropping it only touch a (non-atomic) reference count,
/// so decoding a node costs one block copy and no allocation per record.
#[derive(Clone)]
pub(crate) struct Bytes {
    buf: Rc<[u8]>,
    off: u32,
    len: u32,
}

impl Bytes {
    /// The empty string.
    pub fn empty() -> Bytes {
        thread_local! {
            static EMPTY: Rc<[u8]> = Rc::from(&[][..]);
        }
        Bytes {
            buf: EMPTY.with(Rc::clone),
            off: 0,
            len: 0,
        }
    }

    /// A string owning a copy of `b`.
    pub fn copy(b: &[u8]) -> Bytes {
        Bytes::whole(Rc::from(b))
    }

    /// All of `buf`.
    fn whole(buf: Rc<[u8]>) -> Bytes {
        let len = buf.len() as u32;
        Bytes { buf, off: 0, len }
    }

    /// The part of `buf` that `part` (a slice of it) covers.
    fn within(buf: &Rc<[u8]>, part: &[u8]) -> Bytes {
        let off = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        debug_assert!(off + part.len() <= buf.len());
        Bytes {
            buf: Rc::clone(buf),
            off: off as u32,
            len: part.len() as u32,
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (o, l) = (self.off as usize, self.len as usize);
        self.buf.get(o..o + l).unwrap_or(&[])
    }
}

impl PartialEq for Bytes {
    fn eq(&self, o: &Bytes) -> bool {
        **self == **o
    }
}

impl Eq for Bytes {}

impl PartialOrd for Bytes {
    fn partial_cmp(&self, o: &Bytes) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Bytes {
    fn cmp(&self, o: &Bytes) -> Ordering {
        (**self).cmp(&**o)
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x?}", &**self)
    }
}

/// A message as the tree moves it: like [`Msg`], over shared bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TMsg {
    /// What to do.
    pub op: Op,
    /// To which key.
    pub key: Bytes,
    /// The op's argument.
    pub val: Bytes,
}

impl TMsg {
    /// Bytes this message takes in a buffer, offset slot included.
    pub fn size(&self) -> usize {
        SLOTSZ + MSG_OVERHEAD + self.key.len() + self.val.len()
    }
}

/// Pack a batch of messages (op, key, argument) into one shared arena.
pub(crate) fn pack_msgs(msgs: &[Rec<'_>]) -> Vec<TMsg> {
    let total: usize = msgs.iter().map(|m| m.1.len() + m.2.len()).sum();
    let mut arena = Vec::with_capacity(total);
    for m in msgs {
        arena.extend_from_slice(m.1);
        arena.extend_from_slice(m.2);
    }
    let arena: Rc<[u8]> = Rc::from(arena);
    let mut at = 0;
    let mut out = Vec::with_capacity(msgs.len());
    for &(op, key, val) in msgs {
        let (k, v) = (key.len(), val.len());
        let key = arena.get(at..at + k).unwrap_or(&[]);
        let val = arena.get(at + k..at + k + v).unwrap_or(&[]);
        out.push(TMsg {
            op,
            key: Bytes::within(&arena, key),
            val: Bytes::within(&arena, val),
        });
        at += k + v;
    }
    out
}

/// A leaf record: key and value.
pub(crate) type Kv = (Bytes, Bytes);

/// A pivot's pointer to one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    /// Lower bound of the child's range (materialized for child 0).
    pub sep: Bytes,
    /// Where the child is.
    pub bp: Bptr,
    /// The child's fill when it was written.
    pub fill: u16,
}

/// A decoded pivot.
#[derive(Debug, Clone)]
pub(crate) struct Pivot {
    /// Height above the leaves (≥ 1).
    pub level: u16,
    /// Children in key order; `children[0].sep` is the pivot's lower bound.
    pub children: Vec<Child>,
    /// Buffered messages, by key, oldest first among equal keys.
    pub msgs: Vec<TMsg>,
}

/// A decoded node, or a node about to be written.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A leaf and the lower bound of its range.
    Leaf {
        /// Lower bound: the separator the parent records.
        lo: Bytes,
        /// Records in key order.
        kvs: Vec<Kv>,
    },
    /// A pivot (its lower bound is its first child's separator).
    Pivot(Pivot),
}

impl Node {
    /// The separator a parent records for this node.
    pub fn lo(&self) -> Bytes {
        match self {
            Node::Leaf { lo, .. } => lo.clone(),
            Node::Pivot(p) => p
                .children
                .first()
                .map_or_else(Bytes::empty, |c| c.sep.clone()),
        }
    }

    /// Whether the node is below the rebalancing threshold: its key area is
    /// less than a quarter full.
    pub fn underfull(&self) -> bool {
        match self {
            Node::Leaf { kvs, .. } => leaf_used(kvs) < LEAFSPC / 4,
            Node::Pivot(p) => keys_used(&p.children) < PIVSPC / 4,
        }
    }
}

/// Bytes a leaf with these records uses.
pub(crate) fn leaf_used(kvs: &[Kv]) -> usize {
    kvs.iter().map(|(k, v)| kv_size(k.len(), v.len())).sum()
}

/// Bytes a pivot's key area uses for these children (the first one is stored
/// with the empty separator).
pub(crate) fn keys_used(children: &[Child]) -> usize {
    children
        .iter()
        .enumerate()
        .map(|(i, c)| child_size(if i == 0 { 0 } else { c.sep.len() }))
        .sum()
}

/// Bytes these messages take in a buffer.
pub(crate) fn msgs_used(msgs: &[TMsg]) -> usize {
    msgs.iter().map(TMsg::size).sum()
}

/// Whether a node with this content fits in one block.
pub(crate) fn fits(n: &Node) -> bool {
    match n {
        Node::Leaf { kvs, .. } => leaf_used(kvs) <= LEAFSPC,
        Node::Pivot(p) => keys_used(&p.children) <= PIVSPC && msgs_used(&p.msgs) <= BUFSPC,
    }
}

/// Merge two message lists sorted by key; on equal keys every `old` message
/// goes before every `new` one. A wstat is folded into the message before
/// it for the same key when one message has their combined effect
/// ([`msg::fold_wstat`]), so a buffer never holds a long chain of wstats for
/// one directory entry for every lookup of it to apply.
pub(crate) fn merge_msgs(old: Vec<TMsg>, new: Vec<TMsg>) -> Vec<TMsg> {
    if new.is_empty() {
        return old;
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut old = old.into_iter().peekable();
    for m in new {
        while let Some(o) = old.next_if(|o| o.key <= m.key) {
            push_folded(&mut out, o);
        }
        push_folded(&mut out, m);
    }
    for o in old {
        push_folded(&mut out, o);
    }
    out
}

/// Append `m` to the sorted `out`, folding a wstat into the message before
/// it for the same key where [`msg::fold_wstat`] can.
fn push_folded(out: &mut Vec<TMsg>, m: TMsg) {
    if m.op == Op::Wstat {
        if let Some(last) = out.last_mut().filter(|l| l.key == m.key) {
            if let Some(v) = msg::fold_wstat(last.op, &last.val, &m.val) {
                last.val = Bytes::copy(&v);
                return;
            }
        }
    }
    out.push(m);
}

/// Decode the node `raw` read from `addr`; `lo` is the separator its parent records
/// (empty for the root). The block is copied once; every record shares it.
pub(crate) fn decode(raw: &[u8], addr: BlockAddr, lo: &Bytes) -> Result<Node> {
    let bad = |e: String| Error::corrupt(addr, e);
    let buf: Rc<[u8]> = Rc::from(raw);
    let v = NodeView::new(&buf).map_err(bad)?;
    let sh = |part: &[u8]| Bytes::within(&buf, part);
    if v.is_leaf() {
        let mut kvs = Vec::with_capacity(v.nval());
        for i in 0..v.nval() {
            let (k, val) = v.kv(i).map_err(bad)?;
            kvs.push((sh(k), sh(val)));
        }
        return Ok(Node::Leaf {
            lo: lo.clone(),
            kvs,
        });
    }
    let mut children = Vec::with_capacity(v.nval());
    for i in 0..v.nval() {
        let (sep, bp, fill) = v.child(i).map_err(bad)?;
        let sep = if i == 0 { lo.clone() } else { sh(sep) };
        children.push(Child { sep, bp, fill });
    }
    let mut msgs = Vec::with_capacity(v.nbuf());
    for j in 0..v.nbuf() {
        let (op, key, val) = v.msg(j).map_err(bad)?;
        msgs.push(TMsg {
            op,
            key: sh(key),
            val: sh(val),
        });
    }
    Ok(Node::Pivot(Pivot {
        level: v.level(),
        children,
        msgs,
    }))
}

/// Encode a node into a zeroed block; returns its fill.
pub(crate) fn encode(n: &Node, buf: &mut [u8; BLKSZ]) -> Result<u16> {
    let full = || Error::Internal("tree node content overflows its block".into());
    match n {
        Node::Leaf { kvs, .. } => {
            let mut b = LeafBuilder::new(buf);
            for (k, v) in kvs {
                b.push(k, v).map_err(|_| full())?;
            }
            Ok(b.finish())
        }
        Node::Pivot(p) => {
            let mut b = PivotBuilder::new(buf, p.level);
            for (i, c) in p.children.iter().enumerate() {
                let sep: &[u8] = if i == 0 { &[] } else { &c.sep };
                b.push_child(sep, &c.bp, c.fill).map_err(|_| full())?;
            }
            for m in &p.msgs {
                b.push_msg(m.op, &m.key, &m.val).map_err(|_| full())?;
            }
            Ok(b.finish())
        }
    }
}
