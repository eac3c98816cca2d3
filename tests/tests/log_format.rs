//! HAProxy's log-format language end to end: `weir import --log-format` and
//! `--haproxy-config` on files, with the rows read back by pyarrow; and the built-in layouts as
//! compiled formats agreeing with the hand-tuned parser on every request of the corpus
//! (`tests/corpus/haproxy/`) and of `weir gen`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use weir_e2e::{root, weir_bin as weir};
use weir_ingest::haproxy::logformat::{Builtin, LogFormat};
use weir_ingest::syslog::parse_header;
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{Fields, Record};

/// Prints the `requests` rows of a spool as JSON: the columns named on the command line, with
/// `fields` as an object (`null` for a value logged as absent).
const ROWS: &str = r#"
import json, sys
import pyarrow.dataset as ds
t = ds.dataset(sys.argv[1] + "/requests", format="parquet", partitioning="hive").to_table()
rows = []
for r in t.select(sys.argv[2:]).to_pylist():
    if "fields" in r:
        r["fields"] = dict(r["fields"] or [])
    rows.append(r)
rows.sort(key=lambda r: json.dumps(r, default=str))
print(json.dumps(rows, default=str))
"#;

fn pyarrow() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "python3 with pyarrow is required"
    );
    ok
}

fn import(spool: &Path, args: &[&str], file: &Path) -> Output {
    Command::new(weir())
        .arg("import")
        .arg("--spool")
        .arg(spool)
        .args(args)
        .arg(file)
        .output()
        .expect("running weir import")
}

