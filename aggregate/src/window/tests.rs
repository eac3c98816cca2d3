//! Window closing, watermark and lateness on hand-built requests, and the property that rows
//! of any split of the input, arriving in any order, merge into the rows of the whole.

use proptest::prelude::*;
use weir_model::{Record, RouterLog, StatusClass};

use super::*;
use crate::report::tests::{http, Req};

const S: i64 = 1_000_000;

fn config() -> WindowConfig {
    WindowConfig {
        node: "n1".into(),
        ..WindowConfig::default()
    }
}

fn add(agg: &mut WindowAggregator, r: &Req) {
    let line = http(r);
    let Record::Http(h) = &line.record else {
        unreachable!()
    };
    agg.add(h);
}

fn at(ts: i64) -> Req {
    Req { ts, ..Req::default() }
}

#[test]
fn a_window_closes_when_the_watermark_passes_its_end() {
    let mut agg = WindowAggregator::new(config()).unwrap();
    add(&mut agg, &at(S));
    add(&mut agg, &at(9 * S));
    // 14 s − 5 s lateness = 9 s: the window [0, 10) stays open.
    add(&mut agg, &at(14 * S));
    assert!(agg.close_due().is_empty());
    // 15 s − 5 s = 10 s: it closes, with its two requests.
    add(&mut agg, &at(15 * S));
    let rows = agg.close_due();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].window_start, rows[0].window_secs), (0, 10));
    assert_eq!(rows[0].requests, 2);
    assert_eq!(rows[0].node, "n1");
    assert_eq!(rows[0].distributions[4].count, 2, "total time of both");
    // The rest comes out at the end of the input.
    let rest = agg.flush();
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].window_start, rest[0].requests), (10 * S, 2));
    assert_eq!(agg.counters().late, 0);
    assert_eq!(agg.open_series(), 0);
}

#[test]
fn a_late_request_becomes_another_partial_row_of_its_window() {
    let mut agg = WindowAggregator::new(config()).unwrap();
    add(&mut agg, &at(2 * S));
    add(&mut agg, &at(30 * S));
    let first = agg.close_due();
    assert_eq!(first.len(), 1);
    add(&mut agg, &at(3 * S));
    assert_eq!(agg.counters().late, 1);
    let correction = agg.close_due();
    assert_eq!(correction.len(), 1, "{correction:?}");
    assert_eq!((correction[0].window_start, correction[0].requests), (0, 1));
    let merged = merge_rows(&[first, correction].concat(), 2, "n1").unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].requests, 2);
    assert_eq!(merged[0].distributions[0].count, 2);
}

#[test]
fn advancing_by_a_clock_closes_windows_when_traffic_stops() {
    let mut agg = WindowAggregator::new(config()).unwrap();
    add(&mut agg, &at(2 * S));
    assert!(agg.close_due().is_empty());
    assert_eq!(agg.advance(16 * S).len(), 1);
    assert!(agg.advance(100 * S).is_empty());
}

#[test]
fn series_beyond_max_series_go_to_the_overflow_series() {
    let mut agg = WindowAggregator::new(WindowConfig {
        max_series: 2,
        ..config()
    })
    .unwrap();
    for server in ["s1", "s2", "s3", "s4", "s1"] {
        add(&mut agg, &Req { server, ..at(S) });
    }
    add(
        &mut agg,
        &Req {
            server: "s5",
            status: Some(503),
            ..at(S)
        },
    );
    assert_eq!(agg.counters().overflowed, 3);
    let rows = agg.flush();
    let names: Vec<(&str, StatusClass, u64)> = rows
        .iter()
        .map(|r| (r.key.server.as_str(), r.key.status_class, r.requests))
        .collect();
    assert_eq!(
        names,
        [
            (OVERFLOW, StatusClass::Success, 2),
            (OVERFLOW, StatusClass::ServerError, 1),
            ("s1", StatusClass::Success, 2),
            ("s2", StatusClass::Success, 1),
        ]
    );
}

#[test]
fn a_row_reads_back_into_the_same_stats() {
    let mut agg = WindowAggregator::new(config()).unwrap();
    for (i, t) in [0, 3, 17, 250, 999, 1_234, 65_000].into_iter().enumerate() {
        add(
            &mut agg,
            &Req {
                timers: [t, 0, 1, t / 2, t + 5],
                bytes: 100 * i as u64 + 7,
                status: Some(if i % 3 == 0 { 200 } else { 200 + i as u16 }),
                term: if i % 2 == 0 { "----" } else { "CD--" },
                ..at(S)
            },
        );
    }
    let rows = agg.flush();
    let row = &rows[0];
    let stats = WindowStats::from_row(row, 2).unwrap();
    assert_eq!(&stats.to_row(row.window_start, &config(), row.key.clone()), row);
    assert_eq!(row.status_counts.iter().map(|c| c.1).sum::<u64>(), 7);
    assert_eq!(row.distributions[6].max, 607);
}

