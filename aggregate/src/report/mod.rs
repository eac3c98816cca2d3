//! The `weir report` kinds: halog's reports, computed from parsed [`Line`]s, mergeable.
//!
//! A [`ReportSpec`] (kind, `--by` dimensions, precision, time range) makes a
//! [`ReportAccumulator`] that holds only what its kind needs: `status` counts codes, `timers`
//! fills [`TimerHistograms`], and so on. Worker threads each `add` lines to their own
//! accumulator; [`ReportAccumulator::merge`] folds them together exactly; [`rows`] renders a
//! [`ReportTable`] whose columns are the CSV contract of DESIGN §4.
//!
//! Which lines count: HTTP request logs feed every kind; TCP sessions, HAProxy events,
//! connection errors, application lines and rejects are counted by `summary` only (halog's
//! `-st` would count a TCP line's byte count as a status; weir does not, like `halog -H`).
//!
//! [`rows`]: ReportAccumulator::rows
//! [`TimerHistograms`]: crate::TimerHistograms

mod cell;
mod group;
mod stats;
mod summary;
pub mod windows;

use weir_model::{HttpLog, Line, Micros, Record};

use crate::{Error, TimerHistograms};
pub use cell::Cell;
use group::Grouped;
use stats::{BackendStats, ServerStats, StatusCounts, TerminationCounts, UrlStats, TIMER_COLUMNS};
use summary::Summary;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// `key,value`: line counts by kind, rejects by reason, time span, bytes, status classes,
    /// and the total time's mean, p50, p99 and max.
    Summary,
    /// `status,count` (halog `-st`); `-1` is a request HAProxy logged without status.
    Status,
    /// Per backend and server (halog `-srv`).
    Servers,
    /// Per backend: status classes, ok share, bytes, mean connect and response, total-time
    /// quantiles.
    Backends,
    /// Per URL path (halog `-u`), busiest first.
    Urls,
    /// `code,count`: the first two characters of the termination state (halog `-tc`).
    Termination,
    /// One row per timer (request, queue, connect, response, total, data): count, mean,
    /// p50, p90, p95, p99, p999, max (halog `-pct`, which shows TR, Tc, Tr and Td).
    Timers,
}

impl ReportKind {
    /// All kinds.
    pub const ALL: [ReportKind; 7] = [
        ReportKind::Summary,
        ReportKind::Status,
        ReportKind::Servers,
        ReportKind::Backends,
        ReportKind::Urls,
        ReportKind::Termination,
        ReportKind::Timers,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Summary => "summary",
            ReportKind::Status => "status",
            ReportKind::Servers => "servers",
            ReportKind::Backends => "backends",
            ReportKind::Urls => "urls",
            ReportKind::Termination => "termination",
            ReportKind::Timers => "timers",
        }
    }

    /// Whether `--by` applies. `servers`, `backends` and `urls` are already grouped by their
    /// own key and `summary` is one list; the others can be split by any [`Dim`].
    pub fn supports_by(self) -> bool {
        matches!(
            self,
            ReportKind::Status | ReportKind::Termination | ReportKind::Timers
        )
    }
}

/// A dimension to group rows by (`--by backend,server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The frontend name (without the `~` TLS marker).
    Frontend,
    /// The backend name.
    Backend,
    /// The server name (`<NOSRV>` when none was reached).
    Server,
    /// The syslog header's host, `-` when the line had none.
    Host,
    /// `1xx` … `5xx`, or `other` (no status, or outside 100..=599).
    StatusClass,
    /// The URL path, up to the first `?` or `;` (as halog's `-u` cuts it).
    Path,
}

impl Dim {
    /// All dimensions.
    pub const ALL: [Dim; 6] = [
        Dim::Frontend,
        Dim::Backend,
        Dim::Server,
        Dim::Host,
        Dim::StatusClass,
        Dim::Path,
    ];

    /// The column name, also what `--by` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Frontend => "frontend",
            Dim::Backend => "backend",
            Dim::Server => "server",
            Dim::Host => "host",
            Dim::StatusClass => "status_class",
            Dim::Path => "path",
        }
    }

    /// Parses a name as [`Dim::name`] gives it.
    pub fn from_name(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.name() == s)
    }

    /// This dimension's value for one request.
    #[inline]
    fn value<'a>(self, line: &Line<'a>, h: &HttpLog<'a>) -> &'a str {
        match self {
            Dim::Frontend => h.frontend,
            Dim::Backend => h.backend,
            Dim::Server => h.server,
            Dim::Host => line.header.host.unwrap_or("-"),
            Dim::StatusClass => match h.status.map(|s| s / 100) {
                Some(1) => "1xx",
                Some(2) => "2xx",
                Some(3) => "3xx",
                Some(4) => "4xx",
                Some(5) => "5xx",
                _ => "other",
            },
            Dim::Path => url_key(h),
        }
    }
}

