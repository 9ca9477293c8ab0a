//! Opening an image: choose the superblock, replay the allocation logs,
//! verify the snapshot tree's root, and build the in-memory state.
//!
//! Both superblock copies are read and decoded. The copy with the higher
//! commit sequence whose checksum verifies, whose arena logs replay to the
//! free counts it records, and whose snapshot-tree root reads back with the
//! right hash wins; if it fails any of these, the other copy is tried. The
//! state of the copy not chosen is reported ([`SbChoice`]), so that tools
//! can warn about damage to the redundant copy.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::{Config, Mutation, Store, TreeState};
use crate::alloc::Allocator;
use crate::cache::Cache;
use crate::device::{Device, DeviceExt};
use crate::epoch::Epochs;
use crate::error::{Error, Result};
use crate::format::superblock::Superblock;
use crate::format::value::TreeRec;
use crate::format::{Bptr, BLKSZ, BLKSZ_U64};
use crate::ids::{BlockAddr, Gen};
use crate::tree::Root;
use crate::CorruptKind;

/// What was found in one superblock copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbCopy {
    /// Valid, at this commit.
    Valid(u64),
    /// Valid but not usable (its log or roots failed), at this commit.
    Unusable(u64, String),
    /// Damaged or absent.
    Bad(String),
}

/// Which copy the store was opened from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbChoice {
    /// 0 for copy A (first block), 1 for copy B (last block).
    pub used: usize,
    /// The state of copy A and copy B.
    pub copies: [SbCopy; 2],
}

/// Read and decode the superblock at `addr`.
pub fn read_superblock(dev: &dyn Device, addr: BlockAddr) -> Result<Superblock> {
    let mut b = vec![0u8; BLKSZ];
    dev.read_bytes(&mut b, addr.0)?;
    Superblock::decode(&b, addr)
}

/// The address of copy B on a device of `size` bytes.
pub fn sb_b_addr(size: u64) -> BlockAddr {
    BlockAddr((size / BLKSZ_U64).saturating_sub(1) * BLKSZ_U64)
}

/// Where readers look for copy B on a device of `size` bytes whose copy A
/// decoded as `a`: the last block of the space copy A describes, which is
/// the device's last block unless the device has grown since (a grow not
/// yet made, or cut short); the device's last block if copy A does not
/// decode or does not fit.
pub fn copy_b_addr(size: u64, a: Option<&Superblock>) -> BlockAddr {
    match a {
        Some(sb) if sb.geometry.dev_size <= size => sb.geometry.sb_b(),
        _ => sb_b_addr(size),
    }
}

impl Store {
    /// Open the store on `dev`.
    pub fn open(dev: Arc<dyn Device>, cfg: &Config) -> Result<Store> {
        if dev.size() < 2 * BLKSZ_U64 {
            return Err(Error::NotGefs {
                why: format!("device of {} bytes is too small", dev.size()),
            });
        }
        let a = read_superblock(&*dev, BlockAddr(0));
        // Copy B is the last block of the space copy A describes (which is
        // the device's last block unless the device has grown since).
        let b_at = copy_b_addr(dev.size(), a.as_ref().ok());
        let b = read_superblock(&*dev, b_at);
        let mut copies = [describe(&a), describe(&b)];
        let mut order: Vec<(usize, Superblock)> = [a, b]
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| r.ok().map(|sb| (i, sb)))
            .collect();
        order.sort_by_key(|(_, sb)| std::cmp::Reverse(sb.commit_gen));
        let mut first_err = None;
        for (i, sb) in order {
            let at = if i == 0 { BlockAddr(0) } else { b_at };
            match Store::from_superblock(dev.clone(), cfg, &sb, at) {
                Ok(mut s) => {
                    s.sb_choice.used = i;
                    s.sb_choice.copies = copies;
                    return Ok(s);
                }
                Err(e) => {
                    copies[i] = SbCopy::Unusable(sb.commit_gen, e.to_string());
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| Error::NotGefs {
            why: match &copies {
                [SbCopy::Bad(x), SbCopy::Bad(y)] => format!("copy A: {x}; copy B: {y}"),
                _ => "no usable superblock".into(),
            },
        }))
    }

