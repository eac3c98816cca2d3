//! Fuzzes the whole-line entry point (syslog header, then the message): any bytes, never a
//! panic, the line keeps its raw bytes, and reading it without splitting the request line (as
//! reports do) files it alike. Text read as a block (`for_each_line_str`, one reused `Line`)
//! gives each of its lines exactly as `parse_line` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::read::StrLines;
use weir_ingest::{for_each_line_str, parse_line, Expect, ParseOptions};
use weir_model::Record;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let line = parse_line(data, &opts);
    assert_eq!(line.raw, data);
    let lean = parse_line(
        data,
        &ParseOptions {
            request_line: false,
            ..opts
        },
    );
    assert_eq!(lean.header, line.header);
    match (&line.record, &lean.record) {
        (Record::Http(f), Record::Http(l)) => {
            assert_eq!((f.backend, f.server, f.status, f.timings), (l.backend, l.server, l.status, l.timings));
            assert_eq!((f.termination_state, f.req_headers), (l.termination_state, l.req_headers));
        }
        (f, l) => assert_eq!(f, l),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut each = StrLines::new(text);
        for_each_line_str(text, &opts, Expect::Auto, |got| {
            let raw = each.next().expect("as many lines as StrLines cuts");
            assert_eq!(*got, parse_line(raw.as_bytes(), &opts));
        });
        assert_eq!(each.next(), None);
    }
});
