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

use crate::error::{Error, Result};
use crate::format::msg::Msg;
use crate::format::node::{child_size, kv_size, LeafBuilder, NodeView, PivotBuilder};
use crate::format::{Bptr, BLKSZ, BUFSPC, LEAFSPC, PIVSPC};
use crate::ids::BlockAddr;

/// A leaf record: key and value.
pub(crate) type Kv = (Vec<u8>, Vec<u8>);

/// A pivot's pointer to one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    /// Lower bound of the child's range (materialized for child 0).
    pub sep: Vec<u8>,
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
    pub msgs: Vec<Msg>,
}

/// A decoded node, or a node about to be written.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A leaf and the lower bound of its range.
    Leaf {
        /// Lower bound: the separator the parent records.
        lo: Vec<u8>,
        /// Records in key order.
        kvs: Vec<Kv>,
    },
    /// A pivot (its lower bound is its first child's separator).
    Pivot(Pivot),
}

impl Node {
    /// The separator a parent records for this node.
    pub fn lo(&self) -> &[u8] {
        match self {
            Node::Leaf { lo, .. } => lo,
            Node::Pivot(p) => p.children.first().map_or(&[][..], |c| &c.sep[..]),
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

impl Pivot {
    /// Index of the child whose range holds `key`.
    pub fn route(&self, key: &[u8]) -> usize {
        self.children
            .partition_point(|c| c.sep.as_slice() <= key)
            .saturating_sub(1)
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
pub(crate) fn msgs_used(msgs: &[Msg]) -> usize {
    msgs.iter().map(Msg::size).sum()
}

/// Whether a node with this content fits in one block.
pub(crate) fn fits(n: &Node) -> bool {
    match n {
        Node::Leaf { kvs, .. } => leaf_used(kvs) <= LEAFSPC,
        Node::Pivot(p) => keys_used(&p.children) <= PIVSPC && msgs_used(&p.msgs) <= BUFSPC,
    }
}

/// Merge two message lists sorted by key; on equal keys every `old` message
/// goes before every `new` one.
pub(crate) fn merge_msgs(old: Vec<Msg>, new: Vec<Msg>) -> Vec<Msg> {
    if new.is_empty() {
        return old;
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut old = old.into_iter().peekable();
    for m in new {
        while let Some(o) = old.next_if(|o| o.key <= m.key) {
            out.push(o);
        }
        out.push(m);
    }
    out.extend(old);
    out
}

/// Decode a node read from `addr`; `lo` is the separator its parent records
/// (empty for the root).
pub(crate) fn decode(v: &NodeView<'_>, addr: BlockAddr, lo: &[u8]) -> Result<Node> {
    let bad = |e: String| Error::corrupt(addr, e);
    if v.is_leaf() {
        let mut kvs = Vec::with_capacity(v.nval());
        for i in 0..v.nval() {
            let (k, val) = v.kv(i).map_err(bad)?;
            kvs.push((k.to_vec(), val.to_vec()));
        }
        return Ok(Node::Leaf {
            lo: lo.to_vec(),
            kvs,
        });
    }
    let mut children = Vec::with_capacity(v.nval());
    for i in 0..v.nval() {
        let (sep, bp, fill) = v.child(i).map_err(bad)?;
        let sep = if i == 0 { lo.to_vec() } else { sep.to_vec() };
        children.push(Child { sep, bp, fill });
    }
    let mut msgs = Vec::with_capacity(v.nbuf());
    for j in 0..v.nbuf() {
        let (op, key, val) = v.msg(j).map_err(bad)?;
        msgs.push(Msg {
            op,
            key: key.to_vec(),
            val: val.to_vec(),
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
