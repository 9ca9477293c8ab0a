//! The block table: for every block the check has looked at, its hash, its
//! summary, and who reached it.
//!
//! Blocks read by the sequential scan live in dense runs (sorted by block
//! number, 16 bytes each); blocks read on demand (reachable but not in the
//! scan: free according to the log, or in an arena whose log did not
//! replay) and the allocation-log blocks live in a side map. Summaries of
//! nodes and chain blocks are in a map of their own, so that a data block
//! costs only its entry.

use std::collections::HashMap;

use super::summary::Sum;

/// What the scan saw in a block (before knowing what it is for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Tag {
    /// Not a node or chain block (data, or garbage).
    #[default]
    Plain,
    /// Has a summary in [`Table::sums`].
    Summarized,
    /// Could not be read.
    Unreadable,
}

/// Who reached a block, and as what.
pub(super) mod owner {
    /// Nothing reached it (yet).
    pub const NONE: u32 = 0;
    /// An arena's allocation-log chain.
    pub const LOG: u32 = 1;
    /// A deadlist chain.
    pub const DLIST: u32 = 2;
    /// The snapshot tree.
    pub const SNAP: u32 = 3;
    /// The first snapshot (file) tree; later ones count up from here.
    pub const FIRST_TREE: u32 = 4;
}

/// The role a block was reached in: a block must keep one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Use {
    /// Not reached.
    #[default]
    None,
    /// A tree node.
    Node,
    /// A data block.
    Data,
    /// An allocation-log block.
    Log,
    /// A deadlist block.
    Dlist,
    /// A message-log block.
    Mlog,
}

/// One block's state.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Entry {
    /// xxh3-64 of its 16 KiB.
    pub hash: u64,
    /// The last owner that reached it ([`owner`]).
    pub owner: u32,
    /// What the scan saw.
    pub tag: Tag,
    /// The role it was reached in.
    pub used: Use,
    /// Reached by more than one owner.
    pub shared: bool,
}

/// A run of adjacent scanned blocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    /// First block number.
    pub start: u64,
    /// Blocks.
    pub len: u64,
    /// Index of its first entry.
    pub base: usize,
}

/// Every block looked at.
#[derive(Debug, Default)]
pub(super) struct Table {
    runs: Vec<Run>,
    entries: Vec<Entry>,
    extra: HashMap<u64, Entry>,
    /// Summaries of nodes and chain blocks, by block number.
    pub sums: HashMap<u64, Sum>,
}

impl Table {
    /// A table over the scanned runs (sorted, disjoint) and their entries,
    /// in order.
    pub fn new(runs: Vec<Run>, entries: Vec<Entry>, sums: HashMap<u64, Sum>) -> Table {
        Table {
            runs,
            entries,
            extra: HashMap::new(),
            sums,
        }
    }

    fn slot(&self, blk: u64) -> Option<usize> {
        let i = self
            .runs
            .partition_point(|r| r.start <= blk)
            .checked_sub(1)?;
        let r = self.runs.get(i)?;
        (blk < r.start + r.len).then(|| r.base + (blk - r.start) as usize)
    }

    /// The entry of block `blk`, if it was looked at.
    pub fn get_mut(&mut self, blk: u64) -> Option<&mut Entry> {
        match self.slot(blk) {
            Some(i) => self.entries.get_mut(i),
            None => self.extra.get_mut(&blk),
        }
    }

    /// Record a block looked at outside the scan.
    pub fn insert(&mut self, blk: u64, e: Entry) {
        self.extra.insert(blk, e);
    }

    /// Every scanned block, in order: block number and entry.
    pub fn scanned(&self) -> impl Iterator<Item = (u64, &Entry)> + '_ {
        self.runs.iter().flat_map(move |r| {
            (0..r.len).filter_map(move |j| {
                self.entries
                    .get(r.base + j as usize)
                    .map(|e| (r.start + j, e))
            })
        })
    }

    /// Every entry, scanned or not.
    pub fn all(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().chain(self.extra.values())
    }
}
