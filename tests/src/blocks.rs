//! Every reachable block of an image, by class (tests T6): both superblock copies, the
//! allocation-log blocks, the snapshot tree's and the file trees' leaves and pivots, the file
//! data blocks, the deadlist heads and the message-log blocks, found by walking from the superblock with the store's
//! own readers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gefs_core::alloc::replay;
use gefs_core::device::Device;
use gefs_core::format::key::{self, KeyView};
use gefs_core::format::log::LogHeader;
use gefs_core::format::superblock::Superblock;
use gefs_core::format::value::{DlistVal, TreeRec};
use gefs_core::format::Decode;
use gefs_core::format::BLKSZ;
use gefs_core::store::{Config, Store, TreeId};
use gefs_core::tree;

/// Block class → addresses (byte offsets).
pub type Classes = BTreeMap<&'static str, BTreeSet<u64>>;

/// Every reachable block of the (undamaged) image on `dev`, by class: `superblock A`,
/// `superblock B`, `log`, `snap leaf`, `snap pivot`, `fs leaf`, `fs pivot`, `data`,
/// `deadlist`, `message log`. Panics if the image does not open.
pub fn classes(dev: Arc<dyn Device>) -> Classes {
    let mut c = Classes::new();
    let mut sbb = vec![0u8; BLKSZ];
    dev.read_at(&mut sbb, 0).expect("read");
    let sb = Superblock::decode(&sbb, gefs_core::BlockAddr(0)).expect("superblock");
    c.entry("superblock A").or_default().insert(0);
    c.entry("superblock B")
        .or_default()
        .insert(sb.geometry.sb_b().0);
    for (i, r) in sb.arenas.iter().enumerate() {
        let index = u32::try_from(i).expect("arena index");
        for bp in replay(dev.as_ref(), &sb.geometry, index, r)
            .expect("replay")
            .chain
        {
            c.entry("log").or_default().insert(bp.addr.0);
        }
    }
    let cfg = Config {
        cache_bytes: 2 << 20,
        read_only: true,
    };
    let s = Store::open(dev.clone(), &cfg).expect("open");
    let mut trees = vec![("snap", TreeId::SNAP)];
    for l in s.labels().expect("labels") {
        trees.push(("fs", s.mount(&l.name).expect("mount")));
    }
    for (kind, t) in trees {
        s.with_reader(t, |ctx, root| {
            tree::walk(ctx, root, |bp, v| {
                let class = match (kind, v.is_leaf()) {
                    ("snap", true) => "snap leaf",
                    ("snap", false) => "snap pivot",
                    (_, true) => "fs leaf",
                    (_, false) => "fs pivot",
                };
                c.entry(class).or_default().insert(bp.addr.0);
                Ok(())
            })?;
            tree::data_ptrs(ctx, root, |bp| {
                c.entry("data").or_default().insert(bp.addr.0);
                Ok(())
            })
        })
        .expect("walk");
    }
    let lists = s
        .scan(
            TreeId::SNAP,
            std::ops::Bound::Included(&[key::KDLIST][..]),
            std::ops::Bound::Excluded(&[key::KDLIST + 1][..]),
            10_000,
        )
        .expect("scan");
    for (k, v) in lists {
        assert!(matches!(KeyView::decode(&k), Ok(KeyView::Dlist { .. })));
        let d = DlistVal::decode(&v).expect("dlist");
        c.entry("deadlist").or_default().insert(d.head.addr.0);
    }
    let recs = s
        .scan(
            TreeId::SNAP,
            std::ops::Bound::Included(&[key::KSNAP][..]),
            std::ops::Bound::Excluded(&[key::KSNAP + 1][..]),
            10_000,
        )
        .expect("scan");
    for (_, v) in recs {
        let mut at = TreeRec::decode(&v).expect("record").log;
        while !at.is_none() {
            c.entry("message log").or_default().insert(at.addr.0);
            let mut b = vec![0u8; BLKSZ];
            dev.read_at(&mut b, at.addr.0).expect("read");
            let h = LogHeader::decode(&b).expect("header");
            if h.seq == 0 {
                break;
            }
            at = h.prev;
        }
    }
    c
}
