//! `weir report` agrees with halog, HAProxy's own log analyzer, on the same input.
//!
//! Each test runs the real `weir` binary (`report KIND --format csv`) and the real `halog` on
//! (a) a real production log (1,999 lines, HAProxy 1.4 layout) and (b) 200,000 lines from
//! `weir gen --kind haproxy --seed 7`, and compares: counts exactly; averages to halog's integer
//! truncation; percentiles to the HDR precision (3 significant figures) plus halog's rank
//! rounding (halog picks rank `floor(q·n)`, weir `ceil(q·n)`, so weir's value lies between
//! halog's row for q and its next row).
//!
//! Where halog's semantics differ on purpose (docs/halog.md says why), the difference is
//! tested explicitly:
//! - TCP and connection-error lines: halog `-st` counts a TCP line's byte count and the third
//!   word of a connection error as statuses, `-srv` makes empty rows for their "servers"; weir
//!   counts only HTTP requests, like `halog -H`. The generated file is compared with `-H`.
//! - `+` (logasap) values: halog reads them as 0 (so Td goes negative), weir keeps the value.
//! - `-1` timers: halog `-pct` drops the whole request, weir drops only that timer; the `data`
//!   row has halog's population. Timer percentiles are compared on the lines where both count
//!   the same thing (five known timers, no `+`), and the `data` count on every line.
//! - Event lines (`Proxy X started.`) are parse errors for halog and `haproxy_events` for weir.
//!
//! Without halog installed the tests print why and pass, unless `CI` is set.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use weir_e2e::{root, run_weir, weir_bin as weir, OutputWithin, PROCESS_TIMEOUT};

const PRODUCTION: &str = "nagiosplugin-production-2012-httplog.log";
const GENERATED_LINES: u64 = 200_000;

// ------------------------------------------------------------------------------------------
// Harness

/// halog, or `None` (with a note) when it is not installed; missing halog fails under CI.
fn halog() -> Option<PathBuf> {
    let found = std::env::var_os("HALOG")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).map(|d| d.join("halog")))
        .chain(["/usr/sbin/halog", "/usr/bin/halog", "/usr/local/bin/halog"].map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "halog is not installed (apt-get install haproxy)"
        );
        eprintln!("skipped: halog is not installed (apt-get install haproxy)");
    }
    found
}

/// The production file of the repository's corpus (`tests/corpus/haproxy`).
fn production() -> Option<PathBuf> {
    let path = root().join("tests/corpus/haproxy").join(PRODUCTION);
    assert!(path.is_file(), "{} is missing", path.display());
    Some(path)
}

/// 200,000 lines of `weir gen --seed 7`, written once per test run.
fn generated() -> PathBuf {
    static GEN: OnceLock<PathBuf> = OnceLock::new();
    GEN.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("halog-gen-{GENERATED_LINES}-seed7.log"));
        let count = GENERATED_LINES.to_string();
        let to = path.to_str().expect("utf-8 temp path");
        run_weir(&[
            "gen", "--kind", "haproxy", "--count", &count, "--seed", "7", "--to", to,
        ]);
        let lines = std::fs::read(&path)
            .expect("reading the generated log")
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        assert_eq!(lines as u64, GENERATED_LINES);
        path
    })
    .clone()
}

/// `weir report KIND FILE --format csv`, as rows of cells, header first.
fn report(kind: &str, file: &Path) -> Vec<Vec<String>> {
    let file = file.to_str().expect("utf-8 path");
    parse_csv(&run_weir(&["report", kind, file, "--format", "csv"]))
}

/// One CSV report as maps from the header to the cell.
fn report_maps(kind: &str, file: &Path) -> Vec<BTreeMap<String, String>> {
    let rows = report(kind, file);
    let (header, rows) = rows.split_first().expect("a header row");
    rows.iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn parse_csv(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .map(|line| {
            let mut cells = vec![String::new()];
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        chars.next();
                        cells.last_mut().unwrap().push('"');
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => cells.push(String::new()),
                    c => cells.last_mut().unwrap().push(c),
                }
            }
            cells
        })
        .collect()
}

