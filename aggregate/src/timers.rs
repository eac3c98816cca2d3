//! [`TimerHistograms`]: the distribution of HAProxy's five timers and of the data time, for one
//! set of requests. Each series keeps an HDR histogram (quantiles to `sigfig` precision) and,
//! beside it, the exact count, sum and maximum, so means and maxima are exact, not bucketed.

use hdrhistogram::Histogram;
use weir_model::{Timer, Timings};

use crate::{hdr, Error};

/// The six series a [`TimerHistograms`] keeps: HAProxy's five timers and Td, the data time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerId {
    /// TR (Tq before HAProxy 1.7).
    Request,
    /// Tw.
    Queue,
    /// Tc.
    Connect,
    /// Tr.
    Response,
    /// Ta (Tt before 1.7).
    Total,
    /// Td = Ta − (TR + Tw + Tc + Tr), only for requests where all five are known.
    Data,
}

impl TimerId {
    /// All series, in report order.
    pub const ALL: [TimerId; 6] = [
        TimerId::Request,
        TimerId::Queue,
        TimerId::Connect,
        TimerId::Response,
        TimerId::Total,
        TimerId::Data,
    ];

    /// The name in report rows: `request`, `queue`, `connect`, `response`, `total`, `data`.
    pub fn name(self) -> &'static str {
        match self {
            TimerId::Data => "data",
            t => t.as_timer().map(Timer::name).unwrap_or("data"),
        }
    }

    /// The model's timer, for the five HAProxy timers.
    pub fn as_timer(self) -> Option<Timer> {
        Some(match self {
            TimerId::Request => Timer::Request,
            TimerId::Queue => Timer::Queue,
            TimerId::Connect => Timer::Connect,
            TimerId::Response => Timer::Response,
            TimerId::Total => Timer::Total,
            TimerId::Data => return None,
        })
    }
}

impl From<Timer> for TimerId {
    fn from(t: Timer) -> TimerId {
        match t {
            Timer::Request => TimerId::Request,
            Timer::Queue => TimerId::Queue,
            Timer::Connect => TimerId::Connect,
            Timer::Response => TimerId::Response,
            Timer::Total => TimerId::Total,
        }
    }
}

/// One series: an HDR histogram plus the exact count, sum and max of what it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSeries {
    hist: Histogram<u64>,
    sum: u64,
    max: u64,
}

impl TimerSeries {
    /// An empty series with `sigfig` significant figures (1..=5).
    pub fn new(sigfig: u8) -> Result<TimerSeries, Error> {
        Ok(TimerSeries {
            hist: hdr::new_histogram(sigfig)?,
            sum: 0,
            max: 0,
        })
    }

    /// Records one value in milliseconds.
    #[inline]
    pub fn record(&mut self, ms: u64) {
        hdr::record(&mut self.hist, ms);
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    /// Adds `other`'s values to this one.
    pub fn merge(&mut self, other: &TimerSeries) -> Result<(), Error> {
        self.hist.add(&other.hist)?;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The exact sum of the recorded values.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The histogram itself (for serialization into a `t_hdr` column).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The value at quantile `q` (0..=1), to the histogram's precision, never above the exact
    /// maximum; `None` when nothing was recorded. The rank is the nearest-rank definition:
    /// the smallest value such that at least `ceil(q × count)` values are at or below it.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (self.count() > 0).then(|| self.hist.value_at_quantile(q).min(self.max))
    }

    /// Count, mean, the report quantiles and max; `None` when nothing was recorded.
    pub fn summary(&self) -> Option<TimerSummary> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let mut q = self
            .hist
            .value_at_quantiles(TimerSummary::QUANTILES)
            .map(|v| v.min(self.max));
        let mut next = || q.next().unwrap_or(self.max);
        Some(TimerSummary {
            count,
            mean: self.sum as f64 / count as f64,
            p50: next(),
            p90: next(),
            p95: next(),
            p99: next(),
            p999: next(),
            max: self.max,
        })
    }
}

/// What a timers report row shows for one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimerSummary {
    /// Number of values.
    pub count: u64,
    /// Exact mean, ms.
    pub mean: f64,
    /// Median, ms.
    pub p50: u64,
    /// 90th percentile, ms.
    pub p90: u64,
    /// 95th percentile, ms.
    pub p95: u64,
    /// 99th percentile, ms.
    pub p99: u64,
    /// 99.9th percentile, ms.
    pub p999: u64,
    /// Exact maximum, ms.
    pub max: u64,
}

impl TimerSummary {
    /// The quantiles of the summary, in field order.
    pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];
}

/// HAProxy's five timers and the data time of a set of requests, mergeable exactly.
///
/// A timer HAProxy logged as `-1` (stage never reached) is not recorded: each series counts
/// the requests that reached its stage. Td is recorded only when all five timers are known,
/// which is exactly the population of halog's `-pct`; a negative Td (a `+` logasap total, a
/// clock step) is recorded as 0, since a duration histogram has no negative buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerHistograms {
    series: [TimerSeries; 6],
    sigfig: u8,
}

impl TimerHistograms {
    /// Empty histograms with `sigfig` significant figures (1..=5).
    pub fn new(sigfig: u8) -> Result<TimerHistograms, Error> {
        let s = TimerSeries::new(sigfig)?;
        Ok(TimerHistograms {
            series: [s.clone(), s.clone(), s.clone(), s.clone(), s.clone(), s],
            sigfig,
        })
    }

