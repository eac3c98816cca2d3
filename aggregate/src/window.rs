//! The tumbling-window aggregator of DESIGN §2: requests in, [`WindowRow`]s out.
//!
//! A request falls in the window of its accept date (`window_start = ts − ts mod window`) and
//! in the series of its (frontend, backend, server, status class). Per series a window keeps
//! [`WindowStats`]: counts, bytes, status codes, termination states, and HDR histograms of the
//! five timers, the data time and the response bytes.
//!
//! Time is event time. The *watermark* is the latest accept date seen minus `lateness`; a
//! window is closed, and its rows emitted, once the watermark reaches its end (or when the
//! caller advances the watermark itself, e.g. from a clock when traffic stops). A request
//! whose window was already closed is never dropped: it opens that window again as a new
//! partial row, emitted at the next advance, and is counted as late. Rows are partial
//! aggregates: readers merge rows with the same window and key ([`merge_rows`]).
//!
//! `max_series` bounds memory: once that many series are open, a request of a new series is
//! counted in its window's overflow series (frontend, backend and server [`OVERFLOW`]), and
//! the diversion is counted.

use hashbrown::{DefaultHashBuilder, Equivalent, HashTable};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use weir_model::{Distribution, HttpLog, Micros, RouterLog, StatusClass, WindowKey, WindowRow};

use crate::sparse::SparseSeries;
use crate::timers::TimerId;
use crate::Error;

/// The frontend, backend and server name of the overflow series.
pub const OVERFLOW: &str = "(overflow)";

/// The frontend of the series of Heroku router lines ([`WindowAggregator::add_router`]).
pub const ROUTER_FRONTEND: &str = "heroku_router";

/// How the aggregator cuts and bounds its windows.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// The window length, seconds (at least 1).
    pub window_secs: u32,
    /// How far behind the latest accept date a window stays open, microseconds.
    pub lateness: Micros,
    /// Significant figures of the histograms (1..=5).
    pub sigfig: u8,
    /// The most series open at once; more go to the overflow series.
    pub max_series: usize,
    /// The node id written into every row.
    pub node: String,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window_secs: 10,
            lateness: 5_000_000,
            sigfig: 2,
            max_series: 100_000,
            node: String::new(),
        }
    }
}

impl WindowConfig {
    fn window_us(&self) -> Micros {
        i64::from(self.window_secs.max(1)) * 1_000_000
    }

    /// The start of the window `ts` falls in.
    #[inline]
    pub fn window_start(&self, ts: Micros) -> Micros {
        let w = self.window_us();
        ts.div_euclid(w) * w
    }
}

/// The aggregate of one series in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    requests: u64,
    bytes_read: u64,
    classes: [u64; 6],
    /// (status or -1, count), few per series: a short vector beats a map.
    status: Vec<(i32, u64)>,
    /// (termination state, count); the state packed in a [`StateKey`] (states are 2 or 4
    /// bytes), so counting compares one integer, not a string.
    termination: Vec<(StateKey, u64)>,
    timers: WindowTimers,
    bytes: SparseSeries,
}

/// A termination state of up to 8 bytes packed into an integer (longer ones, which HAProxy
/// does not write, share the key of their first 8 bytes and are told apart by length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct StateKey(u64, u8);

impl StateKey {
    #[inline]
    fn of(s: &str) -> StateKey {
        let b = s.as_bytes();
        let mut key = [0u8; 8];
        let n = b.len().min(8);
        key[..n].copy_from_slice(&b[..n]);
        StateKey(u64::from_le_bytes(key), b.len().min(255) as u8)
    }

    fn text(self) -> String {
        let bytes = self.0.to_le_bytes();
        let n = usize::from(self.1).min(8);
        String::from_utf8_lossy(&bytes[..n]).into_owned()
    }
}

/// The six timer series of a window (the five timers and the data time), sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowTimers([SparseSeries; 6]);

impl WindowTimers {
    /// One series.
    pub fn get(&self, id: TimerId) -> &SparseSeries {
        &self.0[id as usize]
    }

