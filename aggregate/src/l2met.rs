//! Live l2met metrics for `/metrics`: each `measure#`, `count#` and `sample#` of the app lines a
//! server receives, per (kind, name, unit, app, source).
//!
//! - A **measure** goes into the HDR histogram of its tumbling window (the request windows'
//!   length, by the line's time). When a newer window starts, or when the window is older than
//!   `window + lateness` at a scrape, it closes and becomes the series' last closed window
//!   (a late value of that same window is merged into it; one of an older window counts in the
//!   totals only). `/metrics` shows it as a Prometheus summary: p50, p95 and p99 of the last
//!   closed window, and the count and sum of every value so far.
//! - A **count** is added to a running total (a counter).
//! - A **sample** is a level: the value of the newest line wins (a gauge).
//!
//! Values are taken to their unit's base first ([`weir_model::Metric::base`]): seconds, bytes,
//! or the unit as written, so `12ms` and `0.012s` of one name are one series. A series'
//! Prometheus name is `weir_l2met_<kind>_<name>[_<unit>]` with every byte Prometheus does not
//! allow in a name made `_` (`measure#db.query=12ms` is `weir_l2met_measure_db_query_seconds`);
//! names that sanitise alike share a series. At most `max_series` series are kept; values of
//! more are counted in [`L2metLive::overflowed`] and left out (their rows are in the spool all
//! the same). Histograms hold values scaled to integers: microseconds for time, bytes for
//! sizes, thousandths for other units; a negative measure is recorded as 0.

use std::collections::HashMap;

use weir_model::{BaseUnit, Metric, MetricKind, Micros};

use crate::sparse::SparseSeries;
use crate::Error;

/// How the live metrics aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2metConfig {
    /// Window length, microseconds.
    pub window: Micros,
    /// How long after its end a window stays open for late values, microseconds.
    pub lateness: Micros,
    /// Significant figures of the histograms.
    pub sigfig: u8,
    /// The most series kept.
    pub max_series: usize,
}

/// One series: what `/metrics` shows of a (kind, name, unit, app, source).
#[derive(Debug, Clone)]
pub struct L2metSeries {
    /// measure, count or sample.
    pub kind: MetricKind,
    /// The Prometheus name (see the module docs).
    pub family: String,
    /// The `app` label: the line's APP-NAME, empty when none.
    pub app: String,
    /// The `source` label: the line's `source=`, empty when none.
    pub source: String,
    /// The l2met name as first seen.
    pub name: String,
    /// Values seen.
    pub count: u64,
    /// Their sum, in the base unit (a count's running total).
    pub sum: f64,
    /// A sample's newest value and its time.
    pub level: Option<(Micros, f64)>,
    scale: f64,
    /// A measure's open window: its start and histogram.
    open: Option<(Micros, SparseSeries)>,
    /// A measure's last closed window.
    closed: Option<(Micros, SparseSeries)>,
}

/// The quantiles [`L2metSeries::quantiles`] gives.
pub const L2MET_QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

impl L2metSeries {
    /// p50, p95 and p99 of the last closed window, in the base unit; `None` before one closed.
    pub fn quantiles(&self) -> Option<[f64; 3]> {
        let (_, h) = self.closed.as_ref()?;
        (h.count() > 0)
            .then(|| L2MET_QUANTILES.map(|q| h.quantile(q).unwrap_or_default() as f64 / self.scale))
    }

    /// The start of the last closed window.
    pub fn closed_window(&self) -> Option<Micros> {
        self.closed.as_ref().map(|(s, _)| *s)
    }
}

/// The live l2met metrics of a server. See the module docs.
#[derive(Debug)]
pub struct L2metLive {
    config: L2metConfig,
    series: HashMap<String, L2metSeries>,
    key: String,
    overflowed: u64,
    late: u64,
}

