//! Custom `log-format`s as an operator writes them, through the real HAProxy 2.6: five
//! frontends send the same requests to the same backends, each logging in its own layout:
//!
//! - `fe_default`: nothing of its own, so `option httplog` from `defaults` (with captures);
//! - `fe_reorder`: status, bytes and termination state first, the connection counters separated
//!   by spaces;
//! - `fe_kv`: `key=value` pairs, with the request split by `%HM %HP %HQ %HV`;
//! - `fe_json`: a JSON object written as literal text around the variables;
//! - `fe_ids`: httplog plus `%ID` (a `unique-id-format`), `%[capture.req.hdr(0)]`,
//!   `%[ssl_fc]`, cookies and both capture blocks.
//!
//! HAProxy logs every line twice: to `weir serve --haproxy-config` over UDP and to the test's
//! own collector, whose file then goes through `weir import --haproxy-config`. Both spools are
//! read back with pyarrow, and:
//! - every line is a row and none is a reject;
//! - every field of every row equals the value in its line's text, as an oracle written here
//!   reads it (regular expressions and serde_json, not weir's parser);
//! - each custom frontend's mix of (status, bytes, path, termination state) equals the default
//!   frontend's.
//!
//! Skipped without `haproxy` or pyarrow unless `CI` is set.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{json, Value};
use serve_support::{weir_bin, WeirServe};
use support::{exchange, find_haproxy, free_port, skip_unless_ci, spawn_backend, Haproxy, LogCollector};

/// The frontends and the format lines each adds to the shared routing rules.
const FRONTENDS: [(&str, &str); 5] = [
    (
        "fe_default",
        "    capture request header Host len 32\n    capture request header User-Agent len 64\n    \
         capture response header Content-Type len 32\n",
    ),
    (
        "fe_reorder",
        "    log-format \"%ST %B %tsc [%tr] %ci:%cp %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ac %fc %bc %sc %rc \
         %sq %bq %{+Q}r\"\n",
    ),
    (
        "fe_kv",
        "    log-format \"client=%ci port=%cp date=%tr fe=%ft be=%b srv=%s TR=%TR Tw=%Tw Tc=%Tc \
         Tr=%Tr Ta=%Ta status=%ST bytes=%B term=%tsc conns=%ac/%fc/%bc/%sc/%rc queues=%sq/%bq \
         method=%HM path=%HP query=%HQ version=%HV\"\n",
    ),
    (
        "fe_json",
        "    log-format '{\"client\":\"%ci\",\"port\":%cp,\"date\":\"%tr\",\"frontend\":\"%ft\",\
         \"backend\":\"%b\",\"server\":\"%s\",\"timers\":\"%TR/%Tw/%Tc/%Tr/%Ta\",\"status\":%ST,\
         \"bytes\":%B,\"termination\":\"%tsc\",\"request\":%{+Q}r}'\n",
    ),
    (
        "fe_ids",
        "    unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n    \
         capture request header Host len 32\n    capture request header User-Agent len 64\n    \
         capture response header Content-Type len 32\n    \
         log-format \"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc \
         %ac/%fc/%bc/%sc/%rc %sq/%bq id=%ID host=%[capture.req.hdr(0)] tls=%[ssl_fc] %hr %hs \
         %{+Q}r\"\n",
    ),
];

/// The paths sent to every frontend, one way a request ends each: 200, 404, 302 from the
/// server, 302 redirect, 403 deny, 503 refused, 504 server timeout (`sH--`).
const PATHS: [&str; 7] = [
    "/",
    "/missing",
    "/moved",
    "/old",
    "/forbidden",
    "/refused",
    "/slow",
];

/// Rounds of [`PATHS`] per frontend.
const ROUNDS: usize = 3;

/// A user agent with the three characters HAProxy escapes in captures.
const USER_AGENT: &str = "weir-formats/1.0 (a|b) {c}";