fn rows(spool: &Path, columns: &[&str]) -> Vec<Value> {
    let out = Command::new("python3")
        .args(["-c", ROWS])
        .arg(spool)
        .args(columns)
        .output()
        .expect("running python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn import_with_a_key_value_log_format() {
    if !pyarrow() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kv.log");
    let format = r#"%{+Q}o client=%ci:%cp fe=%ft be=%b/%s st=%ST bytes=%B t=%TR/%Tw/%Tc/%Tr/%Ta id=%ID ua=%[capture.req.hdr(1)] req=%r date=%tr"#;
    std::fs::write(
        &file,
        concat!(
            "<134>Nov 22 01:22:06 lb1 haproxy[1]: client=\"10.0.0.1\":5000 fe=\"fe_kv\" be=\"be\"/\"s1\" st=200 bytes=+10 t=1/0/2/3/+9 id=\"r-1\" ua=\"curl/8 (x)\" req=\"GET /a?b=1 HTTP/1.1\" date=22/Nov/2026:01:22:06.958\n",
            "<134>Nov 22 01:22:07 lb1 haproxy[1]: client=\"::1\":5001 fe=\"fe_kv\" be=\"be\"/\"s2\" st=503 bytes=0 t=0/-1/-1/-1/4 id=\"-\" ua=\"\" req=\"POST /b HTTP/1.1\" date=22/Nov/2026:01:22:07.000\n",
            "<134>Nov 22 01:22:08 lb1 haproxy[1]: client=\"10.0.0.1\":5000 fe=\"fe_kv\" something else entirely\n",
        ),
    )
    .unwrap();
    let spool = dir.path().join("spool");
    let out = import(&spool, &["--log-format", format], &file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = rows(
        &spool,
        &[
            "client_ip",
            "client_port",
            "frontend",
            "server",
            "status",
            "bytes_read",
            "bytes_logasap",
            "queue_ms",
            "total_ms",
            "path",
            "query",
            "fields",
        ],
    );
    let want: Value = serde_json::json!([
        {"client_ip": "10.0.0.1", "client_port": 5000, "frontend": "fe_kv", "server": "s1", "status": 200,
         "bytes_read": 10, "bytes_logasap": true, "queue_ms": 0, "total_ms": 9, "path": "/a", "query": "b=1",
         "fields": {"ID": "r-1", "capture.req.hdr(1)": "curl/8 (x)"}},
        {"client_ip": "::1", "client_port": 5001, "frontend": "fe_kv", "server": "s2", "status": 503,
         "bytes_read": 0, "bytes_logasap": false, "queue_ms": null, "total_ms": 4, "path": "/b", "query": null,
         "fields": {"ID": null, "capture.req.hdr(1)": null}},
    ]);
    assert_eq!(Value::Array(got), want);
    // The third line matched no format: a reject that says so.
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("rejected 1 (format_mismatch)"), "{summary}");

    // A bad format is a usage error that names the item.
    let out = import(&spool, &["--log-format", "%ci %Tx"], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("%Tx"));
}

/// The lines HAProxy 2.6.12 wrote for `samples/haproxy/haproxy-2.6-custom-formats.cfg`: each
/// frontend's line read by its own format.
#[test]
fn import_with_the_haproxy_config() {
    if !pyarrow() {
        return;
    }
    let samples = root().join("samples/haproxy");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let cfg = samples.join("haproxy-2.6-custom-formats.cfg");
    let out = import(
        &spool,
        &["--haproxy-config", cfg.to_str().unwrap()],
        &samples.join("haproxy-2.6-custom-formats.log"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = rows(
        &spool,
        &[
            "frontend",
            "status",
            "path",
            "bytes_logasap",
            "req_headers",
            "fields",
        ],
    );
    assert_eq!(got.len(), 5, "{got:?}");
    let by = |fe: &str, path: Option<&str>| {
        got.iter()
            .find(|r| r["frontend"] == fe && (path.is_none() || r["path"] == path.unwrap()))
            .unwrap_or_else(|| panic!("{fe} {path:?} in {got:?}"))
    };
    let fe1 = by("fe1", Some("/a/b"));
    assert_eq!(fe1["status"], 404);
    assert_eq!(
        fe1["req_headers"],
        serde_json::json!(["127.0.0.1:18090", "Mo\"zi|lla {x}"])
    );
    assert_eq!(
        fe1["fields"]["ID"],
        "7F000001:CAEC_7F000001:46AA_6B0D64EE_0000:4038"
    );
    // fe2 logs no frontend name; its format is the only one with these fields.
    let fe2 = by("", None);
    assert_eq!(fe2["path"], "/p");
    assert_eq!(fe2["fields"]["capture.req.hdr(0)"], "127.0.0.1:18091");
    assert_eq!(fe2["fields"]["ssl_fc"], "0");
    assert_eq!(by("fe3", None)["path"], "/c");
    assert_eq!(by("fe4", None)["bytes_logasap"], true);
}

fn opts() -> ParseOptions {
    ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    }
}

/// Every line the hand-tuned parser reads as a whole request or session is the same record
/// through the compiled built-in format; returns how many agreed and how many were left to the
/// hand-tuned parser's leniency (cut lines, suffixes after the request, `tag[pid]: `).
fn builtins_agree(lines: impl Iterator<Item = Vec<u8>>) -> (usize, usize) {
    let opts = opts();
    let compiled = Builtin::ALL.map(|b| (b, LogFormat::compile(b.format()).unwrap()));
    let format = |b: Builtin| &compiled.iter().find(|(x, _)| *x == b).unwrap().1;
    let (mut agreed, mut skipped) = (0, 0);
    for raw in lines {
        let line = parse_line(&raw, &opts);
        let Ok((header, _, msg)) = parse_header(&raw, &opts) else {
            continue;
        };
        let msg = msg.strip_suffix(b"\r").unwrap_or(msg);
        if msg
            .split(|&b| b == b' ')
            .next()
            .is_some_and(|w| w.ends_with(b"]:"))
        {
            continue;
        }
        let shown = String::from_utf8_lossy(&raw);
        match line.record {
            Record::Http(want) => {
                let b = match (want.clf, want.tls) {
                    (true, _) => Builtin::HttpLogClf,
                    (_, Some(t)) if t.fc_err.is_some() => Builtin::HttpsLog,
                    _ => Builtin::HttpLog,
                };
                let Some(Record::Http(mut got)) = format(b).parse(msg, &opts, header.timestamp) else {
                    skipped += 1;
                    assert!(
                        want.truncated || want.tls.is_some() || !msg.ends_with(b"\""),
                        "{b:?} did not read {shown}"
                    );
                    continue;
                };
                got.clf = want.clf;
                // The CLF capture lists, which the hand-tuned parser does not read, are fields.
                if want.clf {
                    assert_eq!(got.fields.names(), ["hrl", "hsl"]);
                    got.fields = Fields::EMPTY;
                }
                assert_eq!(got, want, "{b:?}: {shown}");
                agreed += 1;
            }
            Record::Tcp(want) => match format(Builtin::TcpLog).parse(msg, &opts, header.timestamp) {
                Some(Record::Tcp(got)) => {
                    assert_eq!(got, want, "{shown}");
                    agreed += 1;
                }
                // Anything after the queues is ignored by the hand-tuned parser.
                _ => skipped += 1,
            },
            _ => {}
        }
    }
    (agreed, skipped)
}

#[test]
fn compiled_builtins_agree_with_the_hand_tuned_parser_on_the_corpus() {
    let dir = root().join("tests/corpus/haproxy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let lines = files.iter().flat_map(|f| {
        std::fs::read(f)
            .unwrap()
            .split(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
    });
    let (agreed, skipped) = builtins_agree(lines);
    eprintln!("corpus: {agreed} lines agree, {skipped} left to the hand-tuned parser");
    assert!(
        agreed > 2000 && skipped < 50,
        "agreed {agreed}, skipped {skipped}"
    );
}

#[test]
fn compiled_builtins_agree_with_the_hand_tuned_parser_on_weir_gen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.log");
    let out = Command::new(weir())
        .args(["gen", "--count", "20000", "--seed", "1", "--to"])
        .arg(&file)
        .output()
        .expect("running weir gen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = std::fs::read(&file).unwrap();
    let (agreed, skipped) = builtins_agree(data.split(|&b| b == b'\n').map(<[u8]>::to_vec));
    eprintln!("weir gen: {agreed} lines agree, {skipped} left to the hand-tuned parser");
    assert!(
        agreed > 15_000 && skipped == 0,
        "agreed {agreed}, skipped {skipped}"
    );
}
