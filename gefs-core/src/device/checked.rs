//! Device I/O with the library's errors ([`DeviceExt`], for every [`Device`]).
//!
//! Invariants: every failure of a device call becomes an [`Error::Io`]
//! naming the operation and the byte offset; every block read by pointer is
//! checked against the pointer's hash ([`DeviceExt::read_block`]) before its
//! bytes are used, and a mismatch is an [`Error::Checksum`] naming the block
//! and both hashes. Outside this module and the device implementations,
//! nothing calls [`Device::read_at`], [`Device::write_at`] or
//! [`Device::flush`] directly.

use super::Device;
use crate::error::{Error, IoOp, Result};
use crate::format::{block_hash, Bptr, BLKSZ};

/// The [`Device`] calls with typed errors, and the verified block read.
pub trait DeviceExt: Device {
    /// Read exactly `buf.len()` bytes at `off` (no hash to check: the caller
    /// validates what it reads, as superblocks carry their own checksum).
    fn read_bytes(&self, buf: &mut [u8], off: u64) -> Result<()> {
        self.read_at(buf, off)
            .map_err(|e| Error::io(IoOp::Read, off, e))
    }

    /// Read the block `bp` points to into `buf` and verify it against the
    /// pointer's hash.
    fn read_block(&self, bp: &Bptr, buf: &mut [u8; BLKSZ]) -> Result<()> {
        self.read_bytes(&mut buf[..], bp.addr.0)?;
        let actual = block_hash(&buf[..]);
        if actual != bp.hash {
            return Err(Error::Checksum {
                addr: bp.addr,
                expected: bp.hash,
                actual,
            });
        }
        Ok(())
    }

    /// Write all of `buf` at `off`.
    fn write_bytes(&self, buf: &[u8], off: u64) -> Result<()> {
        self.write_at(buf, off)
            .map_err(|e| Error::io(IoOp::Write, off, e))
    }

    /// Write `bufs` back to back from `off`.
    fn write_all_vectored(&self, bufs: &[&[u8]], off: u64) -> Result<()> {
        self.write_vectored_at(bufs, off)
            .map_err(|e| Error::io(IoOp::Write, off, e))
    }

    /// The durability barrier ([`Device::flush`]).
    fn barrier(&self) -> Result<()> {
        self.flush().map_err(|e| Error::io(IoOp::Flush, 0, e))
    }
}

impl<D: Device + ?Sized> DeviceExt for D {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{FaultyDev, IoKind, MemDev};
    use crate::ids::{BlockAddr, Gen};

    #[test]
    fn a_block_read_is_verified_and_failures_name_the_block() {
        let dev = FaultyDev::new(MemDev::new(1 << 20));
        let mut b = [7u8; BLKSZ];
        dev.write_bytes(&b, 2 * BLKSZ as u64).unwrap();
        let bp = Bptr {
            addr: BlockAddr(2 * BLKSZ as u64),
            hash: block_hash(&b),
            gen: Gen(1),
        };
        b.fill(0);
        dev.read_block(&bp, &mut b).unwrap();
        assert_eq!(b, [7u8; BLKSZ]);
        let wrong = Bptr { hash: 1, ..bp };
        match dev.read_block(&wrong, &mut b) {
            Err(Error::Checksum {
                addr,
                expected,
                actual,
            }) => assert_eq!((addr, expected, actual), (bp.addr, 1, bp.hash)),
            r => panic!("{r:?}"),
        }
        dev.fail_nth(IoKind::Read, 1, false);
        match dev.read_block(&bp, &mut b) {
            Err(Error::Io {
                op: IoOp::Read,
                off,
                ..
            }) => assert_eq!(off, bp.addr.0),
            r => panic!("{r:?}"),
        }
        dev.fail_nth(IoKind::Flush, 1, false);
        assert!(matches!(
            dev.barrier(),
            Err(Error::Io {
                op: IoOp::Flush,
                ..
            })
        ));
    }
}
