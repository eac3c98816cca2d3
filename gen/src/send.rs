//! Where generated lines go. [`Framing`] turns a generated line into the bytes of one output
//! message (a file line; a syslog datagram with its `<PRI>`; a TCP frame, LF-terminated or
//! RFC 6587 octet-counted); [`Batch`] holds a batch of them back to back with their offsets;
//! [`pump`] fills batches at the pace of a rate and hands them to a [`Sink`]: a file or
//! stdout, a TCP connection, or a UDP socket that sends a batch with one `sendmmsg` call.
//!
//! Pacing is per batch against a monotonic clock: [`lines_due`] says how many lines should be
//! out by now, and the loop sends that many (at most a batch at a time), or sleeps until about a
//! millisecond's worth is due. No line waits on its own timer, so high rates hold, and a rate
//! above what the sender can do means as fast as it can. Nothing in the loop allocates.

use std::io::{self, IoSlice, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use socket2::{Domain, Protocol, Socket, Type};

use crate::LineGen;

/// Messages per batch: per `sendmmsg` call, per write.
pub const BATCH: usize = 128;

/// The send buffer asked for a UDP socket (the kernel caps it at `net.core.wmem_max`).
const UDP_SNDBUF: usize = 8 << 20;

/// The longest the loop sleeps before it looks at the stop flag again.
const MAX_NAP: Duration = Duration::from_millis(50);

/// How each generated line is framed on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A log file as rsyslog writes it: the line, `\n`, no PRI.
    File,
    /// One syslog datagram per line: `<PRI>` then the line, no terminator.
    Datagram,
    /// A TCP stream of LF-terminated messages: `<PRI>line\n`.
    Lf,
    /// RFC 6587 octet counting: `LEN SP <PRI>line`, LEN the message's length in bytes.
    OctetCounting,
}

/// Appends `line` (as a generator writes it: rsyslog file style, `\n`-terminated) framed for
/// output, with syslog priority `pri` where the framing carries one.
pub fn frame(framing: Framing, pri: u8, line: &[u8], out: &mut Vec<u8>) {
    let msg = line.strip_suffix(b"\n").unwrap_or(line);
    match framing {
        Framing::File => {
            out.extend_from_slice(msg);
            out.push(b'\n');
        }
        Framing::Datagram => {
            push_pri(out, pri);
            out.extend_from_slice(msg);
        }
        Framing::Lf => {
            push_pri(out, pri);
            out.extend_from_slice(msg);
            out.push(b'\n');
        }
        Framing::OctetCounting => {
            let len = pri_len(pri) + msg.len();
            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            out.push(b' ');
            push_pri(out, pri);
            out.extend_from_slice(msg);
        }
    }
}

/// `<134>`.
fn push_pri(out: &mut Vec<u8>, pri: u8) {
    out.push(b'<');
    out.extend_from_slice(itoa::Buffer::new().format(pri).as_bytes());
    out.push(b'>');
}

/// The length of `<PRI>`.
fn pri_len(pri: u8) -> usize {
    match pri {
        0..=9 => 3,
        10..=99 => 4,
        _ => 5,
    }
}

/// A batch of framed messages, back to back in one buffer, with where each ends.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// An empty batch with room for `n` messages of about 300 bytes.
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(n * 320),
            ends: Vec::with_capacity(n),
        }
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Appends one generated line, framed.
    pub fn push(&mut self, framing: Framing, pri: u8, line: &[u8]) {
        frame(framing, pri, line, &mut self.data);
        self.ends.push(self.data.len());
    }

    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every message, back to back: what a stream writes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Each message on its own: what a datagram socket sends.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.data[s..e])
    }
}

/// Datagrams that the kernel refused for a moment and that were sent again: a benchmark
/// sender never drops a line silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendRetries {
    /// `ENOBUFS`: no memory for the packet (a full device queue or socket buffer).
    pub enobufs: u64,
    /// `EAGAIN`: the socket would have blocked.
    pub eagain: u64,
    /// `ECONNREFUSED`: an ICMP port unreachable reported on the socket.
    pub refused: u64,
}

impl SendRetries {
    /// All retries.
    pub fn total(&self) -> u64 {
        self.enobufs + self.eagain + self.refused
    }
}

/// What a sender did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendReport {
    /// Lines sent (each one message).
    pub lines: u64,
    /// Bytes sent, framing included.
    pub bytes: u64,
    /// Wall-clock time from the first line to the end.
    pub elapsed: Duration,
    /// Sends retried after a transient error.
    pub retries: SendRetries,
}

impl SendReport {
    /// The mean rate reached.
    pub fn lines_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.lines as f64 / secs
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for SendReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} lines in {:.3} s, {:.0} lines/s",
            self.lines,
            self.elapsed.as_secs_f64(),
            self.lines_per_sec()
        )
    }
}

