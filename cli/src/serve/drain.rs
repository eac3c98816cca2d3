//! Drains, as logplex has them: each `[[drain]]` forwards one app's lines to a syslog server,
//! `syslog+tcp://HOST:PORT` (RFC 5424, octet-counted frames, RFC 6587) or `syslog+udp://HOST:PORT`
//! (one datagram a line).
//!
//! A drain is a tail session of the router with a queue of its own size (`buffer`): while its
//! server is unreachable the drain stops reading, the queue keeps the newest lines and drops the
//! oldest, and once it is connected again the router's in-band count of what was dropped goes
//! out first as `Error L10 (output buffer overflow): N messages dropped since T`. Each drain has
//! its own thread and buffer, so a dead drain slows nothing else: not the pipeline, not the
//! other drains, not the tails. It reconnects with backoff (100 ms doubling to 10 s).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use weir_ingest::router::{RecvError, Router, TailFilter, TailItem};
use weir_ingest::ParseOptions;
use weir_model::time::{civil_from_micros, format_rfc3339, now_micros};
use weir_model::Micros;

/// How long a send may block before the server counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Where a drain sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `syslog+tcp://HOST:PORT`.
    Tcp(String),
    /// `syslog+udp://HOST:PORT`.
    Udp(String),
}

impl Target {
    /// Reads a drain URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, addr) = url.split_once("://").ok_or_else(|| {
            format!("drain url {url:?}: expected syslog+tcp://HOST:PORT or syslog+udp://HOST:PORT")
        })?;
        if addr.is_empty() || !addr.contains(':') {
            return Err(format!("drain url {url:?}: expected HOST:PORT after {scheme}://"));
        }
        match scheme {
            "syslog+tcp" | "syslog" => Ok(Target::Tcp(addr.to_owned())),
            "syslog+udp" => Ok(Target::Udp(addr.to_owned())),
            _ => Err(format!(
                "drain url {url:?}: the scheme must be syslog+tcp or syslog+udp"
            )),
        }
    }
}

/// A drain's counters, read by `/metrics` and `/api/sources`.
#[derive(Debug, Default)]
pub struct DrainStats {
    /// Lines sent.
    pub sent: AtomicU64,
    /// Lines dropped from the full buffer (as the L10 notices counted them).
    pub dropped: AtomicU64,
    /// L10 notices sent.
    pub notices: AtomicU64,
    /// Connections made.
    pub connects: AtomicU64,
    /// Whether it is connected now.
    pub connected: AtomicBool,
}

/// A running drain.
#[derive(Debug)]
pub struct Drain {
    /// The app whose lines it forwards.
    pub app: String,
    /// Its URL, as configured.
    pub url: String,
    /// Its buffer, in lines.
    pub buffer: usize,
    /// Its counters.
    pub stats: Arc<DrainStats>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    /// Starts forwarding the lines of `app` (as `weir tail --app` matches it) to `url`, with a
    /// buffer of `buffer` lines, until `stop` is set.
    pub fn start(
        router: &Router,
        app: &str,
        url: &str,
        buffer: usize,
        node: &str,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Drain> {
        let target = Target::parse(url).map_err(anyhow::Error::msg)?;
        let session = router.subscribe_capped(
            TailFilter {
                app: Some(app.to_owned()),
                ..TailFilter::default()
            },
            0,
            buffer,
            // Bounded by `buffer` lines of at most `ingest.max_line` bytes each, as configured.
            usize::MAX,
        );
        let stats = Arc::new(DrainStats::default());
        let thread = {
            let stats = stats.clone();
            let node = node.to_owned();
            std::thread::Builder::new()
                .name(format!("weir-drain-{app}"))
                .spawn(move || run(session, target, &node, &stats, &stop))?
        };
        Ok(Drain {
            app: app.to_owned(),
            url: url.to_owned(),
            buffer,
            stats,
            thread: Some(thread),
        })
    }

    /// Waits for the drain's thread (after `stop` was set).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connection to the drain's server.
enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Conn {
    fn open(target: &Target) -> std::io::Result<Conn> {
        match target {
            Target::Tcp(addr) => {
                let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
                for a in addr.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&a, WRITE_TIMEOUT) {
                        Ok(s) => {
                            s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                            s.set_nodelay(true)?;
                            return Ok(Conn::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            Target::Udp(addr) => {
                let a = addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
                let bind = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(bind)?;
                s.connect(a)?;
                Ok(Conn::Udp(s))
            }
        }
    }

    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                // A syslog server never writes back: a readable socket is one it closed (or
                // reset), and a line written to it now would be lost without an error.
                if peer_closed(s) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the syslog server closed the connection",
                    ));
                }
                let mut frame = Vec::with_capacity(msg.len() + 8);
                frame.extend_from_slice(msg.len().to_string().as_bytes());
                frame.push(b' ');
                frame.extend_from_slice(msg);
                s.write_all(&frame)
            }
            Conn::Udp(s) => s.send(msg).map(|_| ()),
        }
    }
}

/// Whether the peer closed or reset the connection (a non-blocking peek sees end of stream or
/// an error rather than "nothing yet").
fn peer_closed(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let closed = match s.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    closed
}