/// One generated request: (seconds, server index, status, total ms).
fn requests() -> impl Strategy<Value = Vec<(i64, usize, u16, i32)>> {
    prop::collection::vec(
        (
            0i64..120,
            0usize..3,
            prop::sample::select(vec![200u16, 404, 503]),
            0i32..5_000,
        ),
        0..200,
    )
}

fn req(&(sec, server, status, total): &(i64, usize, u16, i32)) -> Req {
    Req {
        server: ["s1", "s2", "s3"][server],
        status: Some(status),
        timers: [total / 10, 0, total / 20, total / 2, total],
        bytes: total as u64 * 3,
        ..at(sec * S + total as i64)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Two aggregators fed two halves of the input, in any order, closing windows whenever
    /// told to, give rows that merge into the rows of one aggregator fed everything.
    #[test]
    fn merged_partial_rows_equal_the_rows_of_the_union(
        input in requests(),
        split in prop::collection::vec(any::<bool>(), 200),
        advances in prop::collection::vec(0usize..4, 200),
        lateness_s in 0i64..20,
    ) {
        let cfg = WindowConfig { lateness: lateness_s * S, ..config() };
        let mut whole = WindowAggregator::new(cfg.clone()).unwrap();
        for r in &input {
            add(&mut whole, &req(r));
        }
        let want = merge_rows(&whole.flush(), cfg.sigfig, "n1").unwrap();

        let mut parts = [WindowAggregator::new(cfg.clone()).unwrap(), WindowAggregator::new(cfg.clone()).unwrap()];
        let mut rows = Vec::new();
        for (i, r) in input.iter().enumerate() {
            let part = &mut parts[usize::from(split[i])];
            add(part, &req(r));
            if advances[i] == 0 {
                rows.extend(part.close_due());
            }
        }
        let flushed: Vec<Vec<WindowRow>> = parts.iter_mut().map(WindowAggregator::flush).collect();
        rows.extend(flushed.iter().flatten().cloned());
        // The last closing of each part, in order, merges as sorted lists into what merging
        // them in any order gives.
        prop_assert_eq!(
            merge_ordered(flushed.clone(), cfg.sigfig),
            merge_rows(&flushed.concat(), cfg.sigfig, "n1").unwrap()
        );
        let got = merge_rows(&rows, cfg.sigfig, "n1").unwrap();
        prop_assert_eq!(got, want);
        let late: u64 = parts.iter().map(|p| p.counters().late).sum();
        prop_assert!(late as usize <= input.len());
    }
}

#[test]
fn router_lines_are_requests_of_their_app_and_dyno() {
    let mut agg = WindowAggregator::new(config()).unwrap();
    let ok = RouterLog {
        at: "info",
        host: Some("shop.herokuapp.com"),
        dyno: Some("web.1"),
        connect_ms: Some(1),
        service_ms: Some(18),
        status: Some(200),
        bytes: Some(13),
        ..RouterLog::default()
    };
    let timeout = RouterLog {
        at: "error",
        code: Some("H12"),
        service_ms: Some(30_000),
        status: Some(503),
        ..ok
    };
    let crashed = RouterLog {
        at: "error",
        code: Some("H10"),
        host: Some("shop.herokuapp.com"),
        status: Some(503),
        ..RouterLog::default()
    };
    for r in [ok, ok, timeout, crashed] {
        agg.add_router(S, &r);
    }
    let rows = agg.flush();
    let keys: Vec<(&str, &str, &str, StatusClass, u64)> = rows
        .iter()
        .map(|r| {
            let k = &r.key;
            (
                k.frontend.as_str(),
                k.backend.as_str(),
                k.server.as_str(),
                k.status_class,
                r.requests,
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                ROUTER_FRONTEND,
                "shop.herokuapp.com",
                "<NOSRV>",
                StatusClass::ServerError,
                1
            ),
            (
                ROUTER_FRONTEND,
                "shop.herokuapp.com",
                "web.1",
                StatusClass::Success,
                2
            ),
            (
                ROUTER_FRONTEND,
                "shop.herokuapp.com",
                "web.1",
                StatusClass::ServerError,
                1
            ),
        ]
    );
    let ok_row = &rows[1];
    assert_eq!(ok_row.distributions[2].max, 1, "connect as Tc");
    assert_eq!(ok_row.distributions[3].max, 18, "service as Tr");
    assert_eq!(ok_row.distributions[4].max, 19, "their sum as Ta");
    assert_eq!(rows[2].termination_counts, [("H12".to_owned(), 1)]);
    assert_eq!(rows[0].distributions[4].count, 0, "no times, no total");
}
