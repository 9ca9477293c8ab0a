//! Formatting a device (the reference's "ream"), as far as the store goes:
//! labels and trees.
//!
//! A new image holds three snapshot trees: `empty` (immutable, the template
//! for new hierarchies), `adm` and `main` (mutable). The snapshot tree
//! holds their labels and records. What the trees start with (root
//! directories, the users file) is the file-system layer's, which fills
//! each tree through a [`Seed`] before its record is written
//! (`fs/format.rs`, where [`Store::format`] is). Everything is written
//! through the ordinary tree and commit code, so a new image is exactly as
//! checked as any other.

use std::sync::Arc;

use super::{Config, Mutation, Store, TreeId};
use crate::alloc::{Allocator, Kind, Tier};
use crate::device::{Device, DeviceExt};
use crate::error::Result;
use crate::format::msg::Msg;
use crate::format::superblock::Geometry;
use crate::format::value::{LabelVal, TreeRec, LABEL_MUTABLE};
use crate::format::Encode;
use crate::format::{key, Bptr};
use crate::ids::Gen;
use crate::tree::{self, Root};

/// Options for formatting ([`Store::format`]).
#[derive(Debug, Clone)]
pub struct FormatOpts {
    /// The first administrator (a member of `adm`), whom the file-system
    /// layer writes into `adm`'s users file.
    pub user: String,
    /// Block cache for the formatting run.
    pub cache_bytes: usize,
}

/// The trees of a new image, in the order they are made: label, and
/// whether it is mutable.
pub const NEW_TREES: [(&str, bool); 3] = [("empty", false), ("adm", true), ("main", true)];

/// One tree of a new image while its contents are written.
pub struct Seed<'a> {
    s: &'a Store,
    m: &'a mut Mutation,
    t: TreeId,
}

impl Seed<'_> {
    /// Apply a batch of messages to the tree.
    pub fn upsert(&mut self, msgs: Vec<Msg>) -> Result<()> {
        self.s.upsert_locked(self.m, self.t, msgs, Tier::Normal)
    }

    /// Write one data block of file `qid` holding `bytes` (zero-padded).
    pub fn write_data(&mut self, qid: u64, bytes: &[u8]) -> Result<Bptr> {
        let wgen = self.m.tree(self.t)?.wgen;
        let (bp, _b, ()) = self.s.new_zeroed(
            Kind::Data {
                hint: qid,
                seq: true,
            },
            Tier::Normal,
            wgen,
            |buf| {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(())
            },
        )?;
        Ok(bp)
    }
}

impl Store {
    /// Format `dev` with the trees of [`NEW_TREES`], each filled by `fill`
    /// (given its label) before its record is written, and return the new
    /// store, open. `next_qid` is the first qid the new image hands out.
    /// The image is durable when this returns.
    pub(crate) fn format_trees(
        dev: Arc<dyn Device>,
        cache_bytes: usize,
        next_qid: u64,
        fill: &mut dyn FnMut(&mut Seed<'_>, &str) -> Result<()>,
    ) -> Result<Store> {
        let geo = Geometry::for_device(dev.size())?;
        // Whatever image was here stops being one before anything new is
        // written, so a crash mid-format never leaves an old superblock
        // pointing into half-overwritten space.
        let zero = [0u8; crate::format::BLKSZ];
        for at in [0, geo.sb_b().0, super::open::sb_b_addr(dev.size()).0] {
            dev.write_bytes(&zero, at)?;
        }
        dev.barrier()?;
        let alloc = Allocator::format(geo)?;
        let mut m = Mutation {
            commit_gen: 0,
            nextgen: 1,
            nextqid: next_qid,
            trees: Vec::new(),
        };
        let snap_gen = m.take_gen();
        let placeholder = Root {
            bp: Bptr::NONE,
            height: 1,
        };
        m.trees
            .push(super::open::snap_tree_state(placeholder, snap_gen));
        let cfg = Config {
            cache_bytes,
            read_only: false,
        };
        let s = Store::assemble(dev, &cfg, alloc, m, geo);
        s.populate(fill)?;
        s.sync()?;
        Ok(s)
    }

    fn populate(&self, fill: &mut dyn FnMut(&mut Seed<'_>, &str) -> Result<()>) -> Result<()> {
        let mut m = self.mutlk.lock();
        // The snapshot tree starts as one empty leaf.
        let snap_wgen = m.tree(TreeId::SNAP)?.wgen;
        let root = tree::create(&super::ctx::WriteCtx::new(
            self,
            super::ctx::Policy::unshared(snap_wgen),
            Tier::Normal,
        ))?;
        m.trees[0].root = root;
        self.roots.write()[0] = super::Published::bare(root);
        let mut snap_msgs = Vec::new();
        for (label, mutable) in NEW_TREES {
            let id = m.take_gen();
            let t = self.new_tree(&mut m, label, id)?;
            fill(
                &mut Seed {
                    s: self,
                    m: &mut m,
                    t,
                },
                label,
            )?;
            let ts = m.tree(t)?;
            let rec = TreeRec {
                nref: 0,
                nlbl: 1,
                ht: ts.root.height,
                flag: 0,
                gen: id.0,
                pred: TreeRec::NONE,
                succ: TreeRec::NONE,
                base: 0,
                root: ts.root.bp,
                log: Bptr::NONE,
                nodes: ts.nodes,
            };
            let flags = if mutable { LABEL_MUTABLE } else { 0 };
            snap_msgs.push(Msg::insert(
                key::label(label.as_bytes()),
                LabelVal { id: id.0, flags }.encode(),
            ));
            snap_msgs.push(Msg::insert(key::snap(id.0), rec.encode()));
            m.trees.pop();
            self.roots.write().pop();
        }
        self.upsert_locked(&mut m, TreeId::SNAP, snap_msgs, Tier::Normal)
    }

    /// A new, empty, mutable tree whose blocks are born in generation `id`.
    fn new_tree(&self, m: &mut Mutation, label: &str, id: Gen) -> Result<TreeId> {
        let root = tree::create(&super::ctx::WriteCtx::new(
            self,
            super::ctx::Policy::unshared(id),
            Tier::Normal,
        ))?;
        let mut st = super::open::snap_tree_state(root, id);
        st.label = label.to_string();
        st.nodes = 1;
        m.trees.push(st);
        self.roots.write().push(super::Published::bare(root));
        Ok(TreeId(m.trees.len() - 1))
    }
}