impl L2metLive {
    /// No series yet.
    pub fn new(config: L2metConfig) -> Result<L2metLive, Error> {
        SparseSeries::new(config.sigfig)?;
        Ok(L2metLive {
            config: L2metConfig {
                window: config.window.max(1),
                ..config
            },
            series: HashMap::new(),
            key: String::new(),
            overflowed: 0,
            late: 0,
        })
    }

    /// Adds one metric of a line of `app` whose time is `ts`.
    pub fn add(&mut self, app: Option<&str>, ts: Micros, m: &Metric<'_>) {
        let (value, unit) = m.base();
        let app = app.unwrap_or("");
        let source = m.source.unwrap_or("");
        let key = &mut self.key;
        key.clear();
        family_name(key, m.kind, m.name, unit);
        let family_len = key.len();
        key.push('\0');
        key.push_str(app);
        key.push('\0');
        key.push_str(source);
        if !self.series.contains_key(key.as_str()) {
            if self.series.len() >= self.config.max_series {
                self.overflowed += 1;
                return;
            }
            let scale = match unit {
                BaseUnit::Seconds => 1e6,
                BaseUnit::Bytes => 1.0,
                BaseUnit::Other(_) => 1e3,
            };
            let s = L2metSeries {
                kind: m.kind,
                family: key[..family_len].to_owned(),
                app: app.to_owned(),
                source: source.to_owned(),
                name: m.name.to_owned(),
                count: 0,
                sum: 0.0,
                level: None,
                scale,
                open: None,
                closed: None,
            };
            self.series.insert(key.clone(), s);
        }
        let Some(series) = self.series.get_mut(key.as_str()) else {
            return;
        };
        series.count += 1;
        series.sum += value;
        match m.kind {
            MetricKind::Count => {}
            MetricKind::Sample => {
                if series.level.is_none_or(|(t, _)| ts >= t) {
                    series.level = Some((ts, value));
                }
            }
            MetricKind::Measure => {
                let start = ts - ts.rem_euclid(self.config.window);
                let scaled = (value * series.scale).round().max(0.0) as u64;
                match &mut series.open {
                    Some((s, h)) if *s == start => h.record(scaled),
                    Some((s, _)) if *s > start => match &mut series.closed {
                        Some((c, h)) if *c == start => h.record(scaled),
                        _ => self.late += 1,
                    },
                    _ => {
                        close(series);
                        let mut h = SparseSeries::new(self.config.sigfig).expect("checked in new");
                        h.record(scaled);
                        if series.closed.as_ref().is_some_and(|(c, _)| *c == start) {
                            // A late value of the window just closed: it joins that window.
                            if let Some((_, c)) = &mut series.closed {
                                let _ = c.merge(&h);
                            }
                        } else if series.closed.as_ref().is_some_and(|(c, _)| *c > start) {
                            self.late += 1;
                        } else {
                            series.open = Some((start, h));
                        }
                    }
                }
            }
        }
    }

    /// Closes every measure window that ended `lateness` or more before `now`.
    pub fn seal(&mut self, now: Micros) {
        let (window, lateness) = (self.config.window, self.config.lateness);
        for s in self.series.values_mut() {
            if s.open
                .as_ref()
                .is_some_and(|(start, _)| start + window + lateness <= now)
            {
                close(s);
            }
        }
    }

    /// Every series, sorted by Prometheus name, then app, then source.
    pub fn series(&self) -> Vec<&L2metSeries> {
        let mut all: Vec<&L2metSeries> = self.series.values().collect();
        all.sort_by(|a, b| (&a.family, &a.app, &a.source).cmp(&(&b.family, &b.app, &b.source)));
        all
    }

    /// Values left out because `max_series` series were kept.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Measures whose window had closed (counted in the totals, not in a window's quantiles).
    pub fn late(&self) -> u64 {
        self.late
    }
}

