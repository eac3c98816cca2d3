//! `weir report KIND FILE...`: halog's reports, read straight from log files.
//!
//! The inputs are cut into chunks ([`weir_ingest::read::for_each_chunk`]); each worker thread
//! parses its chunks and adds every line to its own [`ReportAccumulator`], which holds only
//! what KIND needs. The accumulators are merged exactly at the end and rendered as a
//! [`Table`]. Where the numbers differ from halog's on purpose, `docs/halog.md` says how.
//!
//! With `--spool DIR`, the report is made from the spool's `windows` table instead (see
//! [`weir_aggregate::report::windows`]): the same columns, over any range, without reading a
//! log line again.

use std::io::Write;

use anyhow::Context;
use weir_aggregate::hdr::REPORT_SIGFIG;
use weir_aggregate::{Dim, ReportAccumulator, ReportKind, ReportSpec, TimeRange};
use weir_ingest::read::{for_each_chunk, Chunking, ReadError};
use weir_ingest::{for_each_line_of_chunk, Expect, ParseOptions};
use weir_model::Micros;

use crate::inputs;
use crate::output::{Format, Table};
use crate::UsageError;

/// `weir report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The report: summary, status (halog -st), servers (-srv), backends, urls (-u),
    /// termination (-tc), timers (-pct, with all five timers and the data time).
    #[arg(value_enum, value_name = "KIND")]
    kind: Kind,
    /// Log files to read: paths, `-` for standard input, gzip or zstd compressed or not.
    /// None: standard input.
    #[arg(value_name = "FILE", conflicts_with = "spool")]
    files: Vec<String>,
    /// Report from the `windows` table of this spool instead of log lines (repeat it to merge
    /// several nodes' spools). Every kind but urls; --by frontend, backend, server,
    /// status_class.
    #[arg(long, value_name = "DIR")]
    spool: Vec<std::path::PathBuf>,
    /// Add an Apdex column to servers and backends: target T for the total time (300ms):
    /// satisfied at or below T, tolerating up to 4T.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "T")]
    apdex_t: Option<std::time::Duration>,
    /// Significant figures the windows were written with (with --spool).
    #[arg(long, default_value_t = 2, value_name = "N")]
    sigfig: u8,
    /// Output: aligned text, CSV (the column contract of the docs) or JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Split rows by these dimensions, comma-separated: frontend, backend, server, host,
    /// status_class, path. For status, termination and timers.
    #[arg(long, value_name = "DIMS", value_delimiter = ',')]
    by: Vec<String>,
    /// Only lines whose event time (the accept date) is at or after this time
    /// (RFC 3339, e.g. 2026-11-22T01:00:00Z, or a date, 2026-11-22).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only lines whose event time is before this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// The zone of zone-less dates ([`inputs::TIMEZONE_HELP`]).
    #[arg(long, default_value = "UTC", value_name = "TZ", help = inputs::TIMEZONE_HELP)]
    timezone: String,
    /// The longest line kept, in bytes; a longer line is one `too_long` reject that keeps
    /// its first MAX bytes (the default is ingest.max_line's).
    #[arg(long, value_name = "MAX", default_value_t = weir_ingest::framing::DEFAULT_MAX_LINE,
          value_parser = clap::value_parser!(usize))]
    max_line: usize,
    #[command(flatten)]
    formats: inputs::FormatArgs,
    /// Read files with read(2) instead of memory-mapping them. Mapping is faster, but a file
    /// truncated by another process while weir reads it (logrotate's copytruncate) ends weir
    /// with SIGBUS; use this when that may happen.
    #[arg(long)]
    no_mmap: bool,
}

/// KIND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// Lines by kind, rejects by reason, time span, bytes, status classes, total time.
    Summary,
    /// Requests per HTTP status code (halog -st).
    Status,
    /// Per backend and server: status classes, ok share, mean connect and response (halog -srv).
    Servers,
    /// Per backend: status classes, ok share, bytes, mean connect and response, total-time
    /// quantiles.
    Backends,
    /// Per URL path: requests, errors, total time, bytes (halog -u), busiest first.
    Urls,
    /// Requests per termination code, the first two characters of the state (halog -tc).
    Termination,
    /// Count, mean, p50, p90, p95, p99, p99.9 and max of each timer (halog -pct).
    Timers,
}

