//! The serve pipeline: [`Batch`]es in, records out to the spool, the router and the counters.
//!
//! Each worker thread has its own queue (a lane of the receivers' [`BatchSink`]; a sender
//! always maps to the same lane, so its lines keep their order), appends each batch to its own
//! write-ahead log stream ([`WalWriter`], one write per batch) before anything counts it, then
//! parses each message (the one path from a batch to rows, [`for_each_line`], which WAL replay
//! takes too), appends it to the worker's own [`SpoolWriter`], add HTTP requests to the worker's own window
//! aggregator (see [`super::windows`]), and publish it to the [`Router`] for live tails. A
//! worker publishes Parquet files as they fill or age (`rotate_age`, checked at least once a
//! second even when no traffic comes), and at shutdown drains the queue and publishes
//! everything it holds before it ends. The receive loops never wait for any of this. The
//! workers' writers share the spool's open files (a partition's rows of every worker fill one
//! file), so a worker's rows may be published by another: after each batch and tick a worker
//! deletes the WAL segments whose rows are all published, whoever published them, and syncs its
//! stream when `fsync_interval` has passed; at a stop it waits for every worker's writer to
//! finish (the last publishes the shared files) before it deletes the rest.
//!
//! A failed disk write (a full disk) goes to the workers' shared [`DiskBreaker`]: while it is
//! open a worker does not append to the WAL (the lines are counted as unlogged) and its spool
//! writer holds rows in memory; every line is still parsed, aggregated and routed. The worker
//! the breaker picks probes the disk (a small file) and writes what the shared files hold; when
//! that works every worker writes the held rows it finds at its next batch or tick.
//!
//! [`BatchSink`]: weir_ingest::listen::BatchSink

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir_aggregate::WindowAggregator;
use weir_ingest::listen::{Batch, QueueBytes};
use weir_ingest::router::{Router, SourceRef};
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{Line, Record, Reject, SyslogHeader};
use weir_store::wal::{WalOptions, WalStats, WalWriter};
use weir_store::{RecordMeta, SpoolOptions, SpoolStats, SpoolWriter, StoreError, Table};

use super::breaker::{Access, DiskBreaker};
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
    /// The write-ahead log's options (each worker writes its own stream, `<stream>.w<i>`), or
    /// `None` with the WAL off.
    pub wal: Option<WalOptions>,
    /// The disk breaker the workers share.
    pub breaker: Arc<DiskBreaker>,
    /// The memory bound of the queues: each batch is released once processed.
    pub queued: Arc<QueueBytes>,
}

/// A spent batch goes back to the receivers only up to this size; a larger one (a burst of
/// long UDP datagrams) is freed, so the pool of spent batches stays small.
const RECYCLE_MAX_BYTES: usize = 256 << 10;

/// What a worker did, when it ends.
#[derive(Debug, Default)]
pub struct WorkerEnd {
    /// Rows and files written.
    pub stats: SpoolStats,
    /// Rows the final flush could not write (a disk still full at the stop): not in the spool;
    /// those that reached the WAL are replayed by the next start.
    pub unwritten: u64,
}

/// Starts one worker thread per lane; spent batches go back through `recycle`.
pub fn start(
    ctx: PipelineContext,
    lanes: Vec<flume::Receiver<Batch>>,
    recycle: flume::Sender<Batch>,
) -> anyhow::Result<Vec<JoinHandle<WorkerEnd>>> {
    let mut handles = Vec::new();
    let latch = Latch::new(lanes.len());
    for (i, rx) in lanes.into_iter().enumerate() {
        let mut writer = SpoolWriter::create(ctx.spool.clone())?;
        let wal = match &ctx.wal {
            Some(opts) => {
                let stream = format!("{}.w{i}", opts.stream);
                writer.set_wal_stream(stream.clone());
                Some(WalWriter::create(WalOptions {
                    stream,
                    ..opts.clone()
                })?)
            }
            None => None,
        };
        let (ctx, recycle) = (ctx.clone(), recycle.clone());
        let windows = ctx.windows.aggregator(i);
        let running = Running(Some(latch.clone()));
        handles.push(
            std::thread::Builder::new()
                .name(format!("weir-pipeline-{i}"))
                .spawn(move || worker(ctx, writer, wal, &windows, rx, recycle, running))?,
        );
    }
    Ok(handles)
}

