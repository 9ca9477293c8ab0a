//! The key and value shapes every benchmark shares, and its seeded
//! generator, so that ours and the baseline see identical inputs.

/// SplitMix64's output function: a bijective mix of a 64-bit value.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seeded generator tests and benches share (gefs-core's `testing` surface).
pub use gefs_core::testing::Rng;

/// Length of every benchmark key.
pub const KEY_LEN: usize = 16;

/// The first byte of every benchmark key. Tree keys whose first byte is a
/// gefs key kind (0..=6) have meanings to the file system (kind 0, data,
/// must carry a block pointer), so benchmark keys stay above them.
const KEY_TAG: u8 = 0x80;

/// The `i`th key of the random-order workload: 16 bytes that look random,
/// distinct for distinct `i` (the last 8 bytes are a bijection of `i`).
pub fn random_key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let a = mix(i);
    let b = mix(i ^ 0x5851_f42d_4c95_7f2d);
    k[..8].copy_from_slice(&b.to_be_bytes());
    k[0] = KEY_TAG | (k[0] >> 1);
    k[8..].copy_from_slice(&a.to_be_bytes());
    k
}

/// The `i`th key of the sequential workload: ascending with `i`.
pub fn seq_key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[0] = KEY_TAG;
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// The value stored under key number `i`: `len` bytes starting with `i`.
pub fn value(i: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(i as u8) | 1; len];
    let b = i.to_be_bytes();
    let n = len.min(8);
    v[..n].copy_from_slice(&b[..n]);
    v
}

/// Whether `v` is what [`value`] stores for `i`.
pub fn value_ok(i: u64, len: usize, v: &[u8]) -> bool {
    let b = i.to_be_bytes();
    let n = len.min(8);
    v.len() == len && v[..n] == b[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_tagged_and_ordered() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let k = random_key(i);
            assert!(k[0] >= KEY_TAG);
            assert!(seen.insert(k));
            assert!(seq_key(i) < seq_key(i + 1));
        }
        assert!(value_ok(7, 100, &value(7, 100)));
        assert!(!value_ok(8, 100, &value(7, 100)));
        assert!(value_ok(3, 4, &value(3, 4)));
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
