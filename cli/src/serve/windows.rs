//! Live windows in `serve`: each pipeline worker aggregates its own requests
//! ([`WindowAggregator`], behind a lock taken once per batch); a closer task ticks every second
//! and closes, on every worker, the windows that the watermark (the latest accept date, or the
//! clock when traffic stops, minus `lateness`) has passed. Closed rows go three ways: into the
//! `/metrics` exposition, and, packed ([`weir_model::packed`]), into a ring of recent rows for
//! `/api/windows` and `weir top` and into the spool's `windows` table. The workers' rows of a
//! series closed in the same tick are merged into one first (each worker sees every busy
//! series, so this halves the rows kept and written with two workers); rows closed in other
//! ticks (late requests) stay partial: readers merge.
//!
//! The l2met metrics of app lines (`measure#`, `count#`, `sample#`) are aggregated here too,
//! in one [`L2metLive`] the workers share, for `/metrics`.
//!
//! The closer reads time from tokio's clock, so tests drive it with `tokio::time::pause()`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::watch;
use weir_aggregate::exposition::Exposition;
use weir_aggregate::l2met::{L2metConfig, L2metLive};
use weir_aggregate::{WindowAggregator, WindowConfig, WindowCounters};
use weir_ingest::l2met::LineMetrics;
use weir_model::{Distribution, Micros, PackedRow, StatusClass, WindowKey, WindowRow};
use weir_store::windows::WindowsWriter;

use super::breaker::{Access, DiskBreaker};
use super::metrics::Metrics;

/// How long closed rows stay in memory for `/api/windows`.
pub const RECENT: Duration = Duration::from_secs(3600);

/// At most this many bytes of closed rows, packed ([`PackedRow`]), stay in memory for
/// `/api/windows` (the oldest go first): at 10,000 series of about a hundred requests a window
/// each, the last half minute or so of 10 s windows (`BENCHMARKS.md`).
pub const RECENT_BYTES: usize = 16 << 20;

/// How often the closer runs.
pub const TICK: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What happens to closed rows.
#[derive(Debug)]
struct Closed {
    exposition: Exposition,
    /// The recent closed rows, packed, oldest first.
    recent: VecDeque<PackedRow>,
    /// [`PackedRow::weight`] of `recent`.
    recent_bytes: usize,
    /// The most `recent_bytes` may reach ([`RECENT_BYTES`]).
    recent_budget: usize,
    writer: Option<WindowsWriter>,
    write_errors: u64,
    /// The pipeline's disk breaker: while it is open the rows wait in the writer.
    breaker: Option<(Arc<DiskBreaker>, Arc<Metrics>)>,
}

/// The windows of a running server.
#[derive(Debug)]
pub struct LiveWindows {
    config: WindowConfig,
    workers: Vec<Arc<Mutex<WindowAggregator>>>,
    closed: Mutex<Closed>,
    /// The l2met metrics of app lines, shared by the workers (locked only for a line that has
    /// some), windowed like the requests.
    l2met: Mutex<L2metLive>,
}

impl LiveWindows {
    /// One aggregator per worker; closed rows go to `writer` when given.
    pub fn new(
        config: WindowConfig,
        workers: usize,
        buckets_ms: Vec<u64>,
        max_exposed: usize,
        writer: Option<WindowsWriter>,
    ) -> anyhow::Result<LiveWindows> {
        let workers = (0..workers.max(1))
            .map(|_| WindowAggregator::new(config.clone()).map(|a| Arc::new(Mutex::new(a))))
            .collect::<Result<_, _>>()?;
        let l2met = L2metLive::new(L2metConfig {
            window: Micros::from(config.window_secs) * 1_000_000,
            lateness: config.lateness,
            sigfig: config.sigfig,
            max_series: max_exposed,
        })?;
        Ok(LiveWindows {
            l2met: Mutex::new(l2met),
            closed: Mutex::new(Closed {
                exposition: Exposition::new(buckets_ms, config.sigfig, max_exposed),
                recent: VecDeque::new(),
                recent_bytes: 0,
                recent_budget: RECENT_BYTES,
                writer,
                write_errors: 0,
                breaker: None,
            }),
            config,
            workers,
        })
    }

