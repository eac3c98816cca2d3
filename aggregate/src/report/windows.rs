//! The report kinds computed from window rows (`weir report KIND --spool DIR`): the same
//! columns as from log lines, through the same exact merge as `weir query`.
//!
//! A window row knows its series (frontend, backend, server, status class), counts, status
//! codes, termination states and the histograms of the timers; it does not know paths or
//! hosts, so `urls` and `--by host|path` need the log lines. `ok` (a request whose five
//! timers are all known, as halog counts it) is the data time's count, which is recorded for
//! exactly those requests. Quantiles are those of [`crate::query::summarize`].
//!
//! `summary` adds, per timer, the statistics Tsung prints for a load test: the highest and
//! lowest mean over one window, and the highest and mean request rate per window.

use std::collections::BTreeMap;

use weir_model::time::format_rfc3339;
use weir_model::{StatusClass, WindowKey, WindowRow};

use super::stats::pct;
use super::{Cell, Dim, ReportKind, ReportTable, TIMER_COLUMNS};
use crate::query::{apdex, summarize, KeyDim};
use crate::timers::TimerId;
use crate::window::{add_to, WindowStats};
use crate::Error;

/// Why a report cannot be made from window rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowReportError {
    /// The kind needs what windows do not keep.
    #[error("`{0}` needs the log lines (paths are not in the windows table): run it on the log files")]
    Kind(&'static str),
    /// A `--by` dimension windows do not keep.
    #[error("--by {0}: windows are keyed by frontend, backend, server and status_class only")]
    Dim(&'static str),
}

fn key_dim(d: Dim) -> Result<KeyDim, WindowReportError> {
    match d {
        Dim::Frontend => Ok(KeyDim::Frontend),
        Dim::Backend => Ok(KeyDim::Backend),
        Dim::Server => Ok(KeyDim::Server),
        Dim::StatusClass => Ok(KeyDim::StatusClass),
        other => Err(WindowReportError::Dim(other.name())),
    }
}

/// Checks that `kind` and `by` can be answered from windows.
pub fn check(kind: ReportKind, by: &[Dim]) -> Result<(), WindowReportError> {
    if kind == ReportKind::Urls {
        return Err(WindowReportError::Kind("urls"));
    }
    for d in by {
        key_dim(*d)?;
    }
    Ok(())
}

fn merge_by(
    rows: &[WindowRow],
    sigfig: u8,
    key: impl Fn(&WindowKey) -> Vec<String>,
) -> Result<BTreeMap<Vec<String>, WindowStats>, Error> {
    let mut out: BTreeMap<Vec<String>, WindowStats> = BTreeMap::new();
    for r in rows {
        add_to(&mut out, key(&r.key), r, sigfig)?;
    }
    Ok(out)
}

fn class_cells(s: &WindowStats) -> [Cell; 6] {
    let c = s.status_classes();
    // 1xx..5xx, then other: the `-srv` column order.
    [c[0], c[1], c[2], c[3], c[4], c[5]].map(Cell::count)
}

fn mean(s: &crate::sparse::SparseSeries) -> Cell {
    if s.count() == 0 {
        Cell::Null
    } else {
        Cell::fixed(s.sum() as f64 / s.count() as f64, 3)
    }
}

/// `kind` over `rows` (already limited to the time range), grouped by `by`, with an `apdex`
/// column on `servers` and `backends` when `apdex_t` (ms) is given.
pub fn report(
    kind: ReportKind,
    by: &[Dim],
    rows: &[WindowRow],
    sigfig: u8,
    apdex_t: Option<u64>,
) -> Result<ReportTable, Error> {
    let dims: Vec<KeyDim> = by
        .iter()
        .map(|d| key_dim(*d))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Mismatch {
            left: "a windows report".into(),
            right: e.to_string(),
        })?;
    let group = |k: &WindowKey| dims.iter().map(|d| d.value(k).to_owned()).collect::<Vec<_>>();
    let strs = |g: &[String]| g.iter().map(|v| Cell::Str(v.clone())).collect::<Vec<_>>();
    let apdex_cell = |s: &WindowStats| match apdex_t {
        Some(t) => apdex(s.timers().get(TimerId::Total), t).map_or(Cell::Null, |a| Cell::fixed(a, 3)),
        None => Cell::Null,
    };
    let mut t;
    match kind {
        ReportKind::Status => {
            t = ReportTable::new(by, ["status", "count"]);
            for (g, s) in merge_by(rows, sigfig, group)? {
                for (code, n) in s.status_counts() {
                    let mut row = strs(&g);
                    row.extend([Cell::Int(i64::from(code)), Cell::count(n)]);
                    t.rows.push(row);
                }
            }
        }
        ReportKind::Termination => {
            t = ReportTable::new(by, ["code", "count"]);
            for (g, s) in merge_by(rows, sigfig, group)? {
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                for (state, n) in s.termination_counts() {
                    *codes.entry(state.chars().take(2).collect()).or_default() += n;
                }
                for (code, n) in codes {
                    let mut row = strs(&g);
                    row.extend([Cell::Str(code), Cell::count(n)]);
                    t.rows.push(row);
                }
            }
        }
        ReportKind::Timers => {
            t = ReportTable::new(by, TIMER_COLUMNS);
            for (g, s) in merge_by(rows, sigfig, group)? {
                for id in TimerId::ALL {
                    let mut row = strs(&g);
                    row.push(Cell::from(id.name()));
                    match summarize(s.timers().get(id)) {
                        Some(x) => row.extend([
                            Cell::count(x.count),
                            Cell::fixed(x.mean, 3),
                            Cell::count(x.p50),
                            Cell::count(x.p90),
                            Cell::count(x.p95),
                            Cell::count(x.p99),
                            Cell::count(x.p999),
                            Cell::count(x.max),
                        ]),
                        None => {
                            row.push(Cell::Int(0));
                            row.extend(std::iter::repeat_n(Cell::Null, 7));
                        }
                    }
                    t.rows.push(row);
                }
            }
        }
        ReportKind::Servers | ReportKind::Backends => {
            let servers = kind == ReportKind::Servers;
            let mut cols: Vec<&str> = if servers {
                vec!["backend", "server"]
            } else {
                vec!["backend"]
            };
            cols.extend([
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
            ]);
            if !servers {
                cols.extend(["bytes_sum", "total_p50", "total_p95", "total_p99", "total_max"]);
            }
            if apdex_t.is_some() {
                cols.push("apdex");
            }
            t = ReportTable::new(&[], cols);
            let key = |k: &WindowKey| {
                if servers {
                    vec![k.backend.clone(), k.server.clone()]
                } else {
                    vec![k.backend.clone()]
                }
            };
            for (g, s) in merge_by(rows, sigfig, key)? {
                let mut row = strs(&g);
                row.extend(class_cells(&s));
                let ok = s.timers().get(TimerId::Data).count();
                row.extend([
                    Cell::count(s.requests()),
                    Cell::count(ok),
                    pct(ok, s.requests()),
                    mean(s.timers().get(TimerId::Connect)),
                    mean(s.timers().get(TimerId::Response)),
                ]);
                if !servers {
                    row.push(Cell::count(s.bytes_read()));
                    match summarize(s.timers().get(TimerId::Total)) {
                        Some(x) => row.extend([x.p50, x.p95, x.p99, x.max].map(Cell::count)),
                        None => row.extend(std::iter::repeat_n(Cell::Null, 4)),
                    }
                }
                if apdex_t.is_some() {
                    row.push(apdex_cell(&s));
                }
                t.rows.push(row);
            }
        }
        ReportKind::Summary => t = summary(rows, sigfig)?,
        ReportKind::Urls => {
            return Err(Error::Mismatch {
                left: "a windows report".into(),
                right: WindowReportError::Kind("urls").to_string(),
            })
        }
    }
    Ok(t)
}