/// halog's report on `file`: its output lines (not the `#` header) split on spaces.
fn halog_run(halog: &Path, args: &[&str], file: &Path) -> Vec<Vec<String>> {
    let out = Command::new(halog)
        .args(args)
        .arg("-q")
        .stdin(File::open(file).expect("opening the log"))
        .output_within(PROCESS_TIMEOUT)
        .expect("running halog");
    assert!(out.status.success(), "halog {args:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// halog's `-pct` rows keyed by the percentage as printed (`"99.9"`): [thres, TR, Tc, Tr, Td].
fn halog_pct(halog: &Path, file: &Path) -> BTreeMap<String, [i64; 5]> {
    let rows = halog_run(halog, &["-pct"], file);
    rows.into_iter()
        .map(|r| {
            let v: Vec<i64> = r[1..6]
                .iter()
                .map(|c| c.parse().expect("halog prints integers"))
                .collect();
            (r[0].clone(), [v[0], v[1], v[2], v[3], v[4]])
        })
        .collect()
}

fn num(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("{cell:?} is not a number"))
}

// ------------------------------------------------------------------------------------------
// Checks shared by both inputs

/// `weir report status` == `halog [-H] -st`.
fn check_status(halog: &Path, file: &Path, halog_args: &[&str]) {
    let rows = halog_run(halog, halog_args, file);
    let expected: BTreeMap<i64, u64> = rows
        .iter()
        .map(|r| (num(&r[0]) as i64, num(&r[1]) as u64))
        .collect();
    let got: BTreeMap<i64, u64> = report_maps("status", file)
        .iter()
        .map(|m| (num(&m["status"]) as i64, num(&m["count"]) as u64))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "status counts of {}", file.display());
}

/// `weir report termination` == `halog -tc`.
fn check_termination(halog: &Path, file: &Path) {
    let rows = halog_run(halog, &["-tc"], file);
    let expected: BTreeMap<String, u64> = rows.iter().map(|r| (r[0].clone(), num(&r[1]) as u64)).collect();
    let got: BTreeMap<String, u64> = report_maps("termination", file)
        .iter()
        .map(|m| (m["code"].clone(), num(&m["count"]) as u64))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "termination codes of {}", file.display());
}

/// `weir report servers` == `halog [-H] -srv`: counts exact, averages to halog's truncation.
/// Returns halog's rows that weir has no row for.
fn check_servers(halog: &Path, file: &Path, halog_args: &[&str]) -> Vec<Vec<String>> {
    let rows = halog_run(halog, halog_args, file);
    let weir: BTreeMap<String, BTreeMap<String, String>> = report_maps("servers", file)
        .into_iter()
        .map(|m| (format!("{}/{}", m["backend"], m["server"]), m))
        .collect();
    let mut only_halog = Vec::new();
    let mut matched = 0;
    for r in &rows {
        let Some(w) = weir.get(&r[0]) else {
            only_halog.push(r.clone());
            continue;
        };
        matched += 1;
        let ctx = format!("server {} of {}", r[0], file.display());
        for (i, col) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "requests", "ok"]
            .iter()
            .enumerate()
        {
            assert_eq!(num(&w[*col]), num(&r[i + 1]), "{col} of {ctx}");
        }
        assert!(
            (num(&w["ok_pct"]) - num(&r[9])).abs() <= 0.05 + 1e-9,
            "ok_pct of {ctx}: {} vs {}",
            w["ok_pct"],
            r[9]
        );
        for (col, h) in [("avg_connect_ms", &r[10]), ("avg_response_ms", &r[11])] {
            // halog prints (int)(sum / n), and 0 when n = 0; weir prints the mean, or nothing.
            let w = if w[col].is_empty() { 0.0 } else { num(&w[col]) };
            let h = num(h);
            assert!(
                h <= w + 0.001 && w < h + 1.001,
                "{col} of {ctx}: weir {w} vs halog {h}"
            );
        }
    }
    assert_eq!(
        matched,
        weir.len(),
        "every weir row has a halog row ({})",
        file.display()
    );
    only_halog
}

