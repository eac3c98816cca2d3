//! `weir import`: log files in, Parquet spool out.
//!
//! The inputs are cut into chunks ([`weir_ingest::read::for_each_chunk`]); every worker thread
//! parses its chunks and appends the records to a [`SpoolWriter`] of its own, so parsing and
//! Parquet encoding both use every core and never wait on each other. Each line lands in exactly
//! one table (`requests`, `tcp`, `app`, `rejects`), and the summary printed at the end adds up
//! to the number of lines read. Each worker also aggregates its HTTP requests into tumbling
//! windows ([`WindowAggregator`]). Due windows are closed after each chunk, unless the chunk
//! reopened windows (a log out of time order): those stay open while there is room, so that
//! late requests are merged in memory rather than written as a correction row each. The
//! workers' closed rows go to one thread, which merges the rows of a window and series that
//! several workers closed (a window's requests fall in the chunks of both) once every worker
//! has closed that window, and writes the `windows` table; rows later than that are written as
//! they come, partial rows that readers merge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use weir_aggregate::{merge_pair, WindowAggregator, WindowConfig, WindowStats};
use weir_ingest::l2met::LineMetrics;
use weir_ingest::read::{for_each_chunk, Chunking, ReadError};
use weir_ingest::{for_each_line_of_chunk, Expect, ParseOptions};
use weir_model::{Line, Micros, Record, RejectReason, WindowKey, WindowRow};
use weir_store::windows::{WindowFile, WindowsWriter};
use weir_store::{RecordMeta, SpoolOptions, SpoolStats, SpoolWriter, Table};

use crate::inputs;

/// `weir import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log files to read: paths, `-` for standard input, gzip or zstd compressed or not.
    #[arg(value_name = "FILE")]
    files: Vec<String>,
    /// The spool folder to write into.
    #[arg(long, default_value = "./weir-spool", value_name = "DIR")]
    spool: PathBuf,
    /// What the lines are: decide per line (auto), or insist on one kind.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Node id in file names (default: this host's name).
    #[arg(long)]
    node: Option<String>,
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
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// zstd level of the Parquet files.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// Length of the tumbling windows aggregated into the `windows` table.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    window: std::time::Duration,
    /// Significant figures of the windows' histograms (1 to 5).
    #[arg(long, default_value_t = 2)]
    sigfig: u8,
    /// Read files with read(2) instead of memory-mapping them. Mapping is faster, but a file
    /// truncated by another process while weir reads it (logrotate's copytruncate) ends weir
    /// with SIGBUS; use this when that may happen.
    #[arg(long)]
    no_mmap: bool,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// Decide per line by content.
    Auto,
    /// HAProxy output only; any other line is a reject.
    Haproxy,
    /// Every line must carry a syslog header.
    Syslog,
    /// Application lines (never read as HAProxy's).
    App,
}

impl From<FormatArg> for Expect {
    fn from(f: FormatArg) -> Expect {
        match f {
            FormatArg::Auto => Expect::Auto,
            FormatArg::Haproxy => Expect::Haproxy,
            FormatArg::Syslog => Expect::Syslog,
            FormatArg::App => Expect::App,
        }
    }
}

/// Batches of closed window rows the windows writer's queue holds before workers wait.
const WINDOWS_QUEUE: usize = 64;

/// What the windows writer's thread is sent.
enum WindowsMsg {
    /// Rows worker `worker` closed; it has closed every window ending at or before
    /// `closed_until`.
    Rows {
        worker: usize,
        rows: Vec<WindowRow>,
        closed_until: Micros,
    },
    /// Every row was sent: publish the rest (unless a write failed) and end.
    Finish,
}

/// The windows thread's rows waiting for every worker to close their window, merged per window
/// and series.
struct Held {
    rows: BTreeMap<(Micros, u32, WindowKey), WindowRow>,
    /// Per worker, the instant up to which it closed every window.
    closed: Vec<Micros>,
    /// Empty stats of the windows' precision, to merge rows in.
    empty: WindowStats,
}

impl Held {
    fn new(workers: usize, sigfig: u8) -> anyhow::Result<Held> {
        Ok(Held {
            rows: BTreeMap::new(),
            closed: vec![Micros::MIN; workers.max(1)],
            empty: WindowStats::new(sigfig)?,
        })
    }

