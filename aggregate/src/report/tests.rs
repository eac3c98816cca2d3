//! Tests of the report kinds on hand-built lines, and the property that merging partial
//! accumulators equals accumulating the concatenated input.

use proptest::prelude::*;
use weir_model::{
    AppKind, AppLog, ClientAddr, Fields, HttpLog, Line, Record, Reject, RejectReason, RequestLine,
    SyslogHeader, TcpLog, Timings,
};

use super::*;

/// The varying parts of an HTTP line.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub backend: &'static str,
    pub server: &'static str,
    pub host: Option<&'static str>,
    pub status: Option<u16>,
    pub timers: [i32; 5],
    pub bytes: u64,
    pub term: &'static str,
    pub path: Option<&'static str>,
    pub ts: i64,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            backend: "be",
            server: "s1",
            host: None,
            status: Some(200),
            timers: [1, 0, 2, 10, 20],
            bytes: 100,
            term: "----",
            path: Some("/"),
            ts: 1_000_000,
        }
    }
}

/// The window rows (10 s windows, default config) of `reqs`, every window flushed.
pub(crate) fn window_rows(reqs: &[Req]) -> Vec<weir_model::WindowRow> {
    let mut agg = crate::window::WindowAggregator::new(crate::window::WindowConfig::default()).unwrap();
    for r in reqs {
        let line = http(r);
        let Record::Http(h) = &line.record else {
            unreachable!()
        };
        agg.add(h);
    }
    agg.flush()
}

pub(crate) fn http(r: &Req) -> Line<'static> {
    let o = |x: i32| (x >= 0).then_some(x);
    let t = r.timers;
    Line {
        header: SyslogHeader {
            host: r.host,
            ..SyslogHeader::default()
        },
        record: Record::Http(HttpLog {
            client: ClientAddr {
                ip: "10.0.0.1",
                port: Some(1234),
            },
            accept_ts: r.ts,
            frontend: "fe",
            ssl: false,
            backend: r.backend,
            server: r.server,
            timings: Timings {
                request: o(t[0]),
                queue: o(t[1]),
                connect: o(t[2]),
                response: o(t[3]),
                total: o(t[4]),
                total_logasap: false,
            },
            status: r.status,
            bytes_read: r.bytes,
            bytes_logasap: false,
            req_cookie: None,
            resp_cookie: None,
            termination_state: r.term,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            req_headers: None,
            resp_headers: None,
            request: RequestLine {
                raw: "GET / HTTP/1.1",
                method: r.path.map(|_| "GET"),
                path: r.path,
                query: None,
                http_version: Some("HTTP/1.1"),
                bad: r.path.is_none(),
            },
            tls: None,
            truncated: false,
            clf: false,
            fields: Fields::EMPTY,
        }),
        raw: b"",
    }
}

fn tcp() -> Line<'static> {
    Line {
        header: SyslogHeader::default(),
        record: Record::Tcp(TcpLog {
            client: ClientAddr {
                ip: "10.0.0.2",
                port: Some(1),
            },
            accept_ts: 5_000_000,
            frontend: "fe_tcp",
            ssl: false,
            backend: "be_tcp",
            server: "t1",
            queue_ms: Some(0),
            connect_ms: Some(1),
            total_ms: Some(50),
            total_logasap: false,
            bytes_read: 5000,
            bytes_logasap: false,
            termination_state: "--",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            fields: Fields::EMPTY,
        }),
        raw: b"",
    }
}

fn event() -> Line<'static> {
    Line {
        header: SyslogHeader::default(),
        record: Record::App(AppLog {
            kind: AppKind::HaproxyEvent,
            ts: None,
            message: "Proxy fe started.",
            client: None,
            subject: None,
            router: None,
        }),
        raw: b"",
    }
}

fn reject() -> Line<'static> {
    Line {
        header: SyslogHeader::default(),
        record: Record::Reject(Reject {
            reason: RejectReason::BadTimers,
            message: b"x",
        }),
        raw: b"x",
    }
}

