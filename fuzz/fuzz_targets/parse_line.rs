//! Fuzzes the whole-line entry point (syslog header, then the message): any bytes, never a
//! panic, the line keeps its raw bytes, and reading it without splitting the request line (as
//! reports do) files it alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::{parse_line, ParseOptions};
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
});
