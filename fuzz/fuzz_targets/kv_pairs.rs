//! Fuzzes the `key=value` tokenizer of application messages: any text, never a panic; every
//! pair is two slices of the message, in order, the key non-empty and free of white space,
//! `=` and `"`; the l2met metrics read from those pairs are finite, named, and counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::kv::kv_pairs;
use weir_ingest::l2met::for_each_metric;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = std::str::from_utf8(data) else {
        return;
    };
    let base = message.as_ptr() as usize;
    let offset = |s: &str| {
        let at = s.as_ptr() as usize;
        assert!(at >= base && at + s.len() <= base + message.len());
        at - base
    };
    let mut end = 0;
    for (key, value) in kv_pairs(message) {
        assert!(!key.is_empty());
        assert!(!key
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'=' || b == b'"'));
        let (k, v) = (offset(key), offset(value));
        assert!(k >= end, "pairs out of order");
        assert_eq!(&message[k + key.len()..k + key.len() + 1], "=");
        assert!(v > k);
        end = v + value.len();
    }
    let mut seen = 0;
    let scan = for_each_metric(message, |m| {
        assert!(m.value.is_finite() && !m.name.is_empty());
        seen += 1;
    });
    assert_eq!(scan.metrics, seen);
});
