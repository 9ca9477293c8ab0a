//! What tests and benches share, built for gefs-core's own tests and, with
//! the `testing` feature, for the other crates' tests: a seeded generator,
//! so that every randomised test replays from its seed, format options and
//! fresh stores and file systems on memory devices. One copy of each; a test takes them from
//! here rather than building its own.

use std::sync::Arc;

use crate::device::{Device, MemDev};
use crate::fs::Fs;
use crate::store::{Config, FormatOpts, Store};

/// The first administrator of every fresh test image.
pub const TEST_ADMIN: &str = "glenda";

/// Options to format a test image: [`TEST_ADMIN`] as its first
/// administrator, a `cache`-byte cache for the formatting run.
pub fn format_opts(cache: usize) -> FormatOpts {
    format_opts_for(TEST_ADMIN, cache)
}

/// Options to format an image with `user` as its first administrator (a
/// bench's user, or the login name a real gefsd will see), a `cache`-byte
/// cache for the formatting run.
pub fn format_opts_for(user: &str, cache: usize) -> FormatOpts {
    FormatOpts {
        user: user.into(),
        cache_bytes: cache,
    }
}

/// Format `dev` with [`format_opts`]; the store the formatting left open on
/// it.
pub fn format(dev: Arc<dyn Device>, cache: usize) -> Store {
    Store::format(dev, &format_opts(cache)).expect("format a test device")
}

/// A memory device of `size` bytes, formatted with [`TEST_ADMIN`] as its
/// first administrator (a `cache`-byte cache for the formatting run).
pub fn fresh_dev(size: u64, cache: usize) -> Arc<MemDev> {
    let dev = Arc::new(MemDev::new(size));
    drop(format(dev.clone(), cache));
    dev
}

/// The configuration to open a test store with: a `cache`-byte cache,
/// read-only or not.
pub fn config(cache: usize, read_only: bool) -> Config {
    Config {
        cache_bytes: cache,
        read_only,
    }
}

/// Open the store on `dev`, read-write, with a `cache`-byte cache.
pub fn open_store(dev: &Arc<MemDev>, cache: usize) -> Store {
    Store::open(dev.clone(), &config(cache, false)).expect("open a test store")
}

/// A fresh device of `size` bytes and the store open on it.
pub fn fresh_store(size: u64, cache: usize) -> (Arc<MemDev>, Store) {
    let dev = fresh_dev(size, cache);
    let s = open_store(&dev, cache);
    (dev, s)
}

/// The file system (not permissive) on a store open on `dev`.
pub fn open_fs(dev: &Arc<MemDev>, cache: usize) -> Fs {
    Fs::new(Arc::new(open_store(dev, cache)), false).expect("open a test file system")
}

/// A fresh device of `size` bytes and the file system on it.
pub fn fresh_fs(size: u64, cache: usize) -> (Arc<MemDev>, Fs) {
    let dev = fresh_dev(size, cache);
    let fs = open_fs(&dev, cache);
    (dev, fs)
}

/// Deterministic pseudo-random numbers (xorshift64*). The state is never
/// zero: [`Rng::new`] makes sure of it, and a literal `Rng(s)` must use a
/// non-zero `s`.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator from any `seed` (0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Fill `b` with random bytes.
    pub fn fill(&mut self, b: &mut [u8]) {
        for x in b.iter_mut() {
            *x = self.next_u64() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_replays_and_zero_is_a_seed() {
        let (mut a, mut b) = (Rng::new(0), Rng::new(0));
        let xs: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_u64()));
        assert!(xs.iter().any(|&x| x != xs[0]), "zero seed must not stick");
        let mut c = Rng::new(1);
        assert!((0..1000).all(|_| c.below(7) < 7));
        assert_eq!(c.below(0), 0);
    }
}