/// What `weir query --metric` reads off one group and period of a metric's rows, in the
/// display unit ([`display_unit`]): a count of rows, their sum, min, max and newest value, and
/// for measures a histogram for quantiles (exact to its precision).
#[derive(Debug, Clone)]
pub struct MetricStats {
    /// Rows added.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The value of the newest row, and its time.
    pub last: Option<(Micros, f64)>,
    scale: f64,
    histogram: Option<SparseSeries>,
}

impl MetricStats {
    /// Empty stats of a metric in `unit` (a display unit); measures keep a histogram of
    /// `sigfig` significant figures.
    pub fn new(kind: MetricKind, unit: &str, sigfig: u8) -> Result<MetricStats, Error> {
        let histogram = match kind {
            MetricKind::Measure => Some(SparseSeries::new(sigfig)?),
            _ => None,
        };
        Ok(MetricStats {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: None,
            scale: if unit == "bytes" { 1.0 } else { 1e3 },
            histogram,
        })
    }

    /// Adds a value (in the display unit) of a row at `ts`.
    pub fn add(&mut self, ts: Micros, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if self.last.is_none_or(|(t, _)| ts >= t) {
            self.last = Some((ts, value));
        }
        if let Some(h) = &mut self.histogram {
            h.record((value * self.scale).round().max(0.0) as u64);
        }
    }

    /// The value at quantile `q`, for measures (the lowest value of its histogram bucket,
    /// capped by the exact max).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let h = self.histogram.as_ref()?;
        let v = h.quantile(q)? as f64 / self.scale;
        Some(v.min(self.max))
    }

    /// The mean, when any row was added.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// The unit `weir query --metric` shows values of `unit` in, and the factor from the written
/// unit to it: time in milliseconds, sizes in bytes, anything else as written.
pub fn display_unit(unit: &str) -> (std::borrow::Cow<'_, str>, f64) {
    match weir_model::metric::base_unit(unit) {
        (BaseUnit::Seconds, f) => ("ms".into(), f * 1e3),
        (BaseUnit::Bytes, f) => ("bytes".into(), f),
        (BaseUnit::Other(u), _) => (u.into(), 1.0),
    }
}

/// Moves a series' open window to its last closed one, merging when both are the same window.
fn close(s: &mut L2metSeries) {
    let Some((start, h)) = s.open.take() else {
        return;
    };
    match &mut s.closed {
        Some((c, old)) if *c == start => {
            let _ = old.merge(&h);
        }
        _ => s.closed = Some((start, h)),
    }
}

/// Appends `weir_l2met_<kind>_<name>[_<unit>]` to `out`.
pub fn family_name(out: &mut String, kind: MetricKind, name: &str, unit: BaseUnit<'_>) {
    out.push_str("weir_l2met_");
    out.push_str(kind.name());
    out.push('_');
    sanitize(out, name);
    match unit {
        BaseUnit::Other("") => {}
        BaseUnit::Other("%") => out.push_str("_percent"),
        BaseUnit::Other(u) => {
            out.push('_');
            sanitize(out, u);
        }
        base => {
            out.push('_');
            out.push_str(base.suffix().unwrap_or_default());
        }
    }
}

