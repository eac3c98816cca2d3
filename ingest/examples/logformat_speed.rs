//! Parse rate of a compiled custom `log-format` against the built-in (hand-tuned) httplog
//! parser, on the same requests, one thread.
//!
//! `cargo run --release -p weir-ingest --example logformat_speed -- FILE [--only builtin|custom]`
//!
//! FILE holds HAProxy lines (`weir gen --count 2000000 --seed 1 --to FILE`). Every HTTP line is
//! also rewritten into a `key=value` layout carrying the same fields; both sets of lines then go
//! through [`parse_line`], the built-in ones with no custom format, the rewritten ones with the
//! `key=value` format as the default, and the rates are printed in lines/s.
//! Passes alternate between the two, best of five each. `--only` runs one side once (for
//! `valgrind --tool=callgrind --toggle-collect=logformat_speed::pass`).
//!
//! `--same` compares the two parsers on identical bytes instead: the messages of the same
//! requests (after their syslog header) through the hand-tuned `parse_message` and through
//! `option httplog`'s own format compiled (`LogFormat::compile`), alternating, best of five.

use std::fmt::Write as _;
use std::time::Instant;

use weir_ingest::haproxy::logformat::{Builtin, FormatSet, Formats, LogFormat};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{HttpLog, Record};

/// The custom layout: every field of `option httplog`, as `key=value`.
const KV: &str = "client=%ci port=%cp date=%tr fe=%ft backend=%b server=%s TR=%TR Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta status=%ST bytes=%B cc=%CC cs=%CS term=%tsc conn=%ac/%fc/%bc/%sc/%rc queue=%sq/%bq %hr %hs req=%{+Q}r";

/// The request of `h` written in the [`KV`] layout, after the line's syslog header `head`.
fn rewrite(head: &str, h: &HttpLog<'_>, raw_date: &str) -> String {
    let mut s = String::with_capacity(300);
    let t = &h.timings;
    let n = |v: Option<i32>| v.unwrap_or(-1);
    let _ = write!(
        s,
        "{head}client={} port={} date={raw_date} fe={}{} backend={} server={} TR={} Tw={} Tc={} Tr={} Ta={}{} status={} bytes={} cc={} cs={} term={} conn={}/{}/{}/{}/{}{} queue={}/{}",
        h.client.ip,
        h.client.port.unwrap_or(0),
        h.frontend,
        if h.ssl { "~" } else { "" },
        h.backend,
        h.server,
        n(t.request),
        n(t.queue),
        n(t.connect),
        n(t.response),
        if t.total_logasap { "+" } else { "" },
        n(t.total),
        h.status.map_or(-1, i32::from),
        h.bytes_read,
        h.req_cookie.unwrap_or("-"),
        h.resp_cookie.unwrap_or("-"),
        h.termination_state,
        h.actconn,
        h.feconn,
        h.beconn,
        h.srv_conn,
        if h.redispatched { "+" } else { "" },
        h.retries,
        h.srv_queue,
        h.backend_queue,
    );
    for c in [h.req_headers, h.resp_headers].into_iter().flatten() {
        let _ = write!(s, " {{{}}}", c.0);
    }
    let _ = write!(s, " req=\"{}\"", h.request.raw);
    s
}

/// Seconds of one pass of `parse_line` over `lines`; checks every line is a request.
fn pass(lines: &[String], opts: &ParseOptions) -> f64 {
    let start = Instant::now();
    let mut http = 0usize;
    for l in lines {
        if let Record::Http(h) = parse_line(l.as_bytes(), opts).record {
            http += 1;
            std::hint::black_box(h);
        }
    }
    assert_eq!(http, lines.len(), "every line parses as a request");
    start.elapsed().as_secs_f64()
}

/// Seconds of one pass over `msgs` with the hand-tuned message parser.
fn pass_hand_tuned(msgs: &[&str], opts: &ParseOptions) -> f64 {
    let start = Instant::now();
    for m in msgs {
        let parsed = weir_ingest::haproxy::parse_message(m.as_bytes(), opts);
        assert!(matches!(parsed, weir_ingest::haproxy::Message::Http(_)));
        std::hint::black_box(parsed);
    }
    start.elapsed().as_secs_f64()
}

/// Seconds of one pass over `msgs` with a compiled format.
fn pass_compiled(msgs: &[&str], format: &LogFormat, opts: &ParseOptions) -> f64 {
    let start = Instant::now();
    for m in msgs {
        let parsed = format.parse(m.as_bytes(), opts, None);
        assert!(matches!(parsed, Some(Record::Http(_))), "{m}");
        std::hint::black_box(parsed);
    }
    start.elapsed().as_secs_f64()
}

/// `--same`: both parsers on the same message bytes.
fn same(builtin: &[String], opts: &ParseOptions) {
    let msgs: Vec<&str> = builtin
        .iter()
        .filter_map(|raw| {
            let at = raw.find("]: ")? + 3;
            Some(&raw[at..])
        })
        .collect();
    let format = LogFormat::compile(Builtin::HttpLog.format()).expect("httplog compiles");
    let (mut h, mut c) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        h = h.min(pass_hand_tuned(&msgs, opts));
        c = c.min(pass_compiled(&msgs, &format, opts));
    }
    let n = msgs.len() as f64;
    println!(
        "{} messages of option httplog, the same bytes to both:",
        msgs.len()
    );
    println!("hand-tuned parser: {:.2} M lines/s", n / h / 1e6);
    println!(
        "compiled httplog format: {:.2} M lines/s ({:.0}% of hand-tuned)",
        n / c / 1e6,
        100.0 * h / c
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = args
        .first()
        .expect("usage: logformat_speed FILE [--only builtin|custom]");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let text = std::fs::read_to_string(file).expect("reading the file");
    let opts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let (mut builtin, mut custom) = (Vec::new(), Vec::new());
    for raw in text.lines() {
        if let Record::Http(h) = parse_line(raw.as_bytes(), &opts).record {
            if h.truncated || h.tls.is_some() || h.clf {
                continue;
            }
            // The header ends where the client address starts; the date is the first `[...]`
            // after it.
            let at = h.client.ip.as_ptr() as usize - raw.as_ptr() as usize;
            let (Some(open), Some(close)) = (raw[at..].find('['), raw[at..].find(']')) else {
                continue;
            };
            let date = &raw[at + open + 1..at + close];
            custom.push(rewrite(&raw[..at], &h, date));
            builtin.push(raw.to_owned());
        }
    }
    let mut set = FormatSet::new();
    set.set_default(KV).expect("the key=value format compiles");
    let custom_opts = ParseOptions {
        formats: Some(Formats(Box::leak(Box::new(set)))),
        ..opts
    };
    if args.iter().any(|a| a == "--same") {
        same(&builtin, &opts);
        return;
    }
    match only.as_deref() {
        Some("builtin") => println!("builtin: {:.0} s", pass(&builtin, &opts)),
        Some("custom") => println!("custom: {:.0} s", pass(&custom, &custom_opts)),
        _ => {
            println!("{} requests; first rewritten: {}", builtin.len(), custom[0]);
            // Passes alternate, so that both sides see the same load; the best of 5 counts.
            let (mut b, mut c) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                b = b.min(pass(&builtin, &opts));
                c = c.min(pass(&custom, &custom_opts));
            }
            let n = builtin.len() as f64;
            println!("built-in httplog parser: {:.2} M lines/s", n / b / 1e6);
            println!(
                "compiled key=value format: {:.2} M lines/s ({:.0}% of built-in)",
                n / c / 1e6,
                100.0 * b / c
            );
        }
    }
}