/// The URL key of a request: the path up to the first `?` or `;`, `<BADREQ>` for a bad request,
/// or the raw request text when it had no path.
#[inline]
fn url_key<'a>(h: &HttpLog<'a>) -> &'a str {
    match h.request.path {
        Some(p) => match memchr::memchr2(b'?', b';', p.as_bytes()) {
            Some(i) => &p[..i],
            None => p,
        },
        None if h.request.bad => "<BADREQ>",
        None => h.request.raw,
    }
}

/// A half-open time range `[since, until)` on the event time (an HTTP or TCP line's accept
/// date, an app line's own time). Lines without a time pass only when the range is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Inclusive lower bound, µs since the epoch.
    pub since: Option<Micros>,
    /// Exclusive upper bound, µs since the epoch.
    pub until: Option<Micros>,
}

impl TimeRange {
    /// The range with no bounds.
    pub const ALL: TimeRange = TimeRange {
        since: None,
        until: None,
    };

    /// Whether neither bound is set.
    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether `line` falls in the range.
    #[inline]
    pub fn contains(&self, line: &Line<'_>) -> bool {
        if self.is_unbounded() {
            return true;
        }
        let ts = match &line.record {
            Record::Http(h) => Some(h.accept_ts),
            Record::Tcp(t) => Some(t.accept_ts),
            Record::App(a) => a.ts.or(line.header.timestamp),
            Record::Reject(_) => line.header.timestamp,
        };
        match ts {
            Some(ts) => self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u),
            None => false,
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// The report.
    pub kind: ReportKind,
    /// Grouping dimensions, for kinds that [support](ReportKind::supports_by) them.
    pub by: Vec<Dim>,
    /// HDR histogram precision, significant figures (reports use [`crate::hdr::REPORT_SIGFIG`]).
    pub sigfig: u8,
    /// Lines outside this range are ignored.
    pub range: TimeRange,
    /// Apdex target T in ms: `servers` and `backends` get an `apdex` column (total time at or
    /// below T satisfied, up to 4T tolerating).
    pub apdex_t: Option<u64>,
}

impl ReportSpec {
    /// Whether the report reads the request line (the `urls` report, or grouping by path):
    /// when not, the parser can leave it unsplit.
    pub fn uses_request_line(&self) -> bool {
        self.kind == ReportKind::Urls || self.by.contains(&Dim::Path)
    }

    /// A spec for `kind` with no grouping, 3 significant figures and no time bounds.
    pub fn new(kind: ReportKind) -> ReportSpec {
        ReportSpec {
            kind,
            by: Vec::new(),
            sigfig: crate::hdr::REPORT_SIGFIG,
            range: TimeRange::ALL,
            apdex_t: None,
        }
    }
}

/// A rendered report: column names and rows of typed cells ([`Cell::Null`] is "no value", e.g.
/// the percentiles of a timer nothing reached). Group keys are always strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportTable {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<Cell>>,
}

impl ReportTable {
    fn new<'s>(dims: &[Dim], cols: impl IntoIterator<Item = &'s str>) -> ReportTable {
        let header = dims
            .iter()
            .map(|d| d.name().to_string())
            .chain(cols.into_iter().map(String::from))
            .collect();
        ReportTable {
            header,
            rows: Vec::new(),
        }
    }
}

/// The per-kind state behind a [`ReportAccumulator`].
#[derive(Debug, Clone)]
enum State {
    Summary(Box<Summary>),
    Status(Grouped<StatusCounts>),
    Termination(Grouped<TerminationCounts>),
    Servers(Grouped<ServerStats>),
    Backends(Grouped<BackendStats>),
    Urls(Grouped<UrlStats>),
    Timers(Grouped<TimerHistograms>),
}

/// Accumulates one report over lines; merge accumulators built on disjoint parts of the input
/// to get the report of the whole. Cheap to clone while empty: give each worker a clone.
#[derive(Debug, Clone)]
pub struct ReportAccumulator {
    spec: ReportSpec,
    state: State,
}

impl ReportAccumulator {
    /// An empty accumulator. Fails on an impossible precision; `--by` on a kind that does not
    /// support it is a [`Error::Mismatch`].
    pub fn new(spec: ReportSpec) -> Result<ReportAccumulator, Error> {
        if !spec.by.is_empty() && !spec.kind.supports_by() {
            return Err(Error::Mismatch {
                left: format!("{} report", spec.kind.name()),
                right: "--by grouping".to_string(),
            });
        }
        let by = spec.by.clone();
        let state = match spec.kind {
            ReportKind::Summary => State::Summary(Box::new(Summary::new(spec.sigfig)?)),
            ReportKind::Status => State::Status(Grouped::new(by, StatusCounts::default())),
            ReportKind::Termination => State::Termination(Grouped::new(by, TerminationCounts::default())),
            ReportKind::Servers => State::Servers(Grouped::new(
                vec![Dim::Backend, Dim::Server],
                ServerStats::with_apdex(spec.apdex_t.map(stats::ApdexCounts::new)),
            )),
            ReportKind::Backends => State::Backends(Grouped::new(
                vec![Dim::Backend],
                BackendStats::new(spec.sigfig, spec.apdex_t.map(stats::ApdexCounts::new))?,
            )),
            ReportKind::Urls => State::Urls(Grouped::new(vec![Dim::Path], UrlStats::default())),
            ReportKind::Timers => State::Timers(Grouped::new(by, TimerHistograms::new(spec.sigfig)?)),
        };
        Ok(ReportAccumulator { spec, state })
    }