/// Appends `s` with every byte outside `[a-zA-Z0-9_:]` as `_`.
fn sanitize(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = 1_000_000;

    fn live(max_series: usize) -> L2metLive {
        L2metLive::new(L2metConfig {
            window: 10 * S,
            lateness: 5 * S,
            sigfig: 2,
            max_series,
        })
        .unwrap()
    }

    /// Within the 2 significant figures the tests aggregate at.
    fn near(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 0.01
    }

    fn measure<'a>(name: &'a str, value: f64, unit: &'a str) -> Metric<'a> {
        Metric {
            kind: MetricKind::Measure,
            name,
            value,
            unit,
            source: None,
        }
    }

    #[test]
    fn a_closed_window_gives_its_quantiles_in_seconds_within_precision() {
        let mut l = live(10);
        for v in 1..=100 {
            l.add(Some("shop"), 3 * S, &measure("db.query", f64::from(v), "ms"));
        }
        assert_eq!(l.series()[0].quantiles(), None, "still open");
        l.seal(20 * S);
        let s = l.series()[0];
        assert_eq!(s.family, "weir_l2met_measure_db_query_seconds");
        assert_eq!(s.count, 100);
        assert!((s.sum - 5.05).abs() < 1e-9);
        let q = s.quantiles().unwrap();
        for (got, want) in q.iter().zip([0.050, 0.095, 0.099]) {
            assert!(near(*got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn late_values_join_their_window_or_only_the_totals() {
        let mut l = live(10);
        l.add(None, 3 * S, &measure("x", 10.0, ""));
        l.add(None, 13 * S, &measure("x", 20.0, ""));
        // Window 0 closed when window 10 s began: a late value of it joins it.
        l.add(None, 4 * S, &measure("x", 30.0, ""));
        let s = l.series()[0];
        assert_eq!(s.closed_window(), Some(0));
        assert!(near(s.quantiles().unwrap()[2], 30.0));
        l.seal(30 * S);
        // Window 0 is no longer the last closed one: a value of it is late.
        l.add(None, 5 * S, &measure("x", 40.0, ""));
        assert_eq!(l.late(), 1);
        let s = l.series()[0];
        assert_eq!((s.count, s.closed_window()), (4, Some(10 * S)));
        assert!(s.quantiles().unwrap().iter().all(|&q| near(q, 20.0)));
    }

    #[test]
    fn query_stats_read_quantiles_in_the_display_unit() {
        assert_eq!(display_unit("s"), ("ms".into(), 1e3));
        assert_eq!(display_unit("KiB"), ("bytes".into(), 1024.0));
        assert_eq!(display_unit("%"), ("%".into(), 1.0));
        let mut m = MetricStats::new(MetricKind::Measure, "ms", 2).unwrap();
        for v in 1..=1000 {
            m.add(i64::from(v), f64::from(v) / 10.0);
        }
        assert_eq!(
            (m.count, m.min, m.max, m.last),
            (1000, 0.1, 100.0, Some((1000, 100.0)))
        );
        assert!(near(m.quantile(0.99).unwrap(), 99.0));
        assert!(near(m.mean().unwrap(), 50.05));
        let c = MetricStats::new(MetricKind::Count, "", 2).unwrap();
        assert_eq!(c.quantile(0.5), None);
    }

    #[test]
    fn units_names_counts_samples_and_the_series_bound() {
        let mut l = live(3);
        l.add(Some("a"), S, &measure("q", 12.0, "ms"));
        l.add(Some("a"), S, &measure("q", 0.012, "s"));
        let count = |v| Metric {
            kind: MetricKind::Count,
            value: v,
            ..measure("sign-ups", 0.0, "")
        };
        l.add(Some("a"), S, &count(2.0));
        l.add(Some("a"), S, &count(3.0));
        let sample = |v| Metric {
            kind: MetricKind::Sample,
            value: v,
            ..measure("mem", 0.0, "MB")
        };
        l.add(Some("a"), 2 * S, &sample(5.0));
        l.add(Some("a"), S, &sample(7.0));
        l.add(Some("b"), S, &sample(1.0));
        let all = l.series();
        let names: Vec<&str> = all.iter().map(|s| s.family.as_str()).collect();
        assert_eq!(
            names,
            [
                "weir_l2met_count_sign_ups",
                "weir_l2met_measure_q_seconds",
                "weir_l2met_sample_mem_bytes"
            ]
        );
        assert_eq!(all[0].sum, 5.0);
        assert_eq!(all[1].count, 2, "12ms and 0.012s are one series");
        assert_eq!(all[2].level, Some((2 * S, 5e6)), "the newest line wins");
        assert_eq!(l.overflowed(), 1);
    }
}
