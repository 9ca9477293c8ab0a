//! A log-bucketed latency histogram.
//!
//! Values (nanoseconds) below 64 get a bucket each; above that, every power
//! of two is split into 32 equal sub-buckets, so a reported percentile is
//! within 1/32 (about 3 %) of a value that was recorded. Minimum and maximum
//! are kept exactly. Recording is an index computation and an increment, so
//! it adds nothing measurable next to the clock reads around it; per-thread
//! histograms are merged after a run.

use serde::Serialize;

/// log2 of the sub-buckets per power of two.
const SUB_BITS: u32 = 5;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every `u64`.
const NBUCKETS: usize = ((64 - SUB_BITS) as usize) * SUB as usize + SUB as usize;

/// Bucket of value `v`.
fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() - SUB_BITS;
    (u64::from(e) * SUB + (v >> e)) as usize
}

/// The smallest value and the width of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, 1);
    }
    let e = i / SUB - 1;
    let m = i - e * SUB;
    (m << e, 1 << e)
}

/// Counts of recorded values by bucket.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; NBUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Record one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Record the time elapsed since `t0`, in nanoseconds.
    #[inline]
    pub fn record_since(&mut self, t0: std::time::Instant) {
        self.record(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    /// Add every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Sum of the values recorded.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values
    /// lie: the midpoint of the bucket holding that rank, clamped to the
    /// exact minimum and maximum. 0 for an empty histogram.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bounds(i);
                return (lo + w / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// The summary reported for this histogram.
    pub fn summary(&self) -> Latency {
        let empty = self.total == 0;
        Latency {
            count: self.total,
            mean: if empty {
                0.0
            } else {
                self.sum as f64 / self.total as f64
            },
            min: if empty { 0 } else { self.min },
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max,
        }
    }
}

/// Latency percentiles of one kind of operation, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Operations timed.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut prev = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let i = index(v);
            assert!(i < NBUCKETS);
            assert!(i >= prev);
            let (lo, w) = bounds(i);
            assert!(lo <= v && v - lo < w, "{v} in bucket {i} = [{lo}, +{w})");
            prev = i;
        }
    }

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, 100);
        assert_eq!(s.max, 1_000_000);
        for (got, want) in [(s.p50, 500_000.0), (s.p90, 900_000.0), (s.p99, 990_000.0)] {
            let err = (got as f64 - want).abs() / want;
            assert!(err < 0.04, "{got} vs {want}");
        }
        let mut g = Histogram::new();
        g.merge(&h);
        assert_eq!(g.summary(), s);
        assert_eq!(Histogram::new().summary().p50, 0);
    }
}