/// Where batches go.
pub trait Sink {
    /// How this sink frames lines.
    fn framing(&self) -> Framing;
    /// Sends every message of the batch (retrying transient errors).
    fn send(&mut self, batch: &Batch) -> io::Result<()>;
    /// Pushes out anything buffered; called before the loop sleeps and at the end.
    fn flush(&mut self) -> io::Result<()>;
    /// Transient errors retried so far.
    fn retries(&self) -> SendRetries {
        SendRetries::default()
    }
}

/// A file, stdout or a TCP stream: a batch is one write of its bytes.
#[derive(Debug)]
pub struct WriteSink<W: Write> {
    out: W,
    framing: Framing,
}

impl<W: Write> WriteSink<W> {
    /// Writes to `out`, framing lines with `framing`.
    pub fn new(out: W, framing: Framing) -> WriteSink<W> {
        WriteSink { out, framing }
    }

    /// The writer back.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for WriteSink<W> {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn send(&mut self, batch: &Batch) -> io::Result<()> {
        self.out.write_all(batch.bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A UDP socket that sends each batch with `sendmmsg`, one datagram per line, to one address.
/// The socket is not connected, so an ICMP port unreachable from an absent receiver does not
/// turn into errors on later sends.
#[derive(Debug)]
pub struct UdpSink {
    socket: UdpSocket,
    headers: MultiHeaders<SockaddrStorage>,
    /// The target, once per message of a batch (`sendmmsg` takes an address per message).
    addrs: Vec<Option<SockaddrStorage>>,
    /// The I/O vectors' memory, empty between batches (see [`recycle`]).
    iovs: Vec<[IoSlice<'static>; 1]>,
    retries: SendRetries,
}

impl UdpSink {
    /// A socket bound to an ephemeral port of `target`'s family, with a large `SO_SNDBUF`.
    pub fn bind(target: SocketAddr) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(target), Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: an unprivileged process gets at most wmem_max.
        let _ = socket.set_send_buffer_size(UDP_SNDBUF);
        let local: SocketAddr = if target.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        socket.bind(&local.into())?;
        Ok(socket.into())
    }

    /// Sends from `socket` to `target`. (The `sendmmsg` headers cannot cross threads: a sender
    /// thread makes its sink from a socket bound with [`UdpSink::bind`].)
    pub fn new(socket: UdpSocket, target: SocketAddr) -> UdpSink {
        UdpSink {
            socket,
            headers: MultiHeaders::preallocate(BATCH, None),
            addrs: vec![Some(SockaddrStorage::from(target)); BATCH],
            iovs: Vec::with_capacity(BATCH),
            retries: SendRetries::default(),
        }
    }
}

/// Empties a vector of I/O vectors and hands its memory back under another lifetime, so that
/// one allocation serves every batch (the collect reuses the buffer in place).
#[allow(
    clippy::unnecessary_filter_map,
    reason = "the item type changes (its lifetime), which `filter` cannot do"
)]
fn recycle<'b>(mut v: Vec<[IoSlice<'_>; 1]>) -> Vec<[IoSlice<'b>; 1]> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

impl Sink for UdpSink {
    fn framing(&self) -> Framing {
        Framing::Datagram
    }

    fn send(&mut self, batch: &Batch) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let mut iovs = recycle(std::mem::take(&mut self.iovs));
        iovs.extend(batch.messages().map(|m| [IoSlice::new(m)]));
        if self.addrs.len() < iovs.len() {
            let target = self.addrs[0];
            self.addrs.resize(iovs.len(), target);
        }
        let mut sent = 0;
        let mut failures = 0u32;
        let result = loop {
            if sent == iovs.len() {
                break Ok(());
            }
            let n = iovs.len() - sent;
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                fd,
                &mut self.headers,
                iovs[sent..].iter(),
                &self.addrs[..n],
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    sent += results.count();
                    failures = 0;
                }
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::ENOBUFS | Errno::EAGAIN | Errno::ECONNREFUSED)) => {
                    match e {
                        Errno::ENOBUFS => self.retries.enobufs += 1,
                        Errno::EAGAIN => self.retries.eagain += 1,
                        _ => self.retries.refused += 1,
                    }
                    failures += 1;
                    // Give the receiver or the device a moment; back off harder if it lasts.
                    if failures < 4 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
                Err(e) => break Err(io::Error::from(e)),
            }
        };
        self.iovs = recycle(iovs);
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn retries(&self) -> SendRetries {
        self.retries
    }
}

/// When to stop and how fast to go.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limit {
    /// Stop after this many lines.
    pub count: Option<u64>,
    /// Stop after this much wall-clock time.
    pub duration: Option<Duration>,
    /// Lines per second; `None` is as fast as possible.
    pub rate: Option<f64>,
}

