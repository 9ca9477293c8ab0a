//! Searching a node: binary and interpolating searches of the key area, the
//! lower bound of the message buffer, and the key order they share.

use std::cmp::Ordering;

use crate::error::CorruptKind;

use super::super::codec::{get_u16, DecodeError, DecodeResult};
use super::view::NodeView;

fn malformed(what: &str, i: usize) -> DecodeError {
    DecodeError::new(CorruptKind::Truncated, format!("{what} {i} is malformed"))
}

impl NodeView<'_> {
    /// Binary search of the key area: `Ok(i)` if key `i` equals `key`, else
    /// `Err(i)` where it would be inserted.
    pub fn search(&self, key: &[u8]) -> DecodeResult<Result<usize, usize>> {
        let (area, n) = (self.area(false), self.nval);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = key_at(area, n, mid, 2).ok_or_else(|| malformed("record", mid))?;
            match cmp_keys(k, key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// [`NodeView::search`] of a node whose keys all lie in `[lo, hi)` (the
    /// separators its parent records): interpolation steps first, which
    /// find keys spread evenly over the range in a few probes instead of
    /// `log2(nval)` (each probe of a cold node is a cache miss), then a
    /// binary search of what is left; the answer is the same.
    pub fn search_in(
        &self,
        key: &[u8],
        lo: &[u8],
        hi: &[u8],
    ) -> DecodeResult<Result<usize, usize>> {
        let (area, n) = (self.area(false), self.nval);
        if n < 16 {
            return self.search(key);
        }
        // The answer lies in [l, r); every key below l is < key, every key
        // from r on is > key. `blo` and `bhi` bound the keys of [l, r).
        let (mut l, mut r) = (0, n);
        let (mut blo, mut bhi) = (lo, hi);
        for _ in 0..3 {
            if r - l < 8 {
                break;
            }
            let Some(est) = interpolate(blo, bhi, key, l, r) else {
                break;
            };
            let k = key_at(area, n, est, 2).ok_or_else(|| malformed("record", est))?;
            match cmp_keys(k, key) {
                Ordering::Less => {
                    l = est + 1;
                    blo = k;
                }
                Ordering::Greater => {
                    r = est;
                    bhi = k;
                }
                Ordering::Equal => return Ok(Ok(est)),
            }
        }
        while l < r {
            let mid = l + (r - l) / 2;
            let k = key_at(area, n, mid, 2).ok_or_else(|| malformed("record", mid))?;
            match cmp_keys(k, key) {
                Ordering::Less => l = mid + 1,
                Ordering::Greater => r = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(l))
    }

    /// The child of a pivot whose range holds `key`: the last one whose
    /// separator is ≤ `key` (child 0 for anything smaller).
    pub fn route(&self, key: &[u8]) -> DecodeResult<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        })
    }

    /// Index of the first buffered message whose key is ≥ `key`.
    pub fn msg_lower_bound(&self, key: &[u8]) -> DecodeResult<usize> {
        let (area, n) = (self.area(true), self.nbuf);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = key_at(area, n, mid, 3).ok_or_else(|| malformed("message", mid))?;
            if cmp_keys(k, key) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

/// Byte-wise key order, comparing the first 8 bytes as one word (keys
/// usually differ there; this saves the call into `memcmp`).
#[inline]
pub fn cmp_keys(a: &[u8], b: &[u8]) -> Ordering {
    let word = |k: &[u8]| k.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok());
    if let (Some(x), Some(y)) = (word(a), word(b)) {
        let (x, y) = (u64::from_be_bytes(x), u64::from_be_bytes(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// Where `key` should sit among the `r - l` keys of `[l, r)`, all in
/// `[lo, hi)`, if they were spread evenly: the 8 bytes after the common
/// prefix of `lo` and `hi` are read as numbers. `None` when that says
/// nothing (the key outside the bounds, or bounds too close).
fn interpolate(lo: &[u8], hi: &[u8], key: &[u8], l: usize, r: usize) -> Option<usize> {
    let c = lo.iter().zip(hi).take_while(|(a, b)| a == b).count();
    let word = |k: &[u8]| {
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(k.iter().skip(c)) {
            *d = *s;
        }
        u64::from_be_bytes(w)
    };
    if key.get(..c)? != lo.get(..c)? {
        return None;
    }
    let (a, b, x) = (word(lo), word(hi), word(key));
    if !(a <= x && x < b) || b - a < (r - l) as u64 {
        return None;
    }
    let off = (u128::from(x - a) * (r - l) as u128 / u128::from(b - a)) as usize;
    Some((l + off).min(r - 1))
}

/// The key of record `i` of an area of `n` records whose key length sits
/// `at` bytes into the record (2 in the key area, 3 in a buffer: after the
/// op), checked as [`NodeView::key`] checks it.
#[inline]
fn key_at(area: &[u8], n: usize, i: usize, at: usize) -> Option<&[u8]> {
    let off = usize::from(get_u16(area, 2 * i)?);
    if off < 2 * n {
        return None;
    }
    let kl = usize::from(get_u16(area, off + at - 2)?);
    area.get(off + at..off + at + kl)
}
