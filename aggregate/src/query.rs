//! `weir query` over window rows: filter by time and key, group by any subset of the key,
//! re-bucket into longer periods, and merge each group's partial rows exactly before reading
//! quantiles off the merged histogram (quantiles of rows are never averaged).
//!
//! Input is any iterator of [`WindowRow`]s (from the spool's `windows` table, from a server's
//! live windows, or both); output is one [`QueryRow`] per group and period, in order.

use std::collections::HashMap;

use weir_model::{DistributionRef, Micros, StatusClass, WindowKey, WindowRow, WindowRowRef};

use crate::sparse::SparseSeries;
use crate::timers::{TimerId, TimerSummary};
use crate::Error;

/// A part of the series key to group or filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyDim {
    /// The frontend.
    Frontend,
    /// The backend.
    Backend,
    /// The server.
    Server,
    /// The status class (`2xx`, `5xx`, ...).
    StatusClass,
}

impl KeyDim {
    /// Every dimension, in key order.
    pub const ALL: [KeyDim; 4] = [
        KeyDim::Frontend,
        KeyDim::Backend,
        KeyDim::Server,
        KeyDim::StatusClass,
    ];

    /// The name used by `--by`, `--where` and in output headers.
    pub fn name(self) -> &'static str {
        match self {
            KeyDim::Frontend => "frontend",
            KeyDim::Backend => "backend",
            KeyDim::Server => "server",
            KeyDim::StatusClass => "status_class",
        }
    }

    /// Reads [`KeyDim::name`] back.
    pub fn from_name(s: &str) -> Option<KeyDim> {
        KeyDim::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The value of this dimension in `key`.
    pub fn value(self, key: &WindowKey) -> &str {
        match self {
            KeyDim::Frontend => &key.frontend,
            KeyDim::Backend => &key.backend,
            KeyDim::Server => &key.server,
            KeyDim::StatusClass => key.status_class.name(),
        }
    }
}

/// Which distribution a query reads quantiles from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// One of the timers (or the data time).
    Timer(TimerId),
    /// The response bytes.
    Bytes,
}

impl Measure {
    /// Parses `request`, `queue`, `connect`, `response`, `total`, `data`, `bytes` (and HAProxy's
    /// letters for the timers: `TR`, `Tw`, `Tc`, `Tr`, `Ta`, `Td`).
    pub fn from_name(s: &str) -> Option<Measure> {
        if s == "bytes" {
            return Some(Measure::Bytes);
        }
        if s == "data" || s == "Td" {
            return Some(Measure::Timer(TimerId::Data));
        }
        weir_model::Timer::from_name(s).map(|t| Measure::Timer(t.into()))
    }

    /// The name in output headers.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Timer(t) => t.name(),
            Measure::Bytes => "bytes",
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    /// Rows whose window starts at or after this instant.
    pub since: Option<Micros>,
    /// Rows whose window starts before this instant.
    pub until: Option<Micros>,
    /// The key parts to group by (none: one group).
    pub by: Vec<KeyDim>,
    /// Period of the output rows, seconds; `None` for one row per group over the whole range.
    pub every: Option<u32>,
    /// Only series whose key part equals the value (all must hold).
    pub filters: Vec<(KeyDim, String)>,
    /// The distribution to read quantiles from.
    pub measure: Measure,
    /// Apdex's target T in milliseconds, computed on the total time (Ta): satisfied at or
    /// below T, tolerating up to 4T.
    pub apdex_t: Option<u64>,
    /// The precision the rows were written with.
    pub sigfig: u8,
}

impl Default for QuerySpec {
    fn default() -> Self {
        QuerySpec {
            since: None,
            until: None,
            by: Vec::new(),
            every: None,
            filters: Vec::new(),
            measure: Measure::Timer(TimerId::Total),
            apdex_t: None,
            sigfig: 2,
        }
    }
}

