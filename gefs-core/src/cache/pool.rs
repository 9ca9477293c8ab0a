//! The preallocated buffer pool: one 4 KiB-aligned region cut into 16 KiB
//! buffers. It is the only memory the cache ever uses for block contents, so
//! the cache's footprint is bounded at start-up.
//!
//! The region is *reserved* up front (an anonymous private mapping, without
//! swap reservation) and *touched* only when a buffer is first used: the
//! kernel backs each page with memory at its first write, so a large cache
//! costs nothing until blocks fill it, and starting is instant whatever its
//! size. Pages never written read as zeros (the kernel's zero page), so a
//! buffer that was never used holds only zeros: `cache/shard.rs` hands out
//! never-used slots as known-zero, and the cache skips the memset that a
//! recycled buffer needs to keep "a new block never shows stale bytes".
//! Under loom the region is an ordinary zeroed allocation (same contract).
//!
//! The pool hands out raw access; who may read or write a buffer at any
//! moment is decided by the cache's slot protocol (see `cache/mod.rs`), which
//! every `unsafe` block here relies on.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use crate::format::BLKSZ;

/// Alignment of the region (a page; buffers are page-aligned within it).
const ALIGN: usize = 4096;

/// A fixed array of block buffers.
pub(crate) struct Pool {
    base: NonNull<u8>,
    /// Bytes of the region.
    bytes: usize,
    nbuf: usize,
    /// Under loom, one tracked cell per buffer: every `get` registers a read
    /// and every `get_mut` a write, so that the model checker reports any
    /// access to a buffer that the slot protocol does not order after the
    /// previous writer or before the next one (the refcount's Release
    /// decrement and the pluck's Acquire read, the shard lock).
    #[cfg(feature = "loom")]
    track: Box<[loom::cell::UnsafeCell<()>]>,
}

// SAFETY: the pool is plain memory; concurrent access to individual buffers is
// serialised by the cache's slot protocol (a buffer is written only by the one
// thread that exclusively owns its slot, and read only while no such owner
// exists).
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

/// Reserve `bytes` (a non-zero multiple of [`ALIGN`]) of zero-filled memory,
/// page-aligned, without touching it.
#[cfg(not(feature = "loom"))]
fn reserve(bytes: usize) -> NonNull<u8> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing aliases no existing memory; the arguments are valid (no fd,
    // offset 0). MAP_NORESERVE: pages are committed as they are touched, so
    // the pool's size is a bound, not an up-front charge.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    match NonNull::new(p.cast::<u8>()) {
        Some(b) if p != libc::MAP_FAILED => b,
        _ => std::alloc::handle_alloc_error(layout(bytes)),
    }
}

/// Give back a region from [`reserve`].
#[cfg(not(feature = "loom"))]
fn unreserve(base: NonNull<u8>, bytes: usize) {
    // SAFETY: `base` and `bytes` are exactly a mapping made by `reserve`, and
    // the pool that owned it is being dropped, so nothing refers to it.
    unsafe { libc::munmap(base.as_ptr().cast(), bytes) };
}

/// Under loom: an ordinary zeroed allocation (small pools only).
#[cfg(feature = "loom")]
fn reserve(bytes: usize) -> NonNull<u8> {
    let l = layout(bytes);
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(l) };
    NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(l))
}

/// Give back a region from [`reserve`].
#[cfg(feature = "loom")]
fn unreserve(base: NonNull<u8>, bytes: usize) {
    // SAFETY: allocated in `reserve` with this very layout.
    unsafe { std::alloc::dealloc(base.as_ptr(), layout(bytes)) }
}

/// The layout of a region of `bytes` (for allocation-failure reports too).
fn layout(bytes: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(bytes, ALIGN)
        .unwrap_or_else(|_| std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>()))
}

impl Pool {
    /// Reserve `nbuf` buffers, all zeros until first written.
    pub(crate) fn new(nbuf: usize) -> Pool {
        let nbuf = nbuf.max(1);
        let bytes = nbuf
            .checked_mul(BLKSZ)
            .unwrap_or_else(|| std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>()));
        Pool {
            base: reserve(bytes),
            bytes,
            nbuf,
            #[cfg(feature = "loom")]
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
        #[cfg(feature = "loom")]
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
        #[cfg(all(target_arch = "x86_64", not(feature = "loom")))]
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
        #[cfg(not(all(target_arch = "x86_64", not(feature = "loom"))))]
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
        #[cfg(feature = "loom")]
        self.track[i].with_mut(|_| ());
        // SAFETY: inside the allocation; exclusivity is the caller's promise.
        unsafe { &mut *(self.base.as_ptr().add(i * BLKSZ) as *mut [u8; BLKSZ]) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        unreserve(self.base, self.bytes);
    }
}
