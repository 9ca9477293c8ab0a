//! [`MemDev`]: a sparse in-memory device. Unwritten blocks read as zeros;
//! clones share unchanged blocks (copy on write), so a test can keep many
//! images cheaply.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{check_range, Device};
use crate::format::{BLKSZ, BLKSZ_U64};

type Page = Arc<[u8; BLKSZ]>;

/// A sparse in-memory device.
#[derive(Debug)]
pub struct MemDev {
    pages: RwLock<HashMap<u64, Page>>,
    size: u64,
}

impl MemDev {
    /// An all-zero device of `size` bytes.
    pub fn new(size: u64) -> MemDev {
        MemDev {
            pages: RwLock::new(HashMap::new()),
            size,
        }
    }

    /// An independent copy sharing unchanged pages.
    pub fn snapshot(&self) -> MemDev {
        MemDev {
            pages: RwLock::new(self.pages.read().clone()),
            size: self.size,
        }
    }

    /// Bytes of memory the written pages take.
    pub fn resident(&self) -> u64 {
        self.pages.read().len() as u64 * BLKSZ_U64
    }

    /// The addresses of every written 16 KiB page, sorted.
    pub fn written_pages(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.pages.read().keys().map(|k| k * BLKSZ_U64).collect();
        v.sort_unstable();
        v
    }

    /// A hash of the whole contents, to tell identical images apart cheaply.
    pub fn fingerprint(&self) -> u64 {
        let pages = self.pages.read();
        let mut keys: Vec<&u64> = pages.keys().collect();
        keys.sort_unstable();
        let mut acc = Vec::with_capacity(keys.len() * 16);
        for k in keys {
            let p = &pages[k];
            if p.iter().all(|&b| b == 0) {
                continue;
            }
            acc.extend_from_slice(&k.to_be_bytes());
            acc.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&p[..]).to_be_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&acc)
    }
}

impl Device for MemDev {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        check_range(off, buf.len(), self.size)?;
        let pages = self.pages.read();
        let mut done = 0;
        while done < buf.len() {
            let at = off + done as u64;
            let (pg, po) = (at / BLKSZ_U64, (at % BLKSZ_U64) as usize);
            let n = (BLKSZ - po).min(buf.len() - done);
            match pages.get(&pg) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[po..po + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        check_range(off, buf.len(), self.size)?;
        let mut pages = self.pages.write();
        let mut done = 0;
        while done < buf.len() {
            let at = off + done as u64;
            let (pg, po) = (at / BLKSZ_U64, (at % BLKSZ_U64) as usize);
            let n = (BLKSZ - po).min(buf.len() - done);
            let p = pages.entry(pg).or_insert_with(|| Arc::new([0u8; BLKSZ]));
            Arc::make_mut(p)[po..po + n].copy_from_slice(&buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_and_cow() {
        let d = MemDev::new(1 << 20);
        let mut b = [1u8; 10];
        d.read_at(&mut b, 100).unwrap();
        assert_eq!(b, [0; 10]);
        d.write_at(&[7; 20000], BLKSZ_U64 - 10).unwrap();
        let s = d.snapshot();
        d.write_at(&[9; 4], BLKSZ_U64).unwrap();
        let mut x = [0u8; 4];
        s.read_at(&mut x, BLKSZ_U64).unwrap();
        assert_eq!(x, [7; 4]);
        d.read_at(&mut x, BLKSZ_U64).unwrap();
        assert_eq!(x, [9; 4]);
        assert_ne!(d.fingerprint(), s.fingerprint());
        assert!(d.write_at(&[0], 1 << 20).is_err());
    }
}