    /// Publishes the `windows` table only while `breaker` is closed, and tells it of failures
    /// (logged once per change of state there, not once per attempt here).
    pub fn with_breaker(self, breaker: Arc<DiskBreaker>, metrics: Arc<Metrics>) -> LiveWindows {
        lock(&self.closed).breaker = Some((breaker, metrics));
        self
    }

    /// Adds the l2met metrics of an app line of `app` whose time is `ts`.
    pub fn add_metrics(&self, app: Option<&str>, ts: Micros, metrics: &LineMetrics<'_>) {
        if metrics.is_empty() {
            return;
        }
        let mut live = lock(&self.l2met);
        metrics.for_each(|m| live.add(app, ts, &m));
    }

    /// Calls `f` with the live l2met metrics, their windows closed as of `now` first.
    pub fn with_l2met<R>(&self, now: Micros, f: impl FnOnce(&L2metLive) -> R) -> R {
        let mut live = lock(&self.l2met);
        live.seal(now);
        f(&live)
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// Worker `i`'s aggregator.
    pub fn aggregator(&self, i: usize) -> Arc<Mutex<WindowAggregator>> {
        self.workers[i % self.workers.len()].clone()
    }

    /// Closes what is due at `now` on every worker; returns the rows closed.
    pub fn close(&self, now: Micros) -> usize {
        let by_clock = now - self.config.lateness;
        let closed = self
            .workers
            .iter()
            .map(|w| {
                let mut agg = lock(w);
                let wm = agg.watermark().map_or(by_clock, |wm| wm.max(by_clock));
                agg.advance(wm)
            })
            .collect();
        let rows = self.merge_workers(closed);
        let n = rows.len();
        self.take(rows, now);
        n
    }

    /// The workers' rows (each worker's ordered by window and key) with one row per window and
    /// series, ordered by window and key: only the series that more than one worker saw are
    /// re-recorded, the others are moved as they are.
    fn merge_workers(&self, closed: Vec<Vec<WindowRow>>) -> Vec<WindowRow> {
        weir_aggregate::merge_ordered(closed, self.config.sigfig)
    }

    /// Closes every window (shutdown) and publishes the `windows` table.
    pub fn finish(&self) -> anyhow::Result<()> {
        let closed = self.workers.iter().map(|w| lock(w).flush()).collect();
        let rows = self.merge_workers(closed);
        self.take(rows, now_micros());
        let writer = lock(&self.closed).writer.take();
        if let Some(w) = writer {
            w.finish()?;
        }
        Ok(())
    }

    fn take(&self, rows: Vec<WindowRow>, now: Micros) {
        let mut c = lock(&self.closed);
        if let Err(e) = c.exposition.observe(&rows) {
            tracing::error!(error = %e, "window rows could not be exposed");
        }
        if !rows.is_empty() {
            // Every worker was just advanced: the newest window seen is complete.
            let _ = c.exposition.seal();
        }
        let c = &mut *c;
        let packed: Vec<PackedRow> = rows.iter().map(PackedRow::pack).collect();
        drop(rows);
        if let Some(w) = c.writer.as_mut() {
            // While the disk breaker is open, rows wait in the writer (it keeps a failed
            // partition's rows too) and nothing is tried: the pipeline's probe decides.
            let writable = c.breaker.as_ref().is_none_or(|(b, _)| b.is_closed());
            let written =
                w.append_packed(packed.clone())
                    .and_then(|()| if writable { w.rotate_aged() } else { Ok(()) });
            if let Err(e) = written {
                c.write_errors += 1;
                match &c.breaker {
                    Some((b, m)) => b.settle(Access::Write, Some(&e), Instant::now(), m),
                    None => tracing::error!(error = %e, "publishing the windows table failed"),
                }
            }
        }
        for r in packed {
            c.recent_bytes += r.weight();
            c.recent.push_back(r);
        }
        let keep_from = now - RECENT.as_micros() as Micros;
        while c
            .recent
            .front()
            .is_some_and(|r| r.window_start < keep_from || c.recent_bytes > c.recent_budget)
        {
            if let Some(r) = c.recent.pop_front() {
                c.recent_bytes -= r.weight();
            }
        }
    }

    /// Runs `f` on the exposition state (for `/metrics`).
    pub fn with_exposition<R>(&self, f: impl FnOnce(&Exposition) -> R) -> R {
        f(&lock(&self.closed).exposition)
    }

    /// The aggregators' counters, added up.
    pub fn counters(&self) -> (WindowCounters, usize) {
        let mut total = WindowCounters::default();
        let mut open = 0;
        for w in &self.workers {
            let a = lock(w);
            let c = a.counters();
            total.records += c.records;
            total.late += c.late;
            total.overflowed += c.overflowed;
            total.rows += c.rows;
            open += a.open_series();
        }
        (total, open)
    }

    /// Rows for `/api/windows`: with `unpublished`, only what the spool does not hold yet (rows
    /// waiting for the writer, and the open windows as they are now), with the names of the
    /// `windows` files this server published; otherwise the recent closed rows and the open
    /// windows. Only windows starting at or after `since`.
    pub fn snapshot(&self, since: Option<Micros>, unpublished: bool) -> (Vec<WindowRow>, Vec<String>) {
        let mut rows = Vec::new();
        let mut published = Vec::new();
        {
            let c = lock(&self.closed);
            if unpublished {
                if let Some(w) = &c.writer {
                    rows.extend(w.pending().map(std::borrow::Cow::into_owned));
                    published = w
                        .published()
                        .iter()
                        .filter_map(|f| f.path.file_name()?.to_str().map(str::to_owned))
                        .collect();
                }
            } else {
                rows.extend(
                    c.recent
                        .iter()
                        .filter(|r| since.is_none_or(|s| r.window_start >= s))
                        .map(PackedRow::unpack),
                );
            }
        }
        for w in &self.workers {
            rows.extend(lock(w).peek());
        }
        rows.retain(|r| since.is_none_or(|s| r.window_start >= s));
        (rows, published)
    }
}

/// The wall clock as tokio sees it: the system time at `base`, moved on by tokio's clock, so
/// that paused time in tests moves it too.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    system: Micros,
    tokio: tokio::time::Instant,
}

