//! Fuzzes the HAProxy message parser: any bytes, any zone, never a panic; a record's fields
//! always lie inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::haproxy::{parse_message, Message};
use weir_ingest::{ParseOptions, Zone};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a zone (a fixed offset, or one with daylight saving) so that the
    // offset arithmetic is exercised too, and whether the request line is split.
    let (zone, request_line, msg) = match data.split_first() {
        Some((z, rest)) if z & 2 == 0 => (Zone::fixed((*z as i32 - 128) * 900), z & 1 == 0, rest),
        Some((z, rest)) => (Zone::parse("Europe/Berlin").expect("a known zone"), z & 1 == 0, rest),
        None => (Zone::UTC, true, data),
    };
    let opts = ParseOptions {
        zone,
        year: 2026,
        request_line,
        formats: None,
        ..ParseOptions::default()
    };
    let inside = |s: &str| {
        let (p, b) = (s.as_ptr() as usize, msg.as_ptr() as usize);
        assert!(s.is_empty() || (p >= b && p + s.len() <= b + msg.len()));
    };
    match parse_message(msg, &opts) {
        Message::Http(h) => {
            for s in [
                h.frontend,
                h.backend,
                h.server,
                h.termination_state,
                h.request.raw,
                h.client.ip,
            ] {
                inside(s);
            }
            if let Some(c) = h.req_headers {
                inside(c.0);
            }
            if request_line && !h.truncated && !h.clf {
                // A complete HTTP log always ends its request line with a quote.
                assert!(msg.contains(&b'"'));
            }
        }
        Message::Tcp(t) => {
            for s in [t.frontend, t.backend, t.server, t.termination_state, t.client.ip] {
                inside(s);
            }
            assert_eq!(t.termination_state.len(), 2);
        }
        Message::Event(e) => inside(e.message),
        Message::NotHaproxy | Message::Reject(_) => {}
    }
});