    /// Records the timers of one request: a timer HAProxy logged as `-1` is not recorded, and
    /// the data time only when all five are known (negative, from a `+` total, as 0), as
    /// [`crate::TimerHistograms`] does.
    #[inline]
    fn record(&mut self, t: &weir_model::Timings) {
        let vals = [t.request, t.queue, t.connect, t.response, t.total];
        for (s, v) in self.0.iter_mut().zip(vals) {
            if let Some(v) = v {
                s.record(v.max(0) as u64);
            }
        }
        if let Some(d) = t.data() {
            self.0[5].record(d.max(0) as u64);
        }
    }
}

impl WindowStats {
    /// Empty stats with histograms of `sigfig` significant figures.
    pub fn new(sigfig: u8) -> Result<WindowStats, Error> {
        let empty = SparseSeries::new(sigfig)?;
        Ok(WindowStats {
            requests: 0,
            bytes_read: 0,
            classes: [0; 6],
            status: Vec::new(),
            termination: Vec::new(),
            timers: WindowTimers(std::array::from_fn(|_| empty.clone())),
            bytes: empty,
        })
    }

    /// Counts one request.
    #[inline]
    pub fn add(&mut self, h: &HttpLog<'_>) {
        self.requests += 1;
        self.bytes_read += h.bytes_read;
        self.classes[StatusClass::of(h.status) as usize] += 1;
        let code = h.status.map_or(-1, i32::from);
        match self.status.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.status.push((code, 1)),
        }
        let state = StateKey::of(h.termination_state);
        match self.termination.iter_mut().find(|(t, _)| *t == state) {
            Some((_, n)) => *n += 1,
            None => self.termination.push((state, 1)),
        }
        self.timers.record(&h.timings);
        self.bytes.record(h.bytes_read);
    }

    /// Empties the stats, keeping their vectors' capacity.
    fn clear(&mut self) {
        self.requests = 0;
        self.bytes_read = 0;
        self.classes = [0; 6];
        self.status.clear();
        self.termination.clear();
        self.timers.0.iter_mut().for_each(SparseSeries::clear);
        self.bytes.clear();
    }

    /// Adds `other` into these stats.
    pub fn merge(&mut self, other: &WindowStats) -> Result<(), Error> {
        self.requests += other.requests;
        self.bytes_read += other.bytes_read;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        for &(code, n) in &other.status {
            match self.status.iter_mut().find(|(c, _)| *c == code) {
                Some((_, m)) => *m += n,
                None => self.status.push((code, n)),
            }
        }
        for &(t, n) in &other.termination {
            match self.termination.iter_mut().find(|(u, _)| *u == t) {
                Some((_, m)) => *m += n,
                None => self.termination.push((t, n)),
            }
        }
        for (a, b) in self.timers.0.iter_mut().zip(&other.timers.0) {
            a.merge(b)?;
        }
        self.bytes.merge(&other.bytes)
    }

    /// Requests counted.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Bytes sent to clients.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The timer histograms.
    pub fn timers(&self) -> &WindowTimers {
        &self.timers
    }

    /// The response-bytes distribution.
    pub fn bytes(&self) -> &SparseSeries {
        &self.bytes
    }

    /// Requests per status class, in [`StatusClass::ALL`] order.
    pub fn status_classes(&self) -> [u64; 6] {
        self.classes
    }

    /// Requests per status code (-1 for none), ascending.
    pub fn status_counts(&self) -> Vec<(i32, u64)> {
        let mut v = self.status.clone();
        v.sort_unstable();
        v
    }

    /// Requests per termination state, ascending.
    pub fn termination_counts(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.termination.iter().map(|(k, n)| (k.text(), *n)).collect();
        v.sort_unstable();
        v
    }

    /// The row of these stats for `window_start` and `key`.
    pub fn to_row(&self, window_start: Micros, config: &WindowConfig, key: WindowKey) -> WindowRow {
        let dist = |s: &SparseSeries| Distribution {
            count: s.count(),
            mean: if s.count() == 0 {
                0.0
            } else {
                s.sum() as f64 / s.count() as f64
            },
            max: s.max(),
            buckets: s.buckets(),
        };
        let t = |id: TimerId| dist(self.timers.get(id));
        WindowRow {
            window_start,
            window_secs: config.window_secs,
            node: config.node.clone(),
            key,
            requests: self.requests,
            bytes_read: self.bytes_read,
            errors: StatusClass::ALL
                .iter()
                .filter(|c| c.is_error())
                .map(|c| self.classes[*c as usize])
                .sum(),
            status_classes: self.classes,
            status_counts: self.status_counts(),
            termination_counts: self.termination_counts(),
            distributions: [
                t(TimerId::Request),
                t(TimerId::Queue),
                t(TimerId::Connect),
                t(TimerId::Response),
                t(TimerId::Total),
                t(TimerId::Data),
                dist(&self.bytes),
            ],
        }
    }

    /// Adds a row's counts and distributions to these stats, in place (readers merge many rows
    /// into one group: this allocates nothing but new buckets). The row must have been written
    /// with these stats' precision for the merge to be exact.
    pub fn add_row(&mut self, row: &WindowRow) {
        self.requests += row.requests;
        self.bytes_read += row.bytes_read;
        for (a, b) in self.classes.iter_mut().zip(row.status_classes) {
            *a += b;
        }
        for &(code, n) in &row.status_counts {
            match self.status.iter_mut().find(|(c, _)| *c == code) {
                Some((_, m)) => *m += n,
                None => self.status.push((code, n)),
            }
        }
        for (t, n) in &row.termination_counts {
            let key = StateKey::of(t);
            match self.termination.iter_mut().find(|(u, _)| *u == key) {
                Some((_, m)) => *m += n,
                None => self.termination.push((key, *n)),
            }
        }
        let dists = &row.distributions;
        for (s, d) in self.timers.0.iter_mut().zip(dists) {
            s.add_buckets(&d.buckets, (d.mean * d.count as f64).round() as u64, d.max);
        }
        let d = &dists[6];
        self.bytes
            .add_buckets(&d.buckets, (d.mean * d.count as f64).round() as u64, d.max);
    }

    /// The stats a row holds, with histograms of `sigfig` significant figures (the precision
    /// the row was written with: the buckets' lowest values fall in the same buckets again).
    pub fn from_row(row: &WindowRow, sigfig: u8) -> Result<WindowStats, Error> {
        let mut stats = WindowStats::new(sigfig)?;
        stats.add_row(row);
        Ok(stats)
    }
}

