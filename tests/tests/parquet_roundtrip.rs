//! `weir import` writes a spool that pyarrow and DuckDB read back exactly.
//!
//! The test imports real HAProxy logs from the corpus (HTTP, TCP, events, connection errors,
//! unparseable lines) with the real binary, then reads the Hive-partitioned spool with pyarrow
//! (`pyarrow.dataset`, `partitioning="hive"`) and with DuckDB (`read_parquet(...,
//! hive_partitioning=true)`), and checks:
//! - the rows of `requests` + `tcp` + `app` + `rejects` add up to the lines read, in both readers;
//! - every row's main columns equal what `weir_ingest::parse_line` makes of its line (compared
//!   as multisets: import workers write in parallel);
//! - `ts` is `timestamp[us, tz=UTC]` (DuckDB: `TIMESTAMP WITH TIME ZONE`), and each row sits in
//!   the `date=/hour=` partition of its time;
//! - the spool carries its `FORMAT` and no temporaries are left behind.
//!
//! Without python3, pyarrow or DuckDB the test prints why and passes, unless `CI` is set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use weir_e2e::{root, weir_bin as weir, OutputWithin, PROCESS_TIMEOUT};

use serde_json::{json, Value};
use weir_ingest::{parse_line, ParseOptions, Zone};
use weir_model::time::{civil_from_micros, now_micros};
use weir_model::Record;

/// The corpus files imported: every kind of line HAProxy writes, and some it does not.
const CORPUS: &[&str] = &[
    "nagiosplugin-production-2012-httplog.log",
    "rsa_nw-tcplog-anonymized.log",
    "haproxy26-live-udp-formats.log",
    "haproxy26-live-udp-payloads.log",
    "efigence-udp-captured.log",
    "elastic-integrations-test-haproxy.log",
    "elastic-integrations-test-tcplog.log",
    "haproxy-doc-v2.6-examples.log",
    "gforcada-2_ok_1_invalid.log",
    "logstash-haproxy_spec.log",
];

/// Reads the spool with pyarrow and DuckDB; prints one JSON document.
const READER: &str = r#"
import json, os, sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, duckdb

spool = sys.argv[1]
COLS = {
    "requests": ["ts", "client_ip", "client_port", "frontend", "ssl", "backend", "server", "request_ms",
                 "queue_ms", "connect_ms", "response_ms", "total_ms", "status", "bytes_read",
                 "termination_state", "method", "path", "query", "req_headers"],
    "tcp": ["ts", "client_ip", "client_port", "frontend", "backend", "server", "queue_ms", "connect_ms",
            "total_ms", "bytes_read", "termination_state"],
    "app": ["ts", "host", "kind", "message"],
    "rejects": ["reason", "raw"],
}
out = {"pyarrow": {}, "duckdb": {}}
con = duckdb.connect()
for table, cols in COLS.items():
    path = os.path.join(spool, table)
    if not os.path.isdir(path):
        out["pyarrow"][table] = {"count": 0, "rows": []}
        out["duckdb"][table] = {"count": 0}
        continue
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    columns = []
    for c in cols:
        col = t.column(c)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.int64())
        values = col.to_pylist()
        if c == "raw":
            values = [v.hex() for v in values]
        columns.append(values)
    out["pyarrow"][table] = {
        "count": t.num_rows,
        "rows": [list(r) for r in zip(*columns)],
        "time_type": str(t.schema.field(t.schema.names[0]).type),
        "partition_columns": [n for n in ("date", "hour") if n in t.schema.names],
    }
    glob = os.path.join(path, "**", "*.parquet")
    rel = f"read_parquet('{glob}', hive_partitioning=true)"
    first = t.schema.names[0]
    d = {"count": con.execute(f"select count(*) from {rel}").fetchone()[0]}
    d["time_type"] = con.execute(f"select typeof({first}) from {rel} limit 1").fetchone()[0]
    d["partitions"] = [
        [us, str(date), int(hour)]
        for us, date, hour in con.execute(f"select epoch_us({first}), date, hour from {rel}").fetchall()
    ]
    out["duckdb"][table] = d
print(json.dumps(out))
"#;

/// The repository's HAProxy corpus (`tests/corpus/haproxy`, provenance in its `SOURCES.md`).
fn corpus() -> PathBuf {
    let dir = root().join("tests/corpus/haproxy");
    assert!(dir.join(CORPUS[0]).is_file(), "{} is missing", dir.display());
    dir
}

/// Whether python3 with pyarrow and duckdb is here; a failure under CI when not.
fn python_readers() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow, duckdb"])
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with pyarrow and duckdb is required"
        );
        eprintln!("skipped: python3 with pyarrow and duckdb is not installed (pip install pyarrow duckdb)");
    }
    ok
}