impl Limit {
    /// The number of lines to send, when it is known in advance: `count`, and with a rate and
    /// a duration, the lines due before the duration ends.
    pub fn total(&self) -> Option<u64> {
        let paced = match (self.rate, self.duration) {
            (Some(rate), Some(d)) => Some(lines_within(d, rate)),
            _ => None,
        };
        match (self.count, paced) {
            (Some(c), Some(p)) => Some(c.min(p)),
            (c, p) => c.or(p),
        }
    }
}

/// Lines due `elapsed` after the start at `rate` lines per second: line `k` (from 0) is due
/// at `k / rate`, so the first is due at once.
pub fn lines_due(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate).floor() as u64 + 1
}

/// When line `k` (from 0) is due, after the start.
pub fn due_at(k: u64, rate: f64) -> Duration {
    Duration::try_from_secs_f64(k as f64 / rate).unwrap_or(Duration::MAX)
}

/// Lines due before `d` ends: those with `k / rate < d`.
pub fn lines_within(d: Duration, rate: f64) -> u64 {
    // The epsilon keeps `50ms × 2000/s` at 100 despite binary fractions.
    (d.as_secs_f64() * rate - 1e-9).ceil().max(0.0) as u64
}

/// Lines sent per wake-up at `rate`: a millisecond's worth, at least one, at most a batch.
pub fn lines_per_wake(rate: f64) -> u64 {
    ((rate / 1000.0) as u64).clamp(1, BATCH as u64)
}

/// The time [`pump`] paces by: the monotonic clock, or in tests a simulated one, so that
/// pacing is checked without waiting for it.
pub(crate) trait Clock {
    /// Time since the pump started.
    fn elapsed(&self) -> Duration;
    /// Waits for `d`.
    fn sleep(&mut self, d: Duration);
}

/// The monotonic clock, from the pump's start.
struct Monotonic(Instant);