/// A series key borrowed from a request, looked up without allocating. Its hash equals the
/// owned [`WindowKey`]'s (same fields, same order, `&str` hashing as `String`).
#[derive(Hash)]
struct KeyRef<'a> {
    frontend: &'a str,
    backend: &'a str,
    server: &'a str,
    status_class: StatusClass,
}

impl Equivalent<WindowKey> for KeyRef<'_> {
    fn equivalent(&self, k: &WindowKey) -> bool {
        self.status_class == k.status_class
            && self.server == k.server
            && self.backend == k.backend
            && self.frontend == k.frontend
    }
}

impl KeyRef<'_> {
    fn to_owned(&self) -> WindowKey {
        WindowKey {
            frontend: self.frontend.to_owned(),
            backend: self.backend.to_owned(),
            server: self.server.to_owned(),
            status_class: self.status_class,
        }
    }
}

/// The open series of one window.
#[derive(Debug, Default)]
struct Window {
    /// Positions in `series`, hashed by their key (each key is held once, in `series`).
    index: HashTable<usize>,
    series: Vec<(WindowKey, WindowStats)>,
    last: usize,
}

impl Window {
    /// The position of the series of `key` (hashed as `hash`).
    #[inline]
    fn find(&self, hash: u64, key: &KeyRef<'_>) -> Option<usize> {
        self.index
            .find(hash, |&i| key.equivalent(&self.series[i].0))
            .copied()
    }

