//! The store: one device, its block cache, allocator, epochs and trees, and
//! the commit protocol that makes their state durable.
//!
//! Roles and locks (outermost first; see `doc/DESIGN.md`):
//! - `mutlk` (the mutation lock) serialises every change: tree upserts,
//!   allocations on behalf of trees, mounts and commits. It guards
//!   [`Mutation`], the writer's view of every open tree.
//! - `roots` publishes each tree's current root and write buffer to
//!   readers. Readers take it only briefly, inside an epoch guard, and never
//!   take `mutlk`: a lookup or scan runs concurrently with the writer on the
//!   root and buffer runs it found (immutable, shared through `Arc`).
//! - `wb` serialises device writes of cached blocks against the reuse of
//!   freed addresses, so a stale write can never land on a reused block.
//! - cache shard locks and arena locks are innermost and never held across
//!   I/O or each other.
//!
//! Freed blocks take one of two paths (`reclaim.rs`): a block born in its
//! tree's working generation was never part of a commit and is reusable as
//! soon as no reader can see it; any other block is still used by the
//! durable state, so its free is logged by the next commit and it is
//! reusable only once that commit is durable *and* no reader can see it.
//!
//! Upserts are buffered per tree and applied in large batches (`wbuf.rs`);
//! a commit makes the buffered messages durable by appending them to the
//! tree's message log (`msglog.rs`), and mounting a tree replays its log.
//! Lookups and scans apply the buffer on top of the tree.
//!
//! The first failed device write or flush latches the store read-only: from
//! then on changes fail with [`Error::Failed`] (a store opened read-only
//! refuses them with [`Error::ReadOnly`]); a commit that saw an error is
//! never reported as done (`commit.rs`).

mod commit;
mod ctx;
mod deadlist;
mod format;
mod grow;
mod io;
mod labels;
mod msglog;
mod open;
mod overwrite;
mod reclaim;
mod wbuf;
mod writer;

use wbuf::Buffered;

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::alloc::{Allocator, ArenaStats, Kind, Tier};
use crate::cache::{Block, Cache, CacheStats};
use crate::device::Device;
use crate::epoch::Epochs;
use crate::error::{Error, Result};
use crate::format::msg::Msg;
use crate::format::superblock::Geometry;
use crate::format::value::{LabelVal, TreeRec};
use crate::format::Decode;
use crate::format::{key, Bptr, BLKSZ};
use crate::ids::Gen;
use crate::tree::{self, Root};
use crate::CorruptKind;

pub use commit::CommitInfo;
pub use format::{FormatOpts, Seed, NEW_TREES};
pub use grow::{grow_geometry, Grown};
pub use labels::{valid_label, LabelInfo};
pub(crate) use msglog::data_ptrs;
pub use open::{copy_b_addr, read_superblock, sb_b_addr, SbChoice, SbCopy};
use reclaim::Deferred;
pub use reclaim::PinnedCommit;
pub(crate) use writer::Writer;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bytes of block cache (rounded down to whole 16 KiB buffers; no more
    /// than the image's size, but at least 16 MiB). Memory is reserved at
    /// open and backed only as blocks are cached.
    pub cache_bytes: usize,
    /// Refuse every change; nothing is ever written to the device.
    pub read_only: bool,
}

/// Bytes of buffered upserts a store keeps in memory (and in its trees'
/// message logs) before applying them to the trees, over all trees, unless
/// [`Store::set_write_buffer_bytes`] says otherwise.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 16 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            cache_bytes: 64 << 20,
            read_only: false,
        }
    }
}

/// A tree's state as readers see it.
#[derive(Debug, Clone)]
struct Published {
    root: Root,
    /// Its write buffer: accepted messages not yet in the tree.
    runs: tree::pending::Runs,
}

impl Published {
    /// A tree with nothing buffered.
    fn bare(root: Root) -> Published {
        Published {
            root,
            runs: tree::pending::no_runs(),
        }
    }
}

/// An open tree: an index into the store's table of trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeId(usize);

impl TreeId {
    /// The snapshot tree (labels, snapshot records, configuration).
    pub const SNAP: TreeId = TreeId(0);
}

