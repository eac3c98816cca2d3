//! The spool opens as it is in pyarrow, DuckDB and Spark, with the same rows and types.
//!
//! A `weir gen --kind mix` file (HAProxy HTTP and TCP logs, events, application lines) with a
//! few unparseable lines appended is imported, and the spool's six tables (`requests`, `tcp`,
//! `app`, `rejects`, `windows`, `metrics`) are read by `pyarrow.dataset` (hive partitioning), DuckDB
//! (`read_parquet(..., hive_partitioning = true)`) and Spark (`spark.read.parquet`, local mode,
//! one session for every table). For each table and reader the test checks:
//! - the row count, and the `date`/`hour` partition columns;
//! - the types of the columns readers care about (timestamps with their UTC zone, 16-, 32- and
//!   64-bit integers, strings, `map<string,string>`, the windows' `list<struct<ms, n>>`), and
//!   that no column anywhere is an unsigned integer (R's arrow turns those into doubles);
//! - typed values: sums and extremes of times and integers, map and list sizes, the merged
//!   histogram of `windows`, and the first request's row, equal in the three readers and,
//!   where the parser knows them, to what `weir_ingest::parse_line` makes of the lines.
//!
//! Without python3, pyarrow, DuckDB or pyspark (and Java) the test prints why and passes,
//! unless `CI` is set.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use weir_e2e::{skip_without, stdout_of, weir_bin as weir, OutputWithin, PROCESS_TIMEOUT};
use weir_ingest::{parse_line, ParseOptions, Zone};
use weir_model::time::{civil_from_micros, now_micros};
use weir_model::Record;

/// Reads the spool with each reader; prints one JSON document `{reader: {table: {...}}}`.
const READERS: &str = r#"
import json, os, sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, duckdb
from pyspark.sql import SparkSession

spool = sys.argv[1]
TABLES = ["requests", "tcp", "app", "rejects", "windows", "metrics"]
TYPED = {
    "requests": ["ts", "status", "client_port", "bytes_read", "backend", "req_headers", "fields"],
    "tcp": ["ts", "client_port", "bytes_read", "total_ms", "termination_state", "fields"],
    "app": ["ts", "severity", "message", "fields"],
    "rejects": ["received_at", "reason", "raw"],
    "windows": ["window_start", "window_secs", "requests", "total_mean", "status_counts", "total_hist"],
    "metrics": ["ts", "kind", "name", "value", "unit", "source"],
}
# The same questions in each SQL dialect: {us} is a timestamp's microseconds since the epoch,
# {msize} a map's and {lsize} a list's length, {explode} a list's items as rows.
VALUES = {
    "requests": [
        ("min_ts", "select {us}(min(ts)) from t"),
        ("max_ts", "select {us}(max(ts)) from t"),
        ("sum_status", "select sum(status) from t"),
        ("sum_bytes", "select sum(bytes_read) from t"),
        ("sum_port", "select sum(client_port) from t"),
        ("backends", "select count(distinct backend) from t"),
        ("header_items", "select sum({lsize}(req_headers)) from t"),
        ("first", "select {us}(ts), client_ip, client_port, backend, server, status, total_ms, method, path "
                  "from t order by ts, client_ip, client_port limit 1"),
    ],
    "tcp": [
        ("min_ts", "select {us}(min(ts)) from t"),
        ("sum_bytes", "select sum(bytes_read) from t"),
        ("sum_total_ms", "select sum(total_ms) from t"),
    ],
    "app": [
        ("message_chars", "select sum(length(message)) from t"),
        ("field_entries", "select sum({msize}(fields)) from t"),
        ("with_at", "select count(*) from t where {msize}(fields) > 0 and fields['at'] is not null"),
    ],
    "rejects": [
        ("raw_bytes", "select sum(octet_length(raw)) from t"),
        ("reasons", "select count(distinct reason) from t"),
    ],
    "windows": [
        ("requests", "select sum(requests) from t"),
        ("total_count", "select sum(total_count) from t"),
        ("total_hist_n", "select sum(b.n) from (select {explode}(total_hist) as b from t)"),
        ("status_entries", "select sum({msize}(status_counts)) from t"),
        ("min_start", "select {us}(min(window_start)) from t"),
    ],
    "metrics": [
        ("kinds", "select count(distinct kind) from t"),
        ("measure_sum", "select round(sum(value), 3) from t where kind = 'measure'"),
        ("with_source", "select count(*) from t where source is not null"),
    ],
}

