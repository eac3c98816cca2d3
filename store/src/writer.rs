//! [`SpoolWriter`]: parsed lines in, published Parquet files out.
//!
//! Each appended [`Line`] lands in the Arrow builders of its table and hour partition
//! (`date=YYYY-MM-DD/hour=HH` of the event time; rows without one use `received_at`, else the
//! writer's clock). A partition's builders become one sorted row group when they hold
//! `row_group_rows` rows, or earlier when the writer's buffered bytes pass
//! `max_buffered_bytes` (the largest partition goes first). Row groups go into that partition's
//! open file, which is published when it passes `rotate_rows` / `rotate_bytes`, when it is older
//! than `rotate_age`, when more than `max_open_partitions` partitions are open (the least recently
//! used goes), and at [`SpoolWriter::finish`].
//!
//! Rows are sorted by time within each row group (a stable sort, so equal times keep their
//! arrival order), and each file records this in its `sorting_columns`. A log is written in the
//! order requests end, not the order they were accepted, so nearly every row group needs the
//! gather; it costs about a tenth of the writer's time on HAProxy logs, and buys tight page
//! statistics on `ts` (time-range pruning) and a smaller delta-coded `ts`. Sorting a file across
//! row groups would need the whole file in memory, which the memory bound rules out.
//!
//! The Parquet side (encodings, statistics) is chosen per column type in `writer_properties`,
//! for write cost as much as for size: the writer runs on every core next to the parser.
//!
//! Several writers may share one spool (one per import worker): they must share the
//! [`SpoolOptions::sequence`] counter, or use distinct `node`/`boot` names, so that file names
//! `<node>-<boot>-<seq>.parquet` never collide.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::builder::BooleanBufferBuilder;
use arrow_array::{
    Array, ArrayRef, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::DataType;
use arrow_select::take::take;
use parquet::arrow::ArrowSchemaConverter;
use parquet::basic::{Compression, Encoding, Type as PhysicalType, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use weir_ingest::l2met::LineMetrics;
use weir_model::{Line, Micros, Record};

use crate::error::StoreError;
use crate::file::{ensure_dir, sync_dir, OpenFile, PublishedFile};
use crate::partition::Partition;
use crate::rows::TableRows;
use crate::schema::{Table, TableSchema, SPOOL_FORMAT_VERSION};

/// Where and how a [`SpoolWriter`] writes. [`SpoolOptions::new`] gives DESIGN's defaults.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// The spool root folder; created when missing.
    pub root: PathBuf,
    /// The node id, first part of every file name.
    pub node: String,
    /// Distinguishes runs of the same node (a restart count for `serve`, a unique run id for
    /// `import`): second part of every file name.
    pub boot: String,
    /// The file sequence number, third part of every file name. Writers that share `node` and
    /// `boot` must share this counter.
    pub sequence: Arc<AtomicU64>,
    /// zstd level of every column (1..=22; DESIGN's default 3).
    pub zstd_level: i32,
    /// Rows per row group (and per sort): 128 Ki by default.
    pub row_group_rows: usize,
    /// A file is published once it holds this many rows.
    pub rotate_rows: u64,
    /// A file is published once it holds this many bytes (128 MiB by default).
    pub rotate_bytes: u64,
    /// A partition's rows are published at most this long after the first of them arrived
    /// (5 minutes by default; `None` for never, as `import` wants).
    pub rotate_age: Option<Duration>,
    /// Bound on the bytes held in Arrow builders across all partitions of this writer.
    pub max_buffered_bytes: usize,
    /// Bound on partitions with buffered rows or an open file; past it the least recently used
    /// is published.
    pub max_open_partitions: usize,
    /// fsync files and folders on publish (on by default; tests may turn it off).
    pub fsync: bool,
    /// Keep a copy of each row group in memory until its file is published, up to this many
    /// bytes (weighed as in `max_buffered_bytes`) across the writer's partitions, so that a file that
    /// fails (a full disk) is written again from memory instead of losing its rows. Past the
    /// bound a healthy writer publishes its largest partition early; a holding one drops its
    /// oldest rows, counted in [`SpoolStats::lost_rows`]. `None` (the default, as `import`
    /// wants: it stops at the first error) keeps only the row groups not yet written.
    pub retry_bytes: Option<usize>,
}

impl SpoolOptions {
    /// Defaults for a spool at `root`, files named `<node>-<boot>-<seq>.parquet`.
    pub fn new(root: impl Into<PathBuf>, node: impl Into<String>, boot: impl Into<String>) -> Self {
        SpoolOptions {
            root: root.into(),
            node: node.into(),
            boot: boot.into(),
            sequence: Arc::new(AtomicU64::new(0)),
            zstd_level: 3,
            row_group_rows: 128 * 1024,
            rotate_rows: 16 * 1024 * 1024,
            rotate_bytes: 128 * 1024 * 1024,
            rotate_age: Some(Duration::from_secs(300)),
            max_buffered_bytes: 128 * 1024 * 1024,
            max_open_partitions: 32,
            fsync: true,
            retry_bytes: None,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        let bad = |name: &'static str, reason: String| Err(StoreError::InvalidOption { name, reason });
        if !name_ok(&self.node) {
            return bad(
                "node",
                format!("{:?}: use letters, digits, '-', '_', '.'", self.node),
            );
        }
        if !name_ok(&self.boot) {
            return bad(
                "boot",
                format!("{:?}: use letters, digits, '-', '_', '.'", self.boot),
            );
        }
        if ZstdLevel::try_new(self.zstd_level).is_err() {
            return bad("zstd_level", format!("{} is not in 1..=22", self.zstd_level));
        }
        if self.row_group_rows == 0
            || self.rotate_rows == 0
            || self.rotate_bytes == 0
            || self.max_open_partitions == 0
        {
            return bad(
                "row_group_rows/rotate_rows/rotate_bytes/max_open_partitions",
                "must be > 0".into(),
            );
        }
        Ok(())
    }
}

/// What the caller knows about a line that the line does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// When weir received the line (`None` for a file import that has no arrival time).
    pub received_at: Option<Micros>,
    /// The sender's address, for network input.
    pub peer: Option<&'a str>,
}

/// What a writer did: rows per table and the files it published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    rows: [u64; Table::ALL.len()],
    /// Every published file, in publishing order.
    pub files: Vec<PublishedFile>,
    /// Rows that will never be published: dropped past [`SpoolOptions::retry_bytes`] while
    /// the writer held, or in a file that failed with no copy of them left in memory.
    pub lost_rows: u64,
}

impl SpoolStats {
    /// Rows appended to `table`.
    pub fn rows(&self, table: Table) -> u64 {
        self.rows[table.index()]
    }

    /// Rows of lines appended: one per line, in the [`Table::LINES`] tables (`metrics` rows
    /// are derived from app lines and left out).
    pub fn line_rows(&self) -> u64 {
        Table::LINES.iter().map(|t| self.rows[t.index()]).sum()
    }

    /// Bytes of the published files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Adds another writer's stats to these (import sums its workers).
    pub fn merge(&mut self, other: SpoolStats) {
        for (a, b) in self.rows.iter_mut().zip(other.rows) {
            *a += b;
        }
        self.files.extend(other.files);
        self.lost_rows += other.lost_rows;
    }
}

/// Builder rows are weighed as their line's length plus this much for fixed-width columns,
/// offsets and validity bits: a cheap, slightly pessimistic estimate of builder memory.
const ROW_OVERHEAD_BYTES: usize = 128;

/// Builder bytes a `metrics` row is weighed at (its line's bytes are weighed once, in `app`).
const METRIC_ROW_BYTES: usize = 96;

