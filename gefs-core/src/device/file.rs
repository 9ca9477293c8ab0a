//! [`FileDev`]: an image file or a block device, with `fdatasync` flushes and
//! an advisory lock that keeps two gefs processes off one image.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{check_range, Device};

/// How to open a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only, sharing a lock with other readers.
    ReadOnly,
    /// Read and write, holding the image's lock exclusively.
    ReadWrite,
}

/// A file or block device.
#[derive(Debug)]
pub struct FileDev {
    file: File,
    size: u64,
}

impl FileDev {
    /// Open `path` and lock it: exclusively for writing, shared for reading.
    /// Fails with `WouldBlock` when another process holds a conflicting lock.
    pub fn open(path: &Path, mode: OpenMode) -> io::Result<FileDev> {
        let file = OpenOptions::new()
            .read(true)
            .write(mode == OpenMode::ReadWrite)
            .open(path)?;
        let locked = match mode {
            OpenMode::ReadWrite => file.try_lock(),
            OpenMode::ReadOnly => file.try_lock_shared(),
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another process", path.display()),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let size = device_size(&file)?;
        Ok(FileDev { file, size })
    }

    /// Create (or truncate) a sparse image file of `size` bytes, locked
    /// exclusively. The length is made durable before returning.
    pub fn create(path: &Path, size: u64) -> io::Result<FileDev> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another process", path.display()),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.set_len(size)?;
        file.sync_all()?;
        Ok(FileDev { file, size })
    }
}

impl FileDev {
    /// Whether this is a regular file (which can be resized), not a block
    /// device.
    pub fn is_file(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.is_file())
    }

    /// Give a regular file a new, sparse size (its contents are discarded),
    /// made durable before returning.
    pub fn resize(&mut self, size: u64) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.set_len(size)?;
        self.file.sync_all()?;
        self.size = size;
        Ok(())
    }
}

fn device_size(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    // Block devices report length 0 in metadata; seeking to the end works.
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::End(0))
}

impl Device for FileDev {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        check_range(off, buf.len(), self.size)?;
        self.file.read_exact_at(buf, off)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        check_range(off, buf.len(), self.size)?;
        self.file.write_all_at(buf, off)
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_lock_and_io() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.img");
        let d = FileDev::create(&p, 1 << 20).unwrap();
        assert_eq!(d.size(), 1 << 20);
        d.write_at(b"hello", 4096).unwrap();
        d.flush().unwrap();
        let mut b = [0u8; 5];
        d.read_at(&mut b, 4096).unwrap();
        assert_eq!(&b, b"hello");
        assert!(d.read_at(&mut b, (1 << 20) - 2).is_err());
        let e = FileDev::open(&p, OpenMode::ReadOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(d);
        let r1 = FileDev::open(&p, OpenMode::ReadOnly).unwrap();
        let _r2 = FileDev::open(&p, OpenMode::ReadOnly).unwrap();
        assert!(FileDev::open(&p, OpenMode::ReadWrite).is_err());
        drop(r1);
    }
}