/// The writer's state of one open tree.
#[derive(Debug, Clone)]
struct TreeState {
    /// The label it was opened by ("" for the snapshot tree).
    label: String,
    /// Its snapshot record (unused for the snapshot tree).
    rec: TreeRec,
    /// Whether changes are allowed.
    mutable: bool,
    /// Current root.
    root: Root,
    /// Nodes of the tree at `root`.
    nodes: u64,
    /// Working generation: blocks allocated for this tree now are born in it.
    wgen: Gen,
    /// Changed since the last commit.
    dirty: bool,
    /// Blocks killed since the last commit that a snapshot still holds, by
    /// birth generation; written as deadlist segments at the commit.
    dead: std::collections::BTreeMap<u64, Vec<crate::ids::BlockAddr>>,
    /// Upserts accepted but not yet applied to the tree.
    wbuf: wbuf::WriteBuf,
    /// The message log that makes `wbuf` durable.
    log: msglog::Log,
    /// Holders of the mount ([`Store::mount`] minus [`Store::unmount`]).
    refs: u32,
    /// Retired: nobody holds it and its last change is committed (or its
    /// snapshot was deleted). A later mount of the label reopens the slot.
    closed: bool,
}

impl TreeState {
    fn policy(&self) -> ctx::Policy {
        ctx::Policy {
            wgen: self.wgen,
            pred: if self.rec.pred == TreeRec::NONE {
                0
            } else {
                self.rec.pred
            },
            base: self.rec.base,
        }
    }
}

/// Everything the mutation lock guards.
#[derive(Debug)]
struct Mutation {
    commit_gen: u64,
    nextgen: u64,
    nextqid: u64,
    trees: Vec<TreeState>,
}

impl Mutation {
    fn tree(&self, t: TreeId) -> Result<&TreeState> {
        self.trees
            .get(t.0)
            .ok_or_else(|| Error::Invalid(format!("no open tree {}", t.0)))
    }

    fn tree_mut(&mut self, t: TreeId) -> Result<&mut TreeState> {
        self.trees
            .get_mut(t.0)
            .ok_or_else(|| Error::Invalid(format!("no open tree {}", t.0)))
    }

    fn dirty(&self) -> bool {
        self.trees.iter().any(|t| t.dirty)
    }

    /// Retire trees nobody holds that have nothing left to commit.
    fn close_idle(&mut self) {
        for t in self.trees.iter_mut().skip(1) {
            if t.refs == 0 && !t.dirty && !t.closed {
                t.closed = true;
                t.dead.clear();
            }
        }
    }

    fn take_gen(&mut self) -> Gen {
        let g = Gen(self.nextgen);
        self.nextgen += 1;
        g
    }
}

/// Counters for tools and benchmarks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStats {
    /// The last durable commit.
    pub commit_gen: u64,
    /// Whether the store refuses changes.
    pub read_only: bool,
    /// Cache counters.
    pub cache: CacheStats,
    /// Per-arena counters.
    pub arenas: Vec<ArenaStats>,
    /// Freed blocks waiting for readers to leave.
    pub epoch_pending: usize,
    /// Blocks written by commits and writeback since open.
    pub blocks_written: u64,
    /// Commits since open.
    pub commits: u64,
    /// Messages in the write buffers (accepted, logged or about to be, not
    /// yet applied to their trees).
    pub buffered: u64,
}

/// One device's storage engine.
pub struct Store {
    dev: Arc<dyn Device>,
    geo: Geometry,
    cache: Cache,
    alloc: Allocator,
    epochs: Epochs<Deferred>,
    read_only: bool,
    /// Bytes of upserts kept in the write buffers, at most.
    wbuf_cap: std::sync::atomic::AtomicUsize,
    broken: AtomicBool,
    mutlk: Mutex<Mutation>,
    roots: RwLock<Vec<Published>>,
    wb: Mutex<()>,
    sb_choice: SbChoice,
    blocks_written: AtomicU64,
    commits: AtomicU64,
    /// Upserts accepted since open.
    upserts: AtomicU64,
    /// Allocation attempts (new blocks and commits) since open: while it
    /// does not move, free space can only have grown.
    allocs: AtomicU64,
    /// The `Normal`-tier free space measured at `allocs` = `.0`.
    headroom: Mutex<(u64, u64)>,
    /// Operations that write data blocks and then reference them hold this
    /// shared ([`Store::begin_op`]); a commit holds it exclusive, so no
    /// commit makes a block's allocation durable without the key that
    /// references it.
    ops: RwLock<()>,
    /// Durable frees held back from reuse while a commit is pinned
    /// ([`Store::pin_commit`], `reclaim.rs`).
    held: Mutex<reclaim::Held>,
}