    /// Opens a series.
    fn insert(
        &mut self,
        hash: u64,
        key: WindowKey,
        stats: WindowStats,
        hasher: &DefaultHashBuilder,
    ) -> usize {
        let i = self.series.len();
        self.series.push((key, stats));
        let series = &self.series;
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(&series[j].0));
        i
    }
}

/// What the aggregator counted besides the requests themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCounters {
    /// Requests aggregated.
    pub records: u64,
    /// Requests whose window had already been emitted (each became part of a later partial row).
    pub late: u64,
    /// Requests counted in an overflow series because `max_series` series were open.
    pub overflowed: u64,
    /// Rows emitted.
    pub rows: u64,
}

/// Tumbling windows of [`WindowStats`] per series, closed by a watermark.
#[derive(Debug)]
pub struct WindowAggregator {
    config: WindowConfig,
    proto: WindowStats,
    /// Stats of closed series, emptied, kept with their vectors' capacity for new series (at
    /// most `max_series` of them), so that steady traffic allocates no buckets.
    pool: Vec<WindowStats>,
    hasher: DefaultHashBuilder,
    windows: BTreeMap<Micros, Window>,
    /// The window the previous request fell in (most requests fall in the newest one).
    last_window: Option<Micros>,
    open_series: usize,
    /// Every window ending at or before this instant has been emitted once.
    closed_until: Micros,
    max_event: Option<Micros>,
    counters: WindowCounters,
}