    /// Build a store from one superblock (read from `at`), verifying its
    /// logs and roots.
    fn from_superblock(
        dev: Arc<dyn Device>,
        cfg: &Config,
        sb: &Superblock,
        at: BlockAddr,
    ) -> Result<Store> {
        if sb.geometry.dev_size > dev.size() {
            return Err(Error::corrupt(
                at,
                CorruptKind::Header,
                format!(
                    "superblock describes {} bytes, the device has {}",
                    sb.geometry.dev_size,
                    dev.size()
                ),
            ));
        }
        let alloc = Allocator::open(&*dev, sb.geometry, &sb.arenas)?;
        let snap = Root {
            bp: sb.snap_root,
            height: sb.snap_height,
        };
        let mut m = Mutation {
            commit_gen: sb.commit_gen,
            nextgen: sb.nextgen,
            nextqid: sb.nextqid,
            trees: Vec::new(),
        };
        let wgen = m.take_gen();
        m.trees.push(snap_tree_state(snap, wgen));
        let s = Store::assemble(dev, cfg, alloc, m, sb.geometry);
        // The snapshot tree's root must read back (hash and structure).
        s.read_block(&snap.bp, true)?;
        Ok(s)
    }

    pub(super) fn assemble(
        dev: Arc<dyn Device>,
        cfg: &Config,
        alloc: Allocator,
        m: Mutation,
        geo: crate::format::superblock::Geometry,
    ) -> Store {
        let roots = m
            .trees
            .iter()
            .map(|t| super::Published::bare(t.root))
            .collect();
        Store {
            dev,
            geo,
            cache: Cache::new(cache_for(cfg.cache_bytes, geo.dev_size)),
            alloc,
            epochs: Epochs::new(),
            read_only: cfg.read_only,
            wbuf_cap: std::sync::atomic::AtomicUsize::new(super::DEFAULT_WRITE_BUFFER_BYTES),
            broken: AtomicBool::new(false),
            mutlk: Mutex::new(m),
            roots: RwLock::new(roots),
            wb: Mutex::new(()),
            sb_choice: SbChoice {
                used: 0,
                copies: [
                    SbCopy::Bad("not read".into()),
                    SbCopy::Bad("not read".into()),
                ],
            },
            blocks_written: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            upserts: AtomicU64::new(0),
            allocs: AtomicU64::new(1),
            headroom: Mutex::new((0, 0)),
            ops: RwLock::new(()),
            held: Mutex::new(super::reclaim::Held::default()),
        }
    }
}

/// The writer's state of the snapshot tree.
pub(super) fn snap_tree_state(root: Root, wgen: Gen) -> TreeState {
    TreeState {
        label: String::new(),
        rec: TreeRec {
            nref: 0,
            nlbl: 0,
            ht: root.height,
            flag: 0,
            gen: 0,
            pred: TreeRec::NONE,
            succ: TreeRec::NONE,
            base: 0,
            root: Bptr::NONE,
            log: Bptr::NONE,
            nodes: 0,
        },
        mutable: true,
        root,
        nodes: 0,
        wgen,
        dirty: false,
        dead: Default::default(),
        refs: 1,
        closed: false,
        wbuf: Default::default(),
        log: Default::default(),
    }
}

fn describe(r: &Result<Superblock>) -> SbCopy {
    match r {
        Ok(sb) => SbCopy::Valid(sb.commit_gen),
        Err(e) => SbCopy::Bad(e.to_string()),
    }
}

/// The cache a store gets when `asked` bytes are configured for an image of
/// `dev_size` bytes: never more than the image can hold (a larger one would
/// only reserve memory no block can use), but at least 16 MiB so that a tiny
/// image keeps room for its working set.
pub(crate) fn cache_for(asked: usize, dev_size: u64) -> usize {
    let image = usize::try_from(dev_size).unwrap_or(usize::MAX);
    asked.min(image.max(16 << 20))
}