/// Lines where halog and weir agree on what the timers are: all five known, none with `+`.
fn complete_lines_only(file: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).expect("reading the log");
    let keep = |line: &str| {
        line.split(' ').filter(|f| !f.is_empty()).nth(9).is_some_and(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() == 5
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let kept: String = text.lines().filter(|l| keep(l)).flat_map(|l| [l, "\n"]).collect();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&out, kept).expect("writing the filtered log");
    out
}

/// The timers report's rows by timer name.
fn timers(file: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    report_maps("timers", file)
        .into_iter()
        .map(|m| (m["timer"].clone(), m))
        .collect()
}

/// weir's percentile `w` for halog's row `p` (value `lo`) and the next row (value `hi`):
/// `lo ≤ w ≤ hi`, with 0.1 % + 1 ms of HDR slack above, and negatives counted as 0.
fn assert_between(w: f64, lo: i64, hi: i64, what: &str) {
    let lo = lo.max(0) as f64;
    let hi = hi.max(0) as f64;
    assert!(
        lo <= w && w <= hi * 1.001 + 1.0,
        "{what}: weir {w} not within halog's [{lo}, {hi}]"
    );
}

/// TR, Tc, Tr and Td of every line of a log with five known timers per line (halog's -pct
/// columns), each sorted: the exact answer both tools approximate.
fn exact_timers(file: &Path) -> [Vec<i64>; 4] {
    let mut cols: [Vec<i64>; 4] = Default::default();
    for line in std::fs::read_to_string(file).expect("reading the log").lines() {
        let field = line
            .split(' ')
            .filter(|f| !f.is_empty())
            .nth(9)
            .expect("a timer field");
        let t: Vec<i64> = field.split('/').map(|v| v.parse().expect("a timer")).collect();
        let data = t[4] - (t[0] + t[1] + t[2] + t[3]);
        for (col, v) in cols.iter_mut().zip([t[0], t[2], t[3], data]) {
            col.push(v);
        }
    }
    cols.iter_mut().for_each(|c| c.sort_unstable());
    cols
}

/// On lines with five known timers and no `+`, every column halog's `-pct` prints agrees:
/// halog's value is the exact value at rank `floor(q·n)`; weir's is the exact value at rank
/// `ceil(q·n)` to HDR precision (exact below 2048 ms, at most 1/1024 above, never above max);
/// so weir's value also lies between halog's row for q and its next row.
fn check_timers_on_complete_lines(halog: &Path, file: &Path, name: &str) {
    let complete = complete_lines_only(file, name);
    let pct = halog_pct(halog, &complete);
    let exact = exact_timers(&complete);
    let n = pct["100.0"][0];
    assert!(n > 0, "no complete lines in {}", file.display());
    assert_eq!(exact[0].len() as i64, n);
    let weir = timers(&complete);
    // (weir row, halog column); (weir column, quantile, halog row, next halog row).
    let series = [("request", 1), ("connect", 2), ("response", 3), ("data", 4)];
    let quantiles = [
        ("p50", 0.5, "50.0", "55.0"),
        ("p90", 0.9, "90.0", "91.0"),
        ("p95", 0.95, "95.0", "96.0"),
        ("p99", 0.99, "99.0", "99.1"),
        ("p999", 0.999, "99.9", "100.0"),
    ];
    for (timer, col) in series {
        let w = &weir[timer];
        let sorted = &exact[col - 1];
        let what = format!("{timer} of {}", file.display());
        assert_eq!(num(&w["count"]) as i64, n, "count of {what}");
        assert_eq!(num(&w["max"]) as i64, pct["100.0"][col].max(0), "max of {what}");
        let mean = sorted.iter().map(|v| (*v).max(0)).sum::<i64>() as f64 / n as f64;
        assert!(
            (num(&w["mean"]) - mean).abs() <= 0.0005 + mean * 1e-9,
            "mean of {what}: {} vs {mean}",
            w["mean"]
        );
        for (q, quantile, row, next) in quantiles {
            let step: f64 = row.parse::<f64>().unwrap() * 10.0;
            let halog_rank = ((n as f64 * (step.round() / 1000.0)) as usize).max(1);
            assert_eq!(
                pct[row][col],
                sorted[halog_rank - 1],
                "halog's {row}% of {what} is rank floor(q·n)"
            );
            let rank = ((quantile * n as f64).ceil() as usize).clamp(1, sorted.len());
            let x = sorted[rank - 1].max(0) as f64;
            let got = num(&w[q]);
            assert!(
                x <= got && got <= x + (x / 1024.0).floor(),
                "{q} of {what}: weir {got}, exact {x}"
            );
            assert_between(got, pct[row][col], pct[next][col], &format!("{q} of {what}"));
        }
    }
    for timer in ["queue", "total"] {
        assert_eq!(
            num(&weir[timer]["count"]) as i64,
            n,
            "{timer} count on complete lines"
        );
    }
}