fn worker(
    ctx: PipelineContext,
    mut writer: SpoolWriter,
    mut wal: Option<WalWriter>,
    windows: &Mutex<WindowAggregator>,
    rx: flume::Receiver<Batch>,
    recycle: flume::Sender<Batch>,
    running: Running,
) -> WorkerEnd {
    let mut published = 0;
    let mut wal_seen = WalStats::default();
    let mut held_seen = 0;
    let mut lost_seen = 0;
    let wal_disk = wal
        .as_ref()
        .map(|w| ctx.metrics.wal_disk_bytes.with_label_values(&[w.stream()]));
    loop {
        // A quiet stream is synced when its fsync_interval is up, not at the next tick.
        let tick = Instant::now() + TICK;
        let wake = wal
            .as_ref()
            .and_then(WalWriter::sync_deadline)
            .map_or(tick, |due| due.min(tick));
        let received = rx.recv_deadline(wake);
        if matches!(received, Err(flume::RecvTimeoutError::Disconnected)) {
            break;
        }
        let now = Instant::now();
        let access = ctx.breaker.access(now);
        let mut failure = None;
        match access {
            Access::Hold => writer.hold(),
            Access::Write => writer.resume(),
            Access::Probe => {
                writer.resume();
                if let Err(e) = probe_disk(&ctx.spool.root) {
                    failure = Some(e);
                    writer.hold();
                }
            }
        }
        if let Ok(batch) = received {
            ctx.metrics.queue_depth.set(rx.len() as i64);
            let position = match wal.as_mut() {
                Some(w) if !writer.is_holding() => match w.append(&batch) {
                    Ok(position) => Some(position),
                    Err(e) => {
                        ctx.metrics.wal_errors.inc();
                        failure.get_or_insert(e);
                        writer.hold();
                        None
                    }
                },
                _ => None,
            };
            if wal.is_some() && position.is_none() {
                ctx.metrics.wal_unlogged_lines.inc_by(batch.len() as u64);
            }
            let mut aggregator = windows.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = process(&ctx, &mut writer, &mut aggregator, &batch, position) {
                failure.get_or_insert(e);
            }
            drop(aggregator);
            ctx.queued.release(&batch);
            ctx.metrics.queue_bytes.set(ctx.queued.held() as i64);
            if batch.weight() <= RECYCLE_MAX_BYTES {
                let _ = recycle.try_send(batch);
            }
        }
        if let Err(e) = writer.write_held() {
            ctx.metrics.spool_errors.inc();
            failure.get_or_insert(e);
        }
        published = account_files(&ctx.metrics, writer.stats(), published);
        if let Some(w) = wal.as_mut() {
            // Deleting published segments frees space, so it goes on while the breaker is open.
            let kept = w
                .sync_due()
                .and_then(|()| w.release(writer.oldest_unpublished_wal_position()));
            if let Err(e) = kept {
                ctx.metrics.wal_errors.inc();
                failure.get_or_insert(e);
            }
            wal_seen = account_wal(&ctx.metrics, w.stats(), wal_seen);
            if let Some(g) = &wal_disk {
                g.set(w.disk_bytes() as i64);
            }
        }
        ctx.breaker.settle(access, failure.as_ref(), now, &ctx.metrics);
        held_seen = account_held(&ctx.metrics, writer.unpublished_rows(), held_seen);
        lost_seen = account_lost(&ctx.metrics, writer.stats().lost_rows, lost_seen);
    }
    account_held(&ctx.metrics, 0, held_seen);
    // A stop tries the disk once more, breaker or not: every partition is tried.
    writer.resume();
    let end = match writer.publish_all() {
        Err(e) => {
            // The WAL's segments stay: the next start replays the lines they hold.
            let left = writer.unpublished_rows();
            ctx.metrics.spool_errors.inc();
            ctx.metrics.dropped(DropStage::SpoolWriteFailed, left);
            account_files(&ctx.metrics, writer.stats(), published);
            account_lost(&ctx.metrics, writer.stats().lost_rows, lost_seen);
            tracing::error!(error = %e, unpublished_rows = left, "flushing the spool at shutdown failed; lines in the WAL are replayed at the next start");
            let end = WorkerEnd {
                stats: writer.stats().clone(),
                unwritten: left,
            };
            drop(writer);
            running.done_and_wait();
            return end;
        }
        Ok(()) => writer.finish(),
    };
    // The files this worker's rows went into may be in another worker's hands at this moment:
    // its WAL segments are released once every worker's writer has finished, the last one
    // publishing every file.
    running.done_and_wait();
    match end {
        Ok(stats) => {
            account_files(&ctx.metrics, &stats, published);
            account_lost(&ctx.metrics, stats.lost_rows, lost_seen);
            if let Some(w) = wal {
                let oldest = ctx.spool.files.oldest_unpublished_wal_position(w.stream());
                match w.finish(oldest) {
                    Ok(s) => {
                        account_wal(&ctx.metrics, s, wal_seen);
                        if let Some(g) = &wal_disk {
                            g.set(0);
                        }
                    }
                    Err(e) => {
                        ctx.metrics.wal_errors.inc();
                        tracing::error!(error = %e, "closing the WAL at shutdown failed");
                    }
                }
            }
            WorkerEnd { stats, unwritten: 0 }
        }
        Err(e) => {
            ctx.metrics.spool_errors.inc();
            tracing::error!(error = %e, "flushing the spool at shutdown failed");
            WorkerEnd::default()
        }
    }
}

