//! What the window aggregator costs: nanoseconds per request, and memory per open series.
//!
//! `cargo run --release -p weir-aggregate --example window_cost -- FILE [SERIES]`
//!
//! FILE holds HAProxy lines (`weir gen --count 500000 --seed 1 --to FILE`); its HTTP requests
//! are parsed once, then aggregated into 10 s windows five times (the best pass is printed, in
//! ns per request, closing windows as the watermark passes them, as `serve` does). With SERIES,
//! the same requests are spread over that many distinct servers instead (each request gets
//! server `s<i mod SERIES>`), to measure the peak memory of that many series open at once.

use std::time::Instant;

use weir_aggregate::{WindowAggregator, WindowConfig};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{HttpLog, Record};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: window_cost FILE [SERIES]");
    let series: Option<usize> = args.next().map(|s| s.parse().expect("SERIES is a number"));
    let data = std::fs::read(&path).expect("read FILE");
    let opts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let names: Vec<String> = (0..series.unwrap_or(0)).map(|i| format!("s{i}")).collect();
    let mut requests: Vec<HttpLog<'_>> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Record::Http(h) = parse_line(line, &opts).record {
            requests.push(h);
        }
    }
    if !names.is_empty() {
        for (i, h) in requests.iter_mut().enumerate() {
            h.server = &names[i % names.len()];
        }
    }
    let before = vm_hwm_kib();
    let mut best = f64::MAX;
    let mut rows = 0;
    let mut open_peak = 0;
    for _ in 0..5 {
        let mut agg = WindowAggregator::new(WindowConfig::default()).expect("valid config");
        let start = Instant::now();
        for (i, h) in requests.iter().enumerate() {
            agg.add(h);
            if i % 4096 == 0 {
                open_peak = open_peak.max(agg.open_series());
                rows += agg.close_due().len();
            }
        }
        open_peak = open_peak.max(agg.open_series());
        rows += agg.flush().len();
        best = best.min(start.elapsed().as_nanos() as f64 / requests.len() as f64);
    }
    let grown = vm_hwm_kib().saturating_sub(before);
    println!(
        "{} requests: {best:.0} ns per request (best of 5); {} rows per pass; up to {open_peak} series open; peak memory grew {} KiB ({:.1} KiB per open series)",
        requests.len(),
        rows / 5,
        grown,
        grown as f64 / open_peak.max(1) as f64
    );
}
