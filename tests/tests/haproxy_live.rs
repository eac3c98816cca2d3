//! The real HAProxy on loopback, logging over UDP to the test: every kind of line it writes
//! (httplog with captures, httpslog, logasap, tcplog, `<BADREQ>`, deny, redirect, 503 `<NOSRV>`,
//! 503 refused, 504 `sH--`, `CD--`) is parsed with `weir_ingest::parse_line` and each field is
//! compared with what the test did. Skipped without `haproxy` unless `CI` is set.

#[path = "../haproxy/support.rs"]
mod support;

use std::fmt::Debug;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{
    abort_download, exchange, find_haproxy, find_in, find_program, free_port, skip_unless_ci, spawn_backend,
    start_live, LivePorts, LogCollector, BIG_BYTES,
};
use weir_e2e::{OutputWithin, PROCESS_TIMEOUT};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::time::civil_from_micros;
use weir_model::{AppKind, HttpLog, Line, Micros, Record, SyslogHeader, TcpLog};

const HTTPS_FRONTEND: &str = include_str!("../haproxy/https.cfg");
/// Sent by every request to `fe_http`; HAProxy escapes `|{}` in the capture.
const USER_AGENT: &str = "weir-live/1.0 (a|b) {x}";
const USER_AGENT_LOGGED: &str = "weir-live/1.0 (a#7Cb) #7Bx#7D";
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as Micros
}

/// Whether a timer stage was reached (`Some`) or logged as `-1` (`None`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Reached,
    NotReached,
}
use Stage::{NotReached, Reached};

/// What the byte count must be.
#[derive(Debug, Clone, Copy)]
enum Bytes {
    Exact(u64),
    /// Inclusive bounds.
    Between(u64, u64),
}

/// Everything an HTTP line must say.
#[derive(Debug, Clone)]
struct HttpExpect {
    client_port: Option<u16>,
    frontend: &'static str,
    ssl: bool,
    backend: &'static str,
    server: &'static str,
    /// TR, Tw, Tc, Tr.
    stages: [Stage; 4],
    min_total: i32,
    status: Option<u16>,
    bytes: Bytes,
    logasap: bool,
    state: &'static str,
    req_captures: Option<Vec<&'static str>>,
    resp_captures: Option<Vec<&'static str>>,
    method: Option<&'static str>,
    path: Option<&'static str>,
    query: Option<&'static str>,
    version: Option<&'static str>,
    bad: bool,
    https: bool,
}

/// Collects every mismatch with the case, field and line, so one run reports them all.
struct Checks {
    failures: Vec<String>,
    window: (Micros, Micros),
    pid: String,
}

impl Checks {
    fn eq<T: PartialEq + Debug>(&mut self, case: &str, raw: &[u8], field: &str, got: T, want: T) {
        if got != want {
            self.failures.push(format!(
                "[{case}] {field}: got {got:?}, want {want:?}\n    line: {}",
                String::from_utf8_lossy(raw).trim_end()
            ));
        }
    }

    fn holds(&mut self, case: &str, raw: &[u8], field: &str, ok: bool, detail: String) {
        if !ok {
            self.failures.push(format!(
                "[{case}] {field}: {detail}\n    line: {}",
                String::from_utf8_lossy(raw).trim_end()
            ));
        }
    }

    fn in_window(&self, t: Micros, slack_s: i64) -> bool {
        (self.window.0 - slack_s * 1_000_000..=self.window.1 + slack_s * 1_000_000).contains(&t)
    }

    fn header(&mut self, case: &str, raw: &[u8], h: &SyslogHeader<'_>) {
        self.eq(case, raw, "header.facility", h.facility, Some(16));
        self.eq(case, raw, "header.severity", h.severity, Some(6));
        self.eq(case, raw, "header.host", h.host, None);
        self.eq(case, raw, "header.app", h.app, Some("haproxy"));
        let pid = self.pid.clone();
        self.eq(case, raw, "header.procid", h.procid, Some(pid.as_str()));
        let ok = h.timestamp.is_some_and(|t| self.in_window(t, 2));
        self.holds(
            case,
            raw,
            "header.timestamp",
            ok,
            format!("{:?} outside the test's run", h.timestamp),
        );
    }

