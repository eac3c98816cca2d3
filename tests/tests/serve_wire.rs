//! `weir serve` over the wire, as a black box: util-linux `logger` as a second real sender
//! (RFC 3164 and 5424, UDP and TCP, LF and octet-counted frames); bad input (random bytes,
//! invalid UTF-8, empty and oversize datagrams, a 1 MB frame, bogus octet counts, a stream cut
//! mid-frame) that must leave the server up with every message counted exactly once and kept
//! in `rejects`; and one source flooding while another sends slowly, where the slow source's
//! tail must miss nothing and the flood's slow tail must be told of its drops with L11.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int8Array};
use rand::{Rng, SeedableRng};
use serve_support::{read_table, rejects, row_count, run_logger, strings, Metrics, TailChild, WeirServe};
use support::{find_program, skip_unless_ci};
use weir_e2e::{OutputWithin, PROCESS_TIMEOUT};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::Record;
use weir_store::Table;

/// This machine's host name as `gethostname` gives it (what `logger` puts in RFC 5424 headers;
/// RFC 3164 headers carry it up to the first dot).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| {
            let out = Command::new("hostname")
                .stdin(Stdio::null())
                .output_within(PROCESS_TIMEOUT)
                .expect("running hostname");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
}

/// One row of the `app` table.
#[derive(Debug, Clone, PartialEq)]
struct AppRow {
    host: Option<String>,
    app: Option<String>,
    proc_: Option<String>,
    facility: Option<i8>,
    severity: Option<i8>,
    message: String,
}

fn app_rows(spool: &std::path::Path) -> Vec<AppRow> {
    let hosts = strings(spool, Table::App, "host");
    let apps = strings(spool, Table::App, "app");
    let procs = strings(spool, Table::App, "proc");
    let messages = strings(spool, Table::App, "message");
    let mut facility = Vec::new();
    let mut severity = Vec::new();
    for b in read_table(spool, Table::App) {
        for (name, out) in [("facility", &mut facility), ("severity", &mut severity)] {
            let c = b
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int8Array>())
                .unwrap_or_else(|| panic!("app.{name} is not Int8"));
            out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))));
        }
    }
    (0..messages.len())
        .map(|i| AppRow {
            host: hosts[i].clone(),
            app: apps[i].clone(),
            proc_: procs[i].clone(),
            facility: facility[i],
            severity: severity[i],
            message: messages[i].clone().expect("message is not null"),
        })
        .collect()
}

/// One `logger` run and what weir must store for it.
struct LoggerCase<'a> {
    /// Transport, format and priority options.
    args: Vec<&'a str>,
    /// Sent to the TCP port (else UDP).
    tcp: bool,
    /// The tag (`-t`): the app-name.
    app: &'a str,
    /// The lines sent (one on the command line, or the lines of `-f FILE`).
    messages: Vec<String>,
    /// `--id`.
    procid: Option<&'a str>,
    /// From `-p` (user.notice by default).
    facility_severity: (i8, i8),
    /// An RFC 3164 header (short host name) rather than RFC 5424.
    rfc3164: bool,
}

