//! Drains, as logplex has them: each `[[drain]]` forwards one app's lines as RFC 5424 to a
//! syslog server, `syslog+tcp://HOST:PORT` (octet-counted frames, RFC 6587) or
//! `syslog+udp://HOST:PORT` (one datagram a line), or to an HTTPS endpoint, `https://...` (or
//! `http://...`), in batches POSTed as logplex's `application/logplex-1` ([`https`]).
//!
//! A drain is a tail session of the router with a queue of its own size (`buffer`): while its
//! server is unreachable the drain stops reading, the queue keeps the newest lines and drops the
//! oldest, and once it is connected again the router's in-band count of what was dropped goes
//! out first as `Error L10 (output buffer overflow): N messages dropped since T`. Each drain has
//! its own thread and buffer, so a dead drain slows nothing else: not the pipeline, not the
//! other drains, not the tails. It reconnects with backoff (100 ms doubling to 10 s).

pub mod https;

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

use anyhow::Context;

use crate::config::DrainConfig;

/// How long a send may block before the server counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// The most lines a syslog drain reads from its queue and writes at once.
const WRITE_BATCH: usize = 256;

/// Where a drain sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `syslog+tcp://HOST:PORT`.
    Tcp(String),
    /// `syslog+udp://HOST:PORT`.
    Udp(String),
    /// `https://[USER:PASSWORD@]HOST[:PORT][/PATH]` or `http://...`, the whole URL.
    Http(String),
}

impl Target {
    /// Reads a drain URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        const EXPECTED: &str =
            "expected syslog+tcp://HOST:PORT, syslog+udp://HOST:PORT or https://HOST[:PORT]/PATH";
        let shown = redact(url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("drain url {shown:?}: {EXPECTED}"))?;
        match scheme {
            "syslog+tcp" | "syslog" | "syslog+udp" => {
                if rest.is_empty() || !rest.contains(':') {
                    return Err(format!(
                        "drain url {shown:?}: expected HOST:PORT after {scheme}://"
                    ));
                }
                Ok(if scheme == "syslog+udp" {
                    Target::Udp(rest.to_owned())
                } else {
                    Target::Tcp(rest.to_owned())
                })
            }
            "https" | "http" => {
                let uri: ureq::http::Uri = url.parse().map_err(|e| format!("drain url {shown:?}: {e}"))?;
                if uri.host().is_none_or(str::is_empty) {
                    return Err(format!("drain url {shown:?}: expected a host after {scheme}://"));
                }
                Ok(Target::Http(url.to_owned()))
            }
            _ => Err(format!("drain url {shown:?}: {EXPECTED}")),
        }
    }
}

/// The URL with the password of its userinfo (`https://user:token@host/`, the drain's basic
/// auth) replaced by `***`: what `/metrics`, `/api/sources` and the logs show.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A drain's id, sent as `Logplex-Drain-Token`: `d.` and 32 hex digits hashed from its app and
/// URL, so it stays the same across restarts and config reloads.
pub fn drain_id(app: &str, url: &str) -> String {
    let a = fnv1a(0xcbf2_9ce4_8422_2325, [app.as_bytes(), b"\0", url.as_bytes()]);
    let b = fnv1a(a ^ 0x9e37_79b9_7f4a_7c15, [url.as_bytes(), b"\0", app.as_bytes()]);
    format!("d.{a:016x}{b:016x}")
}

/// FNV-1a over the parts, from `seed`.
fn fnv1a<'a>(seed: u64, parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    parts.into_iter().flatten().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
    /// Connections made (HTTPS: times the endpoint took a batch after having refused one, or
    /// the first time).
    pub connects: AtomicU64,
    /// Whether it is connected now (HTTPS: whether the endpoint took the last batch).
    pub connected: AtomicBool,
    /// Failed attempts: connections refused or timed out, TLS failures, writes that failed,
    /// HTTP answers other than 2xx.
    pub errors: AtomicU64,
    /// HTTPS: batches the endpoint took (2xx).
    pub batches: AtomicU64,
}

impl DrainStats {
    /// Counts a connection (or, over HTTPS, an accepted batch after none or a refused one).
    fn connected(&self) {
        if !self.connected.swap(true, Relaxed) {
            self.connects.fetch_add(1, Relaxed);
        }
    }

    /// Counts a failed attempt; the first failure after a success (or at all) is logged as a
    /// warning, the retries that follow only at debug level.
    fn failed(&self, drain: &str, what: &str, error: &dyn std::fmt::Display) {
        let first = self.errors.fetch_add(1, Relaxed) == 0;
        if self.connected.swap(false, Relaxed) || first {
            tracing::warn!("drain {drain}: {what}: {error}; retrying with backoff");
        } else {
            tracing::debug!("drain {drain}: {what}: {error}");
        }
    }
}

/// A running drain.
#[derive(Debug)]
pub struct Drain {
    /// The app whose lines it forwards.
    pub app: String,
    /// Its URL, the password of its userinfo masked ([`redact`]).
    pub url: String,
    /// Its id ([`drain_id`]).
    pub id: String,
    /// Its buffer, in lines.
    pub buffer: usize,
    /// Its counters.
    pub stats: Arc<DrainStats>,
    thread: Option<JoinHandle<()>>,
}