fn haproxy_config(log_ports: [u16; 2], probe: u16, ports: &[u16], backend: &str, refused: u16) -> String {
    let mut cfg = format!(
        "global\n    log 127.0.0.1:{} local0\n    log 127.0.0.1:{} local0\n    nbthread 1\n\n\
         defaults\n    mode http\n    log global\n    option httplog\n    retries 0\n    \
         timeout connect 1s\n    timeout client 5s\n    timeout server 500ms\n\n\
         frontend fe_probe\n    bind 127.0.0.1:{probe}\n    no log\n    http-request return status 200\n\n",
        log_ports[0], log_ports[1]
    );
    for ((name, format), port) in FRONTENDS.iter().zip(ports) {
        cfg.push_str(&format!(
            "frontend {name}\n    bind 127.0.0.1:{port}\n{format}    \
             http-request deny if {{ path_beg /forbidden }}\n    \
             http-request redirect location /new code 302 if {{ path /old }}\n    \
             use_backend be_refused if {{ path_beg /refused }}\n    default_backend be_app\n\n"
        ));
    }
    cfg.push_str(&format!(
        "backend be_app\n    server app1 {backend}\n\nbackend be_refused\n    server refused1 127.0.0.1:{refused}\n"
    ));
    cfg
}

// ------------------------------------------------------------------------------------------
// The oracle: what each line says, read without weir.

/// HAProxy's `#XX` escapes in a capture, decoded.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 capture")
}

/// `30/Nov/2026:11:58:23.966` (HAProxy ran with TZ=UTC) as microseconds since the epoch.
fn date_micros(s: &str) -> i64 {
    let re = Regex::new(r"^(\d{2})/(\w{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})\.(\d{3})$").unwrap();
    let c = re.captures(s).unwrap_or_else(|| panic!("date {s:?}"));
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let n = |i: usize| c[i].parse::<i64>().unwrap();
    let month = months.iter().position(|m| *m == &c[2]).unwrap() as i64 + 1;
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, d) = (if month <= 2 { n(3) - 1 } else { n(3) }, month, n(1));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + n(4) * 3600 + n(5) * 60 + n(6)) * 1000 + n(7)) * 1000
}

/// A timer as logged: `-1` is null.
fn timer(s: &str) -> Value {
    let v: i64 = s.parse().unwrap_or_else(|_| panic!("timer {s:?}"));
    if v < 0 {
        Value::Null
    } else {
        json!(v)
    }
}

/// The request line `METHOD URI VERSION` split as the `requests` columns hold it.
fn request_parts(r: &str, want: &mut BTreeMap<&'static str, Value>) {
    let mut it = r.split(' ');
    let (method, uri, version) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, json!(q)),
        None => (uri, Value::Null),
    };
    want.insert("method", json!(method));
    want.insert("path", json!(path));
    want.insert("query", query);
    want.insert("http_version", json!(version));
}

/// The columns every layout fills, from named groups of the same names.
fn common(c: &regex::Captures<'_>, want: &mut BTreeMap<&'static str, Value>) {
    want.insert("client_ip", json!(&c["ip"]));
    want.insert("client_port", json!(c["port"].parse::<i64>().unwrap()));
    want.insert("ts", json!(date_micros(&c["date"])));
    want.insert("frontend", json!(&c["fe"]));
    want.insert("backend", json!(&c["be"]));
    want.insert("server", json!(&c["srv"]));
    for (col, g) in [
        ("request_ms", "TR"),
        ("queue_ms", "Tw"),
        ("connect_ms", "Tc"),
        ("response_ms", "Tr"),
        ("total_ms", "Ta"),
    ] {
        want.insert(col, timer(&c[g]));
    }
    want.insert("status", json!(c["st"].parse::<i64>().unwrap()));
    want.insert("bytes_read", json!(c["B"].parse::<i64>().unwrap()));
    want.insert("termination_state", json!(&c["term"]));
    for (col, g) in [
        ("actconn", "ac"),
        ("feconn", "fc"),
        ("beconn", "bc"),
        ("srv_conn", "sc"),
        ("retries", "rc"),
        ("srv_queue", "sq"),
        ("backend_queue", "bq"),
    ] {
        if let Some(v) = c.name(g) {
            want.insert(col, json!(v.as_str().parse::<i64>().unwrap()));
        }
    }
    for (col, g) in [("req_headers", "hr"), ("resp_headers", "hs")] {
        if let Some(v) = c.name(g) {
            let values: Vec<String> = v.as_str().split('|').map(unescape).collect();
            want.insert(col, json!(values));
        }
    }
    for (col, g) in [("req_cookie", "CC"), ("resp_cookie", "CS")] {
        if let Some(v) = c.name(g) {
            want.insert(
                col,
                if v.as_str() == "-" {
                    Value::Null
                } else {
                    json!(v.as_str())
                },
            );
        }
    }
    if let Some(r) = c.name("r") {
        request_parts(r.as_str(), want);
    }
}

