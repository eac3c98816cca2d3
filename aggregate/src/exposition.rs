//! What `/metrics` shows of the traffic: Prometheus-style cumulative counters and histograms
//! per series, fed by closed window rows, and the quantiles of the last closed window per
//! backend.
//!
//! Prometheus wants counters that only grow and histograms with fixed bucket bounds
//! (`http.buckets_ms`), summed over time; weir's windows are HDR histograms per window. Each
//! closed row is folded into running totals here: a bound's count is the number of values
//! whose HDR bucket starts at or below it, exact to the histogram's precision. The exposition
//! therefore lags the traffic by the window and its lateness, which `rate()` over a minute
//! absorbs. Labels are bounded by the aggregator's `max_series`.

use std::collections::BTreeMap;

use weir_model::{Distribution, Micros, StatusClass, WindowRow};

use crate::sparse::SparseSeries;
use crate::timers::TimerId;
use crate::window::OVERFLOW;
use crate::Error;

/// A cumulative histogram with fixed bounds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cumulative {
    /// Values at or below each bound, in bound order (the `+Inf` bucket is `count`).
    pub le: Vec<u64>,
    /// Values observed.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl Cumulative {
    fn add(&mut self, bounds: &[u64], d: &Distribution) {
        if self.le.len() != bounds.len() {
            self.le = vec![0; bounds.len()];
        }
        for (slot, &bound) in self.le.iter_mut().zip(bounds) {
            *slot += d
                .buckets
                .iter()
                .take_while(|(v, _)| *v <= bound)
                .map(|(_, n)| n)
                .sum::<u64>();
        }
        self.count += d.count;
        self.sum += d.mean * d.count as f64;
    }
}

/// The running totals of one series (frontend, backend, server).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesTotals {
    /// Requests per status class, in [`StatusClass::ALL`] order.
    pub requests: [u64; 6],
    /// Bytes sent to clients.
    pub bytes_read: u64,
    /// One histogram per timer, in [`TimerId::ALL`] order.
    pub timers: [Cumulative; 6],
}

/// The quantiles of one backend's timers over the last closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct LastWindow {
    /// The window's start.
    pub window_start: Micros,
    /// Per backend, per timer (in [`TimerId::ALL`] order): p50, p95, p99 in ms, when any.
    pub backends: BTreeMap<String, [Option<[u64; 3]>; 6]>,
}

/// The state behind the traffic part of `/metrics`.
#[derive(Debug, Clone)]
pub struct Exposition {
    bounds: Vec<u64>,
    sigfig: u8,
    series: BTreeMap<(String, String, String), SeriesTotals>,
    /// The most entries of `series` (the overflow entry aside).
    max_series: usize,
    /// Window rows counted in the overflow entry because `max_series` were taken.
    overflowed: u64,
    last: Option<LastWindow>,
    /// Rows of the newest window start seen so far, merged per backend before reading quantiles.
    pending: Option<(Micros, Vec<WindowRow>)>,
}

/// The quantiles of [`LastWindow`].
pub const LAST_WINDOW_QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

impl Exposition {
    /// Empty totals with histogram bounds `bounds_ms` (sorted, deduplicated here) for rows of
    /// `sigfig` precision, for at most `max_series` (frontend, backend, server) label sets: the
    /// rows of more are added to one label set of [`OVERFLOW`] names, so `/metrics` stays
    /// bounded whatever the traffic names (its counters stay monotonic: a label set, once
    /// exposed, stays).
    pub fn new(mut bounds_ms: Vec<u64>, sigfig: u8, max_series: usize) -> Exposition {
        bounds_ms.sort_unstable();
        bounds_ms.dedup();
        Exposition {
            bounds: bounds_ms,
            sigfig,
            series: BTreeMap::new(),
            max_series,
            overflowed: 0,
            last: None,
            pending: None,
        }
    }

    /// The histogram bounds, ms.
    pub fn bounds(&self) -> &[u64] {
        &self.bounds
    }

    /// Folds closed rows in. Rows of one window may come in several calls (one per pipeline
    /// worker); the last window's quantiles are those of the newest window whose rows were all
    /// seen, which is known once a row of a newer window arrives (or at [`Exposition::seal`]).
    pub fn observe(&mut self, rows: &[WindowRow]) -> Result<(), Error> {
        for row in rows {
            let k = &row.key;
            let key = (k.frontend.clone(), k.backend.clone(), k.server.clone());
            let full = self.series.len() >= self.max_series && !self.series.contains_key(&key);
            let key = if full {
                self.overflowed += 1;
                (OVERFLOW.to_owned(), OVERFLOW.to_owned(), OVERFLOW.to_owned())
            } else {
                key
            };
            let t = self.series.entry(key).or_default();
            for (slot, n) in t.requests.iter_mut().zip(row.status_classes) {
                *slot += n;
            }
            t.bytes_read += row.bytes_read;
            for (c, d) in t.timers.iter_mut().zip(&row.distributions) {
                c.add(&self.bounds, d);
            }
            match &mut self.pending {
                Some((start, rows)) if *start == row.window_start => rows.push(row.clone()),
                Some((start, _)) if *start > row.window_start => {}
                _ => {
                    self.seal()?;
                    self.pending = Some((row.window_start, vec![row.clone()]));
                }
            }
        }
        Ok(())
    }

