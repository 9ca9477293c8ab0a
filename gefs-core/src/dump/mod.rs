//! Read-only views of an image for people and tools (`gefs-dump`): the
//! superblocks, the arenas, the snapshot labels, a tree level by level, and
//! any single block decoded — even a damaged one, which is shown with what
//! is wrong instead of being refused.
//!
//! Every view is a serializable value; `text` renders it for a terminal.

#![deny(clippy::indexing_slicing)]

mod block;
mod files;

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Serialize;

use crate::error::Result;
use crate::format::key;
use crate::format::superblock::Superblock;
use crate::format::value::{LabelVal, TreeRec};
use crate::format::Bptr;
use crate::format::Decode;
use crate::ids::BlockAddr;
use crate::store::{SbCopy, Store, TreeId};
use crate::tree;

pub use block::{decode_block, BlockView};
pub use files::{cat, deadlist, ls, resolve, stat, SegmentView, StatView};

/// A pointer, for display.
#[derive(Debug, Clone, Serialize)]
pub struct Ptr {
    /// Device offset.
    pub addr: u64,
    /// Block hash, hex.
    pub hash: String,
    /// Birth generation.
    pub gen: u64,
}

impl From<&Bptr> for Ptr {
    fn from(b: &Bptr) -> Ptr {
        Ptr {
            addr: b.addr.0,
            hash: format!("{:016x}", b.hash),
            gen: b.gen.0,
        }
    }
}

/// The `super` view.
#[derive(Debug, Clone, Serialize)]
pub struct SuperView {
    /// Which copy the image opens from (0 = A, 1 = B).
    pub used: usize,
    /// State of copy A and copy B.
    pub copies: [String; 2],
    /// Commit sequence number.
    pub commit_gen: u64,
    /// Next generation number.
    pub nextgen: u64,
    /// Next qid path.
    pub nextqid: u64,
    /// Device bytes in use.
    pub dev_size: u64,
    /// Arena count.
    pub narena: u32,
    /// Bytes per arena.
    pub arena_size: u64,
    /// Snapshot tree root.
    pub snap_root: Ptr,
    /// Snapshot tree height.
    pub snap_height: u32,
    /// Each arena's record.
    pub arenas: Vec<ArenaRecView>,
}

/// An arena's record in the superblock.
#[derive(Debug, Clone, Serialize)]
pub struct ArenaRecView {
    /// The newest block of its allocation log.
    pub log_tail: Ptr,
    /// Blocks in the log chain.
    pub log_blocks: u64,
    /// Free blocks as of the commit.
    pub free_blocks: u64,
}

fn copy_text(c: &SbCopy) -> String {
    match c {
        SbCopy::Valid(g) => format!("valid, commit {g}"),
        SbCopy::Unusable(g, why) => format!("commit {g}, unusable: {why}"),
        SbCopy::Bad(why) => format!("bad: {why}"),
    }
}

/// The superblock the store opened from, with both copies' states.
pub fn superblock(s: &Store) -> Result<SuperView> {
    let ch = s.superblock_choice();
    let addr = if ch.used == 0 {
        BlockAddr(0)
    } else {
        s.geometry().sb_b()
    };
    let sb: Superblock = crate::store::read_superblock(&**s.device(), addr)?;
    Ok(SuperView {
        used: ch.used,
        copies: [copy_text(&ch.copies[0]), copy_text(&ch.copies[1])],
        commit_gen: sb.commit_gen,
        nextgen: sb.nextgen,
        nextqid: sb.nextqid,
        dev_size: sb.geometry.dev_size,
        narena: sb.geometry.narena,
        arena_size: sb.geometry.arena_size,
        snap_root: Ptr::from(&sb.snap_root),
        snap_height: sb.snap_height,
        arenas: sb
            .arenas
            .iter()
            .map(|a| ArenaRecView {
                log_tail: Ptr::from(&a.log_tail),
                log_blocks: a.log_blocks,
                free_blocks: a.free_blocks,
            })
            .collect(),
    })
}

/// One arena in the `arenas` view.
#[derive(Debug, Clone, Serialize)]
pub struct ArenaView {
    /// Counters.
    pub stats: crate::alloc::ArenaStats,
    /// Free ranges as (first byte, bytes).
    pub free_ranges: Vec<(u64, u64)>,
}

/// Every arena with its free ranges.
pub fn arenas(s: &Store) -> Vec<ArenaView> {
    let bs = crate::format::BLKSZ_U64;
    s.allocator()
        .stats()
        .into_iter()
        .map(|st| ArenaView {
            free_ranges: s
                .allocator()
                .free_ranges(st.index)
                .into_iter()
                .map(|(b, n)| (b * bs, n * bs))
                .collect(),
            stats: st,
        })
        .collect()
}

/// One snapshot in the `snaps` view.
#[derive(Debug, Clone, Serialize)]
pub struct SnapView {
    /// Snapshot id.
    pub id: u64,
    /// Labels naming it.
    pub labels: Vec<String>,
    /// Whether a mutable label names it.
    pub mutable: bool,
    /// Tree height.
    pub height: u32,
    /// Root.
    pub root: Ptr,
    /// Previous snapshot in its history, if any.
    pub pred: Option<u64>,
    /// Newest block of its message log, if it has one.
    pub log: Option<Ptr>,
    /// Nodes of its tree.
    pub nodes: u64,
}