fn report(kind: ReportKind, by: &[Dim], lines: &[Line<'_>]) -> ReportTable {
    let mut acc = ReportAccumulator::new(ReportSpec {
        by: by.to_vec(),
        ..ReportSpec::new(kind)
    })
    .unwrap();
    for l in lines {
        acc.add(l);
    }
    acc.rows()
}

fn rows(t: &ReportTable) -> Vec<String> {
    t.rows
        .iter()
        .map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
        .collect()
}

fn sample() -> Vec<Line<'static>> {
    vec![
        http(&Req::default()),
        http(&Req {
            status: Some(503),
            term: "sH--",
            timers: [1, 0, 2, -1, 3000],
            ..Req::default()
        }),
        http(&Req {
            status: None,
            term: "CR--",
            timers: [-1, -1, -1, -1, 5],
            server: "<NOSRV>",
            ..Req::default()
        }),
        http(&Req {
            server: "s2",
            status: Some(404),
            path: Some("/a;jsessionid=1"),
            ..Req::default()
        }),
        http(&Req {
            backend: "api",
            server: "a1",
            timers: [0, 0, 5, 30, 40],
            path: Some("/a"),
            ..Req::default()
        }),
        tcp(),
        event(),
        reject(),
    ]
}

#[test]
fn status_counts_http_only_with_minus_one_first() {
    let t = report(ReportKind::Status, &[], &sample());
    assert_eq!(t.header, ["status", "count"]);
    assert_eq!(rows(&t), ["-1,1", "200,2", "404,1", "503,1"]);
}

#[test]
fn status_by_backend_prefixes_the_key() {
    let t = report(ReportKind::Status, &[Dim::Backend], &sample());
    assert_eq!(t.header, ["backend", "status", "count"]);
    assert_eq!(
        rows(&t),
        ["api,200,1", "be,-1,1", "be,200,1", "be,404,1", "be,503,1"]
    );
}

#[test]
fn termination_uses_first_two_chars() {
    let t = report(ReportKind::Termination, &[], &sample());
    assert_eq!(t.header, ["code", "count"]);
    assert_eq!(rows(&t), ["--,3", "CR,1", "sH,1"]);
}

#[test]
fn servers_follow_halog_srv() {
    let t = report(ReportKind::Servers, &[], &sample());
    assert_eq!(
        t.header.join(","),
        "backend,server,1xx,2xx,3xx,4xx,5xx,other,requests,ok,ok_pct,avg_connect_ms,avg_response_ms"
    );
    assert_eq!(
        rows(&t),
        [
            "api,a1,0,1,0,0,0,0,1,1,100.00,5.000,30.000",
            "be,<NOSRV>,0,0,0,0,0,1,1,0,0.00,,",
            // avg_response over the one request whose Tr is known, not over both.
            "be,s1,0,1,0,0,1,0,2,1,50.00,2.000,10.000",
            "be,s2,0,0,0,1,0,0,1,1,100.00,2.000,10.000",
        ]
    );
}

/// Names stay strings and numbers numbers, whatever the text looks like: JSON output keeps
/// the types the report gives it.
#[test]
fn cells_keep_their_types() {
    let lines = [http(&Req {
        backend: "1e3",
        server: "007",
        ..Req::default()
    })];
    let t = report(ReportKind::Servers, &[], &lines);
    let row = &t.rows[0];
    assert_eq!(row[..2], [Cell::from("1e3"), Cell::from("007")]);
    assert_eq!(row[3], Cell::Int(1));
    assert_eq!(row[10], Cell::fixed(100.0, 2));
    let t = report(ReportKind::Status, &[Dim::Backend], &lines);
    assert_eq!(t.rows[0], [Cell::from("1e3"), Cell::Int(200), Cell::Int(1)]);
    let t = report(ReportKind::Timers, &[], &[]);
    assert_eq!(t.rows[0][..3], [Cell::from("request"), Cell::Int(0), Cell::Null]);
}

#[test]
fn backends_add_bytes_and_total_quantiles() {
    let t = report(ReportKind::Backends, &[], &sample());
    assert_eq!(t.header.len(), 17);
    assert_eq!(
        rows(&t)[0],
        "api,0,1,0,0,0,0,1,1,100.00,5.000,30.000,100,40,40,40,40"
    );
    assert_eq!(
        rows(&t)[1],
        "be,0,1,0,1,1,1,4,2,50.00,2.000,10.000,400,20,3000,3000,3000"
    );
}

#[test]
fn urls_cut_at_semicolon_and_sort_busiest_first() {
    let t = report(ReportKind::Urls, &[], &sample());
    assert_eq!(
        t.header.join(","),
        "path,requests,errors,total_ms_sum,total_ms_avg,ok_total_ms_sum,ok_total_ms_avg,bytes_avg,bytes_sum"
    );
    assert_eq!(
        rows(&t),
        [
            "/,3,2,3025,1008.333,20,20.000,100.000,300",
            "/a,2,0,60,30.000,60,30.000,100.000,200"
        ]
    );
}

