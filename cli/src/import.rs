//! `weir import`: log files in, Parquet spool out.
//!
//! The inputs are cut into chunks ([`weir_ingest::read::for_each_chunk`]); every worker thread
//! parses its chunks and appends the records to a [`SpoolWriter`] of its own, so parsing and
//! Parquet encoding both use every core and never wait on each other. Each line lands in exactly
//! one table (`requests`, `tcp`, `app`, `rejects`), and the summary printed at the end adds up
//! to the number of lines read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use weir_ingest::read::{for_each_chunk, Chunking};
use weir_ingest::{for_each_line_str, parse_line_as, Expect, ParseOptions};
use weir_model::{Line, Record, RejectReason};
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
    /// The zone HAProxy wrote its accept dates in: UTC or a fixed offset such as +02:00.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    #[command(flatten)]
    formats: inputs::FormatArgs,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// zstd level of the Parquet files.
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
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

/// One worker's state.
struct Worker {
    writer: Result<SpoolWriter, weir_store::StoreError>,
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
    let bar = inputs::progress_bar(&inputs);
    let started = std::time::Instant::now();

    let workers = for_each_chunk(
        &inputs,
        threads,
        Chunking {
            map_files: !args.no_mmap,
            ..Chunking::default()
        },
        |_| Worker {
            writer: SpoolWriter::create(SpoolOptions {
                sequence: seq.clone(),
                zstd_level: args.zstd_level,
                rotate_age: None,
                ..SpoolOptions::new(&args.spool, &node, &run_id)
            }),
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
            let mut add = |line: &Line<'_>| {
                if failed.is_some() {
                    return;
                }
                w.lines += 1;
                if let Record::Reject(r) = &line.record {
                    *w.rejects.entry(r.reason).or_default() += 1;
                }
                if let Err(e) = writer.append(line, &meta) {
                    failed = Some(e);
                }
            };
            match simdutf8::basic::from_utf8(chunk.data()) {
                // One UTF-8 validation per chunk, not one per line.
                Ok(text) => for_each_line_str(text, &opts, expect, add),
                Err(_) => {
                    for raw in chunk.lines() {
                        add(&parse_line_as(raw, &opts, expect));
                    }
                }
            }
            if let Some(e) = failed {
                w.writer = Err(e);
            }
        },
        |n| bar.inc(n),
    )?;
    bar.finish_and_clear();

    let mut lines = 0;
    let mut rejects: BTreeMap<RejectReason, u64> = BTreeMap::new();
    let mut writers = Vec::with_capacity(workers.len());
    for w in workers {
        lines += w.lines;
        for (r, n) in w.rejects {
            *rejects.entry(r).or_default() += n;
        }
        writers.push(w.writer);
    }
    // Each writer still holds its last row groups: encode and publish them on all cores.
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
    let mut total = SpoolStats::default();
    for stats in finished {
        let stats = stats.with_context(|| format!("writing the spool in {}", args.spool.display()))?;
        total.merge(stats);
    }
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
    eprintln!("  {} files, {} bytes", total.files.len(), total.bytes());
    let stored = total.total_rows();
    anyhow::ensure!(stored == lines, "read {lines} lines but stored {stored} rows");
    Ok(())
}