    fn http(&mut self, case: &str, raw: &[u8], h: &HttpLog<'_>, want: &HttpExpect) {
        self.eq(case, raw, "client.ip", h.client.ip, "127.0.0.1");
        if let Some(port) = want.client_port {
            self.eq(case, raw, "client.port", h.client.port, Some(port));
        } else {
            self.holds(
                case,
                raw,
                "client.port",
                h.client.port.is_some_and(|p| p > 0),
                format!("{:?}", h.client.port),
            );
        }
        let ok = self.in_window(h.accept_ts, 1);
        self.holds(
            case,
            raw,
            "accept_ts",
            ok,
            format!("{} outside the test's run", h.accept_ts),
        );
        self.eq(case, raw, "frontend", h.frontend, want.frontend);
        self.eq(case, raw, "ssl", h.ssl, want.ssl);
        self.eq(case, raw, "backend", h.backend, want.backend);
        self.eq(case, raw, "server", h.server, want.server);
        let t = h.timings;
        let timers = [
            ("TR", t.request),
            ("Tw", t.queue),
            ("Tc", t.connect),
            ("Tr", t.response),
        ];
        for ((name, got), stage) in timers.iter().zip(want.stages) {
            let ok = match stage {
                Reached => got.is_some_and(|v| v >= 0),
                NotReached => got.is_none(),
            };
            self.holds(case, raw, name, ok, format!("got {got:?}, want {stage:?}"));
        }
        let sum: i32 = timers.iter().filter_map(|(_, v)| *v).sum();
        let ok = t.total.is_some_and(|ta| ta >= sum.max(want.min_total));
        self.holds(
            case,
            raw,
            "Ta",
            ok,
            format!("got {:?}, want >= {}", t.total, sum.max(want.min_total)),
        );
        self.eq(case, raw, "total_logasap", t.total_logasap, want.logasap);
        self.eq(case, raw, "status", h.status, want.status);
        match want.bytes {
            Bytes::Exact(n) => self.eq(case, raw, "bytes_read", h.bytes_read, n),
            Bytes::Between(lo, hi) => {
                let ok = (lo..=hi).contains(&h.bytes_read);
                self.holds(
                    case,
                    raw,
                    "bytes_read",
                    ok,
                    format!("got {}, want {lo}..={hi}", h.bytes_read),
                );
            }
        }
        self.eq(case, raw, "bytes_logasap", h.bytes_logasap, want.logasap);
        self.eq(case, raw, "req_cookie", h.req_cookie, None);
        self.eq(case, raw, "resp_cookie", h.resp_cookie, None);
        self.eq(case, raw, "termination_state", h.termination_state, want.state);
        let counts_ok = h.actconn >= 1
            && h.feconn >= 1
            && h.feconn <= h.actconn
            && h.beconn <= h.actconn
            && h.srv_conn <= h.actconn;
        self.holds(
            case,
            raw,
            "actconn/feconn/beconn/srv_conn",
            counts_ok,
            format!("{}/{}/{}/{}", h.actconn, h.feconn, h.beconn, h.srv_conn),
        );
        self.eq(case, raw, "retries", h.retries, 0);
        self.eq(case, raw, "redispatched", h.redispatched, false);
        self.eq(case, raw, "srv_queue", h.srv_queue, 0);
        self.eq(case, raw, "backend_queue", h.backend_queue, 0);
        let req_caps = h.req_headers.map(|c| c.decoded());
        let want_req = want
            .req_captures
            .as_ref()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        self.eq(case, raw, "req_headers", req_caps, want_req);
        let resp_caps = h.resp_headers.map(|c| c.decoded());
        let want_resp = want
            .resp_captures
            .as_ref()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        self.eq(case, raw, "resp_headers", resp_caps, want_resp);
        if want
            .req_captures
            .as_ref()
            .is_some_and(|c| c.contains(&USER_AGENT))
        {
            let logged = h.req_headers.map(|c| c.0.contains(USER_AGENT_LOGGED));
            self.eq(case, raw, "req_headers (escaped as logged)", logged, Some(true));
        }
        self.eq(case, raw, "request.method", h.request.method, want.method);
        self.eq(case, raw, "request.path", h.request.path, want.path);
        self.eq(case, raw, "request.query", h.request.query, want.query);
        self.eq(
            case,
            raw,
            "request.http_version",
            h.request.http_version,
            want.version,
        );
        self.eq(case, raw, "request.bad", h.request.bad, want.bad);
        self.eq(case, raw, "truncated", h.truncated, false);
        self.eq(case, raw, "clf", h.clf, false);
        match (&h.tls, want.https) {
            (None, false) => {}
            (Some(tls), true) => {
                self.eq(case, raw, "tls.fc_err", tls.fc_err, Some(0));
                self.eq(
                    case,
                    raw,
                    "tls.ssl_fc_err",
                    tls.ssl_fc_err,
                    Some("0000000000000000"),
                );
                self.eq(case, raw, "tls.ssl_c_err", tls.ssl_c_err, Some(0));
                self.eq(case, raw, "tls.ssl_c_ca_err", tls.ssl_c_ca_err, Some(0));
                self.eq(case, raw, "tls.resumed", tls.resumed, Some(false));
                self.eq(case, raw, "tls.sni", tls.sni, Some("localhost"));
                self.eq(case, raw, "tls.version", tls.version, Some("TLSv1.3"));
                let ok = tls.cipher.is_some_and(|c| TLS13_SUITES.contains(&c));
                self.holds(
                    case,
                    raw,
                    "tls.cipher",
                    ok,
                    format!("got {:?}, want a TLS 1.3 suite", tls.cipher),
                );
            }
            (got, _) => self.eq(case, raw, "tls", got.is_some(), want.https),
        }
    }

