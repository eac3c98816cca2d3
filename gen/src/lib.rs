//! weir-gen: realistic log traffic, deterministic for a seed, and the senders that deliver it.
//!
//! The data path: a [`LineGen`] writes lines as rsyslog would have written them to a file:
//! HAProxy 2.6 traffic from a simulated site ([`haproxy`]), the lines of the applications behind
//! it ([`app`]), or both interleaved ([`Kind::Mix`], about 80% HAProxy). [`send`] frames each
//! line for its target (a file line; a datagram with its syslog `<PRI>`, as HAProxy sends; a TCP
//! frame, LF-terminated or RFC 6587 octet-counted), batches them in one reused buffer and sends
//! them at a given rate (UDP batches go out with one `sendmmsg` call each).
//!
//! `weir gen` is this crate behind a command line; `weir serve --demo` runs [`spawn_demo`]: the
//! same generator and UDP sender on a thread, stamped with the wall clock. The end-to-end tests
//! and `bench/` use `weir gen`, so every consumer sees the same lines for the same seed.

pub mod app;
pub mod haproxy;
pub mod send;
pub mod shape;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_model::Micros;

use self::app::AppGen;
use self::haproxy::{HaproxyGen, HAPROXY_PRI};
use self::send::{pump, Limit, SendReport, UdpSink};
pub use self::shape::{Captures, Header, Layout, Shape};

/// The share of application lines in [`Kind::Mix`].
const MIX_APP_SHARE: f64 = 0.2;

/// The kinds of log a [`LineGen`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Kind {
    /// HAProxy 2.6 HTTP, HTTPS (`httpslog`), logasap and TCP logs.
    Haproxy,
    /// Heroku-style application lines: l2met key=value, plain text, errors and stack traces.
    App,
    /// Both, interleaved: about 80% HAProxy, 20% application lines.
    Mix,
    /// Application lines of exactly ten logfmt `key=value` pairs each (benchmarks).
    Logfmt,
    /// Application lines of l2met metrics only: two measures, a count and a sample each
    /// (benchmarks).
    L2met,
}

/// The lines of a `--kind`: one generator, or both interleaved.
pub struct LineGen {
    kind: Kind,
    haproxy: HaproxyGen,
    app: AppGen,
    /// Picks the generator of each `mix` line.
    pick: StdRng,
}

impl LineGen {
    /// Lines of `kind` starting at `start`, reproducible for `seed`.
    pub fn new(kind: Kind, seed: u64, start: Micros) -> LineGen {
        LineGen::with_shape(kind, seed, start, &Shape::default())
    }

    /// Like [`LineGen::new`], with the HAProxy lines reshaped by `shape`.
    pub fn with_shape(kind: Kind, seed: u64, start: Micros, shape: &Shape) -> LineGen {
        LineGen {
            kind,
            haproxy: HaproxyGen::with_shape(seed, start, shape),
            app: AppGen::new(seed, start),
            pick: StdRng::seed_from_u64(seed ^ 0x006d_6978),
        }
    }

    /// Stamps lines with the wall clock from now on (see [`HaproxyGen::follow_wall_clock`]);
    /// for `mix` only, where application lines take the load balancer's time.
    pub fn follow_wall_clock(&mut self) {
        self.haproxy.follow_wall_clock();
    }

    /// Appends the next line, rsyslog file style and `\n`-terminated; returns its syslog PRI.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> u8 {
        match self.kind {
            Kind::Haproxy => {
                self.haproxy.next_line(buf);
                HAPROXY_PRI
            }
            Kind::App => self.app.next_line(buf),
            Kind::Logfmt => self.app.logfmt_line(buf),
            Kind::L2met => self.app.l2met_line(buf),
            Kind::Mix if self.pick.random_bool(MIX_APP_SHARE) => self.app.line_at(self.haproxy.clock(), buf),
            Kind::Mix => {
                self.haproxy.next_line(buf);
                HAPROXY_PRI
            }
        }
    }
}