#[test]
fn timers_have_six_rows_and_data_only_for_complete_requests() {
    let t = report(ReportKind::Timers, &[], &sample());
    assert_eq!(t.header.join(","), "timer,count,mean,p50,p90,p95,p99,p999,max");
    assert_eq!(
        rows(&t),
        [
            "request,4,0.750,1,1,1,1,1,1",
            "queue,4,0.000,0,0,0,0,0,0",
            "connect,4,2.750,2,5,5,5,5,5",
            "response,3,16.667,10,30,30,30,30,30",
            "total,5,617.000,20,3000,3000,3000,3000,3000",
            "data,3,6.333,7,7,7,7,7,7",
        ]
    );
}

#[test]
fn empty_timer_series_has_count_zero_and_empty_cells() {
    let t = report(ReportKind::Timers, &[], &[]);
    assert_eq!(t.rows.len(), 6);
    assert_eq!(rows(&t)[0], "request,0,,,,,,,");
}

#[test]
fn timers_by_status_class() {
    let t = report(ReportKind::Timers, &[Dim::StatusClass], &sample());
    assert_eq!(t.header[0], "status_class");
    assert_eq!(t.rows.len(), 6 * 4);
    assert_eq!(rows(&t)[4], "2xx,total,2,30.000,20,40,40,40,40,40");
}

#[test]
fn summary_counts_every_kind_of_line() {
    let t = report(ReportKind::Summary, &[], &sample());
    let get = |k: &str| {
        t.rows
            .iter()
            .find(|r| r[0] == Cell::from(k))
            .map(|r| r[1].to_string())
            .unwrap()
    };
    assert_eq!(get("lines"), "8");
    assert_eq!(get("http_requests"), "5");
    assert_eq!(get("tcp_sessions"), "1");
    assert_eq!(get("haproxy_events"), "1");
    assert_eq!(get("rejects"), "1");
    assert_eq!(get("rejects_bad_timers"), "1");
    assert_eq!(get("status_5xx"), "1");
    assert_eq!(get("status_other"), "1");
    assert_eq!(get("ok"), "3");
    assert_eq!(get("tcp_bytes"), "5000");
    assert_eq!(get("first_ts"), "1970-01-01T00:00:01.000000Z");
    assert_eq!(get("span_secs"), "4.000");
    assert_eq!(get("total_max_ms"), "3000");
}

#[test]
fn time_range_is_half_open_and_drops_timeless_lines_when_bounded() {
    let lines = [
        http(&Req {
            ts: 10,
            ..Req::default()
        }),
        http(&Req {
            ts: 20,
            ..Req::default()
        }),
        http(&Req {
            ts: 30,
            ..Req::default()
        }),
        reject(),
    ];
    let range = TimeRange {
        since: Some(20),
        until: Some(30),
    };
    let mut acc = ReportAccumulator::new(ReportSpec {
        range,
        ..ReportSpec::new(ReportKind::Summary)
    })
    .unwrap();
    lines.iter().for_each(|l| acc.add(l));
    assert_eq!(acc.rows().rows[0], [Cell::from("lines"), Cell::Int(1)]);
    assert!(TimeRange::ALL.contains(&lines[3]));
}

#[test]
fn apdex_column_counts_satisfied_and_half_the_tolerating() {
    let lines: Vec<Line<'static>> = [10, 20, 100, 350, 2_000]
        .into_iter()
        .map(|ta| {
            http(&Req {
                timers: [0, 0, 0, 0, ta],
                ..Req::default()
            })
        })
        .collect();
    for kind in [ReportKind::Servers, ReportKind::Backends] {
        let mut acc = ReportAccumulator::new(ReportSpec {
            apdex_t: Some(100),
            ..ReportSpec::new(kind)
        })
        .unwrap();
        lines.iter().for_each(|l| acc.add(l));
        let t = acc.rows();
        assert_eq!(t.header.last().map(String::as_str), Some("apdex"));
        // 10, 20, 100 satisfied; 350 tolerating; 2000 frustrated: (3 + 0.5) / 5.
        assert_eq!(t.rows[0].last(), Some(&Cell::fixed(0.7, 3)), "{kind:?}");
    }
}

#[test]
fn by_is_refused_where_it_makes_no_sense() {
    let spec = ReportSpec {
        by: vec![Dim::Backend],
        ..ReportSpec::new(ReportKind::Servers)
    };
    assert!(matches!(
        ReportAccumulator::new(spec),
        Err(Error::Mismatch { .. })
    ));
}

#[test]
fn merging_different_specs_is_an_error() {
    let mut a = ReportAccumulator::new(ReportSpec::new(ReportKind::Status)).unwrap();
    let b = ReportAccumulator::new(ReportSpec::new(ReportKind::Timers)).unwrap();
    assert!(matches!(a.merge(b), Err(Error::Mismatch { .. })));
}

