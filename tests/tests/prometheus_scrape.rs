//! A real Prometheus (Debian's package) scrapes `weir serve` every second while `weir gen`
//! sends traffic, and PromQL gives back what was sent:
//! - `sum by (backend) (weir_http_requests_total)`: every HTTP line, exactly;
//! - `histogram_quantile(0.99, sum by (le, backend) (rate(weir_http_total_seconds_bucket[1m])))`:
//!   in the histogram bucket that holds the exact p99 of the lines sent (computed here from the
//!   generated file, not by weir);
//! - `sum by (backend) (rate(weir_http_requests_total[1m]))`: each backend's share of the rate
//!   is its share of the lines sent;
//! - and `promtool check metrics` accepts the exposition.
//!
//! Traffic comes in two phases: the first makes every series exist and be scraped, so that
//! `rate()` (which cannot see what a series counted before its first sample) sees all of the
//! second, whose numbers the quantiles are checked against. Skipped without prometheus unless
//! `CI` is set.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_support::{http_get, weir_bin, WeirServe};
use support::{find_program, free_port, skip_unless_ci};

/// `http.buckets_ms`, the bounds checked against.
const BUCKETS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Per backend: the HTTP lines and their total times (Ta, when logged), read from a file of
/// `weir gen` lines with a regular expression.
fn oracle(text: &str) -> BTreeMap<String, (u64, Vec<u64>)> {
    let re = regex::Regex::new(r"\] \S+ ([^/\s]+)/\S+ -?\d+/-?\d+/-?\d+/-?\d+/\+?(-?\d+) -?\d+ ").unwrap();
    let mut out: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(c) = re.captures(line) {
            let e = out.entry(c[1].to_owned()).or_default();
            e.0 += 1;
            if let Ok(t) = c[2].parse::<u64>() {
                e.1.push(t);
            }
        }
    }
    out
}

