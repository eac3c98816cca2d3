//! Crash recovery at start, before any receiver runs: a compaction that was interrupted is
//! finished (`weir_store::compact::finish_pending`), the temporaries a killed run left are
//! swept, then the WAL segments it left are replayed through [`for_each_line`], the path live
//! lines take, into Parquet, published, and deleted.
//!
//! Each stream (one pipeline worker of one start) is replayed, on a thread per core, by a spool
//! writer of its own that names the stream in every file it publishes, so a line whose position
//! is in a range that a published file of its partition already holds (published before the
//! crash, or by a replay that was itself killed) is skipped: every line ends up in the spool
//! once. The replay writers share their open files (a partition's lines of every stream fill
//! one file), so a stream's rows are all published only when the last of them finishes: the
//! segments are deleted after that, all together.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weir_ingest::ParseOptions;
use weir_store::compact;
use weir_store::partition::Partition;
use weir_store::wal::{self, PublishedRanges, SegmentName};
use weir_store::{OpenFiles, SpoolOptions, SpoolWriter, StoreError, Table};

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
    /// Files an interrupted compaction left: inputs already in a compacted file, and
    /// temporaries of one never published; all removed.
    pub compaction_leftovers: usize,
    /// Parquet files published by the replay.
    pub files: usize,
    /// How long it took.
    pub elapsed: Duration,
}

impl Recovered {
    /// Adds what another replay thread did.
    fn add(&mut self, other: &Recovered) {
        self.segments += other.segments;
        self.replayed += other.replayed;
        self.skipped += other.skipped;
        self.torn_frames += other.torn_frames;
        self.torn_bytes += other.torn_bytes;
        self.files += other.files;
    }
}

/// Finishes interrupted compactions and sweeps `node`'s temporaries in the spool, then replays
/// and deletes the node's WAL segments in `wal_dir`, counting on `metrics` and logging every
/// torn segment.
///
/// The spool's compaction lock is held until the published WAL positions are read: a
/// `weir spool compact` at work on a partition is waited for, and none deletes a file while
/// they are read. The replay itself runs unlocked; it only adds files.
pub fn recover(
    parse: &ParseOptions,
    spool: &SpoolOptions,
    wal_dir: &Path,
    metrics: &Metrics,
) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let lock = compact::SpoolLock::exclusive(&spool.root, || {
        println!("weir: waiting for `weir spool compact` to finish its partition")
    })?;
    let leftovers = compact::finish_pending(&spool.root, spool.fsync)?;
    let mut done = Recovered {
        swept: wal::sweep_temporaries(&spool.root, &spool.node)?.len(),
        compaction_leftovers: leftovers.superseded.len() + leftovers.temporaries.len(),
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
    let published = wal::published_ranges(&spool.root, &spool.node, oldest.boot)?;
    drop(lock);
    // The replay writers share open files of their own, which the last of them publishes.
    let spool = &SpoolOptions {
        files: std::sync::Arc::new(OpenFiles::default()),
        ..spool.clone()
    };
    let mut streams: Vec<(String, Vec<SegmentName>)> = Vec::new();
    for seg in segments {
        // A segment whose header is torn holds no frame: read_segment reports it below.
        let stream = wal::read_stream(&seg.path)?.unwrap_or_default();
        match streams.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, segs)) => segs.push(seg),
            None => streams.push((stream, vec![seg])),
        }
    }
    // Streams are independent (each has its own positions and its own replay writer): one
    // thread each, as many at once as there are cores.
    let next = AtomicUsize::new(0);
    let threads = crate::inputs::threads(None).min(streams.len());
    let results: Vec<anyhow::Result<Recovered>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut part = Recovered::default();
                    while let Some((stream, segs)) = streams.get(next.fetch_add(1, Ordering::Relaxed)) {
                        replay_stream(parse, spool, stream, segs, &published, metrics, &mut part)?;
                    }
                    Ok(part)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a WAL replay thread panicked")))
            })
            .collect()
    });
    for part in results {
        done.add(&part?);
    }
    // Every replay writer finished, the last publishing every file: each line of the
    // segments is in a published file.
    for (_, segs) in &streams {
        wal::remove_segments(wal_dir, segs)?;
    }
    done.bytes = bytes;
    done.elapsed = started.elapsed();
    Ok(done)
}