impl Clock {
    /// Now.
    pub fn start() -> Clock {
        Clock::at(now_micros())
    }

    /// A clock that reads `t` now.
    pub fn at(t: Micros) -> Clock {
        Clock {
            system: t,
            tokio: tokio::time::Instant::now(),
        }
    }

    /// The time now.
    pub fn now(&self) -> Micros {
        self.system + self.tokio.elapsed().as_micros() as Micros
    }
}

fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// Closes due windows every [`TICK`] until `stop` turns true.
pub async fn run_closer(windows: Arc<LiveWindows>, clock: Clock, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tick.tick() => {
                let w = windows.clone();
                let now = clock.now();
                // Taking the workers' locks may wait for a batch: off the async threads.
                let _ = tokio::task::spawn_blocking(move || {
                    w.close(now);
                    crate::alloc::trim();
                })
                .await;
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// The JSON form of window rows, shared by `/api/windows`, `weir query --server` and `weir top`.

fn dist_json(d: &Distribution) -> Value {
    json!({
        "count": d.count,
        "mean": d.mean,
        "max": d.max,
        "buckets": d.buckets.iter().map(|(v, n)| [v, n]).collect::<Vec<_>>(),
    })
}

/// A row as JSON.
pub fn row_json(r: &WindowRow) -> Value {
    let dists: serde_json::Map<String, Value> = weir_model::window::DISTRIBUTIONS
        .iter()
        .zip(&r.distributions)
        .map(|(name, d)| ((*name).to_owned(), dist_json(d)))
        .collect();
    json!({
        "window_start": r.window_start,
        "window_secs": r.window_secs,
        "node": r.node,
        "frontend": r.key.frontend,
        "backend": r.key.backend,
        "server": r.key.server,
        "status_class": r.key.status_class.name(),
        "requests": r.requests,
        "bytes_read": r.bytes_read,
        "errors": r.errors,
        "status_classes": r.status_classes,
        "status_counts": r.status_counts,
        "termination_counts": r.termination_counts,
        "distributions": dists,
    })
}

/// A row from [`row_json`]'s form; `None` when a field is missing or of another type.
pub fn row_from_json(v: &Value) -> Option<WindowRow> {
    let u = |k: &str| v.get(k)?.as_u64();
    let s = |k: &str| Some(v.get(k)?.as_str()?.to_owned());
    let dist = |d: &Value| -> Option<Distribution> {
        Some(Distribution {
            count: d.get("count")?.as_u64()?,
            mean: d.get("mean")?.as_f64()?,
            max: d.get("max")?.as_u64()?,
            buckets: d
                .get("buckets")?
                .as_array()?
                .iter()
                .map(|b| Some((b.get(0)?.as_u64()?, b.get(1)?.as_u64()?)))
                .collect::<Option<_>>()?,
        })
    };
    let dists = v.get("distributions")?;
    let distributions: Vec<Distribution> = weir_model::window::DISTRIBUTIONS
        .iter()
        .map(|name| dist(dists.get(*name)?))
        .collect::<Option<_>>()?;
    let classes: Vec<u64> = v
        .get("status_classes")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<_>>()?;
    Some(WindowRow {
        window_start: v.get("window_start")?.as_i64()?,
        window_secs: u32::try_from(u("window_secs")?).ok()?,
        node: s("node")?,
        key: WindowKey {
            frontend: s("frontend")?,
            backend: s("backend")?,
            server: s("server")?,
            status_class: StatusClass::from_name(v.get("status_class")?.as_str()?)?,
        },
        requests: u("requests")?,
        bytes_read: u("bytes_read")?,
        errors: u("errors")?,
        status_classes: classes.try_into().ok()?,
        status_counts: v
            .get("status_counts")?
            .as_array()?
            .iter()
            .map(|p| Some((i32::try_from(p.get(0)?.as_i64()?).ok()?, p.get(1)?.as_u64()?)))
            .collect::<Option<_>>()?,
        termination_counts: v
            .get("termination_counts")?
            .as_array()?
            .iter()
            .map(|p| Some((p.get(0)?.as_str()?.to_owned(), p.get(1)?.as_u64()?)))
            .collect::<Option<_>>()?,
        distributions: distributions.try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::{HttpLog, Timings};

    fn request(ts: Micros, backend: &'static str, total: i32) -> HttpLog<'static> {
        HttpLog {
            accept_ts: ts,
            frontend: "fe",
            backend,
            server: "s1",
            timings: Timings {
                request: Some(0),
                queue: Some(0),
                connect: Some(1),
                response: Some(total / 2),
                total: Some(total),
                total_logasap: false,
            },
            status: Some(200),
            bytes_read: 100,
            termination_state: "----",
            ..HttpLog::default()
        }
    }

    const T0: Micros = 1_800_000_000_000_000;

    fn live(dir: &std::path::Path) -> Arc<LiveWindows> {
        let opts = weir_store::SpoolOptions {
            fsync: false,
            rotate_age: None,
            ..weir_store::SpoolOptions::new(dir, "n1", "b1")
        };
        Arc::new(
            LiveWindows::new(
                WindowConfig {
                    node: "n1".into(),
                    ..WindowConfig::default()
                },
                2,
                vec![10, 100],
                100,
                Some(WindowsWriter::new(opts).unwrap()),
            )
            .unwrap(),
        )
    }

    /// With paused time, the closer closes a window `lateness` after its end by the clock,
    /// although no later request came; a request after that is late and becomes its own row.
    #[tokio::test(start_paused = true)]
    async fn the_closer_closes_windows_by_the_clock_when_traffic_stops() {
        let dir = tempfile::tempdir().unwrap();
        let w = live(dir.path());
        lock(&w.aggregator(0)).add(&request(T0 + 1_000_000, "be_a", 40));
        lock(&w.aggregator(1)).add(&request(T0 + 2_000_000, "be_a", 60));
        let (stop_tx, stop_rx) = watch::channel(false);
        let closer = tokio::spawn(run_closer(w.clone(), Clock::at(T0 + 3_000_000), stop_rx));

        // 3 s + 11 s = 14 s < 10 s + 5 s: still open.
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(w.counters().0.rows, 0);
        let (rows, _) = w.snapshot(None, false);
        assert_eq!(rows.len(), 2, "open windows are visible as they are");

        // Past 15 s: closed, in the exposition and the recent rows.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(w.counters().0.rows, 2, "one partial row per worker");
        w.with_exposition(|e| {
            let t = &e.series()[&("fe".into(), "be_a".into(), "s1".into())];
            assert_eq!(t.requests[StatusClass::Success as usize], 2);
            assert_eq!(t.timers[4].le, vec![0, 2]);
            assert_eq!(e.last_window().unwrap().window_start, T0);
        });
        let (recent, _) = w.snapshot(Some(T0), false);
        assert_eq!(recent.iter().map(|r| r.requests).sum::<u64>(), 2);
        assert_eq!(
            recent.len(),
            1,
            "the workers' rows of a series are merged as they close"
        );

        // A request of that window now is late: another partial row at the next tick.
        lock(&w.aggregator(0)).add(&request(T0 + 3_000_000, "be_a", 70));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (c, open) = w.counters();
        assert_eq!((c.late, c.rows, open), (1, 3, 0));

        let _ = stop_tx.send(true);
        closer.await.unwrap();
        w.finish().unwrap();
        let stored = weir_store::windows::read_windows(dir.path(), None, None).unwrap();
        assert_eq!(stored.iter().map(|r| r.requests).sum::<u64>(), 3);
        assert_eq!(stored.len(), 2, "the merged row and the late one");
    }

    #[test]
    fn recent_rows_keep_to_their_byte_budget_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let w = live(dir.path());
        lock(&w.aggregator(0)).add(&request(T0, "be_a", 40));
        w.close(T0 + 20_000_000);
        let one = lock(&w.closed).recent_bytes;
        lock(&w.closed).recent_budget = 3 * one;
        for k in 1..10 {
            lock(&w.aggregator(0)).add(&request(T0 + k * 10_000_000, "be_a", 40));
            w.close(T0 + (k + 2) * 10_000_000);
        }
        let (rows, _) = w.snapshot(None, false);
        let starts: Vec<Micros> = rows.iter().map(|r| r.window_start).collect();
        assert_eq!(
            starts,
            [7, 8, 9].map(|k| T0 + k * 10_000_000),
            "the three newest rows"
        );
        assert_eq!(lock(&w.closed).recent_bytes, 3 * one);
    }

    #[test]
    fn rows_round_trip_through_json() {
        let mut agg = WindowAggregator::new(WindowConfig::default()).unwrap();
        agg.add(&request(T0, "be_a", 1234));
        for row in agg.flush() {
            assert_eq!(row_from_json(&row_json(&row)), Some(row));
        }
        assert_eq!(row_from_json(&json!({"window_start": 1})), None);
    }
}
