//! Upsert: applying a batch of messages atomically, in one pass.
//!
//! The root is given the whole (sorted) batch. If the root is a pivot whose
//! buffer takes it, only the root is copied (the fast path); otherwise the
//! root flushes the largest child shares of its buffer and the batch down,
//! each child doing the same as it needs to, so every node on the way is
//! rewritten once (see `flush`). A root that splits grows the tree by one
//! level; a root pivot left with one child and an empty buffer is dropped
//! (height − 1), and one left with one child but buffered messages is
//! drained into that child first.
//!
//! Invariants kept here:
//! - a batch is validated whole before the tree is touched, then sorted
//!   stably by key, so messages for one key keep their order;
//! - the whole call shares one [`Tx`]: nothing is freed until it succeeded,
//!   and on error exactly the blocks written are freed;
//! - the height stays within `1..=MAX_HEIGHT`.

use crate::error::{Error, Result};
use crate::format::key::KDAT;
use crate::format::msg::{Msg, Op};
use crate::format::superblock::MAX_HEIGHT;
use crate::format::PTRSZ;
use crate::ids::BlockAddr;

use std::sync::Arc;

use super::content::{decode, gather, Bytes, Node, Pivot, TMsg};
use super::flush::{apply_leaf, give};
use super::pack::{pack_leaf, pack_pivot};
use super::pending::{Rec, Run};
use super::store::NodeStore;
use super::tx::{root_level, Tx};
use super::Root;

/// Check every message of a batch as [`upsert`] does. Besides
/// [`Msg::validate`], an insert under a `KDAT` key must carry exactly one
/// block pointer, because the tree frees what such values point to.
pub fn validate(msgs: &[Msg]) -> Result<()> {
    for m in msgs {
        m.validate()?;
        if m.op == Op::Insert && m.key.first() == Some(&KDAT) && m.val.len() != PTRSZ {
            return Err(Error::Invalid(format!(
                "data key insert with a {}-byte value (a block pointer is {PTRSZ})",
                m.val.len()
            )));
        }
    }
    Ok(())
}

/// Apply a batch of messages atomically: either the returned root reflects
/// all of them, or an error is returned and `root` is untouched and still
/// fully valid (every block this call wrote has been freed again).
///
/// Messages for the same key apply in the order given. The old root and the
/// nodes it no longer shares with the new tree are freed (through
/// [`NodeStore::free`]) only once the whole batch has succeeded, as are data
/// blocks whose `KDAT` pointers were overwritten or deleted in a leaf. On
/// error the caller still owns any data block the batch pointed to.
pub fn upsert<S: NodeStore>(s: &S, root: &Root, msgs: Vec<Msg>) -> Result<Root> {
    apply(s, root, &[], &msgs).map(|a| a.root)
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The new root.
    pub root: Root,
    /// Nodes written minus nodes the new tree no longer references: the
    /// change in the tree's node count.
    pub nodes: i64,
}

/// [`upsert`] of the messages of `runs` (a write buffer's runs, oldest
/// first, whose messages were validated when they were accepted) followed
/// by `extra` (validated here). Both are only read: on error they are
/// still whole, and on success the caller drops them.
pub fn apply<S: NodeStore>(
    s: &S,
    root: &Root,
    runs: &[Arc<Run>],
    extra: &[Msg],
) -> Result<Applied> {
    root_level(root)?;
    validate(extra)?;
    let extra: Vec<Rec<'_>> = extra
        .iter()
        .map(|m| (m.op, &m.key[..], &m.val[..]))
        .collect();
    let msgs = gather(runs, &extra);
    drop(extra);
    if msgs.is_empty() {
        return Ok(Applied {
            root: *root,
            nodes: 0,
        });
    }
    let mut tx = Tx::new(s);
    match run(&mut tx, *root, msgs) {
        Ok(r) => {
            let nodes = tx.node_delta();
            tx.commit();
            Ok(Applied { root: r, nodes })
        }
        Err(e) => {
            tx.abort();
            Err(e)
        }
    }
}

fn run<S: NodeStore>(tx: &mut Tx<'_, S>, root: Root, msgs: Vec<TMsg<S::Ref>>) -> Result<Root> {
    let level = root_level(&root)?;
    let (parts, mut level) = rebuild_root(tx, root, level, msgs, false)?;
    let (mut root, mut lonely) = install(tx, parts, level)?;
    // Each drain empties a one-child root into its child and drops it (or
    // the child split, and the root is no longer lonely).
    for _ in 0..MAX_HEIGHT {
        if !lonely {
            break;
        }
        level = root_level(&root)?;
        let (parts, l) = rebuild_root(tx, root, level, Vec::new(), true)?;
        (root, lonely) = install(tx, parts, l)?;
    }
    Ok(root)
}

/// Rebuild the root at `level`, giving it `incoming` (and, if `drain`,
/// pushing its whole buffer down). Returns the parts it became.
fn rebuild_root<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    root: Root,
    level: u16,
    incoming: Vec<TMsg<S::Ref>>,
    drain: bool,
) -> Result<(Vec<Node<S::Ref>>, u16)> {
    let addr = root.bp.addr;
    let r = tx.read(&root.bp, level)?;
    let node = decode(r, addr, &Bytes::empty())?;
    tx.retire_node(root.bp);
    let parts = match node {
        Node::Leaf { lo, kvs } => pack_leaf(lo, apply_leaf(tx, addr, kvs, incoming)?),
        Node::Pivot(mut p) => {
            give(tx, &mut p, addr, incoming, drain)?;
            pack_pivot(p, addr)?
        }
    };
    Ok((parts, level))
}

/// Write the new root from the parts the old root became.
fn install<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    parts: Vec<Node<S::Ref>>,
    level: u16,
) -> Result<(Root, bool)> {
    let Some(n) = grow(tx, parts, level)? else {
        let c = tx.write(&Node::Leaf {
            lo: Bytes::empty(),
            kvs: Vec::new(),
        })?;
        return Ok((
            Root {
                bp: c.bp,
                height: 1,
            },
            false,
        ));
    };
    let (height, lonely) = match &n {
        Node::Leaf { .. } => (1, false),
        Node::Pivot(p) => match p.children.as_slice() {
            // One child and nothing buffered: the child is the new root.
            [only] if p.msgs.is_empty() => {
                let root = Root {
                    bp: only.bp,
                    height: u32::from(p.level),
                };
                return Ok((root, false));
            }
            [_] => (u32::from(p.level) + 1, true),
            _ => (u32::from(p.level) + 1, false),
        },
    };
    let c = tx.write(&n)?;
    Ok((Root { bp: c.bp, height }, lonely))
}

/// While the root level produced several nodes, write them and make a new
/// level of pivots above them. Returns the single top node (not yet
/// written), or `None` if the tree emptied.
fn grow<S: NodeStore>(
    tx: &mut Tx<'_, S>,
    mut parts: Vec<Node<S::Ref>>,
    mut level: u16,
) -> Result<Option<Node<S::Ref>>> {
    while parts.len() > 1 {
        let mut children = Vec::with_capacity(parts.len());
        for n in &parts {
            children.push(tx.write(n)?);
        }
        level += 1;
        if u32::from(level) >= MAX_HEIGHT {
            return Err(Error::Internal(
                "tree would exceed the maximum height".into(),
            ));
        }
        let p = Pivot {
            level,
            children,
            msgs: Vec::new(),
        };
        parts = pack_pivot(p, BlockAddr::NONE)?;
    }
    Ok(parts.pop())
}
