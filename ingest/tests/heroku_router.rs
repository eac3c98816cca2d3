//! Router-line conformance: every form of Heroku's documented router lines in
//! `tests/corpus/heroku/router.log` (see its SOURCES.md) parses into a router record with its
//! code and fields, through the whole line parser (RFC 3164 `heroku[router]:` and a logplex
//! drain's RFC 5424 header); every line of `router-bad.log` is a `bad_router_line` reject.

use std::path::PathBuf;

use weir_ingest::{parse_line, ParseOptions};
use weir_model::{AppKind, Record, RejectReason};

fn corpus(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/corpus/heroku")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opts() -> ParseOptions {
    ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    }
}

#[test]
fn every_documented_router_line_parses() {
    let text = corpus("router.log");
    let mut codes = Vec::new();
    for raw in text.lines() {
        let line = parse_line(raw.as_bytes(), &opts());
        let Record::App(a) = line.record else {
            panic!("not an app record: {:?}: {raw}", line.record);
        };
        assert_eq!(a.kind, AppKind::Router, "{raw}");
        let r = a.router.expect("router fields");
        assert!(["info", "error"].contains(&r.at), "{raw}");
        assert!(
            r.method.is_some() && r.path.is_some() && r.host.is_some(),
            "{raw}"
        );
        if let Some(code) = r.code {
            assert!(
                raw.contains(&format!("code={code} ")) || raw.contains(&format!("Error {code} ")),
                "{raw}"
            );
            assert!(r.desc.is_some_and(|d| raw.contains(d)), "{raw}");
            codes.push(code.to_owned());
        } else {
            assert_eq!(r.at, "info", "{raw}");
            assert!(
                r.status.is_some() && r.connect_ms.is_some() && r.service_ms.is_some(),
                "{raw}"
            );
        }
    }
    let mut want: Vec<String> = (10..=28)
        .chain([31, 32, 80, 81, 82, 83, 99])
        .map(|n| format!("H{n}"))
        .collect();
    want.insert(0, "H10".into());
    codes.sort();
    want.sort();
    assert_eq!(
        codes, want,
        "every documented code once, H10 also in the legacy form"
    );

    // The fields an error leaves empty are absent, the others read.
    let h12 = text.lines().find(|l| l.contains("code=H12")).unwrap();
    let Record::App(a) = parse_line(h12.as_bytes(), &opts()).record else {
        unreachable!()
    };
    let r = a.router.unwrap();
    assert_eq!(
        (r.dyno, r.connect_ms, r.service_ms, r.status, r.bytes),
        (Some("web.1"), Some(1), Some(30_000), Some(503), Some(0))
    );
    let h10 = text.lines().find(|l| l.contains("code=H10")).unwrap();
    let Record::App(a) = parse_line(h10.as_bytes(), &opts()).record else {
        unreachable!()
    };
    let r = a.router.unwrap();
    assert_eq!(
        (r.dyno, r.connect_ms, r.service_ms, r.bytes),
        (None, None, None, None)
    );
    // The drain's RFC 5424 line.
    let drain = text.lines().find(|l| l.starts_with("<158>1 ")).unwrap();
    let line = parse_line(drain.as_bytes(), &opts());
    assert_eq!(
        (line.header.app, line.header.procid),
        (Some("heroku"), Some("router"))
    );
    let Record::App(a) = line.record else {
        unreachable!()
    };
    assert_eq!(a.router.unwrap().dyno, Some("web.2"));
}

#[test]
fn router_lines_heroku_does_not_write_are_rejects_with_their_reason() {
    for raw in corpus("router-bad.log").lines() {
        match parse_line(raw.as_bytes(), &opts()).record {
            Record::Reject(r) => assert_eq!(r.reason, RejectReason::BadRouterLine, "{raw}"),
            other => panic!("{other:?}: {raw}"),
        }
    }
}
