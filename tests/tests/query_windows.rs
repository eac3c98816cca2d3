//! `weir query` is exact to its histograms' precision, and mergeable across nodes.
//!
//! A `weir gen` file is imported into one spool, and the same lines, split in two, into two
//! more spools under two node names ("two nodes"). Then, for several groupings, ranges,
//! filters, timers and `--every` periods:
//! - `weir query` on the one spool agrees with what DuckDB computes from the raw `requests`
//!   rows: request and value counts exactly, the maximum exactly, the mean to its printed
//!   digit, and p50/p90/p99 within the histograms' precision (the answer is the lowest value
//!   of the bucket that holds the exact nearest-rank value: at most 1 % below it at two
//!   significant figures);
//! - `weir query` over the two spools together prints exactly what it prints for the one;
//! - `weir report status|termination|servers --spool` over the two spools prints what the same
//!   report prints from the log file;
//! - `weir plot` draws SVG that names every backend, and PNG heatmaps and distributions;
//! - `samples/sql/windows_p99.sql`, run by DuckDB on the spool, gives the same p99 per backend
//!   and 5 minutes as `weir query --by backend --every 5m`.
//!
//! Skipped without python3 and DuckDB unless `CI` is set.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use weir_e2e::{root, weir_bin as weir};

const LINES: usize = 60_000;

fn duckdb_here() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with duckdb is required under CI"
        );
        eprintln!("skipped: python3 with duckdb is not installed");
    }
    ok
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run weir");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn import(spool: &Path, node: &str, file: &Path) {
    run(Command::new(weir())
        .args(["import", "--node", node, "--spool"])
        .arg(spool)
        .arg(file));
}

/// The raw side: per group and period, the request count and the sorted values of a timer,
/// computed by DuckDB from `requests`. Periods are those of the windows: a request's window
/// starts at its accept time rounded down to 10 s, its period at the window start rounded
/// down to `every` (or, without `every`, the group's first window).
const RAW: &str = r#"
import json, sys, duckdb
spool, column, by, every, since, until, where = sys.argv[1:8]
by = [b for b in by.split(",") if b]
every = int(every)
cls = "CASE WHEN status BETWEEN 100 AND 199 THEN '1xx' WHEN status BETWEEN 200 AND 299 THEN '2xx' " \
      "WHEN status BETWEEN 300 AND 399 THEN '3xx' WHEN status BETWEEN 400 AND 499 THEN '4xx' " \
      "WHEN status BETWEEN 500 AND 599 THEN '5xx' ELSE 'other' END"
ws = "(epoch_us(ts) // 10000000) * 10000000"
cols = {"frontend": "frontend", "backend": "backend", "server": "server", "status_class": cls}
keys = [f"{cols[b]} AS {b}" for b in by]
conds = ["TRUE"]
if since: conds.append(f"{ws} >= {since}")
if until: conds.append(f"{ws} < {until}")
for w in [w for w in where.split(",") if w]:
    k, v = w.split("=")
    conds.append(f"{cols[k]} = '{v}'")
period = f"({ws} // {every * 1000000}) * {every * 1000000}" if every else "NULL"
sql = f"""
  SELECT {", ".join(keys + [f"{period} AS period"])},
         min({ws}) AS first, count(*) AS requests,
         list({column} ORDER BY {column}) FILTER (WHERE {column} IS NOT NULL) AS vals
  FROM read_parquet('{spool}/requests/**/*.parquet', hive_partitioning = true)
  WHERE {" AND ".join(conds)}
  GROUP BY ALL
"""
out = []
for r in duckdb.connect().execute(sql).fetchall():
    group = list(r[:len(by)])
    period, first, requests, vals = r[len(by):]
    out.append({"group": group, "start": period if every else first, "requests": requests,
                "vals": vals or []})
print(json.dumps(out))
"#;

/// `YYYY-MM-DDTHH:MM:SSZ` as microseconds.
fn micros(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1_000_000
}

struct Case {
    by: &'static str,
    every: u32,
    timer: &'static str,
    column: &'static str,
    range: Option<(i64, i64)>,
    filter: &'static str,
}

fn query(spools: &[&Path], c: &Case, range: Option<(i64, i64)>, format: &str) -> Vec<u8> {
    let mut cmd = Command::new(weir());
    cmd.arg("query");
    for s in spools {
        cmd.arg("--spool").arg(s);
    }
    cmd.args(["--timer", c.timer, "--format", format]);
    if !c.by.is_empty() {
        cmd.args(["--by", c.by]);
    }
    if c.every > 0 {
        cmd.args(["--every", &format!("{}s", c.every)]);
    }
    if !c.filter.is_empty() {
        cmd.args(["--where", c.filter]);
    }
    if let Some((since, until)) = range {
        cmd.args(["--since", &rfc3339(since), "--until", &rfc3339(until)]);
    }
    run(&mut cmd)
}