/// On every line, the `data` row has halog's population: its count is halog's `lines out`.
fn check_data_population(halog: &Path, file: &Path) -> (i64, BTreeMap<String, BTreeMap<String, String>>) {
    let pct = halog_pct(halog, file);
    let weir = timers(file);
    assert_eq!(
        num(&weir["data"]["count"]) as i64,
        pct["100.0"][0],
        "data count of {}",
        file.display()
    );
    (pct["100.0"][0], weir)
}

// ------------------------------------------------------------------------------------------
// (a) the production log: HTTP only, HAProxy 1.4, 43 stats-page requests with -1 timers

#[test]
fn production_status_matches_halog_st() {
    let (Some(h), Some(f)) = (halog(), production()) else {
        return;
    };
    check_status(&h, &f, &["-st"]);
    check_status(&h, &f, &["-H", "-st"]);
}

#[test]
fn production_termination_matches_halog_tc() {
    let (Some(h), Some(f)) = (halog(), production()) else {
        return;
    };
    check_termination(&h, &f);
}

#[test]
fn production_servers_match_halog_srv() {
    let (Some(h), Some(f)) = (halog(), production()) else {
        return;
    };
    let extra = check_servers(&h, &f, &["-srv"]);
    assert!(extra.is_empty(), "rows only halog has: {extra:?}");
}

#[test]
fn production_timers_match_halog_pct() {
    let (Some(h), Some(f)) = (halog(), production()) else {
        return;
    };
    check_timers_on_complete_lines(&h, &f, "halog-production-complete.log");
    let (complete, weir) = check_data_population(&h, &f);
    // The 43 stats requests (`0/-1/-1/-1/0`) have a TR and a Ta that halog's -pct ignores.
    assert_eq!(num(&weir["request"]["count"]) as i64, complete + 43);
    assert_eq!(num(&weir["total"]["count"]) as i64, complete + 43);
    assert_eq!(num(&weir["connect"]["count"]) as i64, complete);
}

// ------------------------------------------------------------------------------------------
// (b) 200,000 generated lines: HTTP, HTTPS, TCP, logasap, captures, errors, events

#[test]
fn generated_status_matches_halog_http_only() {
    let Some(h) = halog() else { return };
    check_status(&h, &generated(), &["-H", "-st"]);
}

#[test]
fn generated_termination_matches_halog_tc() {
    let Some(h) = halog() else { return };
    check_termination(&h, &generated());
}

#[test]
fn generated_servers_match_halog_http_only() {
    let Some(h) = halog() else { return };
    let extra = check_servers(&h, &generated(), &["-H", "-srv"]);
    assert!(extra.is_empty(), "rows only halog has: {extra:?}");
}

#[test]
fn generated_servers_without_h_differ_only_by_empty_rows() {
    let Some(h) = halog() else { return };
    for row in check_servers(&h, &generated(), &["-srv"]) {
        assert_eq!(
            row[7], "0",
            "a server halog counts requests for but weir does not: {row:?}"
        );
    }
}

/// The mapped file (the default), the same file read with read(2) and the same bytes on
/// standard input give the same report, to the byte.
#[test]
fn reports_alike_mapped_read_or_piped() {
    let file = generated();
    let path = file.to_str().expect("utf-8 path");
    for kind in ["servers", "timers", "summary"] {
        let mapped = run_weir(&["report", kind, path, "--format", "csv"]);
        let read = run_weir(&["report", kind, path, "--format", "csv", "--no-mmap"]);
        let out = Command::new(weir())
            .args(["report", kind, "-", "--format", "csv"])
            .stdin(std::fs::File::open(&file).expect("opening the generated log"))
            .output_within(PROCESS_TIMEOUT)
            .expect("running weir");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(mapped.lines().count() > 2, "{kind}: {mapped}");
        assert_eq!(mapped, read, "{kind}: mapped vs --no-mmap");
        assert_eq!(
            mapped,
            String::from_utf8(out.stdout).expect("utf-8"),
            "{kind}: mapped vs stdin"
        );
    }
}