    fn tcp(&mut self, case: &str, raw: &[u8], t: &TcpLog<'_>, port: u16, bytes: u64) {
        self.eq(case, raw, "client.ip", t.client.ip, "127.0.0.1");
        self.eq(case, raw, "client.port", t.client.port, Some(port));
        let ok = self.in_window(t.accept_ts, 1);
        self.holds(
            case,
            raw,
            "accept_ts",
            ok,
            format!("{} outside the test's run", t.accept_ts),
        );
        self.eq(case, raw, "frontend", t.frontend, "fe_tcp");
        self.eq(case, raw, "ssl", t.ssl, false);
        self.eq(case, raw, "backend", t.backend, "be_tcp");
        self.eq(case, raw, "server", t.server, "app1");
        self.holds(
            case,
            raw,
            "queue_ms",
            t.queue_ms.is_some_and(|v| v >= 0),
            format!("{:?}", t.queue_ms),
        );
        self.holds(
            case,
            raw,
            "connect_ms",
            t.connect_ms.is_some_and(|v| v >= 0),
            format!("{:?}", t.connect_ms),
        );
        let ok = t.total_ms.is_some_and(|tt| tt >= t.connect_ms.unwrap_or(0));
        self.holds(case, raw, "total_ms", ok, format!("{:?}", t.total_ms));
        self.eq(case, raw, "total_logasap", t.total_logasap, false);
        self.eq(case, raw, "bytes_read", t.bytes_read, bytes);
        self.eq(case, raw, "bytes_logasap", t.bytes_logasap, false);
        self.eq(case, raw, "termination_state", t.termination_state, "--");
        let ok = t.actconn >= 1 && t.feconn >= 1 && t.feconn <= t.actconn && t.srv_conn <= t.actconn;
        self.holds(
            case,
            raw,
            "conn counts",
            ok,
            format!("{}/{}/{}/{}", t.actconn, t.feconn, t.beconn, t.srv_conn),
        );
        self.eq(case, raw, "retries", t.retries, 0);
        self.eq(case, raw, "redispatched", t.redispatched, false);
        self.eq(case, raw, "srv_queue", t.srv_queue, 0);
        self.eq(case, raw, "backend_queue", t.backend_queue, 0);
    }
}