    /// Adds a worker's closed rows; returns the rows every worker has closed the window of,
    /// ordered by window and key.
    fn add(&mut self, worker: usize, rows: Vec<WindowRow>, closed_until: Micros) -> Vec<WindowRow> {
        let w = worker % self.closed.len();
        self.closed[w] = self.closed[w].max(closed_until);
        for row in rows {
            match self
                .rows
                .entry((row.window_start, row.window_secs, row.key.clone()))
            {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(row);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    *e.get_mut() = merge_pair(&self.empty, row, e.get());
                }
            }
        }
        let done = self.closed.iter().copied().min().unwrap_or(Micros::MIN);
        let mut ready = Vec::new();
        while let Some(e) = self.rows.first_entry() {
            let (start, secs, _) = e.key();
            if start.saturating_add(i64::from(*secs) * 1_000_000) > done {
                break;
            }
            ready.push(e.remove());
        }
        ready
    }

    /// Every row still held (the end of the input).
    fn rest(&mut self) -> Vec<WindowRow> {
        std::mem::take(&mut self.rows).into_values().collect()
    }
}

/// One worker's state.
struct Worker {
    /// Its index among the workers.
    id: usize,
    writer: Result<SpoolWriter, weir_store::StoreError>,
    windows: WindowAggregator,
    lines: u64,
    rejects: BTreeMap<RejectReason, u64>,
}