/// `key,value` over every row, with Tsung's per-window statistics.
fn summary(rows: &[WindowRow], sigfig: u8) -> Result<ReportTable, Error> {
    let mut t = ReportTable::new(&[], ["key", "value"]);
    let all = merge_by(rows, sigfig, |_| Vec::new())?;
    let mut per_window: BTreeMap<(i64, u32), WindowStats> = BTreeMap::new();
    for r in rows {
        add_to(&mut per_window, (r.window_start, r.window_secs), r, sigfig)?;
    }
    let mut kv = |k: &str, v: Cell| t.rows.push(vec![k.into(), v]);
    let Some(s) = all.get(&Vec::new()) else {
        kv("http_requests", Cell::Int(0));
        return Ok(t);
    };
    let first = per_window.keys().next().map(|(s, _)| *s);
    let last = per_window
        .keys()
        .next_back()
        .map(|(s, secs)| s + i64::from(*secs) * 1_000_000);
    kv("http_requests", Cell::count(s.requests()));
    kv("windows", Cell::count(per_window.len() as u64));
    kv("first_ts", first.map(format_rfc3339).into());
    kv("last_ts", last.map(format_rfc3339).into());
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f) as f64 / 1e6,
        _ => 0.0,
    };
    kv("span_secs", Cell::fixed(span, 3));
    kv("http_bytes", Cell::count(s.bytes_read()));
    for (class, n) in StatusClass::ALL.iter().zip(s.status_classes()) {
        kv(&format!("status_{}", class.name()), Cell::count(n));
    }
    let ok = s.timers().get(TimerId::Data).count();
    kv("ok", Cell::count(ok));
    kv("ok_pct", pct(ok, s.requests()));
    // Rates per window: requests / window length.
    let rates: Vec<f64> = per_window
        .iter()
        .map(|((_, secs), w)| w.requests() as f64 / f64::from((*secs).max(1)))
        .collect();
    let highest = rates.iter().copied().fold(f64::NAN, f64::max);
    kv("highest_rate_per_sec", Cell::fixed(highest, 3));
    let mean_rate = if span > 0.0 {
        Cell::fixed(s.requests() as f64 / span, 3)
    } else {
        Cell::Null
    };
    kv("mean_rate_per_sec", mean_rate);
    for id in TimerId::ALL {
        let name = id.name();
        let series = s.timers().get(id);
        kv(&format!("{name}_count"), Cell::count(series.count()));
        kv(&format!("{name}_mean_ms"), mean(series));
        let means: Vec<f64> = per_window
            .values()
            .filter(|w| w.timers().get(id).count() > 0)
            .map(|w| {
                let x = w.timers().get(id);
                x.sum() as f64 / x.count() as f64
            })
            .collect();
        let hi = means.iter().copied().fold(f64::NAN, f64::max);
        let lo = means.iter().copied().fold(f64::NAN, f64::min);
        let cell = |v: f64| if v.is_nan() { Cell::Null } else { Cell::fixed(v, 3) };
        kv(&format!("{name}_highest_window_mean_ms"), cell(hi));
        kv(&format!("{name}_lowest_window_mean_ms"), cell(lo));
        match summarize(series) {
            Some(x) => {
                kv(&format!("{name}_p50_ms"), Cell::count(x.p50));
                kv(&format!("{name}_p99_ms"), Cell::count(x.p99));
                kv(&format!("{name}_max_ms"), Cell::count(x.max));
            }
            None => {
                for q in ["p50", "p99", "max"] {
                    kv(&format!("{name}_{q}_ms"), Cell::Null);
                }
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{http, Req};
    use crate::report::{ReportAccumulator, ReportSpec};
    use crate::window::{WindowAggregator, WindowConfig};
    use weir_model::Record;

    fn sample() -> Vec<Req> {
        (0..300)
            .map(|i: i64| Req {
                backend: ["be_a", "be_b"][(i % 2) as usize],
                server: ["s1", "s2", "s3"][(i % 3) as usize],
                status: Some([200, 200, 404, 503, 302][(i % 5) as usize]),
                timers: [
                    (i % 7) as i32,
                    if i % 11 == 0 { -1 } else { 0 },
                    (i % 3) as i32,
                    (i * 3 % 250) as i32,
                    (i * 7 % 900) as i32,
                ],
                term: ["----", "CD--", "sH--"][(i % 3) as usize],
                ts: i * 200_000,
                bytes: i as u64,
                ..Req::default()
            })
            .collect()
    }

    fn windows(reqs: &[Req]) -> Vec<WindowRow> {
        let mut agg = WindowAggregator::new(WindowConfig {
            sigfig: 3,
            ..WindowConfig::default()
        })
        .unwrap();
        for r in reqs {
            let line = http(r);
            if let Record::Http(h) = &line.record {
                agg.add(h);
            }
        }
        agg.flush()
    }

    fn lines(kind: ReportKind, by: &[Dim], reqs: &[Req]) -> ReportTable {
        let mut acc = ReportAccumulator::new(ReportSpec {
            by: by.to_vec(),
            ..ReportSpec::new(kind)
        })
        .unwrap();
        for r in reqs {
            acc.add(&http(r));
        }
        acc.rows()
    }

    /// Counting reports from windows equal the same reports from the lines.
    #[test]
    fn counts_agree_with_the_line_reports() {
        let reqs = sample();
        let rows = windows(&reqs);
        for (kind, by) in [
            (ReportKind::Status, vec![]),
            (ReportKind::Status, vec![Dim::Backend]),
            (ReportKind::Termination, vec![]),
            (ReportKind::Servers, vec![]),
        ] {
            let got = report(kind, &by, &rows, 3, None).unwrap();
            let want = lines(kind, &by, &reqs);
            assert_eq!(got.header, want.header, "{kind:?}");
            assert_eq!(got.rows, want.rows, "{kind:?} by {by:?}");
        }
    }

    #[test]
    fn timers_and_backends_are_within_precision_and_summary_has_window_stats() {
        let reqs = sample();
        let rows = windows(&reqs);
        let got = report(ReportKind::Timers, &[], &rows, 3, None).unwrap();
        let want = lines(ReportKind::Timers, &[], &reqs);
        assert_eq!(got.header, want.header);
        for (g, w) in got.rows.iter().zip(&want.rows) {
            assert_eq!(g[0], w[0]);
            assert_eq!(g[1], w[1], "counts are exact");
            assert_eq!(g[8], w[8], "max is exact");
        }
        let b = report(ReportKind::Backends, &[], &rows, 3, Some(100)).unwrap();
        assert_eq!(b.header.last().map(String::as_str), Some("apdex"));
        assert_eq!(b.rows.len(), 2);
        let s = report(ReportKind::Summary, &[], &rows, 3, None).unwrap();
        let get = |k: &str| {
            s.rows
                .iter()
                .find(|r| r[0] == Cell::from(k))
                .map(|r| r[1].clone())
        };
        assert_eq!(get("http_requests"), Some(Cell::Int(300)));
        assert_eq!(get("windows"), Some(Cell::Int(6)));
        assert_eq!(get("highest_rate_per_sec"), Some(Cell::fixed(5.0, 3)));
        assert!(get("total_highest_window_mean_ms").is_some());
    }

    #[test]
    fn urls_and_host_need_the_lines() {
        assert!(check(ReportKind::Urls, &[]).is_err());
        assert!(check(ReportKind::Status, &[Dim::Host]).is_err());
        assert!(check(ReportKind::Timers, &[Dim::Backend, Dim::StatusClass]).is_ok());
    }
}