impl Clock for Monotonic {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Generates lines into batches and sends them until `limit` (or `stop`) says to stop.
/// `progress`, when given, hears the number of lines sent so far every 65,536 lines.
pub fn pump(
    gen: &mut LineGen,
    sink: &mut dyn Sink,
    limit: Limit,
    stop: Option<&AtomicBool>,
    progress: Option<&dyn Fn(u64)>,
) -> io::Result<SendReport> {
    let mut clock = Monotonic(Instant::now());
    pump_with(gen, sink, limit, stop, progress, &mut clock)
}

/// [`pump`] paced by `clock`.
pub(crate) fn pump_with(
    gen: &mut LineGen,
    sink: &mut dyn Sink,
    limit: Limit,
    stop: Option<&AtomicBool>,
    progress: Option<&dyn Fn(u64)>,
    clock: &mut dyn Clock,
) -> io::Result<SendReport> {
    let framing = sink.framing();
    let total = limit.total().unwrap_or(u64::MAX);
    let mut line = Vec::with_capacity(4096);
    let mut batch = Batch::with_capacity(BATCH);
    let (mut sent, mut bytes) = (0u64, 0u64);
    while sent < total {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let elapsed = clock.elapsed();
        let n = match limit.rate {
            None => {
                if limit.duration.is_some_and(|d| elapsed >= d) {
                    break;
                }
                (total - sent).min(BATCH as u64)
            }
            Some(rate) => {
                let due = lines_due(elapsed, rate).min(total);
                let want = sent.saturating_add(lines_per_wake(rate)).min(total);
                if due < want {
                    sink.flush()?;
                    let wake = due_at(want - 1, rate);
                    let nap = wake
                        .saturating_sub(elapsed)
                        .clamp(Duration::from_micros(20), MAX_NAP);
                    clock.sleep(nap);
                    continue;
                }
                (due - sent).min(BATCH as u64)
            }
        };
        batch.clear();
        for _ in 0..n {
            line.clear();
            let pri = gen.next_line(&mut line);
            batch.push(framing, pri, &line);
        }
        sink.send(&batch)?;
        bytes += batch.bytes().len() as u64;
        let before = sent;
        sent += batch.len() as u64;
        if let Some(progress) = progress {
            if before >> 16 != sent >> 16 {
                progress(sent);
            }
        }
    }
    sink.flush()?;
    Ok(SendReport {
        lines: sent,
        bytes,
        elapsed: clock.elapsed(),
        retries: sink.retries(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"Nov 22 01:22:06 lb1 haproxy[12136]: hello\n";

    fn framed(framing: Framing, pri: u8) -> Vec<u8> {
        let mut out = Vec::new();
        frame(framing, pri, LINE, &mut out);
        out
    }

    #[test]
    fn framings_put_pri_and_terminators_where_they_belong() {
        assert_eq!(framed(Framing::File, 134), LINE);
        assert_eq!(
            framed(Framing::Datagram, 134),
            b"<134>Nov 22 01:22:06 lb1 haproxy[12136]: hello"
        );
        assert_eq!(
            framed(Framing::Lf, 190),
            b"<190>Nov 22 01:22:06 lb1 haproxy[12136]: hello\n"
        );
        assert_eq!(
            framed(Framing::Datagram, 0),
            b"<0>Nov 22 01:22:06 lb1 haproxy[12136]: hello"
        );
        assert_eq!(
            framed(Framing::Datagram, 13),
            b"<13>Nov 22 01:22:06 lb1 haproxy[12136]: hello"
        );
    }

    #[test]
    fn octet_counting_counts_the_message_bytes() {
        let msg = b"<134>Nov 22 01:22:06 lb1 haproxy[12136]: hello";
        let mut want = format!("{} ", msg.len()).into_bytes();
        want.extend_from_slice(msg);
        assert_eq!(framed(Framing::OctetCounting, 134), want);
        assert_eq!(&framed(Framing::OctetCounting, 134)[..3], b"46 ");
        for pri in [0u8, 9, 10, 99, 100, 191] {
            let mut pri_text = Vec::new();
            push_pri(&mut pri_text, pri);
            assert_eq!(pri_text.len(), pri_len(pri), "{pri}");
        }
        // Two frames back to back split where their lengths say.
        let mut b = Batch::default();
        b.push(Framing::OctetCounting, 5, b"a b\n");
        b.push(Framing::OctetCounting, 190, b"\n");
        assert_eq!(b.bytes(), b"6 <5>a b5 <190>");
    }

    #[test]
    fn a_batch_keeps_each_message_apart() {
        let mut b = Batch::with_capacity(4);
        assert_eq!(b.len(), 0);
        b.push(Framing::Datagram, 134, b"one\n");
        b.push(Framing::Datagram, 187, b"two\n");
        b.push(Framing::Datagram, 190, b"three");
        assert_eq!(b.len(), 3);
        let m: Vec<&[u8]> = b.messages().collect();
        assert_eq!(m, [&b"<134>one"[..], b"<187>two", b"<190>three"]);
        b.clear();
        assert_eq!(b.messages().count(), 0);
    }

    #[test]
    fn lines_due_follow_the_rate() {
        let ms = Duration::from_millis;
        assert_eq!(lines_due(Duration::ZERO, 1000.0), 1);
        assert_eq!(lines_due(ms(1), 1000.0), 2);
        assert_eq!(lines_due(Duration::from_micros(1500), 1000.0), 2);
        assert_eq!(lines_due(ms(999), 1000.0), 1000);
        assert_eq!(lines_due(Duration::from_secs(2), 250_000.0), 500_001);
        assert_eq!(lines_due(ms(500), 0.5), 1);
        assert_eq!(lines_due(Duration::from_secs(2), 0.5), 2);
        assert_eq!(due_at(0, 1000.0), Duration::ZERO);
        assert_eq!(due_at(3, 1000.0), ms(3));
        assert_eq!(due_at(1, 0.5), Duration::from_secs(2));
        // A line is due exactly when it is counted due.
        for k in [1u64, 7, 1000, 123_457] {
            let t = due_at(k, 20_000.0) + Duration::from_nanos(1);
            assert_eq!(lines_due(t, 20_000.0), k + 1, "{k}");
        }
    }

    #[test]
    fn limits_combine_count_rate_and_duration() {
        let ms = Duration::from_millis;
        assert_eq!(lines_within(ms(50), 2000.0), 100);
        assert_eq!(lines_within(ms(1), 1500.0), 2);
        assert_eq!(lines_within(Duration::ZERO, 1000.0), 0);
        let limit = |count, duration, rate| Limit {
            count,
            duration,
            rate,
        };
        assert_eq!(limit(Some(10), None, None).total(), Some(10));
        assert_eq!(limit(None, Some(ms(50)), Some(2000.0)).total(), Some(100));
        assert_eq!(limit(Some(10), Some(ms(50)), Some(2000.0)).total(), Some(10));
        assert_eq!(limit(None, Some(ms(50)), None).total(), None);
        assert_eq!(limit(None, None, Some(10.0)).total(), None);
        assert_eq!(lines_per_wake(10.0), 1);
        assert_eq!(lines_per_wake(20_000.0), 20);
        assert_eq!(lines_per_wake(1e7), BATCH as u64);
    }

    #[test]
    fn recycled_iovecs_keep_their_memory() {
        let data = vec![1u8; 10];
        let mut v: Vec<[IoSlice<'_>; 1]> = Vec::with_capacity(BATCH);
        let cap = v.capacity();
        v.push([IoSlice::new(&data)]);
        let v: Vec<[IoSlice<'static>; 1]> = recycle(v);
        assert!(v.is_empty());
        assert_eq!(v.capacity(), cap);
    }
}