/// One output row: a group, a period and what the merged rows say.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    /// The values of the `by` dimensions, in `by` order.
    pub group: Vec<String>,
    /// The period's start; without `every`, the start of the group's first window.
    pub period_start: Micros,
    /// Requests.
    pub requests: u64,
    /// Requests of an error class (5xx or no response).
    pub errors: u64,
    /// Bytes sent to clients.
    pub bytes_read: u64,
    /// Requests per status class, in [`StatusClass::ALL`] order.
    pub status_classes: [u64; 6],
    /// The chosen distribution, `None` when it recorded nothing.
    pub summary: Option<TimerSummary>,
    /// Apdex score (0..=1) when asked for and there were total times.
    pub apdex: Option<f64>,
}

/// Runs `spec` over `rows`.
pub fn run(rows: impl IntoIterator<Item = WindowRow>, spec: &QuerySpec) -> Result<Vec<QueryRow>, Error> {
    let mut q = Query::new(spec)?;
    for row in rows {
        q.add(&row.view());
    }
    q.finish()
}

/// A distribution being merged: counts per bucket index, dense (a row's buckets are added
/// without a search), with the exact count, sum and max beside them.
#[derive(Debug, Clone, Default)]
struct Dense {
    counts: Vec<u64>,
    sum: u64,
    max: u64,
}

impl Dense {
    #[inline]
    fn add(&mut self, probe: &SparseSeries, d: &DistributionRef<'_>) {
        if d.count == 0 {
            return;
        }
        let counts = &mut self.counts;
        d.buckets.for_each(|v, n| {
            let i = probe.index_of(v) as usize;
            if i >= counts.len() {
                counts.resize(i + 1, 0);
            }
            counts[i] += n;
        });
        self.sum = self.sum.saturating_add(d.sum());
        self.max = self.max.max(d.max);
    }

    fn absorb(&mut self, other: Dense) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
    }

    fn series(&self, sigfig: u8) -> Result<SparseSeries, Error> {
        SparseSeries::from_counts(sigfig, &self.counts, self.sum, self.max)
    }
}

/// One group and period being merged.
#[derive(Debug, Clone, Default)]
struct Slot {
    first: Micros,
    requests: u64,
    bytes_read: u64,
    classes: [u64; 6],
    measure: Dense,
    /// The total time, for Apdex.
    total: Dense,
}

impl Slot {
    fn absorb(&mut self, other: Slot) {
        self.first = self.first.min(other.first);
        self.requests += other.requests;
        self.bytes_read += other.bytes_read;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.measure.absorb(other.measure);
        self.total.absorb(other.total);
    }
}

/// The slot key of rows without `every`: one period per group.
const WHOLE_RANGE: Micros = Micros::MIN;

/// A query being run: rows are added one by one (borrowed, as stored) and merged into their
/// group and period at once, so memory holds the groups, never the rows. Periods known to be
/// complete can be summarized early ([`Query::seal_before`]) to free their histograms, and
/// queries run over disjoint parts of the input are combined with [`Query::absorb`].
#[derive(Debug)]
pub struct Query<'s> {
    spec: &'s QuerySpec,
    /// A series of the spec's precision, for bucket indices.
    probe: SparseSeries,
    /// Which distribution the spec reads.
    measure: usize,
    /// Group ids by the group's values joined with NUL.
    ids: HashMap<Box<str>, u32>,
    groups: Vec<Vec<String>>,
    slots: HashMap<(u32, Micros), Slot>,
    done: Vec<((u32, Micros), QueryRow)>,
    buf: String,
}

