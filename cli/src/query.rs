//! `weir query`: percentiles, counts and Apdex over any range, grouped by any part of the
//! series key, from the `windows` table of one or more spools.
//!
//! The partial rows of every spool (one per node, or one copied from each) are merged per
//! window and key, re-bucketed by `--every`, and only then turned into quantiles, so the
//! answer is the one a single histogram of every request would give, to its precision. Only
//! the `date=/hour=` partitions that can hold the range are read. With `--server`, the windows
//! a running `weir serve` holds in memory are added (only those not yet in its spool when a
//! spool is read too).

use std::path::PathBuf;

use anyhow::Context;
use weir_aggregate::query::{self, KeyDim, Measure, QueryRow, QuerySpec};
use weir_model::time::civil_from_micros;
use weir_model::{Micros, WindowRow};

use crate::output::{Cell, Format, Table};
use crate::UsageError;

/// `weir query`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A spool folder to read the `windows` table from (repeat it to merge several nodes'
    /// spools).
    #[arg(long, value_name = "DIR", required_unless_present = "server")]
    spool: Vec<PathBuf>,
    /// A running `weir serve` (http://127.0.0.1:9514): adds its windows that are not in the
    /// spool yet (the open ones and those waiting to be written); alone, its recent windows.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Windows starting at or after this instant: RFC 3339 (2026-11-22T01:00:00Z), a date, or
    /// a duration back from now (6h, 30m, 2d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Windows starting before this instant (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Group by these parts of the key, comma-separated: frontend, backend, server,
    /// status_class.
    #[arg(long, value_delimiter = ',', value_name = "DIMS")]
    by: Vec<String>,
    /// One output row per group and period of this length (1m, 5m, 1h, ...); without it, one
    /// row per group over the whole range.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    every: Option<std::time::Duration>,
    /// The distribution to read: request, queue, connect, response, total, data, bytes.
    #[arg(long, default_value = "total", value_name = "NAME")]
    timer: String,
    /// Keep only series whose key parts have these values: backend=be_api,status_class=5xx.
    #[arg(long = "where", value_delimiter = ',', value_name = "EXPR")]
    filters: Vec<String>,
    /// Apdex target T for the total time (300ms, 1s): adds an `apdex` column.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "T")]
    apdex_t: Option<std::time::Duration>,
    /// Significant figures the windows were written with.
    #[arg(long, default_value_t = 2)]
    sigfig: u8,
    /// Output format: an aligned table, CSV, JSON, or a Parquet file on standard output.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
    /// Query an l2met metric of app lines instead (measure#NAME, count#NAME, sample#NAME) from
    /// the spools' `metrics` table: count, sum, mean, min, max and last per group and period,
    /// and p50/p90/p95/p99 of measures; time in ms, sizes in bytes. --by and --where take app,
    /// source, host and proc; formats table, csv and json.
    #[arg(long, value_name = "NAME")]
    metric: Option<String>,
}

/// `--format` of `weir query`: the report formats and Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum QueryFormat {
    /// Aligned columns.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A zstd Parquet file (`window_start` a UTC timestamp), written to standard output.
    Parquet,
}

/// Reads an instant: RFC 3339, a date, or a duration back from `now`.
pub fn instant(flag: &str, s: &str, now: Micros) -> Result<Micros, UsageError> {
    if let Some(t) = crate::inputs::parse_time(s) {
        return Ok(t);
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(now - d.as_micros() as Micros),
        Err(_) => Err(UsageError(format!(
            "{flag} {s:?}: expected RFC 3339 such as 2026-11-22T01:00:00Z, a date, or a \
             duration back from now such as 6h"
        ))),
    }
}

