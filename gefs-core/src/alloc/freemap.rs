//! A set of free block ranges, in block numbers.
//!
//! Invariant: ranges are disjoint and never adjacent (neighbours are always
//! coalesced), so the map is the unique minimal description of the set.
//! Inserting a block that is already free, or removing one that is not, is
//! reported (a double free, or a log that contradicts itself), never ignored.

use std::collections::BTreeMap;

/// Free ranges `start -> len`, in blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeMap {
    ranges: BTreeMap<u64, u64>,
    blocks: u64,
}

/// A range operation contradicted the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// First block of the offending range.
    pub start: u64,
    /// Its length.
    pub len: u64,
}

impl FreeMap {
    /// An empty map (everything allocated).
    pub fn new() -> FreeMap {
        FreeMap::default()
    }

    /// Free blocks in the map.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Number of ranges.
    pub fn nranges(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges in ascending order.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &l)| (s, l))
    }

    /// Whether block `b` is free.
    pub fn contains(&self, b: u64) -> bool {
        self.ranges
            .range(..=b)
            .next_back()
            .is_some_and(|(&s, &l)| b < s + l)
    }

    /// Mark `[start, start+len)` free. Fails if any of it is already free.
    pub fn insert(&mut self, start: u64, len: u64) -> Result<(), Conflict> {
        let end = start.checked_add(len).ok_or(Conflict { start, len })?;
        if len == 0 {
            return Err(Conflict { start, len });
        }
        let prev = self
            .ranges
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l));
        let next = self.ranges.range(start..).next().map(|(&s, &l)| (s, l));
        if prev.is_some_and(|(s, l)| s + l > start) || next.is_some_and(|(s, _)| s < end) {
            return Err(Conflict { start, len });
        }
        let (mut s, mut e) = (start, end);
        if let Some((ps, pl)) = prev {
            if ps + pl == start {
                self.ranges.remove(&ps);
                s = ps;
            }
        }
        if let Some((ns, nl)) = next {
            if ns == end {
                self.ranges.remove(&ns);
                e = ns + nl;
            }
        }
        self.ranges.insert(s, e - s);
        self.blocks += len;
        Ok(())
    }

    /// Mark `[start, start+len)` allocated. Fails unless all of it is free.
    pub fn remove(&mut self, start: u64, len: u64) -> Result<(), Conflict> {
        let end = start.checked_add(len).ok_or(Conflict { start, len })?;
        let Some((s, l)) = self
            .ranges
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l))
        else {
            return Err(Conflict { start, len });
        };
        if len == 0 || s + l < end {
            return Err(Conflict { start, len });
        }
        self.ranges.remove(&s);
        if s < start {
            self.ranges.insert(s, start - s);
        }
        if end < s + l {
            self.ranges.insert(end, s + l - end);
        }
        self.blocks -= len;
        Ok(())
    }

    /// Take the lowest free block.
    pub fn take_low(&mut self) -> Option<u64> {
        let (&s, &l) = self.ranges.iter().next()?;
        self.ranges.remove(&s);
        if l > 1 {
            self.ranges.insert(s + 1, l - 1);
        }
        self.blocks -= 1;
        Some(s)
    }

    /// Take the highest free block.
    pub fn take_high(&mut self) -> Option<u64> {
        let (&s, &l) = self.ranges.iter().next_back()?;
        if l > 1 {
            self.ranges.insert(s, l - 1);
        } else {
            self.ranges.remove(&s);
        }
        self.blocks -= 1;
        Some(s + l - 1)
    }
}

/// Coalesce a sorted list of block numbers into `(start, len)` runs.
pub fn runs(sorted: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for b in sorted {
        match out.last_mut() {
            Some((s, l)) if *s + *l == b => *l += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn coalesces_and_detects_conflicts() {
        let mut m = FreeMap::new();
        m.insert(10, 5).unwrap();
        m.insert(15, 5).unwrap();
        m.insert(5, 5).unwrap();
        assert_eq!(m.ranges().collect::<Vec<_>>(), vec![(5, 15)]);
        assert!(m.insert(19, 2).is_err());
        assert!(m.insert(4, 2).is_err());
        m.remove(8, 2).unwrap();
        assert_eq!(m.ranges().collect::<Vec<_>>(), vec![(5, 3), (10, 10)]);
        assert!(m.remove(7, 2).is_err());
        assert_eq!(m.blocks(), 13);
        assert_eq!(m.take_low(), Some(5));
        assert_eq!(m.take_high(), Some(19));
        assert!(m.contains(10) && !m.contains(8) && !m.contains(19));
        assert_eq!(runs([1, 2, 3, 7, 8, 10]), vec![(1, 3), (7, 2), (10, 1)]);
    }

    proptest! {
        #[test]
        fn matches_a_set(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 1u64..8), 1..300)) {
            let mut m = FreeMap::new();
            let mut set = BTreeSet::new();
            for (ins, s, l) in ops {
                let range: Vec<u64> = (s..s + l).collect();
                if ins {
                    let ok = range.iter().all(|b| !set.contains(b));
                    prop_assert_eq!(m.insert(s, l).is_ok(), ok);
                    if ok { set.extend(range); }
                } else {
                    let ok = range.iter().all(|b| set.contains(b));
                    prop_assert_eq!(m.remove(s, l).is_ok(), ok);
                    if ok { for b in range { set.remove(&b); } }
                }
                prop_assert_eq!(m.blocks(), set.len() as u64);
                let expect = runs(set.iter().copied());
                prop_assert_eq!(m.ranges().collect::<Vec<_>>(), expect);
            }
        }
    }
}