impl Drain {
    /// Starts forwarding the lines of `config.app` (as `weir tail --app` matches it) to
    /// `config.url`, with a buffer of `config.buffer` lines, until `stop` is set.
    pub fn start(
        router: &Router,
        config: &DrainConfig,
        node: &str,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Drain> {
        let DrainConfig {
            app,
            url,
            buffer,
            ca_file,
        } = config;
        let target = Target::parse(url).map_err(anyhow::Error::msg)?;
        let shown = redact(url);
        let id = drain_id(app, url);
        let sender = match &target {
            Target::Http(url) => Some(
                https::HttpSender::new(url, &id, ca_file.as_deref())
                    .with_context(|| format!("drain {shown}"))?,
            ),
            _ => None,
        };
        let session = router.subscribe_capped(
            TailFilter {
                app: Some(app.clone()),
                ..TailFilter::default()
            },
            0,
            *buffer,
            // Bounded by `buffer` lines of at most `ingest.max_line` bytes each, as configured.
            usize::MAX,
        );
        let stats = Arc::new(DrainStats::default());
        let thread = {
            let stats = stats.clone();
            let node = node.to_owned();
            let name = shown.clone();
            std::thread::Builder::new()
                .name(format!("weir-drain-{app}"))
                .spawn(move || match sender {
                    Some(mut sender) => https::run(session, &mut sender, &name, &node, &stats, &stop),
                    None => run(session, target, &name, &node, &stats, &stop),
                })?
        };
        Ok(Drain {
            app: app.clone(),
            url: shown,
            id,
            buffer: *buffer,
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
            Target::Http(_) => unreachable!("https drains send with https::HttpSender"),
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

    /// Sends `msgs` in order: over TCP as one write of octet-counted frames, over UDP a
    /// datagram each. On failure, how many were surely sent (over TCP none can be told apart,
    /// so the caller sends them all again: at least once).
    fn send(
        &mut self,
        msgs: &[(bool, Vec<u8>)],
        frames: &mut Vec<u8>,
    ) -> Result<(), (usize, std::io::Error)> {
        match self {
            Conn::Tcp(s) => {
                // A syslog server never writes back: a readable socket is one it closed (or
                // reset), and lines written to it now would be lost without an error.
                if peer_closed(s) {
                    return Err((
                        0,
                        std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "the syslog server closed the connection",
                        ),
                    ));
                }
                frames.clear();
                for (_, msg) in msgs {
                    let _ = write!(frames, "{} ", msg.len());
                    frames.extend_from_slice(msg);
                }
                s.write_all(frames).map_err(|e| (0, e))
            }
            Conn::Udp(s) => {
                for (i, (_, msg)) in msgs.iter().enumerate() {
                    s.send(msg).map_err(|e| (i, e))?;
                }
                Ok(())
            }
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
    name: &str,
    node: &str,
    stats: &DrainStats,
    stop: &AtomicBool,
) {
    let mut conn: Option<Conn> = None;
    let mut retry = FIRST_RETRY;
    // What is read and not yet sent, oldest first: a failed write's messages stay here.
    let mut held: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut items: Vec<TailItem> = Vec::new();
    let mut frames: Vec<u8> = Vec::new();
    while !stop.load(Relaxed) {
        let Some(c) = conn.as_mut() else {
            match Conn::open(&target) {
                Ok(c) => {
                    conn = Some(c);
                    retry = FIRST_RETRY;
                    stats.connected();
                }
                Err(e) => {
                    stats.failed(name, "cannot connect", &e);
                    pause(retry, stop);
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            continue;
        };
        if held.is_empty() {
            match session.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => {
                    items.push(item);
                    session.drain_into(&mut items, WRITE_BATCH - 1);
                    held.extend(items.drain(..).map(|i| message(i, node, stats)));
                }
                Err(RecvError::Timeout) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        match c.send(&held, &mut frames) {
            Ok(()) => held.drain(..).for_each(|m| count(&m, stats)),
            Err((sent, e)) => {
                stats.failed(name, "send failed, reconnecting", &e);
                held.drain(..sent).for_each(|m| count(&m, stats));
                conn = None;
                pause(retry, stop);
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
    // Stopping: what is held and queued goes out while the server takes it.
    if let Some(c) = conn.as_mut() {
        loop {
            if held.is_empty() {
                session.drain_into(&mut items, WRITE_BATCH);
                held.extend(items.drain(..).map(|i| message(i, node, stats)));
            }
            if held.is_empty() || c.send(&held, &mut frames).is_err() {
                break;
            }
            held.drain(..).for_each(|m| count(&m, stats));
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
        for ok in [
            "https://logs.example.com/x",
            "https://user:t0ken@logs.example.com:8443/drain?x=1",
            "http://127.0.0.1:8080",
        ] {
            assert_eq!(Target::parse(ok), Ok(Target::Http(ok.into())));
        }
        for bad in [
            "127.0.0.1:601",
            "syslog+tcp://",
            "syslog+udp://host",
            "https://",
            "https:///path",
            "ftp://host:21",
            "https://host name/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        // A bad URL's error does not show its password.
        for bad in ["https://u:secret@ho st/", "ftp://u:secret@host/"] {
            let e = Target::parse(bad).unwrap_err();
            assert!(!e.contains("secret") && e.contains("u:***@"), "{e}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        for (url, shown) in [
            ("https://user:t0ken@host/p?q", "https://user:***@host/p?q"),
            ("https://user@host/p", "https://user@host/p"),
            ("https://host/a@b", "https://host/a@b"),
            ("http://u:p@127.0.0.1:80", "http://u:***@127.0.0.1:80"),
            ("syslog+tcp://127.0.0.1:601", "syslog+tcp://127.0.0.1:601"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn drain_ids_are_stable_and_distinct() {
        let a = drain_id("web", "https://h/");
        assert_eq!(a, drain_id("web", "https://h/"));
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("d."));
        assert_ne!(a, drain_id("api", "https://h/"));
        assert_ne!(a, drain_id("web", "https://h/x"));
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