/// An operation in progress, from [`Store::begin_op`]: commits wait for it.
#[must_use = "the operation ends when the guard drops"]
pub struct OpGuard<'a>(#[allow(dead_code)] parking_lot::RwLockReadGuard<'a, ()>);

impl std::fmt::Debug for OpGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpGuard")
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("geometry", &self.geo)
            .field("read_only", &self.is_read_only())
            .finish()
    }
}

impl Store {
    /// The device layout.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The device.
    pub fn device(&self) -> &Arc<dyn Device> {
        &self.dev
    }

    /// Which superblock copy the store was opened from, and the state of
    /// the other.
    pub(crate) fn superblock_choice(&self) -> &SbChoice {
        &self.sb_choice
    }

    /// Whether changes are refused: opened read-only, or latched after a
    /// device failure ([`Store::has_failed`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.has_failed()
    }

    /// Whether a device write or flush failed and the store latched itself
    /// read-only (changes fail with [`Error::Failed`] until a restart).
    pub fn has_failed(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Fail unless changes are accepted: [`Error::ReadOnly`] when the store
    /// was opened read-only, [`Error::Failed`] once it has latched.
    pub(crate) fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else if self.has_failed() {
            Err(Error::Failed)
        } else {
            Ok(())
        }
    }

    /// Latch after a device failure (`why`): from now on changes fail with
    /// [`Error::Failed`]. The first latch is logged.
    fn latch(&self, why: &Error) {
        if !self.broken.swap(true, Ordering::SeqCst) {
            tracing::error!(
                error = %why,
                "the device failed: latched read-only, changes are refused from now on; the \
                 last commit stays intact (restart to serve it again)"
            );
        }
    }

    /// The last durable commit.
    pub fn commit_gen(&self) -> u64 {
        self.mutlk.lock().commit_gen
    }

    /// Take the next qid path (never reused: the counter is committed with
    /// every superblock).
    pub fn next_qid(&self) -> u64 {
        let mut m = self.mutlk.lock();
        let q = m.nextqid;
        m.nextqid += 1;
        q
    }

    /// Upserts accepted since open: a caller that sees it unchanged over a
    /// while knows the store is quiet (a moment to [`Store::checkpoint`]).
    pub fn upserts(&self) -> u64 {
        self.upserts.load(Ordering::Relaxed)
    }

    /// Current counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commit_gen: self.commit_gen(),
            read_only: self.is_read_only(),
            cache: self.cache.stats(),
            arenas: self.alloc.stats(),
            epoch_pending: self.epochs.pending(),
            blocks_written: self.blocks_written.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            buffered: Self::buffered_msgs(&self.mutlk.lock()),
        }
    }

    /// Bound the memory the write buffers may take (bytes of buffered
    /// messages over all trees, see `store/wbuf.rs`): past it, the buffers
    /// are applied to their trees. 0 applies every upsert to its tree at
    /// once. The default is [`DEFAULT_WRITE_BUFFER_BYTES`]. A lower bound
    /// takes effect at the next upsert.
    pub fn set_write_buffer_bytes(&self, bytes: usize) {
        self.wbuf_cap.store(bytes, Ordering::Relaxed);
    }

    /// The allocator (for checks, dumps and benchmarks).
    pub fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    /// The current root of an open tree. Upserts still in the write buffer
    /// are not in it (they are after a [`Store::checkpoint`]).
    pub(crate) fn root(&self, t: TreeId) -> Result<Root> {
        Ok(self.published(t)?.root)
    }

    /// What readers of tree `t` see: its root and write buffer.
    fn published(&self, t: TreeId) -> Result<Published> {
        self.roots
            .read()
            .get(t.0)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("no open tree {}", t.0)))
    }

    /// Publish tree `t`'s root and write buffer to readers, together.
    fn publish(&self, t: TreeId, root: Root, runs: tree::pending::Runs) {
        if let Some(p) = self.roots.write().get_mut(t.0) {
            *p = Published { root, runs };
        }
    }

    /// Open the tree a label names, for one holder: mutable labels give a
    /// tree that accepts changes, immutable ones a read-only view. Opening
    /// an open label gives the same tree. Each mount should be paired with
    /// an [`Store::unmount`] (the file-system layer's `Mount` does it when
    /// dropped); a tree nobody holds is retired after its changes are
    /// committed, and its snapshot can then be deleted.
    pub fn mount(&self, label: &str) -> Result<TreeId> {
        let mut m = self.mutlk.lock();
        let slot = m
            .trees
            .iter()
            .skip(1)
            .position(|t| t.label == label)
            .map(|i| i + 1);
        if let Some(i) = slot {
            if !m.trees[i].closed {
                m.trees[i].refs += 1;
                return Ok(TreeId(i));
            }
        }
        let snap_at =
            |k: &[u8]| self.with_reader(TreeId::SNAP, |ctx, root| tree::lookup_at(ctx, root, k));
        let lv = snap_at(&key::label(label.as_bytes()))?.ok_or_else(|| self.no_label(label))?;
        let lv = LabelVal::decode(&lv.val)
            .map_err(|_| Error::corrupt(lv.addr, CorruptKind::Value, "label value"))?;
        let found = snap_at(&key::snap(lv.id))?
            .ok_or_else(|| Error::NotFound(format!("snapshot {} of label {label}", lv.id)))?;
        let snap_addr = found.addr;
        let rec = TreeRec::decode(&found.val)
            .map_err(|_| Error::corrupt(snap_addr, CorruptKind::Value, "snapshot record"))?;
        let root = Root {
            bp: rec.root,
            height: rec.ht,
        };
        if rec.ht == 0 || rec.ht > crate::format::superblock::MAX_HEIGHT || rec.root.is_none() {
            return Err(Error::corrupt(
                snap_addr,
                CorruptKind::Level,
                format!(
                    "snapshot record {} of label {label}: tree height {} or root {} out of range",
                    lv.id, rec.ht, rec.root.addr
                ),
            ));
        }
        // The tree is its root with its message log on top.
        let (log, run) = self.replay(&rec.log)?;
        let mut wbuf = wbuf::WriteBuf::default();
        if !run.is_empty() {
            wbuf.push(run, usize::MAX);
        }
        let runs = wbuf.runs();
        let wgen = m.take_gen();
        let st = TreeState {
            label: label.to_string(),
            rec,
            mutable: lv.is_mutable(),
            root,
            nodes: rec.nodes,
            wgen,
            dirty: false,
            dead: Default::default(),
            wbuf,
            log,
            refs: 1,
            closed: false,
        };
        match slot {
            Some(i) => {
                m.trees[i] = st;
                self.publish(TreeId(i), root, runs);
                Ok(TreeId(i))
            }
            None => {
                m.trees.push(st);
                self.roots.write().push(Published { root, runs });
                Ok(TreeId(m.trees.len() - 1))
            }
        }
    }

    /// Release one holder of a mounted tree. When nobody holds it, it is
    /// retired at once if it has nothing to commit, else after the commit.
    pub fn unmount(&self, t: TreeId) {
        if t == TreeId::SNAP {
            return;
        }
        let mut m = self.mutlk.lock();
        if let Some(ts) = m.trees.get_mut(t.0) {
            ts.refs = ts.refs.saturating_sub(1);
        }
        m.close_idle();
    }

    /// Holders of the tree a snapshot record is open as (0 if it is not).
    fn holders(m: &Mutation, id: u64) -> u32 {
        m.trees
            .iter()
            .skip(1)
            .filter(|t| !t.closed && t.rec.gen == id)
            .map(|t| t.refs)
            .sum()
    }

    /// Apply a batch of messages to a tree atomically. `tier` says how deep
    /// into the free space the change may reach: [`Tier::Normal`] for
    /// ordinary writes, [`Tier::Reserve`] for changes that free space
    /// (removes, deletions), which must work on a full device.
    ///
    /// The batch may be kept in the write buffer (`store/wbuf.rs`), made
    /// durable by the next sync through the tree's message log; lookups and
    /// scans see it at once either way.
    pub fn upsert(&self, t: TreeId, msgs: Vec<Msg>, tier: Tier) -> Result<()> {
        self.writable()?;
        self.upserts.fetch_add(1, Ordering::Relaxed);
        let mut m = self.mutlk.lock();
        let r = self.upsert_buffered(&mut m, t, msgs, tier);
        // A buffered batch that took nothing back freed nothing: no epoch
        // work to do.
        if !matches!(r, Ok(Buffered::Yes)) {
            self.collect(m)?;
        }
        r.map(|_| ())
    }

    /// Like [`Store::upsert`], and in the same atomic step release the data
    /// blocks `frees` names (under the tree's snapshot rules: a block a
    /// snapshot still holds goes to the tree's deadlist). For removing data
    /// pointers with `Op::Clobber` (which frees nothing when it reaches a
    /// leaf) while giving the space back at once, instead of when a
    /// `Clearb` would reach its leaf. The caller guarantees each block is
    /// referenced only by the keys this batch removes. Never buffered: the
    /// batch is applied at once (together with the tree's write buffer if
    /// that holds a message for one of its keys).
    pub(crate) fn upsert_freeing(
        &self,
        t: TreeId,
        msgs: Vec<Msg>,
        frees: &[Bptr],
        tier: Tier,
    ) -> Result<()> {
        self.writable()?;
        let mut m = self.mutlk.lock();
        let r = self.upsert_frees_locked(&mut m, t, msgs, frees, tier);
        self.collect(m)?;
        r
    }

    /// Apply `msgs` to tree `t` at once, atomically, with the tree's write
    /// buffer before them if it holds a message for one of their keys (or
    /// if `msgs` is empty: a drain): on error neither the tree nor the
    /// buffer has changed.
    fn upsert_locked(&self, m: &mut Mutation, t: TreeId, msgs: Vec<Msg>, tier: Tier) -> Result<()> {
        self.upsert_frees_locked(m, t, msgs, &[], tier)
    }

    fn upsert_frees_locked(
        &self,
        m: &mut Mutation,
        t: TreeId,
        msgs: Vec<Msg>,
        frees: &[Bptr],
        tier: Tier,
    ) -> Result<()> {
        let ts = m.tree(t)?;
        if !ts.mutable {
            return Err(Error::ReadOnly);
        }
        let with_buffer = Self::needs_buffer(m, t, &msgs)?;
        let ctx = ctx::WriteCtx::new(self, ts.policy(), tier);
        let runs = if with_buffer { ts.wbuf.run_list() } else { &[] };
        let a = tree::apply(&ctx, &ts.root, runs, &msgs)?;
        for bp in frees {
            use crate::tree::NodeStore;
            // Errors are remembered by the context and reported by finish.
            let _ = ctx.free(bp);
        }
        let killed = ctx.finish()?;
        let ts = m.tree_mut(t)?;
        ts.root = a.root;
        if ts.nodes != TreeRec::NODES_UNKNOWN {
            ts.nodes = ts.nodes.saturating_add_signed(a.nodes);
        }
        ts.dirty = true;
        if with_buffer {
            ts.wbuf = Default::default();
            ts.log.applied();
        }
        for bp in killed {
            ts.dead.entry(bp.gen.0).or_default().push(bp.addr);
        }
        let runs = ts.wbuf.runs();
        self.publish(t, a.root, runs);
        Ok(())
    }

    /// Look a key up in a tree.
    pub fn lookup(&self, t: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get(t, key)?.map(tree::Found::into_vec))
    }

    /// Look a key up in a tree without copying its value: the value is read
    /// in place from the cached leaf (the handle keeps that buffer from
    /// being reused while it is held), unless buffered messages computed it.
    pub fn get(&self, t: TreeId, key: &[u8]) -> Result<Option<Value<'_>>> {
        let _g = self.epochs.pin();
        let p = self.published(t)?;
        tree::lookup_ref(&ctx::ReadCtx::with_runs(self, p.runs), &p.root, key)
    }

    /// Scan a tree over `[from, to)` for at most `limit` entries. To resume,
    /// pass the last key returned as an excluded lower bound.
    pub fn scan(
        &self,
        t: TreeId,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let _g = self.epochs.pin();
        let p = self.published(t)?;
        tree::scan(
            &ctx::ReadCtx::with_runs(self, p.runs),
            &p.root,
            from,
            to,
            limit,
        )
    }

    /// Scan like [`Store::scan`], handing each entry to `f` as slices
    /// (values no buffered message changed are read in place from the
    /// cached leaves) instead of collecting copies. Returns the number of
    /// entries visited; an error from `f` stops the scan.
    pub fn scan_with(
        &self,
        t: TreeId,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
        f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<usize> {
        let _g = self.epochs.pin();
        let p = self.published(t)?;
        tree::scan_with(
            &ctx::ReadCtx::with_runs(self, p.runs),
            &p.root,
            from,
            to,
            limit,
            f,
        )
    }

    /// Begin an operation that spans several calls: [`Store::write_data`]
    /// of blocks and then the [`Store::upsert`] that references them. A
    /// commit waits until the guard drops, so it never makes the blocks'
    /// allocation durable without the keys that reference them (a crash
    /// between the two would leak them). Never commit while holding one.
    pub(crate) fn begin_op(&self) -> OpGuard<'_> {
        OpGuard(self.ops.read())
    }

    /// Allocate and write a data block for tree `t` (`hint` = the file's
    /// qid; `seq` = sequential placement). `fill` gets a zeroed buffer. The
    /// returned pointer becomes durable once a `KDAT` key referencing it is
    /// committed; until then, an unreferenced block is simply freed. Call it
    /// under a [`Store::begin_op`] guard held until that upsert.
    pub fn write_data(
        &self,
        t: TreeId,
        hint: u64,
        seq: bool,
        tier: Tier,
        fill: impl FnOnce(&mut [u8; BLKSZ]),
    ) -> Result<Bptr> {
        self.write_data_as(t, hint, seq, tier, true, fill)
    }

    /// [`Store::write_data`] for a `fill` that writes every byte of the
    /// block (a whole block of file data, or an old block copied and then
    /// changed): the buffer is not zeroed first, and holds stale bytes.
    pub(crate) fn write_data_whole(
        &self,
        t: TreeId,
        hint: u64,
        seq: bool,
        tier: Tier,
        fill: impl FnOnce(&mut [u8; BLKSZ]),
    ) -> Result<Bptr> {
        self.write_data_as(t, hint, seq, tier, false, fill)
    }

    fn write_data_as(
        &self,
        t: TreeId,
        hint: u64,
        seq: bool,
        tier: Tier,
        zero: bool,
        fill: impl FnOnce(&mut [u8; BLKSZ]),
    ) -> Result<Bptr> {
        self.writable()?;
        let mut m = self.mutlk.lock();
        if !m.tree(t)?.mutable {
            return Err(Error::ReadOnly);
        }
        self.keep_margin(&mut m, 1)?;
        let ts = m.tree(t)?;
        let (bp, _b, ()) = self.new_block(Kind::Data { hint, seq }, tier, ts.wgen, |buf| {
            if zero {
                buf.fill(0);
            }
            fill(buf);
            Ok(())
        })?;
        Ok(bp)
    }

    /// Read a data block, verified against its pointer.
    pub fn read_data(&self, bp: &Bptr) -> Result<Block<'_>> {
        self.read_block(bp, false)
    }

    /// Release a data block that was written but never referenced by tree
    /// `t` (for example when the upsert that was to reference it failed).
    pub fn discard_data(&self, t: TreeId, bp: &Bptr) -> Result<()> {
        let m = self.mutlk.lock();
        let wgen = m.tree(t)?.wgen;
        self.free_block(bp, wgen)?;
        self.collect(m)
    }

    /// Run `f` inside an epoch guard with a reader context over tree `t`:
    /// every block reachable from the root it is given stays valid until `f`
    /// returns (checks, dumps, long scans). The context carries the tree's
    /// write buffer as it was when the root was taken, so
    /// [`tree::lookup`] and [`tree::scan`] through it see every upsert;
    /// [`tree::walk`] sees the tree's blocks only.
    pub fn with_reader<R>(
        &self,
        t: TreeId,
        f: impl FnOnce(&ctx::ReadCtx<'_>, &Root) -> Result<R>,
    ) -> Result<R> {
        let _g = self.epochs.pin();
        let p = self.published(t)?;
        f(&ctx::ReadCtx::with_runs(self, p.runs), &p.root)
    }
}

pub use ctx::ReadCtx;

/// A value [`Store::get`] found: in place in the cached leaf, or computed.
pub type Value<'s> = tree::Found<Block<'s>>;

#[cfg(test)]
pub(crate) mod overwrite_tests;
#[cfg(test)]
mod pressure_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wbuf_tests;
