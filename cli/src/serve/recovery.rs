//! Crash recovery at start, before any receiver runs: the temporaries a killed run left are
//! swept, then the WAL segments it left are replayed through [`for_each_line`], the path live
//! lines take, into Parquet, published, and deleted.
//!
//! Each stream (one pipeline worker of one start) is replayed by a spool writer of its own that
//! names the stream in every file it publishes, so a line whose position is at or below what a
//! published file of its partition already holds (published before the crash, or by a replay
//! that was itself killed) is skipped: every line ends up in the spool once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_ingest::ParseOptions;
use weir_store::partition::Partition;
use weir_store::wal::{self, SegmentName};
use weir_store::{SpoolOptions, SpoolWriter, StoreError};

use super::metrics::Metrics;
use super::pipeline::for_each_line;

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Segments read (and deleted).
    pub segments: usize,
    /// Bytes of those segments.
    pub bytes: u64,
    /// Lines written to the spool.
    pub replayed: u64,
    /// Lines a published file already held.
    pub skipped: u64,
    /// Torn or corrupt frames, one at most per segment.
    pub torn_frames: u64,
    /// Bytes after them, not recovered.
    pub torn_bytes: u64,
    /// Temporaries swept.
    pub swept: usize,
    /// Parquet files published by the replay.
    pub files: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Sweeps `node`'s temporaries in the spool, then replays and deletes the node's WAL segments
/// in `wal_dir`, counting on `metrics` and logging every torn segment.
pub fn recover(
    parse: &ParseOptions,
    spool: &SpoolOptions,
    wal_dir: &Path,
    metrics: &Metrics,
) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let mut done = Recovered {
        swept: wal::sweep_temporaries(&spool.root, &spool.node)?.len(),
        ..Recovered::default()
    };
    let segments = wal::list_segments(wal_dir, &spool.node)?;
    let Some(oldest) = segments.first() else {
        done.elapsed = started.elapsed();
        return Ok(done);
    };
    let bytes: u64 = segments
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "weir: WAL: replaying {} segments ({bytes} bytes) left by an unclean stop",
        segments.len()
    );
    let published = wal::published_positions(&spool.root, &spool.node, oldest.boot)?;
    let mut streams: Vec<(String, Vec<SegmentName>)> = Vec::new();
    for seg in segments {
        // A segment whose header is torn holds no frame: read_segment reports it below.
        let stream = wal::read_stream(&seg.path)?.unwrap_or_default();
        match streams.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, segs)) => segs.push(seg),
            None => streams.push((stream, vec![seg])),
        }
    }
    for (stream, segs) in streams {
        replay_stream(parse, spool, &stream, &segs, &published, metrics, &mut done)?;
        wal::remove_segments(wal_dir, &segs)?;
    }
    done.bytes = bytes;
    done.elapsed = started.elapsed();
    Ok(done)
}

/// Replays one stream's segments, oldest first, with a writer of its own, and publishes
/// everything it wrote.
fn replay_stream(
    parse: &ParseOptions,
    spool: &SpoolOptions,
    stream: &str,
    segments: &[SegmentName],
    published: &HashMap<(String, PathBuf), u64>,
    metrics: &Metrics,
    done: &mut Recovered,
) -> anyhow::Result<()> {
    let mut writer = SpoolWriter::create(spool.clone())?;
    writer.set_wal_stream(stream);
    let mut failed: Option<StoreError> = None;
    for seg in segments {
        done.segments += 1;
        let contents = wal::read_segment(&seg.path, seg.seq)?;
        if let Some(torn) = contents.torn {
            done.torn_frames += 1;
            done.torn_bytes += torn.bytes;
            metrics.wal_torn_frames.inc();
            metrics.wal_torn_bytes.inc_by(torn.bytes);
            tracing::warn!(
                segment = %seg.path.display(),
                offset = torn.offset,
                bytes_lost = torn.bytes,
                frames_recovered = contents.batches.len(),
                "WAL segment ends in a torn or corrupt frame; everything before it is recovered"
            );
        }
        let mut key = (stream.to_owned(), PathBuf::new());
        for (first, batch) in &contents.batches {
            for_each_line(parse, batch, |i, line, meta| {
                let position = first + i as u64;
                let table = line.record.table();
                let time = line
                    .record
                    .event_time(meta.received_at)
                    .unwrap_or(batch.received_at);
                key.1 = spool.root.join(table.name()).join(Partition::of(time).dir());
                if published.get(&key).is_some_and(|&p| p >= position) {
                    done.skipped += 1;
                    metrics.wal_replay_skipped.inc();
                    return;
                }
                writer.set_wal_position(position);
                match writer.append(line, meta) {
                    Ok(()) => {
                        done.replayed += 1;
                        metrics.wal_replayed.inc();
                        metrics.spooled(table, 1);
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            });
            if let Some(e) = failed.take() {
                // The segments stay for the next start to try again.
                return Err(anyhow::Error::new(e).context("replaying the WAL into the spool"));
            }
        }
    }
    let stats = writer.finish()?;
    done.files += stats.files.len();
    for f in &stats.files {
        metrics.spool_files.inc();
        metrics.spool_bytes.inc_by(f.bytes);
    }
    Ok(())
}