/// Runs `weir import`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = ParseOptions {
        formats: inputs::formats(
            args.formats.log_format.as_deref(),
            args.formats.haproxy_config.as_deref(),
        )?,
        ..inputs::parse_options(&args.timezone)?
    };
    let expect = Expect::from(args.format);
    let inputs = inputs::inputs(&args.files);
    let threads = inputs::threads(args.threads);
    let node = args.node.clone().unwrap_or_else(crate::default_node);
    let run_id = format!("i{}", weir_model::time::now_micros() / 1000);
    let seq = Arc::new(AtomicU64::new(0));
    let received_at = weir_model::time::now_micros();
    let window_config = WindowConfig {
        window_secs: u32::try_from(args.window.as_secs()).unwrap_or(u32::MAX),
        sigfig: args.sigfig,
        node: node.clone(),
        ..WindowConfig::default()
    };
    if args.window.as_secs() == 0 || args.window.subsec_nanos() != 0 {
        return Err(crate::UsageError(format!(
            "--window {}: use a whole number of seconds",
            humantime::format_duration(args.window)
        ))
        .into());
    }
    // Checks the precision before any work starts.
    WindowAggregator::new(window_config.clone()).map_err(|e| crate::UsageError(format!("--sigfig: {e}")))?;
    let bar = inputs::progress_bar(&inputs);
    let started = std::time::Instant::now();
    // Closed windows go to one writer, on a thread of its own, as they close; it publishes a
    // partition's rows once there are enough of them, so memory stays flat however long the
    // input, and no worker waits while it encodes them. It publishes the rest only when told
    // the import is done: an import that stops on an error publishes no window rows.
    let mut windows = WindowsWriter::new(SpoolOptions {
        sequence: seq.clone(),
        zstd_level: args.zstd_level,
        rotate_age: None,
        ..SpoolOptions::new(&args.spool, &node, &run_id)
    })?;
    let (window_tx, window_rx) = std::sync::mpsc::sync_channel::<WindowsMsg>(WINDOWS_QUEUE);
    let mut held = Held::new(threads, window_config.sigfig)?;
    let windows_thread = std::thread::Builder::new()
        .name("weir-windows".into())
        .spawn(
            move || -> Option<Result<Vec<WindowFile>, weir_store::StoreError>> {
                let mut failed = None;
                for msg in window_rx {
                    match msg {
                        WindowsMsg::Rows {
                            worker,
                            rows,
                            closed_until,
                        } => {
                            let ready = held.add(worker, rows, closed_until);
                            if failed.is_none() && !ready.is_empty() {
                                failed = windows.append_owned(ready).err();
                            }
                        }
                        WindowsMsg::Finish => {
                            if failed.is_none() {
                                failed = windows.append_owned(held.rest()).err();
                            }
                            return Some(match failed {
                                Some(e) => Err(e),
                                None => windows.finish(),
                            });
                        }
                    }
                }
                None
            },
        )
        .context("starting the windows writer")?;
    // Sent after every chunk that closed windows, rows or none, so that the windows thread
    // knows how far each worker has come; a worker that has seen no request holds back no
    // window (a request it sees later for an earlier window makes a partial row of its own).
    let hand_over = |w: &mut Worker, rows: Vec<WindowRow>| {
        let closed_until = match w.windows.watermark() {
            Some(_) => w.windows.closed_until(),
            None => Micros::MAX,
        };
        // The writer ends only after every worker, so the send cannot fail.
        let _ = window_tx.send(WindowsMsg::Rows {
            worker: w.id,
            rows,
            closed_until,
        });
    };

    // The workers' writers share one set of open files: a partition's rows fill one file
    // whichever workers parsed them.
    let spool = SpoolOptions {
        sequence: seq.clone(),
        zstd_level: args.zstd_level,
        rotate_age: None,
        late_rows_apart: true,
        ..SpoolOptions::new(&args.spool, &node, &run_id)
    };
    let (workers, read) = for_each_chunk(
        &inputs,
        threads,
        Chunking {
            map_files: !args.no_mmap,
            max_line: args.max_line,
            ..Chunking::default()
        },
        |id| Worker {
            id,
            writer: SpoolWriter::create(spool.clone()),
            windows: WindowAggregator::new(window_config.clone())
                .expect("the window configuration was checked above"),
            lines: 0,
            rejects: BTreeMap::new(),
        },
        |w, chunk| {
            let Ok(writer) = w.writer.as_mut() else { return };
            let meta = RecordMeta {
                received_at: Some(received_at),
                peer: None,
            };
            let mut failed = None;
            let late_before = w.windows.counters().late;
            let mut add = |line: &Line<'_>| {
                if failed.is_some() {
                    return;
                }
                w.lines += 1;
                match &line.record {
                    Record::Reject(r) => *w.rejects.entry(r.reason).or_default() += 1,
                    Record::Http(h) => w.windows.add(h),
                    Record::App(weir_model::AppLog {
                        router: Some(r),
                        ts: Some(ts),
                        ..
                    }) => w.windows.add_router(*ts, r),
                    _ => {}
                }
                if let Err(e) = writer
                    .append(line, &meta)
                    .and_then(|()| writer.append_metrics(line, &meta, &LineMetrics::of_line(line)))
                {
                    failed = Some(e);
                }
            };
            // A chunk's lines go to the builders in time order (a stable sort: lines of the same
            // time keep theirs). A log is written as requests end, so it is nearly but not quite
            // in accept-time order; sorted, a chunk's rows extend the rows of the chunks before
            // it in time order but for a few, so that a row group needs no sort when it is
            // written (`late_rows_apart`), and lines do not hop between partitions' builders
            // and windows.
            // (Room for lines of 160 bytes on average; longer ones leave it spare.)
            let mut lines: Vec<Line<'_>> = Vec::with_capacity(chunk.data().len() / 160);
            let mut order: Vec<(i64, u32)> = Vec::with_capacity(lines.capacity());
            for_each_line_of_chunk(chunk, &opts, expect, args.max_line, |line| {
                let time = line.record.event_time(meta.received_at).unwrap_or(received_at);
                order.push((time, lines.len() as u32));
                lines.push(line.clone());
            });
            if !order.is_sorted_by_key(|&(time, _)| time) {
                radsort::sort_by_key(&mut order, |&(time, _)| time);
            }
            order.iter().for_each(|&(_, i)| add(&lines[i as usize]));
            if let Some(e) = failed {
                w.writer = Err(e);
            }
            // Windows that late requests reopened stay open, merging the next late requests,
            // while half of `max_series` has room: a log out of time order then writes a
            // correction row per window and series, not one per late request and chunk.
            let reopened = w.windows.counters().late > late_before;
            if !reopened || w.windows.open_series() >= window_config.max_series / 2 {
                let rows = w.windows.close_due();
                hand_over(w, rows);
            }
        },
        |n| bar.inc(n),
    );
    bar.finish_and_clear();
    // An input that could not be opened stops the import before anything is published; one
    // damaged part way is reported after the lines read before the damage are written.
    if let Err(e @ ReadError::Open { .. }) = read {
        return Err(e.into());
    }

    let mut lines = 0;
    let mut rejects: BTreeMap<RejectReason, u64> = BTreeMap::new();
    let mut writers = Vec::with_capacity(workers.len());
    let mut late = 0u64;
    for mut w in workers {
        let rows = w.windows.flush();
        hand_over(&mut w, rows);
        late += w.windows.counters().late;
        lines += w.lines;
        for (r, n) in w.rejects {
            *rejects.entry(r).or_default() += n;
        }
        writers.push(w.writer);
    }
    // Each writer still holds its last row groups: encode and publish them on all cores, the
    // windows table beside them.
    let _ = window_tx.send(WindowsMsg::Finish);
    let finished: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|w| s.spawn(|| w.and_then(SpoolWriter::finish)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("spool writer thread panicked"))
            .collect()
    });
    let window_files = windows_thread
        .join()
        .expect("windows writer thread panicked")
        .expect("the windows writer was told to finish");
    let mut total = SpoolStats::default();
    for stats in finished {
        let stats = stats.with_context(|| format!("writing the spool in {}", args.spool.display()))?;
        total.merge(stats);
    }
    let window_files =
        window_files.with_context(|| format!("writing the windows table in {}", args.spool.display()))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "weir: imported {lines} lines in {secs:.2}s ({:.0} lines/s) into {}",
        lines as f64 / secs.max(1e-9),
        args.spool.display()
    );
    for table in Table::ALL {
        eprintln!("  {:<9} {:>12} rows", table.name(), total.rows(table));
    }
    for (reason, n) in &rejects {
        eprintln!("    rejected {n} ({reason})");
    }
    eprintln!(
        "  {:<9} {:>12} rows ({} s windows, {late} requests after their window closed)",
        "windows",
        window_files.iter().map(|f| f.rows).sum::<u64>(),
        args.window.as_secs()
    );
    eprintln!(
        "  {} files, {} bytes",
        total.files.len() + window_files.len(),
        total.bytes() + window_files.iter().map(|f| f.bytes).sum::<u64>()
    );
    let stored = total.line_rows();
    anyhow::ensure!(stored == lines, "read {lines} lines but stored {stored} rows");
    read.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use weir_model::{HttpLog, Timings};

    use super::*;

    const S: Micros = 1_000_000;

    fn config() -> WindowConfig {
        WindowConfig {
            node: "n1".into(),
            ..WindowConfig::default()
        }
    }

    /// The rows a worker closes for requests (accept date, server, total time).
    fn closed(requests: &[(Micros, &str, i32)]) -> Vec<WindowRow> {
        let mut agg = WindowAggregator::new(config()).unwrap();
        for &(ts, server, total) in requests {
            agg.add(&HttpLog {
                accept_ts: ts,
                frontend: "fe",
                backend: "be",
                server,
                status: Some(200),
                timings: Timings {
                    total: Some(total),
                    ..Timings::default()
                },
                ..HttpLog::default()
            });
        }
        agg.flush()
    }

    #[test]
    fn a_window_both_workers_closed_is_written_as_one_row_per_series() {
        let mut h = Held::new(2, config().sigfig).unwrap();
        let a = closed(&[(S, "s1", 10), (2 * S, "s2", 20)]);
        let b = closed(&[(3 * S, "s1", 30), (12 * S, "s1", 5)]);
        assert!(
            h.add(0, a, 10 * S).is_empty(),
            "worker 1 has not closed the window yet"
        );
        let ready = h.add(1, b, 20 * S);
        let whole = closed(&[(S, "s1", 10), (2 * S, "s2", 20), (3 * S, "s1", 30)]);
        assert_eq!(ready, whole, "one row per series of the window both closed");
        // The second window waits for worker 0; at the end, everything held comes out.
        assert_eq!(h.rest(), closed(&[(12 * S, "s1", 5)]));
    }

    #[test]
    fn a_worker_that_saw_no_request_holds_back_no_window() {
        let mut h = Held::new(2, config().sigfig).unwrap();
        assert!(h.add(1, Vec::new(), Micros::MAX).is_empty());
        let rows = closed(&[(S, "s1", 10)]);
        assert_eq!(h.add(0, rows.clone(), 10 * S), rows);
        assert!(h.rest().is_empty());
    }
}