/// Reads one message (the line after its syslog header) by the layout of its frontend, which
/// is the one whose pattern matches; returns the frontend and the expected columns.
struct Oracle {
    patterns: Vec<(&'static str, Regex)>,
}

impl Oracle {
    fn new() -> Oracle {
        let timers = r"(?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/(?P<Ta>-?\d+)";
        let conns = r"(?P<ac>\d+)/(?P<fc>\d+)/(?P<bc>\d+)/(?P<sc>\d+)/(?P<rc>\d+) (?P<sq>\d+)/(?P<bq>\d+)";
        let head =
            r"(?P<ip>[^ ]+):(?P<port>\d+) \[(?P<date>[^\]]+)\] (?P<fe>\S+) (?P<be>[^/ ]+)/(?P<srv>\S+)";
        let p = |s: String| Regex::new(&s).unwrap();
        Oracle {
            patterns: vec![
                (
                    "fe_default",
                    p(format!(
                        r#"^{head} {timers} (?P<st>-?\d+) (?P<B>\d+) (?P<CC>\S+) (?P<CS>\S+) (?P<term>\S{{4}}) {conns} \{{(?P<hr>[^}}]*)\}} \{{(?P<hs>[^}}]*)\}} "(?P<r>[^"]*)"$"#
                    )),
                ),
                (
                    "fe_reorder",
                    p(format!(
                        r#"^(?P<st>-?\d+) (?P<B>\d+) (?P<term>\S{{4}}) \[(?P<date>[^\]]+)\] (?P<ip>[^ ]+):(?P<port>\d+) (?P<fe>\S+) (?P<be>[^/ ]+)/(?P<srv>\S+) {timers} (?P<ac>\d+) (?P<fc>\d+) (?P<bc>\d+) (?P<sc>\d+) (?P<rc>\d+) (?P<sq>\d+) (?P<bq>\d+) "(?P<r>[^"]*)"$"#
                    )),
                ),
                (
                    "fe_kv",
                    p(format!(
                        r"^client=(?P<ip>\S+) port=(?P<port>\d+) date=(?P<date>\S+) fe=(?P<fe>\S+) be=(?P<be>\S+) srv=(?P<srv>\S+) TR=(?P<TR>-?\d+) Tw=(?P<Tw>-?\d+) Tc=(?P<Tc>-?\d+) Tr=(?P<Tr>-?\d+) Ta=(?P<Ta>-?\d+) status=(?P<st>-?\d+) bytes=(?P<B>\d+) term=(?P<term>\S+) conns={} method=(?P<method>\S+) path=(?P<path>\S+) query=(?P<query>\S*) version=(?P<version>\S+)$",
                        conns.replace(" (?P<sq>", " queues=(?P<sq>")
                    )),
                ),
                (
                    "fe_ids",
                    p(format!(
                        r#"^{head} {timers} (?P<st>-?\d+) (?P<B>\d+) (?P<CC>\S+) (?P<CS>\S+) (?P<term>\S{{4}}) {conns} id=(?P<ID>\S+) host=(?P<host>\S+) tls=(?P<tls>\S+) \{{(?P<hr>[^}}]*)\}} \{{(?P<hs>[^}}]*)\}} "(?P<r>[^"]*)"$"#
                    )),
                ),
            ],
        }
    }

