//! What a check finds: problems and warnings naming blocks, and counters.
//!
//! Every type here serializes with stable, snake_case field names; this is
//! the `--json` schema of `gefs-check` (documented in its `main.rs`).

use std::fmt;

use serde::Serialize;

use crate::error::Error;
use crate::ids::BlockAddr;

/// What kind of thing a block is, or was expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A superblock copy.
    Superblock,
    /// An allocation-log block.
    Log,
    /// A deadlist block.
    Deadlist,
    /// A message-log block.
    Mlog,
    /// An inner tree node.
    Pivot,
    /// A leaf tree node.
    Leaf,
    /// A tree node whose kind is unknown (it did not decode).
    Node,
    /// A file data block.
    Data,
    /// A block whose contents are unknown (unreadable or not looked at).
    Unknown,
}

impl Role {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Superblock => "superblock",
            Role::Log => "log",
            Role::Deadlist => "deadlist",
            Role::Mlog => "message log",
            Role::Pivot => "pivot",
            Role::Leaf => "leaf",
            Role::Node => "node",
            Role::Data => "data",
            Role::Unknown => "block",
        }
    }
}

/// The class of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A superblock copy is damaged, stale or unusable.
    Superblock,
    /// An allocation log does not replay.
    Log,
    /// The device could not be read.
    Io,
    /// A block does not hash to the value in the pointer that led to it.
    Hash,
    /// A block is not a well-formed block of its kind.
    Structure,
    /// A node sits at the wrong level, or a recorded height is wrong.
    Level,
    /// The fill a parent records differs from the child's.
    Fill,
    /// A key lies outside the range its parent's separators give it.
    KeyRange,
    /// A key or value is malformed, or names something that does not exist.
    Value,
    /// A pointer leads outside the arenas.
    Pointer,
    /// A block is reached twice within one tree, or in two roles.
    Shared,
    /// A reachable block is free according to the allocator.
    ReachableFree,
    /// An allocated block nothing reaches.
    Leak,
    /// A directory entry is invalid (bad name, not a directory where one
    /// belongs), or is not reachable from its tree's root (missing parent,
    /// cycle), or the root entry is missing.
    Entry,
    /// A qid path is used by two entries of one tree, or is not below the
    /// superblock's next qid (it would be handed out again).
    Qid,
    /// A directory's up-link (`KUP`) is missing, or names an entry that is
    /// not that directory's.
    Uplink,
    /// A `KDAT` key is misaligned, or holds data no file owns (under a
    /// directory, a missing file, or past a file's length) that no clear
    /// note covers.
    DataKey,
}

/// One finding. `addr` names the damaged block (absent for image-wide
/// findings); `blocks` > 1 for a run of adjacent blocks (leaks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What class of finding this is.
    pub kind: Kind,
    /// The block's byte address.
    pub addr: Option<u64>,
    /// How many adjacent blocks from `addr` the finding covers.
    pub blocks: u64,
    /// What the block is (or was expected to be).
    pub role: Role,
    /// Which structure reached it: `superblock A`, `arena 3 log`,
    /// `snapshot tree`, `tree "main" (snap 3)`, or empty.
    pub owner: String,
    /// What is wrong, in words.
    pub what: String,
    /// For a damaged block of a file tree: the files (and directories'
    /// entries) it takes with it, one per line, e.g. `snapshot main:
    /// /home/x/report.pdf, bytes 0–16383`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl Problem {
    /// A finding about one block.
    pub fn block(
        kind: Kind,
        addr: BlockAddr,
        role: Role,
        owner: impl Into<String>,
        what: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            addr: Some(addr.0),
            blocks: 1,
            role,
            owner: owner.into(),
            what: what.into(),
            files: Vec::new(),
        }
    }

    /// A finding from a library error met while reading for `owner`: the
    /// error's own block address is used when it has one.
    pub(crate) fn from_error(e: &Error, at: BlockAddr, role: Role, owner: &str) -> Problem {
        let (kind, addr, what) = match e {
            Error::Checksum {
                addr,
                expected,
                actual,
            } => (
                Kind::Hash,
                *addr,
                format!(
                    "hash mismatch: pointer says {expected:016x}, block hashes to {actual:016x}"
                ),
            ),
            Error::Corrupt { addr, kind, detail } => {
                (Kind::Structure, *addr, format!("{kind}: {detail}"))
            }
            Error::Io { off, source, .. } => (Kind::Io, BlockAddr(*off), source.to_string()),
            other => (Kind::Structure, at, other.to_string()),
        };
        Problem::block(kind, addr, role, owner, what)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) if self.blocks > 1 => {
                write!(f, "blocks {:#x}+{} ({}", a, self.blocks, self.role.name())?
            }
            Some(a) => write!(f, "block {:#x} ({}", a, self.role.name())?,
            None => write!(f, "image ({}", self.role.name())?,
        }
        if !self.owner.is_empty() {
            write!(f, ", {}", self.owner)?;
        }
        write!(f, "): {}", self.what)
    }
}