    /// Makes the newest window seen the last closed window.
    pub fn seal(&mut self) -> Result<(), Error> {
        let Some((window_start, rows)) = self.pending.take() else {
            return Ok(());
        };
        let mut per_backend: BTreeMap<String, [SparseSeries; 6]> = BTreeMap::new();
        for row in &rows {
            let entry = match per_backend.get_mut(&row.key.backend) {
                Some(e) => e,
                None => {
                    let empty = SparseSeries::new(self.sigfig)?;
                    per_backend
                        .entry(row.key.backend.clone())
                        .or_insert_with(|| std::array::from_fn(|_| empty.clone()))
                }
            };
            for (s, d) in entry.iter_mut().zip(&row.distributions) {
                s.add_buckets(&d.buckets, (d.mean * d.count as f64).round() as u64, d.max);
            }
        }
        let backends = per_backend
            .into_iter()
            .map(|(b, series)| {
                let q = series.map(|s| {
                    (s.count() > 0).then(|| LAST_WINDOW_QUANTILES.map(|q| s.quantile(q).unwrap_or_default()))
                });
                (b, q)
            })
            .collect();
        self.last = Some(LastWindow {
            window_start,
            backends,
        });
        Ok(())
    }

    /// The running totals per (frontend, backend, server).
    pub fn series(&self) -> &BTreeMap<(String, String, String), SeriesTotals> {
        &self.series
    }

    /// Window rows added to the overflow label set because `max_series` were taken.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// The last closed window's quantiles, once one was sealed.
    pub fn last_window(&self) -> Option<&LastWindow> {
        self.last.as_ref()
    }
}

/// The status class names in [`SeriesTotals::requests`] order.
pub fn status_class_names() -> [&'static str; 6] {
    StatusClass::ALL.map(StatusClass::name)
}

/// The timer names in [`SeriesTotals::timers`] order.
pub fn timer_names() -> [&'static str; 6] {
    TimerId::ALL.map(TimerId::name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{window_rows, Req};

    fn rows(reqs: &[Req]) -> Vec<WindowRow> {
        window_rows(reqs)
    }

    #[test]
    fn label_sets_stay_within_their_bound_and_the_rest_overflow() {
        const SERVERS: [&str; 5] = ["s1", "s2", "s3", "s4", "s5"];
        let reqs: Vec<Req> = SERVERS
            .iter()
            .map(|&server| Req {
                server,
                timers: [0, 0, 0, 5, 5],
                status: Some(200),
                ts: 1_000_000,
                ..Req::default()
            })
            .collect();
        let mut e = Exposition::new(vec![10], 2, 3);
        e.observe(&rows(&reqs)).unwrap();
        let servers: Vec<&str> = e.series().keys().map(|k| k.2.as_str()).collect();
        assert_eq!(servers, ["(overflow)", "s1", "s2", "s3"]);
        assert_eq!(e.overflowed(), 2);
        let total: u64 = e.series().values().map(|t| t.requests.iter().sum::<u64>()).sum();
        assert_eq!(total, 5, "every request is still counted");
    }

    #[test]
    fn cumulative_buckets_counts_and_last_window_quantiles() {
        let reqs: Vec<Req> = (1..=100)
            .map(|i| Req {
                timers: [0, 0, 0, i, i],
                status: Some(if i <= 90 { 200 } else { 503 }),
                ts: 1_000_000,
                ..Req::default()
            })
            .collect();
        let mut e = Exposition::new(vec![50, 10, 100], 2, 100);
        e.observe(&rows(&reqs)).unwrap();
        assert!(
            e.last_window().is_none(),
            "not sealed until a newer window or seal()"
        );
        e.seal().unwrap();
        let t = &e.series()[&("fe".to_owned(), "be".to_owned(), "s1".to_owned())];
        assert_eq!(e.bounds(), [10, 50, 100]);
        assert_eq!(t.requests, [0, 90, 0, 0, 10, 0]);
        let total = &t.timers[TimerId::Total as usize];
        assert_eq!(
            (total.le.clone(), total.count, total.sum),
            (vec![10, 50, 100], 100, 5050.0)
        );
        let last = e.last_window().unwrap();
        assert_eq!(last.window_start, 0);
        assert_eq!(last.backends["be"][TimerId::Total as usize], Some([50, 95, 99]));
        // A second batch of the same window adds up; a newer window seals the old one.
        let later: Vec<Req> = reqs
            .iter()
            .map(|r| Req {
                ts: 20_000_000,
                ..r.clone()
            })
            .collect();
        e.observe(&rows(&later)).unwrap();
        let t = &e.series()[&("fe".to_owned(), "be".to_owned(), "s1".to_owned())];
        assert_eq!(t.timers[TimerId::Total as usize].count, 200);
        assert_eq!(e.last_window().unwrap().window_start, 0);
        e.seal().unwrap();
        assert_eq!(e.last_window().unwrap().window_start, 20_000_000);
    }
}