/// Counts the pipeline workers whose spool writer has not finished; each worker waits, at its
/// stop, for all of them before it releases its WAL segments.
struct Latch {
    running: Mutex<usize>,
    all_done: std::sync::Condvar,
}

impl Latch {
    fn new(workers: usize) -> Arc<Latch> {
        Arc::new(Latch {
            running: Mutex::new(workers),
            all_done: std::sync::Condvar::new(),
        })
    }

    fn count_down(&self) -> std::sync::MutexGuard<'_, usize> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        *running = running.saturating_sub(1);
        if *running == 0 {
            self.all_done.notify_all();
        }
        running
    }
}

/// One worker's place in the [`Latch`]; a worker that ends without
/// [`Running::done_and_wait`] (a panic) counts down when this is dropped.
struct Running(Option<Arc<Latch>>);

impl Running {
    /// This worker's writer has finished (or was dropped); waits for the others.
    fn done_and_wait(mut self) {
        if let Some(latch) = self.0.take() {
            let mut running = latch.count_down();
            while *running > 0 {
                running = latch.all_done.wait(running).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(latch) = self.0.take() {
            drop(latch.count_down());
        }
    }
}

/// Bytes the probe of an open breaker writes: a disk with less room than this free is not
/// worth resuming on.
const PROBE_BYTES: usize = 64 * 1024;

/// Writes, syncs and removes a small hidden file in the spool: whether the disk takes writes.
fn probe_disk(root: &std::path::Path) -> Result<(), StoreError> {
    use std::io::Write;
    // One name per worker thread (`.weir-pipeline-0.probe`): probes never share a file.
    let name = std::thread::current().name().unwrap_or("weir").to_owned();
    let path = root.join(format!(".{name}.probe"));
    let written = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0; PROBE_BYTES])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    written.map_err(|source| StoreError::Io {
        op: "probe",
        path,
        source,
    })
}

/// Moves the held-rows gauge by this worker's change; returns the new value.
fn account_held(metrics: &Metrics, now: u64, seen: u64) -> u64 {
    metrics.spool_held_rows.add(now as i64 - seen as i64);
    now
}

/// Counts the rows the writer gave up on since `seen`; returns the new total.
fn account_lost(metrics: &Metrics, now: u64, seen: u64) -> u64 {
    if now > seen {
        metrics.dropped(DropStage::SpoolWriteFailed, now - seen);
    }
    now
}

/// Adds the files published since `seen` to the counters; returns the new count.
fn account_files(metrics: &Metrics, stats: &SpoolStats, seen: usize) -> usize {
    for f in stats.files.iter().skip(seen) {
        metrics.spool_files.inc();
        metrics.spool_bytes.inc_by(f.bytes);
    }
    stats.files.len()
}

