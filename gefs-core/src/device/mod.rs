//! The block-device seam: every byte gefs reads or writes goes through
//! [`Device`].
//!
//! Contract: `read_at` fills the whole buffer or fails; bytes never written
//! read as zeros. `write_at` is not durable until a later `flush` returns Ok;
//! unflushed writes may reach the medium in any order, torn at 4 KiB. `flush`
//! makes every write that returned before it durable (a real `fdatasync` on
//! files and block devices); a failed flush means nothing since the last good
//! flush may be durable, and the caller must stop (fsyncgate).
//!
//! The library calls devices through [`DeviceExt`] (`checked.rs`), which
//! turns their failures into [`crate::Error::Io`] and verifies every block
//! read by pointer against the pointer's hash.

use std::io;

mod checked;
#[cfg(any(test, feature = "testing"))]
mod faulty;
mod file;
mod mem;
#[cfg(any(test, feature = "testing"))]
mod recording;

pub use checked::DeviceExt;
#[cfg(any(test, feature = "testing"))]
pub use faulty::{Fault, FaultyDev, IoKind};
pub use file::{FileDev, OpenMode};
pub use mem::MemDev;
#[cfg(any(test, feature = "testing"))]
pub use recording::{Epoch, Epochs as FlushEpochs, Event, RecordingDev, SECTOR};

/// A flat array of bytes with positional I/O and a durability barrier.
pub trait Device: Send + Sync {
    /// Read exactly `buf.len()` bytes at `off`.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Write all of `buf` at `off`.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Write several buffers back to back starting at `off`.
    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        let mut at = off;
        for b in bufs {
            self.write_at(b, at)?;
            at += b.len() as u64;
        }
        Ok(())
    }
    /// Make every completed write durable.
    fn flush(&self) -> io::Result<()>;
    /// Size in bytes.
    fn size(&self) -> u64;
}

impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        (**self).read_at(buf, off)
    }
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        (**self).write_at(buf, off)
    }
    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        (**self).write_vectored_at(bufs, off)
    }
    fn flush(&self) -> io::Result<()> {
        (**self).flush()
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

fn out_of_range(off: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("access of {len} bytes at {off:#x} beyond the device end {size:#x}"),
    )
}

fn check_range(off: u64, len: usize, size: u64) -> io::Result<()> {
    match off.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(out_of_range(off, len, size)),
    }
}