/// The window rows of `[since, until)` from the spools and a server: with both, the server's
/// rows that its spool does not hold yet, and the spool's files but those the server's answer
/// already covered.
pub fn load(
    spools: &[PathBuf],
    server: Option<&str>,
    since: Option<Micros>,
    until: Option<Micros>,
    dists: &[&str],
) -> anyhow::Result<Vec<WindowRow>> {
    let mut rows: Vec<WindowRow> = Vec::new();
    // The server first: a file it publishes after answering holds rows of its answer, and is
    // then skipped below.
    let live = match server {
        Some(url) => Some(crate::live::windows(url, since, !spools.is_empty())?),
        None => None,
    };
    for spool in spools {
        let keep = |f: &std::path::Path| {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            live.as_ref().is_none_or(|l| !l.answered_for(name))
        };
        rows.extend(
            weir_store::windows::read_windows_projected(spool, since, until, keep, dists)
                .with_context(|| format!("reading the windows of {}", spool.display()))?,
        );
    }
    if let Some(l) = live {
        rows.extend(
            l.rows
                .into_iter()
                .filter(|r| until.is_none_or(|u| r.window_start < u)),
        );
    }
    Ok(rows)
}

/// Runs `spec` over the windows of `[since, until)` from the spools and a server (as
/// [`load`] chooses them), without holding rows: each stored row is merged into its group as
/// it is decoded, hour partitions are shared among the cores, and a period is summarized as
/// soon as the partitions that can hold it are read.
pub fn execute(spools: &[PathBuf], server: Option<&str>, spec: &QuerySpec) -> anyhow::Result<Vec<QueryRow>> {
    // Only the chosen distribution's columns are decoded (and the total time's, for Apdex),
    // and only the key columns the query groups or filters by.
    let mut dists = vec![spec.measure.name()];
    if spec.apdex_t.is_some() && !dists.contains(&"total") {
        dists.push("total");
    }
    let mut keys: Vec<&str> = spec
        .by
        .iter()
        .chain(spec.filters.iter().map(|(d, _)| d))
        .map(|d| d.name())
        .collect();
    keys.dedup();
    let mut merged = query::Query::new(spec)?;
    // The server first: a file it publishes after answering holds rows of its answer, and is
    // then skipped below.
    let live = match server {
        Some(url) => Some(crate::live::windows(url, spec.since, !spools.is_empty())?),
        None => None,
    };
    // A period may be summarized early once its partitions are read, unless it can still get
    // live rows or spans partitions.
    let mut horizon = Micros::MAX;
    if let Some(l) = &live {
        for r in &l.rows {
            merged.add(&r.view());
            horizon = horizon.min(r.window_start);
        }
    }
    let sealable = spec.every.is_some_and(|e| e <= 3600 && 3600 % e == 0);
    let mut partitions: Vec<(Micros, Vec<PathBuf>)> = Vec::new();
    for spool in spools {
        let keep = |f: &std::path::Path| {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            live.as_ref().is_none_or(|l| !l.answered_for(name))
        };
        for (hour, files) in weir_store::windows::window_partitions(spool, spec.since, spec.until)
            .with_context(|| format!("reading the windows of {}", spool.display()))?
        {
            partitions.push((hour, files.into_iter().filter(|f| keep(f)).collect()));
        }
    }
    partitions.sort_by_key(|(hour, _)| *hour);
    // The same hour of several spools is read by one worker.
    let mut hours: Vec<(Micros, Vec<PathBuf>, u64)> = Vec::new();
    for (hour, files) in partitions {
        let size: u64 = files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        match hours.last_mut() {
            Some(last) if last.0 == hour => {
                last.1.extend(files);
                last.2 += size;
            }
            _ => hours.push((hour, files, size)),
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(hours.len())
        .max(1);
    let total: u64 = hours.iter().map(|h| h.2).sum();
    let mut chunks: Vec<Vec<(Micros, Vec<PathBuf>)>> = vec![Vec::new(); workers];
    let mut seen = 0u64;
    for (hour, files, size) in hours {
        let k = ((seen as u128 * workers as u128) / u128::from(total.max(1))) as usize;
        chunks[k.min(workers - 1)].push((hour, files));
        seen += size;
    }
    let (keys, dists) = (&keys, &dists);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || -> anyhow::Result<query::Query<'_>> {
                    let mut q = query::Query::new(spec)?;
                    for (hour, files) in chunk {
                        weir_store::windows::scan_windows(&files, keys, dists, |row| q.add(row))
                            .with_context(|| {
                                format!(
                                    "reading {}",
                                    files
                                        .first()
                                        .map_or_else(String::new, |f| f.display().to_string())
                                )
                            })?;
                        if sealable {
                            q.seal_before((hour + 3_600_000_000).min(horizon))?;
                        }
                    }
                    Ok(q)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a query worker panicked")))
            })
            .collect::<Vec<_>>()
    });
    for part in parts {
        merged.absorb(part?);
    }
    Ok(merged.finish()?)
}