#[test]
fn logger_rfc3164_rfc5424_udp_tcp_octet_counted_are_app_lines() {
    let Some(logger) = find_program("logger") else {
        skip_unless_ci("logger (util-linux)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "");
    let tag = std::process::id();
    let file_lines: Vec<String> = (1..=3)
        .map(|i| format!("weir-e2e {tag} from a file, line {i}"))
        .collect();
    let file = dir.path().join("lines.txt");
    std::fs::write(&file, file_lines.join("\n") + "\n").expect("write lines");
    let file_arg = file.to_str().expect("UTF-8 temp path").to_owned();
    let msg = |what: &str| vec![format!("weir-e2e {tag} {what}")];
    let cases = [
        LoggerCase {
            args: vec!["-d", "--rfc3164", "-p", "local0.info"],
            tcp: false,
            app: "e2e-u3164",
            messages: msg("udp rfc3164"),
            procid: None,
            facility_severity: (16, 6),
            rfc3164: true,
        },
        LoggerCase {
            args: vec!["-d", "--rfc5424", "--id=4242"],
            tcp: false,
            app: "e2e-u5424",
            messages: msg("udp rfc5424"),
            procid: Some("4242"),
            facility_severity: (1, 5),
            rfc3164: false,
        },
        LoggerCase {
            args: vec!["-T", "-p", "daemon.err"],
            tcp: true,
            app: "e2e-tlf",
            messages: msg("tcp lf"),
            procid: None,
            facility_severity: (3, 3),
            rfc3164: false,
        },
        LoggerCase {
            args: vec!["-T", "--octet-count"],
            tcp: true,
            app: "e2e-toc",
            messages: msg("tcp octet-counted"),
            procid: None,
            facility_severity: (1, 5),
            rfc3164: false,
        },
        LoggerCase {
            args: vec!["-T", "--rfc3164"],
            tcp: true,
            app: "e2e-t3164",
            messages: msg("tcp rfc3164 lf"),
            procid: None,
            facility_severity: (1, 5),
            rfc3164: true,
        },
        LoggerCase {
            args: vec!["-T", "--octet-count", "-f", &file_arg],
            tcp: true,
            app: "e2e-file",
            messages: file_lines.clone(),
            procid: None,
            facility_severity: (1, 5),
            rfc3164: false,
        },
    ];
    for case in &cases {
        let port = if case.tcp {
            weir.tcp.port()
        } else {
            weir.udp.port()
        }
        .to_string();
        let mut args = vec!["-n", "127.0.0.1", "-P", &port, "-t", case.app];
        args.extend_from_slice(&case.args);
        if let [one] = &case.messages[..] {
            args.push(one);
        }
        run_logger(&logger, &args);
    }
    let want: Vec<(&LoggerCase, &String)> = cases
        .iter()
        .flat_map(|c| c.messages.iter().map(move |m| (c, m)))
        .collect();
    let n = want.len() as u64;

    let m = weir.wait_metrics(deadline, "every logger line parsed", |m| {
        m.sum("weir_accepted_total") + m.sum("weir_rejected_total") >= n
    });
    assert_eq!(m.get(r#"weir_received_total{transport="udp"}"#), 2, "{}", m.text);
    assert_eq!(
        m.get(r#"weir_received_total{transport="tcp"}"#),
        n - 2,
        "{}",
        m.text
    );
    assert_eq!(m.get(r#"weir_accepted_total{table="app"}"#), n, "{}", m.text);
    assert_eq!(m.nonzero("weir_rejected_total"), BTreeMap::new(), "{}", m.text);

    weir.stop(deadline);
    assert_eq!(rejects(&weir.spool), vec![], "no logger line may be a reject");

    let host = hostname();
    let short_host = host.split('.').next().unwrap_or(&host).to_owned();
    let rows = app_rows(&weir.spool);
    assert_eq!(rows.len() as u64, n, "{rows:#?}");
    for (case, text) in &want {
        let row = rows
            .iter()
            .find(|r| r.message.contains(text.as_str()))
            .unwrap_or_else(|| panic!("{text:?} is not in the app table: {rows:#?}"));
        // RFC 5424 structured data may lead the message; the text is its end.
        assert!(row.message.ends_with(text.as_str()), "{row:?}");
        let want_host = if case.rfc3164 { &short_host } else { &host };
        assert_eq!(row.host.as_deref(), Some(want_host.as_str()), "{row:?}");
        assert_eq!(row.app.as_deref(), Some(case.app), "{row:?}");
        assert_eq!(row.proc_.as_deref(), case.procid, "{row:?}");
        let (facility, severity) = case.facility_severity;
        assert_eq!(
            (row.facility, row.severity),
            (Some(facility), Some(severity)),
            "{row:?}"
        );
    }
}

/// `<134>... app[pid]: text` as an RFC 3164 line.
fn syslog(host: &str, app: &str, text: &str) -> Vec<u8> {
    format!("<134>Nov 22 01:22:06 {host} {app}[7]: {text}").into_bytes()
}

fn tcp_send(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect TCP syslog");
    s.write_all(bytes).expect("send");
    s.flush().expect("flush");
    // Dropping the stream closes it: a cut frame becomes the server's end-of-stream case.
}

#[test]
fn bad_input_is_counted_once_kept_in_rejects_and_the_server_stays_up() {
    const MAX_LINE: usize = 4096;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), &format!("[ingest]\nmax_line = {MAX_LINE}\n"));
    let opts = ParseOptions::default();

    // What each message must become: (reason, raw) for rejects, the message for app lines.
    let mut want_rejects: Vec<(String, Vec<u8>)> = Vec::new();
    let mut want_app: Vec<String> = Vec::new();
    let (mut udp_sent, mut tcp_sent) = (0u64, 0u64);

    // UDP: one datagram is one message.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP client");
    let mut send_udp = |bytes: &[u8]| {
        assert_eq!(sock.send_to(bytes, weir.udp).expect("send datagram"), bytes.len());
        udp_sent += 1;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    for _ in 0..20 {
        let len = rng.random_range(8..=512);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // The parser decides the reason (tested on its own); the transport must keep the bytes.
        let line = parse_line(&bytes, &opts);
        let Record::Reject(r) = line.record else {
            panic!("random bytes parsed as a record: {bytes:?}")
        };
        send_udp(&bytes);
        want_rejects.push((r.reason.as_str().to_owned(), bytes));
    }
    for bad in [
        &b"caf\xe9 au lait"[..],
        b"\xff\xfe\xfd",
        b"ok then \xc3\x28 broken",
    ] {
        let mut bytes = syslog("badhost", "badutf8", "");
        bytes.extend_from_slice(bad);
        send_udp(&bytes);
        want_rejects.push(("invalid_utf8".into(), bytes));
    }
    send_udp(b"");
    want_rejects.push(("empty".into(), Vec::new()));
    let mut oversize = syslog("bighost", "bigudp", "");
    oversize.resize(10_000, b'u');
    send_udp(&oversize);
    want_rejects.push(("too_long".into(), oversize[..MAX_LINE].to_vec()));
    let good = "good udp line";
    send_udp(&syslog("goodhost", "goodapp", good));
    want_app.push(good.into());

    // TCP, one connection per case; frame counts follow ingest/src/framing.rs's rules.
    // A 1 MB LF-terminated line: too_long with its first max_line bytes; then a good line.
    let mut big = syslog("bighost", "bigtcp", "");
    big.resize(1 << 20, b't');
    let mut stream = big.clone();
    stream.push(b'\n');
    stream.extend_from_slice(&syslog("goodhost", "goodapp", "good after 1 MB"));
    stream.push(b'\n');
    tcp_send(weir.tcp, &stream);
    tcp_sent += 2;
    want_rejects.push(("too_long".into(), big[..MAX_LINE].to_vec()));
    want_app.push("good after 1 MB".into());
    // Bogus octet counts: more than 9 digits, and a leading zero. Each is a bad frame up to the
    // next terminator, count included; the next frame decodes normally.
    for (i, bogus) in [&b"99999999999 x"[..], b"012 x"].into_iter().enumerate() {
        let text = format!("good after bogus count {i}");
        let line = syslog("goodhost", "goodapp", &text);
        let mut stream = bogus.to_vec();
        stream.push(b'\n');
        stream.extend_from_slice(format!("{} ", line.len()).as_bytes());
        stream.extend_from_slice(&line);
        tcp_send(weir.tcp, &stream);
        tcp_sent += 2;
        want_rejects.push(("bad_framing".into(), bogus.to_vec()));
        want_app.push(text);
    }
    // A good counted frame, then half of one, then the connection closes.
    let first = syslog("goodhost", "goodapp", "good before the cut");
    let mut stream = format!("{} ", first.len()).into_bytes();
    stream.extend_from_slice(&first);
    let half = b"50 <134>Nov 22 01:22:06 cut cutapp[1]: half".to_vec();
    stream.extend_from_slice(&half);
    tcp_send(weir.tcp, &stream);
    tcp_sent += 2;
    want_app.push("good before the cut".into());
    want_rejects.push(("bad_framing".into(), half));
    // Invalid UTF-8 in an LF-framed line (CRLF: the CR is framing, not message).
    let mut bad = syslog("badhost", "badutf8", "tcp ");
    bad.extend_from_slice(b"\xc0\xaf");
    let mut stream = bad.clone();
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(&syslog("goodhost", "goodapp", "good after invalid UTF-8"));
    stream.push(b'\n');
    tcp_send(weir.tcp, &stream);
    tcp_sent += 2;
    want_rejects.push(("invalid_utf8".into(), bad));
    want_app.push("good after invalid UTF-8".into());

    let total = udp_sent + tcp_sent;
    let m = weir.wait_metrics(deadline, "every message parsed", |m| {
        m.sum("weir_accepted_total") + m.sum("weir_rejected_total") >= total
    });
    assert_eq!(
        weir.get("/healthz"),
        (200, "ok\n".to_owned()),
        "the server must stay up"
    );
    assert!(weir.is_running());
    let mut want_reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (reason, _) in &want_rejects {
        *want_reasons
            .entry(format!("{{reason=\"{reason}\"}}"))
            .or_default() += 1;
    }
    let check = |m: &Metrics| {
        assert_eq!(
            m.get(r#"weir_received_total{transport="udp"}"#),
            udp_sent,
            "{}",
            m.text
        );
        assert_eq!(
            m.get(r#"weir_received_total{transport="tcp"}"#),
            tcp_sent,
            "{}",
            m.text
        );
        assert_eq!(
            m.sum("weir_received_total"),
            m.sum("weir_accepted_total") + m.sum("weir_rejected_total"),
            "every message is counted in exactly one of accepted/rejected\n{}",
            m.text
        );
        assert_eq!(
            m.get(r#"weir_accepted_total{table="app"}"#),
            want_app.len() as u64,
            "{}",
            m.text
        );
        assert_eq!(m.sum("weir_accepted_total"), want_app.len() as u64, "{}", m.text);
        assert_eq!(m.nonzero("weir_rejected_total"), want_reasons, "{}", m.text);
        assert_eq!(m.nonzero("weir_dropped_total"), BTreeMap::new(), "{}", m.text);
    };
    check(&m);
    // Nothing more trickles in later: the counts are final.
    check(&weir.metrics());

    weir.stop(deadline);
    let mut got = rejects(&weir.spool);
    got.sort();
    want_rejects.sort();
    assert_eq!(got.len(), want_rejects.len());
    for (g, w) in got.iter().zip(&want_rejects) {
        assert!(
            g == w,
            "reject differs:\n got  {:?} {:?}\n want {:?} {:?}",
            g.0,
            lossy(&g.1),
            w.0,
            lossy(&w.1)
        );
    }
    let mut messages: Vec<String> = strings(&weir.spool, Table::App, "message")
        .into_iter()
        .flatten()
        .collect();
    messages.sort();
    want_app.sort();
    assert_eq!(messages, want_app);
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 120 {
        format!(
            "{}... ({} bytes)",
            &s[..s.floor_char_boundary_compat(120)],
            b.len()
        )
    } else {
        s.into_owned()
    }
}

/// `str::floor_char_boundary` for the MSRV.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// The fixed seed of the random datagrams.
const SEED: u64 = 0x5eed_0001;

/// Datagrams the flood sends at least (and at most), whatever the quiet source does.
const FLOOD_MIN: u64 = 200_000;
const FLOOD_MAX: u64 = 2_000_000;
/// Lines of the quiet source, one each time the flood has sent [`QUIET_EVERY`] more datagrams:
/// the two interleave by the flood's progress, not by a clock.
const QUIET_LINES: usize = 100;
const QUIET_EVERY: u64 = FLOOD_MIN / QUIET_LINES as u64;

fn quiet_line(i: usize) -> String {
    format!("<134>Nov 22 01:22:06 quiet quietapp[2]: q {i:03}")
}

#[test]
fn a_flood_never_silences_a_quiet_source_and_its_slow_tail_gets_l11() {
    let deadline = Instant::now() + Duration::from_secs(40);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "[router]\ntail_queue = 64\n");
    let server = weir.url();

    let quiet_json = TailChild::spawn(
        dir.path(),
        "quiet-json",
        &server,
        &["--app", "quietapp", "--json"],
    );
    let quiet_text = TailChild::spawn(dir.path(), "quiet-text", &server, &["--app", "quietapp"]);
    // Read nothing from this one until the flood is over: a reader far behind.
    let mut flood_tail =
        TailChild::spawn_paused(dir.path(), "flood", &server, &["--app", "floodapp", "--json"]);
    weir.wait_tail_sessions(3, deadline);

    let quiet_done = Arc::new(AtomicBool::new(false));
    let flood_sent = Arc::new(AtomicU64::new(0));
    let (progress, flood_progress) = std::sync::mpsc::channel::<u64>();
    let flood = {
        let (quiet_done, flood_sent, addr) = (quiet_done.clone(), flood_sent.clone(), weir.udp);
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind flood socket");
            let mut line = Vec::with_capacity(64);
            let mut i = 0u64;
            while i < FLOOD_MAX && (i < FLOOD_MIN || !quiet_done.load(Ordering::Relaxed)) {
                line.clear();
                write!(line, "<134>Nov 22 01:22:06 flood floodapp[1]: x {i}").expect("format");
                // A full socket buffer may refuse a datagram; the flood goes on regardless.
                let _ = sock.send_to(&line, addr);
                i += 1;
                if i.is_multiple_of(QUIET_EVERY) {
                    let _ = progress.send(i);
                }
            }
            flood_sent.store(i, Ordering::Relaxed);
        })
    };
    {
        let mut s = TcpStream::connect(weir.tcp).expect("connect quiet source");
        s.set_nodelay(true).expect("nodelay");
        for i in 0..QUIET_LINES {
            let left = deadline.saturating_duration_since(Instant::now());
            flood_progress
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("the flood stalled before quiet line {i}: {e}"));
            s.write_all(format!("{}\n", quiet_line(i)).as_bytes())
                .expect("send quiet line");
        }
    }
    quiet_done.store(true, Ordering::Relaxed);
    flood.join().expect("flood thread");
    let sent = flood_sent.load(Ordering::Relaxed);
    assert!(sent >= FLOOD_MIN);

    // The quiet source's tails show all of its lines, in order, and no overflow.
    let want: Vec<String> = (0..QUIET_LINES).map(quiet_line).collect();
    let all_seen = quiet_json.wait_until(deadline, |l| l.len() >= QUIET_LINES)
        && quiet_text.wait_until(deadline, |l| l.len() >= QUIET_LINES);
    assert!(
        all_seen,
        "quiet tails saw {} (json) and {} (text) of {QUIET_LINES} lines\n{}",
        quiet_json.lines().len(),
        quiet_text.lines().len(),
        quiet_json.stderr_text()
    );
    let got: Vec<String> = quiet_json
        .json()
        .iter()
        .map(|v| {
            assert_eq!(v["source"], "quiet/quietapp", "{v}");
            v["line"]
                .as_str()
                .unwrap_or_else(|| panic!("not a line: {v}"))
                .to_owned()
        })
        .collect();
    // One TCP connection is an ordered stream: its lines must reach a tail in the order sent,
    // however many pipeline workers share the load.
    assert_eq!(got, want, "the quiet tail (json) must see every line, in order");
    assert_eq!(
        quiet_text.lines(),
        want,
        "the quiet tail (text) must see every line, in order"
    );

    // Let the pipeline finish the flood (what the receive queue dropped is counted apart).
    let m = weir.wait_metrics(deadline, "the flood processed", |m| {
        let received = m.sum("weir_received_total");
        let queue_drops = m.sum_where("weir_dropped_total", &[r#"stage="receive""#]);
        m.sum("weir_accepted_total") + m.sum("weir_rejected_total") + queue_drops == received
    });
    let flood_lines = m.get(r#"weir_source_lines_total{source="flood/floodapp"}"#);
    let flood_drops = m.get(r#"weir_source_dropped_total{source="flood/floodapp"}"#);
    assert_eq!(
        m.get(r#"weir_source_lines_total{source="quiet/quietapp"}"#),
        QUIET_LINES as u64,
        "{}",
        m.text
    );
    assert_eq!(
        m.get(r#"weir_source_dropped_total{source="quiet/quietapp"}"#),
        0,
        "{}",
        m.text
    );
    assert!(
        flood_drops > 0,
        "the slow flood tail dropped nothing ({flood_lines} flood lines)\n{}",
        m.text
    );
    assert_eq!(m.sum("weir_rejected_total"), 0, "{}", m.text);

    // The flood's tail, once read, reports its drops in band.
    flood_tail.resume();
    let has_l11 = |lines: &[String]| lines.iter().any(|l| l.contains("\"error\":\"L11\""));
    assert!(
        flood_tail.wait_until(deadline, has_l11),
        "no L11 notice in the flood's tail ({} lines read)",
        flood_tail.lines().len()
    );
    let mut notified = 0;
    let mut flood_seen = 0;
    for v in flood_tail.json() {
        if v["error"] == "L11" {
            let dropped = v["dropped"].as_u64().expect("dropped is a count");
            assert!(dropped > 0, "{v}");
            let message = v["message"].as_str().expect("message");
            let prefix = format!("Error L11 (tail buffer overflow): {dropped} messages dropped since ");
            assert!(message.starts_with(&prefix), "{message}");
            assert!(
                message.ends_with(v["since"].as_str().expect("since")),
                "{message}"
            );
            notified += dropped;
            continue;
        }
        assert_eq!(v["source"], "flood/floodapp", "{v}");
        flood_seen += 1;
    }
    assert!(
        notified > 0 && notified <= flood_drops,
        "notified {notified} of {flood_drops} drops"
    );
    assert!(flood_seen > 0, "the flood's tail showed no line at all");

    weir.stop(deadline);
    // Tails lose lines; the spool does not: every processed line is stored, the quiet ones too.
    let m_accepted = m.get(r#"weir_accepted_total{table="app"}"#);
    assert_eq!(row_count(&weir.spool, Table::App) as u64, m_accepted);
    let stored: Vec<String> = strings(&weir.spool, Table::App, "message")
        .into_iter()
        .flatten()
        .filter(|s| s.starts_with("q "))
        .collect();
    assert_eq!(stored.len(), QUIET_LINES);
}

#[test]
fn weir_tail_backlog_filters_and_exit_codes() {
    let deadline = Instant::now() + Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "");
    let server = weir.url();

    // -n: the last lines of the matching source first, then live lines. Each line is sent once
    // the previous one is routed, so that their order is the order sent whatever the workers do.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP client");
    let mut routed = 0;
    let mut send = |app: &str, text: &str| {
        sock.send_to(&syslog("h1", app, text), weir.udp).expect("send");
        routed += 1;
        weir.wait_metrics(deadline, &format!("{routed} lines routed"), |m| {
            m.sum("weir_source_lines_total") == routed
        });
    };
    for i in 0..5 {
        send("backlog", &format!("old {i}"));
    }
    send("other", "not mine");
    let tail = TailChild::spawn(dir.path(), "backlog", &server, &["--app", "backlog", "-n", "2"]);
    weir.wait_tail_sessions(1, deadline);
    send("other", "still not mine");
    send("backlog", "new 5");
    let want: Vec<String> = ["old 3", "old 4", "new 5"]
        .iter()
        .map(|t| String::from_utf8(syslog("h1", "backlog", t)).unwrap())
        .collect();
    assert!(
        tail.wait_until(deadline, |l| l.len() >= 3),
        "tail -n 2 showed {:?}",
        tail.lines()
    );
    assert_eq!(tail.lines(), want);

    // A filter the server rejects: its message, exit 2.
    let out = Command::new(serve_support::weir_bin())
        .args(["tail", "--server", &server, "--status", "6xx"])
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("run weir tail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad status filter \"6xx\""), "{stderr}");

    // Nothing listening: an error naming the URL, exit 1.
    let closed = support::free_port();
    let url = format!("http://127.0.0.1:{closed}");
    let out = Command::new(serve_support::weir_bin())
        .args(["tail", "--server", &url, "--app", "web"])
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("run weir tail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{url}/api/tail?n=0&app=web")),
        "{stderr}"
    );

    // A stopping server ends its tails, and `weir tail` exits 0.
    let mut tail = tail;
    weir.stop(deadline);
    tail.assert_exits_ok(deadline);
}