/// How often (in appends) `rotate_age` is checked, to keep `Instant::now` off the hot path.
const AGE_CHECK_EVERY: u64 = 4096;

/// The rows of one table and hour not yet published.
#[derive(Debug)]
struct PartitionState {
    rows: TableRows,
    buffered_rows: usize,
    buffered_bytes: usize,
    file: Option<OpenFile>,
    /// When the oldest unpublished row of this partition arrived.
    since: Instant,
    last_append: u64,
    /// WAL positions of the oldest and newest unpublished rows, when the writer is given them.
    wal_first: Option<u64>,
    wal_last: Option<u64>,
    /// Sorted row groups not yet in a published file, oldest first: the first `in_file` are
    /// in the open file (copies kept for a retry), the rest wait to be written.
    held: Vec<(RecordBatch, usize)>,
    held_bytes: usize,
    in_file: usize,
    /// Rows in the open file with no copy in `held`: lost if the file fails.
    file_only_rows: u64,
}

impl PartitionState {
    fn held_rows(&self) -> u64 {
        self.held.iter().map(|(b, _)| b.num_rows() as u64).sum()
    }
}

type Key = (Table, Partition);

/// The open partitions: a short list (at most `max_open_partitions`) searched from the one used
/// last, which is the hit for nearly every line of a log. Cheaper than hashing the key per line.
#[derive(Debug, Default)]
struct Partitions {
    open: Vec<(Key, PartitionState)>,
    last: usize,
}

impl Partitions {
    #[inline]
    fn position(&mut self, key: &Key) -> Option<usize> {
        if self.open.get(self.last).is_some_and(|(k, _)| k == key) {
            return Some(self.last);
        }
        let i = self.open.iter().position(|(k, _)| k == key)?;
        self.last = i;
        Some(i)
    }

    fn contains_key(&mut self, key: &Key) -> bool {
        self.position(key).is_some()
    }

    #[inline]
    fn get_mut(&mut self, key: &Key) -> Option<&mut PartitionState> {
        let i = self.position(key)?;
        Some(&mut self.open[i].1)
    }

    #[inline]
    fn get_or_insert_with(&mut self, key: Key, new: impl FnOnce() -> PartitionState) -> &mut PartitionState {
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                self.open.push((key, new()));
                self.last = self.open.len() - 1;
                self.last
            }
        };
        &mut self.open[i].1
    }

    fn remove(&mut self, key: &Key) -> Option<PartitionState> {
        let i = self.position(key)?;
        self.last = 0;
        Some(self.open.swap_remove(i).1)
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &PartitionState)> {
        self.open.iter().map(|(k, p)| (k, p))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.open.iter().map(|(k, _)| k)
    }

    fn len(&self) -> usize {
        self.open.len()
    }
}

/// Appends parsed lines to the spool's Parquet files. One per thread; see the module docs.
#[derive(Debug)]
pub struct SpoolWriter {
    opts: SpoolOptions,
    props: Vec<WriterProperties>,
    partitions: Partitions,
    buffered_bytes: usize,
    appends: u64,
    stats: SpoolStats,
    wal_stream: Option<String>,
    wal_position: Option<u64>,
    /// Bytes of `held` row groups across partitions.
    held_bytes: usize,
    /// No disk writes: row groups are held in memory (see [`SpoolWriter::hold`]).
    holding: bool,
}

impl SpoolWriter {
    /// Opens (creating when needed) the spool at `opts.root`, checking or writing its `FORMAT`.
    pub fn create(opts: SpoolOptions) -> Result<Self, StoreError> {
        opts.validate()?;
        std::fs::create_dir_all(&opts.root).map_err(StoreError::io("create", &opts.root))?;
        ensure_format(&opts)?;
        let props = Table::ALL
            .iter()
            .map(|&t| writer_properties(t, opts.zstd_level, opts.row_group_rows))
            .collect::<Result<_, _>>()?;
        Ok(SpoolWriter {
            opts,
            props,
            partitions: Partitions::default(),
            buffered_bytes: 0,
            appends: 0,
            stats: SpoolStats::default(),
            wal_stream: None,
            wal_position: None,
            held_bytes: 0,
            holding: false,
        })
    }

    /// Stops writing to disk: row groups are kept in memory (up to
    /// [`SpoolOptions::retry_bytes`]) and nothing is published until [`SpoolWriter::resume`].
    /// A write that fails puts the writer in this state by itself, so that one full disk costs
    /// one error, not one per line.
    pub fn hold(&mut self) {
        self.holding = true;
    }

    /// Lets the writer write again; held row groups go to disk at the next flush, rotation or
    /// [`SpoolWriter::write_held`].
    pub fn resume(&mut self) {
        self.holding = false;
    }

    /// Whether the writer is holding (after [`SpoolWriter::hold`] or a failed write).
    pub fn is_holding(&self) -> bool {
        self.holding
    }

    /// Rows in memory that are in no published file yet: in the builders, or held as row
    /// groups (written into an open file or not).
    pub fn unpublished_rows(&self) -> u64 {
        self.partitions
            .iter()
            .map(|(_, p)| p.held_rows() + p.buffered_rows as u64)
            .sum()
    }