impl WindowAggregator {
    /// An empty aggregator.
    pub fn new(config: WindowConfig) -> Result<WindowAggregator, Error> {
        Ok(WindowAggregator {
            proto: WindowStats::new(config.sigfig)?,
            pool: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            config,
            windows: BTreeMap::new(),
            last_window: None,
            open_series: 0,
            closed_until: Micros::MIN,
            max_event: None,
            counters: WindowCounters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// What was counted so far.
    pub fn counters(&self) -> WindowCounters {
        self.counters
    }

    /// Series open now.
    pub fn open_series(&self) -> usize {
        self.open_series
    }

    /// Every window ending at or before this instant has been emitted once (by
    /// [`WindowAggregator::advance`] or [`WindowAggregator::flush`]): what it emits later for
    /// such a window are late rows.
    pub fn closed_until(&self) -> Micros {
        self.closed_until
    }

    /// The latest accept date seen minus `lateness`, or `None` before the first request.
    pub fn watermark(&self) -> Option<Micros> {
        self.max_event.map(|t| t - self.config.lateness)
    }

    /// Aggregates one request.
    #[inline]
    pub fn add(&mut self, h: &HttpLog<'_>) {
        let ts = h.accept_ts;
        let start = self.config.window_start(ts);
        self.counters.records += 1;
        if self.max_event.is_none_or(|m| ts > m) {
            self.max_event = Some(ts);
        }
        if start + self.config.window_us() <= self.closed_until {
            self.counters.late += 1;
        }
        let window = if self.last_window == Some(start) {
            self.windows.get_mut(&start)
        } else {
            None
        };
        let window = match window {
            Some(w) => w,
            None => {
                self.last_window = Some(start);
                self.windows.entry(start).or_default()
            }
        };
        let key = KeyRef {
            frontend: h.frontend,
            backend: h.backend,
            server: h.server,
            status_class: StatusClass::of(h.status),
        };
        let hit = window
            .series
            .get(window.last)
            .is_some_and(|(k, _)| key.equivalent(k));
        if !hit {
            let hash = self.hasher.hash_one(&key);
            window.last = match window.find(hash, &key) {
                Some(i) => i,
                None => {
                    let owned = if self.open_series < self.config.max_series {
                        self.open_series += 1;
                        key.to_owned()
                    } else {
                        self.counters.overflowed += 1;
                        let overflow = KeyRef {
                            frontend: OVERFLOW,
                            backend: OVERFLOW,
                            server: OVERFLOW,
                            status_class: key.status_class,
                        };
                        let hash = self.hasher.hash_one(&overflow);
                        if let Some(i) = window.find(hash, &overflow) {
                            window.series[i].1.add(h);
                            return;
                        }
                        let stats = self.pool.pop().unwrap_or_else(|| self.proto.clone());
                        let i = window.insert(hash, overflow.to_owned(), stats, &self.hasher);
                        window.series[i].1.add(h);
                        return;
                    };
                    let stats = self.pool.pop().unwrap_or_else(|| self.proto.clone());
                    window.insert(hash, owned, stats, &self.hasher)
                }
            };
        }
        window.series[window.last].1.add(h);
    }

    /// Aggregates one Heroku router line (at `ts`) as a request: frontend [`ROUTER_FRONTEND`],
    /// backend the app's host, server the dyno (`<NOSRV>` when the router named none), connect
    /// and service as HAProxy's connect (Tc) and response (Tr) times and their sum as the total
    /// (Ta), and the error code (`H12`) as the termination state (`----` without one).
    pub fn add_router(&mut self, ts: Micros, r: &RouterLog<'_>) {
        let total = match (r.connect_ms, r.service_ms) {
            (None, None) => None,
            (c, s) => Some(c.unwrap_or(0).saturating_add(s.unwrap_or(0))),
        };
        let ms = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        self.add(&HttpLog {
            accept_ts: ts,
            frontend: ROUTER_FRONTEND,
            backend: r.host.unwrap_or("-"),
            server: r.dyno.unwrap_or("<NOSRV>"),
            timings: weir_model::Timings {
                request: None,
                queue: None,
                connect: ms(r.connect_ms),
                response: ms(r.service_ms),
                total: ms(total),
                total_logasap: false,
            },
            status: r.status,
            bytes_read: r.bytes.unwrap_or(0),
            termination_state: r.code.unwrap_or("----"),
            ..HttpLog::default()
        });
    }

    /// Closes every window that ends at or before `watermark` and returns its rows (with the
    /// late rows of windows closed earlier), ordered by window and key.
    pub fn advance(&mut self, watermark: Micros) -> Vec<WindowRow> {
        let w = self.config.window_us();
        let mut rows = Vec::new();
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() + w > watermark {
                break;
            }
            let (start, window) = entry.remove_entry();
            self.take_rows(start, window, &mut rows);
        }
        self.closed_until = self.closed_until.max(watermark.div_euclid(w) * w);
        rows
    }

    /// [`WindowAggregator::advance`] to the watermark of the requests seen.
    pub fn close_due(&mut self) -> Vec<WindowRow> {
        match self.watermark() {
            Some(wm) => self.advance(wm),
            None => Vec::new(),
        }
    }

    /// Emits every open window, whatever the watermark (end of input, shutdown).
    pub fn flush(&mut self) -> Vec<WindowRow> {
        let mut rows = Vec::new();
        for (start, window) in std::mem::take(&mut self.windows) {
            self.take_rows(start, window, &mut rows);
        }
        if let Some(m) = self.max_event {
            let w = self.config.window_us();
            self.closed_until = self.closed_until.max(m.div_euclid(w) * w + w);
        }
        rows
    }

    /// The rows of the open windows as they are now, leaving them open (live views).
    pub fn peek(&self) -> Vec<WindowRow> {
        let mut rows = Vec::new();
        for (start, window) in &self.windows {
            for (key, stats) in &window.series {
                rows.push(stats.to_row(*start, &self.config, key.clone()));
            }
        }
        rows
    }

    fn take_rows(&mut self, start: Micros, window: Window, rows: &mut Vec<WindowRow>) {
        if self.last_window == Some(start) {
            self.last_window = None;
        }
        let first = rows.len();
        for (key, stats) in window.series {
            if key.frontend != OVERFLOW || key.backend != OVERFLOW || key.server != OVERFLOW {
                self.open_series -= 1;
            }
            rows.push(stats.to_row(start, &self.config, key));
            if self.pool.len() < self.config.max_series {
                let mut stats = stats;
                stats.clear();
                self.pool.push(stats);
            }
        }
        rows[first..].sort_by(|a, b| a.key.cmp(&b.key));
        self.counters.rows += (rows.len() - first) as u64;
    }
}

/// Adds `row` to the stats of `key` in `groups`, starting them when the key is new: how every
/// reader folds rows into groups.
pub fn add_to<K: Ord>(
    groups: &mut BTreeMap<K, WindowStats>,
    key: K,
    row: &WindowRow,
    sigfig: u8,
) -> Result<(), Error> {
    match groups.entry(key) {
        std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().add_row(row),
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(WindowStats::from_row(row, sigfig)?);
        }
    }
    Ok(())
}

/// Merges partial rows with the same window (start and length) and key into one row each,
/// whatever node wrote them; the result is ordered by window and key and carries `node`.
pub fn merge_rows(rows: &[WindowRow], sigfig: u8, node: &str) -> Result<Vec<WindowRow>, Error> {
    let mut merged: BTreeMap<(Micros, u32, WindowKey), WindowStats> = BTreeMap::new();
    for row in rows {
        let key = (row.window_start, row.window_secs, row.key.clone());
        add_to(&mut merged, key, row, sigfig)?;
    }
    Ok(rows_of(merged, sigfig, node))
}

/// [`merge_rows`] for rows that come in order: each input ordered by window and key with no
/// window and key twice, as one [`WindowAggregator::advance`] or [`WindowAggregator::flush`]
/// gives them (a live server's workers, closed at the same watermark). The inputs are merged
/// as sorted lists: a row that only one input holds is moved to the output as it is, and only
/// rows of the same window and key are re-recorded into one (which keeps the first one's
/// node). The result is ordered by window and key. Nothing is lost whatever comes in: rows
/// out of that order stay partial rows, which readers merge, and with a precision outside
/// 1..=5 the rows come back as they are.
pub fn merge_ordered(inputs: Vec<Vec<WindowRow>>, sigfig: u8) -> Vec<WindowRow> {
    let mut inputs = inputs.into_iter();
    let first = inputs.next().unwrap_or_default();
    let Ok(proto) = WindowStats::new(sigfig) else {
        return inputs.fold(first, |mut a, b| {
            a.extend(b);
            a
        });
    };
    inputs.fold(first, |a, b| merge_two(a, b, &proto))
}

/// Two partial rows of the same window and key as one, re-recorded into a copy of `empty`
/// (empty stats of the precision the rows were written with); it keeps `a`'s node.
pub fn merge_pair(empty: &WindowStats, a: WindowRow, b: &WindowRow) -> WindowRow {
    let mut stats = empty.clone();
    stats.add_row(&a);
    stats.add_row(b);
    let config = WindowConfig {
        window_secs: a.window_secs,
        node: a.node,
        ..WindowConfig::default()
    };
    stats.to_row(a.window_start, &config, a.key)
}

/// How rows are ordered: by window, then key.
fn order(r: &WindowRow) -> (Micros, u32, &WindowKey) {
    (r.window_start, r.window_secs, &r.key)
}

fn merge_two(a: Vec<WindowRow>, b: Vec<WindowRow>, proto: &WindowStats) -> Vec<WindowRow> {
    if a.is_empty() || b.is_empty() {
        return if a.is_empty() { b } else { a };
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        match order(x).cmp(&order(y)) {
            std::cmp::Ordering::Less => out.extend(a.next()),
            std::cmp::Ordering::Greater => out.extend(b.next()),
            std::cmp::Ordering::Equal => {
                let (Some(x), Some(y)) = (a.next(), b.next()) else {
                    break;
                };
                out.push(merge_pair(proto, x, &y));
            }
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

fn rows_of(
    merged: BTreeMap<(Micros, u32, WindowKey), WindowStats>,
    sigfig: u8,
    node: &str,
) -> Vec<WindowRow> {
    let mut out = Vec::with_capacity(merged.len());
    for ((start, secs, key), stats) in merged {
        let config = WindowConfig {
            window_secs: secs,
            node: node.to_owned(),
            sigfig,
            ..WindowConfig::default()
        };
        out.push(stats.to_row(start, &config, key));
    }
    out
}

#[cfg(test)]
mod tests;
