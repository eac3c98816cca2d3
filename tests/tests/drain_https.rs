//! An HTTPS drain against a real HTTPS endpoint on loopback: `tests/drain/logplex_receiver.py`
//! (Python's `http.server` behind `ssl`, with a certificate `openssl` signs for the test from a
//! CA of its own) records every POST. The drained app's lines arrive once each, in order, in
//! `application/logplex-1` batches whose `Logplex-Msg-Count` matches their frames, with the
//! drain's token, a fresh frame id per batch, weir's user agent and basic auth from the URL.
//! With the endpoint answering 503, the batch in flight is sent again under the same frame id
//! until taken, the buffer keeps its newest lines, and the next batch opens with `Error L10`;
//! with the endpoint killed and started again, the lines meanwhile arrive once it is back. A
//! second drain to the same endpoint without `ca_file` never gets through: the certificate is
//! checked. The other app's tail gets all of its lines throughout.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{TailChild, WeirServe};
use support::{find_program, skip_unless_ci};

const BUFFER: usize = 50;

/// A CA and a certificate for 127.0.0.1 signed by it: `(ca.pem, server.pem, server.key)`.
fn make_certs(openssl: &Path, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name);
    let run = |args: &[&str]| {
        let out = Command::new(openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=weir test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// The receiver, recording to `dir/posts.jsonl`, answering 503 while `dir/down` exists.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    fn start(python: &Path, dir: &Path, port: u16) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("drain/logplex_receiver.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--cert")
            .arg(dir.join("server.pem"))
            .arg("--key")
            .arg(dir.join("server.key"))
            .args(["--port", &port.to_string()])
            .arg("--record")
            .arg(dir.join("posts.jsonl"))
            .arg("--down-file")
            .arg(dir.join("down"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver printed {first:?}, not its port"));
        Receiver { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A POST the receiver recorded.
#[derive(Debug, Clone)]
struct Post {
    status: u16,
    path: String,
    headers: serde_json::Map<String, serde_json::Value>,
    /// The body's frames, each `<len> <msg>` checked and cut.
    messages: Vec<String>,
}

impl Post {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.as_str()).unwrap_or("")
    }
}

fn posts(dir: &Path) -> Vec<Post> {
    std::fs::read_to_string(dir.join("posts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let hex = v["body"].as_str().unwrap();
            let body: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Post {
                status: v["status"].as_u64().unwrap() as u16,
                path: v["path"].as_str().unwrap().to_owned(),
                headers: v["headers"].as_object().unwrap().clone(),
                messages: frames(&body),
            }
        })
        .collect()
}

/// The frames of an `application/logplex-1` body; panics on a bad one.
fn frames(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or_else(|| panic!("no length in {:?}", String::from_utf8_lossy(rest)));
        let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
        assert!(rest.len() > sp + len, "a frame runs past the body");
        out.push(String::from_utf8(rest[sp + 1..sp + 1 + len].to_vec()).unwrap());
        rest = &rest[sp + 1 + len..];
    }
    out
}

/// The messages of the POSTs to `/logs` the receiver took, in order.
fn taken(dir: &Path) -> Vec<String> {
    posts(dir)
        .into_iter()
        .filter(|p| p.status == 200 && p.path == "/logs")
        .flat_map(|p| p.messages)
        .collect()
}

fn wait_for(deadline: Instant, what: &str, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message of a drained `web` line (`web line N`), or the L10 notice as `L10 <count>`.
fn short(msg: &str) -> String {
    if let Some(rest) = msg
        .split_once("Error L10 (output buffer overflow): ")
        .map(|x| x.1)
    {
        assert!(msg.starts_with("<172>1 "), "{msg}");
        assert!(msg.contains(" e2e weir drain - - "), "{msg}");
        return format!("L10 {}", rest.split(' ').next().unwrap());
    }
    let re =
        regex::Regex::new(r"^<134>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z host1 web 7 - - (web line \d+)$")
            .unwrap();
    match re.captures(msg) {
        Some(c) => c[1].to_owned(),
        None => panic!("not an RFC 5424 web line: {msg:?}"),
    }
}

fn web_lines(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("web line {i}")).collect()
}

#[test]
fn an_https_drain_posts_logplex_batches_once_each_and_says_l10_after_an_outage() {
    let (Some(openssl), Some(python)) = (find_program("openssl"), find_program("python3")) else {
        skip_unless_ci("openssl and python3");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ca, _, _) = make_certs(&openssl, dir);
    let mut receiver = Receiver::start(&python, dir, 0);
    let port = receiver.port;
    let config = format!(
        "[[drain]]\napp = \"web\"\nurl = \"https://user:s3cret@127.0.0.1:{port}/logs\"\n\
         buffer = {BUFFER}\nca_file = \"{}\"\n\
         [[drain]]\napp = \"other\"\nurl = \"https://127.0.0.1:{port}/unverified\"\nbuffer = 10\n",
        ca.display()
    );
    let mut weir = WeirServe::start(dir, &config);
    let other_tail = TailChild::spawn(dir, "other", &weir.url(), &["--app", "other"]);
    weir.wait_tail_sessions(3, deadline);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |app: &str, i: usize| {
        let line = format!("<134>Nov 30 12:00:00 host1 {app}[7]: {app} line {i}");
        sock.send_to(line.as_bytes(), weir.udp).unwrap();
    };
    let logs = "/logs\"";

    // 1. Up: the web lines arrive once each, in order, in well-formed batches.
    for i in 1..=20 {
        send("web", i);
        send("other", i);
    }
    wait_for(deadline, "20 drained lines", || taken(dir).len() >= 20);
    let shown: Vec<String> = taken(dir).iter().map(|m| short(m)).collect();
    assert_eq!(shown, web_lines(1..=20));
    let (_, sources) = weir.get("/api/sources");
    let sources: Vec<serde_json::Value> = serde_json::from_str(&sources).unwrap();
    let drain = sources
        .iter()
        .find(|s| s["drain"].as_str().is_some_and(|d| d.ends_with("/logs")))
        .expect("the drain in /api/sources");
    assert_eq!(
        drain["drain"],
        format!("https://user:***@127.0.0.1:{port}/logs"),
        "the password is masked"
    );
    let token = drain["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("d."), "{token}");
    let first = posts(dir);
    let mut ids = std::collections::HashSet::new();
    for p in first.iter().filter(|p| p.path == "/logs") {
        assert_eq!(p.status, 200);
        assert_eq!(p.header("content-type"), "application/logplex-1");
        assert_eq!(p.header("logplex-msg-count"), p.messages.len().to_string());
        assert_eq!(p.header("logplex-drain-token"), token);
        assert_eq!(
            p.header("user-agent"),
            concat!("weir/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(p.header("authorization"), "Basic dXNlcjpzM2NyZXQ=");
        assert!(
            ids.insert(p.header("logplex-frame-id").to_owned()),
            "frame ids repeat"
        );
    }
    // The drain without ca_file does not trust the test's CA: nothing of it gets through.
    weir.wait_metrics(deadline, "the unverified drain failing", |m| {
        m.sum_where("weir_drain_errors_total", &["/unverified\""]) >= 1
    });
    assert!(first.iter().all(|p| p.path == "/logs"), "{first:?}");

    // 2. The endpoint answers 503: the batch in flight (line 21) is held and retried; 200 more
    //    lines fill the buffer, which keeps the newest 50.
    std::fs::write(dir.join("down"), "").unwrap();
    send("web", 21);
    weir.wait_metrics(deadline, "a refused batch", |m| {
        m.sum_where("weir_drain_errors_total", &[logs]) >= 1
    });
    for i in 22..=221 {
        send("web", i);
        send("other", i - 1);
    }
    let dropped_by_router = || {
        let (_, s) = weir.get("/api/sources");
        let s: Vec<serde_json::Value> = serde_json::from_str(&s).unwrap();
        s.iter()
            .filter(|x| x["app"] == "web" && x.get("drain").is_none())
            .map(|x| x["drops"].as_u64().unwrap())
            .sum::<u64>()
    };
    wait_for(deadline, "the buffer's oldest lines dropped", || {
        dropped_by_router() >= (200 - BUFFER) as u64
    });
    assert!(
        taken(dir).len() == 20,
        "nothing is taken while the endpoint answers 503"
    );

    // Back: the held batch, then a batch opening with the L10 notice, then the newest lines.
    std::fs::remove_file(dir.join("down")).unwrap();
    wait_for(deadline, "the newest line after the outage", || {
        taken(dir).last().is_some_and(|m| m.ends_with("web line 221"))
    });
    let after: Vec<String> = taken(dir)[20..].iter().map(|m| short(m)).collect();
    let mut want = vec!["web line 21".to_owned(), format!("L10 {}", 200 - BUFFER)];
    want.extend(web_lines(222 - BUFFER..=221));
    assert_eq!(after, want);
    let all = posts(dir);
    let held: Vec<&Post> = all
        .iter()
        .filter(|p| p.messages.first().is_some_and(|m| m.ends_with("web line 21")))
        .collect();
    assert!(held.len() >= 2, "refused, then taken: {held:?}");
    assert!(held
        .iter()
        .all(|p| p.header("logplex-frame-id") == held[0].header("logplex-frame-id")));
    assert_eq!(held.last().unwrap().status, 200);
    let notice = all
        .iter()
        .find(|p| p.status == 200 && p.messages.iter().any(|m| m.contains("Error L10")))
        .unwrap();
    assert!(
        notice.messages[0].contains("Error L10"),
        "the notice opens its batch"
    );
    let m = weir.metrics();
    assert_eq!(
        m.sum_where("weir_drain_dropped_total", &[logs]),
        (200 - BUFFER) as u64
    );
    assert_eq!(m.sum_where("weir_drain_notices_total", &[logs]), 1);
    assert_eq!(m.sum_where("weir_drain_sent_total", &[logs]), 21 + BUFFER as u64);
    assert_eq!(m.sum_where("weir_drain_sent_total", &["/unverified\""]), 0);
    assert!(!m.text.contains("s3cret"), "the password is not on /metrics");

    // 3. The endpoint killed, then started again on its port: nothing is lost meanwhile.
    let errors = m.sum_where("weir_drain_errors_total", &[logs]);
    receiver.kill();
    for i in 222..=231 {
        send("web", i);
        send("other", i - 1);
    }
    weir.wait_metrics(deadline, "a failed connection", |m| {
        m.sum_where("weir_drain_errors_total", &[logs]) > errors
    });
    let _receiver = Receiver::start(&python, dir, port);
    wait_for(deadline, "the lines sent while the endpoint was gone", || {
        taken(dir).last().is_some_and(|m| m.ends_with("web line 231"))
    });
    let after: Vec<String> = taken(dir)[20 + 2 + BUFFER..].iter().map(|m| short(m)).collect();
    assert_eq!(after, web_lines(222..=231));

    assert!(
        other_tail.wait_until(deadline, |l| l.len() >= 230),
        "the other app's tail got {} lines",
        other_tail.lines().len()
    );
    assert_eq!(other_tail.lines().len(), 230, "the other app's tail is untouched");
    let log = weir.stderr_text();
    assert!(
        log.contains(&format!("drain https://127.0.0.1:{port}/unverified: POST failed"))
            && log.to_lowercase().contains("certificate"),
        "the TLS failure is logged: {log}"
    );
    assert!(!log.contains("s3cret"), "the password is not logged: {log}");
    assert!(
        posts(dir).iter().all(|p| p.path == "/logs"),
        "the unverified drain never got through"
    );
    weir.stop(deadline);
}