/// A part of the series key by its name.
fn key_dim(s: &str) -> Result<KeyDim, UsageError> {
    KeyDim::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<_> = KeyDim::ALL.iter().map(|d| d.name()).collect();
        UsageError(format!("{s:?}: expected one of {}", names.join(", ")))
    })
}

/// `--where KEY=VALUE,...`.
pub fn filters(list: &[String]) -> Result<Vec<(KeyDim, String)>, UsageError> {
    key_values(list, key_dim)
}

/// `--where KEY=VALUE,...` with the keys `key` reads.
fn key_values<K>(
    list: &[String],
    key: impl Fn(&str) -> Result<K, UsageError>,
) -> Result<Vec<(K, String)>, UsageError> {
    list.iter()
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| UsageError(format!("--where {f:?}: expected KEY=VALUE")))?;
            Ok((key(k)?, v.trim().to_owned()))
        })
        .collect()
}

/// `--since`, `--until`, and `--every` in whole seconds.
type RangeAndEvery = (Option<Micros>, Option<Micros>, Option<u32>);

/// `--since`, `--until` and `--every` (whole seconds).
fn range_and_every(args: &Args, now: Micros) -> Result<RangeAndEvery, UsageError> {
    let every = match args.every {
        Some(d) if d.as_secs() == 0 || d.subsec_nanos() != 0 => {
            return Err(UsageError("--every: use a whole number of seconds".into()))
        }
        Some(d) => Some(u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
        None => None,
    };
    let at = |flag, v: &Option<String>| v.as_deref().map(|s| instant(flag, s, now)).transpose();
    Ok((at("--since", &args.since)?, at("--until", &args.until)?, every))
}

/// The query an `Args` asks for.
fn spec(args: &Args, now: Micros) -> Result<QuerySpec, UsageError> {
    let by = args
        .by
        .iter()
        .map(|s| key_dim(s))
        .collect::<Result<Vec<_>, _>>()?;
    let filters = filters(&args.filters)?;
    let measure = Measure::from_name(&args.timer).ok_or_else(|| {
        UsageError(format!(
            "--timer {:?}: expected request, queue, connect, response, total, data or bytes",
            args.timer
        ))
    })?;
    let (since, until, every) = range_and_every(args, now)?;
    Ok(QuerySpec {
        since,
        until,
        by,
        every,
        filters,
        measure,
        apdex_t: args.apdex_t.map(|d| d.as_millis() as u64),
        sigfig: args.sigfig,
    })
}

/// The metric query an `Args` with `--metric` asks for.
fn metric_spec(args: &Args, name: &str, now: Micros) -> Result<crate::metric_query::MetricSpec, UsageError> {
    use crate::metric_query::dim;
    if args.server.is_some() {
        return Err(UsageError(
            "--metric reads the metrics table of --spool folders; a server's rows are there once published"
                .into(),
        ));
    }
    if args.apdex_t.is_some() {
        return Err(UsageError(
            "--apdex-t applies to request times, not to --metric".into(),
        ));
    }
    let filters = key_values(&args.filters, dim)?;
    let (since, until, every) = range_and_every(args, now)?;
    Ok(crate::metric_query::MetricSpec {
        name: name.to_owned(),
        since,
        until,
        by: args.by.iter().map(|d| dim(d)).collect::<Result<_, _>>()?,
        every,
        filters,
        sigfig: 3,
    })
}

/// Runs `weir query --metric`.
fn run_metric(args: &Args, name: &str) -> anyhow::Result<()> {
    let spec = metric_spec(args, name, weir_model::time::now_micros())?;
    let format = match args.format {
        QueryFormat::Table => Format::Table,
        QueryFormat::Csv => Format::Csv,
        QueryFormat::Json => Format::Json,
        QueryFormat::Parquet => {
            return Err(UsageError("--metric writes table, csv or json".into()).into());
        }
    };
    let rows = crate::metric_query::execute(&args.spool, &spec)?;
    let stdout = std::io::stdout();
    crate::metric_query::table(&spec, &rows).render(format, &mut stdout.lock())?;
    Ok(())
}

/// Runs `weir query`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(name) = args.metric.clone() {
        return run_metric(&args, &name);
    }
    let spec = spec(&args, weir_model::time::now_micros())?;
    let result = execute(&args.spool, args.server.as_deref(), &spec)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let format = match args.format {
        QueryFormat::Table => Format::Table,
        QueryFormat::Csv => Format::Csv,
        QueryFormat::Json => Format::Json,
        QueryFormat::Parquet => {
            use std::io::IsTerminal;
            if out.is_terminal() {
                return Err(UsageError(
                    "--format parquet writes binary: redirect standard output to a file".into(),
                )
                .into());
            }
            let batch = parquet_batch(&spec, &result)?;
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut bytes = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props))?;
            w.write(&batch)?;
            w.close()?;
            std::io::Write::write_all(&mut out, &bytes)?;
            return Ok(());
        }
    };
    table(&spec, &result).render(format, &mut out)?;
    Ok(())
}