/// Every snapshot record, with the labels that name it.
pub fn snaps(s: &Store) -> Result<Vec<SnapView>> {
    let mut labels: BTreeMap<u64, Vec<(String, bool)>> = BTreeMap::new();
    let lo = [key::KLABEL];
    let hi = [key::KLABEL + 1];
    for (k, v) in all(s, &lo, &hi)? {
        if let Ok(lv) = LabelVal::decode(&v) {
            let name = String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned();
            labels
                .entry(lv.id)
                .or_default()
                .push((name, lv.is_mutable()));
        }
    }
    let mut out = Vec::new();
    for (_, v) in all(s, &[key::KSNAP], &[key::KSNAP + 1])? {
        let Ok(r) = TreeRec::decode(&v) else { continue };
        let l = labels.remove(&r.gen).unwrap_or_default();
        out.push(SnapView {
            id: r.gen,
            mutable: l.iter().any(|(_, m)| *m),
            labels: l.into_iter().map(|(n, _)| n).collect(),
            height: r.ht,
            root: Ptr::from(&r.root),
            pred: (r.pred != TreeRec::NONE).then_some(r.pred),
            log: (!r.log.is_none()).then(|| Ptr::from(&r.log)),
            nodes: r.nodes,
        });
    }
    Ok(out)
}

fn all(s: &Store, lo: &[u8], hi: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let from = match out.last() {
            Some((k, _)) => Bound::Excluded(k.clone()),
            None => Bound::Included(lo.to_vec()),
        };
        let from = match &from {
            Bound::Excluded(k) => Bound::Excluded(&k[..]),
            Bound::Included(k) => Bound::Included(&k[..]),
            Bound::Unbounded => Bound::Unbounded,
        };
        let batch = s.scan(TreeId::SNAP, from, Bound::Excluded(hi), 1024)?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(batch);
    }
}

/// One node in the `tree` view.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLine {
    /// Where it is.
    pub ptr: Ptr,
    /// 0 for leaves.
    pub level: u16,
    /// Records in the key area.
    pub nval: usize,
    /// Buffered messages.
    pub nbuf: usize,
    /// Bytes used.
    pub fill: u16,
    /// First key, decoded.
    pub first: String,
}

/// A tree level by level, root first. `label` = None for the snapshot tree.
pub fn tree_levels(s: &Store, label: Option<&str>) -> Result<Vec<Vec<NodeLine>>> {
    let t = match label {
        Some(l) => s.mount(l)?,
        None => TreeId::SNAP,
    };
    let r = levels_of(s, t);
    s.unmount(t);
    r
}

fn levels_of(s: &Store, t: TreeId) -> Result<Vec<Vec<NodeLine>>> {
    s.with_reader(t, |ctx, root| {
        // The height comes from the image: bound it before sizing anything.
        let top = usize::from(tree::root_level(root)?);
        let mut levels: Vec<Vec<NodeLine>> = vec![Vec::new(); top + 1];
        tree::walk(ctx, root, |bp, v| {
            let depth = (root.height as usize).saturating_sub(1 + v.level() as usize);
            let first = v
                .key(0)
                .map(|k| key::show(k).to_string())
                .unwrap_or_default();
            if let Some(l) = levels.get_mut(depth) {
                l.push(NodeLine {
                    ptr: Ptr::from(bp),
                    level: v.level(),
                    nval: v.nval(),
                    nbuf: v.nbuf(),
                    fill: v.fill(),
                    first,
                });
            }
            Ok(())
        })?;
        Ok(levels)
    })
}

/// Render any view as indented text (JSON's structure, without the noise).
pub fn text<T: Serialize>(v: &T) -> String {
    let j = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    let mut out = String::new();
    render(&j, 0, &mut out);
    out
}

fn render(v: &serde_json::Value, ind: usize, out: &mut String) {
    use serde_json::Value;
    let pad = "  ".repeat(ind);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if x.is_object() || (x.is_array() && !is_flat(x)) {
                    out.push_str(&format!("{pad}{k}:\n"));
                    render(x, ind + 1, out);
                } else {
                    out.push_str(&format!("{pad}{k}: {}\n", scalar(x)));
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if x.is_object() || (x.is_array() && !is_flat(x)) {
                    out.push_str(&format!("{pad}[{i}]\n"));
                    render(x, ind + 1, out);
                } else {
                    out.push_str(&format!("{pad}{}\n", scalar(x)));
                }
            }
        }
        x => out.push_str(&format!("{pad}{}\n", scalar(x))),
    }
}

/// Arrays of numbers print on one line; anything else one item per line.
fn is_flat(v: &serde_json::Value) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter()
            .all(|x| x.is_number() || x.is_null() || x.is_boolean())
    })
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(" "),
        serde_json::Value::Null => "-".into(),
        x => x.to_string(),
    }
}
