//! l2met metrics end to end: util-linux `logger` sends RFC 5424 lines with structured data and
//! RFC 3164 lines carrying `measure#`/`count#`/`sample#`, the test's own socket sends 200
//! measures of known values in one past 10 s window (Heroku-named `shop[web.N]`, some at
//! warning severity) and a pair that is no metric. Then: `/metrics` shows the measure's
//! summary with p50/p99 within the histograms' precision of the values sent, the counts' totals
//! and the samples' newest values, and the invalid pair counted; `weir tail --app shop --ps web
//! --level warn` shows exactly the warning lines; pyarrow reads a `metrics` row per metric with
//! the values, units and sources sent; `weir query --metric` gives the same quantiles.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{run_logger, TailChild, WeirServe};
use support::{find_program, skip_unless_ci};
use weir_e2e::{run_weir, OutputWithin, PROCESS_TIMEOUT};

/// The measures the test's own program sends: 1..=200 ms.
const SENT: u32 = 200;

/// The value of the series `name{labels}` in Prometheus text, e.g.
/// `weir_l2met_measure_checkout_latency_seconds` with `quantile="0.99"`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        (n == name && labels.iter().all(|want| rest.contains(want))).then(|| value.parse().ok())?
    })
}

/// The nearest-rank quantile of 1..=n.
fn exact(q: f64, n: u32) -> f64 {
    (q * f64::from(n)).ceil().max(1.0)
}

/// Within the 2 significant figures of the live windows: one bucket, 1 %.
fn near(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 0.01
}

