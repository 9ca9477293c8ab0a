//! The independent checkers the crash tests run on every recovered image:
//! gefs-check's library (every block, hash, structure, leak; as a store
//! only, since the model writes data keys of no file), and a walk of every
//! tree through the store's own read path.

use std::sync::Arc;

use gefs_core::check::{check_store, CheckOpts};
use gefs_core::device::MemDev;
use gefs_core::store::{Config, Store, TreeId};

/// Problems found on `img` (empty = clean). Warnings (a stale or torn
/// redundant superblock copy, which a crash legitimately leaves) are not
/// problems.
pub fn problems(img: &MemDev) -> Vec<String> {
    let opts = CheckOpts {
        threads: 1,
        progress: None,
    };
    let mut out: Vec<String> = match check_store(img, &opts) {
        Ok(r) => r.problems.iter().map(|p| format!("{p:?}")).collect(),
        Err(e) => vec![format!("check: {e}")],
    };
    out.extend(walk_all(img));
    out
}

fn walk_all(img: &MemDev) -> Vec<String> {
    let dev = Arc::new(img.snapshot());
    let cfg = Config {
        cache_bytes: 2 << 20,
        read_only: true,
    };
    let s = match Store::open(dev, &cfg) {
        Ok(s) => s,
        Err(e) => return vec![format!("open: {e}")],
    };
    let mut out = Vec::new();
    for label in ["main", "adm", "empty"] {
        let r = s.mount(label).and_then(|t| {
            s.with_reader(t, |ctx, root| {
                gefs_core::tree::walk(ctx, root, |_, _| Ok(()))?;
                gefs_core::tree::data_ptrs(ctx, root, |bp| ctx.read_data(&bp).map(drop))
            })
        });
        if let Err(e) = r {
            out.push(format!("{label}: {e}"));
        }
    }
    if let Err(e) = s.with_reader(TreeId::SNAP, |ctx, root| {
        gefs_core::tree::walk(ctx, root, |_, _| Ok(()))
    }) {
        out.push(format!("snapshot tree: {e}"));
    }
    out
}
