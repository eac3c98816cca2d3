//! `weir gen`: the command line of the generator in `weir-gen`. It parses the target
//! (a file, stdout, `udp://` or `tcp://`), the pace and the bounds, runs the generator's pump
//! into the matching sink with a progress bar on a terminal, and ends with a line on stderr that
//! says how many lines went out, how fast, and how many sends were retried.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use weir_gen::send::{pump, Framing, Limit, SendReport, Sink, UdpSink, WriteSink};
use weir_gen::{Captures, Kind, Layout, LineGen, Shape};
use weir_model::Micros;

use crate::UsageError;

/// The default `--start`: a fixed instant, so that output is reproducible.
const DEFAULT_START: &str = "2026-11-22T00:00:00Z";

/// Lines written when neither `--count`, `--duration` nor `--rate` bounds the output.
const DEFAULT_COUNT: u64 = 10_000;

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
    /// Write every HAProxy line in this layout (only the frontends that write it take traffic)
    /// [default: the simulated site's mix of httplog, httpslog, logasap and tcplog].
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,
    /// Capture blocks of every HTTP line, as `capture request header` / `capture response
    /// header` print them: request headers, then response headers, e.g.
    /// `'{host|user-agent} {content-type}'`. Request: host, user-agent, referer,
    /// x-forwarded-for, x-request-id; response: content-type, content-length, cache-control,
    /// location [default: each frontend's own].
    #[arg(long)]
    pub captures: Option<Captures>,
    /// Load balancers writing into the output (`lb1`, `lb2`, ...) [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub hosts: Option<u16>,
    /// HAProxy processes (pids) per load balancer [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub processes: Option<u16>,
    /// Every request a server answered names one of this many servers, `srv1`..`srvN`, picked
    /// at random whatever its backend: a load of many series [default: each backend's own].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub servers: Option<u32>,
    /// Mean simulated requests per second of the site (the HAProxy lines' times advance by
    /// it; a day of traffic is 86,400 × N lines) [default: 250].
    #[arg(long, value_name = "N", value_parser = site_rate)]
    pub site_rate: Option<f64>,
    /// Stamp each line with the wall clock as it is generated, as live traffic is (the lines'
    /// content stays that of the seed): for feeding a running `weir serve`.
    #[arg(long)]
    pub live: bool,
}

impl Args {
    /// The HAProxy knobs as a [`Shape`]; they shape HAProxy lines, so `--kind app` refuses them.
    fn shape(&self) -> Result<Shape, UsageError> {
        let shape = Shape {
            layout: self.layout,
            captures: self.captures.clone(),
            hosts: self.hosts.map(usize::from),
            processes: self.processes.map(usize::from),
            servers: self.servers.map(|n| n as usize),
            site_rate: self.site_rate,
        };
        if matches!(self.kind, Kind::App | Kind::Logfmt | Kind::L2met) && shape != Shape::default() {
            return Err(UsageError(
                "--layout, --captures, --hosts, --processes, --servers and --site-rate shape HAProxy lines: use them with \
                 --kind haproxy or mix"
                    .into(),
            ));
        }
        Ok(shape)
    }
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
    let mut gen = LineGen::with_shape(args.kind, args.seed, args.start, &args.shape()?);
    if args.live {
        gen.follow_wall_clock();
    }
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
    let progress = |sent| {
        if let Some(bar) = &bar {
            bar.set_position(sent);
        }
    };
    let report = pump(&mut gen, sink.as_mut(), limit, None, Some(&progress))
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

/// A positive, finite `--site-rate`.
fn site_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?}: expected a positive number of requests per second"
        )),
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
    use weir_gen::haproxy::HaproxyGen;
    use weir_model::time::micros_from_civil;

    use super::*;

    fn start() -> Micros {
        parse_start(DEFAULT_START).unwrap()
    }

    fn generate(kind: Kind, n: usize) -> Vec<u8> {
        let mut gen = LineGen::new(kind, 1, start());
        let mut buf = Vec::new();
        for _ in 0..n {
            gen.next_line(&mut buf);
        }
        buf
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
            layout: None,
            captures: None,
            hosts: None,
            processes: None,
            servers: None,
            site_rate: None,
            live: false,
        }
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
        assert_eq!(generate(Kind::Haproxy, 500), want);
        // App lines go to files rsyslog style too, without a PRI.
        run(args(Kind::App, 300, &path.display().to_string())).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text, generate(Kind::App, 300));
        assert!(text.split(|&b| b == b'\n').all(|l| !l.starts_with(b"<")));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("gen").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn shape_flags_parse_and_apply_to_haproxy_lines_only() {
        let a = parse(&[
            "--layout",
            "clf",
            "--captures",
            "{host|user-agent} {content-type}",
            "--hosts",
            "3",
            "--processes",
            "2",
        ])
        .unwrap();
        let shape = a.shape().unwrap();
        assert_eq!(shape.layout, Some(Layout::Clf));
        assert_eq!(
            shape.captures.unwrap().to_string(),
            "{host|user-agent} {content-type}"
        );
        assert_eq!((shape.hosts, shape.processes), (Some(3), Some(2)));
        assert_eq!(parse(&[]).unwrap().shape().unwrap(), Shape::default());
        assert!(parse(&["--hosts", "0"]).is_err());
        assert!(parse(&["--captures", "{cookie}"]).is_err());
        assert!(parse(&["--layout", "json"]).is_err());
        let err = run(Args {
            hosts: Some(2),
            ..args(Kind::App, 1, "-")
        })
        .unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
    }
}
