//! The preallocated buffer pool: one zeroed, 4 KiB-aligned allocation cut into
//! 16 KiB buffers. It is the only memory the cache ever uses for block
//! contents, so the cache's footprint is fixed at start-up.
//!
//! The pool hands out raw access; who may read or write a buffer at any
//! moment is decided by the cache's slot protocol (see `cache/mod.rs`), which
//! every `unsafe` block here relies on.
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

use crate::format::BLKSZ;

/// A fixed array of block buffers.
pub(crate) struct Pool {
    base: NonNull<u8>,
    layout: Layout,
    nbuf: usize,
    /// Under loom, one tracked cell per buffer: every `get` registers a read
    /// and every `get_mut` a write, so that the model checker reports any
    /// access to a buffer that the slot protocol does not order after the
    /// previous writer or before the next one (the refcount's Release
    /// decrement and the pluck's Acquire read, the shard lock).
    #[cfg(loom)]
    track: Box<[loom::cell::UnsafeCell<()>]>,
}

// SAFETY: the pool is plain memory; concurrent access to individual buffers is
// serialised by the cache's slot protocol (a buffer is written only by the one
// thread that exclusively owns its slot, and read only while no such owner
// exists).
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl Pool {
    /// Allocate `nbuf` zeroed buffers.
    pub(crate) fn new(nbuf: usize) -> Pool {
        let nbuf = nbuf.max(1);
        let layout = match Layout::from_size_align(nbuf * BLKSZ, 4096) {
            Ok(l) => l,
            Err(_) => std::alloc::handle_alloc_error(Layout::new::<u8>()),
        };
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        let base = match NonNull::new(p) {
            Some(b) => b,
            None => std::alloc::handle_alloc_error(layout),
        };
        Pool {
            base,
            layout,
            nbuf,
            #[cfg(loom)]
            track: (0..nbuf).map(|_| loom::cell::UnsafeCell::new(())).collect(),
        }
    }

    /// Number of buffers.
    pub(crate) fn len(&self) -> usize {
        self.nbuf
    }

    /// Shared view of buffer `i`.
    ///
    /// # Safety
    /// The caller must hold a reference on slot `i` whose state is sealed
    /// (ready, dirty, writing or clean), so that no thread can be writing it.
    pub(crate) unsafe fn get(&self, i: usize) -> &[u8; BLKSZ] {
        debug_assert!(i < self.nbuf);
        #[cfg(loom)]
        self.track[i].with(|_| ());
        // SAFETY: i < nbuf keeps the pointer inside the allocation; the
        // caller guarantees no concurrent writer.
        unsafe { &*(self.base.as_ptr().add(i * BLKSZ) as *const [u8; BLKSZ]) }
    }

    /// Hint the CPU to start loading the first cache line of buffer `i`,
    /// which a reader of a block almost always reads next (its header). Not
    /// an access: it reads nothing and can race with nothing.
    #[inline]
    pub(crate) fn prefetch(&self, i: usize) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            debug_assert!(i < self.nbuf);
            let p = self.base.as_ptr().wrapping_add(i * BLKSZ);
            // SAFETY: a prefetch has no architectural effect (it cannot fault
            // and reads nothing the program sees); SSE is baseline x86_64.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p as *const i8,
                )
            };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = i;
    }

    /// Exclusive view of buffer `i`.
    ///
    /// # Safety
    /// The caller must own slot `i` exclusively (building or loading it), so
    /// that no other reference to the buffer exists for the returned lifetime.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_mut(&self, i: usize) -> &mut [u8; BLKSZ] {
        debug_assert!(i < self.nbuf);
        #[cfg(loom)]
        self.track[i].with_mut(|_| ());
        // SAFETY: inside the allocation; exclusivity is the caller's promise.
        unsafe { &mut *(self.base.as_ptr().add(i * BLKSZ) as *mut [u8; BLKSZ]) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}
