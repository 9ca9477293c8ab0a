//! Growing an image in place (`gefs-mkfs --grow`): after its file or device
//! has grown, add arenas in the new space and move copy B of the superblock
//! to the new last block.
//!
//! **Layout decision.** Arenas stay uniform (FORMAT.md §2): grow adds whole
//! arenas of the image's `arena_size` after the last one, as many as fit
//! before the new copy B (at most 255 in all). So nothing about the format
//! changes — a grown image is an ordinary version-1 image that any reader
//! opens — and an address's arena stays a division. The price: new space
//! smaller than one arena stays unused slack until a later grow makes room
//! for a whole arena ([`grow_geometry`] refuses a grow that adds nothing,
//! and says how large the device must be). Extending the last arena instead
//! would have needed per-arena sizes in the superblock (a new version).
//!
//! **Crash safety.** Every write goes where nothing durable points, or is a
//! superblock copy, in this order, each step flushed before the next:
//! 1. the superblock in use is written again at the device's last block
//!    (unless the device has not grown), so that wherever a reader looks for
//!    copy B (FORMAT.md §3: the end of copy A's space, or the device's end
//!    when copy A does not decode) it finds the current commit;
//! 2. each new arena's first allocation-log block, in the new space (which
//!    no superblock describes yet; it may overwrite the old copy B when the
//!    image had no slack, which step 1 made redundant);
//! 3. copy A: the grown superblock (`commit_gen` + 1, the new arena count,
//!    records and `dev_size`);
//! 4. copy B at the new last block (= the device's last block).
//!
//! A cut before step 3 completes leaves copy A old or torn: the old image
//! opens, from copy A (copy B at its old place) or, if A is torn, from the
//! copy step 1 wrote. A cut during step 4 leaves copy A grown and valid. So
//! every crash state opens as the old or the grown file system, with its
//! contents unchanged (`tests/tests/grow.rs` replays every one). An old image
//! on a grown device keeps copy B at its old place and, in each commit,
//! also at the device's last block (`commit.rs`), so step 1's copy is never
//! left stale behind it; running the grow again completes it.

use std::sync::Arc;

use super::open::{copy_b_addr, read_superblock};
use super::{Config, Store};
use crate::alloc::Allocator;
use crate::device::{Device, DeviceExt};
use crate::error::{Error, Result};
use crate::format::superblock::{Geometry, Superblock, MAX_ARENAS};
use crate::format::BLKSZ_U64;
use crate::ids::{BlockAddr, Gen};
use crate::units::human;

/// What a grow did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grown {
    /// The layout before.
    pub old: Geometry,
    /// The layout after.
    pub new: Geometry,
    /// The commit the grow wrote.
    pub commit_gen: u64,
}

impl Grown {
    /// Arenas added.
    pub fn added(&self) -> u32 {
        self.new.narena - self.old.narena
    }

    /// Bytes of the new device no arena covers (less than one arena).
    pub fn unused(&self) -> u64 {
        slack(&self.new)
    }
}

/// Bytes between the last arena's end and copy B.
fn slack(g: &Geometry) -> u64 {
    let end = g.arena_start + u64::from(g.narena) * g.arena_size;
    g.dev_size.saturating_sub(BLKSZ_U64).saturating_sub(end)
}

