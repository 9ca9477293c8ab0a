//! A test-only in-memory [`NodeStore`] that polices the tree's use of blocks.
//!
//! It hands out fresh addresses, verifies the hash and structure of every
//! node it returns, and panics on a read of a freed block, a double free, or
//! a free of a block it never handed out. It also holds "data blocks" for
//! `KDAT` tests, can fail writes after a countdown, and can serve tampered
//! node images (bypassing its checks) to test the tree's own.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::node::NodeView;
use crate::format::{block_hash, Bptr, BLKSZ, BLKSZ_U64};
use crate::ids::{BlockAddr, Gen};

use super::store::NodeStore;

#[derive(Default)]
struct Inner {
    nodes: HashMap<u64, Arc<[u8]>>,
    data: HashSet<u64>,
    freed: HashSet<u64>,
    next: u64,
    writes: usize,
    fail_at: Option<usize>,
    tamper: HashMap<u64, Arc<[u8]>>,
}

/// An in-memory block store for tree tests.
#[derive(Default)]
pub(crate) struct MemStore {
    inner: RefCell<Inner>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn fresh(i: &mut Inner) -> u64 {
        i.next += 1;
        i.next * BLKSZ_U64
    }

    /// Allocate a data block (never read by the tree) and return its pointer.
    pub fn alloc_data(&self) -> Bptr {
        let mut i = self.inner.borrow_mut();
        let a = Self::fresh(&mut i);
        i.data.insert(a);
        Bptr {
            addr: BlockAddr(a),
            hash: a ^ 0x5a5a,
            gen: Gen(1),
        }
    }

    /// Every allocated, not yet freed block: nodes and data.
    pub fn live(&self) -> HashSet<u64> {
        let i = self.inner.borrow();
        i.nodes.keys().chain(i.data.iter()).copied().collect()
    }

    /// Whether `addr` is allocated and not freed.
    pub fn is_live(&self, addr: BlockAddr) -> bool {
        let i = self.inner.borrow();
        i.nodes.contains_key(&addr.0) || i.data.contains(&addr.0)
    }

    /// Node writes so far.
    pub fn writes(&self) -> usize {
        self.inner.borrow().writes
    }

    /// Make every write fail once `n` more writes have succeeded (`None`: never).
    pub fn fail_after(&self, n: Option<usize>) {
        let mut i = self.inner.borrow_mut();
        i.fail_at = n.map(|n| i.writes + n);
    }

    /// Serve `image` for `addr` from now on, without hash or structure checks.
    pub fn tamper(&self, addr: BlockAddr, image: &[u8]) {
        self.inner
            .borrow_mut()
            .tamper
            .insert(addr.0, Arc::from(image));
    }

    /// Stop serving tampered images.
    pub fn untamper(&self) {
        self.inner.borrow_mut().tamper.clear();
    }

    /// The stored image of a live node.
    pub fn image(&self, addr: BlockAddr) -> Arc<[u8]> {
        let i = self.inner.borrow();
        i.nodes.get(&addr.0).cloned().expect("no such node")
    }
}

impl NodeStore for MemStore {
    type Ref = Arc<[u8]>;

    fn read(&self, bp: &Bptr) -> Result<Arc<[u8]>> {
        let i = self.inner.borrow();
        assert!(
            !i.freed.contains(&bp.addr.0),
            "read of freed block {}",
            bp.addr
        );
        if let Some(t) = i.tamper.get(&bp.addr.0) {
            return Ok(t.clone());
        }
        let Some(b) = i.nodes.get(&bp.addr.0) else {
            panic!("read of unknown block {}", bp.addr)
        };
        let actual = block_hash(b);
        if actual != bp.hash {
            return Err(Error::Checksum {
                addr: bp.addr,
                expected: bp.hash,
                actual,
            });
        }
        NodeView::new(b)
            .and_then(|v| v.validate())
            .map_err(|e| e.at(bp.addr))?;
        Ok(b.clone())
    }

    fn write<R>(
        &self,
        build: impl FnOnce(&mut [u8; BLKSZ]) -> Result<R>,
    ) -> Result<(Bptr, Arc<[u8]>, R)> {
        if let Some(n) = self.inner.borrow().fail_at {
            if self.inner.borrow().writes >= n {
                return Err(Error::NoSpace);
            }
        }
        // Stale bytes, as a recycled cache buffer holds: the tree's
        // builders must define every byte.
        let mut buf = vec![0xa5u8; BLKSZ];
        let arr: &mut [u8; BLKSZ] = buf.as_mut_slice().try_into().expect("block size");
        let r = build(arr)?;
        let mut i = self.inner.borrow_mut();
        let a = Self::fresh(&mut i);
        i.writes += 1;
        let img: Arc<[u8]> = Arc::from(buf);
        let bp = Bptr {
            addr: BlockAddr(a),
            hash: block_hash(&img),
            gen: Gen(1),
        };
        i.nodes.insert(a, img.clone());
        Ok((bp, img, r))
    }

    fn free(&self, bp: &Bptr) -> Result<()> {
        let mut i = self.inner.borrow_mut();
        let a = bp.addr.0;
        assert!(!i.freed.contains(&a), "double free of {}", bp.addr);
        let known = i.nodes.remove(&a).is_some() || i.data.remove(&a);
        assert!(known, "free of unknown block {}", bp.addr);
        i.freed.insert(a);
        Ok(())
    }
}