impl From<Kind> for ReportKind {
    fn from(k: Kind) -> ReportKind {
        match k {
            Kind::Summary => ReportKind::Summary,
            Kind::Status => ReportKind::Status,
            Kind::Servers => ReportKind::Servers,
            Kind::Backends => ReportKind::Backends,
            Kind::Urls => ReportKind::Urls,
            Kind::Termination => ReportKind::Termination,
            Kind::Timers => ReportKind::Timers,
        }
    }
}

/// `weir report --spool`: the report from the windows of the range.
fn from_windows(args: &Args, spec: &ReportSpec) -> anyhow::Result<()> {
    use weir_aggregate::report::windows;
    windows::check(spec.kind, &spec.by).map_err(|e| UsageError(e.to_string()))?;
    let mut rows = Vec::new();
    for spool in &args.spool {
        rows.extend(
            weir_store::windows::read_windows(spool, spec.range.since, spec.range.until)
                .with_context(|| format!("reading the windows of {}", spool.display()))?,
        );
    }
    let apdex = args.apdex_t.map(|d| d.as_millis() as u64);
    let t = windows::report(spec.kind, &spec.by, &rows, args.sigfig, apdex)?;
    let mut table = Table::new(t.header);
    for row in t.rows {
        table.push(row);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    table.render(args.format, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Runs `weir report`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = spec(&args)?;
    if !args.spool.is_empty() {
        return from_windows(&args, &spec);
    }
    let opts = ParseOptions {
        request_line: spec.uses_request_line(),
        formats: inputs::formats(
            args.formats.log_format.as_deref(),
            args.formats.haproxy_config.as_deref(),
        )?,
        ..inputs::parse_options(&args.timezone)?
    };
    let proto = ReportAccumulator::new(spec).map_err(|e| UsageError(format!("{e}")))?;
    let inputs = inputs::inputs(&args.files);
    let threads = inputs::threads(args.threads);
    let bar = inputs::progress_bar(&inputs);

    let (states, read) = for_each_chunk(
        &inputs,
        threads,
        Chunking {
            map_files: !args.no_mmap,
            max_line: args.max_line,
            ..Chunking::default()
        },
        |_| proto.clone(),
        |acc, chunk| for_each_line_of_chunk(chunk, &opts, Expect::Auto, args.max_line, |line| acc.add(line)),
        |n| bar.inc(n),
    );
    bar.finish_and_clear();
    // An input that could not be opened is reported alone; one damaged part way is reported
    // after the lines read before the damage.
    if let Err(e @ ReadError::Open { .. }) = read {
        return Err(e.into());
    }
    let mut total = proto;
    for s in states {
        total.merge(s).context("merging the workers' reports")?;
    }

    let rows = total.rows();
    let mut table = Table::new(rows.header);
    for row in rows.rows {
        table.push(row);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    table.render(args.format, &mut out)?;
    out.flush()?;
    read.map_err(Into::into)
}

/// The report to compute, from the flags; a bad flag is a [`UsageError`].
fn spec(args: &Args) -> anyhow::Result<ReportSpec> {
    let kind = ReportKind::from(args.kind);
    let by = args
        .by
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            Dim::from_name(s.trim()).ok_or_else(|| {
                let names: Vec<_> = Dim::ALL.iter().map(|d| d.name()).collect();
                UsageError(format!("--by {s:?}: expected one of {}", names.join(", ")))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !by.is_empty() && !kind.supports_by() {
        return Err(UsageError(format!(
            "--by does not apply to `{}` (it applies to status, termination and timers)",
            kind.name()
        ))
        .into());
    }
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<Micros>> {
        v.as_deref()
            .map(|s| {
                crate::inputs::parse_time(s).ok_or_else(|| {
                    UsageError(format!(
                        "{flag} {s:?}: expected RFC 3339 such as 2026-11-22T01:00:00Z, or a date"
                    ))
                })
            })
            .transpose()
            .map_err(Into::into)
    };
    let range = TimeRange {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
    };
    Ok(ReportSpec {
        kind,
        by,
        sigfig: REPORT_SIGFIG,
        range,
        apdex_t: args.apdex_t.map(|d| d.as_millis() as u64),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use weir_model::time::micros_from_civil;

    use super::*;
    use crate::inputs::parse_time;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("report").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn kind_files_and_defaults() {
        let a = args(&["timers", "a.log", "-", "b.log.gz"]).unwrap();
        assert_eq!(a.kind, Kind::Timers);
        assert_eq!(a.files, ["a.log", "-", "b.log.gz"]);
        assert_eq!(a.format, Format::Table);
        assert_eq!(a.timezone, "UTC");
        assert!(a.threads.is_none() && a.by.is_empty());
        assert!(args(&["nonsense"]).is_err());
    }

    #[test]
    fn every_kind_parses() {
        for k in [
            "summary",
            "status",
            "servers",
            "backends",
            "urls",
            "termination",
            "timers",
        ] {
            let a = args(&[k]).unwrap();
            assert_eq!(ReportKind::from(a.kind).name(), k);
        }
    }

    #[test]
    fn format_threads_timezone() {
        let a = args(&[
            "status",
            "--format",
            "csv",
            "--threads",
            "3",
            "--timezone",
            "+02:00",
        ])
        .unwrap();
        assert_eq!(
            (a.format, a.threads, a.timezone.as_str()),
            (Format::Csv, Some(3), "+02:00")
        );
        assert!(args(&["status", "--format", "xml"]).is_err());
    }

    #[test]
    fn max_line_and_an_iana_timezone() {
        let a = args(&["status", "--max-line", "1000", "--timezone", "Europe/Berlin"]).unwrap();
        assert_eq!((a.max_line, a.timezone.as_str()), (1000, "Europe/Berlin"));
        assert_eq!(args(&["status"]).unwrap().max_line, 65536);
        assert!(args(&["status", "--max-line", "lots"]).is_err());
        assert!(inputs::parse_options("Europe/Berlin").is_ok());
        let bad = inputs::parse_options("Mars/Olympus").unwrap_err();
        assert!(bad.downcast_ref::<UsageError>().is_some());
    }

    #[test]
    fn by_is_a_comma_list_checked_against_the_kind() {
        let a = args(&["timers", "--by", "backend,server"]).unwrap();
        assert_eq!(spec(&a).unwrap().by, [Dim::Backend, Dim::Server]);
        let bad = args(&["timers", "--by", "colour"]).unwrap();
        assert!(spec(&bad).unwrap_err().downcast_ref::<UsageError>().is_some());
        let wrong_kind = args(&["servers", "--by", "backend"]).unwrap();
        assert!(spec(&wrong_kind)
            .unwrap_err()
            .downcast_ref::<UsageError>()
            .is_some());
    }

    #[test]
    fn since_and_until_make_the_range() {
        let a = args(&[
            "summary",
            "--since",
            "2026-11-22T01:00:00Z",
            "--until",
            "2026-11-23",
        ])
        .unwrap();
        let r = spec(&a).unwrap().range;
        assert_eq!(r.since, Some(micros_from_civil(2026, 11, 22, 1, 0, 0, 0)));
        assert_eq!(r.until, Some(micros_from_civil(2026, 11, 23, 0, 0, 0, 0)));
        let bad = args(&["summary", "--since", "yesterday"]).unwrap();
        assert!(spec(&bad).unwrap_err().downcast_ref::<UsageError>().is_some());
    }

    #[test]
    fn rfc3339_forms() {
        let base = micros_from_civil(2026, 11, 22, 1, 22, 6, 0);
        assert_eq!(parse_time("2026-11-22T01:22:06Z"), Some(base));
        assert_eq!(parse_time("2026-11-22T01:22:06.5Z"), Some(base + 500_000));
        assert_eq!(parse_time("2026-11-22T03:22:06+02:00"), Some(base));
        assert_eq!(parse_time("2026-11-22 01:22:06z"), Some(base));
        assert_eq!(parse_time("2026-11-22T01:22:06"), None);
        assert_eq!(parse_time("2026-13-22"), None);
        assert_eq!(parse_time("22/Nov/2026"), None);
    }
}
