//! The per-group statistics of each report kind, and their cells. Counting follows halog
//! where halog reports the same thing (see `docs/halog.md`): a request is *ok* when HAProxy
//! logged none of its five timers as `-1`, a status class is the status's first digit.

use weir_model::HttpLog;

use super::Cell;
use crate::timers::TimerSeries;
use crate::{Error, TimerHistograms, TimerId};

/// A mean with three decimals, or no value when there was nothing to average.
fn avg(sum: u64, n: u64) -> Cell {
    if n == 0 {
        Cell::Null
    } else {
        Cell::fixed(sum as f64 / n as f64, 3)
    }
}

/// A percentage with two decimals (0.00 when the denominator is 0, as halog prints it).
pub(crate) fn pct(part: u64, whole: u64) -> Cell {
    Cell::fixed(part as f64 * 100.0 / whole.max(1) as f64, 2)
}

/// Whether HAProxy logged all five timers (halog's "ok" in `-srv` and `-u`).
#[inline]
fn all_timers_known(h: &HttpLog<'_>) -> bool {
    let t = &h.timings;
    t.request.is_some()
        && t.queue.is_some()
        && t.connect.is_some()
        && t.response.is_some()
        && t.total.is_some()
}

/// 0 for other, 1..=5 for 1xx..5xx.
#[inline]
fn status_class(h: &HttpLog<'_>) -> usize {
    match h.status {
        Some(s @ 100..=599) => (s / 100) as usize,
        _ => 0,
    }
}

/// Requests per HTTP status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusCounts {
    /// Index = status, for the codes below 1000.
    codes: Box<[u64; 1000]>,
    /// Status `-1` (none sent).
    none: u64,
    /// Codes of 1000 and above (HAProxy logs what the server sent).
    high: Vec<(u16, u64)>,
}

impl Default for StatusCounts {
    fn default() -> Self {
        StatusCounts {
            codes: Box::new([0; 1000]),
            none: 0,
            high: Vec::new(),
        }
    }
}

impl StatusCounts {
    #[inline]
    pub(crate) fn add(&mut self, h: &HttpLog<'_>) {
        match h.status {
            None => self.none += 1,
            Some(s) if (s as usize) < self.codes.len() => self.codes[s as usize] += 1,
            Some(s) => add_to(&mut self.high, s, 1),
        }
    }

    pub(crate) fn merge(&mut self, o: &StatusCounts) {
        for (a, b) in self.codes.iter_mut().zip(o.codes.iter()) {
            *a += b;
        }
        self.none += o.none;
        for &(s, n) in &o.high {
            add_to(&mut self.high, s, n);
        }
    }

    /// `status,count` rows, `-1` first, then ascending (halog's order).
    pub(crate) fn rows(&self, mut push: impl FnMut([Cell; 2])) {
        if self.none > 0 {
            push([Cell::Int(-1), self.none.into()]);
        }
        for (s, &n) in self.codes.iter().enumerate().filter(|(_, n)| **n > 0) {
            push([Cell::Int(s as i64), n.into()]);
        }
        let mut high = self.high.clone();
        high.sort_unstable();
        for (s, n) in high {
            push([Cell::Int(i64::from(s)), n.into()]);
        }
    }
}

fn add_to<K: PartialEq + Copy>(v: &mut Vec<(K, u64)>, k: K, n: u64) {
    match v.iter_mut().find(|(x, _)| *x == k) {
        Some((_, c)) => *c += n,
        None => v.push((k, n)),
    }
}

/// Requests per termination code (the first two characters of the termination state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TerminationCounts {
    /// Few distinct codes occur: a short list beats a map.
    codes: Vec<([u8; 2], u64)>,
}

impl TerminationCounts {
    #[inline]
    pub(crate) fn add(&mut self, h: &HttpLog<'_>) {
        let b = h.termination_state.as_bytes();
        let code = [
            b.first().copied().unwrap_or(b'?'),
            b.get(1).copied().unwrap_or(b'?'),
        ];
        add_to(&mut self.codes, code, 1);
    }

    pub(crate) fn merge(&mut self, o: &TerminationCounts) {
        for &(c, n) in &o.codes {
            add_to(&mut self.codes, c, n);
        }
    }