    fn read(&self, msg: &str) -> (&'static str, BTreeMap<&'static str, Value>) {
        let mut want = BTreeMap::new();
        if msg.starts_with('{') {
            let v: Value = serde_json::from_str(msg).unwrap_or_else(|e| panic!("{e}: {msg}"));
            let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {msg}")).to_owned();
            want.insert("client_ip", json!(s("client")));
            want.insert("client_port", v["port"].clone());
            want.insert("ts", json!(date_micros(&s("date"))));
            want.insert("frontend", json!(s("frontend")));
            want.insert("backend", json!(s("backend")));
            want.insert("server", json!(s("server")));
            let t: Vec<String> = s("timers").split('/').map(str::to_owned).collect();
            for (col, v) in ["request_ms", "queue_ms", "connect_ms", "response_ms", "total_ms"]
                .iter()
                .zip(&t)
            {
                want.insert(col, timer(v));
            }
            want.insert("status", v["status"].clone());
            want.insert("bytes_read", v["bytes"].clone());
            want.insert("termination_state", json!(s("termination")));
            request_parts(&s("request"), &mut want);
            return ("fe_json", want);
        }
        let matching: Vec<_> = self.patterns.iter().filter(|(_, re)| re.is_match(msg)).collect();
        assert_eq!(
            matching.len(),
            1,
            "the oracle reads {msg:?} in {} layouts",
            matching.len()
        );
        let (name, re) = matching[0];
        let c = re.captures(msg).unwrap();
        common(&c, &mut want);
        if *name == "fe_kv" {
            want.insert("method", json!(&c["method"]));
            want.insert("path", json!(&c["path"]));
            let q = &c["query"];
            want.insert(
                "query",
                if q.is_empty() {
                    Value::Null
                } else {
                    json!(q.trim_start_matches('?'))
                },
            );
            want.insert("http_version", json!(&c["version"]));
        }
        if *name == "fe_ids" {
            want.insert(
                "fields",
                json!({"ID": &c["ID"], "capture.req.hdr(0)": &c["host"], "ssl_fc": &c["tls"]}),
            );
        }
        (name, want)
    }
}

/// The message of a syslog line as HAProxy 2.6 sends it by default (`<PRI>Mon DD HH:MM:SS
/// haproxy[PID]: message`).
fn message(line: &str) -> &str {
    let at = line.find("]: ").unwrap_or_else(|| panic!("no tag in {line:?}"));
    line[at + 3..].trim_end_matches('\n')
}

// ------------------------------------------------------------------------------------------
// The spool, read by pyarrow.

const READER: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, os
spool = sys.argv[1]
out = {}
for table in ("requests", "rejects", "tcp", "app"):
    path = os.path.join(spool, table)
    if not os.path.isdir(path):
        out[table] = []
        continue
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    cols = {}
    for name in t.schema.names:
        col = t.column(name)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.int64())
        values = col.to_pylist()
        if pa.types.is_map(col.type):
            values = [None if v is None else {k: x for k, x in v} for v in values]
        if pa.types.is_binary(col.type):
            values = [v.decode("utf-8", "replace") for v in values]
        cols[name] = values
    out[table] = [dict(zip(cols, r)) for r in zip(*cols.values())]
print(json.dumps(out))
"#;

fn read_spool(spool: &Path) -> BTreeMap<String, Vec<BTreeMap<String, Value>>> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .arg(spool)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reader output")
}

fn pyarrow_here() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_unless_ci("python3 with pyarrow");
    }
    ok
}

/// What tells a request's row from the others: its frontend, client port and accept date.
/// The client port alone may come round again within a frontend (the kernel reuses a port
/// whose connection HAProxy closed first), not within the same millisecond.
type RowKey = (String, i64, i64);

fn row_key<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> RowKey {
    let number = |c: &str| get(c).and_then(Value::as_i64).unwrap_or(-1);
    (
        get("frontend")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        number("client_port"),
        number("ts"),
    )
}

