//! Fingerprints of the merged `eventHash` keys, held in memory so that a new event (the usual
//! case) needs no lookup in `event_keys`.
//!
//! A plain binary search over a million sorted fingerprints (4 MiB) misses the CPU cache about
//! twenty times per lookup, which showed up as a few percent of the insert path at a million
//! events. A table of where each of 65,536 buckets (the fingerprint's top 16 bits) starts
//! narrows a lookup to a bucket of a few entries first.

/// The most merged keys whose fingerprints are kept (4 bytes each: 128 MiB, twice that for a
/// moment while a merge adds to them). A larger store looks every new event up in `event_keys`.
pub(crate) const MAX_FINGERPRINTS: usize = 32 << 20;

const BUCKET_BITS: u32 = 16;
const BUCKETS: usize = 1 << BUCKET_BITS;

/// The part of a key kept in memory: its top 32 bits, so a new event's key matches a stored one
/// by chance about once in 2^32 / (keys stored).
pub(crate) fn fingerprint(key: i64) -> i32 {
    (key >> 32) as i32
}

/// The bucket of a fingerprint: its top bits, shifted so that bucket order is `i32` order.
fn bucket(fp: i32) -> usize {
    ((fp >> (32 - BUCKET_BITS)) + (1 << (BUCKET_BITS - 1))) as usize
}

/// Sorted fingerprints and the index of each bucket's first entry.
#[derive(Debug)]
pub(crate) struct Fingerprints {
    sorted: Vec<i32>,
    /// `starts[b]..starts[b + 1]` is bucket `b` in `sorted`.
    starts: Vec<u32>,
}

impl Fingerprints {
    /// Indexes `sorted` (ascending); `None` past [`MAX_FINGERPRINTS`].
    pub(crate) fn from_sorted(sorted: Vec<i32>) -> Option<Self> {
        if sorted.len() > MAX_FINGERPRINTS {
            return None;
        }
        debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        let mut starts = vec![0u32; BUCKETS + 1];
        for &fp in &sorted {
            starts[bucket(fp) + 1] += 1;
        }
        for b in 1..=BUCKETS {
            starts[b] += starts[b - 1];
        }
        Some(Self { sorted, starts })
    }

    /// Whether some merged key may have this fingerprint.
    pub(crate) fn contains(&self, fp: i32) -> bool {
        let b = bucket(fp);
        let (from, to) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        self.sorted
            .get(from..to)
            .is_some_and(|entries| entries.binary_search(&fp).is_ok())
    }

    /// These fingerprints with `added` (sorted) merged in; `None` past [`MAX_FINGERPRINTS`].
    pub(crate) fn with(self, added: &[i32]) -> Option<Self> {
        if self.sorted.len() + added.len() > MAX_FINGERPRINTS {
            return None;
        }
        let mut out = Vec::with_capacity(self.sorted.len() + added.len());
        let (mut a, mut b) = (self.sorted.iter().peekable(), added.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            out.extend(next.copied());
        }
        Self::from_sorted(out)
    }

    /// The fingerprints held.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    #[cfg(test)]
    fn as_slice(&self) -> &[i32] {
        &self.sorted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_them_sorted() {
        let merged = Fingerprints::from_sorted(vec![-5, 1, 1, 9])
            .and_then(|f| f.with(&[-7, 1, 3, 10]))
            .expect("under the limit");
        assert_eq!(merged.as_slice(), &[-7, -5, 1, 1, 1, 3, 9, 10]);
    }

    #[test]
    fn finds_exactly_what_it_holds_across_every_bucket_edge() {
        // The extremes, both sides of each bucket boundary near zero and the sign change, and
        // a spread of values: each is found, and its neighbours (not held) are not.
        let mut held: Vec<i32> = vec![i32::MIN, i32::MAX, -1, 0, 65_535, 65_536, -65_536, -65_537];
        held.extend((0..5_000).map(|n: i32| n.wrapping_mul(858_993_459).wrapping_add(7)));
        held.sort_unstable();
        held.dedup();
        let prints = Fingerprints::from_sorted(held.clone()).expect("under the limit");
        for &fp in &held {
            assert!(prints.contains(fp), "{fp} is held");
            for probe in [fp.wrapping_sub(1), fp.wrapping_add(1)] {
                assert_eq!(
                    prints.contains(probe),
                    held.binary_search(&probe).is_ok(),
                    "{probe}"
                );
            }
        }
        let empty = Fingerprints::from_sorted(Vec::new()).expect("empty");
        assert!(!empty.contains(0) && !empty.contains(i32::MIN) && !empty.contains(i32::MAX));
    }

    #[test]
    fn buckets_follow_the_order_of_fingerprints() {
        assert_eq!(bucket(i32::MIN), 0);
        assert_eq!(bucket(i32::MAX), BUCKETS - 1);
        assert_eq!(bucket(-1) + 1, bucket(0));
        assert!(bucket(65_535) < bucket(65_536));
    }
}
