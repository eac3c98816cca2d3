//! `weir gen`: realistic log traffic, deterministic for a seed, to a file, stdout, or a syslog
//! receiver over UDP or TCP.
//!
//! The data path: a [`LineGen`] writes lines as rsyslog would have written them to a file:
//! HAProxy 2.6 traffic from a simulated site ([`haproxy`]), the lines of the applications behind
//! it ([`app`]), or both interleaved (`--kind mix`, about 80% HAProxy). [`send`] frames each line
//! for its target (a file line; a datagram with its syslog `<PRI>`, as HAProxy sends; a TCP
//! frame, LF-terminated or RFC 6587 octet-counted), batches them in one reused buffer and sends
//! them at the pace of `--rate` (UDP batches go out with one `sendmmsg` call each). At the end
//! a line on stderr says how many lines went out, how fast, and how many sends were retried.
//!
//! `weir serve --demo` uses [`spawn_demo`]: the same generator and UDP sender on a thread,
//! stamped with the wall clock.

pub mod app;
pub mod haproxy;
pub mod send;

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_model::Micros;

use self::app::AppGen;
use self::haproxy::{HaproxyGen, HAPROXY_PRI};
use self::send::{pump, Framing, Limit, SendReport, Sink, UdpSink, WriteSink};
use crate::UsageError;

/// The default `--start`: a fixed instant, so that output is reproducible.
const DEFAULT_START: &str = "2026-11-22T00:00:00Z";

/// Lines written when neither `--count`, `--duration` nor `--rate` bounds the output.
const DEFAULT_COUNT: u64 = 10_000;

/// The share of application lines in `--kind mix`.
const MIX_APP_SHARE: f64 = 0.2;

/// Generate realistic HAProxy and application log lines (deterministic for a seed).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to generate.
    #[arg(long, value_enum, default_value_t = Kind::Haproxy)]
    pub kind: Kind,
    /// Number of lines to write [default: 10000 unless --duration or --rate is given].
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the random generator: the same seed and start give the same lines.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pace the output at this many lines per wall-clock second: `5000`, `5000/s`, `300/m`, `10/h`
    /// [default: as fast as possible].
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Stop after this much wall-clock time (`500ms`, `30s`, `5m`, `1h`; a bare number is seconds).
    /// With --rate the line count is exactly rate x duration.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where to write: a file path, `-` for stdout, or a syslog receiver `udp://HOST:PORT`
    /// (one datagram per line, with its `<PRI>`) or `tcp://HOST:PORT`.
    #[arg(long, default_value = "-")]
    pub to: String,
    /// Framing of `tcp://` output: `lf` (each message ends with `\n`) or `octet` (RFC 6587
    /// octet counting, `LEN SP MSG`) [default: lf].
    #[arg(long, value_enum)]
    pub framing: Option<TcpFraming>,
    /// Simulated time of the first line: RFC 3339 (`2026-11-22T00:00:00Z`, `2026-11-22`) or `now`.
    #[arg(long, default_value = DEFAULT_START, value_parser = parse_start)]
    pub start: Micros,
}

/// The kinds of log `weir gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// HAProxy 2.6 HTTP, HTTPS (`httpslog`), logasap and TCP logs.
    Haproxy,
    /// Heroku-style application lines: l2met key=value, plain text, errors and stack traces.
    App,
    /// Both, interleaved: about 80% HAProxy, 20% application lines.
    Mix,
}

/// How `tcp://` output is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TcpFraming {
    /// Each message ends with a line feed.
    Lf,
    /// RFC 6587 octet counting: `LEN SP MSG`.
    Octet,
}

/// Where `--to` sends the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Stdout,
    File(PathBuf),
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

impl Target {
    /// `-`, `udp://HOST:PORT`, `tcp://HOST:PORT`, or a file path.
    fn parse(to: &str) -> Result<Target, UsageError> {
        if to == "-" {
            return Ok(Target::Stdout);
        }
        let Some((scheme, addr)) = to.split_once("://") else {
            return Ok(Target::File(PathBuf::from(to)));
        };
        let resolve = || -> Result<SocketAddr, UsageError> {
            addr.to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| UsageError(format!("--to {to}: `{addr}` is not a HOST:PORT address")))
        };
        match scheme {
            "udp" => Ok(Target::Udp(resolve()?)),
            "tcp" => Ok(Target::Tcp(resolve()?)),
            _ => Err(UsageError(format!(
                "--to {to}: unknown scheme `{scheme}://` (use udp://, tcp://, a file path or -)"
            ))),
        }
    }
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
        LineGen {
            kind,
            haproxy: HaproxyGen::new(seed, start),
            app: AppGen::new(seed, start),
            pick: StdRng::seed_from_u64(seed ^ 0x006d_6978),
        }
    }

    /// Stamps lines with the wall clock from now on (see [`HaproxyGen::follow_wall_clock`]);
    /// for `mix` only, where application lines take the load balancer's time.
    fn follow_wall_clock(&mut self) {
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
            Kind::Mix if self.pick.random_bool(MIX_APP_SHARE) => self.app.line_at(self.haproxy.clock(), buf),
            Kind::Mix => {
                self.haproxy.next_line(buf);
                HAPROXY_PRI
            }
        }
    }
}

