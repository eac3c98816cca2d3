//! `weir report KIND FILE...`: halog's reports, read straight from log files.
//!
//! The inputs are cut into chunks ([`weir_ingest::read::for_each_chunk`]); each worker thread
//! parses its chunks and adds every line to its own [`ReportAccumulator`], which holds only
//! what KIND needs. The accumulators are merged exactly at the end and rendered as a
//! [`Table`]. Where the numbers differ from halog's on purpose, `docs/halog.md` says how.

use std::io::Write;

use anyhow::Context;
use weir_aggregate::hdr::REPORT_SIGFIG;
use weir_aggregate::{Dim, ReportAccumulator, ReportKind, ReportSpec, TimeRange};
use weir_ingest::read::{for_each_chunk, Chunking};
use weir_ingest::{for_each_line_str, parse_line, Expect, ParseOptions};
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
    #[arg(value_name = "FILE")]
    files: Vec<String>,
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
    /// The zone HAProxy wrote its accept dates in: UTC or a fixed offset such as +02:00.
    #[arg(long, default_value = "UTC")]
    timezone: String,
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

/// Runs `weir report`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = spec(&args)?;
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

    let states = for_each_chunk(
        &inputs,
        threads,
        Chunking {
            map_files: !args.no_mmap,
            ..Chunking::default()
        },
        |_| proto.clone(),
        |acc, chunk| match simdutf8::basic::from_utf8(chunk.data()) {
            // One UTF-8 validation per chunk, not one per line.
            Ok(text) => for_each_line_str(text, &opts, Expect::Auto, |line| acc.add(line)),
            Err(_) => {
                for raw in chunk.lines() {
                    acc.add(&parse_line(raw, &opts));
                }
            }
        },
        |n| bar.inc(n),
    );
    bar.finish_and_clear();
    let mut total = proto;
    for s in states? {
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
    Ok(())
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