    /// Writes every held row group that is not yet in a file, then publishes what is due for
    /// rotation; a no-op while holding. A server calls this when its disk works again.
    pub fn write_held(&mut self) -> Result<(), StoreError> {
        if self.holding {
            return Ok(());
        }
        let waiting: Vec<Key> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.held.len() > p.in_file)
            .map(|(k, _)| *k)
            .collect();
        for key in waiting {
            self.flush_partition(key)?;
        }
        self.rotate_aged()
    }

    /// Forgets the WAL position: the lines appended next were not logged.
    #[inline]
    pub fn clear_wal_position(&mut self) {
        self.wal_position = None;
    }

    /// Names the write-ahead log stream the lines come from; every file published from now on
    /// records it with the highest position of its rows (see [`crate::wal`]).
    pub fn set_wal_stream(&mut self, stream: impl Into<String>) {
        self.wal_stream = Some(stream.into());
    }

    /// The WAL position of the line appended next (positions must grow along a stream).
    #[inline]
    pub fn set_wal_position(&mut self, position: u64) {
        self.wal_position = Some(position);
    }

    /// The lowest WAL position among the rows not yet published, `None` when every row given a
    /// position is published: the WAL segments before it can go.
    pub fn oldest_unpublished_wal_position(&self) -> Option<u64> {
        self.partitions.iter().filter_map(|(_, p)| p.wal_first).min()
    }

    /// Appends one line to its table. Rows become visible in the spool when their file is
    /// published (rotation or [`SpoolWriter::finish`]).
    pub fn append(&mut self, line: &Line<'_>, meta: &RecordMeta<'_>) -> Result<(), StoreError> {
        let table = line.record.table();
        let time = line
            .record
            .event_time(meta.received_at)
            .unwrap_or_else(now_micros);
        let weight = line.raw.len() + ROW_OVERHEAD_BYTES;
        let h = &line.header;
        self.append_rows((table, Partition::of(time)), weight, |rows| {
            match (rows, &line.record) {
                (TableRows::Requests(b), Record::Http(r)) => b.append(h, r, meta.received_at),
                (TableRows::Tcp(b), Record::Tcp(r)) => b.append(h, r, meta.received_at),
                (TableRows::App(b), Record::App(r)) => b.append(h, r, meta.received_at),
                (TableRows::Rejects(b), Record::Reject(r)) => b.append(h, r, line.raw, time, meta.peer),
                // The key's table was derived from the record just above.
                _ => unreachable!("partition table matches its record"),
            }
            1
        })
    }

    /// Appends the l2met metrics of an app line (`measure#`, `count#`, `sample#`, read once
    /// with [`LineMetrics::of_line`]) to the `metrics` table, a row each, in the line's hour;
    /// returns how many. The line's own row is [`SpoolWriter::append`]'s: a caller that wants
    /// both calls both.
    pub fn append_metrics(
        &mut self,
        line: &Line<'_>,
        meta: &RecordMeta<'_>,
        metrics: &LineMetrics<'_>,
    ) -> Result<u32, StoreError> {
        let found = metrics.scan().metrics;
        if found == 0 {
            return Ok(0);
        }
        let time = line
            .record
            .event_time(meta.received_at)
            .unwrap_or_else(now_micros);
        let h = &line.header;
        let weight = found as usize * METRIC_ROW_BYTES;
        self.append_rows((Table::Metrics, Partition::of(time)), weight, |rows| {
            let TableRows::Metrics(b) = rows else {
                unreachable!("partition table is metrics")
            };
            metrics.for_each(|m| b.append(h, &m, time, meta.received_at));
            found as usize
        })?;
        Ok(found)
    }

    /// Appends the rows `fill` writes (returning how many) to the partition `key`, opening it
    /// when needed, then flushes what the row group and byte bounds call for.
    fn append_rows(
        &mut self,
        key: Key,
        weight: usize,
        fill: impl FnOnce(&mut TableRows) -> usize,
    ) -> Result<(), StoreError> {
        let table = key.0;
        self.appends += 1;
        // The row is kept whatever happens to the partition made room for: a failed write
        // holds rows, it does not drop them.
        let mut first_error = None;
        if !self.partitions.contains_key(&key) {
            first_error = self.make_room().err();
        }
        let appends = self.appends;
        let p = self.partitions.get_or_insert_with(key, || PartitionState {
            rows: TableRows::new(table),
            buffered_rows: 0,
            buffered_bytes: 0,
            file: None,
            since: Instant::now(),
            last_append: appends,
            wal_first: None,
            wal_last: None,
            held: Vec::new(),
            held_bytes: 0,
            in_file: 0,
            file_only_rows: 0,
        });
        if p.buffered_rows == 0 && p.file.is_none() && p.held.is_empty() {
            p.since = Instant::now();
        }
        p.last_append = appends;
        if let Some(position) = self.wal_position {
            p.wal_first.get_or_insert(position);
            p.wal_last = Some(position);
        }
        let rows = fill(&mut p.rows);
        p.buffered_rows += rows;
        p.buffered_bytes += weight;
        let full = p.buffered_rows >= self.opts.row_group_rows;
        self.buffered_bytes += weight;
        self.stats.rows[table.index()] += rows as u64;
        let mut note = |r: Result<(), StoreError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        if full {
            note(self.flush_partition(key));
        }
        while self.buffered_bytes > self.opts.max_buffered_bytes {
            let Some(largest) = self
                .partitions
                .iter()
                .max_by_key(|(_, p)| p.buffered_bytes)
                .map(|(k, _)| *k)
            else {
                break;
            };
            // A failed flush still moves the rows out of the builders, into `held`.
            note(self.flush_partition(largest));
        }
        note(self.trim_held());
        if self.opts.rotate_age.is_some() && self.appends.is_multiple_of(AGE_CHECK_EVERY) {
            note(self.rotate_aged());
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes every partition whose oldest unpublished row is older than `rotate_age`. The
    /// writer checks this every few thousand appends; a server also calls it from a timer so that
    /// a quiet spool still publishes.
    pub fn rotate_aged(&mut self) -> Result<(), StoreError> {
        let Some(age) = self.opts.rotate_age else {
            return Ok(());
        };
        if self.holding {
            return Ok(());
        }
        let now = Instant::now();
        let aged: Vec<Key> = self
            .partitions
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= age)
            .map(|(k, _)| *k)
            .collect();
        for key in aged {
            self.publish_partition(key)?;
        }
        Ok(())
    }

    /// Publishes everything buffered so far, leaving the writer usable (a server calls this
    /// before deleting the WAL segment the rows came from).
    pub fn publish_all(&mut self) -> Result<(), StoreError> {
        let mut keys: Vec<Key> = self.partitions.keys().copied().collect();
        keys.sort_unstable();
        // Every partition is tried, even after one fails: the others may still fit.
        let mut first_error = None;
        for key in keys {
            if let Err(e) = self.publish_partition(key) {
                first_error.get_or_insert(e);
                self.holding = false;
            }
        }
        if first_error.is_some() {
            self.holding = true;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// What was written so far.
    pub fn stats(&self) -> &SpoolStats {
        &self.stats
    }

    /// Publishes everything (a holding writer tries once more) and returns what was written.
    pub fn finish(mut self) -> Result<SpoolStats, StoreError> {
        self.holding = false;
        self.publish_all()?;
        Ok(std::mem::take(&mut self.stats))
    }

    /// Before a new partition opens: publishes the least recently used one when at the bound.
    fn make_room(&mut self) -> Result<(), StoreError> {
        if self.partitions.len() < self.opts.max_open_partitions {
            return Ok(());
        }
        if let Some(lru) = self
            .partitions
            .iter()
            .min_by_key(|(_, p)| p.last_append)
            .map(|(k, _)| *k)
        {
            self.publish_partition(lru)?;
        }
        Ok(())
    }

    /// Turns the partition's buffered rows into one sorted row group, held in memory; unless
    /// the writer is holding, writes the held row groups into the partition's open file and
    /// publishes it if it is due for rotation. A failure abandons the file (its rows stay
    /// held, to be written again) and puts the writer on hold.
    fn flush_partition(&mut self, key: Key) -> Result<(), StoreError> {
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        if p.buffered_rows > 0 {
            let (table, _) = key;
            // Held row groups are weighed as their rows were in the builders.
            let size = p.buffered_bytes;
            self.buffered_bytes -= p.buffered_bytes;
            p.buffered_bytes = 0;
            p.buffered_rows = 0;
            let batch = sort_by_time(RecordBatch::try_new(table.schema(), p.rows.finish())?)?;
            p.held.push((batch, size));
            p.held_bytes += size;
            self.held_bytes += size;
        }
        if self.holding || p.held.len() == p.in_file {
            return Ok(());
        }
        let written = self.write_partition(key);
        if written.is_err() {
            self.abandon_file(key);
        }
        written
    }

    /// Writes the partition's held row groups not yet in its open file (creating it), then
    /// publishes the file if it passed `rotate_rows` / `rotate_bytes`.
    fn write_partition(&mut self, key: Key) -> Result<(), StoreError> {
        let (table, partition) = key;
        let retry = self.opts.retry_bytes.is_some();
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        if p.file.is_none() {
            let dir = self.opts.root.join(table.name()).join(partition.dir());
            ensure_dir(&self.opts.root, &dir, self.opts.fsync)?;
            let seq = self.opts.sequence.fetch_add(1, Ordering::Relaxed);
            let name = format!("{}-{}-{seq:06}.parquet", self.opts.node, self.opts.boot);
            let props = self.props[table.index()].clone();
            p.file = Some(OpenFile::create(table, &dir, &name, table.schema(), props)?);
        }
        let Some(file) = p.file.as_mut() else {
            return Ok(());
        };
        while p.in_file < p.held.len() {
            file.write_row_group(&p.held[p.in_file].0)?;
            p.in_file += 1;
        }
        if !retry {
            // No copies kept: the file is the only place of these rows from now on.
            for (batch, _) in p.held.drain(..) {
                p.file_only_rows += batch.num_rows() as u64;
            }
            self.held_bytes -= p.held_bytes;
            p.held_bytes = 0;
            p.in_file = 0;
        }
        if file.rows() >= self.opts.rotate_rows || file.bytes() >= self.opts.rotate_bytes {
            self.publish_file(key)?;
        }
        Ok(())
    }

    /// Publishes the partition's open file; its rows leave `held`, its WAL range is released.
    fn publish_file(&mut self, key: Key) -> Result<(), StoreError> {
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        let Some(mut file) = p.file.take() else {
            return Ok(());
        };
        // Every row of the partition is in the file (callers flush and write first), so the
        // file's highest WAL position is the partition's.
        debug_assert_eq!((p.in_file, p.buffered_rows), (p.held.len(), 0));
        tag_wal(&mut file, self.wal_stream.as_deref(), p.wal_last);
        let published = file.publish(self.opts.fsync);
        let Some(p) = self.partitions.get_mut(&key) else {
            return Ok(());
        };
        match published {
            Ok(f) => {
                self.stats.files.push(f);
                self.held_bytes -= p.held_bytes;
                p.held.clear();
                p.held_bytes = 0;
                p.in_file = 0;
                p.file_only_rows = 0;
                // Callers flush the builders first; if rows were left there, the WAL stays
                // pinned from the file's first row (conservative: nothing unpublished is freed).
                if p.buffered_rows == 0 {
                    p.wal_first = None;
                    p.wal_last = None;
                }
                Ok(())
            }
            Err(e) => {
                self.abandon_file(key);
                Err(e)
            }
        }
    }

    /// After a failed write: the open file is dropped (its temporary removed), its held row
    /// groups wait to be written into a new one, rows with no copy are counted lost, and the
    /// writer holds.
    fn abandon_file(&mut self, key: Key) {
        self.holding = true;
        if let Some(p) = self.partitions.get_mut(&key) {
            p.file = None;
            p.in_file = 0;
            self.stats.lost_rows += std::mem::take(&mut p.file_only_rows);
        }
    }

    /// Keeps held row groups within [`SpoolOptions::retry_bytes`]: a writer that can write
    /// publishes its largest partition; a holding one drops the oldest row group of its
    /// largest partition (the copy of a row group already in a file first costs nothing yet).
    fn trim_held(&mut self) -> Result<(), StoreError> {
        let Some(bound) = self.opts.retry_bytes else {
            return Ok(());
        };
        while self.held_bytes > bound {
            let Some(largest) = self
                .partitions
                .iter()
                .max_by_key(|(_, p)| p.held_bytes)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if !self.holding {
                self.publish_partition(largest)?;
                continue;
            }
            let Some(p) = self.partitions.get_mut(&largest) else {
                break;
            };
            if p.held.is_empty() {
                break;
            }
            let (oldest, size) = p.held.remove(0);
            p.held_bytes -= size;
            self.held_bytes -= size;
            if p.in_file > 0 {
                p.in_file -= 1;
                p.file_only_rows += oldest.num_rows() as u64;
            } else {
                self.stats.lost_rows += oldest.num_rows() as u64;
            }
        }
        Ok(())
    }

    /// Writes the partition's rows and publishes its file, forgetting the partition; while
    /// holding, or when the write fails, the partition stays with its rows held.
    fn publish_partition(&mut self, key: Key) -> Result<(), StoreError> {
        self.flush_partition(key)?;
        if self.holding {
            return Ok(());
        }
        self.publish_file(key)?;
        if let Some(p) = self.partitions.remove(&key) {
            self.held_bytes -= p.held_bytes;
        }
        Ok(())
    }
}

/// Records in a file about to be published which WAL stream its rows came from and the
/// highest position among them, so that a replay after a crash skips them.
fn tag_wal(file: &mut OpenFile, stream: Option<&str>, last: Option<u64>) {
    if let (Some(stream), Some(last)) = (stream, last) {
        file.append_metadata(crate::wal::META_STREAM, stream);
        file.append_metadata(crate::wal::META_POSITION, &last.to_string());
    }
}

/// The writer's clock, for rows that carry no time.
fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// Sorts a batch by its first column (the table's time; nulls first), keeping the arrival order
/// of equal times. Batches already in order are returned as they are after one pass.
///
/// Log files are nearly but not quite in accept-time order (a line is written when its request
/// ends), so most row groups need the gather; the `list<string>` header columns get a dedicated
/// one ([`take_string_list`]) because the generic list `take` costs more than all other columns
/// together.
pub(crate) fn sort_by_time(batch: RecordBatch) -> Result<RecordBatch, StoreError> {
    let Some(times) = batch
        .column(0)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
    else {
        return Ok(batch);
    };
    let key = |i: usize| {
        if times.is_null(i) {
            i64::MIN
        } else {
            times.value(i)
        }
    };
    if (1..times.len()).all(|i| key(i - 1) <= key(i)) {
        return Ok(batch);
    }
    // A stable radix sort on the time alone keeps arrival order among equal times, passing
    // only over the key bytes that differ within the row group.
    let mut keyed: Vec<(i64, u32)> = (0..times.len()).map(|i| (key(i), i as u32)).collect();
    radsort::sort_by_key(&mut keyed, |&(time, _)| time);
    let indices = UInt32Array::from_iter_values(keyed.into_iter().map(|(_, i)| i));
    let columns = batch
        .columns()
        .iter()
        .map(|c| match take_string_list(c.as_ref(), indices.values()) {
            Some(taken) => taken,
            None => Ok(take(c.as_ref(), &indices, None)?),
        })
        .collect::<Result<Vec<ArrayRef>, StoreError>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// `take` for a `list<string>` column whose items have no nulls: copies each chosen list's item
/// bytes as one slice. `None` when `column` is not such a list (the caller uses `take`).
fn take_string_list(column: &dyn Array, order: &[u32]) -> Option<Result<ArrayRef, StoreError>> {
    let list = column.as_any().downcast_ref::<ListArray>()?;
    let items = list.values().as_any().downcast_ref::<StringArray>()?;
    if items.null_count() > 0 {
        return None;
    }
    let DataType::List(field) = list.data_type() else {
        return None;
    };
    let (list_offsets, item_offsets, bytes) =
        (list.value_offsets(), items.value_offsets(), items.value_data());
    let mut new_list = Vec::with_capacity(order.len() + 1);
    let mut new_items = Vec::with_capacity(items.len() + 1);
    let mut new_bytes: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut valid = list.nulls().map(|_| BooleanBufferBuilder::new(order.len()));
    new_list.push(0i32);
    new_items.push(0i32);
    for &i in order {
        let i = i as usize;
        let (first, end) = (list_offsets[i] as usize, list_offsets[i + 1] as usize);
        let (from, to) = (item_offsets[first], item_offsets[end]);
        // Offsets are i32 in a `List<Utf8>`, and the copy is never larger than its source.
        let shift = new_bytes.len() as i32 - from;
        new_bytes.extend_from_slice(&bytes[from as usize..to as usize]);
        new_items.extend(item_offsets[first + 1..=end].iter().map(|o| o + shift));
        new_list.push((new_items.len() - 1) as i32);
        if let Some(v) = valid.as_mut() {
            v.append(list.is_valid(i));
        }
    }
    let taken = (|| -> Result<ArrayRef, StoreError> {
        let items = StringArray::try_new(OffsetBuffer::new(new_items.into()), new_bytes.into(), None)?;
        let nulls = valid.map(|mut v| NullBuffer::new(v.finish()));
        let list = ListArray::try_new(
            field.clone(),
            OffsetBuffer::new(new_list.into()),
            Arc::new(items),
            nulls,
        )?;
        Ok(Arc::new(list) as ArrayRef)
    })();
    Some(taken)
}

/// What every spool file's properties share, the `windows` table's too: zstd at `zstd_level`,
/// dictionaries, rows sorted by the first column (time), weir as the writer, and the spool
/// format and table name in the key-value metadata.
pub(crate) fn spool_file_properties(
    table: &str,
    zstd_level: i32,
) -> Result<parquet::file::properties::WriterPropertiesBuilder, StoreError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_dictionary_enabled(true)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: true,
        }]))
        .set_created_by(format!("weir {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("weir.spool_format".to_owned(), SPOOL_FORMAT_VERSION.to_string()),
            KeyValue::new("weir.table".to_owned(), table.to_owned()),
        ])))
}

