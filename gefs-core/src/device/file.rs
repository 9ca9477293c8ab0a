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

    /// Extend a regular file to `size` bytes (sparse; its contents are
    /// kept), made durable before returning. A file already that large is
    /// left alone.
    pub fn extend(&mut self, size: u64) -> io::Result<()> {
        if size > self.size {
            self.file.set_len(size)?;
            self.file.sync_all()?;
            self.size = size;
        }
        Ok(())
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

/// Buffers per `pwritev` call (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;

#[allow(unsafe_code)]
fn pwritev(file: &File, bufs: &[&[u8]], off: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let off = libc::off_t::try_from(off)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    loop {
        // SAFETY: `iov` describes `bufs`, which are live, readable slices for
        // the duration of the call; pwritev only reads them. The count fits
        // in c_int because callers pass at most IOV_MAX buffers.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                off,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
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

    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        check_range(off, total, self.size)?;
        let mut at = off;
        // One pwritev per group of at most IOV_MAX buffers; a short write
        // finishes its group with plain positional writes.
        for group in bufs.chunks(IOV_MAX) {
            let len: usize = group.iter().map(|b| b.len()).sum();
            let n = pwritev(&self.file, group, at)?;
            if n < len {
                let mut skip = n;
                let mut pos = at + n as u64;
                for b in group {
                    if skip >= b.len() {
                        skip -= b.len();
                        continue;
                    }
                    self.file.write_all_at(&b[skip..], pos)?;
                    pos += (b.len() - skip) as u64;
                    skip = 0;
                }
            }
            at += len as u64;
        }
        Ok(())
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
        let (x, y) = (vec![7u8; 16384], vec![9u8; 100]);
        d.write_vectored_at(&[&x, &y], 8192).unwrap();
        let mut back = vec![0u8; 16484];
        d.read_at(&mut back, 8192).unwrap();
        assert!(back[..16384].iter().all(|&c| c == 7) && back[16384..].iter().all(|&c| c == 9));
        assert!(d.write_vectored_at(&[&x], (1 << 20) - 100).is_err());
        let e = FileDev::open(&p, OpenMode::ReadOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(d);
        let r1 = FileDev::open(&p, OpenMode::ReadOnly).unwrap();
        let _r2 = FileDev::open(&p, OpenMode::ReadOnly).unwrap();
        assert!(FileDev::open(&p, OpenMode::ReadWrite).is_err());
        drop(r1);
    }
}