/// Starts a thread that sends a `mix` of HAProxy and application lines to `target` over UDP,
/// one syslog datagram per line, at `rate` lines per second until `stop` is set. The shop's
/// application lines name their process as Heroku does (`shop[web.1]`), the API's by tag and
/// pid (`web.1[4123]`), so a demo shows both conventions. Lines are
/// stamped with the wall clock as they are generated (times start now and keep up with it
/// whatever the rate); the content is reproducible for `seed`.
///
/// The socket is opened before the thread starts, so a bad address fails here; the thread
/// returns what it sent, or the error that stopped it.
pub fn spawn_demo(
    target: SocketAddr,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<SendReport>>> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("demo rate {rate} must be positive"),
        ));
    }
    let socket = UdpSink::bind(target)?;
    std::thread::Builder::new()
        .name("weir-demo".into())
        .spawn(move || {
            let mut sink = UdpSink::new(socket, target);
            let mut gen = LineGen::new(Kind::Mix, seed, weir_model::time::now_micros());
            gen.follow_wall_clock();
            gen.app.name_shop_as_heroku();
            let limit = Limit {
                rate: Some(rate),
                ..Limit::default()
            };
            pump(&mut gen, &mut sink, limit, Some(&stop), None)
        })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::net::UdpSocket;
    use std::rc::Rc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use weir_ingest::ParseOptions;
    use weir_model::time::{micros_from_civil, MICROS_PER_SEC};
    use weir_model::Record;

    use super::send::{pump_with, Batch, Clock, Framing, Sink, WriteSink};
    use super::*;

    fn start() -> Micros {
        micros_from_civil(2026, 11, 22, 0, 0, 0, 0)
    }

    fn generate(kind: Kind, seed: u64, n: usize) -> (Vec<u8>, Vec<u8>) {
        let mut gen = LineGen::new(kind, seed, start());
        let mut buf = Vec::new();
        let pris = (0..n).map(|_| gen.next_line(&mut buf)).collect();
        (buf, pris)
    }

    fn pumped(limit: Limit) -> (Vec<u8>, SendReport) {
        let mut sink = WriteSink::new(Vec::new(), Framing::File);
        let report = pump(
            &mut LineGen::new(Kind::Haproxy, 1, start()),
            &mut sink,
            limit,
            None,
            None,
        )
        .unwrap();
        (sink.into_inner(), report)
    }

    #[test]
    fn count_is_honoured() {
        let (out, report) = pumped(Limit {
            count: Some(1234),
            ..Limit::default()
        });
        assert_eq!(report.lines, 1234);
        assert_eq!(report.bytes, out.len() as u64);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1234);
        assert_eq!(out.last(), Some(&b'\n'));
    }

    /// A simulated clock: sleeping advances it at once. Shared with [`Recorder`], which notes
    /// the time of each batch.
    #[derive(Clone, Default)]
    struct SimClock {
        now: Rc<Cell<Duration>>,
        naps: Rc<Cell<u32>>,
    }

    impl Clock for SimClock {
        fn elapsed(&self) -> Duration {
            self.now.get()
        }

        fn sleep(&mut self, d: Duration) {
            self.now.set(self.now.get() + d);
            self.naps.set(self.naps.get() + 1);
        }
    }

    /// A sink that records, for each batch, when it went out and how many lines it held.
    struct Recorder {
        clock: SimClock,
        batches: Vec<(Duration, usize)>,
    }

    impl Sink for Recorder {
        fn framing(&self) -> Framing {
            Framing::File
        }

        fn send(&mut self, batch: &Batch) -> std::io::Result<()> {
            self.batches.push((self.clock.elapsed(), batch.len()));
            Ok(())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// At 2,000 lines/s for 50 ms, exactly 100 lines go out, none before it is due, the last
    /// at 49.5 ms, a couple of lines per wake-up rather than one timer per line. The clock is
    /// simulated: the test checks the pacing without waiting for it.
    #[test]
    fn rate_and_duration_give_rate_times_duration_lines() {
        let mut clock = SimClock::default();
        let mut sink = Recorder {
            clock: clock.clone(),
            batches: Vec::new(),
        };
        let limit = Limit {
            count: None,
            duration: Some(Duration::from_millis(50)),
            rate: Some(2000.0),
        };
        let mut gen = LineGen::new(Kind::Haproxy, 1, start());
        let report = pump_with(&mut gen, &mut sink, limit, None, None, &mut clock).unwrap();
        assert_eq!(report.lines, 100);
        let mut sent = 0u64;
        for &(at, n) in &sink.batches {
            sent += n as u64;
            assert!(sent <= send::lines_due(at, 2000.0), "{sent} lines out at {at:?}");
        }
        assert_eq!(sent, 100);
        assert!(
            report.elapsed >= Duration::from_micros(49_500),
            "{:?}",
            report.elapsed
        );
        assert!(report.elapsed < Duration::from_millis(51), "{:?}", report.elapsed);
        assert!(clock.naps.get() <= 60, "{} naps", clock.naps.get());
    }

    #[test]
    fn a_stop_flag_ends_an_unbounded_run() {
        let stop = AtomicBool::new(true);
        let mut sink = WriteSink::new(Vec::new(), Framing::File);
        let limit = Limit {
            rate: Some(10.0),
            ..Limit::default()
        };
        let report = pump(
            &mut LineGen::new(Kind::Mix, 1, start()),
            &mut sink,
            limit,
            Some(&stop),
            None,
        )
        .unwrap();
        assert_eq!(report.lines, 0);
    }

    /// A mix is about one application line in five, every line parses as what its PRI says,
    /// and syslog times never go back.
    #[test]
    fn a_mix_interleaves_haproxy_and_app_lines() {
        let (text, pris) = generate(Kind::Mix, 4, 20_000);
        assert_eq!(generate(Kind::Mix, 4, 20_000), (text.clone(), pris.clone()));
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        let mut kinds = BTreeMap::new();
        let mut last = 0;
        for (raw, pri) in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).zip(pris) {
            let line = weir_ingest::parse_line(raw, &opts);
            let kind = match line.record {
                Record::Http(_) | Record::Tcp(_) => "haproxy",
                Record::App(_) => "app",
                Record::Reject(r) => panic!("{r:?}: {}", String::from_utf8_lossy(raw)),
            };
            assert_eq!(pri == HAPROXY_PRI, kind == "haproxy");
            *kinds.entry(kind).or_insert(0u32) += 1;
            let t = line.header.timestamp.unwrap();
            assert!(t >= last, "{}", String::from_utf8_lossy(raw));
            last = t;
        }
        let app = kinds["app"];
        assert!((3_500..4_500).contains(&app), "{kinds:?}");
    }

    #[test]
    fn udp_sends_every_line_as_one_datagram() {
        let rx = receiver();
        let target = rx.local_addr().unwrap();
        // The datagrams are read once all are sent: send no more than the buffer holds (the
        // kernel charges a few-hundred-byte datagram 1,280 bytes; 4 KiB leaves room), so none
        // is dropped whatever the buffer the kernel granted.
        let granted = weir_ingest::listen::udp::recv_buffer_size(&rx).unwrap();
        let count = (granted / 4096).min(300);
        assert!(
            count >= 50,
            "a {granted}-byte receive buffer is too small for this test"
        );
        let mut sink = UdpSink::new(UdpSink::bind(target).unwrap(), target);
        let limit = Limit {
            count: Some(count as u64),
            ..Limit::default()
        };
        let report = pump(
            &mut LineGen::new(Kind::Mix, 2, start()),
            &mut sink,
            limit,
            None,
            None,
        )
        .unwrap();
        assert_eq!(report.lines, count as u64);
        let mut buf = vec![0u8; 65536];
        let mut bytes = 0;
        for i in 0..count {
            let n = rx
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of {count}: {e}"));
            bytes += n as u64;
            assert!(buf[0] == b'<' && buf[n - 1] != b'\n');
        }
        assert_eq!(bytes, report.bytes);
    }

    #[test]
    fn the_demo_sends_until_stopped_with_times_of_now() {
        let rx = receiver();
        let stop = Arc::new(AtomicBool::new(false));
        let before = weir_model::time::now_micros();
        let handle = spawn_demo(rx.local_addr().unwrap(), 20_000.0, 3, stop.clone()).unwrap();
        let mut buf = vec![0u8; 65536];
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        for i in 0..200 {
            let n = rx
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("demo datagram {i} of 200: {e}"));
            let line = weir_ingest::parse_line(&buf[..n], &opts);
            assert!(!matches!(line.record, Record::Reject(_)), "{line:?}");
            let (_, mo, d, h, mi, s, _) = weir_model::time::civil_from_micros(before);
            let t = line.header.timestamp.unwrap();
            // RFC 3164 has no year: compare within the year the parser assumed.
            let (y, ..) = weir_model::time::civil_from_micros(t);
            let then = micros_from_civil(y, mo, d, h, mi, s, 0);
            assert!(
                (t - then).abs() < 60 * MICROS_PER_SEC,
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        stop.store(true, Ordering::Relaxed);
        let report = handle.join().unwrap().unwrap();
        assert!(report.lines >= 200, "{report}");
        assert!(spawn_demo(rx.local_addr().unwrap(), 0.0, 1, stop).is_err());
    }

    /// A UDP socket on loopback with a large receive buffer and a read deadline.
    fn receiver() -> UdpSocket {
        let rx = weir_ingest::listen::udp::bind("127.0.0.1:0".parse().unwrap(), 8 << 20, false).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        rx
    }

    /// FNV-1a, 64 bits: a fingerprint of generated text that does not depend on std's hasher.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The same seed gives the same bytes from one version to the next (these are the
    /// fingerprints of `weir gen --kind K --count 10000 --seed 1`): benchmarks, golden
    /// files and bug reports name a seed, not a file. A change of the model that changes these
    /// fingerprints is a deliberate one.
    #[test]
    fn a_seed_gives_the_same_lines_as_before() {
        for (kind, want) in [
            (Kind::Haproxy, 12_815_569_389_218_162_003),
            (Kind::App, 14_509_362_666_346_751_976),
            (Kind::Mix, 2_747_318_346_930_801_270),
        ] {
            let (text, _) = generate(kind, 1, 10_000);
            assert_eq!(fnv1a(&text), want, "{kind:?}");
        }
    }
}