/// Runs `weir gen`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.to)?;
    let framing = match (&target, args.framing) {
        (Target::Tcp(_), Some(TcpFraming::Octet)) => Framing::OctetCounting,
        (Target::Tcp(_), _) => Framing::Lf,
        (_, Some(_)) => {
            return Err(UsageError(format!(
                "--framing applies to tcp:// targets, not to --to {}",
                args.to
            ))
            .into())
        }
        (Target::Udp(_), None) => Framing::Datagram,
        (Target::Stdout | Target::File(_), None) => Framing::File,
    };
    let limit = limit_of(&args);
    let mut gen = LineGen::new(args.kind, args.seed, args.start);
    let mut sink: Box<dyn Sink> = match &target {
        Target::Stdout => {
            let out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let mut sink = WriteSink::new(out, framing);
            pump(&mut gen, &mut sink, limit, None, None).context("writing to stdout")?;
            return Ok(());
        }
        Target::File(path) => {
            let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            Box::new(WriteSink::new(BufWriter::with_capacity(1 << 20, file), framing))
        }
        Target::Udp(addr) => {
            let socket = UdpSink::bind(*addr).with_context(|| format!("opening a UDP socket for {addr}"))?;
            Box::new(UdpSink::new(socket, *addr))
        }
        Target::Tcp(addr) => {
            let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
            stream
                .set_nodelay(true)
                .with_context(|| format!("setting TCP_NODELAY on {addr}"))?;
            Box::new(WriteSink::new(stream, framing))
        }
    };
    let bar = limit.total().map(|n| {
        let bar = indicatif::ProgressBar::new(n);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} lines, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = pump(&mut gen, sink.as_mut(), limit, None, bar.as_ref())
        .with_context(|| format!("writing to {}", args.to))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!("{}", summary(&args.to, &target, &report));
    Ok(())
}

/// The closing line on stderr: what went where, how fast, and (UDP) the retried sends.
fn summary(to: &str, target: &Target, report: &SendReport) -> String {
    let mut s = format!("weir gen: {report} to {to}");
    if let Target::Udp(_) = target {
        let r = report.retries;
        s.push_str(&format!(
            "; {} sends retried (ENOBUFS {}, EAGAIN {}, ECONNREFUSED {})",
            r.total(),
            r.enobufs,
            r.eagain,
            r.refused
        ));
    }
    s
}

/// When to stop: `--count`, else `--duration` and/or `--rate`, else [`DEFAULT_COUNT`] lines.
fn limit_of(args: &Args) -> Limit {
    let count = match (args.count, args.duration, args.rate) {
        (Some(n), _, _) => Some(n),
        (None, None, None) => Some(DEFAULT_COUNT),
        _ => None,
    };
    Limit {
        count,
        duration: args.duration,
        rate: args.rate,
    }
}

/// Starts a thread that sends a `mix` of HAProxy and application lines to `target` over UDP,
/// one syslog datagram per line, at `rate` lines per second until `stop` is set. Lines are
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
            let limit = Limit {
                rate: Some(rate),
                ..Limit::default()
            };
            pump(&mut gen, &mut sink, limit, Some(&stop), None)
        })
}

/// Parses `--rate`: `N`, `N/s`, `N/m` (or `/min`), `N/h`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let (num, per) = s.split_once('/').unwrap_or((s, "s"));
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a rate such as 5000/s"))?;
    let secs = match per.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown rate unit `/{other}` (use /s, /m or /h)")),
    };
    let rate = n / secs;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!("rate `{s}` must be positive"))
    }
}

/// Parses `--duration`: `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 30s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` is out of range"))
}

