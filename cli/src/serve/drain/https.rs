//! HTTPS drains, as Heroku's are: the drain's lines go out in batches, each one POST whose body
//! is logplex's `application/logplex-1` (RFC 5424 messages, each framed `<len> <msg>`), with
//! `Logplex-Msg-Count`, `Logplex-Frame-Id` and `Logplex-Drain-Token` headers and basic auth from
//! the URL's userinfo.
//!
//! A batch ([`Batch`]) closes at [`BATCH_LINES`] messages, [`BATCH_BYTES`] of body or
//! [`BATCH_AGE`] after its first message, whichever comes first. A batch the endpoint does not
//! take (no connection, TLS failure, timeout, an answer other than 2xx) is sent again, the same
//! body under the same frame id, with backoff until it is taken: delivery is at least once, and a
//! receiver can drop repeats by frame id. Meanwhile the drain reads nothing more, so the router's
//! queue of `buffer` lines keeps the newest and drops the oldest; the L10 notice of what it
//! dropped opens the next batch.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use weir_ingest::router::{RecvError, TailItem, TailSession};

use super::{message, pause, DrainStats, FIRST_RETRY, MAX_RETRY};

/// A batch closes at this many messages.
pub const BATCH_LINES: usize = 500;
/// A batch closes once its body is this long (so a batch is at most this plus one message).
pub const BATCH_BYTES: usize = 1 << 20;
/// A batch closes this long after its first message.
pub const BATCH_AGE: Duration = Duration::from_secs(1);
/// The longest a POST may take, connecting and sending included, before it counts as failed.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer's body read (and ignored), so the connection can be used again.
const MAX_ANSWER: u64 = 64 << 10;
/// How long the drain waits for a line when it has none batched (then checks for shutdown).
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// The messages of a batch being filled, framed as the body of an `application/logplex-1` POST.
#[derive(Debug, Default)]
pub struct Batch {
    body: Vec<u8>,
    lines: u64,
    notices: u64,
    opened: Option<Instant>,
}

impl Batch {
    /// Appends a message (a line, or an L10 notice when `line` is false) as `<len> <msg>`.
    pub fn push(&mut self, line: bool, msg: &[u8], now: Instant) {
        self.opened.get_or_insert(now);
        let _ = write!(self.body, "{} ", msg.len());
        self.body.extend_from_slice(msg);
        if line {
            self.lines += 1;
        } else {
            self.notices += 1;
        }
    }

    /// Messages in the batch (its `Logplex-Msg-Count`).
    pub fn count(&self) -> u64 {
        self.lines + self.notices
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Room left, in messages.
    pub fn room(&self) -> usize {
        BATCH_LINES.saturating_sub(self.count() as usize)
    }

    /// When it is due: [`BATCH_AGE`] after its first message (`None` while empty).
    pub fn due(&self) -> Option<Instant> {
        self.opened.map(|t| t + BATCH_AGE)
    }

    /// Whether it should go now: full, or due by `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        self.count() as usize >= BATCH_LINES
            || self.body.len() >= BATCH_BYTES
            || self.due().is_some_and(|d| now >= d)
    }

    /// Closes it as the frame `id`, leaving an empty batch.
    pub fn seal(&mut self, id: String) -> Frame {
        let b = std::mem::take(self);
        Frame {
            id,
            body: b.body,
            lines: b.lines,
            notices: b.notices,
        }
    }
}

/// A closed batch: what one POST sends, as often as it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its `Logplex-Frame-Id`, the same on every attempt.
    pub id: String,
    /// The `application/logplex-1` body.
    pub body: Vec<u8>,
    /// Lines in it.
    pub lines: u64,
    /// L10 notices in it.
    pub notices: u64,
}

impl Frame {
    /// Its `Logplex-Msg-Count`.
    pub fn count(&self) -> u64 {
        self.lines + self.notices
    }
}

