//! The real HAProxy logging to `weir serve` over UDP, end to end: requests with mixed outcomes
//! (200, 404, backend 302, redirect 302, deny 403, 503 `<NOSRV>`, 503 refused) are driven
//! through HAProxy while `weir tail --json` follows the server; the tail must show every request
//! while weir runs, and after SIGTERM the spool's `requests` table must hold exactly one row per
//! request, with its path, query and status. Skipped without `haproxy` unless `CI` is set.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serve_support::{int16s, strings, TailChild, WeirServe};
use support::{exchange, find_haproxy, skip_unless_ci, spawn_backend, start_live, LivePorts};
use weir_store::Table;

/// Requests per outcome.
const EACH: usize = 8;

/// One way a request ends: the path sent to `fe_http` and the status HAProxy logs.
const OUTCOMES: [(&str, i16); 7] = [
    ("/", 200),
    ("/missing", 404),
    ("/moved", 302),
    ("/old", 302),
    ("/forbidden", 403),
    ("/down", 503),
    ("/refused", 503),
];

#[test]
fn haproxy_to_weir_serve_tail_live_and_exact_rows_after_sigterm() {
    let Some(haproxy_bin) = find_haproxy() else {
        skip_unless_ci("haproxy");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "");

    // Follow everything before HAProxy starts, so the tail sees the whole run live.
    let mut tail = TailChild::spawn(dir.path(), "tail-all", &weir.url(), &["--json"]);
    weir.wait_tail_sessions(1, deadline);

    let backend = spawn_backend();
    let (proxy, LivePorts { http, .. }) =
        start_live(&haproxy_bin, dir.path(), weir.udp.port(), backend, "", deadline);
    // be_down/dead1 must be marked DOWN before /down gets 503 <NOSRV>; the event reaches weir
    // as an app line, and the tail shows it.
    let down = "Server be_down/dead1 is DOWN";
    assert!(
        tail.wait_until(deadline, |lines| lines.iter().any(|l| l.contains(down))),
        "the tail never showed '{down}'; tail:\n{}\nstderr: {}",
        tail.lines().join("\n"),
        tail.stderr_text()
    );

    // Drive the requests, each marked by a unique query `req=K`.
    let mut sent: BTreeMap<String, (&str, i16)> = BTreeMap::new();
    for round in 0..EACH {
        for (i, (path, status)) in OUTCOMES.iter().enumerate() {
            let marker = format!("req={}", round * OUTCOMES.len() + i);
            let request = format!(
                "GET {path}?{marker} HTTP/1.1\r\nHost: weir.test\r\nUser-Agent: weir-serve-e2e\r\n\
                 Connection: close\r\n\r\n"
            );
            let (_, response) = exchange(http, request.as_bytes()).expect("request through haproxy");
            let head = String::from_utf8_lossy(&response[..response.len().min(12)]).into_owned();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}")),
                "{path}?{marker}: expected {status}, got {head:?}"
            );
            sent.insert(marker, (path, *status));
        }
    }
    let n = sent.len();
    assert_eq!(n, EACH * OUTCOMES.len());

    // The tail shows every request while weir still runs.
    let request_lines = |lines: &[String]| -> BTreeMap<String, serde_json::Value> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["status"].is_number())
            .filter_map(|v| {
                let text = v["line"].as_str()?;
                let marker = sent.keys().find(|m| text.contains(&format!("?{m} ")))?;
                Some((marker.clone(), v))
            })
            .collect()
    };
    let seen_all = tail.wait_until(deadline, |lines| request_lines(lines).len() == n);
    assert!(
        seen_all,
        "the tail showed {} of {n} requests; tail:\n{}",
        request_lines(&tail.lines()).len(),
        tail.lines().join("\n")
    );
    assert!(
        weir.is_running(),
        "weir serve exited during the run: {}",
        weir.stderr_text()
    );
    for (marker, v) in request_lines(&tail.lines()) {
        let (path, status) = sent[&marker];
        assert_eq!(v["status"].as_i64(), Some(i64::from(status)), "{marker}: {v}");
        let text = v["line"].as_str().unwrap();
        assert!(
            text.contains(&format!(" {path}?{marker} HTTP/1.1")),
            "{marker}: {text}"
        );
        assert!(v["source"].as_str().unwrap().ends_with("haproxy"), "{v}");
        let backend = v["backend"].as_str().unwrap();
        let want_backend = match path {
            "/down" => "be_down",
            "/refused" => "be_refused",
            "/forbidden" | "/old" => "fe_http",
            _ => "be_app",
        };
        assert_eq!(backend, want_backend, "{marker}: {text}");
        assert!(v["total_ms"].as_i64().is_some_and(|t| t >= 0), "{v}");
    }
    assert!(
        tail.lines().iter().all(|l| !l.contains("\"L11\"")),
        "an idle tail must not overflow"
    );

    // SIGTERM: weir drains, publishes and exits 0; the open tail ends with it.
    drop(proxy);
    let stdout = weir.stop(deadline);
    assert!(stdout.contains("weir: stopped;"), "{stdout}");
    tail.assert_exits_ok(deadline);

    let paths = strings(&weir.spool, Table::Requests, "path");
    let queries = strings(&weir.spool, Table::Requests, "query");
    let statuses = int16s(&weir.spool, Table::Requests, "status");
    assert_eq!(
        paths.len(),
        n,
        "rows in requests: paths {paths:?} queries {queries:?}"
    );
    let mut stored: BTreeMap<String, (String, i16)> = BTreeMap::new();
    for ((path, query), status) in paths.into_iter().zip(queries).zip(statuses) {
        let query = query.expect("every request had a query");
        let marker = query.trim_start_matches('?').to_owned();
        let row = (path.expect("path"), status.expect("status"));
        assert!(
            stored.insert(marker.clone(), row).is_none(),
            "{marker} stored twice"
        );
    }
    let want: BTreeMap<String, (String, i16)> = sent
        .iter()
        .map(|(m, (p, s))| (m.clone(), (p.to_string(), *s)))
        .collect();
    assert_eq!(stored, want);
}