/// Parses `--start`: `now`, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_start(s: &str) -> Result<Micros, String> {
    if s == "now" {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_string())?;
        return Ok(since.as_micros() as Micros);
    }
    crate::inputs::parse_time(s).ok_or_else(|| format!("`{s}` is not a time such as 2026-11-22T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::UdpSocket;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use weir_ingest::ParseOptions;
    use weir_model::time::{micros_from_civil, MICROS_PER_SEC};
    use weir_model::Record;

    use super::*;

    fn start() -> Micros {
        parse_start(DEFAULT_START).unwrap()
    }

    fn args(kind: Kind, count: u64, to: &str) -> Args {
        Args {
            kind,
            count: Some(count),
            seed: 1,
            rate: None,
            duration: None,
            to: to.into(),
            framing: None,
            start: start(),
        }
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

    #[test]
    fn rate_and_duration_give_rate_times_duration_lines() {
        let t = Instant::now();
        let (_, report) = pumped(Limit {
            count: None,
            duration: Some(Duration::from_millis(50)),
            rate: Some(2000.0),
        });
        assert_eq!(report.lines, 100);
        // The 100th line is due at 49.5 ms: the pace held, and nothing waited per line.
        assert!(t.elapsed() >= Duration::from_micros(49_500), "{:?}", t.elapsed());
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

    #[test]
    fn options_parse() {
        assert_eq!(parse_rate("5000"), Ok(5000.0));
        assert_eq!(parse_rate("5000/s"), Ok(5000.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5/d").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 days").is_err());
        assert_eq!(
            parse_start("2026-11-22T00:00:00Z"),
            Ok(micros_from_civil(2026, 11, 22, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_start("2026-11-22"),
            Ok(micros_from_civil(2026, 11, 22, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_start("2026-11-22T01:00:00.5+01:00"),
            Ok(micros_from_civil(2026, 11, 22, 0, 0, 0, 500_000))
        );
        assert!(parse_start("22/Nov/2026").is_err());
        assert!(parse_start("2026-13-01").is_err());
    }

    #[test]
    fn targets_parse() {
        let parse = |s: &str| Target::parse(s).map_err(|e| e.0);
        assert_eq!(parse("-"), Ok(Target::Stdout));
        assert_eq!(parse("x.log"), Ok(Target::File("x.log".into())));
        assert_eq!(
            parse("udp://127.0.0.1:5514"),
            Ok(Target::Udp("127.0.0.1:5514".parse().unwrap()))
        );
        assert_eq!(
            parse("tcp://[::1]:6514"),
            Ok(Target::Tcp("[::1]:6514".parse().unwrap()))
        );
        assert!(parse("udp://127.0.0.1").is_err());
        assert!(parse("http://127.0.0.1:80").is_err());
    }

    #[test]
    fn bad_targets_and_misplaced_framing_are_usage_errors() {
        for (to, framing) in [
            ("http://127.0.0.1:5514", None),
            ("udp://nowhere", None),
            ("udp://127.0.0.1:5514", Some(TcpFraming::Octet)),
            ("-", Some(TcpFraming::Lf)),
        ] {
            let err = run(Args {
                framing,
                ..args(Kind::Haproxy, 1, to)
            })
            .unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{to}: {err:#}");
        }
    }

    #[test]
    fn writes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        run(args(Kind::Haproxy, 500, &path.display().to_string())).unwrap();
        let mut want = Vec::new();
        let mut gen = HaproxyGen::new(1, start());
        for _ in 0..500 {
            gen.next_line(&mut want);
        }
        assert_eq!(std::fs::read(&path).unwrap(), want);
        assert_eq!(generate(Kind::Haproxy, 1, 500).0, want);
        // App lines go to files rsyslog style too, without a PRI.
        run(args(Kind::App, 300, &path.display().to_string())).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text, generate(Kind::App, 1, 300).0);
        assert!(text.split(|&b| b == b'\n').all(|l| !l.starts_with(b"<")));
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
        let mut sink = UdpSink::new(UdpSink::bind(target).unwrap(), target);
        let limit = Limit {
            count: Some(300),
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
        assert_eq!(report.lines, 300);
        let mut buf = vec![0u8; 65536];
        let mut bytes = 0;
        for _ in 0..300 {
            let n = rx.recv(&mut buf).unwrap();
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
        for _ in 0..200 {
            let n = rx.recv(&mut buf).unwrap();
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
    pub(super) fn receiver() -> UdpSocket {
        let rx = weir_ingest::listen::udp::bind("127.0.0.1:0".parse().unwrap(), 8 << 20, false).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        rx
    }
}
