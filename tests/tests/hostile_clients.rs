//! A server against many clients at once: 10,000 TCP connections that never send and 10,000
//! tail requests. Past `ingest.max_tcp_connections` and `router.max_tails` the excess is closed
//! or answered 503 and counted, resident memory stays bounded, and the server keeps receiving
//! and publishing other traffic.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serve_support::{row_count, status_kib, WeirServe};
use weir_store::Table;

const CLIENTS: usize = 10_000;
const MAX_TCP: usize = 1_000;
const MAX_TAILS: usize = 200;

/// Whether the server closed `s` (a non-blocking peek reads end of stream).
fn closed_by_peer(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let closed = matches!(s.peek(&mut b), Ok(0));
    s.set_nonblocking(false).unwrap();
    closed
}

/// Descriptors the server (which inherits the limit) and this test need at once: the kept
/// connections and tails, the ones not yet swept, the spool's files.
const FILES_NEEDED: u64 = 4_096;

/// Raises this process's open-file limit to what the test needs, when the hard limit allows.
fn enough_files() -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    soft >= FILES_NEEDED
        || (hard >= FILES_NEEDED && setrlimit(Resource::RLIMIT_NOFILE, FILES_NEEDED, hard).is_ok())
}

#[test]
fn ten_thousand_idle_connections_and_tails_are_bounded_refused_and_counted() {
    if !enough_files() {
        support::skip_unless_ci("an open-file limit of 4,096");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[ingest]\nmax_tcp_connections = {MAX_TCP}\n[router]\nmax_tails = {MAX_TAILS}\n");
    let mut weir = WeirServe::start(dir.path(), &config);

    // Idle TCP senders: the first MAX_TCP stay open, the rest are closed by the server.
    let mut idle: Vec<TcpStream> = Vec::new();
    for i in 1..=CLIENTS {
        idle.push(TcpStream::connect(weir.tcp).unwrap());
        if i.is_multiple_of(500) {
            idle.retain(|s| !closed_by_peer(s));
        }
    }
    weir.wait_metrics(deadline, "the excess connections refused", |m| {
        m.get("weir_tcp_refused_total") == (CLIENTS - MAX_TCP) as u64
    });
    idle.retain(|s| !closed_by_peer(s));
    assert_eq!(idle.len(), MAX_TCP, "the connections within the limit stay open");

    // Tails: the first MAX_TAILS stream, the rest are answered 503.
    let (mut streaming, mut refused) = (Vec::new(), 0);
    for _ in 0..CLIENTS {
        let mut s = TcpStream::connect(weir.http).unwrap();
        s.write_all(b"GET /api/tail HTTP/1.1\r\nHost: weir\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        match &head[9..12] {
            b"200" => streaming.push(s),
            b"503" => refused += 1,
            other => panic!("tail answered {}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!((streaming.len(), refused), (MAX_TAILS, CLIENTS - MAX_TAILS));

    // Other traffic still flows in and is published; memory stays bounded.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..1_000 {
        let line = format!("<134>Nov 30 12:00:00 host1 web[7]: at=info n={i}");
        sock.send_to(line.as_bytes(), weir.udp).unwrap();
    }
    let m = weir.wait_metrics(deadline, "the other traffic accepted", |m| {
        m.sum_where("weir_accepted_total", &["table=\"app\""]) >= 1_000
    });
    assert_eq!(m.get("weir_tails_refused_total"), (CLIENTS - MAX_TAILS) as u64);
    assert_eq!(m.get("weir_tail_sessions"), MAX_TAILS as u64);
    let rss_mib = status_kib(weir.pid(), "VmRSS") / 1024;
    // About 60 MiB in a debug build: 1,200 open connections cost little.
    assert!(rss_mib < 200, "resident memory {rss_mib} MiB");
    drop(streaming);
    drop(idle);
    weir.stop(deadline);
    assert_eq!(
        row_count(&weir.spool, Table::App),
        1_000,
        "the other traffic is in the spool"
    );
}
