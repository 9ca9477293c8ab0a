//! Checking a store that is in use: the commit a [`PinnedCommit`] holds
//! still, read through a device view that answers superblock reads with the
//! copies captured when it was pinned (later commits rewrite the real ones)
//! and refuses writes. Everything else the pinned commit reaches is on the
//! device unchanged for as long as the pin lives (`store/reclaim.rs`), so
//! the check sees exactly that commit while the server commits on.

#![deny(clippy::indexing_slicing)]

use std::io;

use crate::device::Device;
use crate::error::Result;
use crate::store::PinnedCommit;

use super::{CheckOpts, Report};

/// The device as the pinned commit left it.
struct PinnedView<'a> {
    pin: &'a PinnedCommit<'a>,
}

impl Device for PinnedView<'_> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.pin.device().read_at(buf, off)?;
        let end = off.saturating_add(buf.len() as u64);
        for (at, img) in &self.pin.superblocks {
            let img_end = at.saturating_add(img.len() as u64);
            let (lo, hi) = (off.max(*at), end.min(img_end));
            if lo < hi {
                let (b, i) = ((lo - off) as usize, (lo - at) as usize);
                let n = (hi - lo) as usize;
                if let (Some(dst), Some(src)) = (buf.get_mut(b..b + n), img.get(i..i + n)) {
                    dst.copy_from_slice(src);
                }
            }
        }
        Ok(())
    }

    fn write_at(&self, _buf: &[u8], _off: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a pinned commit is read-only",
        ))
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn size(&self) -> u64 {
        self.pin.device().size()
    }
}

/// Check the commit `pin` holds, while its store goes on serving: blocks,
/// trees, allocation and the file-system checks, as [`super::check`] does
/// offline.
pub fn check_pinned(pin: &PinnedCommit<'_>, opts: &CheckOpts) -> Result<Report> {
    super::check(&PinnedView { pin }, opts)
}