/// A self-signed certificate and key in one PEM, as `bind ... ssl crt` wants.
fn make_cert(openssl: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running openssl req")
        .status;
    assert!(status.success(), "openssl req failed: {status}");
    let combined = dir.join("combined.pem");
    let mut pem = std::fs::read(&cert).expect("cert.pem");
    pem.extend(std::fs::read(&key).expect("key.pem"));
    std::fs::write(&combined, pem).expect("combined.pem");
    combined
}

/// One HTTPS request with `openssl s_client`; returns the decrypted response.
fn https_request(openssl: &std::path::Path, port: u16, request: &[u8], deadline: Instant) -> Vec<u8> {
    let mut child = Command::new(openssl)
        .args(["s_client", "-quiet", "-servername", "localhost", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request)
        .expect("writing to s_client");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    // -quiet implies -ign_eof: s_client exits when HAProxy closes after the response.
    while child.try_wait().expect("s_client status").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_client did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reader.join().expect("reader thread")
}

/// HAProxy's `%B` counts the response as it holds it internally (HTX): a few bytes less than
/// the HTTP/1 bytes the client reads (12 for a relayed response, 16 for its own pages here).
fn near(received: u64) -> Bytes {
    Bytes::Between(received.saturating_sub(32), received)
}

fn http_request(path: &str, version: &str, user_agent: Option<&str>) -> Vec<u8> {
    let mut r = format!("GET {path} {version}\r\n");
    if version == "HTTP/1.1" {
        r.push_str("Host: weir.test\r\nConnection: close\r\n");
    }
    if let Some(ua) = user_agent {
        r.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[test]
fn real_haproxy_lines_parse_field_by_field() {
    let Some(haproxy_bin) = find_haproxy() else {
        skip_unless_ci("haproxy");
        return;
    };
    let openssl = find_program("openssl");
    if openssl.is_none() && skip_unless_ci("openssl (for the HTTPS frontend)") {
        eprintln!("running without the HTTPS frontend");
    }
    // A liveness bound only: the test takes under a second when HAProxy answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let t0 = now_micros();
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = spawn_backend();
    let mut logs = LogCollector::bind().expect("bind UDP log socket");
    let https = free_port();

    let https_frontend = match &openssl {
        Some(bin) => {
            let cert = make_cert(bin, dir.path());
            HTTPS_FRONTEND
                .replace("{{HTTPS_PORT}}", &https.to_string())
                .replace("{{CERT}}", &cert.display().to_string())
        }
        None => String::new(),
    };
    let (proxy, LivePorts { http, logasap, tcp }) = start_live(
        &haproxy_bin,
        dir.path(),
        logs.port(),
        backend,
        &https_frontend,
        deadline,
    );
    // The health check marks be_down/dead1 DOWN shortly after start; requests to be_down
    // before that would still be sent to the server.
    let down_event = "Server be_down/dead1 is DOWN";
    assert!(
        logs.collect_until(deadline, |d| find_in(d, down_event).is_some()),
        "no '{down_event}' event from haproxy; it sent {} datagrams: {:?}",
        logs.datagrams.len(),
        logs.datagrams
            .iter()
            .take(5)
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect::<Vec<_>>()
    );

    // Drive the requests. Each is identified in the logs by a unique marker.
    let ua = Some(USER_AGENT);
    let mut cases: Vec<(&str, String, HttpExpect)> = Vec::new();
    let base = HttpExpect {
        client_port: None,
        frontend: "fe_http",
        ssl: false,
        backend: "be_app",
        server: "app1",
        stages: [Reached; 4],
        min_total: 0,
        status: Some(200),
        bytes: Bytes::Exact(0),
        logasap: false,
        state: "----",
        req_captures: Some(vec!["weir.test", USER_AGENT]),
        resp_captures: Some(vec!["text/html"]),
        method: Some("GET"),
        path: Some("/index.html"),
        query: None,
        version: Some("HTTP/1.1"),
        bad: false,
        https: false,
    };
    let mut simple = |name: &'static str,
                      port: u16,
                      target: &str,
                      version: &str,
                      ua: Option<&str>,
                      f: &dyn Fn(HttpExpect, u16, u64) -> HttpExpect| {
        let (local, response) = exchange(port, &http_request(target, version, ua)).expect(name);
        let want = f(base.clone(), local, response.len() as u64);
        cases.push((name, format!("127.0.0.1:{local} "), want));
    };
    simple(
        "plain 200 with captures",
        http,
        "/index.html?case=plain&x=1",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            bytes: near(n),
            query: Some("case=plain&x=1"),
            ..b
        },
    );
    simple(
        "404 from the server",
        http,
        "/missing?case=404",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            status: Some(404),
            bytes: near(n),
            resp_captures: Some(vec!["text/html; charset=utf-8"]),
            path: Some("/missing"),
            query: Some("case=404"),
            ..b
        },
    );
    simple(
        "302 from the server",
        http,
        "/moved?case=302",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            status: Some(302),
            bytes: near(n),
            resp_captures: Some(vec![""]),
            path: Some("/moved"),
            query: Some("case=302"),
            ..b
        },
    );
    simple(
        "http-request deny",
        http,
        "/forbidden?case=deny",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            backend: "fe_http",
            server: "<NOSRV>",
            stages: [Reached, NotReached, NotReached, NotReached],
            status: Some(403),
            bytes: near(n),
            state: "PR--",
            resp_captures: Some(vec![""]),
            path: Some("/forbidden"),
            query: Some("case=deny"),
            ..b
        },
    );
    simple(
        "http-request redirect",
        http,
        "/old?case=redirect",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            backend: "fe_http",
            server: "<NOSRV>",
            stages: [Reached, NotReached, NotReached, NotReached],
            status: Some(302),
            bytes: near(n),
            state: "LR--",
            resp_captures: Some(vec![""]),
            path: Some("/old"),
            query: Some("case=redirect"),
            ..b
        },
    );
    simple(
        "backend down: 503 <NOSRV>",
        http,
        "/down?case=down",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            backend: "be_down",
            server: "<NOSRV>",
            stages: [Reached, NotReached, NotReached, NotReached],
            status: Some(503),
            bytes: near(n),
            state: "SC--",
            resp_captures: Some(vec![""]),
            path: Some("/down"),
            query: Some("case=down"),
            ..b
        },
    );
    simple(
        "connection refused: 503 SC",
        http,
        "/refused?case=refused",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            backend: "be_refused",
            server: "refused1",
            stages: [Reached, Reached, NotReached, NotReached],
            status: Some(503),
            bytes: near(n),
            state: "SC--",
            resp_captures: Some(vec![""]),
            path: Some("/refused"),
            query: Some("case=refused"),
            ..b
        },
    );
    simple(
        "timeout server: 504 sH",
        http,
        "/slow?case=504",
        "HTTP/1.1",
        ua,
        &|b, p, n| HttpExpect {
            client_port: Some(p),
            stages: [Reached, Reached, Reached, NotReached],
            // `timeout server 500ms` counts from the request's forwarding, Ta from the accept,
            // both on HAProxy's millisecond clock: a line of 499 ms has been seen.
            min_total: 490,
            status: Some(504),
            bytes: near(n),
            state: "sH--",
            resp_captures: Some(vec![""]),
            path: Some("/slow"),
            query: Some("case=504"),
            ..b
        },
    );
    simple(
        "logasap, HTTP/1.0, no captures",
        logasap,
        "/index.html?case=logasap",
        "HTTP/1.0",
        None,
        &|b, p, n| {
            HttpExpect {
                client_port: Some(p),
                frontend: "fe_logasap",
                // With logasap the bytes are those sent when the line was written: the headers at least.
                bytes: Bytes::Between(1, n),
                logasap: true,
                req_captures: None,
                resp_captures: None,
                query: Some("case=logasap"),
                version: Some("HTTP/1.0"),
                ..b
            }
        },
    );

    // A request line HAProxy cannot parse.
    let (local, _) = exchange(http, b"GARBAGE\r\n\r\n").expect("bad request");
    cases.push((
        "<BADREQ>",
        format!("127.0.0.1:{local} "),
        HttpExpect {
            client_port: Some(local),
            backend: "fe_http",
            server: "<NOSRV>",
            stages: [NotReached; 4],
            status: Some(400),
            // HAProxy 2.6 logs 0 bytes for its 400 on a bad request (see the corpus).
            bytes: Bytes::Exact(0),
            state: "PR--",
            req_captures: None,
            resp_captures: None,
            method: None,
            path: None,
            version: None,
            bad: true,
            ..base.clone()
        },
    ));

    // The client resets the connection in the middle of a large body.
    let (local, got) =
        abort_download(http, &http_request("/big?case=cd", "HTTP/1.1", ua), 256 << 10).expect("download");
    cases.push((
        "client abort: CD",
        format!("127.0.0.1:{local} "),
        HttpExpect {
            client_port: Some(local),
            bytes: Bytes::Between(got as u64, BIG_BYTES as u64),
            state: "CD--",
            resp_captures: Some(vec!["application/octet-stream"]),
            path: Some("/big"),
            query: Some("case=cd"),
            ..base.clone()
        },
    ));

    // TLS, option httpslog.
    if let Some(bin) = &openssl {
        let response = https_request(
            bin,
            https,
            &http_request("/index.html?case=https", "HTTP/1.1", None),
            deadline,
        );
        cases.push((
            "https (httpslog)",
            "case=https".to_string(),
            HttpExpect {
                frontend: "fe_https",
                ssl: true,
                bytes: near(response.len() as u64),
                req_captures: None,
                resp_captures: None,
                query: Some("case=https"),
                https: true,
                ..base.clone()
            },
        ));
    }

    // TCP mode, option tcplog.
    let (tcp_port, tcp_response) =
        exchange(tcp, &http_request("/index.html?case=tcp", "HTTP/1.0", None)).expect("tcp exchange");
    let tcp_marker = format!("127.0.0.1:{tcp_port} ");

    let markers: Vec<String> = cases
        .iter()
        .map(|c| c.1.clone())
        .chain([tcp_marker.clone()])
        .collect();
    let all_in = logs.collect_until(deadline, |d| markers.iter().all(|m| find_in(d, m).is_some()));
    let t1 = now_micros();
    let received = || {
        logs.datagrams
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect::<Vec<_>>()
            .join("")
    };
    assert!(
        all_in,
        "not every expected line arrived; missing {:?}\nreceived:\n{}",
        markers
            .iter()
            .filter(|m| logs.find(m).is_none())
            .collect::<Vec<_>>(),
        received()
    );

    let year = civil_from_micros(t0).0;
    let opts = ParseOptions {
        year,
        ..ParseOptions::default()
    };
    let mut checks = Checks {
        failures: Vec::new(),
        window: (t0, t1),
        pid: proxy.pid().to_string(),
    };
    for (case, marker, want) in &cases {
        let raw = logs.find(marker).expect("collected");
        let line: Line<'_> = parse_line(raw, &opts);
        checks.header(case, raw, &line.header);
        match &line.record {
            Record::Http(h) => checks.http(case, raw, h, want),
            other => checks.failures.push(format!(
                "[{case}] record: got {other:?}, want Http\n    line: {}",
                String::from_utf8_lossy(raw).trim_end()
            )),
        }
    }
    let raw = logs.find(&tcp_marker).expect("collected");
    let line = parse_line(raw, &opts);
    checks.header("tcplog", raw, &line.header);
    match &line.record {
        Record::Tcp(t) => checks.tcp("tcplog", raw, t, tcp_port, tcp_response.len() as u64),
        other => checks
            .failures
            .push(format!("[tcplog] record: got {other:?}, want Tcp")),
    }
    let raw = logs.find(down_event).expect("collected");
    let line = parse_line(raw, &opts);
    match &line.record {
        Record::App(a) => {
            checks.eq("server DOWN event", raw, "kind", a.kind, AppKind::HaproxyEvent);
            checks.eq(
                "server DOWN event",
                raw,
                "subject",
                a.subject,
                Some("be_down/dead1"),
            );
        }
        other => checks
            .failures
            .push(format!("[server DOWN event] record: got {other:?}, want App")),
    }
    drop(proxy);
    assert!(
        checks.failures.is_empty(),
        "{} field(s) differ:\n{}",
        checks.failures.len(),
        checks.failures.join("\n")
    );
}