    /// `code,count` rows in byte order of the code (halog's order).
    pub(crate) fn rows(&self, mut push: impl FnMut([Cell; 2])) {
        let mut codes = self.codes.clone();
        codes.sort_unstable();
        for (c, n) in codes {
            push([String::from_utf8_lossy(&c).into_owned().into(), n.into()]);
        }
    }
}

/// Apdex counts for target `t` (ms) on the total time: satisfied at or below `t`, tolerating
/// up to `4t`, exact (from the logged values, not a histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ApdexCounts {
    t: u64,
    satisfied: u64,
    tolerating: u64,
    n: u64,
}

impl ApdexCounts {
    pub(crate) fn new(t: u64) -> ApdexCounts {
        ApdexCounts {
            t,
            ..ApdexCounts::default()
        }
    }

    fn cell(&self) -> Cell {
        if self.n == 0 {
            return Cell::Null;
        }
        Cell::fixed(
            (self.satisfied as f64 + self.tolerating as f64 / 2.0) / self.n as f64,
            3,
        )
    }
}

/// halog `-srv` for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerStats {
    /// Apdex counts, when the report asks for them.
    pub(crate) apdex: Option<ApdexCounts>,
    /// Index 0 = other, 1..=5 = 1xx..5xx.
    classes: [u64; 6],
    requests: u64,
    ok: u64,
    connect_sum: u64,
    connect_n: u64,
    response_sum: u64,
    response_n: u64,
}

impl ServerStats {
    /// Columns, the group key (backend, server) included.
    pub(crate) const COLUMNS: [&'static str; 13] = [
        "backend",
        "server",
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
        "requests",
        "ok",
        "ok_pct",
        "avg_connect_ms",
        "avg_response_ms",
    ];

    #[inline]
    pub(crate) fn add(&mut self, h: &HttpLog<'_>) {
        self.classes[status_class(h)] += 1;
        self.requests += 1;
        self.ok += all_timers_known(h) as u64;
        if let Some(c) = h.timings.connect {
            self.connect_sum += c.max(0) as u64;
            self.connect_n += 1;
        }
        if let Some(r) = h.timings.response {
            self.response_sum += r.max(0) as u64;
            self.response_n += 1;
        }
        if let (Some(a), Some(total)) = (self.apdex.as_mut(), h.timings.total) {
            let total = total.max(0) as u64;
            a.n += 1;
            if total <= a.t {
                a.satisfied += 1;
            } else if total <= a.t.saturating_mul(4) {
                a.tolerating += 1;
            }
        }
    }

    pub(crate) fn merge(&mut self, o: &ServerStats) {
        if let (Some(a), Some(b)) = (self.apdex.as_mut(), o.apdex) {
            a.satisfied += b.satisfied;
            a.tolerating += b.tolerating;
            a.n += b.n;
        }
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        self.requests += o.requests;
        self.ok += o.ok;
        self.connect_sum += o.connect_sum;
        self.connect_n += o.connect_n;
        self.response_sum += o.response_sum;
        self.response_n += o.response_n;
    }

    /// The cells after the key: `1xx..5xx,other,requests,ok,ok_pct,avg_connect_ms,avg_response_ms`.
    pub(crate) fn cells(&self) -> impl Iterator<Item = Cell> {
        let c = self.classes;
        [
            c[1].into(),
            c[2].into(),
            c[3].into(),
            c[4].into(),
            c[5].into(),
            c[0].into(),
            self.requests.into(),
            self.ok.into(),
            pct(self.ok, self.requests),
            avg(self.connect_sum, self.connect_n),
            avg(self.response_sum, self.response_n),
        ]
        .into_iter()
    }

    /// Empty stats, with Apdex counts when given.
    pub(crate) fn with_apdex(apdex: Option<ApdexCounts>) -> ServerStats {
        ServerStats {
            apdex,
            ..ServerStats::default()
        }
    }

    /// The `apdex` cell, when the report asks for it.
    pub(crate) fn apdex_cell(&self) -> Option<Cell> {
        self.apdex.map(|a| a.cell())
    }
}

/// Per backend: the server columns, bytes, and total-time quantiles.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackendStats {
    base: ServerStats,
    bytes: u64,
    total: TimerSeries,
}

