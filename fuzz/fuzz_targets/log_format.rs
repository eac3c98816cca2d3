//! Fuzzes the log-format language: the input's first line is a format (compiled, or refused
//! with an error), the rest a message read with it and with every built-in layout compiled the
//! same way. Never a panic; every string of a record lies inside the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::haproxy::logformat::{Builtin, LogFormat};
use weir_ingest::ParseOptions;
use weir_model::Record;

fuzz_target!(|data: &[u8]| {
    let (format, msg) = match data.iter().position(|&b| b == b'\n') {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (data, &b""[..]),
    };
    let opts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let inside = |s: &str| {
        let (p, b) = (s.as_ptr() as usize, msg.as_ptr() as usize);
        assert!(s.is_empty() || (p >= b && p + s.len() <= b + msg.len()));
    };
    let mut formats: Vec<LogFormat> = Builtin::ALL
        .iter()
        .map(|b| LogFormat::compile(b.format()).expect("built-in formats compile"))
        .collect();
    if let Ok(f) = std::str::from_utf8(format).map(LogFormat::compile) {
        formats.extend(f.ok());
    }
    for f in &formats {
        match f.parse(msg, &opts, Some(0)) {
            Some(Record::Http(h)) => {
                for s in [h.frontend, h.backend, h.server, h.termination_state, h.request.raw, h.client.ip] {
                    inside(s);
                }
                h.req_headers.iter().chain(&h.resp_headers).for_each(|c| inside(c.0));
                h.fields.for_each(|_, v| v.into_iter().for_each(inside));
            }
            Some(Record::Tcp(t)) => {
                for s in [t.frontend, t.backend, t.server, t.termination_state, t.client.ip] {
                    inside(s);
                }
                t.fields.for_each(|_, v| v.into_iter().for_each(inside));
            }
            _ => {}
        }
    }
});
