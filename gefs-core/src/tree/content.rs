//! Decoded node contents: what the upsert path edits in memory between reading
//! a node and writing its replacement.
//!
//! Decoding copies nothing: every record of a decoded node is a [`Bytes`]
//! slice of the node's block itself, held through one shared handle on the
//! store's cached block (`R`, the store's [`NodeStore::Ref`]); messages of an
//! incoming batch and values computed by messages live in heap arenas.
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
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::msg::{self, Op};
use crate::format::node::{child_size, kv_size, LeafBuilder, NodeView, PivotBuilder};
use crate::format::DecodeError;
use crate::format::{Bptr, BLKSZ, BUFSPC, LEAFSPC, MSG_OVERHEAD, PIVSPC, SLOTSZ};
use crate::ids::BlockAddr;

use super::pending::{Rec, Run};

/// What a block handle must offer to hold decoded records: the bytes, and
/// a name in debug output ([`NodeStore::Ref`] is such a handle).
pub(crate) trait Buf: Deref<Target = [u8]> + fmt::Debug {}

impl<T: Deref<Target = [u8]> + fmt::Debug> Buf for T {}

/// Where a [`Bytes`] lives.
enum Source<R> {
    /// A node's cached block, shared by every record decoded from it.
    Block(Rc<R>),
    /// A write buffer's run, whose messages are being applied.
    Run(Arc<Run>),
    /// A heap arena: an incoming batch, or a computed value.
    Heap(Rc<[u8]>),
}

/// A byte string inside a shared, immutable buffer: the cached block of
/// the node it was decoded from, or the arena an incoming batch was packed
/// into. Cloning and dropping it only touch a (non-atomic) reference count,
/// so decoding a node costs no copy and no allocation per record.
pub(crate) struct Bytes<R> {
    buf: Source<R>,
    off: u32,
    len: u32,
}

impl<R> Clone for Bytes<R> {
    fn clone(&self) -> Self {
        let buf = match &self.buf {
            Source::Block(b) => Source::Block(Rc::clone(b)),
            Source::Run(r) => Source::Run(Arc::clone(r)),
            Source::Heap(h) => Source::Heap(Rc::clone(h)),
        };
        Bytes {
            buf,
            off: self.off,
            len: self.len,
        }
    }
}

fn offset_in(whole: &[u8], part: &[u8]) -> u32 {
    let off = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(off + part.len() <= whole.len());
    off as u32
}

impl<R: Buf> Bytes<R> {
    /// The empty string.
    pub fn empty() -> Bytes<R> {
        thread_local! {
            static EMPTY: Rc<[u8]> = Rc::from(&[][..]);
        }
        Bytes {
            buf: Source::Heap(EMPTY.with(Rc::clone)),
            off: 0,
            len: 0,
        }
    }

    /// A string owning a copy of `b`.
    pub fn copy(b: &[u8]) -> Bytes<R> {
        let buf: Rc<[u8]> = Rc::from(b);
        let len = buf.len() as u32;
        Bytes {
            buf: Source::Heap(buf),
            off: 0,
            len,
        }
    }

    /// The part of the arena `buf` that `part` (a slice of it) covers.
    fn within(buf: &Rc<[u8]>, part: &[u8]) -> Bytes<R> {
        Bytes {
            off: offset_in(buf, part),
            len: part.len() as u32,
            buf: Source::Heap(Rc::clone(buf)),
        }
    }

    /// The part of the run `r`'s records that `part` (a slice of them)
    /// covers.
    fn in_run(r: &Arc<Run>, part: &[u8]) -> Bytes<R> {
        Bytes {
            off: offset_in(r.encoded(), part),
            len: part.len() as u32,
            buf: Source::Run(Arc::clone(r)),
        }
    }

    /// The part of the block `b` that `part` (a slice of it) covers.
    fn in_block(b: &Rc<R>, part: &[u8]) -> Bytes<R> {
        Bytes {
            off: offset_in(b, part),
            len: part.len() as u32,
            buf: Source::Block(Rc::clone(b)),
        }
    }
}

impl<R: Buf> Deref for Bytes<R> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let whole: &[u8] = match &self.buf {
            Source::Block(b) => b,
            Source::Run(r) => r.encoded(),
            Source::Heap(h) => h,
        };
        let (o, l) = (self.off as usize, self.len as usize);
        whole.get(o..o + l).unwrap_or(&[])
    }
}

impl<R: Buf> PartialEq for Bytes<R> {
    fn eq(&self, o: &Bytes<R>) -> bool {
        **self == **o
    }
}

impl<R: Buf> Eq for Bytes<R> {}

impl<R: Buf> PartialOrd for Bytes<R> {
    fn partial_cmp(&self, o: &Bytes<R>) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<R: Buf> Ord for Bytes<R> {
    fn cmp(&self, o: &Bytes<R>) -> Ordering {
        (**self).cmp(&**o)
    }
}

impl<R: Buf> fmt::Debug for Bytes<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", &**self)
    }
}

/// A message as the tree moves it: like a `Msg`, over shared bytes.
#[derive(Debug, Clone)]
pub(crate) struct TMsg<R: Buf> {
    /// What to do.
    pub op: Op,
    /// To which key.
    pub key: Bytes<R>,
    /// The op's argument.
    pub val: Bytes<R>,
}