/// Checks a spool against the oracle's rows (keyed by [`row_key`]); returns each frontend's
/// mix of (status, bytes, path, termination state).
fn check_spool(
    what: &str,
    spool: &Path,
    want: &BTreeMap<RowKey, BTreeMap<&'static str, Value>>,
) -> BTreeMap<String, Vec<(i64, i64, String, String)>> {
    let tables = read_spool(spool);
    let rejects = &tables["rejects"];
    assert!(
        rejects.is_empty(),
        "{what}: {} rejects: {rejects:?}",
        rejects.len()
    );
    let rows = &tables["requests"];
    assert_eq!(rows.len(), want.len(), "{what}: rows in requests");
    let mut mismatches = Vec::new();
    let mut mix: BTreeMap<String, Vec<(i64, i64, String, String)>> = BTreeMap::new();
    for row in rows {
        let key = row_key(|c| row.get(c));
        let Some(expected) = want.get(&key) else {
            mismatches.push(format!("{what}: a row no line asked for: {row:?}"));
            continue;
        };
        for (col, value) in expected {
            let got = row.get(*col).unwrap_or(&Value::Null);
            if got != value {
                mismatches.push(format!("{what} {key:?} {col}: row has {got}, line says {value}"));
            }
        }
        mix.entry(key.0.clone()).or_default().push((
            row["status"].as_i64().unwrap_or(-1),
            row["bytes_read"].as_i64().unwrap_or(-1),
            row["path"].as_str().unwrap_or_default().to_owned(),
            row["termination_state"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    for v in mix.values_mut() {
        v.sort();
    }
    mix
}

#[test]
fn custom_log_formats_become_rows_through_serve_and_import() {
    let Some(haproxy_bin) = find_haproxy() else {
        skip_unless_ci("haproxy");
        return;
    };
    if !pyarrow_here() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let dir = tempfile::tempdir().expect("temp dir");

    let mut collector = LogCollector::bind().expect("bind the log collector");
    let probe = free_port();
    let ports: Vec<u16> = FRONTENDS.iter().map(|_| free_port()).collect();
    let backend = spawn_backend();
    let refused = free_port();

    // weir serve reads the same haproxy.cfg HAProxy runs: its log port is known only once
    // weir listens, so the file is written with a placeholder first and completed after.
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg_path,
        haproxy_config(
            [1, collector.port()],
            probe,
            &ports,
            &backend.to_string(),
            refused,
        ),
    )
    .expect("write haproxy.cfg");
    let cfg_arg = cfg_path.display().to_string();
    let mut weir = WeirServe::start_with(dir.path(), "", &["--haproxy-config", &cfg_arg]);
    let config = haproxy_config(
        [weir.udp.port(), collector.port()],
        probe,
        &ports,
        &backend.to_string(),
        refused,
    );
    std::fs::write(&cfg_path, &config).expect("write haproxy.cfg");

    let mut proxy = Haproxy::start(&haproxy_bin, &cfg_path, dir.path()).expect("start haproxy");
    if let Err(e) = proxy.wait_ready(probe, deadline) {
        let out = std::fs::read_to_string(dir.path().join("haproxy.out")).unwrap_or_default();
        panic!("{e}\n--- haproxy output ---\n{out}\n--- config ---\n{config}");
    }

    // The same requests, in the same order, to every frontend.
    let mut sent = 0;
    for round in 0..ROUNDS {
        for path in PATHS {
            for port in &ports {
                let request = format!(
                    "GET {path}?round={round} HTTP/1.1\r\nHost: weir.test\r\nUser-Agent: {USER_AGENT}\r\n\
                     Cookie: sid=abc\r\nConnection: close\r\n\r\n"
                );
                exchange(*port, request.as_bytes()).expect("request through haproxy");
                sent += 1;
            }
        }
    }
    let logged = collector.collect_until(deadline, |d| {
        d.iter().filter(|l| l.windows(7).any(|w| w == b"?round=")).count() == sent
    });
    let lines: Vec<String> = collector
        .datagrams
        .iter()
        .map(|d| String::from_utf8(d.clone()).expect("utf-8 log line"))
        .filter(|l| l.contains("?round="))
        .collect();
    assert!(
        logged,
        "HAProxy logged {} of {sent} requests:\n{}",
        lines.len(),
        lines.join("")
    );

    // The oracle's reading of every line.
    let oracle = Oracle::new();
    let mut want: BTreeMap<RowKey, BTreeMap<&'static str, Value>> = BTreeMap::new();
    let mut per_frontend: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        let (layout, row) = oracle.read(message(l));
        assert_eq!(row["frontend"], json!(layout), "{l}");
        *per_frontend.entry(layout).or_default() += 1;
        let key = row_key(|c| row.get(c));
        assert_eq!(key.0, layout, "{l}");
        assert!(
            want.insert(key, row).is_none(),
            "two lines for one connection: {l}"
        );
    }
    for (name, _) in FRONTENDS {
        assert_eq!(
            per_frontend.get(name),
            Some(&(ROUNDS * PATHS.len())),
            "{name}: {per_frontend:?}"
        );
    }

    // Through `weir serve` over UDP: stop it (it publishes everything), then read its spool.
    drop(proxy);
    weir.stop(deadline);
    let served = check_spool("serve", &weir.spool, &want);

    // Through `weir import` of the collector's file.
    let log_path = dir.path().join("haproxy.log");
    let text: String = lines
        .iter()
        .map(|l| format!("{}\n", l.trim_end_matches('\n')))
        .collect();
    std::fs::write(&log_path, text).expect("write the captured log");
    let spool = dir.path().join("imported");
    let out = Command::new(weir_bin())
        .arg("import")
        .arg("--haproxy-config")
        .arg(&cfg_path)
        .arg("--spool")
        .arg(&spool)
        .arg(&log_path)
        .output()
        .expect("run weir import");
    assert!(
        out.status.success(),
        "weir import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = check_spool("import", &spool, &want);
    assert_eq!(served, imported, "serve and import file the same lines alike");

    // Every custom frontend saw what the default one saw.
    let reference = &served["fe_default"];
    assert_eq!(reference.len(), ROUNDS * PATHS.len());
    for (name, _) in &FRONTENDS[1..] {
        assert_eq!(
            &served[*name], reference,
            "{name}'s mix differs from fe_default's"
        );
    }
}