#[test]
fn generated_timers_match_halog_pct() {
    let Some(h) = halog() else { return };
    let file = generated();
    check_timers_on_complete_lines(&h, &file, "halog-generated-complete.log");
    let (complete, weir) = check_data_population(&h, &file);
    for timer in ["request", "queue", "connect", "response", "total"] {
        assert!(
            num(&weir[timer]["count"]) as i64 >= complete,
            "{timer} counts every request that reached it"
        );
    }
}

// ------------------------------------------------------------------------------------------
// The differences, one by one, on lines written for the purpose

const MIXED: &str = "\
Aug  5 00:50:12 localhost haproxy[374]: 10.0.0.1:39164 [05/Aug/2012:00:50:12.093] http www/ww1 1/0/2/40/+100 200 +365 - - ---- 0/0/0/0/0 0/0 \"GET /a HTTP/1.1\"
Aug  5 00:50:13 localhost haproxy[374]: 10.0.0.1:39165 [05/Aug/2012:00:50:13.093] http www/ww1 1/0/2/40/50 404 120 - - ---- 0/0/0/0/0 0/0 \"GET /b HTTP/1.1\"
Aug  5 00:50:14 localhost haproxy[374]: 10.0.0.2:40000 [05/Aug/2012:00:50:14.000] tcp-in db/db1 0/1/5000 4242 -- 1/1/1/1/0 0/0
Aug  5 00:50:15 localhost haproxy[374]: 10.0.0.3:40001 [05/Aug/2012:00:50:15.000] https~/1: SSL handshake failure
Aug  5 00:50:16 localhost haproxy[374]: Proxy http started.
";

fn mixed() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("halog-mixed.log");
    std::fs::write(&path, MIXED).expect("writing the mixed log");
    path
}

#[test]
fn tcp_and_connection_errors_are_statuses_only_for_halog() {
    let Some(h) = halog() else { return };
    let f = mixed();
    let all = halog_run(&h, &["-st"], &f);
    let all: Vec<&str> = all.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        all,
        ["0", "200", "404", "4242"],
        "halog -st: the connection error is 0, the TCP bytes 4242"
    );
    check_status(&h, &f, &["-H", "-st"]);
    let summary: BTreeMap<String, String> = report_maps("summary", &f)
        .into_iter()
        .map(|m| (m["key"].clone(), m["value"].clone()))
        .collect();
    assert_eq!(summary["tcp_sessions"], "1");
    assert_eq!(summary["haproxy_conn_errors"], "1");
    assert_eq!(summary["haproxy_events"], "1");
    assert_eq!(summary["http_requests"], "2");
}

#[test]
fn halog_srv_makes_empty_rows_for_tcp_and_error_lines() {
    let Some(h) = halog() else { return };
    let extra = check_servers(&h, &mixed(), &["-srv"]);
    let names: Vec<&str> = extra.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["SSL", "db/db1"]);
    assert!(extra.iter().all(|r| r[7] == "0"));
}

#[test]
fn logasap_plus_is_zero_for_halog_and_its_value_for_weir() {
    let Some(h) = halog() else { return };
    let f = mixed();
    let pct = halog_pct(&h, &f);
    assert_eq!(pct["0.1"][4], -43, "halog: Td = 0 - (1+0+2+40)");
    assert_eq!(pct["100.0"][4], 7);
    let weir = timers(&f);
    assert_eq!(weir["total"]["max"], "100", "weir keeps the logged +100");
    assert_eq!(weir["data"]["count"], "2");
    assert_eq!(weir["data"]["max"], "57", "weir: Td = 100 - 43");
    assert_eq!(weir["data"]["p50"], "7");
}
