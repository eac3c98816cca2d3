//! The spool's size budget: Parquet bytes per request at most 0.6x what `zstd -3` makes of the
//! same log text. Measured on synthetic HAProxy HTTP logs shaped like a busy site's (a few
//! thousand clients, Zipf-like paths with ids, log-normal timers and sizes, captured headers),
//! parsed by weir-ingest exactly as `weir import` does.

use std::time::Instant;

use weir_ingest::{parse_line, ParseOptions};
use weir_store::{RecordMeta, SpoolOptions, SpoolWriter, Table};

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed towards 0: the minimum of two uniform draws, squared.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n).min(self.below(n));
        a * a / n.max(1)
    }
    /// Roughly log-normal around `median`.
    fn lognormal(&mut self, median: f64, sigma: f64) -> u64 {
        let u: f64 = (0..6).map(|_| self.below(1_000_000) as f64 / 1e6).sum::<f64>() - 3.0;
        (median * (u * sigma * std::f64::consts::SQRT_2).exp()) as u64
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `n` HAProxy `option httplog` lines over RFC 3164 syslog, newline-separated.
fn synthesize(n: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let clients: Vec<String> = (0..4000)
        .map(|_| {
            format!(
                "{}.{}.{}.{}",
                24 + rng.below(200),
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            )
        })
        .collect();
    let uas = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleW",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) ",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac",
        "curl/8.4.0",
        "okhttp/4.12.0",
        "Go-http-client/2.0",
    ];
    let hosts = ["www.example.com", "api.example.com", "static.example.com"];
    let routes = [
        ("be_web", "/", false),
        ("be_web", "/products/", true),
        ("be_api", "/api/v1/users/", true),
        ("be_api", "/api/v1/orders/", true),
        ("be_api", "/api/v1/search", false),
        ("be_static", "/static/js/app.", true),
        ("be_static", "/static/img/p", true),
        ("be_web", "/login", false),
    ];
    let mut out = String::with_capacity(n * 260);
    let mut t_ms: u64 = 0;
    let (mut actconn, mut id) = (150u64, 100_000u64);
    for _ in 0..n {
        t_ms += rng.below(3);
        let ms = t_ms % 1000;
        let s = 6 + t_ms / 1000;
        let (hh, mm, ss) = (1 + s / 3600, s / 60 % 60, s % 60);
        let client = &clients[rng.skewed(clients.len() as u64) as usize];
        let (backend, prefix, with_id) = routes[rng.skewed(routes.len() as u64) as usize];
        let server = format!("{}{}", &backend[3..], 1 + rng.below(4));
        let fe = if rng.below(10) < 7 { "fe_https~" } else { "fe_http" };
        let status = match rng.below(100) {
            0..=84 => 200,
            85..=89 => 304,
            90..=93 => 302,
            94..=97 => 404,
            98 => 500,
            _ => 503,
        };
        let tr = rng.lognormal(35.0, 1.0);
        let tc = rng.below(3);
        let tq = if rng.below(10) == 0 { rng.below(20) } else { 0 };
        let ta = tq + tc + tr + rng.below(5);
        let bytes = rng.lognormal(4000.0, 1.5);
        actconn = (actconn + rng.below(11)).saturating_sub(5).clamp(20, 400);
        id += 1 + rng.below(5);
        let path = if with_id {
            format!("{prefix}{}", id - rng.skewed(5000))
        } else {
            prefix.to_owned()
        };
        let query = if rng.below(5) == 0 {
            format!("?page={}&sort=asc", rng.below(20))
        } else {
            String::new()
        };
        let method = if rng.below(10) < 8 { "GET" } else { "POST" };
        out.push_str(&format!(
            "<134>{} 22 {hh:02}:{mm:02}:{ss:02} lb1 haproxy[12136]: {client}:{} [22/Nov/2026:{hh:02}:{mm:02}:{ss:02}.{ms:03}] \
             {fe} {backend}/{server} {tq}/0/{tc}/{tr}/{ta} {status} {bytes} - - ---- {actconn}/{}/{}/{}/0 0/0 \
             {{{}|{}}} \"{method} {path}{query} HTTP/1.1\"\n",
            MONTHS[10],
            1024 + rng.below(64000),
            actconn - rng.below(10),
            rng.below(40),
            rng.below(10),
            hosts[rng.skewed(3) as usize],
            uas[rng.skewed(uas.len() as u64) as usize],
        ));
    }
    out
}

#[test]
fn parquet_is_at_most_six_tenths_of_zstd3_text() {
    let n = 60_000;
    let text = synthesize(n, 42);
    // `spool_bench` measures the same data in a release build.
    if let Ok(out) = std::env::var("WEIR_SYNTHETIC_OUT") {
        std::fs::write(out, synthesize(400_000, 42)).unwrap();
    }
    let zstd3 = zstd::bulk::compress(text.as_bytes(), 3).unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    let opts = SpoolOptions {
        fsync: false,
        ..SpoolOptions::new(dir.path(), "n", "b")
    };
    let mut w = SpoolWriter::create(opts).unwrap();
    let popts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let start = Instant::now();
    for raw in text.lines() {
        let line = parse_line(raw.as_bytes(), &popts);
        w.append(&line, &RecordMeta::default()).unwrap();
    }
    let stats = w.finish().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(
        stats.rows(Table::Requests),
        n as u64,
        "every line parsed as a request"
    );
    let parquet = stats.bytes();
    let ratio = parquet as f64 / zstd3 as f64;
    eprintln!(
        "{n} lines, text {} B ({:.1} B/line), zstd -3 {zstd3} B ({:.1} B/line), parquet {parquet} B ({:.1} B/row), \
         ratio {ratio:.3}; parse+append+finish {:.0} rows/s",
        text.len(),
        text.len() as f64 / n as f64,
        zstd3 as f64 / n as f64,
        parquet as f64 / n as f64,
        n as f64 / elapsed.as_secs_f64(),
    );
    assert!(ratio <= 0.6, "parquet/zstd-3 = {ratio:.3}");
}