#[test]
fn l2met_measures_counts_and_samples_reach_metrics_the_metrics_table_and_query() {
    let Some(logger) = find_program("logger") else {
        skip_unless_ci("logger (util-linux)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "");
    let port = weir.udp.port().to_string();
    let tail = TailChild::spawn(
        dir.path(),
        "warn",
        &weir.url(),
        &["--app", "shop", "--ps", "web", "--level", "warn"],
    );
    weir.wait_tail_sessions(1, deadline);

    let sends: [&[&str]; 2] = [
        &[
            "--rfc5424",
            "-t",
            "billing",
            "-p",
            "local0.info",
            "--sd-id",
            "meta@32473",
            "--sd-param",
            "region=\"eu\"",
            "at=info source=primary measure#db.query=12.5ms count#invoices=3 sample#pool.free=7",
        ],
        &[
            "--rfc3164",
            "-t",
            "billing",
            "-p",
            "local0.info",
            "at=info source=primary count#invoices=2 sample#pool.free=4 measure#upload=1.5MB",
        ],
    ];
    for args in sends {
        run_logger(
            &logger,
            &[&["-d", "-n", "127.0.0.1", "-P", &port][..], args].concat(),
        );
    }
    // One 10 s window a minute ago, closed as soon as /metrics is read.
    let now = weir_model::time::now_micros();
    let window = now - now.rem_euclid(10_000_000) - 60_000_000;
    let own = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut warnings = 0;
    for v in 1..=SENT {
        let t = weir_model::time::format_rfc3339(window + i64::from(v) * 1000);
        // PRI 132 is local0.warning, 134 local0.info.
        let pri = if v % 50 == 0 { 132 } else { 134 };
        warnings += usize::from(pri == 132);
        let line = format!(
            "<{pri}>1 {t} app1 shop web.{} - - at=info measure#checkout.latency={v}ms count#checkout.items=2 sample#queue.depth={v}",
            v % 3 + 1
        );
        own.send_to(line.as_bytes(), weir.udp).expect("send");
    }
    own.send_to(
        b"<134>1 2026-11-30T12:00:00Z app1 shop web.1 - - measure#checkout.latency=fast",
        weir.udp,
    )
    .expect("send");

    let family = "weir_l2met_measure_checkout_latency_seconds";
    weir.wait_metrics(deadline, "every measure", |m| {
        m.sum(&format!("{family}_count")) >= u64::from(SENT) && m.get("weir_l2met_invalid_total") >= 1
    });
    let (_, text) = weir.get("/metrics");
    let shop = "app=\"shop\"";
    assert_eq!(
        sample(&text, &format!("{family}_count"), &[shop]),
        Some(f64::from(SENT))
    );
    let sum = sample(&text, &format!("{family}_sum"), &[shop]).expect("sum");
    let want_sum = f64::from(SENT * (SENT + 1) / 2) / 1000.0;
    assert!((sum - want_sum).abs() < 1e-6, "{sum} vs {want_sum}");
    for q in ["0.5", "0.99"] {
        let got = sample(&text, family, &[shop, &format!("quantile=\"{q}\"")])
            .unwrap_or_else(|| panic!("no quantile {q} in\n{text}"));
        let want = exact(q.parse().unwrap(), SENT) / 1000.0;
        assert!(near(got, want), "p{q}: {got} vs {want}");
    }
    assert_eq!(
        sample(&text, "weir_l2met_count_checkout_items_total", &[shop]),
        Some(2.0 * f64::from(SENT))
    );
    assert_eq!(
        sample(&text, "weir_l2met_sample_queue_depth", &[shop]),
        Some(f64::from(SENT)),
        "the newest line's sample"
    );
    let primary = ["app=\"billing\"", "source=\"primary\""];
    assert_eq!(
        sample(&text, "weir_l2met_count_invoices_total", &primary),
        Some(5.0)
    );
    assert_eq!(
        sample(&text, "weir_l2met_measure_db_query_seconds_sum", &primary),
        Some(0.0125)
    );
    assert_eq!(
        sample(&text, "weir_l2met_measure_upload_bytes_sum", &primary),
        Some(1.5e6)
    );
    assert_eq!(sample(&text, "weir_l2met_invalid_total", &[]), Some(1.0));

    assert!(
        tail.wait_until(deadline, |l| l.len() >= warnings),
        "{:?}",
        tail.lines()
    );
    weir.stop(deadline);
    let seen = tail.lines();
    assert_eq!(
        seen.len(),
        warnings,
        "only the warnings of shop's web dynos: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| l.contains("measure#checkout.latency=")),
        "{seen:?}"
    );

    pyarrow_metrics(&weir.spool);
    let out = run_weir(&[
        "query",
        "--spool",
        weir.spool.to_str().unwrap(),
        "--metric",
        "checkout.latency",
        "--by",
        "app",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["app"], "shop");
    assert_eq!(
        (row["kind"].as_str(), row["unit"].as_str()),
        (Some("measure"), Some("ms"))
    );
    assert_eq!(row["count"], SENT);
    for (col, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        let got = row[col].as_f64().unwrap();
        let want = exact(q, SENT);
        // 3 significant figures from the raw rows.
        assert!((got - want).abs() <= want * 0.001, "{col}: {got} vs {want}");
    }
    assert_eq!(row["max"], 200.0);
}

/// pyarrow reads the `metrics` table: a row per metric sent, values, units and sources as
/// written; and the `app` table: a row per line.
fn pyarrow_metrics(spool: &std::path::Path) {
    if !serve_support::pyarrow_here() {
        return;
    }
    let script = r#"
import sys, json, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1] + '/metrics', format='parquet', partitioning='hive').to_table()
out = {}
for r in t.select(['kind', 'name', 'value', 'unit', 'source', 'app']).to_pylist():
    k = f"{r['app']}/{r['kind']}#{r['name']}"
    e = out.setdefault(k, {'n': 0, 'sum': 0.0, 'units': [], 'sources': []})
    e['n'] += 1
    e['sum'] += r['value']
    if r['unit'] not in e['units']: e['units'].append(r['unit'])
    if r['source'] not in e['sources']: e['sources'].append(r['source'])
app = ds.dataset(sys.argv[1] + '/app', format='parquet', partitioning='hive').to_table(columns=['app', 'message'])
print(json.dumps({'types': {f.name: str(f.type) for f in t.schema}, 'metrics': out,
                  'app_rows': app.num_rows,
                  'app_with_metrics': sum(1 for m in app.column('message').to_pylist() if '#' in m)}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(spool)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let types = &v["types"];
    assert_eq!(types["value"], "double");
    assert_eq!(types["ts"], "timestamp[us, tz=UTC]");
    assert_eq!(types["kind"], "string");
    let m = &v["metrics"];
    let n = |k: &str| m[k]["n"].as_u64().unwrap_or(0);
    assert_eq!(n("shop/measure#checkout.latency"), u64::from(SENT));
    assert_eq!(
        m["shop/measure#checkout.latency"]["units"],
        serde_json::json!(["ms"])
    );
    assert_eq!(
        m["shop/measure#checkout.latency"]["sum"].as_f64(),
        Some(f64::from(SENT * (SENT + 1) / 2))
    );
    assert_eq!(n("shop/count#checkout.items"), u64::from(SENT));
    assert_eq!(n("shop/sample#queue.depth"), u64::from(SENT));
    assert_eq!(n("billing/count#invoices"), 2);
    assert_eq!(m["billing/count#invoices"]["sum"].as_f64(), Some(5.0));
    assert_eq!(
        m["billing/count#invoices"]["sources"],
        serde_json::json!(["primary"])
    );
    assert_eq!(m["billing/measure#upload"]["units"], serde_json::json!(["MB"]));
    assert_eq!(
        m.as_object().unwrap().len(),
        7,
        "no row for the invalid pair: {m}"
    );
}