/// The state of one superblock copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyState {
    /// Byte address of the copy.
    pub addr: u64,
    /// Its commit sequence number, when it decoded.
    pub commit_gen: Option<u64>,
    /// `ok`, `stale`, `unusable` or `damaged`.
    pub state: String,
    /// Why it is not `ok` (empty when it is).
    pub why: String,
}

/// Which superblock the check proceeded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperInfo {
    /// `A`, `B`, or `none` when no copy was usable (the check then proceeds
    /// from the newest copy that decoded).
    pub used: String,
    /// The commit the check proceeded from.
    pub commit_gen: u64,
    /// Copy A (first block) and copy B (last block).
    pub copies: [CopyState; 2],
    /// Number of arenas.
    pub narena: u32,
    /// Bytes per arena.
    pub arena_size: u64,
    /// Bytes of the device the file system spans.
    pub dev_size: u64,
}

/// What was found in one tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeInfo {
    /// `snapshot tree`, or `tree "label" (snap N)`.
    pub name: String,
    /// Snapshot id (0 for the snapshot tree).
    pub snap: u64,
    /// Labels naming this snapshot.
    pub labels: Vec<String>,
    /// Root block address.
    pub root: u64,
    /// Height recorded for the tree.
    pub height: u32,
    /// Pivots reached.
    pub pivots: u64,
    /// Leaves reached.
    pub leaves: u64,
    /// Data blocks reached.
    pub data_blocks: u64,
    /// Blocks of the tree's message log.
    pub log_blocks: u64,
    /// Messages in the tree's message log (applied on top of the tree).
    pub log_msgs: u64,
    /// Some of the tree could not be descended (damage).
    pub damaged: bool,
}

/// Counters for the whole check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bytes of the device.
    pub device_bytes: u64,
    /// Blocks whose hash was computed (allocated and reachable ones).
    pub blocks_checked: u64,
    /// Bytes those blocks hold.
    pub bytes_checked: u64,
    /// Bytes read from the device (including gaps read through).
    pub bytes_read: u64,
    /// Device reads issued.
    pub reads: u64,
    /// Tree pivots reached, over all trees.
    pub pivots: u64,
    /// Tree leaves reached, over all trees.
    pub leaves: u64,
    /// Data blocks reached, over all trees.
    pub data_blocks: u64,
    /// Allocation-log blocks.
    pub log_blocks: u64,
    /// Deadlist blocks reached.
    pub deadlist_blocks: u64,
    /// Message-log blocks reached, over all trees (a block shared by
    /// snapshots counted once per tree).
    pub mlog_blocks: u64,
    /// Allocated blocks no tree reaches that a deadlist keeps.
    pub deadlisted_blocks: u64,
    /// Blocks reached from more than one tree (snapshot sharing).
    pub shared_blocks: u64,
    /// Allocated blocks nothing reaches.
    pub leaked_blocks: u64,
    /// Free blocks according to the allocation logs.
    pub free_blocks: u64,
    /// Labels in the snapshot tree.
    pub labels: u64,
    /// Snapshot records in the snapshot tree.
    pub snapshots: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time of the whole check, seconds.
    pub seconds: f64,
    /// Wall time of the sequential scan, seconds.
    pub scan_seconds: f64,
    /// `bytes_checked` per second of `seconds`, in MB (10^6 bytes).
    pub mb_per_s: f64,
}

/// The result of a check that could be carried out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Findings that make the image inconsistent (exit status 1).
    pub problems: Vec<Problem>,
    /// Findings that do not (a stale or damaged redundant superblock).
    pub warnings: Vec<Problem>,
    /// The superblock the check proceeded from.
    pub superblock: SuperInfo,
    /// Every tree reached, the snapshot tree first.
    pub trees: Vec<TreeInfo>,
    /// Counters.
    pub stats: Stats,
}

impl Report {
    /// Whether the image is consistent (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}