#[test]
fn dim_names_round_trip() {
    for d in Dim::ALL {
        assert_eq!(Dim::from_name(d.name()), Some(d));
    }
    assert_eq!(Dim::from_name("nope"), None);
}

fn arb_req() -> impl Strategy<Value = Req> {
    let timer = prop_oneof![1 => Just(-1), 8 => 0..5000i32, 1 => 5000..4_000_000i32];
    (
        prop::sample::select(vec!["be", "api", "static"]),
        prop::sample::select(vec!["s1", "s2", "<NOSRV>"]),
        prop::option::of(prop::sample::select(vec![200u16, 204, 302, 404, 500, 503, 1001])),
        [timer.clone(), timer.clone(), timer.clone(), timer.clone(), timer],
        0..1_000_000u64,
        prop::sample::select(vec!["----", "sH--", "CD--", "SC--"]),
        prop::option::of(prop::sample::select(vec!["/", "/a", "/b?x=1"])),
        0..100i64,
        prop::option::of(prop::sample::select(vec!["lb1", "lb2"])),
    )
        .prop_map(
            |(backend, server, status, timers, bytes, term, path, ts, host)| Req {
                backend,
                server,
                host,
                status,
                timers,
                bytes,
                term,
                path,
                ts,
            },
        )
}

fn arb_line() -> impl Strategy<Value = Line<'static>> {
    prop_oneof![
        12 => arb_req().prop_map(|r| http(&r)),
        1 => Just(tcp()),
        1 => Just(event()),
        1 => Just(reject()),
    ]
}

fn specs() -> Vec<ReportSpec> {
    let mut specs: Vec<ReportSpec> = ReportKind::ALL.into_iter().map(ReportSpec::new).collect();
    for kind in [ReportKind::Servers, ReportKind::Backends] {
        specs.push(ReportSpec {
            apdex_t: Some(15),
            ..ReportSpec::new(kind)
        });
    }
    for kind in [ReportKind::Status, ReportKind::Termination, ReportKind::Timers] {
        specs.push(ReportSpec {
            by: vec![Dim::Backend, Dim::Host],
            ..ReportSpec::new(kind)
        });
        specs.push(ReportSpec {
            by: vec![Dim::StatusClass, Dim::Path],
            ..ReportSpec::new(kind)
        });
    }
    specs.push(ReportSpec {
        range: TimeRange {
            since: Some(20),
            until: Some(70),
        },
        ..ReportSpec::new(ReportKind::Timers)
    });
    specs
}

proptest! {
    #[test]
    fn merge_equals_accumulating_the_concatenation(
        a in prop::collection::vec(arb_line(), 0..60),
        b in prop::collection::vec(arb_line(), 0..60),
    ) {
        for spec in specs() {
            let mut left = ReportAccumulator::new(spec.clone()).unwrap();
            let mut right = ReportAccumulator::new(spec.clone()).unwrap();
            let mut whole = ReportAccumulator::new(spec.clone()).unwrap();
            a.iter().for_each(|l| left.add(l));
            b.iter().for_each(|l| right.add(l));
            a.iter().chain(&b).for_each(|l| whole.add(l));
            left.merge(right).unwrap();
            prop_assert_eq!(left.rows(), whole.rows(), "{:?}", spec);
        }
    }

    #[test]
    fn timer_histograms_merge_equals_concatenation(
        a in prop::collection::vec([-1..100_000i32, -1..100_000, -1..100_000, -1..100_000, -1..400_000], 0..80),
        b in prop::collection::vec([-1..100_000i32, -1..100_000, -1..100_000, -1..100_000, -1..400_000], 0..80),
    ) {
        let t = |v: &[i32; 5]| {
            let o = |x: i32| (x >= 0).then_some(x);
            Timings { request: o(v[0]), queue: o(v[1]), connect: o(v[2]), response: o(v[3]), total: o(v[4]), total_logasap: false }
        };
        let mut left = crate::TimerHistograms::new(3).unwrap();
        let mut right = crate::TimerHistograms::new(3).unwrap();
        let mut whole = crate::TimerHistograms::new(3).unwrap();
        a.iter().for_each(|v| left.record(&t(v)));
        b.iter().for_each(|v| right.record(&t(v)));
        a.iter().chain(&b).for_each(|v| whole.record(&t(v)));
        left.merge(&right).unwrap();
        prop_assert_eq!(&left, &whole);
        for id in crate::TimerId::ALL {
            prop_assert_eq!(left.summary(id), whole.summary(id));
        }
    }
}