impl<R: Buf> TMsg<R> {
    /// Bytes this message takes in a buffer, offset slot included.
    pub fn size(&self) -> usize {
        SLOTSZ + MSG_OVERHEAD + self.key.len() + self.val.len()
    }
}

/// Pack a batch of messages (op, key, argument) into one shared arena.
pub(crate) fn pack_msgs<R: Buf>(msgs: &[Rec<'_>]) -> Vec<TMsg<R>> {
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

/// The messages of `runs` (oldest first, each sorted by key) and then of
/// `extra`, as one list sorted by key in which a key's messages keep their
/// order (runs in turn, then `extra` in its order). The runs' messages are
/// not copied: they stay in the runs, which the result holds.
pub(crate) fn gather<R: Buf>(runs: &[Arc<Run>], extra: &[Rec<'_>]) -> Vec<TMsg<R>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n: usize = runs.iter().map(|r| r.len()).sum();
    let mut merged = Vec::with_capacity(n + extra.len());
    let mut heads: BinaryHeap<Reverse<(&[u8], usize, usize)>> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.get(0).map(|m| Reverse((m.1, i, 0))))
        .collect();
    while let Some(Reverse((_, i, j))) = heads.pop() {
        let Some(r) = runs.get(i) else { continue };
        if let Some((op, key, val)) = r.get(j) {
            merged.push(TMsg {
                op,
                key: Bytes::in_run(r, key),
                val: Bytes::in_run(r, val),
            });
        }
        if let Some(m) = r.get(j + 1) {
            heads.push(Reverse((m.1, i, j + 1)));
        }
    }
    if extra.is_empty() {
        return merged;
    }
    let mut ex: Vec<Rec<'_>> = extra.to_vec();
    ex.sort_by(|a, b| a.1.cmp(b.1));
    let ex = pack_msgs(&ex);
    let mut out = Vec::with_capacity(merged.len() + ex.len());
    let mut old = merged.into_iter().peekable();
    for m in ex {
        while let Some(o) = old.next_if(|o| o.key <= m.key) {
            out.push(o);
        }
        out.push(m);
    }
    out.extend(old);
    out
}

/// A leaf record: key and value.
pub(crate) type Kv<R> = (Bytes<R>, Bytes<R>);

/// A pivot's pointer to one child.
#[derive(Debug, Clone)]
pub(crate) struct Child<R: Buf> {
    /// Lower bound of the child's range (materialized for child 0).
    pub sep: Bytes<R>,
    /// Where the child is.
    pub bp: Bptr,
    /// The child's fill when it was written.
    pub fill: u16,
}

/// A decoded pivot.
#[derive(Debug, Clone)]
pub(crate) struct Pivot<R: Buf> {
    /// Height above the leaves (≥ 1).
    pub level: u16,
    /// Children in key order; `children[0].sep` is the pivot's lower bound.
    pub children: Vec<Child<R>>,
    /// Buffered messages, by key, oldest first among equal keys.
    pub msgs: Vec<TMsg<R>>,
}

/// A decoded node, or a node about to be written.
#[derive(Debug, Clone)]
pub(crate) enum Node<R: Buf> {
    /// A leaf and the lower bound of its range.
    Leaf {
        /// Lower bound: the separator the parent records.
        lo: Bytes<R>,
        /// Records in key order.
        kvs: Vec<Kv<R>>,
    },
    /// A pivot (its lower bound is its first child's separator).
    Pivot(Pivot<R>),
}

impl<R: Buf> Node<R> {
    /// The separator a parent records for this node.
    pub fn lo(&self) -> Bytes<R> {
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
pub(crate) fn leaf_used<R: Buf>(kvs: &[Kv<R>]) -> usize {
    kvs.iter().map(|(k, v)| kv_size(k.len(), v.len())).sum()
}

/// Bytes a pivot's key area uses for these children (the first one is stored
/// with the empty separator).
pub(crate) fn keys_used<R: Buf>(children: &[Child<R>]) -> usize {
    children
        .iter()
        .enumerate()
        .map(|(i, c)| child_size(if i == 0 { 0 } else { c.sep.len() }))
        .sum()
}

/// Bytes these messages take in a buffer.
pub(crate) fn msgs_used<R: Buf>(msgs: &[TMsg<R>]) -> usize {
    msgs.iter().map(TMsg::size).sum()
}

/// Whether a node with this content fits in one block.
pub(crate) fn fits<R: Buf>(n: &Node<R>) -> bool {
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
pub(crate) fn merge_msgs<R: Buf>(old: Vec<TMsg<R>>, new: Vec<TMsg<R>>) -> Vec<TMsg<R>> {
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
fn push_folded<R: Buf>(out: &mut Vec<TMsg<R>>, m: TMsg<R>) {
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
/// (empty for the root). Nothing is copied: every record is a slice of the
/// block, which the decoded node holds through one shared handle.
pub(crate) fn decode<R: Buf>(raw: R, addr: BlockAddr, lo: &Bytes<R>) -> Result<Node<R>> {
    let bad = |e: DecodeError| e.at(addr);
    let buf: Rc<R> = Rc::new(raw);
    let v = NodeView::new(&buf).map_err(bad)?;
    let sh = |part: &[u8]| Bytes::in_block(&buf, part);
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

/// Encode a node into a block (every byte defined, whatever the buffer
/// held); returns its fill.
pub(crate) fn encode<R: Buf>(n: &Node<R>, buf: &mut [u8; BLKSZ]) -> Result<u16> {
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