    /// The precision the histograms were created with.
    pub fn sigfig(&self) -> u8 {
        self.sigfig
    }

    /// Records the timers of one request.
    #[inline]
    pub fn record(&mut self, t: &Timings) {
        let [rq, qu, co, rs, to, da] = &mut self.series;
        let vals = [t.request, t.queue, t.connect, t.response, t.total];
        for (s, v) in [rq, qu, co, rs, to].into_iter().zip(vals) {
            if let Some(v) = v {
                s.record(v.max(0) as u64);
            }
        }
        if let Some(d) = t.data() {
            da.record(d.max(0) as u64);
        }
    }

    /// Records one value (ms) in one series.
    #[inline]
    pub fn record_one(&mut self, id: TimerId, ms: u64) {
        self.series[id as usize].record(ms);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &TimerHistograms) -> Result<(), Error> {
        if self.sigfig != other.sigfig {
            return Err(Error::Mismatch {
                left: format!("{}-sigfig timers", self.sigfig),
                right: format!("{}-sigfig timers", other.sigfig),
            });
        }
        for (a, b) in self.series.iter_mut().zip(&other.series) {
            a.merge(b)?;
        }
        Ok(())
    }

    /// One series.
    pub fn get(&self, id: TimerId) -> &TimerSeries {
        &self.series[id as usize]
    }

    /// The value of series `id` at quantile `q`, or `None` when it is empty.
    pub fn quantile(&self, id: TimerId, q: f64) -> Option<u64> {
        self.get(id).quantile(q)
    }

    /// The summary of series `id`, or `None` when it is empty.
    pub fn summary(&self, id: TimerId) -> Option<TimerSummary> {
        self.get(id).summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: [i32; 5]) -> Timings {
        let o = |x: i32| (x >= 0).then_some(x);
        Timings {
            request: o(v[0]),
            queue: o(v[1]),
            connect: o(v[2]),
            response: o(v[3]),
            total: o(v[4]),
            total_logasap: false,
        }
    }

    #[test]
    fn minus_one_is_not_recorded_and_data_needs_all_five() {
        let mut h = TimerHistograms::new(3).unwrap();
        h.record(&t([1, 0, 2, 10, 20]));
        h.record(&t([5, -1, -1, -1, 7]));
        assert_eq!(h.get(TimerId::Request).count(), 2);
        assert_eq!(h.get(TimerId::Queue).count(), 1);
        assert_eq!(h.get(TimerId::Total).count(), 2);
        assert_eq!(h.get(TimerId::Data).count(), 1);
        assert_eq!(h.quantile(TimerId::Data, 1.0), Some(7));
        assert_eq!(h.quantile(TimerId::Connect, 0.5), Some(2));
    }

    #[test]
    fn negative_data_time_is_recorded_as_zero() {
        let mut h = TimerHistograms::new(3).unwrap();
        h.record(&t([1, 0, 2, 10, 5]));
        assert_eq!(h.summary(TimerId::Data).unwrap().max, 0);
        assert_eq!(h.summary(TimerId::Data).unwrap().count, 1);
    }

    #[test]
    fn summary_is_exact_for_small_values_and_mean_is_exact() {
        let mut h = TimerHistograms::new(3).unwrap();
        for v in 1..=1000 {
            h.record_one(TimerId::Total, v);
        }
        let s = h.summary(TimerId::Total).unwrap();
        assert_eq!(
            (s.count, s.p50, s.p90, s.p95, s.p99, s.p999, s.max),
            (1000, 500, 900, 950, 990, 999, 1000)
        );
        assert_eq!(s.mean, 500.5);
        assert!(h.summary(TimerId::Queue).is_none());
    }

    #[test]
    fn large_values_are_within_a_tenth_of_a_percent_and_capped_by_max() {
        let mut h = TimerHistograms::new(3).unwrap();
        h.record_one(TimerId::Response, 123_457);
        let s = h.summary(TimerId::Response).unwrap();
        assert_eq!(s.max, 123_457);
        assert_eq!(s.p50, 123_457, "quantiles never exceed the exact max");
        for v in [100_000u64, 250_000, 3_000_000] {
            h.record_one(TimerId::Response, v);
        }
        let p = h.quantile(TimerId::Response, 0.5).unwrap();
        assert!(p.abs_diff(123_457) * 1000 <= 123_457, "{p}");
    }

    #[test]
    fn merge_adds_and_rejects_other_precisions() {
        let mut a = TimerHistograms::new(3).unwrap();
        let mut b = TimerHistograms::new(3).unwrap();
        a.record(&t([1, 0, 2, 10, 20]));
        b.record(&t([3, 0, 4, 30, 90]));
        a.merge(&b).unwrap();
        assert_eq!(a.summary(TimerId::Total).unwrap().max, 90);
        assert_eq!(a.get(TimerId::Response).sum(), 40);
        let c = TimerHistograms::new(2).unwrap();
        assert!(matches!(a.merge(&c), Err(Error::Mismatch { .. })));
    }

    #[test]
    fn names() {
        let names: Vec<_> = TimerId::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            ["request", "queue", "connect", "response", "total", "data"]
        );
        assert_eq!(TimerId::from(Timer::Connect), TimerId::Connect);
    }
}