/// Why a POST did not deliver its batch.
#[derive(Debug)]
pub enum PostError {
    /// The endpoint answered, but not with 2xx.
    Status(u16),
    /// No answer: connecting, TLS, sending or reading failed or timed out.
    Transport(ureq::Error),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Status(s) => write!(f, "the endpoint answered HTTP {s}"),
            PostError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Posts a drain's batches to its endpoint (one agent, so one kept-alive connection).
#[derive(Debug)]
pub struct HttpSender {
    agent: ureq::Agent,
    url: String,
    token: String,
    /// Frame ids are this and a batch number: unique within a run and, by the start time in it,
    /// across runs.
    frame_prefix: String,
    frames: u64,
}

impl HttpSender {
    /// A sender to `url` (`https://` or `http://`; userinfo becomes basic auth), sending `token`
    /// as `Logplex-Drain-Token`, trusting the certificates in `ca_file` instead of the bundled
    /// Mozilla roots when given.
    pub fn new(url: &str, token: &str, ca_file: Option<&Path>) -> anyhow::Result<HttpSender> {
        let roots = match ca_file {
            Some(path) => root_certs(path)?,
            None => RootCerts::WebPki,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(POST_TIMEOUT))
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        let started = weir_model::time::now_micros() as u64;
        Ok(HttpSender {
            agent,
            url: url.to_owned(),
            token: token.to_owned(),
            frame_prefix: format!("{:016x}", super::fnv1a(started, [token.as_bytes()])),
            frames: 0,
        })
    }

    /// The next frame id.
    fn next_id(&mut self) -> String {
        self.frames += 1;
        format!("{}{:016x}", self.frame_prefix, self.frames)
    }

    /// POSTs a frame; `Ok` when the endpoint answered 2xx.
    pub fn post(&self, frame: &Frame) -> Result<(), PostError> {
        let mut answer = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/logplex-1")
            .header("Logplex-Msg-Count", frame.count().to_string())
            .header("Logplex-Frame-Id", &frame.id)
            .header("Logplex-Drain-Token", &self.token)
            .send(&frame.body[..])
            .map_err(PostError::Transport)?;
        // Read what little the endpoint says, so the connection can carry the next batch.
        let _ = std::io::copy(
            &mut answer.body_mut().as_reader().take(MAX_ANSWER),
            &mut std::io::sink(),
        );
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(PostError::Status(status.as_u16()))
        }
    }
}