    /// What this accumulator computes.
    pub fn spec(&self) -> &ReportSpec {
        &self.spec
    }

    /// Counts one line (lines outside the spec's time range are ignored).
    #[inline]
    pub fn add(&mut self, line: &Line<'_>) {
        if !self.spec.range.contains(line) {
            return;
        }
        if let State::Summary(s) = &mut self.state {
            s.add(line);
            return;
        }
        let Record::Http(h) = &line.record else { return };
        match &mut self.state {
            State::Summary(_) => {}
            State::Status(g) => g.entry(line, h).add(h),
            State::Termination(g) => g.entry(line, h).add(h),
            State::Servers(g) => g.entry(line, h).add(h),
            State::Backends(g) => g.entry(line, h).add(h),
            State::Urls(g) => g.entry(line, h).add(h),
            State::Timers(g) => g.entry(line, h).record(&h.timings),
        }
    }

    /// Folds `other` into `self`. Both must come from the same [`ReportSpec`].
    pub fn merge(&mut self, other: ReportAccumulator) -> Result<(), Error> {
        if self.spec != other.spec {
            return Err(Error::Mismatch {
                left: format!("{:?}", self.spec),
                right: format!("{:?}", other.spec),
            });
        }
        match (&mut self.state, other.state) {
            (State::Summary(a), State::Summary(b)) => a.merge(&b),
            (State::Status(a), State::Status(b)) => a.merge(b, |x, y| {
                x.merge(&y);
                Ok(())
            }),
            (State::Termination(a), State::Termination(b)) => a.merge(b, |x, y| {
                x.merge(&y);
                Ok(())
            }),
            (State::Servers(a), State::Servers(b)) => a.merge(b, |x, y| {
                x.merge(&y);
                Ok(())
            }),
            (State::Backends(a), State::Backends(b)) => a.merge(b, |x, y| x.merge(&y)),
            (State::Urls(a), State::Urls(b)) => a.merge(b, |x, y| {
                x.merge(&y);
                Ok(())
            }),
            (State::Timers(a), State::Timers(b)) => a.merge(b, |x, y| x.merge(&y)),
            _ => Err(Error::Mismatch {
                left: self.spec.kind.name().into(),
                right: "another kind".into(),
            }),
        }
    }

    /// The report as a table; rows sorted by group key, then as the kind orders them.
    pub fn rows(&self) -> ReportTable {
        let by = &self.spec.by;
        match &self.state {
            State::Summary(s) => s.rows(),
            State::Status(g) => {
                let mut t = ReportTable::new(by, ["status", "count"]);
                for (key, c) in g.sorted() {
                    c.rows(|r| t.rows.push(key_cells(&key).chain(r).collect()));
                }
                t
            }
            State::Termination(g) => {
                let mut t = ReportTable::new(by, ["code", "count"]);
                for (key, c) in g.sorted() {
                    c.rows(|r| t.rows.push(key_cells(&key).chain(r).collect()));
                }
                t
            }
            State::Servers(g) => {
                let mut t = ReportTable::new(&[], ServerStats::COLUMNS);
                if self.spec.apdex_t.is_some() {
                    t.header.push("apdex".into());
                }
                for (key, s) in g.sorted() {
                    t.rows
                        .push(key_cells(&key).chain(s.cells()).chain(s.apdex_cell()).collect());
                }
                t
            }
            State::Backends(g) => {
                let mut t = ReportTable::new(&[], BackendStats::COLUMNS);
                if self.spec.apdex_t.is_some() {
                    t.header.push("apdex".into());
                }
                for (key, s) in g.sorted() {
                    t.rows.push(key_cells(&key).chain(s.cells()).collect());
                }
                t
            }
            State::Urls(g) => {
                let mut t = ReportTable::new(&[], UrlStats::COLUMNS);
                let mut all: Vec<_> = g.sorted();
                all.sort_by(|(ka, a), (kb, b)| b.requests.cmp(&a.requests).then_with(|| ka.cmp(kb)));
                for (key, s) in all {
                    t.rows.push(key_cells(&key).chain(s.cells()).collect());
                }
                t
            }
            State::Timers(g) => {
                let mut t = ReportTable::new(by, stats::TIMER_COLUMNS);
                for (key, h) in g.sorted() {
                    for id in crate::TimerId::ALL {
                        t.rows
                            .push(key_cells(&key).chain(stats::timer_cells(id, h)).collect());
                    }
                }
                t
            }
        }
    }
}

/// A group key as cells: names stay strings, whatever they look like.
fn key_cells(key: &[String]) -> impl Iterator<Item = Cell> + '_ {
    key.iter().map(|k| Cell::Str(k.clone()))
}

#[cfg(test)]
pub(crate) mod tests;
