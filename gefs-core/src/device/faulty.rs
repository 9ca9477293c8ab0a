//! [`FaultyDev`]: wraps a device and injects faults: EIO on the Nth read,
//! write or flush, and damaged contents on reads of chosen blocks (bit flips,
//! zeroed, stale or misdirected blocks, torn writes).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Device;
use crate::format::{BLKSZ, BLKSZ_U64};

/// Which operation a countdown applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoKind {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Flushes.
    Flush,
}

/// Damage applied to one block's contents whenever it is read.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Flip bit `bit` (0..BLKSZ*8) of the block.
    BitFlip(usize),
    /// The block reads as zeros.
    Zero,
    /// The block reads as these contents (a stale version of the block, or a
    /// different block's contents for a misdirected write).
    Replace(Arc<[u8]>),
    /// The first `keep` bytes are what was written; the rest are `old`'s.
    Torn {
        /// Bytes of the new contents that made it.
        keep: usize,
        /// The contents before the write.
        old: Arc<[u8]>,
    },
}

#[derive(Debug, Default)]
struct Plan {
    fail_at: HashMap<IoKind, u64>,
    sticky: bool,
    failed: bool,
    damage: HashMap<u64, Fault>,
}

/// A device that fails on command.
#[derive(Debug)]
pub struct FaultyDev<D> {
    inner: D,
    counts: [AtomicU64; 3],
    plan: Mutex<Plan>,
}

impl<D: Device> FaultyDev<D> {
    /// Wrap `inner` with no faults planned.
    pub fn new(inner: D) -> FaultyDev<D> {
        FaultyDev {
            inner,
            counts: Default::default(),
            plan: Mutex::new(Plan::default()),
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Make the `n`th (1-based, counted from now) operation of `kind` fail
    /// with EIO. With `sticky`, every operation after the first failure fails.
    pub fn fail_nth(&self, kind: IoKind, n: u64, sticky: bool) {
        let mut p = self.plan.lock();
        let base = self.count(kind);
        p.fail_at.insert(kind, base + n);
        p.sticky = sticky;
    }

    /// Stop failing.
    pub fn heal(&self) {
        let mut p = self.plan.lock();
        p.fail_at.clear();
        p.failed = false;
        p.sticky = false;
    }

    /// Damage the block at `addr` on every read from now on.
    pub fn damage(&self, addr: u64, f: Fault) {
        self.plan
            .lock()
            .damage
            .insert(addr / BLKSZ_U64 * BLKSZ_U64, f);
    }

    /// Operations of `kind` so far.
    pub fn count(&self, kind: IoKind) -> u64 {
        self.counts[kind as usize].load(Ordering::SeqCst)
    }

    fn tick(&self, kind: IoKind) -> io::Result<()> {
        let n = self.counts[kind as usize].fetch_add(1, Ordering::SeqCst) + 1;
        let mut p = self.plan.lock();
        let hit = p.fail_at.get(&kind) == Some(&n) || (p.sticky && p.failed);
        if hit {
            p.failed = true;
            return Err(io::Error::other(format!(
                "injected {kind:?} error (op {n})"
            )));
        }
        Ok(())
    }

    fn apply_damage(&self, buf: &mut [u8], off: u64) {
        let p = self.plan.lock();
        if p.damage.is_empty() {
            return;
        }
        let first = off / BLKSZ_U64;
        let last = (off + buf.len() as u64).div_ceil(BLKSZ_U64);
        for blk in first..last {
            let Some(f) = p.damage.get(&(blk * BLKSZ_U64)) else {
                continue;
            };
            let mut page = vec![0u8; BLKSZ];
            let _ = self.inner.read_at(&mut page, blk * BLKSZ_U64);
            match f {
                Fault::BitFlip(bit) => page[(bit / 8) % BLKSZ] ^= 1 << (bit % 8),
                Fault::Zero => page.fill(0),
                Fault::Replace(d) => {
                    let n = d.len().min(BLKSZ);
                    page[..n].copy_from_slice(&d[..n]);
                }
                Fault::Torn { keep, old } => {
                    let k = (*keep).min(BLKSZ);
                    let n = old.len().min(BLKSZ);
                    if k < n {
                        page[k..n].copy_from_slice(&old[k..n]);
                    }
                }
            }
            // Copy the overlap of the damaged page into the caller's buffer.
            let pstart = blk * BLKSZ_U64;
            let s = pstart.max(off);
            let e = (pstart + BLKSZ_U64).min(off + buf.len() as u64);
            let (bs, ps) = ((s - off) as usize, (s - pstart) as usize);
            let n = (e - s) as usize;
            buf[bs..bs + n].copy_from_slice(&page[ps..ps + n]);
        }
    }
}

impl<D: Device> Device for FaultyDev<D> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.tick(IoKind::Read)?;
        self.inner.read_at(buf, off)?;
        self.apply_damage(buf, off);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.tick(IoKind::Write)?;
        self.inner.write_at(buf, off)
    }

    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        self.tick(IoKind::Write)?;
        self.inner.write_vectored_at(bufs, off)
    }

    fn flush(&self) -> io::Result<()> {
        self.tick(IoKind::Flush)?;
        self.inner.flush()
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDev;

    #[test]
    fn countdown_and_damage() {
        let d = FaultyDev::new(MemDev::new(1 << 20));
        d.write_at(&[5; BLKSZ], 0).unwrap();
        d.fail_nth(IoKind::Flush, 2, false);
        d.flush().unwrap();
        assert!(d.flush().is_err());
        d.flush().unwrap();
        d.damage(0, Fault::BitFlip(9));
        let mut b = [0u8; 4];
        d.read_at(&mut b, 0).unwrap();
        assert_eq!(b, [5, 5 ^ 2, 5, 5]);
        d.damage(0, Fault::Zero);
        d.read_at(&mut b, 2).unwrap();
        assert_eq!(b, [0; 4]);
        d.fail_nth(IoKind::Write, 1, true);
        assert!(d.write_at(&[1], 0).is_err());
        assert!(d.write_at(&[1], 0).is_err());
        d.heal();
        d.write_at(&[1], 0).unwrap();
    }
}
