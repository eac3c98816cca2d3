//! Heroku router lines are aggregated like HAProxy requests: `weir import` of the router corpus
//! gives windows of frontend `heroku_router`, backend the app's host and server the dyno, and
//! `weir query` answers per dyno with the router's own error codes counted.

use serde_json::Value;
use weir_e2e::{root, run_weir as weir};

#[test]
fn router_lines_are_queried_per_app_and_dyno() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let corpus = root().join("tests/corpus/heroku/router.log");
    weir(&["import", "--spool", spool, corpus.to_str().unwrap()]);
    let json = weir(&[
        "query",
        "--spool",
        spool,
        "--where",
        "frontend=heroku_router",
        "--by",
        "backend,server",
        "--timer",
        "response",
        "--format",
        "json",
    ]);
    let rows: Vec<Value> = serde_json::from_str(&json).expect("JSON rows");
    let find = |backend: &str, server: &str| {
        rows.iter()
            .find(|r| r["backend"] == backend && r["server"] == server)
            .unwrap_or_else(|| panic!("no {backend}/{server} in {rows:?}"))
    };
    let total: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, 29, "every router line is a request");
    let web1 = find("myapp.herokuapp.com", "web.1");
    assert_eq!(web1["max"], 80000, "the H24 line's service time: {web1}");
    let crashed = find("myapp.herokuapp.com", "<NOSRV>");
    assert!(
        crashed["requests"].as_u64().unwrap() >= 10,
        "errors without a dyno: {crashed}"
    );
    let drain = find("app-name-7277.herokuapp.com", "web.2");
    assert_eq!(
        (drain["requests"].as_u64(), drain["p50"].as_u64()),
        (Some(1), Some(2)),
        "{drain}"
    );
}