impl<'s> Query<'s> {
    /// An empty run of `spec`.
    pub fn new(spec: &'s QuerySpec) -> Result<Query<'s>, Error> {
        let measure = match spec.measure {
            Measure::Timer(t) => t as usize,
            Measure::Bytes => 6,
        };
        Ok(Query {
            spec,
            probe: SparseSeries::new(spec.sigfig)?,
            measure,
            ids: HashMap::new(),
            groups: Vec::new(),
            slots: HashMap::new(),
            done: Vec::new(),
            buf: String::new(),
        })
    }

    fn value<'a>(d: KeyDim, row: &WindowRowRef<'a>) -> &'a str {
        match d {
            KeyDim::Frontend => row.frontend,
            KeyDim::Backend => row.backend,
            KeyDim::Server => row.server,
            KeyDim::StatusClass => row.status_class.name(),
        }
    }

    /// The id of a group's values.
    fn group_id(&mut self, row: &WindowRowRef<'_>) -> u32 {
        self.buf.clear();
        for d in &self.spec.by {
            self.buf.push_str(Query::value(*d, row));
            self.buf.push('\0');
        }
        if let Some(&id) = self.ids.get(self.buf.as_str()) {
            return id;
        }
        let id = self.groups.len() as u32;
        self.groups.push(
            self.spec
                .by
                .iter()
                .map(|d| Query::value(*d, row).to_owned())
                .collect(),
        );
        self.ids.insert(self.buf.as_str().into(), id);
        id
    }

    /// Adds a row, when it is in the spec's range and passes its filters.
    pub fn add(&mut self, row: &WindowRowRef<'_>) {
        let spec = self.spec;
        if spec.since.is_some_and(|s| row.window_start < s)
            || spec.until.is_some_and(|u| row.window_start >= u)
            || !spec
                .filters
                .iter()
                .all(|(d, v)| Query::value(*d, row) == v.as_str())
        {
            return;
        }
        let period = match spec.every {
            Some(e) => {
                let p = i64::from(e.max(1)) * 1_000_000;
                row.window_start.div_euclid(p) * p
            }
            None => WHOLE_RANGE,
        };
        let id = self.group_id(row);
        let slot = self.slots.entry((id, period)).or_insert_with(|| Slot {
            first: row.window_start,
            ..Slot::default()
        });
        slot.first = slot.first.min(row.window_start);
        slot.requests += row.requests;
        slot.bytes_read += row.bytes_read;
        for (a, b) in slot.classes.iter_mut().zip(row.status_classes) {
            *a += b;
        }
        slot.measure.add(&self.probe, &row.distributions[self.measure]);
        if spec.apdex_t.is_some() {
            slot.total
                .add(&self.probe, &row.distributions[TimerId::Total as usize]);
        }
    }

    /// Summarizes the periods that end at or before `t`, when every row of them has been
    /// added (the caller's promise), and frees their histograms. Without `every` nothing is
    /// complete before [`Query::finish`].
    pub fn seal_before(&mut self, t: Micros) -> Result<(), Error> {
        let Some(e) = self.spec.every else {
            return Ok(());
        };
        let len = i64::from(e.max(1)) * 1_000_000;
        let due: Vec<(u32, Micros)> = self
            .slots
            .keys()
            .filter(|(_, p)| p.saturating_add(len) <= t)
            .copied()
            .collect();
        for key in due {
            if let Some(slot) = self.slots.remove(&key) {
                let row = self.summary(key, slot)?;
                self.done.push((key, row));
            }
        }
        Ok(())
    }

    /// Adds the groups and periods of another run of the same spec over other rows. A period
    /// must not have been sealed in one run and still be open in the other.
    pub fn absorb(&mut self, other: Query<'_>) {
        let mut ids = Vec::with_capacity(other.groups.len());
        for g in other.groups {
            self.buf.clear();
            for v in &g {
                self.buf.push_str(v);
                self.buf.push('\0');
            }
            let id = match self.ids.get(self.buf.as_str()) {
                Some(&id) => id,
                None => {
                    let id = self.groups.len() as u32;
                    self.groups.push(g);
                    self.ids.insert(self.buf.as_str().into(), id);
                    id
                }
            };
            ids.push(id);
        }
        for ((g, p), slot) in other.slots {
            match self.slots.entry((ids[g as usize], p)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().absorb(slot),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(slot);
                }
            }
        }
        for ((g, p), mut row) in other.done {
            row.group = self.groups[ids[g as usize] as usize].clone();
            self.done.push(((ids[g as usize], p), row));
        }
    }

    fn summary(&self, (g, period): (u32, Micros), slot: Slot) -> Result<QueryRow, Error> {
        let classes = slot.classes;
        Ok(QueryRow {
            group: self.groups[g as usize].clone(),
            period_start: if period == WHOLE_RANGE { slot.first } else { period },
            requests: slot.requests,
            errors: StatusClass::ALL
                .iter()
                .filter(|c| c.is_error())
                .map(|c| classes[*c as usize])
                .sum(),
            bytes_read: slot.bytes_read,
            status_classes: classes,
            summary: summarize(&slot.measure.series(self.spec.sigfig)?),
            apdex: match self.spec.apdex_t {
                Some(t) => apdex(&slot.total.series(self.spec.sigfig)?, t),
                None => None,
            },
        })
    }

    /// The rows, ordered by group and period.
    pub fn finish(mut self) -> Result<Vec<QueryRow>, Error> {
        let open: Vec<_> = self.slots.drain().collect();
        for (key, slot) in open {
            let row = self.summary(key, slot)?;
            self.done.push((key, row));
        }
        let mut out: Vec<QueryRow> = self.done.into_iter().map(|(_, r)| r).collect();
        out.sort_by(|a, b| a.group.cmp(&b.group).then(a.period_start.cmp(&b.period_start)));
        Ok(out)
    }
}