/// The lines of a file as `weir import` cuts them: `\n`-separated, `\r` stripped, no final
/// empty line.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// What the spool must hold for each line, in the reader script's column order.
fn expected_row(line: &weir_model::Line<'_>) -> (&'static str, Value) {
    let header_value = |c: Option<weir_model::Captures<'_>>| c.map(|c| c.decoded());
    match &line.record {
        Record::Http(r) => {
            let t = &r.timings;
            (
                "requests",
                json!([
                    r.accept_ts,
                    r.client.ip,
                    r.client.port,
                    r.frontend,
                    r.ssl,
                    r.backend,
                    r.server,
                    t.request,
                    t.queue,
                    t.connect,
                    t.response,
                    t.total,
                    r.status,
                    r.bytes_read,
                    r.termination_state,
                    r.request.method,
                    r.request.path,
                    r.request.query,
                    header_value(r.req_headers),
                ]),
            )
        }
        Record::Tcp(r) => (
            "tcp",
            json!([
                r.accept_ts,
                r.client.ip,
                r.client.port,
                r.frontend,
                r.backend,
                r.server,
                r.queue_ms,
                r.connect_ms,
                r.total_ms,
                r.bytes_read,
                r.termination_state
            ]),
        ),
        Record::App(r) => ("app", json!([r.ts, line.header.host, r.kind.name(), r.message])),
        Record::Reject(r) => {
            let hex: String = line.raw.iter().map(|b| format!("{b:02x}")).collect();
            ("rejects", json!([r.reason.as_str(), hex]))
        }
    }
}

/// Sorted by their JSON text, so that two multisets of rows compare with `assert_eq!`.
fn sorted(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(Value::to_string).collect();
    v.sort();
    v
}

#[test]
fn imported_spool_reads_back_in_pyarrow_and_duckdb() {
    let corpus = corpus();
    if !python_readers() {
        return;
    }
    let files: Vec<PathBuf> = CORPUS.iter().map(|f| corpus.join(f)).collect();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let out = Command::new(weir())
        .arg("import")
        .arg("--spool")
        .arg(&spool)
        .args(["--node", "e2e"])
        .args(&files)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running weir import");
    assert!(
        out.status.success(),
        "weir import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the parser makes of the same lines, with the options `weir import` uses.
    let opts = ParseOptions {
        zone: Zone::UTC,
        year: civil_from_micros(now_micros()).0,
        ..ParseOptions::default()
    };
    let data: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut want: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut total = 0;
    for d in &data {
        for raw in lines(d) {
            let (table, row) = expected_row(&parse_line(raw, &opts));
            want.entry(table).or_default().push(row);
            total += 1;
        }
    }
    assert!(
        want.len() >= 3,
        "the corpus covers several tables: {:?}",
        want.keys().collect::<Vec<_>>()
    );

    let py = Command::new("python3")
        .args(["-c", READER])
        .arg(&spool)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running python3");
    assert!(
        py.status.success(),
        "reader script failed: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let got: Value = serde_json::from_slice(&py.stdout).expect("reader prints JSON");

    let mut pa_total = 0;
    let mut duck_total = 0;
    for table in ["requests", "tcp", "app", "rejects"] {
        let pa = &got["pyarrow"][table];
        let duck = &got["duckdb"][table];
        let want_rows = want.get(table).map(Vec::as_slice).unwrap_or(&[]);
        pa_total += pa["count"].as_u64().unwrap();
        duck_total += duck["count"].as_u64().unwrap();
        assert_eq!(
            pa["count"].as_u64().unwrap(),
            want_rows.len() as u64,
            "{table}: pyarrow row count"
        );
        assert_eq!(duck["count"], pa["count"], "{table}: DuckDB row count");
        let got_rows = pa["rows"].as_array().unwrap();
        let (g, w) = (sorted(got_rows), sorted(want_rows));
        if let Some(i) = (0..g.len().max(w.len())).find(|&i| g.get(i) != w.get(i)) {
            panic!(
                "{table}: first difference at sorted row {i}:\n  spool:  {:?}\n  parser: {:?}",
                g.get(i),
                w.get(i)
            );
        }
        if want_rows.is_empty() {
            continue;
        }
        assert_eq!(
            pa["time_type"], "timestamp[us, tz=UTC]",
            "{table}: pyarrow time type"
        );
        assert_eq!(
            pa["partition_columns"],
            json!(["date", "hour"]),
            "{table}: hive partitions"
        );
        assert_eq!(
            duck["time_type"], "TIMESTAMP WITH TIME ZONE",
            "{table}: DuckDB time type"
        );
        for p in duck["partitions"].as_array().unwrap() {
            let Some(us) = p[0].as_i64() else { continue };
            let (y, m, d, h, ..) = civil_from_micros(us);
            assert_eq!(
                (p[1].as_str().unwrap(), p[2].as_i64().unwrap()),
                (format!("{y:04}-{m:02}-{d:02}").as_str(), i64::from(h)),
                "{table}: row at {us} us is in the partition of its time"
            );
        }
    }
    assert_eq!(pa_total, total, "pyarrow: rows of all tables == lines read");
    assert_eq!(duck_total, total, "DuckDB: rows of all tables == lines read");

    assert_eq!(
        std::fs::read_to_string(spool.join("FORMAT")).unwrap().trim(),
        weir_store::SPOOL_FORMAT_VERSION.to_string()
    );
    let mut stack = vec![spool.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            assert!(
                !p.to_string_lossy().ends_with(".tmp"),
                "temporary left behind: {}",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
}