/// The layout `old` grows to on a device of `len` bytes: as many whole
/// arenas of `old.arena_size` as fit before the new last block, up to 255
/// arenas. Refuses, saying why and what would do, when none fits.
pub fn grow_geometry(old: &Geometry, len: u64) -> Result<Geometry> {
    let dev_size = len / BLKSZ_U64 * BLKSZ_U64;
    if dev_size <= old.dev_size {
        return Err(Error::Invalid(format!(
            "the device ({}) is no larger than the file system ({}): extend it first, or \
             give the new size with -s",
            human(len),
            human(old.dev_size)
        )));
    }
    if old.narena >= MAX_ARENAS {
        return Err(Error::Invalid(format!(
            "the file system already has the most arenas ({MAX_ARENAS}); it cannot grow"
        )));
    }
    let end = old.arena_start + u64::from(old.narena) * old.arena_size;
    let room = dev_size.saturating_sub(BLKSZ_U64).saturating_sub(end);
    let fit = (room / old.arena_size).min(u64::from(MAX_ARENAS - old.narena));
    if fit == 0 {
        let need = end + old.arena_size + BLKSZ_U64;
        return Err(Error::Invalid(format!(
            "growing to {} adds nothing: the file system grows by whole arenas of {}, so the \
             device must be at least {} ({need} bytes)",
            human(dev_size),
            human(old.arena_size),
            human(need)
        )));
    }
    let new = Geometry {
        dev_size,
        narena: old.narena + fit as u32,
        ..*old
    };
    Ok(new)
}

impl Store {
    /// Grow the image on `dev` into the device's whole size (see the module
    /// docs). The image must not be in use: the caller holds its lock.
    pub fn grow(dev: Arc<dyn Device>) -> Result<Grown> {
        // Open it as a reader would, to validate it and find the copy in
        // use; nothing is written.
        let cfg = Config {
            cache_bytes: 16 << 20,
            read_only: true,
        };
        let s = Store::open(dev.clone(), &cfg)?;
        let (used, gen) = (s.superblock_choice().used, s.commit_gen());
        drop(s);
        let a = read_superblock(&*dev, BlockAddr(0)).ok();
        let at = match used {
            0 => BlockAddr(0),
            _ => copy_b_addr(dev.size(), a.as_ref()),
        };
        let sb = read_superblock(&*dev, at)?;
        if sb.commit_gen != gen {
            return Err(Error::Internal(format!(
                "superblock at {at} is commit {}, the image opened at {gen}",
                sb.commit_gen
            )));
        }
        let old = sb.geometry;
        let new = grow_geometry(&old, dev.size())?;
        let write = |buf: &[u8], off: u64| dev.write_bytes(buf, off);
        let flush = || dev.barrier();
        // 1. The current superblock at the new last block too.
        if new.sb_b() != old.sb_b() {
            write(&sb.encode()[..], new.sb_b().0)?;
            flush()?;
        }
        // 2. The new arenas' logs, in space no superblock describes yet.
        let g = Gen(sb.commit_gen + 1);
        let (recs, out) = Allocator::fresh_arenas(&new, old.narena..new.narena, g)?;
        for (addr, b) in &out.writes {
            write(&b[..], addr.0)?;
        }
        flush()?;
        // 3, 4. The grown superblock: copy A, then copy B.
        let mut arenas = sb.arenas.clone();
        arenas.extend(recs);
        let grown = Superblock {
            version: crate::format::FORMAT_VERSION,
            geometry: new,
            commit_gen: g.0,
            arenas,
            ..sb
        };
        let img = grown.encode();
        write(&img[..], 0)?;
        flush()?;
        write(&img[..], new.sb_b().0)?;
        flush()?;
        Ok(Grown {
            old,
            new,
            commit_gen: g.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_whole_arenas_and_says_why_not() {
        let old = Geometry::for_device(64 << 20).unwrap();
        let e = grow_geometry(&old, 64 << 20).unwrap_err().to_string();
        assert!(e.contains("no larger"), "{e}");
        let e = grow_geometry(&old, (64 << 20) + old.arena_size / 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("adds nothing") && e.contains("at least"), "{e}");
        let g = grow_geometry(&old, 128 << 20).unwrap();
        assert_eq!(
            (g.narena, g.arena_size, g.dev_size),
            (16, old.arena_size, 128 << 20)
        );
        assert!(slack(&g) < g.arena_size);
        // At most 255 arenas, the rest left over.
        let g = grow_geometry(&old, 1 << 40).unwrap();
        assert_eq!(g.narena, MAX_ARENAS);
        let e = grow_geometry(&g, 2 << 40).unwrap_err().to_string();
        assert!(e.contains("most arenas"), "{e}");
    }
}