def plain(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if hasattr(v, "__float__") and not isinstance(v, (int, float)):
        return float(v)
    return v

def unsigned(t):
    if pa.types.is_unsigned_integer(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return unsigned(t.value_type)
    if pa.types.is_map(t):
        return unsigned(t.key_type) or unsigned(t.item_type)
    if pa.types.is_struct(t):
        return any(unsigned(t.field(i).type) for i in range(t.num_fields))
    return False

out = {"pyarrow": {}, "duckdb": {}, "spark": {}}
con = duckdb.connect()
spark = (SparkSession.builder.master("local[1]").appName("weir-readers")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "1")
         # size(null) is null, as in DuckDB, not -1.
         .config("spark.sql.legacy.sizeOfNull", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for table in TABLES:
    path = os.path.join(spool, table)
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    con.register("arrow_t", t)
    out["pyarrow"][table] = {
        "count": t.num_rows,
        "types": {c: str(t.schema.field(c).type) for c in TYPED[table]},
        "unsigned": [f.name for f in t.schema if unsigned(f.type)],
        "partitions": [n for n in ("date", "hour") if n in t.schema.names],
        # pyarrow's own answers; the SQL below runs on its table through DuckDB's Arrow scan.
        "values": {k: [plain(v) for v in con.execute(q.format(us="epoch_us", msize="cardinality", lsize="len", explode="unnest")
                                                        .replace(" from t", " from arrow_t")).fetchall()[0]]
                   for k, q in VALUES[table]},
    }
    rel = f"read_parquet('{os.path.join(path, '**', '*.parquet')}', hive_partitioning = true)"
    con.execute(f"create or replace view t as select * from {rel}")
    described = {r[0]: r[1] for r in con.execute("describe t").fetchall()}
    out["duckdb"][table] = {
        "count": con.execute("select count(*) from t").fetchone()[0],
        "types": {c: described[c] for c in TYPED[table]},
        "unsigned": [c for c, ty in described.items() if "UINT" in ty or "UBIGINT" in ty
                     or "USMALLINT" in ty or "UTINYINT" in ty or "UHUGEINT" in ty],
        "partitions": [n for n in ("date", "hour") if n in described],
        "values": {k: [plain(v) for v in con.execute(q.format(us="epoch_us", msize="cardinality", lsize="len", explode="unnest")).fetchall()[0]]
                   for k, q in VALUES[table]},
    }
    df = spark.read.parquet(path)
    df.createOrReplaceTempView("t")
    types = dict(df.dtypes)
    out["spark"][table] = {
        "count": df.count(),
        "types": {c: types[c] for c in TYPED[table]},
        "unsigned": [],
        "partitions": [n for n in ("date", "hour") if n in types],
        "values": {k: [plain(v) for v in spark.sql(q.format(us="unix_micros", msize="size", lsize="size", explode="explode")).first()]
                   for k, q in VALUES[table]},
    }
spark.stop()
print(json.dumps(out))
"#;

/// Whether python3 has pyarrow, DuckDB and pyspark, and Java is there for Spark; a failure
/// under CI when not.
fn readers_here() -> bool {
    let ok = |cmd: &mut Command| {
        cmd.stdin(Stdio::null())
            .output_within(PROCESS_TIMEOUT)
            .is_ok_and(|o| o.status.success())
    };
    if !ok(Command::new("python3").args(["-c", "import pyarrow, duckdb, pyspark"])) {
        skip_without(
            "python3 with pyarrow, duckdb and pyspark",
            "pip install pyarrow duckdb pyspark",
        );
        return false;
    }
    if !ok(Command::new("java").arg("-version")) {
        skip_without("java (for Spark)", "apt-get install openjdk-17-jre-headless");
        return false;
    }
    true
}

/// A number the parser gives as an integer or an option of one; `None` counts as 0, as SQL's
/// `sum` skips nulls.
fn int(v: Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// What the parser says each table must hold: counts and the sums the readers compute.
fn expected(log: &[u8]) -> Value {
    let opts = ParseOptions {
        zone: Zone::UTC,
        year: civil_from_micros(now_micros()).0,
        ..ParseOptions::default()
    };
    let (mut requests, mut tcp, mut app, mut rejects) = (0i64, 0i64, 0i64, 0i64);
    let (mut min_ts, mut max_ts, mut sum_status, mut sum_bytes, mut sum_port) = (i64::MAX, i64::MIN, 0, 0, 0);
    let (mut tcp_min_ts, mut tcp_bytes, mut raw_bytes) = (i64::MAX, 0, 0);
    let (mut metrics, mut measure_sum, mut with_source) = (0i64, 0f64, 0i64);
    for raw in log.strip_suffix(b"\n").unwrap_or(log).split(|&b| b == b'\n') {
        let line = parse_line(raw, &opts);
        weir_ingest::l2met::LineMetrics::of_line(&line).for_each(|m| {
            metrics += 1;
            if m.kind == weir_model::MetricKind::Measure {
                measure_sum += m.value;
            }
            with_source += i64::from(m.source.is_some());
        });
        match line.record {
            Record::Http(r) => {
                requests += 1;
                min_ts = min_ts.min(r.accept_ts);
                max_ts = max_ts.max(r.accept_ts);
                sum_status += int(json!(r.status));
                sum_bytes += int(json!(r.bytes_read));
                sum_port += int(json!(r.client.port));
            }
            Record::Tcp(r) => {
                tcp += 1;
                tcp_min_ts = tcp_min_ts.min(r.accept_ts);
                tcp_bytes += int(json!(r.bytes_read));
            }
            Record::App(_) => app += 1,
            Record::Reject(_) => {
                rejects += 1;
                raw_bytes += raw.len() as i64;
            }
        }
    }
    json!({
        "requests": {"count": requests, "min_ts": [min_ts], "max_ts": [max_ts],
                     "sum_status": [sum_status], "sum_bytes": [sum_bytes], "sum_port": [sum_port]},
        "tcp": {"count": tcp, "min_ts": [tcp_min_ts], "sum_bytes": [tcp_bytes]},
        "app": {"count": app},
        "rejects": {"count": rejects, "raw_bytes": [raw_bytes]},
        // Every request is in exactly one window row.
        "windows": {"requests": [requests]},
        "metrics": {"count": metrics, "kinds": [3], "measure_sum": [(measure_sum * 1000.0).round() / 1000.0],
                    "with_source": [with_source]},
    })
}

/// The column types each reader must report.
fn types(reader: &str) -> Value {
    match reader {
        "pyarrow" => json!({
            "requests": {"ts": "timestamp[us, tz=UTC]", "status": "int16", "client_port": "int32",
                         "bytes_read": "int64", "backend": "string", "req_headers": "list<item: string>",
                         "fields": "map<string, string ('fields')>"},
            "tcp": {"ts": "timestamp[us, tz=UTC]", "client_port": "int32", "bytes_read": "int64",
                    "total_ms": "int32", "termination_state": "string", "fields": "map<string, string ('fields')>"},
            "app": {"ts": "timestamp[us, tz=UTC]", "severity": "int8", "message": "string",
                    "fields": "map<string, string ('fields')>"},
            "rejects": {"received_at": "timestamp[us, tz=UTC]", "reason": "string", "raw": "binary"},
            "windows": {"window_start": "timestamp[us, tz=UTC]", "window_secs": "int32", "requests": "int64",
                        "total_mean": "double", "status_counts": "map<int32, int64 ('status_counts')>",
                        "total_hist": "list<item: struct<ms: int32 not null, n: int64 not null>>"},
            "metrics": {"ts": "timestamp[us, tz=UTC]", "kind": "string", "name": "string", "value": "double",
                        "unit": "string", "source": "string"},
        }),
        "duckdb" => json!({
            "requests": {"ts": "TIMESTAMP WITH TIME ZONE", "status": "SMALLINT", "client_port": "INTEGER",
                         "bytes_read": "BIGINT", "backend": "VARCHAR", "req_headers": "VARCHAR[]",
                         "fields": "MAP(VARCHAR, VARCHAR)"},
            "tcp": {"ts": "TIMESTAMP WITH TIME ZONE", "client_port": "INTEGER", "bytes_read": "BIGINT",
                    "total_ms": "INTEGER", "termination_state": "VARCHAR", "fields": "MAP(VARCHAR, VARCHAR)"},
            "app": {"ts": "TIMESTAMP WITH TIME ZONE", "severity": "TINYINT", "message": "VARCHAR",
                    "fields": "MAP(VARCHAR, VARCHAR)"},
            "rejects": {"received_at": "TIMESTAMP WITH TIME ZONE", "reason": "VARCHAR", "raw": "BLOB"},
            "windows": {"window_start": "TIMESTAMP WITH TIME ZONE", "window_secs": "INTEGER", "requests": "BIGINT",
                        "total_mean": "DOUBLE", "status_counts": "MAP(INTEGER, BIGINT)",
                        "total_hist": "STRUCT(ms INTEGER, n BIGINT)[]"},
            "metrics": {"ts": "TIMESTAMP WITH TIME ZONE", "kind": "VARCHAR", "name": "VARCHAR", "value": "DOUBLE",
                        "unit": "VARCHAR", "source": "VARCHAR"},
        }),
        _ => json!({
            "requests": {"ts": "timestamp", "status": "smallint", "client_port": "int", "bytes_read": "bigint",
                         "backend": "string", "req_headers": "array<string>", "fields": "map<string,string>"},
            "tcp": {"ts": "timestamp", "client_port": "int", "bytes_read": "bigint", "total_ms": "int",
                    "termination_state": "string", "fields": "map<string,string>"},
            "app": {"ts": "timestamp", "severity": "tinyint", "message": "string", "fields": "map<string,string>"},
            "rejects": {"received_at": "timestamp", "reason": "string", "raw": "binary"},
            "windows": {"window_start": "timestamp", "window_secs": "int", "requests": "bigint",
                        "total_mean": "double", "status_counts": "map<int,bigint>",
                        "total_hist": "array<struct<ms:int,n:bigint>>"},
            "metrics": {"ts": "timestamp", "kind": "string", "name": "string", "value": "double",
                        "unit": "string", "source": "string"},
        }),
    }
}

#[test]
fn spool_reads_alike_in_pyarrow_duckdb_and_spark() {
    if !readers_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (log, spool) = (dir.path().join("mix.log"), dir.path().join("spool"));
    stdout_of(
        Command::new(weir())
            .args(["gen", "--kind", "mix", "--count", "3000", "--seed", "11", "--to"])
            .arg(&log),
    );
    let mut data = std::fs::read(&log).unwrap();
    data.extend_from_slice(
        b"not a log line\n\xff\xfe binary junk\n<13>Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:\n",
    );
    std::fs::write(&log, &data).unwrap();
    stdout_of(
        Command::new(weir())
            .args(["import", "--node", "readers", "--spool"])
            .arg(&spool)
            .arg(&log),
    );
    check(&spool, &expected(&data));
}

fn check(spool: &Path, want: &Value) {
    let got: Value = serde_json::from_slice(&stdout_of(
        Command::new("python3").args(["-c", READERS]).arg(spool),
    ))
    .expect("the reader script prints JSON");
    for table in ["requests", "tcp", "app", "rejects", "windows", "metrics"] {
        let reference = &got["pyarrow"][table];
        assert!(
            reference["count"].as_i64().unwrap() > 0,
            "{table}: the input fills every table"
        );
        for (key, value) in want[table].as_object().unwrap() {
            let have = if key == "count" {
                &reference["count"]
            } else {
                &reference["values"][key]
            };
            assert_eq!(have, value, "{table}.{key}: pyarrow against the parser");
        }
        for reader in ["pyarrow", "duckdb", "spark"] {
            let r = &got[reader][table];
            assert_eq!(r["count"], reference["count"], "{reader} {table}: row count");
            assert_eq!(r["types"], types(reader)[table], "{reader} {table}: column types");
            assert_eq!(r["unsigned"], json!([]), "{reader} {table}: unsigned columns");
            assert_eq!(
                r["partitions"],
                json!(["date", "hour"]),
                "{reader} {table}: hive partitions"
            );
            assert_eq!(r["values"], reference["values"], "{reader} {table}: values");
        }
    }
    let w = &got["pyarrow"]["windows"]["values"];
    assert_eq!(
        w["total_hist_n"], w["total_count"],
        "windows: histogram buckets add up to their count"
    );
    let app = &got["pyarrow"]["app"]["values"];
    assert!(
        app["field_entries"][0].as_i64().unwrap() > 0,
        "app: fields are filled"
    );
    let first = &got["pyarrow"]["requests"]["values"]["first"];
    assert_eq!(
        first[0], want["requests"]["min_ts"][0],
        "requests: the first row is the earliest request"
    );
}