fn rfc3339(t: i64) -> String {
    let secs = t.div_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn query_agrees_with_duckdb_on_raw_rows_and_merges_across_spools() {
    if !duckdb_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gen.log");
    let text = run(Command::new(weir()).args(["gen", "--count", &LINES.to_string(), "--seed", "11"]));
    std::fs::write(&log, &text).unwrap();
    let (mut half_a, mut half_b) = (Vec::new(), Vec::new());
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        if i % 2 == 0 { &mut half_a } else { &mut half_b }.extend_from_slice(line);
    }
    let (file_a, file_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&file_a, half_a).unwrap();
    std::fs::write(&file_b, half_b).unwrap();
    let (whole, node_a, node_b) = (
        dir.path().join("whole"),
        dir.path().join("na"),
        dir.path().join("nb"),
    );
    import(&whole, "one", &log);
    import(&node_a, "a", &file_a);
    import(&node_b, "b", &file_b);

    // A sub-range a few windows wide, inside the data.
    let all = query(
        &[&whole],
        &Case {
            by: "",
            every: 0,
            timer: "total",
            column: "total_ms",
            range: None,
            filter: "",
        },
        None,
        "json",
    );
    let all: Vec<Value> = serde_json::from_slice(&all).unwrap();
    assert_eq!(
        all[0]["requests"].as_u64().unwrap() as usize,
        LINES - tcp_lines(&whole)
    );
    let first = micros(all[0]["window_start"].as_str().unwrap());
    let sub = (first + 120_000_000, first + 420_000_000);

    let cases = [
        Case {
            by: "",
            every: 0,
            timer: "total",
            column: "total_ms",
            range: None,
            filter: "",
        },
        Case {
            by: "backend",
            every: 60,
            timer: "total",
            column: "total_ms",
            range: None,
            filter: "",
        },
        Case {
            by: "backend,server",
            every: 300,
            timer: "response",
            column: "response_ms",
            range: Some(sub),
            filter: "",
        },
        Case {
            by: "frontend,status_class",
            every: 0,
            timer: "connect",
            column: "connect_ms",
            range: None,
            filter: "backend=be_api",
        },
        Case {
            by: "status_class",
            every: 30,
            timer: "request",
            column: "request_ms",
            range: Some(sub),
            filter: "",
        },
    ];
    let mut checked = 0;
    for c in &cases {
        let got: Vec<Value> = serde_json::from_slice(&query(&[&whole], c, c.range, "json")).unwrap();
        let (since, until) = c.range.map_or((String::new(), String::new()), |(s, u)| {
            (s.to_string(), u.to_string())
        });
        let raw = run(Command::new("python3").arg("-c").arg(RAW).arg(&whole).args([
            c.column,
            c.by,
            &c.every.to_string(),
            &since,
            &until,
            c.filter,
        ]));
        let raw: Vec<Value> = serde_json::from_slice(&raw).unwrap();
        let dims: Vec<&str> = c.by.split(',').filter(|d| !d.is_empty()).collect();
        let key = |group: Vec<String>, start: i64| (group, start);
        let want: BTreeMap<(Vec<String>, i64), &Value> = raw
            .iter()
            .map(|r| {
                let group = r["group"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                (key(group, r["start"].as_i64().unwrap()), r)
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{} groups: weir {got:?}", c.by);
        for row in &got {
            let group: Vec<String> = dims
                .iter()
                .map(|d| row[*d].as_str().unwrap().to_owned())
                .collect();
            let start = micros(row["window_start"].as_str().unwrap());
            let w = want
                .get(&key(group.clone(), start))
                .unwrap_or_else(|| panic!("{}: weir has {group:?} at {start}, DuckDB does not", c.by));
            let vals: Vec<u64> = w["vals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let ctx = format!("by {} every {} {} {group:?} {start}", c.by, c.every, c.timer);
            assert_eq!(
                row["requests"].as_u64(),
                w["requests"].as_u64(),
                "{ctx}: requests"
            );
            assert_eq!(
                row["count"].as_u64().unwrap() as usize,
                vals.len(),
                "{ctx}: count"
            );
            if vals.is_empty() {
                continue;
            }
            assert_eq!(row["max"].as_u64(), vals.last().copied(), "{ctx}: max");
            let mean = vals.iter().sum::<u64>() as f64 / vals.len() as f64;
            assert!(
                (row["mean"].as_f64().unwrap() - mean).abs() <= 0.051,
                "{ctx}: mean {} vs {mean}",
                row["mean"]
            );
            for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                let rank = ((q * vals.len() as f64).ceil() as usize).max(1);
                let exact = vals[rank - 1];
                let got = row[name].as_u64().unwrap();
                assert!(
                    got <= exact && exact - got <= exact / 100,
                    "{ctx}: {name} {got}, exact {exact}"
                );
            }
            checked += 1;
        }
        // Two nodes' spools together answer exactly as the one spool.
        let merged = query(&[&node_a, &node_b], c, c.range, "csv");
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            String::from_utf8(query(&[&whole], c, c.range, "csv")).unwrap(),
            "by {} every {}: two spools differ from one",
            c.by,
            c.every
        );
    }
    assert!(checked >= 50, "only {checked} groups compared");

    // --format parquet: the same rows, typed, for pyarrow.
    let c = &cases[1];
    let pq = dir.path().join("q.parquet");
    std::fs::write(&pq, query(&[&whole], c, None, "parquet")).unwrap();
    let script = "import json, sys, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\n\
                  print(json.dumps([str(t.schema.field('window_start').type), t.column('requests').to_pylist()]))";
    let typed: (String, Vec<u64>) =
        serde_json::from_slice(&run(Command::new("python3").args(["-c", script]).arg(&pq))).unwrap();
    let json: Vec<Value> = serde_json::from_slice(&query(&[&whole], c, None, "json")).unwrap();
    assert_eq!(typed.0, "timestamp[us, tz=UTC]");
    assert_eq!(
        typed.1,
        json.iter()
            .map(|r| r["requests"].as_u64().unwrap())
            .collect::<Vec<_>>()
    );

    // halog's counting reports read alike from the windows of two spools and from the file.
    for kind in ["status", "termination", "servers"] {
        let from_file = run(Command::new(weir())
            .args(["report", kind, "--format", "csv"])
            .arg(&log));
        let from_windows = run(Command::new(weir())
            .args(["report", kind, "--format", "csv", "--spool"])
            .arg(&node_a)
            .arg("--spool")
            .arg(&node_b));
        assert_eq!(
            String::from_utf8(from_windows).unwrap(),
            String::from_utf8(from_file).unwrap(),
            "report {kind}"
        );
    }

    // Charts: the SVG names every backend; PNGs are PNGs; a chart of another type is refused.
    let backends: std::collections::BTreeSet<String> = serde_json::from_slice::<Vec<Value>>(&query(
        &[&whole],
        &Case {
            by: "backend",
            every: 0,
            timer: "total",
            column: "total_ms",
            range: None,
            filter: "",
        },
        None,
        "json",
    ))
    .unwrap()
    .iter()
    .map(|r| r["backend"].as_str().unwrap().to_owned())
    .collect();
    let svg = dir.path().join("p99.svg");
    run(Command::new(weir())
        .args(["plot", "--spool"])
        .arg(&whole)
        .arg("--to")
        .arg(&svg));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(80)]);
    for b in &backends {
        assert!(text.lines().any(|l| l.trim() == b), "the chart does not name {b}");
    }
    for kind in ["heatmap", "distribution", "quantiles"] {
        let png = dir.path().join(format!("{kind}.png"));
        run(Command::new(weir())
            .args(["plot", "--kind", kind, "--spool"])
            .arg(&whole)
            .arg("--to")
            .arg(&png));
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{kind}"
        );
    }
    let bad = Command::new(weir())
        .args(["plot", "--spool"])
        .arg(&whole)
        .args(["--to", "x.jpg"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));

    // The SQL sample merges the windows table to the same p99s.
    let sql = std::fs::read_to_string(root().join("samples/sql/windows_p99.sql"))
        .unwrap()
        .replace("weir-spool/", &format!("{}/", whole.display()));
    let script = "import json, sys, duckdb\nrows = duckdb.connect().execute(sys.argv[1]).fetchall()\n\
                  print(json.dumps([[b, int(p.timestamp()) * 1000000, c, q] for b, p, c, q in rows]))";
    let from_sql: Vec<(String, i64, u64, u64)> =
        serde_json::from_slice(&run(Command::new("python3").args(["-c", script, &sql]))).unwrap();
    let c = Case {
        by: "backend",
        every: 300,
        timer: "total",
        column: "total_ms",
        range: None,
        filter: "",
    };
    let weir_rows: Vec<Value> = serde_json::from_slice(&query(&[&whole], &c, None, "json")).unwrap();
    let from_weir: Vec<(String, i64, u64, u64)> = weir_rows
        .iter()
        .filter(|r| r["count"].as_u64() > Some(0))
        .map(|r| {
            (
                r["backend"].as_str().unwrap().to_owned(),
                micros(r["window_start"].as_str().unwrap()),
                r["count"].as_u64().unwrap(),
                r["p99"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!from_sql.is_empty());
    assert_eq!(from_sql, from_weir);
}

/// The rows of the `tcp` table (gen's TCP sessions are not windows).
fn tcp_lines(spool: &Path) -> usize {
    let script = format!(
        "import duckdb\nprint(duckdb.connect().execute(\"select count(*) from read_parquet('{}/tcp/**/*.parquet')\").fetchone()[0])",
        spool.display()
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    String::from_utf8(out).unwrap().trim().parse().unwrap()
}