/// The Parquet properties of one table's files.
///
/// Every column is zstd-compressed. String columns are dictionary-encoded. The time columns
/// (nearly unique and sorted) are `DELTA_BINARY_PACKED`. The other integer columns (ports,
/// timers, counters, sizes, status) are `BYTE_STREAM_SPLIT`: their high bytes are nearly constant
/// and zstd folds them away, which makes them smaller than a dictionary (or delta) encoding and
/// several times cheaper to write than a dictionary, whose hash lookup per value was the largest
/// single cost of the writer. Reading it needs a reader that knows `BYTE_STREAM_SPLIT` for
/// integers (Parquet format 2.11, 2024): pyarrow 26 and DuckDB 2.0 are tested end to end, and
/// Spark needs parquet-java 1.14 or later (Spark 4).
///
/// Numeric and time columns carry page statistics (min/max per page, with a page index) for
/// time-range pruning; string and binary columns carry none: their min/max cost two comparisons
/// a value on the write path, and with many distinct values per row group they prune nothing.
pub(crate) fn writer_properties(
    table: Table,
    zstd_level: i32,
    row_group_rows: usize,
) -> Result<WriterProperties, StoreError> {
    let mut b = spool_file_properties(table.name(), zstd_level)?
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows));
    let schema = table.schema();
    for field in schema.fields() {
        let encoding = match field.data_type() {
            DataType::Timestamp(..) => Encoding::DELTA_BINARY_PACKED,
            DataType::Int16 | DataType::Int32 | DataType::Int64 => Encoding::BYTE_STREAM_SPLIT,
            _ => continue,
        };
        let col = ColumnPath::from(field.name().as_str());
        b = b
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, encoding);
    }
    let parquet_schema = ArrowSchemaConverter::new().convert(&schema)?;
    for col in parquet_schema.columns() {
        if col.physical_type() == PhysicalType::BYTE_ARRAY {
            b = b.set_column_statistics_enabled(col.path().clone(), EnabledStatistics::None);
        }
    }
    Ok(b.build())
}