/// Count, mean, quantiles and max of a series, where a quantile is the lowest value of the
/// bucket holding the nearest-rank value (rank `max(1, ⌈q × count⌉)`, `q × count` in double
/// precision), capped by the exact max. This is what the SQL of `samples/sql` computes from the
/// `*_hist` columns, so both answer alike; the exact value lies in that bucket, at most one
/// bucket width (a relative 10^-sigfig) above.
pub fn summarize(series: &SparseSeries) -> Option<TimerSummary> {
    let count = series.count();
    if count == 0 {
        return None;
    }
    let at = |q: f64| series.quantile(q).unwrap_or_default();
    let [p50, p90, p95, p99, p999] = TimerSummary::QUANTILES.map(at);
    Some(TimerSummary {
        count,
        mean: series.sum() as f64 / count as f64,
        p50,
        p90,
        p95,
        p99,
        p999,
        max: series.max(),
    })
}

/// Apdex of a distribution for target `t`: (satisfied + tolerating / 2) / all, where a value
/// is satisfied at or below `t` and tolerating up to `4t` (to the histogram's precision).
pub fn apdex(series: &SparseSeries, t: u64) -> Option<f64> {
    let all = series.count();
    if all == 0 {
        return None;
    }
    let satisfied = series.count_at_or_below(t);
    let tolerating = series.count_at_or_below(t.saturating_mul(4)) - satisfied;
    Some((satisfied as f64 + tolerating as f64 / 2.0) / all as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{window_rows, Req};

    const S: i64 = 1_000_000;

    fn rows(reqs: &[Req]) -> Vec<WindowRow> {
        window_rows(reqs)
    }

    fn req(backend: &'static str, sec: i64, total: i32, status: u16) -> Req {
        Req {
            backend,
            status: Some(status),
            timers: [0, 0, 0, total, total],
            ts: sec * S,
            ..Req::default()
        }
    }

    #[test]
    fn groups_periods_filters_and_quantiles_of_merged_rows() {
        let mut reqs = Vec::new();
        for i in 0..100 {
            reqs.push(req("be_api", i, (i + 1) as i32, 200));
            reqs.push(req("be_web", i, 1_000, if i % 10 == 0 { 503 } else { 200 }));
        }
        let spec = QuerySpec {
            by: vec![KeyDim::Backend],
            every: Some(60),
            ..QuerySpec::default()
        };
        let out = run(rows(&reqs), &spec).unwrap();
        let keys: Vec<(&str, Micros, u64, u64)> = out
            .iter()
            .map(|r| (r.group[0].as_str(), r.period_start, r.requests, r.errors))
            .collect();
        assert_eq!(
            keys,
            [
                ("be_api", 0, 60, 0),
                ("be_api", 60 * S, 40, 0),
                ("be_web", 0, 60, 6),
                ("be_web", 60 * S, 40, 4),
            ]
        );
        // be_api's totals over the first minute are 1..=60 ms: one bucket per value this low.
        let s = out[0].summary.unwrap();
        assert_eq!((s.count, s.p50, s.p99, s.max), (60, 30, 60, 60));
        assert_eq!(s.mean, 30.5);

        let only_errors = QuerySpec {
            filters: vec![(KeyDim::StatusClass, "5xx".into())],
            ..QuerySpec::default()
        };
        let out = run(rows(&reqs), &only_errors).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].requests, out[0].errors), (10, 10));
        assert!(out[0].group.is_empty());
        assert_eq!(out[0].period_start, 0, "the first window with a 5xx");

        let range = QuerySpec {
            since: Some(91 * S),
            until: Some(95 * S),
            ..QuerySpec::default()
        };
        assert!(
            run(rows(&reqs), &range).unwrap().is_empty(),
            "no window starts in [91, 95)"
        );
    }

    #[test]
    fn quantiles_are_bucket_lowest_values_within_precision() {
        let reqs: Vec<Req> = (1..=1000).map(|t| req("be", 1, t * 37, 200)).collect();
        let out = run(rows(&reqs), &QuerySpec::default()).unwrap();
        let s = out[0].summary.unwrap();
        // Exact nearest-rank values: 500 × 37, 990 × 37, 1000 × 37.
        for (got, exact) in [(s.p50, 18_500u64), (s.p99, 36_630), (s.max, 37_000)] {
            assert!(got <= exact && exact - got <= exact / 100, "{got} vs {exact}");
        }
        assert_eq!(s.max, 37_000, "the max is exact");
    }

    #[test]
    fn apdex_counts_satisfied_and_half_the_tolerating() {
        let reqs: Vec<Req> = [10, 20, 100, 350, 2_000]
            .into_iter()
            .map(|t| req("be", 1, t, 200))
            .collect();
        let spec = QuerySpec {
            apdex_t: Some(100),
            ..QuerySpec::default()
        };
        let out = run(rows(&reqs), &spec).unwrap();
        // 10, 20, 100 satisfied; 350 tolerating; 2000 frustrated: (3 + 0.5) / 5.
        assert_eq!(out[0].apdex, Some(0.7));
    }

    #[test]
    fn runs_over_parts_sealed_early_give_the_whole_answer() {
        let mut reqs = Vec::new();
        for i in 0..600 {
            reqs.push(req(
                if i % 3 == 0 { "be_a" } else { "be_b" },
                i,
                (i % 97 + 1) as i32,
                200,
            ));
        }
        let all = rows(&reqs);
        for every in [None, Some(60), Some(300)] {
            let spec = QuerySpec {
                by: vec![KeyDim::Backend],
                every,
                apdex_t: Some(50),
                ..QuerySpec::default()
            };
            let want = run(all.clone(), &spec).unwrap();
            // Two workers over the first and the last 300 s, each sealing what it has read.
            let (early, late): (Vec<&WindowRow>, Vec<&WindowRow>) =
                all.iter().partition(|r| r.window_start < 300 * S);
            let mut parts = Vec::new();
            for (part, end) in [(early, 300 * S), (late, 600 * S)] {
                let mut q = Query::new(&spec).unwrap();
                part.iter().for_each(|r| q.add(&r.view()));
                q.seal_before(end).unwrap();
                parts.push(q);
            }
            let mut merged = Query::new(&spec).unwrap();
            parts.into_iter().for_each(|q| merged.absorb(q));
            assert_eq!(merged.finish().unwrap(), want, "every {every:?}");
        }
    }

    #[test]
    fn names() {
        for d in KeyDim::ALL {
            assert_eq!(KeyDim::from_name(d.name()), Some(d));
        }
        assert_eq!(Measure::from_name("Tr"), Some(Measure::Timer(TimerId::Response)));
        assert_eq!(Measure::from_name("bytes"), Some(Measure::Bytes));
        assert_eq!(Measure::from_name("data"), Some(Measure::Timer(TimerId::Data)));
        assert_eq!(Measure::from_name("nope"), None);
    }
}
