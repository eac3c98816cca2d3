//! [`SparseSeries`]: an HDR histogram that keeps only its non-empty buckets, for the window
//! aggregator, where thousands of series each see a few dozen distinct buckets per window.
//!
//! The bucketing is HdrHistogram's, to the bit (lowest discernible value 1, `sigfig`
//! significant figures): a value's bucket index and a bucket's lowest value are computed as
//! `hdrhistogram` computes them, so rows written from a sparse series merge with rows of any
//! other HDR implementation and a property test holds the two to each other. A dense
//! histogram of the same precision costs 9 to 20 KiB per timer whatever it holds; a window's
//! series here costs 8 bytes per non-empty bucket (a 32-bit index and a 32-bit count; the rare
//! bucket that counts 2^32 − 1 values or more keeps its count in a side list).

use crate::Error;

/// The count stored for a bucket whose count is kept in the side list.
const WIDE: u32 = u32::MAX;

/// A sparse HDR histogram with the exact count, sum and max of what it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseSeries {
    sigfig: u8,
    /// log2 of the sub-bucket count.
    magnitude: u32,
    /// (bucket index, count), ascending by index, no zero counts; a count of [`WIDE`] means
    /// the bucket's count is in `wide`.
    buckets: Vec<(u32, u32)>,
    /// (bucket index, count) of the buckets counting [`WIDE`] values or more, ascending.
    wide: Vec<(u32, u64)>,
    count: u64,
    sum: u64,
    max: u64,
}

impl SparseSeries {
    /// An empty series of `sigfig` significant figures (1..=5).
    pub fn new(sigfig: u8) -> Result<SparseSeries, Error> {
        if !(1..=5).contains(&sigfig) {
            return Err(Error::Precision(sigfig));
        }
        let largest = 2 * 10u64.pow(u32::from(sigfig));
        Ok(SparseSeries {
            sigfig,
            magnitude: u64::BITS - (largest - 1).leading_zeros(),
            buckets: Vec::new(),
            wide: Vec::new(),
            count: 0,
            sum: 0,
            max: 0,
        })
    }

    /// The bucket index of `v`, as hdrhistogram's `index_for`.
    #[inline]
    pub(crate) fn index_of(&self, v: u64) -> u32 {
        let half_mag = self.magnitude - 1;
        let mask = (1u64 << self.magnitude) - 1;
        let bucket = (u64::BITS - self.magnitude) - (v | mask).leading_zeros();
        let sub = v >> bucket;
        // Added before the subtraction: in bucket 0, `sub` is below half the sub-bucket count.
        ((bucket + 1) << half_mag) + sub as u32 - (1 << half_mag)
    }

    /// The lowest value of bucket `index`.
    #[inline]
    fn lowest_of(&self, index: u32) -> u64 {
        let half_mag = self.magnitude - 1;
        let bucket = (index >> half_mag) as i64 - 1;
        if bucket < 0 {
            return u64::from(index);
        }
        let half = 1u64 << half_mag;
        ((u64::from(index) & (half - 1)) + half) << bucket
    }

    /// The lowest value of the bucket `v` falls in.
    pub fn lowest_equivalent(&self, v: u64) -> u64 {
        self.lowest_of(self.index_of(v))
    }

    /// The count of a stored bucket.
    #[inline]
    fn n_of(&self, (index, n): (u32, u32)) -> u64 {
        if n == WIDE {
            self.wide
                .binary_search_by_key(&index, |w| w.0)
                .map_or(0, |i| self.wide[i].1)
        } else {
            u64::from(n)
        }
    }

    /// The buckets as (index, count), ascending.
    fn entries(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.buckets.iter().map(|&b| (b.0, self.n_of(b)))
    }

    /// Adds `n` to the stored bucket at `pos`.
    #[inline]
    fn bump(&mut self, pos: usize, n: u64) {
        let (index, stored) = self.buckets[pos];
        match u32::try_from(u64::from(stored) + n) {
            Ok(sum) if sum != WIDE && stored != WIDE => self.buckets[pos].1 = sum,
            _ => {
                let total = self.n_of((index, stored)) + n;
                self.buckets[pos].1 = WIDE;
                match self.wide.binary_search_by_key(&index, |w| w.0) {
                    Ok(i) => self.wide[i].1 = total,
                    Err(i) => self.wide.insert(i, (index, total)),
                }
            }
        }
    }