/// Replays one stream's segments, oldest first, with a writer of its own, and hands everything
/// it wrote to the shared files (published by the last writer to finish).
fn replay_stream(
    parse: &ParseOptions,
    spool: &SpoolOptions,
    stream: &str,
    segments: &[SegmentName],
    published: &PublishedRanges,
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
        for (first, batch) in &contents.batches {
            for_each_line(parse, batch, |i, line, meta| {
                let position = first + i as u64;
                let table = line.record.table();
                let time = line
                    .record
                    .event_time(meta.received_at)
                    .unwrap_or(batch.received_at);
                let hour = Partition::of(time).dir();
                // A line's own row and its metrics rows are in two partitions, each published
                // on its own: each is skipped only where a published file already holds it.
                let published_in = |t: Table| {
                    let dir = spool.root.join(t.name()).join(&hour);
                    published.contains(stream, &dir, position)
                };
                let line_done = published_in(table);
                let metrics_done = published_in(Table::Metrics);
                writer.set_wal_position(position);
                if line_done {
                    done.skipped += 1;
                    metrics.wal_replay_skipped.inc();
                } else {
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
                }
                if !metrics_done {
                    match writer.append_metrics(line, meta, &weir_ingest::l2met::LineMetrics::of_line(line)) {
                        Ok(n) => metrics.spooled(Table::Metrics, u64::from(n)),
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use weir_ingest::listen::{Batch, EntryKind};
    use weir_store::wal::{WalOptions, WalWriter};
    use weir_store::Table;

    /// Real HAProxy lines (HTTP, TCP, events), as they came over UDP.
    const SAMPLE: &str = include_str!("../../../samples/haproxy/haproxy-2.6-udp.log");

    fn wal_writer(spool: &Path, stream: &str, sequence: &Arc<AtomicU64>) -> WalWriter {
        WalWriter::create(WalOptions {
            dir: spool.join("wal"),
            node: "n1".into(),
            boot: "b1".into(),
            stream: stream.into(),
            sequence: sequence.clone(),
            segment_bytes: 1 << 20,
            fsync_interval: Duration::from_secs(1),
            max_bytes: 1 << 30,
        })
        .unwrap()
    }

    /// One batch of `lines`, the `i`-th of its stream.
    fn batch(i: usize, lines: &[&str]) -> Batch {
        let mut batch = Batch {
            received_at: 1_795_000_000_000_000 + i as i64,
            ..Batch::default()
        };
        let peer = "10.1.2.3:514".parse().unwrap();
        for line in lines {
            batch.push(line.as_bytes(), peer, EntryKind::Message);
        }
        batch
    }

    /// Replays the WAL of the spool at `spool` as start `b2` would.
    fn replay(spool: &Path, metrics: &Metrics) -> Recovered {
        let parse = crate::inputs::parse_options("UTC").unwrap();
        let opts = SpoolOptions {
            fsync: false,
            ..SpoolOptions::new(spool, "n1", "b2")
        };
        recover(&parse, &opts, &spool.join("wal"), metrics).unwrap()
    }

    fn spool_rows(spool: &Path) -> u64 {
        Table::ALL
            .iter()
            .flat_map(|&t| weir_store::read_table(spool, t).unwrap())
            .map(|b| b.num_rows() as u64)
            .sum()
    }

    #[test]
    fn the_streams_of_every_worker_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let sequence = Arc::new(AtomicU64::new(0));
        let mut workers = [
            wal_writer(&spool, "b1.w0", &sequence),
            wal_writer(&spool, "b1.w1", &sequence),
        ];
        let lines: Vec<&str> = SAMPLE.lines().collect();
        for (i, chunk) in lines.chunks(5).enumerate() {
            workers[i % 2].append(&batch(i, chunk)).unwrap();
        }
        drop(workers);
        let got = replay(&spool, &Metrics::new());
        assert_eq!(
            (got.segments, got.replayed, got.skipped),
            (2, lines.len() as u64, 0)
        );
        assert_eq!(spool_rows(&spool), lines.len() as u64);
        assert!(wal::list_segments(&spool.join("wal"), "n1").unwrap().is_empty());
    }

    /// Two workers' writers fill the same partitions' files between them; some files are
    /// published (by rotation, with rows of both streams), the rest are lost in a crash. The
    /// replay skips exactly the lines of the published files and writes every other one.
    #[test]
    fn a_crash_after_shared_files_were_published_replays_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let sequence = Arc::new(AtomicU64::new(0));
        let parse = crate::inputs::parse_options("UTC").unwrap();
        let opts = SpoolOptions {
            fsync: false,
            row_group_rows: 3,
            rotate_rows: 7,
            ..SpoolOptions::new(&spool, "n1", "b1")
        };
        let mut workers: Vec<(WalWriter, SpoolWriter)> = ["b1.w0", "b1.w1"]
            .into_iter()
            .map(|stream| {
                let mut w = SpoolWriter::create(opts.clone()).unwrap();
                w.set_wal_stream(stream);
                (wal_writer(&spool, stream, &sequence), w)
            })
            .collect();
        let lines: Vec<&str> = SAMPLE.lines().collect();
        for (i, chunk) in lines.chunks(2).enumerate() {
            let (wal, writer) = &mut workers[i % 2];
            let batch = batch(i, chunk);
            let first = wal.append(&batch).unwrap();
            for_each_line(&parse, &batch, |j, line, meta| {
                writer.set_wal_position(first + j as u64);
                writer.append(line, meta).unwrap();
            });
        }
        let published: u64 = workers
            .iter()
            .flat_map(|(_, w)| &w.stats().files)
            .map(|f| f.rows)
            .sum();
        assert!(published > 0, "some files were published before the crash");
        assert!(published < lines.len() as u64, "and some rows were not");
        let streams_of = |path: &Path| {
            let reader =
                parquet::file::reader::SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
            let meta = parquet::file::reader::FileReader::metadata(&reader);
            meta.file_metadata()
                .key_value_metadata()
                .into_iter()
                .flatten()
                .filter(|kv| kv.key.starts_with(wal::META_RANGES_PREFIX))
                .count()
        };
        assert!(
            workers
                .iter()
                .flat_map(|(_, w)| &w.stats().files)
                .any(|f| streams_of(&f.path) == 2),
            "a published file holds rows of both streams"
        );
        // The crash: nothing more is published, the temporaries go.
        drop(workers);
        let got = replay(&spool, &Metrics::new());
        assert_eq!(got.skipped, published);
        assert_eq!(got.replayed + got.skipped, lines.len() as u64);
        assert_eq!(spool_rows(&spool), lines.len() as u64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// A WAL cut at any offset (a crash mid-write): the replay writes every line of the
        /// frames before the cut to the spool and no other, counts the torn frame and the bytes
        /// after it, and deletes the segment.
        #[test]
        fn a_wal_cut_anywhere_replays_every_whole_frame_and_counts_the_tear(
            per_batch in 1usize..12,
            cut in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let spool = dir.path().join("spool");
            let stream = "b1.w0";
            let mut wal = wal_writer(&spool, stream, &Arc::new(AtomicU64::new(0)));
            let lines: Vec<&str> = SAMPLE.lines().collect();
            // (segment bytes, lines) after each frame.
            let mut ends = Vec::new();
            for (i, chunk) in lines.chunks(per_batch).enumerate() {
                wal.append(&batch(i, chunk)).unwrap();
                let before = ends.last().map_or(0, |&(_, n)| n);
                ends.push((wal.disk_bytes(), before + chunk.len() as u64));
            }
            drop(wal);
            let segment = wal::list_segments(&spool.join("wal"), "n1").unwrap()[0].path.clone();
            let len = std::fs::metadata(&segment).unwrap().len();
            let cut = cut.index(len as usize + 1) as u64;
            std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(cut).unwrap();

            let metrics = Metrics::new();
            let got = replay(&spool, &metrics);

            let header = (8 + 2 + stream.len()) as u64;
            let (recovered, want_lines) = ends
                .iter()
                .rev()
                .find(|&&(end, _)| end <= cut)
                .copied()
                // No whole frame: a whole header is no loss, part of one is.
                .unwrap_or((if cut >= header { header } else { 0 }, 0));
            prop_assert_eq!(got.replayed, want_lines);
            prop_assert_eq!(spool_rows(&spool), want_lines);
            let torn = u64::from(cut > recovered);
            prop_assert_eq!((got.torn_frames, metrics.wal_torn_frames.get()), (torn, torn));
            prop_assert_eq!(metrics.wal_torn_bytes.get(), cut - recovered);
            prop_assert!(wal::list_segments(&spool.join("wal"), "n1").unwrap().is_empty());
        }
    }
}