/// The result as one Arrow batch with the columns of [`table`], typed: `window_start` a UTC
/// timestamp, counts and quantiles `Int64`, mean and Apdex `Float64`.
fn parquet_batch(spec: &QuerySpec, rows: &[QueryRow]) -> anyhow::Result<arrow_array::RecordBatch> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, d) in spec.by.iter().enumerate() {
        fields.push(Field::new(d.name(), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.group[i].as_str()),
        )));
    }
    fields.push(Field::new(
        "window_start",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.period_start)).with_timezone("UTC"),
    ));
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut ints = |name: &str, f: &dyn Fn(&QueryRow) -> Option<u64>| {
        fields.push(Field::new(name, DataType::Int64, true));
        columns.push(Arc::new(
            rows.iter().map(|r| f(r).map(int)).collect::<Int64Array>(),
        ));
    };
    ints("requests", &|r| Some(r.requests));
    ints("errors", &|r| Some(r.errors));
    ints("count", &|r| Some(r.summary.map_or(0, |s| s.count)));
    fields.push(Field::new("mean", DataType::Float64, true));
    columns.push(Arc::new(
        rows.iter()
            .map(|r| r.summary.map(|s| s.mean))
            .collect::<Float64Array>(),
    ));
    let mut ints = |name: &str, f: &dyn Fn(&QueryRow) -> Option<u64>| {
        fields.push(Field::new(name, DataType::Int64, true));
        columns.push(Arc::new(
            rows.iter().map(|r| f(r).map(int)).collect::<Int64Array>(),
        ));
    };
    ints("p50", &|r| r.summary.map(|s| s.p50));
    ints("p90", &|r| r.summary.map(|s| s.p90));
    ints("p95", &|r| r.summary.map(|s| s.p95));
    ints("p99", &|r| r.summary.map(|s| s.p99));
    ints("p999", &|r| r.summary.map(|s| s.p999));
    ints("max", &|r| r.summary.map(|s| s.max));
    if spec.apdex_t.is_some() {
        fields.push(Field::new("apdex", DataType::Float64, true));
        columns.push(Arc::new(rows.iter().map(|r| r.apdex).collect::<Float64Array>()));
    }
    Ok(arrow_array::RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(t: Micros) -> String {
    let (y, mo, d, h, mi, s, _) = civil_from_micros(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The result as DESIGN §4's query columns: the `--by` columns, `window_start`, `requests`,
/// `errors`, then `count,mean,p50,p90,p95,p99,p999,max` of the chosen distribution, and
/// `apdex` when asked.
pub fn table(spec: &QuerySpec, rows: &[QueryRow]) -> Table {
    let mut header: Vec<String> = spec.by.iter().map(|d| d.name().to_owned()).collect();
    header.extend(
        [
            "window_start",
            "requests",
            "errors",
            "count",
            "mean",
            "p50",
            "p90",
            "p95",
            "p99",
            "p999",
            "max",
        ]
        .map(String::from),
    );
    if spec.apdex_t.is_some() {
        header.push("apdex".into());
    }
    let mut t = Table::new(header);
    for r in rows {
        let mut cells: Vec<Cell> = r.group.iter().map(|g| Cell::Str(g.clone())).collect();
        cells.push(Cell::Str(rfc3339(r.period_start)));
        cells.push(Cell::count(r.requests));
        cells.push(Cell::count(r.errors));
        match r.summary {
            Some(s) => {
                cells.push(Cell::count(s.count));
                cells.push(Cell::fixed(s.mean, 1));
                for v in [s.p50, s.p90, s.p95, s.p99, s.p999, s.max] {
                    cells.push(Cell::count(v));
                }
            }
            None => {
                cells.push(Cell::count(0));
                cells.extend(std::iter::repeat_n(Cell::Null, 7));
            }
        }
        if spec.apdex_t.is_some() {
            cells.push(r.apdex.map_or(Cell::Null, |a| Cell::fixed(a, 3)));
        }
        t.push(cells);
    }
    t
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        let mut v = vec!["weir-query", "--spool", "s"];
        v.extend_from_slice(argv);
        Cli::try_parse_from(v).unwrap().args
    }

    #[test]
    fn flags_make_the_spec() {
        let now = 10 * 3_600_000_000;
        let a = args(&[
            "--since",
            "6h",
            "--until",
            "1970-01-01T09:00:00Z",
            "--by",
            "backend,server",
            "--every",
            "1m",
            "--timer",
            "Tr",
            "--where",
            "backend=be_api,status_class=5xx",
            "--apdex-t",
            "300ms",
        ]);
        let s = spec(&a, now).unwrap();
        assert_eq!(s.since, Some(4 * 3_600_000_000));
        assert_eq!(s.until, Some(9 * 3_600_000_000));
        assert_eq!(s.by, [KeyDim::Backend, KeyDim::Server]);
        assert_eq!(s.every, Some(60));
        assert_eq!(s.measure, Measure::Timer(weir_aggregate::TimerId::Response));
        assert_eq!(
            s.filters,
            [
                (KeyDim::Backend, "be_api".to_owned()),
                (KeyDim::StatusClass, "5xx".to_owned())
            ]
        );
        assert_eq!(s.apdex_t, Some(300));
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            vec!["--by", "colour"],
            vec!["--where", "backend"],
            vec!["--timer", "latency"],
            vec!["--since", "yesterday"],
            vec!["--every", "1500ms"],
        ] {
            assert!(spec(&args(&bad), 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spool_or_server_is_required() {
        assert!(Cli::try_parse_from(["weir-query"]).is_err());
        assert!(Cli::try_parse_from(["weir-query", "--server", "http://127.0.0.1:9514"]).is_ok());
    }
}
