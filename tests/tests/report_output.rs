//! `weir report --format json` keeps types: counts and times are numbers, names are strings
//! even when they read like numbers, and a missing value is `null`; CSV of the same report
//! shows the same values as text.

use std::process::{Command, Stdio};

use weir_e2e::{weir_bin as weir, OutputWithin, PROCESS_TIMEOUT};

/// Two requests to a backend named `1e3` on a server named `007`: one ok, one with a `-1`
/// connect timer (so the means are over one request).
const LOG: &str = "\
Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:4000 [22/Nov/2026:01:22:06.100] fe 1e3/007 1/0/2/10/13 200 512 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"
Nov 22 01:22:07 lb1 haproxy[1]: 10.0.0.1:4001 [22/Nov/2026:01:22:07.100] fe 1e3/007 1/0/-1/-1/5 503 212 - - SC-- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\"
";

fn report(kind: &str, format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.log");
    std::fs::write(&path, LOG).unwrap();
    let out = Command::new(weir())
        .args(["report", kind, "--format", format])
        .arg(&path)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running weir report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_keeps_names_as_strings_and_numbers_as_numbers() {
    let v: serde_json::Value = serde_json::from_str(&report("servers", "json")).unwrap();
    let row = &v[0];
    assert_eq!(row["backend"], "1e3", "{row}");
    assert_eq!(row["server"], "007", "{row}");
    assert_eq!(row["requests"], 2, "{row}");
    assert_eq!(row["ok"], 1, "{row}");
    assert_eq!(row["ok_pct"], 50.0, "{row}");
    assert_eq!(row["avg_connect_ms"], 2.0, "{row}");

    let v: serde_json::Value = serde_json::from_str(&report("timers", "json")).unwrap();
    let connect = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["timer"] == "connect")
        .unwrap();
    assert_eq!(connect["count"], 1, "{connect}");
    assert_eq!(connect["max"], 2, "{connect}");

    let v: serde_json::Value = serde_json::from_str(&report("status", "json")).unwrap();
    assert_eq!(v[0]["status"], 200);
    assert_eq!(v[1]["count"], 1);
}

#[test]
fn csv_shows_the_same_values_as_text() {
    assert_eq!(
        report("servers", "csv"),
        "backend,server,1xx,2xx,3xx,4xx,5xx,other,requests,ok,ok_pct,avg_connect_ms,avg_response_ms\n\
         1e3,007,0,1,0,0,1,0,2,1,50.00,2.000,10.000\n"
    );
}