/// Adds what a WAL stream did since `seen` to the counters, logging shed segments; returns
/// the new totals.
fn account_wal(metrics: &Metrics, now: WalStats, seen: WalStats) -> WalStats {
    metrics.wal_bytes.inc_by(now.bytes - seen.bytes);
    metrics.wal_syncs.inc_by(now.syncs - seen.syncs);
    metrics.wal_released.inc_by(now.released - seen.released);
    if now.shed_segments > seen.shed_segments {
        let lines = now.shed_lines - seen.shed_lines;
        metrics.wal_shed_lines.inc_by(lines);
        tracing::warn!(
            segments = now.shed_segments - seen.shed_segments,
            lines,
            bytes = now.shed_bytes - seen.shed_bytes,
            "WAL over store.wal_max_bytes: the oldest unpublished segments were deleted; their lines are spooled but would not survive a crash"
        );
    }
    now
}

/// Parses every message of a batch and hands each line, with its index in the batch and what
/// the spool records beside it, to `each`: the one path from received bytes to spool rows, taken
/// live and by WAL replay, so that a replayed line becomes the row it would have been.
pub fn for_each_line(
    parse: &ParseOptions,
    batch: &Batch,
    mut each: impl FnMut(usize, &Line<'_>, &RecordMeta<'_>),
) {
    let mut peer_text = String::new();
    // Lines arrive within moments of being written: the receive time settles a wall-clock time
    // that the zone repeats (the autumn hour) when the line's header does not.
    let opts = ParseOptions {
        near: Some(batch.received_at),
        ..*parse
    };
    for (i, entry) in batch.entries.iter().enumerate() {
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
        peer_text.clear();
        if line.record.table() == Table::Rejects {
            use std::fmt::Write;
            let _ = write!(peer_text, "{}", entry.peer);
        }
        let meta = RecordMeta {
            received_at: Some(batch.received_at),
            peer: (!peer_text.is_empty()).then_some(peer_text.as_str()),
        };
        each(i, &line, &meta);
    }
}

/// Parses, stores, aggregates, routes and counts every message of a batch; `wal_position` is
/// the WAL position of its first line, when it was logged. Returns the first spool error: the
/// writer then holds the rows in memory (none is lost), and the caller tells the breaker.
pub fn process(
    ctx: &PipelineContext,
    writer: &mut SpoolWriter,
    windows: &mut WindowAggregator,
    batch: &Batch,
    wal_position: Option<u64>,
) -> Option<StoreError> {
    // Counted per batch, not per line: one atomic add per table and reason a batch.
    let mut parsed = [0u64; Table::ALL.len()];
    let mut rejects: Vec<(weir_model::RejectReason, u64)> = Vec::new();
    let mut failure = None;
    if wal_position.is_none() {
        writer.clear_wal_position();
    }
    for_each_line(&ctx.parse, batch, |i, line, meta| {
        let table = line.record.table();
        match &line.record {
            Record::Http(h) => windows.add(h),
            Record::App(weir_model::AppLog {
                router: Some(r),
                ts: Some(ts),
                ..
            }) => windows.add_router(*ts, r),
            Record::Reject(r) => match rejects.iter_mut().find(|(reason, _)| *reason == r.reason) {
                Some((_, n)) => *n += 1,
                None => rejects.push((r.reason, 1)),
            },
            _ => {}
        }
        parsed[table.index()] += 1;
        if let Some(first) = wal_position {
            writer.set_wal_position(first + i as u64);
        }
        // A failed append keeps the row (held) and leaves the writer holding.
        if let Err(e) = writer.append(line, meta) {
            ctx.metrics.spool_errors.inc();
            failure.get_or_insert(e);
        }
        ctx.router
            .publish_line(SourceRef::from_header(&line.header), line, batch.received_at);
    });
    for table in Table::ALL {
        let p = parsed[table.index()];
        if p > 0 {
            ctx.metrics.spooled(table, p);
        }
        if p > 0 && table != Table::Rejects {
            ctx.metrics.parsed(table, None, p);
        }
    }
    for (reason, n) in rejects {
        ctx.metrics.parsed(Table::Rejects, Some(reason), n);
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_writes_and_leaves_nothing_behind_or_fails_on_a_missing_spool() {
        let dir = tempfile::tempdir().unwrap();
        probe_disk(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let err = probe_disk(&dir.path().join("gone")).unwrap_err();
        assert!(matches!(err, StoreError::Io { op: "probe", .. }), "{err}");
    }
}
