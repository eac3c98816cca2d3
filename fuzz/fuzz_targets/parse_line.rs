//! Fuzzes the whole-line entry point (syslog header, then the message): any bytes, never a
//! panic, and the line keeps its raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::{parse_line, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let line = parse_line(data, &opts);
    assert_eq!(line.raw, data);
});