fn gen(args: &[&str]) -> String {
    let out = Command::new(weir_bin())
        .arg("gen")
        .args(args)
        .output()
        .expect("run weir gen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn send(args: &[&str]) {
    let out = Command::new(weir_bin())
        .arg("gen")
        .args(args)
        .output()
        .expect("run weir gen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A PromQL instant query: (labels, value) per series.
fn promql(port: u16, query: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let enc: String = percent_encode(query);
    let (status, body) = http_get(
        ([127, 0, 0, 1], port).into(),
        &format!("/api/v1/query?query={enc}"),
    );
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).expect("prometheus JSON");
    v["data"]["result"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let value = r["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn per_backend(port: u16, query: &str) -> BTreeMap<String, f64> {
    promql(port, query)
        .into_iter()
        .map(|(l, v)| (l.get("backend").cloned().unwrap_or_default(), v))
        .collect()
}

/// Waits until `done` holds, polling; panics with `what` at the deadline.
fn wait(deadline: Instant, what: &str, mut done: impl FnMut() -> Option<String>) {
    loop {
        let Some(last) = done() else { return };
        assert!(Instant::now() < deadline, "{what}: {last}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The bucket (lower, upper] of `BUCKETS_MS` that holds `ms`.
fn bucket(ms: u64) -> (f64, f64) {
    let mut lower = 0.0;
    for b in BUCKETS_MS {
        if ms <= b {
            return (lower, b as f64);
        }
        lower = b as f64;
    }
    (lower, f64::INFINITY)
}

fn p99(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((0.99 * v.len() as f64).ceil() as usize).max(1);
    v[rank - 1]
}

fn add(into: &mut BTreeMap<String, (u64, Vec<u64>)>, from: &BTreeMap<String, (u64, Vec<u64>)>) {
    for (b, (n, v)) in from {
        let e = into.entry(b.clone()).or_default();
        e.0 += n;
        e.1.extend(v);
    }
}

#[test]
fn prometheus_scrapes_weir_and_promql_answers_what_was_sent() {
    let (Some(prometheus), Some(promtool)) = (find_program("prometheus"), find_program("promtool")) else {
        skip_unless_ci("prometheus and promtool (apt-get install prometheus)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(150);
    let dir = tempfile::tempdir().unwrap();
    let weir = WeirServe::start(dir.path(), "[aggregate]\nwindow = \"1s\"\nlateness = \"1s\"\n");
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: weir\n    \
             static_configs:\n      - targets: ['{}']\n",
            weir.http
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let prom_log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    wait(deadline, "prometheus did not become ready", || {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http_get(([127, 0, 0, 1], port).into(), "/-/ready").0 == 200;
        (!up).then(prom_log)
    });

    let udp = format!("udp://{}", weir.udp);
    let expect_total = |sent: &BTreeMap<String, (u64, Vec<u64>)>| sent.values().map(|(n, _)| n).sum::<u64>();
    let scraped_total = |want: u64| {
        promql(port, "sum(weir_http_requests_total)")
            .first()
            .map(|(_, v)| *v as u64)
            .filter(|v| *v == want)
    };

    // Phase 1: every series comes to exist and is scraped.
    let phase1 = ["--count", "3000", "--seed", "4"];
    let mut sent = oracle(&gen(&phase1));
    send(&[&phase1[..], &["--live", "--rate", "3000", "--to", &udp]].concat());
    let want1 = expect_total(&sent);
    wait(deadline, "phase 1 never reached Prometheus", || {
        scraped_total(want1)
            .is_none()
            .then(|| format!("{:?}", promql(port, "sum(weir_http_requests_total)")))
    });

    // Phase 2: the traffic the quantiles are checked against.
    let phase2 = ["--count", "20000", "--seed", "5"];
    let second = oracle(&gen(&phase2));
    send(&[&phase2[..], &["--live", "--rate", "5000", "--to", &udp]].concat());
    add(&mut sent, &second);
    let want = expect_total(&sent);
    wait(deadline, "phase 2 never reached Prometheus", || {
        scraped_total(want)
            .is_none()
            .then(|| format!("{:?}", promql(port, "sum(weir_http_requests_total)")))
    });

    // Exact counts per backend.
    let counts = per_backend(port, "sum by (backend) (weir_http_requests_total)");
    let want_counts: BTreeMap<String, f64> = sent.iter().map(|(b, (n, _))| (b.clone(), *n as f64)).collect();
    assert_eq!(counts, want_counts);

    // p99 per backend from the rate of the buckets.
    let q = per_backend(
        port,
        "histogram_quantile(0.99, sum by (le, backend) (rate(weir_http_total_seconds_bucket[1m])))",
    );
    let mut checked = 0;
    for (backend, (_, values)) in &second {
        let all = &sent[backend].1;
        if values.len() < 500 || bucket(p99(values)) != bucket(p99(all)) {
            continue;
        }
        let (lower, upper) = bucket(p99(values));
        let got = q[backend] * 1000.0;
        assert!(
            got > lower - 1e-6 && got <= upper + 1e-6,
            "{backend}: PromQL p99 {got} ms, exact p99 {} ms is in ({lower}, {upper}]",
            p99(values)
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} backends had enough requests: {q:?}");

    // Each backend's share of the request rate is its share of the second phase.
    let rates = per_backend(port, "sum by (backend) (rate(weir_http_requests_total[1m]))");
    let total_rate: f64 = rates.values().sum();
    let total2: u64 = second.values().map(|(n, _)| n).sum();
    for (backend, (n, _)) in &second {
        if *n < 500 {
            continue;
        }
        let share = rates.get(backend).copied().unwrap_or(0.0) / total_rate;
        let want = *n as f64 / total2 as f64;
        assert!(
            (share - want).abs() <= want * 0.25,
            "{backend}: rate share {share}, sent {want}"
        );
    }

    // promtool accepts the exposition.
    let (_, text) = http_get(weir.http, "/metrics");
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &text).unwrap();
    check_metrics(&promtool, &path);
}

fn check_metrics(promtool: &Path, path: &Path) {
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