    /// Appends a bucket above every stored one.
    fn push(&mut self, index: u32, n: u64) {
        self.buckets.push((index, 0));
        let last = self.buckets.len() - 1;
        self.bump(last, n);
    }

    fn add_n(&mut self, index: u32, n: u64) {
        match self.buckets.binary_search_by_key(&index, |b| b.0) {
            Ok(i) => self.bump(i, n),
            Err(i) => {
                self.buckets.insert(i, (index, 0));
                self.bump(i, n);
            }
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let index = self.index_of(v);
        // Values come in runs of the same few buckets: the last one hit is checked first.
        match self.buckets.last_mut() {
            Some(last) if last.0 == index && last.1 < WIDE - 1 => last.1 += 1,
            _ => self.add_n(index, 1),
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.max = self.max.max(v);
    }

    /// Adds `other`'s values.
    pub fn merge(&mut self, other: &SparseSeries) -> Result<(), Error> {
        if self.sigfig != other.sigfig {
            return Err(Error::Mismatch {
                left: format!("{}-sigfig series", self.sigfig),
                right: format!("{}-sigfig series", other.sigfig),
            });
        }
        if self.buckets.is_empty() {
            self.buckets.clone_from(&other.buckets);
            self.wide.clone_from(&other.wide);
        } else {
            let mut merged = SparseSeries {
                buckets: Vec::with_capacity(self.buckets.len() + other.buckets.len()),
                wide: Vec::new(),
                ..SparseSeries::new(self.sigfig)?
            };
            let mut a = self.entries().peekable();
            let mut b = other.entries().peekable();
            while let (Some(&x), Some(&y)) = (a.peek(), b.peek()) {
                let next = match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Less => a.next(),
                    std::cmp::Ordering::Greater => b.next(),
                    std::cmp::Ordering::Equal => {
                        b.next();
                        a.next().map(|(i, n)| (i, n + y.1))
                    }
                };
                if let Some((i, n)) = next {
                    merged.push(i, n);
                }
            }
            a.chain(b).for_each(|(i, n)| merged.push(i, n));
            self.buckets = merged.buckets;
            self.wide = merged.wide;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// Forgets every value, keeping the buckets' capacity.
    pub fn clear(&mut self) {
        self.buckets.clear();
        self.wide.clear();
        self.count = 0;
        self.sum = 0;
        self.max = 0;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their exact sum.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Their exact maximum (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The non-empty buckets as (lowest value, count), ascending.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.entries().map(|(i, n)| (self.lowest_of(i), n)).collect()
    }

    /// A series from [`SparseSeries::buckets`] and the exact sum and max kept beside them.
    pub fn from_buckets(
        sigfig: u8,
        buckets: &[(u64, u64)],
        sum: u64,
        max: u64,
    ) -> Result<SparseSeries, Error> {
        let mut s = SparseSeries::new(sigfig)?;
        for &(v, n) in buckets {
            if n > 0 {
                let index = s.index_of(v);
                s.add_n(index, n);
                s.count += n;
            }
        }
        s.sum = sum;
        s.max = max;
        Ok(s)
    }

    /// The value at quantile `q` (0..=1): the lowest value of the bucket holding the
    /// nearest-rank value (rank `max(1, ⌈q × count⌉)`, `q × count` in double precision), capped
    /// by the exact max; `None` when empty. The exact value lies in that bucket, at most one
    /// bucket width (a relative 10^-sigfig) above.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, n) in self.entries() {
            seen += n;
            if seen >= rank {
                return Some(self.lowest_of(index).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Adds the buckets of a row's distribution ([`SparseSeries::buckets`] form) and its exact
    /// sum and max, in place: what merging [`SparseSeries::from_buckets`] would give, without
    /// building a series first.
    pub fn add_buckets(&mut self, buckets: &[(u64, u64)], sum: u64, max: u64) {
        for &(v, n) in buckets {
            if n > 0 {
                let index = self.index_of(v);
                self.add_n(index, n);
                self.count += n;
            }
        }
        self.sum = self.sum.saturating_add(sum);
        self.max = self.max.max(max);
    }

    /// A series from counts indexed by bucket index (as [`SparseSeries::index_of`] gives
    /// them) and the exact sum and max of the values.
    pub(crate) fn from_counts(sigfig: u8, counts: &[u64], sum: u64, max: u64) -> Result<SparseSeries, Error> {
        let mut s = SparseSeries::new(sigfig)?;
        s.buckets.reserve(counts.iter().filter(|&&n| n > 0).count());
        for (i, &n) in counts.iter().enumerate() {
            if n > 0 {
                s.push(i as u32, n);
            }
        }
        s.count = counts.iter().sum();
        s.sum = sum;
        s.max = max;
        Ok(s)
    }

    /// Values in buckets whose range starts at or below `v`'s bucket: HDR's `count_between(0, v)`.
    pub fn count_at_or_below(&self, v: u64) -> u64 {
        let index = self.index_of(v);
        self.entries().take_while(|b| b.0 <= index).map(|b| b.1).sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hdr::new_histogram;

    proptest! {
        /// Bucket for bucket, a sparse series is hdrhistogram's histogram of the same values.
        #[test]
        fn same_buckets_as_hdrhistogram(
            sigfig in 1u8..=5,
            values in prop::collection::vec(prop_oneof![0u64..3000, 0u64..100_000_000, any::<u32>().prop_map(u64::from)], 1..200),
            probe in 0u64..200_000,
        ) {
            let mut sparse = SparseSeries::new(sigfig).unwrap();
            let mut dense = new_histogram(sigfig).unwrap();
            for &v in &values {
                sparse.record(v);
                crate::hdr::record(&mut dense, v);
            }
            let want: Vec<(u64, u64)> = dense
                .iter_recorded()
                .map(|x| (dense.lowest_equivalent(x.value_iterated_to()), x.count_at_value()))
                .collect();
            prop_assert_eq!(sparse.buckets(), want);
            prop_assert_eq!(sparse.count(), dense.len());
            prop_assert_eq!(sparse.count_at_or_below(probe), dense.count_between(0, probe));
            for &v in &values {
                prop_assert_eq!(sparse.lowest_equivalent(v), dense.lowest_equivalent(v));
            }
        }

        /// Merging is adding, in any order; a series read back from its buckets is itself.
        #[test]
        fn merge_and_round_trip(a in prop::collection::vec(0u64..1_000_000, 0..100), b in prop::collection::vec(0u64..1_000_000, 0..100)) {
            let series = |vals: &[u64]| {
                let mut s = SparseSeries::new(2).unwrap();
                vals.iter().for_each(|v| s.record(*v));
                s
            };
            let (mut x, y) = (series(&a), series(&b));
            x.merge(&y).unwrap();
            prop_assert_eq!(&x, &series(&[a.clone(), b.clone()].concat()));
            let back = SparseSeries::from_buckets(2, &x.buckets(), x.sum(), x.max()).unwrap();
            prop_assert_eq!(back, x);
        }
    }

    #[test]
    fn a_bucket_counting_past_u32_keeps_its_count() {
        let big = u64::from(u32::MAX) + 5;
        let mut a = SparseSeries::from_buckets(2, &[(10, big), (20, 1)], 0, 20).unwrap();
        assert_eq!(a.buckets(), vec![(10, big), (20, 1)]);
        a.record(10);
        let mut b = SparseSeries::from_buckets(2, &[(10, u64::from(u32::MAX) - 1)], 0, 10).unwrap();
        b.record(10);
        b.record(10);
        assert_eq!(b.buckets(), vec![(10, u64::from(u32::MAX) + 1)]);
        a.merge(&b).unwrap();
        assert_eq!(a.buckets(), vec![(10, 2 * big - 3), (20, 1)]);
        assert_eq!(a.count(), 2 * big - 2);
        assert_eq!(a.quantile(1.0), Some(20));
        assert_eq!(a.count_at_or_below(10), 2 * big - 3);
        let back = SparseSeries::from_buckets(2, &a.buckets(), a.sum(), a.max()).unwrap();
        assert_eq!(back, a, "one count, one representation");
    }

    #[test]
    fn precision_is_checked_and_mismatches_refused() {
        assert!(SparseSeries::new(0).is_err() && SparseSeries::new(6).is_err());
        let mut a = SparseSeries::new(2).unwrap();
        assert!(a.merge(&SparseSeries::new(3).unwrap()).is_err());
        a.record(300);
        assert_eq!(a.buckets(), vec![(300, 1)]);
        a.record(301);
        assert_eq!(
            a.buckets(),
            vec![(300, 2)],
            "300 and 301 share a bucket at 2 figures"
        );
    }
}