/// The certificates of a PEM file, as the only roots to trust.
fn root_certs(path: &Path) -> anyhow::Result<RootCerts> {
    let pem = std::fs::read(path).with_context(|| format!("ca_file {}", path.display()))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .with_context(|| format!("ca_file {}: reading PEM", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "ca_file {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        path.display()
    );
    Ok(RootCerts::new_with_certs(&certs))
}

/// The drain's loop: fill a batch, post it until taken, again; at `stop`, post what is batched
/// and queued once more while the endpoint takes it.
pub(super) fn run(
    mut session: TailSession,
    sender: &mut HttpSender,
    name: &str,
    node: &str,
    stats: &DrainStats,
    stop: &AtomicBool,
) {
    let mut batch = Batch::default();
    let mut outgoing: Option<Frame> = None;
    let mut items: Vec<TailItem> = Vec::new();
    let mut retry = FIRST_RETRY;
    while !stop.load(Relaxed) {
        if let Some(frame) = &outgoing {
            match sender.post(frame) {
                Ok(()) => {
                    delivered(frame, stats);
                    outgoing = None;
                    retry = FIRST_RETRY;
                }
                Err(e) => {
                    stats.failed(name, "POST failed", &e);
                    pause(retry, stop);
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            continue;
        }
        let wait = batch
            .due()
            .map_or(IDLE_WAIT, |d| d.saturating_duration_since(Instant::now()));
        match session.recv_timeout(wait) {
            Ok(item) => {
                items.push(item);
                session.drain_into(&mut items, batch.room().saturating_sub(1));
                fill(&mut batch, &mut items, node, stats);
            }
            Err(RecvError::Timeout) => {}
            Err(RecvError::Closed) => break,
        }
        if batch.is_ready(Instant::now()) {
            outgoing = Some(batch.seal(sender.next_id()));
        }
    }
    // Stopping (or the router closed the session): what is held, batched and queued gets one
    // more try each, while the endpoint takes it.
    loop {
        let frame = match outgoing.take() {
            Some(f) => f,
            None => {
                session.drain_into(&mut items, batch.room());
                fill(&mut batch, &mut items, node, stats);
                if batch.is_empty() {
                    break;
                }
                batch.seal(sender.next_id())
            }
        };
        if let Err(e) = sender.post(&frame) {
            let mut left = frame.count() + batch.count();
            while session.drain_into(&mut items, 4096) > 0 {
                left += items.len() as u64;
                items.clear();
            }
            stats.errors.fetch_add(1, Relaxed);
            tracing::warn!("drain {name}: stopping with {left} messages not sent: POST failed: {e}");
            break;
        }
        delivered(&frame, stats);
    }
    stats.connected.store(false, Relaxed);
}

/// Moves `items` into the batch as RFC 5424 messages.
fn fill(batch: &mut Batch, items: &mut Vec<TailItem>, node: &str, stats: &DrainStats) {
    let now = Instant::now();
    for item in items.drain(..) {
        let (line, msg) = message(item, node, stats);
        batch.push(line, &msg, now);
    }
}

/// Counts a batch the endpoint took.
fn delivered(frame: &Frame, stats: &DrainStats) {
    stats.connected();
    stats.batches.fetch_add(1, Relaxed);
    stats.sent.fetch_add(frame.lines, Relaxed);
    stats.notices.fetch_add(frame.notices, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of an `application/logplex-1` body.
    fn frames(body: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let sp = rest.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
            out.push(String::from_utf8(rest[sp + 1..sp + 1 + len].to_vec()).unwrap());
            rest = &rest[sp + 1 + len..];
        }
        out
    }

    #[test]
    fn a_batch_is_octet_counted_and_counts_its_messages() {
        let t = Instant::now();
        let mut b = Batch::default();
        assert!(b.is_empty() && b.due().is_none() && !b.is_ready(t + BATCH_AGE * 10));
        b.push(false, b"<172>1 - h weir drain - - Error L10", t);
        b.push(true, "<14>1 - h web - - - héllo 1".as_bytes(), t);
        b.push(true, b"", t);
        assert_eq!(b.count(), 3);
        let f = b.seal("f1".into());
        assert!(b.is_empty() && b.due().is_none());
        assert_eq!((f.lines, f.notices, f.count()), (2, 1, 3));
        assert!(f.body.starts_with(b"35 <172>1 - h weir drain - - Error L10"));
        assert_eq!(
            frames(&f.body),
            [
                "<172>1 - h weir drain - - Error L10",
                "<14>1 - h web - - - héllo 1",
                ""
            ]
        );
        // The length counts bytes, not characters.
        assert!(f.body.windows(4).any(|w| w == b"28 <"));
    }

    #[test]
    fn a_batch_is_ready_when_full_large_or_old() {
        let t = Instant::now();
        let mut b = Batch::default();
        b.push(true, b"x", t);
        assert!(!b.is_ready(t));
        assert!(!b.is_ready(t + BATCH_AGE - Duration::from_millis(1)));
        assert!(b.is_ready(t + BATCH_AGE));
        assert_eq!(b.room(), BATCH_LINES - 1);
        while b.room() > 0 {
            b.push(true, b"x", t);
        }
        assert!(b.is_ready(t));
        let mut b = Batch::default();
        b.push(true, &vec![b'x'; BATCH_BYTES], t);
        assert_eq!(b.count(), 1);
        assert!(b.is_ready(t));
    }

    #[test]
    fn frame_ids_are_unique_and_senders_check_their_ca_file() {
        let mut s = HttpSender::new("https://h/", "d.1", None).unwrap();
        let (a, b) = (s.next_id(), s.next_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = HttpSender::new("https://h/", "d.1", Some(&missing)).unwrap_err();
        assert!(format!("{e:#}").contains("none.pem"), "{e:#}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = HttpSender::new("https://h/", "d.1", Some(&empty)).unwrap_err();
        assert!(format!("{e:#}").contains("no PEM certificate"), "{e:#}");
    }
}