/// Sleeps `d` unless `stop` is set first (checked every 50 ms).
fn pause(d: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop.load(Relaxed) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

fn run(
    mut session: weir_ingest::router::TailSession,
    target: Target,
    node: &str,
    stats: &DrainStats,
    stop: &AtomicBool,
) {
    let mut conn: Option<Conn> = None;
    let mut retry = FIRST_RETRY;
    let mut held: Option<(bool, Vec<u8>)> = None;
    while !stop.load(Relaxed) {
        let Some(c) = conn.as_mut() else {
            match Conn::open(&target) {
                Ok(c) => {
                    conn = Some(c);
                    retry = FIRST_RETRY;
                    stats.connects.fetch_add(1, Relaxed);
                    stats.connected.store(true, Relaxed);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "drain: cannot connect");
                    pause(retry, stop);
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            continue;
        };
        let msg = match held.take() {
            Some(m) => m,
            None => match session.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => message(item, node, stats),
                Err(RecvError::Timeout) => continue,
                Err(RecvError::Closed) => break,
            },
        };
        match c.send(&msg.1) {
            Ok(()) => count(&msg, stats),
            Err(e) => {
                tracing::debug!(error = %e, "drain: send failed, reconnecting");
                held = Some(msg);
                conn = None;
                stats.connected.store(false, Relaxed);
                pause(retry, stop);
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
    // Stopping: what is held and queued goes out while the server takes it.
    if let Some(c) = conn.as_mut() {
        let rest = held.into_iter().chain(std::iter::from_fn(|| {
            session.try_recv().map(|i| message(i, node, stats))
        }));
        for msg in rest {
            if c.send(&msg.1).is_err() {
                break;
            }
            count(&msg, stats);
        }
    }
    stats.connected.store(false, Relaxed);
}

/// What goes out for an item: a line (`true`) or an L10 notice (`false`), as RFC 5424.
fn message(item: TailItem, node: &str, stats: &DrainStats) -> (bool, Vec<u8>) {
    match item {
        TailItem::Line(l) => (true, rfc5424(&l.line.raw, l.line.fields.received_at)),
        TailItem::Overflow(o) => {
            stats.dropped.fetch_add(o.dropped, Relaxed);
            (false, notice(node, &o.drain_notice()))
        }
    }
}

/// Counts a message sent.
fn count(msg: &(bool, Vec<u8>), stats: &DrainStats) {
    let c = if msg.0 { &stats.sent } else { &stats.notices };
    c.fetch_add(1, Relaxed);
}

/// A received line as RFC 5424: its PRI, time (the header's, else when weir received it), host,
/// app, procid and structured data, and its message.
fn rfc5424(raw: &[u8], received_at: Micros) -> Vec<u8> {
    let opts = ParseOptions {
        year: civil_from_micros(received_at).0,
        ..ParseOptions::default()
    };
    let (pri, ts, host, app, procid, sd, msg) = match weir_ingest::syslog::parse_header(raw, &opts) {
        Ok((h, _, msg)) => (
            h.facility
                .zip(h.severity)
                .map_or(13, |(f, s)| u16::from(f) * 8 + u16::from(s)),
            h.timestamp.unwrap_or(received_at),
            h.host,
            h.app,
            h.procid,
            h.structured_data,
            msg,
        ),
        Err(_) => (13, received_at, None, None, None, None, raw),
    };
    let mut out = format!(
        "<{pri}>1 {} {} {} {} - {} ",
        format_rfc3339(ts),
        host.unwrap_or("-"),
        app.unwrap_or("-"),
        procid.unwrap_or("-"),
        sd.unwrap_or("-")
    )
    .into_bytes();
    out.extend_from_slice(msg);
    out
}

/// weir's own notice (local5.warning, app `weir`, procid `drain`).
fn notice(node: &str, text: &str) -> Vec<u8> {
    let host = if node.is_empty() { "-" } else { node };
    format!(
        "<172>1 {} {host} weir drain - - {text}",
        format_rfc3339(now_micros())
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("syslog+tcp://127.0.0.1:601"),
            Ok(Target::Tcp("127.0.0.1:601".into()))
        );
        assert_eq!(
            Target::parse("syslog+udp://[::1]:514"),
            Ok(Target::Udp("[::1]:514".into()))
        );
        for bad in [
            "127.0.0.1:601",
            "https://logs.example.com/x",
            "syslog+tcp://",
            "syslog+udp://host",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_rewritten_as_rfc5424() {
        let at = weir_model::time::micros_from_civil(2026, 11, 22, 1, 22, 6, 0);
        let m = rfc5424(b"<190>Nov 22 01:22:06 app1 web.1[42]: at=info n=1", at + 5);
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "<190>1 2026-11-22T01:22:06.000000Z app1 web.1 42 - - at=info n=1"
        );
        let m = rfc5424(b"<14>1 2026-11-22T01:22:06Z h shop web.2 ID [x a=\"1\"] hi", at);
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "<14>1 2026-11-22T01:22:06.000000Z h shop web.2 - [x a=\"1\"] hi"
        );
        let m = rfc5424(b"no header at all", at);
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "<13>1 2026-11-22T01:22:06.000000Z - - - - - no header at all"
        );
    }
}
