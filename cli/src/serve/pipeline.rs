//! The serve pipeline: [`Batch`]es in, records out to the spool, the router and the counters.
//!
//! Each worker thread has its own queue (a lane of the receivers' [`BatchSink`]; a sender
//! always maps to the same lane, so its lines keep their order), parses each message,
//! append it to the worker's own [`SpoolWriter`], add HTTP requests to the worker's own window
//! aggregator (see [`super::windows`]), and publish it to the [`Router`] for live tails. A
//! worker publishes Parquet files as they fill or age (`rotate_age`, checked at least once a
//! second even when no traffic comes), and at shutdown drains the queue and publishes
//! everything it holds before it ends. The receive loops never wait for any of this.
//!
//! [`BatchSink`]: weir_ingest::listen::BatchSink

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use weir_aggregate::WindowAggregator;
use weir_ingest::listen::Batch;
use weir_ingest::router::{Router, SourceRef};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{Line, Record, Reject, SyslogHeader};
use weir_store::{RecordMeta, SpoolOptions, SpoolStats, SpoolWriter, Table};

use super::metrics::{DropStage, Metrics};
use super::windows::LiveWindows;

/// How often an idle worker publishes aged files.
const TICK: Duration = Duration::from_secs(1);

/// Everything a worker needs.
#[derive(Clone)]
pub struct PipelineContext {
    /// Parse options (zone, year).
    pub parse: ParseOptions,
    /// Where tails read from.
    pub router: Arc<Router>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The spool writers' options (each worker gets its own writer).
    pub spool: SpoolOptions,
    /// The live windows (each worker aggregates into its own).
    pub windows: Arc<LiveWindows>,
}

/// Starts one worker thread per lane; spent batches go back through `recycle`.
pub fn start(
    ctx: PipelineContext,
    lanes: Vec<flume::Receiver<Batch>>,
    recycle: flume::Sender<Batch>,
) -> anyhow::Result<Vec<JoinHandle<SpoolStats>>> {
    let mut handles = Vec::new();
    for (i, rx) in lanes.into_iter().enumerate() {
        let writer = SpoolWriter::create(ctx.spool.clone())?;
        let (ctx, recycle) = (ctx.clone(), recycle.clone());
        let windows = ctx.windows.aggregator(i);
        handles.push(
            std::thread::Builder::new()
                .name(format!("weir-pipeline-{i}"))
                .spawn(move || worker(ctx, writer, &windows, rx, recycle))?,
        );
    }
    Ok(handles)
}

fn worker(
    ctx: PipelineContext,
    mut writer: SpoolWriter,
    windows: &Mutex<WindowAggregator>,
    rx: flume::Receiver<Batch>,
    recycle: flume::Sender<Batch>,
) -> SpoolStats {
    let mut published = 0;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(batch) => {
                ctx.metrics.queue_depth.set(rx.len() as i64);
                let mut aggregator = windows.lock().unwrap_or_else(|p| p.into_inner());
                process(&ctx, &mut writer, &mut aggregator, &batch);
                drop(aggregator);
                let _ = recycle.try_send(batch);
            }
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => break,
        }
        if let Err(e) = writer.rotate_aged() {
            ctx.metrics.spool_errors.inc();
            tracing::error!(error = %e, "publishing aged spool files failed");
        }
        published = account_files(&ctx.metrics, writer.stats(), published);
    }
    match writer.finish() {
        Ok(stats) => {
            account_files(&ctx.metrics, &stats, published);
            stats
        }
        Err(e) => {
            ctx.metrics.spool_errors.inc();
            tracing::error!(error = %e, "flushing the spool at shutdown failed");
            SpoolStats::default()
        }
    }
}

/// Adds the files published since `seen` to the counters; returns the new count.
fn account_files(metrics: &Metrics, stats: &SpoolStats, seen: usize) -> usize {
    for f in stats.files.iter().skip(seen) {
        metrics.spool_files.inc();
        metrics.spool_bytes.inc_by(f.bytes);
    }
    stats.files.len()
}

/// Parses, stores, aggregates, routes and counts every message of a batch.
pub fn process(
    ctx: &PipelineContext,
    writer: &mut SpoolWriter,
    windows: &mut WindowAggregator,
    batch: &Batch,
) {
    let mut peer_text = String::new();
    // Counted per batch, not per line: one atomic add per table and reason a batch.
    let mut parsed = [0u64; Table::ALL.len()];
    let mut spooled = [0u64; Table::ALL.len()];
    let mut rejects: Vec<(weir_model::RejectReason, u64)> = Vec::new();
    let mut failed = 0u64;
    // Lines arrive within moments of being written: the receive time settles a wall-clock time
    // that the zone repeats (the autumn hour) when the line's header does not.
    let opts = ParseOptions {
        near: Some(batch.received_at),
        ..ctx.parse
    };
    for entry in &batch.entries {
        let bytes = batch.bytes(entry);
        let line = match entry.kind.reject_reason() {
            None => parse_line(bytes, &opts),
            Some(reason) => Line {
                header: SyslogHeader::default(),
                record: Record::Reject(Reject {
                    reason,
                    message: bytes,
                }),
                raw: bytes,
            },
        };
        let table = line.record.table();
        match &line.record {
            Record::Http(h) => windows.add(h),
            Record::Reject(r) => match rejects.iter_mut().find(|(reason, _)| *reason == r.reason) {
                Some((_, n)) => *n += 1,
                None => rejects.push((r.reason, 1)),
            },
            _ => {}
        }
        parsed[table.index()] += 1;
        peer_text.clear();
        if table == Table::Rejects {
            use std::fmt::Write;
            let _ = write!(peer_text, "{}", entry.peer);
        }
        let meta = RecordMeta {
            received_at: Some(batch.received_at),
            peer: (!peer_text.is_empty()).then_some(peer_text.as_str()),
        };
        match writer.append(&line, &meta) {
            Ok(()) => spooled[table.index()] += 1,
            Err(e) => {
                failed += 1;
                tracing::error!(error = %e, "spool append failed");
            }
        }
        ctx.router
            .publish_line(SourceRef::from_header(&line.header), &line, batch.received_at);
    }
    for table in Table::ALL {
        let (p, s) = (parsed[table.index()], spooled[table.index()]);
        if s > 0 {
            ctx.metrics.spooled(table, s);
        }
        if p > 0 && table != Table::Rejects {
            ctx.metrics.parsed(table, None, p);
        }
    }
    for (reason, n) in rejects {
        ctx.metrics.parsed(Table::Rejects, Some(reason), n);
    }
    if failed > 0 {
        ctx.metrics.spool_errors.inc_by(failed);
        ctx.metrics.dropped(DropStage::SpoolWriteFailed, failed);
    }
}