impl BackendStats {
    /// Columns, the group key (backend) included.
    pub(crate) const COLUMNS: [&'static str; 17] = [
        "backend",
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
        "requests",
        "ok",
        "ok_pct",
        "avg_connect_ms",
        "avg_response_ms",
        "bytes_sum",
        "total_p50",
        "total_p95",
        "total_p99",
        "total_max",
    ];

    pub(crate) fn new(sigfig: u8, apdex: Option<ApdexCounts>) -> Result<BackendStats, Error> {
        Ok(BackendStats {
            base: ServerStats::with_apdex(apdex),
            bytes: 0,
            total: TimerSeries::new(sigfig)?,
        })
    }

    #[inline]
    pub(crate) fn add(&mut self, h: &HttpLog<'_>) {
        self.base.add(h);
        self.bytes += h.bytes_read;
        if let Some(t) = h.timings.total {
            self.total.record(t.max(0) as u64);
        }
    }

    pub(crate) fn merge(&mut self, o: &BackendStats) -> Result<(), Error> {
        self.base.merge(&o.base);
        self.bytes += o.bytes;
        self.total.merge(&o.total)
    }

    pub(crate) fn cells(&self) -> impl Iterator<Item = Cell> {
        let q = |q: f64| Cell::from(self.total.quantile(q));
        let tail = [self.bytes.into(), q(0.5), q(0.95), q(0.99), q(1.0)];
        self.base.cells().chain(tail).chain(self.base.apdex_cell())
    }
}

/// halog `-u` for one URL path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UrlStats {
    pub(crate) requests: u64,
    /// Requests with a `-1` timer (not ok).
    errors: u64,
    total_sum: u64,
    total_n: u64,
    ok_total_sum: u64,
    bytes: u64,
}

impl UrlStats {
    /// Columns, the group key (path) included.
    pub(crate) const COLUMNS: [&'static str; 9] = [
        "path",
        "requests",
        "errors",
        "total_ms_sum",
        "total_ms_avg",
        "ok_total_ms_sum",
        "ok_total_ms_avg",
        "bytes_avg",
        "bytes_sum",
    ];

    #[inline]
    pub(crate) fn add(&mut self, h: &HttpLog<'_>) {
        self.requests += 1;
        let ok = all_timers_known(h);
        self.errors += !ok as u64;
        if let Some(t) = h.timings.total {
            let t = t.max(0) as u64;
            self.total_sum += t;
            self.total_n += 1;
            if ok {
                self.ok_total_sum += t;
            }
        }
        self.bytes += h.bytes_read;
    }

    pub(crate) fn merge(&mut self, o: &UrlStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.total_sum += o.total_sum;
        self.total_n += o.total_n;
        self.ok_total_sum += o.ok_total_sum;
        self.bytes += o.bytes;
    }

    pub(crate) fn cells(&self) -> impl Iterator<Item = Cell> {
        [
            self.requests.into(),
            self.errors.into(),
            self.total_sum.into(),
            avg(self.total_sum, self.total_n),
            self.ok_total_sum.into(),
            avg(self.ok_total_sum, self.requests - self.errors),
            avg(self.bytes, self.requests),
            self.bytes.into(),
        ]
        .into_iter()
    }
}

/// Columns of the timers report after the group key.
pub(crate) const TIMER_COLUMNS: [&str; 9] = [
    "timer", "count", "mean", "p50", "p90", "p95", "p99", "p999", "max",
];

/// One timers row after the group key: the series name, then its summary (empty cells when
/// the series is empty, except `count`, which is 0).
pub(crate) fn timer_cells(id: TimerId, h: &TimerHistograms) -> impl Iterator<Item = Cell> {
    let name = Cell::from(id.name());
    let cells: Vec<Cell> = match h.summary(id) {
        Some(s) => vec![
            s.count.into(),
            Cell::fixed(s.mean, 3),
            s.p50.into(),
            s.p90.into(),
            s.p95.into(),
            s.p99.into(),
            s.p999.into(),
            s.max.into(),
        ],
        None => std::iter::once(Cell::Int(0))
            .chain(std::iter::repeat_n(Cell::Null, 7))
            .collect(),
    };
    std::iter::once(name).chain(cells)
}