/// The content of `<spool>/FORMAT`.
fn format_text() -> String {
    format!("{SPOOL_FORMAT_VERSION}\n")
}

/// Checks `<spool>/FORMAT`, or writes it (atomically: several writers may start at once).
fn ensure_format(opts: &SpoolOptions) -> Result<(), StoreError> {
    let path = opts.root.join("FORMAT");
    match std::fs::read_to_string(&path) {
        Ok(found) if found.trim() == SPOOL_FORMAT_VERSION.to_string() => Ok(()),
        Ok(found) => Err(StoreError::FormatMismatch {
            path,
            found,
            expected: SPOOL_FORMAT_VERSION,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_format(&opts.root, &path, opts),
        Err(e) => Err(StoreError::Io {
            op: "read",
            path,
            source: e,
        }),
    }
}

fn write_format(root: &Path, path: &Path, opts: &SpoolOptions) -> Result<(), StoreError> {
    let seq = opts.sequence.fetch_add(1, Ordering::Relaxed);
    let tmp = root.join(format!(".FORMAT.{}-{}-{seq}.tmp", opts.node, opts.boot));
    std::fs::write(&tmp, format_text()).map_err(StoreError::io("write", &tmp))?;
    if opts.fsync {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io("fsync", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(StoreError::io("rename", &tmp))?;
    if opts.fsync {
        sync_dir(root)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, MapBuilder, StringBuilder};
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Int16Array, Int32Array, Int64Array, Int8Array, StringArray,
    };
    use weir_model::{AppKind, AppLog, SyslogHeader};

    use super::*;
    use crate::reader::{read_table, table_files};
    use crate::testutil::{app_conn_error, app_plain, at, bad_http, header, http, line, reject_line, tcp};

    fn opts(root: &Path) -> SpoolOptions {
        SpoolOptions {
            fsync: false,
            ..SpoolOptions::new(root, "node1", "boot1")
        }
    }

    fn ts(v: Vec<Option<Micros>>) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
    }
    fn s(v: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(v))
    }
    fn i32s(v: Vec<Option<i32>>) -> ArrayRef {
        Arc::new(Int32Array::from(v))
    }
    fn bools(v: Vec<bool>) -> ArrayRef {
        Arc::new(BooleanArray::from(v))
    }
    fn string_lists(v: Vec<Option<Vec<&str>>>) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for item in v {
            match item {
                Some(items) => {
                    for i in items {
                        b.values().append_value(i);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }

    /// Reads `table` back and compares every column, by name, with `want`.
    fn assert_table(root: &Path, table: Table, want: Vec<ArrayRef>) {
        let batches = read_table(root, table).unwrap();
        assert_eq!(batches.len(), 1, "{table}: one batch");
        let got = &batches[0];
        assert_eq!(got.schema().fields(), table.schema().fields(), "{table}: schema");
        assert_eq!(got.num_columns(), want.len(), "{table}: column count");
        for (i, w) in want.iter().enumerate() {
            let name = table.schema().field(i).name().clone();
            assert_eq!(got.column(i).as_ref(), w.as_ref(), "{table}.{name}");
        }
    }

    #[test]
    fn requests_round_trip_sorted_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        let (mut bad, good) = (bad_http(at(10)), http(at(0)));
        bad.fields = weir_model::Fields::new(&crate::testutil::WordFields, "id=abc ssl=-");
        let meta = RecordMeta {
            received_at: Some(at(100)),
            peer: None,
        };
        w.append(&line(Record::Http(bad), b"bad line"), &meta).unwrap();
        w.append(&line(Record::Http(good), b"good line"), &RecordMeta::default())
            .unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(stats.rows(Table::Requests), 2);
        assert_eq!(stats.files.len(), 1);
        let n = || vec![Some("lb1"), Some("lb1")];
        assert_table(
            dir.path(),
            Table::Requests,
            vec![
                ts(vec![Some(at(0)), Some(at(10))]),
                ts(vec![None, Some(at(100))]),
                s(n()),
                s(vec![Some("haproxy"); 2]),
                s(vec![Some("12136"); 2]),
                s(vec![Some("10.0.0.1"), Some("::1")]),
                i32s(vec![Some(39164), None]),
                s(vec![Some("fe_https"), Some("fe_http")]),
                bools(vec![true, false]),
                s(vec![Some("be_app"), Some("fe_http")]),
                s(vec![Some("web1"), Some("<NOSRV>")]),
                i32s(vec![Some(1), None]),
                i32s(vec![Some(0), None]),
                i32s(vec![Some(2), None]),
                i32s(vec![Some(40), None]),
                i32s(vec![Some(45), Some(5)]),
                bools(vec![false, false]),
                Arc::new(Int16Array::from(vec![Some(200), None])),
                Arc::new(Int64Array::from(vec![1234, 0])),
                bools(vec![false, false]),
                s(vec![None, None]),
                s(vec![Some("SID=1"), None]),
                s(vec![Some("----"), Some("CR--")]),
                i32s(vec![Some(10); 2]),
                i32s(vec![Some(9); 2]),
                i32s(vec![Some(3); 2]),
                i32s(vec![Some(1); 2]),
                i32s(vec![Some(0), Some(3)]),
                bools(vec![false, true]),
                i32s(vec![Some(0); 2]),
                i32s(vec![Some(0); 2]),
                string_lists(vec![Some(vec!["example.com", "a|b"]), None]),
                string_lists(vec![None, None]),
                s(vec![Some("GET"), None]),
                s(vec![Some("/api/x"), None]),
                s(vec![Some("id=1"), None]),
                s(vec![Some("HTTP/1.1"), None]),
                bools(vec![false, true]),
                s(vec![None, Some("<BADREQ>")]),
                s(vec![Some("TLSv1.3"), None]),
                s(vec![Some("TLS_AES_256_GCM_SHA384"), None]),
                s(vec![Some("example.com"), None]),
                s(vec![Some("0"), None]),
                i32s(vec![Some(0), None]),
                i32s(vec![Some(0), None]),
                i32s(vec![Some(0), None]),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                bools(vec![false, true]),
                bools(vec![false, true]),
                fields_map(vec![vec![], vec![("ID", Some("abc")), ("ssl_fc", None)]]),
            ],
        );
    }

    /// A `fields` column: one map per row, a `None` value stored as null.
    fn fields_map(rows: Vec<Vec<(&str, Option<&str>)>>) -> ArrayRef {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for row in rows {
            for (k, v) in row {
                b.keys().append_value(k);
                b.values().append_option(v);
            }
            b.append(true).unwrap();
        }
        Arc::new(b.finish())
    }

    #[test]
    fn request_raw_is_kept_only_when_the_parts_lose_it() {
        let mut r = http(at(0));
        assert_eq!(crate::rows::request_raw_if_lossy(&r.request), None);
        r.request.raw = "GET  /api/x?id=1 HTTP/1.1";
        assert_eq!(crate::rows::request_raw_if_lossy(&r.request), Some(r.request.raw));
        r.request = weir_model::RequestLine {
            raw: "GET /x",
            method: Some("GET"),
            path: Some("/x"),
            ..r.request
        };
        r.request.http_version = None;
        r.request.query = None;
        assert_eq!(crate::rows::request_raw_if_lossy(&r.request), Some("GET /x"));
    }

    #[test]
    fn tcp_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        w.append(
            &line(Record::Tcp(tcp(at(5))), b"tcp"),
            &RecordMeta {
                received_at: Some(at(6)),
                peer: None,
            },
        )
        .unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(stats.rows(Table::Tcp), 1);
        assert_table(
            dir.path(),
            Table::Tcp,
            vec![
                ts(vec![Some(at(5))]),
                ts(vec![Some(at(6))]),
                s(vec![Some("lb1")]),
                s(vec![Some("haproxy")]),
                s(vec![Some("12136")]),
                s(vec![Some("192.168.1.2")]),
                i32s(vec![Some(5000)]),
                s(vec![Some("fe_tcp")]),
                bools(vec![false]),
                s(vec![Some("be_db")]),
                s(vec![Some("db1")]),
                i32s(vec![Some(0)]),
                i32s(vec![None]),
                i32s(vec![Some(5007)]),
                bools(vec![true]),
                Arc::new(Int64Array::from(vec![212])),
                bools(vec![false]),
                s(vec![Some("--")]),
                i32s(vec![Some(1)]),
                i32s(vec![Some(1)]),
                i32s(vec![Some(1)]),
                i32s(vec![Some(1)]),
                i32s(vec![Some(0)]),
                bools(vec![false]),
                i32s(vec![Some(0)]),
                i32s(vec![Some(0)]),
                fields_map(vec![vec![]]),
            ],
        );
    }

    #[test]
    fn app_round_trip_with_fields() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        let event = AppLog {
            kind: AppKind::HaproxyEvent,
            ts: Some(at(2)),
            message: "Server be_app/web1 is DOWN",
            client: None,
            subject: Some("be_app/web1"),
            router: None,
        };
        // No time in the record: the row's partition comes from received_at, `ts` stays null.
        let bare = weir_model::Line {
            header: SyslogHeader::default(),
            record: Record::App(app_plain(None)),
            raw: b"at=info",
        };
        w.append(
            &bare,
            &RecordMeta {
                received_at: Some(at(3)),
                peer: None,
            },
        )
        .unwrap();
        w.append(
            &line(Record::App(app_conn_error(at(1))), b"e"),
            &RecordMeta::default(),
        )
        .unwrap();
        w.append(&line(Record::App(event), b"ev"), &RecordMeta::default())
            .unwrap();
        w.finish().unwrap();
        let mut fields = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for (k, v) in [("at", "info"), ("path", "/a b"), ("status", "200")] {
            fields.keys().append_value(k);
            fields.values().append_value(v);
        }
        fields.append(true).unwrap();
        for (k, v) in [
            ("client_ip", "10.0.0.9"),
            ("client_port", "4242"),
            ("subject", "fe_https/1"),
        ] {
            fields.keys().append_value(k);
            fields.values().append_value(v);
        }
        fields.append(true).unwrap();
        fields.keys().append_value("subject");
        fields.values().append_value("be_app/web1");
        fields.append(true).unwrap();
        let h = header();
        assert_table(
            dir.path(),
            Table::App,
            vec![
                ts(vec![None, Some(at(1)), Some(at(2))]),
                ts(vec![Some(at(3)), None, None]),
                s(vec![None, h.host, h.host]),
                s(vec![None, h.app, h.app]),
                s(vec![None, h.procid, h.procid]),
                Arc::new(Int8Array::from(vec![None, Some(6), Some(6)])),
                Arc::new(Int8Array::from(vec![None, Some(16), Some(16)])),
                s(vec![
                    Some("app"),
                    Some("haproxy_conn_error"),
                    Some("haproxy_event"),
                ]),
                s(vec![
                    Some(app_plain(None).message),
                    Some(app_conn_error(0).message),
                    Some(event.message),
                ]),
                Arc::new(fields.finish()),
            ]
            .into_iter()
            .chain(no_router_columns(3))
            .collect(),
        );
    }

    /// The `router_*` columns of `n` rows that are not router lines.
    fn no_router_columns(n: usize) -> Vec<ArrayRef> {
        let text = || s(vec![None; n]);
        vec![
            text(),
            text(),
            text(),
            text(),
            Arc::new(Int16Array::from(vec![None; n])),
            Arc::new(Int32Array::from(vec![None; n])),
            Arc::new(Int32Array::from(vec![None; n])),
            Arc::new(Int64Array::from(vec![None; n])),
            text(),
            text(),
            text(),
            text(),
        ]
    }

    #[test]
    fn router_lines_fill_the_router_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        let msg = "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/\" host=a.herokuapp.com request_id=r1 fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=30000ms status=503 bytes=0 protocol=https";
        let router = weir_ingest::heroku::parse_router(msg).unwrap();
        let app = AppLog {
            kind: AppKind::Router,
            ts: Some(at(1)),
            message: msg,
            client: None,
            subject: None,
            router: Some(router),
        };
        w.append(&line(Record::App(app), msg.as_bytes()), &RecordMeta::default())
            .unwrap();
        w.finish().unwrap();
        let batch = &read_table(dir.path(), Table::App).unwrap()[0];
        let col = |n: &str| batch.column(batch.schema().index_of(n).unwrap()).clone();
        assert_eq!(col("kind").as_ref(), s(vec![Some("router")]).as_ref());
        assert_eq!(col("router_code").as_ref(), s(vec![Some("H12")]).as_ref());
        assert_eq!(col("router_dyno").as_ref(), s(vec![Some("web.1")]).as_ref());
        assert_eq!(
            col("router_status").as_ref(),
            &Int16Array::from(vec![Some(503)]) as &dyn arrow_array::Array
        );
        assert_eq!(
            col("router_service_ms").as_ref(),
            &Int32Array::from(vec![Some(30_000)]) as &dyn arrow_array::Array
        );
        assert_eq!(
            col("router_bytes").as_ref(),
            &Int64Array::from(vec![Some(0)]) as &dyn arrow_array::Array
        );
    }

    #[test]
    fn rejects_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        let meta = RecordMeta {
            received_at: Some(at(7)),
            peer: Some("127.0.0.1:5514"),
        };
        w.append(&reject_line(b"<13>garbage \xff", header()), &meta)
            .unwrap();
        let no_header = SyslogHeader {
            host: None,
            app: Some("web"),
            ..SyslogHeader::default()
        };
        w.append(
            &reject_line(b"x", no_header),
            &RecordMeta {
                received_at: Some(at(8)),
                peer: None,
            },
        )
        .unwrap();
        w.append(
            &reject_line(b"", SyslogHeader::default()),
            &RecordMeta {
                received_at: Some(at(9)),
                peer: None,
            },
        )
        .unwrap();
        w.finish().unwrap();
        assert_table(
            dir.path(),
            Table::Rejects,
            vec![
                ts(vec![Some(at(7)), Some(at(8)), Some(at(9))]),
                s(vec![Some("127.0.0.1:5514"), None, None]),
                s(vec![Some("lb1/haproxy"), Some("-/web"), None]),
                s(vec![Some("unknown_format"); 3]),
                Arc::new(BinaryArray::from(vec![&b"<13>garbage \xff"[..], b"x", b""])),
            ],
        );
    }

    #[test]
    fn publish_is_atomic_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            fsync: true,
            ..opts(dir.path())
        };
        let shared = o.sequence.clone();
        let mut a = SpoolWriter::create(o.clone()).unwrap();
        let mut b = SpoolWriter::create(SpoolOptions {
            sequence: shared,
            ..o
        })
        .unwrap();
        for i in 0..10 {
            a.append(&line(Record::Http(http(at(i))), b"a"), &RecordMeta::default())
                .unwrap();
            b.append(&line(Record::Http(http(at(i))), b"b"), &RecordMeta::default())
                .unwrap();
        }
        let part = dir.path().join("requests/date=2026-11-22/hour=01");
        let listing = || {
            let mut v: Vec<String> = std::fs::read_dir(&part)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        // Nothing published before finish; writers at work leave only hidden temporaries.
        assert_eq!(
            table_files(dir.path(), Table::Requests).unwrap(),
            Vec::<PathBuf>::new()
        );
        let (sa, sb) = (a.finish().unwrap(), b.finish().unwrap());
        let names = listing();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("node1-boot1-") && n.ends_with(".parquet")),
            "{names:?}"
        );
        assert_ne!(sa.files[0].path, sb.files[0].path);
        assert_eq!(
            sa.files[0].bytes,
            std::fs::metadata(&sa.files[0].path).unwrap().len()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
            format!("{SPOOL_FORMAT_VERSION}\n")
        );
        let root: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(root.iter().all(|n| !n.ends_with(".tmp")), "{root:?}");
    }

    #[test]
    fn a_dropped_writer_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(SpoolOptions {
            row_group_rows: 2,
            ..opts(dir.path())
        })
        .unwrap();
        for i in 0..5 {
            w.append(&line(Record::Http(http(at(i))), b"a"), &RecordMeta::default())
                .unwrap();
        }
        let part = dir.path().join("requests/date=2026-11-22/hour=01");
        assert_eq!(
            std::fs::read_dir(&part).unwrap().count(),
            1,
            "a temporary is being written"
        );
        drop(w);
        assert_eq!(std::fs::read_dir(&part).unwrap().count(), 0);
    }

    #[test]
    fn rows_go_to_the_hour_of_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        let hour = 3_600_000;
        for t in [at(0), at(hour), at(-2 * hour), at(1)] {
            w.append(&line(Record::Http(http(t)), b"x"), &RecordMeta::default())
                .unwrap();
        }
        let stats = w.finish().unwrap();
        let mut dirs: Vec<String> = stats
            .files
            .iter()
            .map(|f| {
                f.path
                    .parent()
                    .unwrap()
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        dirs.sort();
        assert_eq!(
            dirs,
            [
                "requests/date=2026-11-21/hour=23",
                "requests/date=2026-11-22/hour=01",
                "requests/date=2026-11-22/hour=02"
            ]
        );
        let rows: Vec<u64> = stats.files.iter().map(|f| f.rows).collect();
        assert_eq!(rows.iter().sum::<u64>(), 4);
    }

    #[test]
    fn files_rotate_by_rows_and_row_groups_stay_small() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            row_group_rows: 10,
            rotate_rows: 25,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        // Descending times: every row group needs its sort.
        for i in (0..100).rev() {
            w.append(&line(Record::Http(http(at(i))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        let stats = w.finish().unwrap();
        let rows: Vec<u64> = stats.files.iter().map(|f| f.rows).collect();
        assert_eq!(rows, [30, 30, 30, 10]);
        for f in &stats.files {
            let meta =
                parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&f.path).unwrap())
                    .map(|r| parquet::file::reader::FileReader::metadata(&r).clone())
                    .unwrap();
            for rg in meta.row_groups() {
                assert!(rg.num_rows() <= 10);
                assert_eq!(rg.sorting_columns().map(|c| c.len()), Some(1));
            }
            for rg in 0..meta.num_row_groups() {
                let file = std::fs::File::open(&f.path).unwrap();
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .with_row_groups(vec![rg])
                    .build()
                    .unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    let t = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .unwrap();
                    assert!(
                        t.values().windows(2).all(|w| w[0] <= w[1]),
                        "sorted within a row group"
                    );
                }
            }
        }
    }

    #[test]
    fn memory_bound_flushes_early_and_lru_partitions_publish() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            max_buffered_bytes: 3 * (ROW_OVERHEAD_BYTES + 1),
            max_open_partitions: 2,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        for i in 0..7 {
            w.append(&line(Record::Http(http(at(i))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        assert!(w.buffered_bytes <= 3 * (ROW_OVERHEAD_BYTES + 1));
        // Two more hours: the third partition evicts the least recently used (the first).
        w.append(
            &line(Record::Tcp(tcp(at(3_600_000))), b"x"),
            &RecordMeta::default(),
        )
        .unwrap();
        assert!(w.stats().files.is_empty());
        w.append(
            &line(Record::Tcp(tcp(at(7_200_000))), b"x"),
            &RecordMeta::default(),
        )
        .unwrap();
        assert_eq!(w.stats().files.len(), 1);
        assert_eq!(
            (w.stats().files[0].table, w.stats().files[0].rows),
            (Table::Requests, 7)
        );
        let stats = w.finish().unwrap();
        assert_eq!(
            (
                stats.rows(Table::Requests),
                stats.rows(Table::Tcp),
                stats.files.len()
            ),
            (7, 2, 3)
        );
        let total: usize = read_table(dir.path(), Table::Requests)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(total, 7);
    }

    #[test]
    fn rows_age_out_of_the_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(SpoolOptions {
            rotate_age: Some(Duration::ZERO),
            ..opts(dir.path())
        })
        .unwrap();
        w.append(&line(Record::Http(http(at(0))), b"x"), &RecordMeta::default())
            .unwrap();
        w.rotate_aged().unwrap();
        assert_eq!(w.stats().files.len(), 1);
        w.append(&line(Record::Http(http(at(1))), b"x"), &RecordMeta::default())
            .unwrap();
        w.publish_all().unwrap();
        assert_eq!(w.stats().files.len(), 2);
        assert_eq!(w.finish().unwrap().files.len(), 2);
    }

    #[test]
    fn sorting_keeps_arrival_order_of_equal_times() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(opts(dir.path())).unwrap();
        for (t, ip) in [(5, "a"), (1, "b"), (5, "c"), (1, "d")] {
            let mut r = http(at(t));
            r.client.ip = ip;
            w.append(&line(Record::Http(r), b"x"), &RecordMeta::default())
                .unwrap();
        }
        w.finish().unwrap();
        let batch = &read_table(dir.path(), Table::Requests).unwrap()[0];
        let ips = batch
            .column_by_name("client_ip")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ips.iter().flatten().collect::<Vec<_>>(), ["b", "d", "a", "c"]);
    }

    #[test]
    fn a_spool_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("FORMAT"), "99\n").unwrap();
        let err = SpoolWriter::create(opts(dir.path())).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::FormatMismatch {
                    expected: SPOOL_FORMAT_VERSION,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for o in [
            SpoolOptions {
                node: "a/b".into(),
                ..opts(dir.path())
            },
            SpoolOptions {
                boot: String::new(),
                ..opts(dir.path())
            },
            SpoolOptions {
                zstd_level: 99,
                ..opts(dir.path())
            },
            SpoolOptions {
                row_group_rows: 0,
                ..opts(dir.path())
            },
        ] {
            assert!(matches!(
                SpoolWriter::create(o),
                Err(StoreError::InvalidOption { .. })
            ));
        }
    }

    /// Rows of `table` in the published files of `root`.
    fn published_rows(root: &Path, table: Table) -> u64 {
        read_table(root, table)
            .unwrap()
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum()
    }

    /// Appends `n` requests a millisecond apart, each with its WAL position.
    fn append_requests(w: &mut SpoolWriter, n: u64) -> Result<(), StoreError> {
        let mut first_error = None;
        for i in 0..n {
            w.set_wal_position(i);
            if let Err(e) = w.append(
                &line(Record::Http(http(at(i as i64))), b"GET /"),
                &RecordMeta::default(),
            ) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn retrying(root: &Path, retry_bytes: usize) -> SpoolOptions {
        SpoolOptions {
            row_group_rows: 10,
            rotate_age: None,
            retry_bytes: Some(retry_bytes),
            ..opts(root)
        }
    }

    #[test]
    fn an_unwritable_spool_holds_every_row_and_publishes_them_when_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(retrying(dir.path(), 64 << 20)).unwrap();
        // A file where the table's folder should be: every write of `requests` fails.
        let blocker = dir.path().join("requests");
        std::fs::write(&blocker, b"").unwrap();
        assert!(
            append_requests(&mut w, 25).is_err(),
            "the first full row group fails"
        );
        assert!(w.is_holding(), "a failure puts the writer on hold");
        // Holding, later row groups are not tried: no more errors, the rows are kept.
        append_requests(&mut w, 0).unwrap();
        assert_eq!(
            w.unpublished_rows(),
            25,
            "two row groups held, five rows in the builders"
        );
        assert_eq!(
            w.oldest_unpublished_wal_position(),
            Some(0),
            "the WAL stays pinned"
        );
        w.resume();
        assert!(w.publish_all().is_err());
        std::fs::remove_file(&blocker).unwrap();
        w.resume();
        w.publish_all().unwrap();
        assert_eq!(w.oldest_unpublished_wal_position(), None);
        assert_eq!((w.unpublished_rows(), w.stats().lost_rows), (0, 0));
        assert_eq!(published_rows(dir.path(), Table::Requests), 25);
    }

    #[test]
    fn a_file_that_fails_at_publication_is_written_again_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(retrying(dir.path(), 64 << 20)).unwrap();
        append_requests(&mut w, 30).unwrap();
        // Three row groups are in the open file; its folder vanishes under it, so the rename
        // that publishes it fails.
        let hour = dir.path().join("requests").join(Partition::of(at(0)).dir());
        let moved = dir.path().join("moved");
        std::fs::rename(&hour, &moved).unwrap();
        assert!(w.publish_all().is_err());
        assert_eq!(
            w.unpublished_rows(),
            30,
            "every row of the failed file is still held"
        );
        w.resume();
        w.publish_all().unwrap();
        assert_eq!(w.stats().lost_rows, 0);
        assert_eq!(w.stats().files.len(), 1);
        assert_eq!(published_rows(dir.path(), Table::Requests), 30);
    }

    #[test]
    fn without_copies_a_failed_file_counts_its_rows_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(SpoolOptions {
            retry_bytes: None,
            ..retrying(dir.path(), 0)
        })
        .unwrap();
        append_requests(&mut w, 25).unwrap();
        let hour = dir.path().join("requests").join(Partition::of(at(0)).dir());
        std::fs::rename(&hour, dir.path().join("moved")).unwrap();
        assert!(w.publish_all().is_err());
        // Publishing wrote every row into the file first: all of them went with it.
        assert_eq!((w.stats().lost_rows, w.unpublished_rows()), (25, 0));
        w.resume();
        w.publish_all().unwrap();
        assert!(w.stats().files.is_empty());
    }

    #[test]
    fn a_holding_writer_keeps_to_its_bound_and_counts_what_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe = SpoolWriter::create(retrying(dir.path(), usize::MAX)).unwrap();
        probe.hold();
        append_requests(&mut probe, 10).unwrap();
        let group = probe.held_bytes;
        drop(probe);
        let mut w = SpoolWriter::create(retrying(dir.path(), 3 * group)).unwrap();
        w.hold();
        append_requests(&mut w, 100).unwrap();
        assert!(w.held_bytes <= 3 * group, "{} > {}", w.held_bytes, 3 * group);
        assert_eq!(w.unpublished_rows(), 30);
        assert_eq!(w.stats().lost_rows, 70, "the oldest row groups went first");
        w.resume();
        w.publish_all().unwrap();
        let times = read_table(dir.path(), Table::Requests).unwrap();
        let ts = times[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), at(70), "the newest rows are the ones kept");
        assert_eq!(published_rows(dir.path(), Table::Requests), 30);
    }

    #[test]
    fn a_healthy_writer_over_its_retry_bound_publishes_early() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe =
            SpoolWriter::create(retrying(dir.path().join("probe").as_path(), usize::MAX)).unwrap();
        probe.hold();
        append_requests(&mut probe, 10).unwrap();
        let group = probe.held_bytes;
        let mut w = SpoolWriter::create(retrying(dir.path(), 3 * group)).unwrap();
        append_requests(&mut w, 100).unwrap();
        assert!(w.held_bytes <= 3 * group);
        assert!(!w.stats().files.is_empty(), "files were published before finish");
        let stats = w.finish().unwrap();
        assert_eq!(stats.lost_rows, 0);
        assert_eq!(published_rows(dir.path(), Table::Requests), 100);
    }
}
