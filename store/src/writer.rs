//! [`SpoolWriter`]: parsed lines in, published Parquet files out.
//!
//! Each appended [`Line`] lands in the Arrow builders of its table and hour partition
//! (`date=YYYY-MM-DD/hour=HH` of the event time; rows without one use `received_at`, else the
//! writer's clock). A partition's builders become one sorted row group when they hold
//! `row_group_rows` rows, or earlier when the writer's buffered bytes pass
//! `max_buffered_bytes`: then the partition holding the most goes, so a log whose lines hop
//! between hundreds of hours (a shuffled file, a host with a skewed clock, logs merged from
//! several balancers) is written in row groups of its partitions' share of the budget, not a
//! file per hop. Row groups go into the partition's file, taken from the spool's
//! [`OpenFiles`], which every writer made from clones of one [`SpoolOptions`] shares: a
//! partition's rows from any writer fill about one file. A file is published when it passes
//! `rotate_rows` / `rotate_bytes`, when its oldest row is older than `rotate_age`, when more than
//! `max_open_files` are open (the least recently used goes), and when the last writer sharing
//! it finishes ([`SpoolWriter::finish`]).
//!
//! With a write-ahead log, each row group carries the WAL range of its rows (every line of the
//! writer's stream and the partition between its first and last position), and a published file
//! lists the ranges of every writer that filled it; until then the pool pins the first position
//! of each range, so that [`SpoolWriter::oldest_unpublished_wal_position`] keeps every segment
//! a file still needs. A write that fails (a full disk) abandons its file, whose row groups are
//! kept in memory (with [`SpoolOptions::retry_bytes`]) and written again when the disk works;
//! a writer on hold writes nothing, its row groups wait in memory in their files.
//!
//! Rows are sorted by time within each row group (a stable sort, so equal times keep their
//! arrival order), and each file records this in its `sorting_columns`. A log is written in the
//! order requests end, not the order they were accepted, so a row group of lines as they came
//! needs the gather; it costs about a tenth of the writer's time on HAProxy logs, and buys tight
//! page statistics on `ts` (time-range pruning) and a smaller delta-coded `ts`. Sorting a file
//! across row groups would need the whole file in memory, which the memory bound rules out.
//! A writer given its lines nearly in time order (`import` sorts each chunk's lines) can keep
//! the few rows older than their partition's newest in builders of their own
//! ([`SpoolOptions::late_rows_apart`]): the rest then needs no gather, and the late rows become
//! a small row group (a spill, see `file`) of their own. A partition whose rows came out of
//! order at large (a shuffled log) turns this off until a flush finds them in order again.
//!
//! The Parquet side (encodings, statistics) is chosen per column type in `writer_properties`,
//! for write cost as much as for size: the writer runs on every core next to the parser.
//!
//! Several writers may share one spool (one per import worker): they must share the
//! [`SpoolOptions::sequence`] counter, or use distinct `node`/`boot` names, so that file names
//! `<node>-<boot>-<seq>.parquet` never collide; made from clones of one [`SpoolOptions`], they
//! also share its open files.

use std::collections::HashMap;
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
use crate::file::{publish_many, sync_dir, Group, OpenFile, PublishedFile, WalRange};
use crate::partition::Partition;
pub use crate::pool::OpenFiles;
use crate::pool::{CheckedOut, Key, Slot};
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
    /// Bound on the files holding a file descriptor (their Parquet file open; a file that has
    /// only spilled rows holds none) across the writers sharing [`SpoolOptions::files`]; past
    /// it the least recently used is published.
    pub max_open_files: usize,
    /// The files being filled, shared by the writers made from clones of these options.
    pub files: Arc<OpenFiles>,
    /// fsync files and folders on publish (on by default; tests may turn it off).
    pub fsync: bool,
    /// Keep a copy of each row group in memory until its file is published, up to this many
    /// bytes (weighed as in `max_buffered_bytes`) per writer sharing [`SpoolOptions::files`]
    /// (the bound is their sum, across the shared files, and each writer's own rows are held to
    /// its share), so that a file that fails (a full disk) is written again from memory
    /// instead of losing its rows. Past the bound a healthy writer publishes the file holding
    /// the most of its rows early; a holding one drops that file's oldest rows, counted in
    /// [`SpoolStats::lost_rows`]. `None` (the default, as `import` wants: it stops at the first
    /// error) keeps only the row groups not yet written.
    pub retry_bytes: Option<usize>,
    /// Rows earlier than the newest row already in their partition's builders go to builders
    /// of their own, flushed beside the others as a row group (or spill) of their own, so that
    /// the rest is in time order at the flush and needs no sort: for a writer given its lines
    /// in time order but for a few (`import` sorts each chunk's lines by time). Off by default;
    /// a writer given WAL positions keeps every row of a partition in one builder whatever
    /// this says, as the WAL ranges of its row groups require.
    pub late_rows_apart: bool,
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
            max_open_files: 256,
            files: Arc::new(OpenFiles::default()),
            fsync: true,
            retry_bytes: None,
            late_rows_apart: false,
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
            || self.max_open_files == 0
        {
            return bad(
                "row_group_rows/rotate_rows/rotate_bytes/max_open_files",
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

/// What a partition with buffered rows costs beyond its rows (its builders' structs, empty).
const PARTITION_OVERHEAD_BYTES: usize = 8 * 1024;

/// Passes of [`SpoolWriter::flush_all`] that skip partitions whose file another writer holds.
const FLUSH_PASSES: usize = 4;

/// How often (in appends) `rotate_age` is checked, to keep `Instant::now` off the hot path.
const AGE_CHECK_EVERY: u64 = 4096;

/// The rows of one table and hour not yet handed to a file.
#[derive(Debug)]
struct PartitionState {
    rows: TableRows,
    buffered_rows: usize,
    /// Weight of the rows plus [`PARTITION_OVERHEAD_BYTES`].
    buffered_bytes: usize,
    /// When the oldest buffered row arrived.
    since: Instant,
    /// WAL positions of the oldest and newest buffered rows, when the writer is given them.
    wal_first: Option<u64>,
    wal_last: Option<u64>,
    /// The newest time appended, and how many appends came with an earlier one.
    newest: Micros,
    behind: usize,
    /// With [`SpoolOptions::late_rows_apart`]: the rows earlier than `newest` when they came.
    late: Option<TableRows>,
}

/// The partitions with buffered rows. The one used last is checked first, which is the hit
/// for nearly every line of a log in time order; a shuffled log goes through the index.
#[derive(Debug, Default)]
struct Partitions {
    open: Vec<(Key, PartitionState)>,
    index: HashMap<Key, usize>,
    last: usize,
}

impl Partitions {
    #[inline]
    fn position(&mut self, key: &Key) -> Option<usize> {
        if self.open.get(self.last).is_some_and(|(k, _)| k == key) {
            return Some(self.last);
        }
        let i = *self.index.get(key)?;
        self.last = i;
        Some(i)
    }

    #[inline]
    fn get_or_insert_with(&mut self, key: Key, new: impl FnOnce() -> PartitionState) -> &mut PartitionState {
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                self.open.push((key, new()));
                self.last = self.open.len() - 1;
                self.index.insert(key, self.last);
                self.last
            }
        };
        &mut self.open[i].1
    }

    fn remove(&mut self, key: &Key) -> Option<PartitionState> {
        let i = self.position(key)?;
        self.index.remove(key);
        let (_, state) = self.open.swap_remove(i);
        if let Some((moved, _)) = self.open.get(i) {
            self.index.insert(*moved, i);
        }
        self.last = 0;
        Some(state)
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &PartitionState)> {
        self.open.iter().map(|(k, p)| (k, p))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.open.iter().map(|(k, _)| k)
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
    /// This writer's id in [`SpoolOptions::files`].
    id: u64,
    wal_stream: Option<Arc<str>>,
    wal_position: Option<u64>,
    /// No disk writes: row groups are held in memory (see [`SpoolWriter::hold`]).
    holding: bool,
    /// Whether this writer has left [`SpoolOptions::files`] (at `finish`).
    left: bool,
    /// Per table, what its builders held per weighed byte at the last large flush: rows are
    /// weighed as their line plus [`ROW_OVERHEAD_BYTES`] times this, so that the byte bounds
    /// follow the memory the builders really take (an `app` row holds its message twice, once
    /// split into `fields`; builders grow their buffers by doubling).
    scale: [f64; Table::ALL.len()],
    /// Whether late rows go to builders of their own now: with
    /// [`SpoolOptions::late_rows_apart`], while the partition flushed last had few of them (a
    /// log out of order at large, shuffled, would make every flush two small ones).
    late_apart: bool,
}

/// A partition whose rows came behind the newest more than once in this many is out of order
/// at large: its writer stops keeping late rows apart until a flush finds fewer again.
const LATE_APART_MAX_SHARE: usize = 8;

/// Rows a flush needs before its memory corrects [`SpoolWriter`]'s weights.
const SCALE_MIN_ROWS: usize = 1024;

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
        let id = opts.files.join(opts.retry_bytes.unwrap_or(0));
        Ok(SpoolWriter {
            late_apart: opts.late_rows_apart,
            opts,
            props,
            partitions: Partitions::default(),
            buffered_bytes: 0,
            appends: 0,
            stats: SpoolStats::default(),
            id,
            wal_stream: None,
            wal_position: None,
            holding: false,
            left: false,
            scale: [1.0; Table::ALL.len()],
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

    /// Rows of this writer in memory that are in no published file yet: in its builders, or
    /// held as row groups of the spool's open files (written into one or not).
    pub fn unpublished_rows(&self) -> u64 {
        let buffered: u64 = self.partitions.iter().map(|(_, p)| p.buffered_rows as u64).sum();
        buffered + self.opts.files.held_rows(self.id)
    }

    /// Writes every held row group of the spool's open files that is not yet on disk, then
    /// publishes what is due for rotation; a no-op while holding. A server calls this when its
    /// disk works again.
    pub fn write_held(&mut self) -> Result<(), StoreError> {
        if self.holding {
            return Ok(());
        }
        let mut first_error = None;
        for (key, out) in self.opts.files.take_pending() {
            if let Err(e) = self.settle(key, out) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.rotate_aged() {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Forgets the WAL position: the lines appended next were not logged.
    #[inline]
    pub fn clear_wal_position(&mut self) {
        self.wal_position = None;
    }

    /// Names the write-ahead log stream the lines come from; every file published from now on
    /// records the positions of its rows of that stream (see [`crate::wal`]).
    pub fn set_wal_stream(&mut self, stream: impl Into<String>) {
        self.wal_stream = Some(Arc::from(stream.into()));
    }

    /// The WAL position of the line appended next (positions must grow along a stream).
    #[inline]
    pub fn set_wal_position(&mut self, position: u64) {
        self.wal_position = Some(position);
    }

    /// The lowest WAL position of this writer's stream among the rows not yet published
    /// (in its builders, or in any open file of the spool, whoever holds it), `None` when every
    /// row given a position is published: the WAL segments before it can go.
    pub fn oldest_unpublished_wal_position(&self) -> Option<u64> {
        let buffered = self.partitions.iter().filter_map(|(_, p)| p.wal_first).min();
        let stream = self.wal_stream.as_deref().unwrap_or("");
        let in_files = self.opts.files.oldest_unpublished_wal_position(stream);
        buffered.into_iter().chain(in_files).min()
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
        self.append_rows((table, Partition::of(time)), time, weight, |rows| {
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
        self.append_rows((Table::Metrics, Partition::of(time)), time, weight, |rows| {
            let TableRows::Metrics(b) = rows else {
                unreachable!("partition table is metrics")
            };
            metrics.for_each(|m| b.append(h, &m, time, meta.received_at));
            found as usize
        })?;
        Ok(found)
    }

    /// Appends the rows `fill` writes (returning how many) to the partition `key`, opening it
    /// when needed, then flushes what the row group and byte bounds call for. `time` is the
    /// rows' time, as their table's time column holds it when they have one.
    fn append_rows(
        &mut self,
        key: Key,
        time: Micros,
        weight: usize,
        fill: impl FnOnce(&mut TableRows) -> usize,
    ) -> Result<(), StoreError> {
        let table = key.0;
        self.appends += 1;
        let mut added = 0;
        let p = self.partitions.get_or_insert_with(key, || {
            added = PARTITION_OVERHEAD_BYTES;
            PartitionState {
                rows: TableRows::empty(table),
                buffered_rows: 0,
                buffered_bytes: PARTITION_OVERHEAD_BYTES,
                since: Instant::now(),
                wal_first: None,
                wal_last: None,
                newest: Micros::MIN,
                behind: 0,
                late: None,
            }
        });
        if let Some(position) = self.wal_position {
            p.wal_first.get_or_insert(position);
            p.wal_last = Some(position);
        }
        let behind = time < p.newest;
        if behind {
            p.behind += 1;
        } else {
            p.newest = time;
        }
        let rows = if behind && self.late_apart && p.wal_first.is_none() {
            fill(p.late.get_or_insert_with(|| TableRows::empty(table)))
        } else {
            fill(&mut p.rows)
        };
        let weight = (weight as f64 * self.scale[table.index()]) as usize;
        p.buffered_rows += rows;
        p.buffered_bytes += weight;
        let full = p.buffered_rows >= self.opts.row_group_rows;
        self.buffered_bytes += weight + added;
        self.stats.rows[table.index()] += rows as u64;
        // The row is kept whatever happens to its file: a failed write holds rows, it does not
        // drop them.
        let mut first_error = None;
        let mut note = |r: Result<(), StoreError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        let mut flushed = full;
        if full {
            note(self.flush_partition(key));
        }
        while self.buffered_bytes > self.opts.max_buffered_bytes {
            flushed = true;
            let Some(largest) = self
                .partitions
                .iter()
                .max_by_key(|(_, p)| p.buffered_bytes)
                .map(|(k, _)| *k)
            else {
                break;
            };
            // A flush takes the rows out of the builders whatever happens to the disk.
            note(self.flush_partition(largest));
        }
        // Rows are held in the files only by a flush.
        if flushed {
            note(self.trim_held());
        }
        if self.opts.rotate_age.is_some() && self.appends.is_multiple_of(AGE_CHECK_EVERY) {
            note(self.rotate_aged());
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes every file whose oldest row is older than `rotate_age`, after handing this
    /// writer's rows of that age to their files. The writer checks this every few thousand
    /// appends; a server also calls it from a timer so that a quiet spool still publishes.
    pub fn rotate_aged(&mut self) -> Result<(), StoreError> {
        let Some(age) = self.opts.rotate_age else {
            return Ok(());
        };
        if self.holding {
            return Ok(());
        }
        let now = Instant::now();
        let mut aged: Vec<Key> = self
            .partitions
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= age)
            .map(|(k, _)| *k)
            .collect();
        aged.sort_unstable();
        let mut first_error = None;
        for key in aged {
            if let Err(e) = self.flush_partition(key) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.publish_idle(age) {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes everything buffered so far, with every file of the spool's other writers not
    /// in their hands at the moment, leaving the writer usable (a server calls this before
    /// deleting the WAL segment the rows came from). Every file is tried, even after one
    /// fails: the others may still fit; a failure leaves the writer holding.
    pub fn publish_all(&mut self) -> Result<(), StoreError> {
        let holding = self.holding;
        let flushed = self.flush_all();
        if holding {
            return flushed;
        }
        self.holding = false;
        let published = self.publish_idle(Duration::ZERO);
        let result = flushed.and(published);
        if result.is_err() {
            self.holding = true;
        }
        result
    }

    /// What was written so far.
    pub fn stats(&self) -> &SpoolStats {
        &self.stats
    }

    /// Hands everything buffered to the spool's files (a holding writer tries the disk once
    /// more) and returns what this writer wrote. The last of the writers sharing
    /// [`SpoolOptions::files`] to finish publishes every file; the files it publishes are in its
    /// stats.
    pub fn finish(mut self) -> Result<SpoolStats, StoreError> {
        self.holding = false;
        let flushed = self.flush_all();
        self.left = true;
        let last = self.opts.files.leave(self.opts.retry_bytes.unwrap_or(0));
        flushed?;
        if last {
            self.holding = false;
            self.publish_idle(Duration::ZERO)?;
        }
        Ok(std::mem::take(&mut self.stats))
    }

    /// Hands every buffered partition to its file, in partition order. A partition whose file
    /// another writer is filling at the moment (writers finishing together walk the same
    /// partitions) waits for a later pass rather than opening a second file; the last pass
    /// opens one.
    fn flush_all(&mut self) -> Result<(), StoreError> {
        let mut keys: Vec<Key> = self.partitions.keys().copied().collect();
        keys.sort_unstable();
        let mut first_error = None;
        for _ in 0..FLUSH_PASSES {
            let mut busy = Vec::new();
            for key in keys {
                match self.flush_partition_unless_busy(key, true) {
                    Ok(true) => {}
                    Ok(false) => busy.push(key),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            keys = busy;
            if keys.is_empty() {
                break;
            }
            std::thread::yield_now();
        }
        for key in keys {
            if let Err(e) = self.flush_partition(key) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Publishes the spool's idle files whose oldest row is at least `age` old, writing their
    /// held row groups first; a no-op while holding. Every file is tried; a failure leaves its
    /// file in the pool with its rows held, and the writer holding.
    fn publish_idle(&mut self, age: Duration) -> Result<(), StoreError> {
        if self.holding {
            return Ok(());
        }
        let files = self.opts.files.clone();
        let mut first_error = None;
        let mut ready = Vec::new();
        for (key, mut out) in files.take_aged(age) {
            match self.write_out(&mut out.file) {
                Ok(()) => ready.push((key, out)),
                Err(e) => {
                    first_error.get_or_insert(e);
                    self.put_back(key, out);
                }
            }
        }
        let ready: Vec<((Key, Instant), OpenFile)> = ready
            .into_iter()
            .filter_map(|(key, out)| {
                if out.file.is_empty() {
                    self.put_back(key, out);
                    None
                } else {
                    Some(((key, out.since), out.file))
                }
            })
            .collect();
        for ((key, since), mut file, published) in publish_many(ready, self.opts.fsync) {
            match published {
                Ok(f) => {
                    files.published(&file.release_published(), file.wal_ranges());
                    files.closed(key);
                    self.stats.files.push(f.of(key.0));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    self.abandon(&mut file);
                    self.put_back(key, CheckedOut { file, since });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Turns the partition's buffered rows into one sorted row group of its file (publishing
    /// the file if that makes it due for rotation) and forgets the partition.
    fn flush_partition(&mut self, key: Key) -> Result<(), StoreError> {
        self.flush_partition_unless_busy(key, false).map(|_| ())
    }

    /// [`SpoolWriter::flush_partition`]; with `unless_busy`, does nothing and answers `false`
    /// when every file of the partition is in another writer's hands. The rows leave the
    /// builders whatever happens to the disk: a failed write holds them in their file.
    fn flush_partition_unless_busy(&mut self, key: Key, unless_busy: bool) -> Result<bool, StoreError> {
        if !self.partitions.index.contains_key(&key) {
            return Ok(true);
        }
        let files = self.opts.files.clone();
        let slot = files.check_out(key);
        if unless_busy && matches!(slot, Slot::Busy) {
            return Ok(false);
        }
        let Some(mut p) = self.partitions.remove(&key) else {
            return Ok(true);
        };
        self.buffered_bytes -= p.buffered_bytes;
        let (table, partition) = key;
        let mut out = match slot {
            Slot::Idle(out) => *out,
            Slot::Busy | Slot::Free => {
                files.claim(key);
                let dir = self.opts.root.join(table.name()).join(partition.dir());
                let seq = self.opts.sequence.fetch_add(1, Ordering::Relaxed);
                let name = format!("{}-{}-{seq:06}.parquet", self.opts.node, self.opts.boot);
                let file = OpenFile::create(
                    &self.opts.root,
                    &dir,
                    &name,
                    table.schema(),
                    self.props[table.index()].clone(),
                    self.opts.row_group_rows,
                    self.opts.retry_bytes.is_some(),
                )
                .with_buffer_bytes(self.opts.max_buffered_bytes);
                CheckedOut { file, since: p.since }
            }
        };
        out.since = out.since.min(p.since);
        self.late_apart = self.opts.late_rows_apart && p.behind * LATE_APART_MAX_SHARE <= p.buffered_rows;
        let schema = table.schema();
        let batch = RecordBatch::try_new(schema.clone(), p.rows.finish()).map_err(StoreError::from);
        let late = p
            .late
            .take()
            .map(|mut rows| RecordBatch::try_new(schema, rows.finish()).map_err(StoreError::from))
            .transpose();
        if let (Ok(b), Ok(l)) = (&batch, &late) {
            let weighed = p.buffered_bytes.saturating_sub(PARTITION_OVERHEAD_BYTES);
            if p.buffered_rows >= SCALE_MIN_ROWS && weighed > 0 {
                let held =
                    (b.get_array_memory_size() + l.as_ref().map_or(0, |l| l.get_array_memory_size())) as f64;
                let scale = &mut self.scale[table.index()];
                *scale = (*scale * held / weighed as f64).clamp(1.0, 16.0);
            }
        }
        let sorted = batch
            .and_then(sort_by_time)
            .and_then(|b| Ok((b, late?.map(sort_by_time).transpose()?)));
        let (batch, late) = match sorted {
            Ok(sorted) => sorted,
            Err(e) => {
                self.stats.lost_rows += p.buffered_rows as u64;
                self.put_back(key, out);
                return Err(e);
            }
        };
        // Positions given with no stream named still pin (in the unnamed stream), but are not
        // recorded in the file.
        let wal = match (p.wal_first, p.wal_last) {
            (Some(first), Some(last)) => Some(WalRange {
                stream: self.wal_stream.clone().unwrap_or_else(|| Arc::from("")),
                first,
                last,
            }),
            _ => None,
        };
        // The late rows (never with a WAL range) weigh their share of the rows.
        let weight = p.buffered_bytes - PARTITION_OVERHEAD_BYTES;
        let late_rows = late.as_ref().map_or(0, RecordBatch::num_rows);
        let late_weight = weight * late_rows / p.buffered_rows.max(1);
        let group = Group {
            batch,
            weight: weight - late_weight,
            writer: self.id,
        };
        files.added(self.id, group.rows(), group.weight, wal.as_ref());
        out.file.add(group, wal);
        if let Some(batch) = late {
            let group = Group {
                batch,
                weight: late_weight,
                writer: self.id,
            };
            files.added(self.id, group.rows(), group.weight, None);
            out.file.add(group, None);
        }
        self.settle(key, out).map(|()| true)
    }

    /// After rows were added to a checked-out file: unless holding, writes them and publishes
    /// the file if it is due for rotation; the file goes back to the pool otherwise, and the
    /// pool's least recently used file is published when too many hold a descriptor.
    fn settle(&mut self, key: Key, mut out: CheckedOut) -> Result<(), StoreError> {
        if self.holding {
            self.put_back(key, out);
            return Ok(());
        }
        if let Err(e) = self.write_out(&mut out.file) {
            self.put_back(key, out);
            return Err(e);
        }
        if out.file.rows() >= self.opts.rotate_rows || out.file.bytes() >= self.opts.rotate_bytes {
            return self.publish_out(key, out);
        }
        match self.opts.files.check_in(key, out, self.opts.max_open_files) {
            Some((lru_key, lru)) => self.publish_out(lru_key, lru),
            None => Ok(()),
        }
    }

    /// Writes a checked-out file's pending row groups; a failure abandons what it has on disk
    /// (its rows are held to be written again) and puts the writer on hold.
    fn write_out(&mut self, file: &mut OpenFile) -> Result<(), StoreError> {
        let written = file.write_pending(self.opts.fsync);
        for (_, rows) in file.take_undecodable() {
            self.stats.lost_rows += rows;
        }
        match written {
            Ok(released) => {
                self.opts.files.released(&released);
                Ok(())
            }
            Err(e) => {
                self.abandon(file);
                Err(e)
            }
        }
    }

    /// Writes and publishes a checked-out file: its rows leave memory and its WAL ranges are
    /// released. A failure leaves it in the pool, abandoned, with its rows held.
    fn publish_out(&mut self, key: Key, mut out: CheckedOut) -> Result<(), StoreError> {
        if let Err(e) = self.write_out(&mut out.file) {
            self.put_back(key, out);
            return Err(e);
        }
        if out.file.is_empty() {
            self.put_back(key, out);
            return Ok(());
        }
        match out.file.publish(self.opts.fsync) {
            Ok(f) => {
                let files = &self.opts.files;
                files.published(&out.file.release_published(), out.file.wal_ranges());
                files.closed(key);
                self.stats.files.push(f.of(key.0));
                Ok(())
            }
            Err(e) => {
                self.abandon(&mut out.file);
                self.put_back(key, out);
                Err(e)
            }
        }
    }

    /// After a failed write: the file's temporaries are removed, its copies wait to be written
    /// again, rows with no copy are counted lost, and the writer holds.
    fn abandon(&mut self, file: &mut OpenFile) {
        self.holding = true;
        for (_, rows) in file.abandon() {
            self.stats.lost_rows += rows;
        }
    }

    /// Returns a checked-out file to the pool without evicting another; a file left with no
    /// row (abandoned with nothing to write again) is dropped instead.
    fn put_back(&mut self, key: Key, out: CheckedOut) {
        let files = &self.opts.files;
        if out.file.is_empty() {
            files.unpin(out.file.wal_ranges());
            files.closed(key);
            return;
        }
        let evicted = files.check_in(key, out, usize::MAX);
        debug_assert!(evicted.is_none());
    }

    /// Keeps the row groups held in memory within the retry budget of the writers sharing the
    /// spool's files ([`SpoolOptions::retry_bytes`] each, the bound of each one's own rows too:
    /// a writer filling the files alone holds no more than when it had files of its own): a
    /// writer that can write publishes the file holding the most of its rows; a holding one
    /// encodes that file's pending batches in memory, and only when that is not enough drops
    /// its oldest row group (the copy of a row group already on disk first costs nothing yet),
    /// counted lost.
    fn trim_held(&mut self) -> Result<(), StoreError> {
        let Some(own) = self.opts.retry_bytes else {
            return Ok(());
        };
        let files = self.opts.files.clone();
        let mut first_error = None;
        while files.over_retry_budget(self.id, own) {
            let Some((key, mut out)) = files.take_most_held(self.id) else {
                break;
            };
            if !self.holding {
                if let Err(e) = self.publish_out(key, out) {
                    first_error.get_or_insert(e);
                }
                continue;
            }
            // Rows encoded in memory take a tenth of the room: drop only what does not fit so.
            match out.file.encode_pending() {
                Ok(shed) if !shed.is_empty() => {
                    files.released(&shed);
                    self.put_back(key, out);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            let Some((released, lost)) = out.file.drop_oldest() else {
                self.put_back(key, out);
                break;
            };
            files.released(&[released]);
            if lost {
                self.stats.lost_rows += released.rows;
            }
            self.put_back(key, out);
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for SpoolWriter {
    /// A writer dropped without `finish` (an error) stops counting as a sharer of the spool's
    /// files; its buffered rows are not written.
    fn drop(&mut self) {
        if !self.left {
            self.opts.files.leave(self.opts.retry_bytes.unwrap_or(0));
        }
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
    // Column by column, each unsorted column freed as soon as its sorted copy is made: the
    // sort holds the batch and one column more, not two batches.
    let (schema, mut columns, _) = batch.into_parts();
    for c in &mut columns {
        *c = match take_string_list(c.as_ref(), indices.values()) {
            Some(taken) => taken?,
            None => take(c.as_ref(), &indices, None)?,
        };
    }
    Ok(RecordBatch::try_new(schema, columns)?)
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
        // Its own open files, the sequence shared: two files in one partition.
        let mut b = SpoolWriter::create(SpoolOptions {
            sequence: shared,
            files: Arc::new(OpenFiles::default()),
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
            let meta = crate::testutil::parquet_metadata(&f.path);
            for rg in meta.row_groups() {
                assert!(rg.num_rows() <= 10);
                assert_eq!(rg.sorting_columns().map(|c| c.len()), Some(1));
            }
            for times in file_row_group_times(&f.path) {
                assert!(times.is_sorted(), "sorted within a row group");
            }
        }
    }

    #[test]
    fn memory_bound_flushes_the_largest_partition_into_its_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let budget = PARTITION_OVERHEAD_BYTES + 3 * (ROW_OVERHEAD_BYTES + 1);
        let o = SpoolOptions {
            max_buffered_bytes: budget,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        for i in 0..7 {
            w.append(&line(Record::Http(http(at(i))), b"x"), &RecordMeta::default())
                .unwrap();
            assert!(w.buffered_bytes <= budget);
        }
        // The flushes went to the partition's one file, still open.
        assert!(w.stats().files.is_empty());
        let stats = w.finish().unwrap();
        assert_eq!(stats.files.len(), 1);
        assert_eq!((stats.files[0].rows, stats.rows(Table::Requests)), (7, 7));
        let meta = crate::testutil::parquet_metadata(&stats.files[0].path);
        // Flushes this small were spilled, and became one sorted row group at publish.
        assert_eq!(meta.num_row_groups(), 1);
        let batch = &read_table(dir.path(), Table::Requests).unwrap()[0];
        let t = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert!(t.values().windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_flush_of_a_quarter_of_the_builder_budget_is_a_row_group_not_a_spill() {
        let dir = tempfile::tempdir().unwrap();
        let row = ROW_OVERHEAD_BYTES + 1;
        let o = SpoolOptions {
            max_buffered_bytes: PARTITION_OVERHEAD_BYTES + 40 * row,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        for i in 0..100 {
            w.append(&line(Record::Http(http(at(i))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.files.len(), 1);
        let meta = crate::testutil::parquet_metadata(&stats.files[0].path);
        // Two flushes of 41 rows (over a quarter of the budget) went straight to row groups;
        // the last 18 rows were spilled and became a row group at publish.
        let rows: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(rows, [41, 41, 18]);
    }

    /// Lines hopping between many more hours than fit in the budget: each partition still gets
    /// one file, and every row is in it once.
    #[test]
    fn shuffled_hours_make_one_file_per_partition() {
        let dir = tempfile::tempdir().unwrap();
        let hours = 300i64;
        let per_hour = 20i64;
        let o = SpoolOptions {
            // Room for a few dozen partitions' rows at a time.
            max_buffered_bytes: 40 * PARTITION_OVERHEAD_BYTES,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        let mut times: Vec<i64> = (0..hours * per_hour)
            .map(|i| (i % hours) * 3_600_000 + i / hours)
            .collect();
        // A deterministic shuffle (an LCG's order).
        let mut state = 7u64;
        for i in (1..times.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            times.swap(i, (state >> 33) as usize % (i + 1));
        }
        for &t in &times {
            w.append(&line(Record::Http(http(at(t))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.files.len(), hours as usize);
        let mut got: Vec<i64> = read_table(dir.path(), Table::Requests)
            .unwrap()
            .iter()
            .flat_map(|b| {
                let t = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                t.values().to_vec()
            })
            .collect();
        got.sort_unstable();
        let mut want: Vec<i64> = times.iter().map(|&t| at(t)).collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn writers_sharing_options_fill_one_file_per_partition() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            max_buffered_bytes: PARTITION_OVERHEAD_BYTES + ROW_OVERHEAD_BYTES + 1,
            ..opts(dir.path())
        };
        let mut a = SpoolWriter::create(o.clone()).unwrap();
        let mut b = SpoolWriter::create(o).unwrap();
        for i in 0..5 {
            a.append(&line(Record::Http(http(at(i))), b"a"), &RecordMeta::default())
                .unwrap();
            b.append(&line(Record::Http(http(at(i))), b"b"), &RecordMeta::default())
                .unwrap();
        }
        let sa = a.finish().unwrap();
        assert!(sa.files.is_empty(), "the last writer to finish publishes");
        let sb = b.finish().unwrap();
        assert_eq!(sb.files.len(), 1);
        assert_eq!(sb.files[0].rows, 10);
    }

    #[test]
    fn past_max_open_files_the_least_recently_used_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            // Every row a row group: each file opens its Parquet file (a descriptor) at once.
            row_group_rows: 1,
            max_open_files: 2,
            ..opts(dir.path())
        };
        let mut w = SpoolWriter::create(o).unwrap();
        let hour = 3_600_000;
        for t in [0, hour, 1, 2 * hour, 2 * hour + 1] {
            w.append(&line(Record::Tcp(tcp(at(t))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        // The third hour's file evicted the second's (hour 0 was used after it).
        assert_eq!(w.stats().files.len(), 1);
        assert!(
            w.stats().files[0].path.to_string_lossy().contains("hour=02"),
            "{:?}",
            w.stats().files
        );
        let stats = w.finish().unwrap();
        assert_eq!(stats.files.len(), 3);
        assert_eq!(stats.files.iter().map(|f| f.rows).sum::<u64>(), 5);
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

    /// The times (first column) of each row group of a file, in its order of row groups.
    fn file_row_group_times(path: &Path) -> Vec<Vec<Micros>> {
        let groups = crate::testutil::parquet_metadata(path).num_row_groups();
        (0..groups)
            .map(|rg| {
                let file = std::fs::File::open(path).unwrap();
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .with_row_groups(vec![rg])
                    .build()
                    .unwrap();
                let mut times = Vec::new();
                for batch in reader {
                    let batch = batch.unwrap();
                    let t = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .unwrap();
                    times.extend(t.values().iter().copied());
                }
                times
            })
            .collect()
    }

    /// Each row group's times, file by file (in name order) of `table`.
    fn row_group_times(root: &Path, table: Table) -> Vec<Vec<Micros>> {
        let mut files: Vec<PathBuf> = walk(&root.join(table.name()));
        files.sort();
        files.iter().flat_map(|f| file_row_group_times(f)).collect()
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.push(path);
            }
        }
        out
    }

    /// Sixteen rows of one hour, the fourth and the tenth earlier than the rows before them.
    const NEARLY_IN_ORDER: [i64; 16] = [0, 1, 2, 0, 3, 4, 5, 6, 7, 5, 8, 9, 10, 11, 12, 13];

    /// A writer keeping late rows apart, in row groups of sixteen rows.
    fn late_apart_writer(root: &Path) -> SpoolWriter {
        SpoolWriter::create(SpoolOptions {
            row_group_rows: 16,
            late_rows_apart: true,
            ..opts(root)
        })
        .unwrap()
    }

    /// Appends a request at each of `times` (milliseconds after [`at`]'s origin).
    fn append_at(w: &mut SpoolWriter, times: impl IntoIterator<Item = i64>) {
        for t in times {
            w.append(&line(Record::Http(http(at(t))), b"x"), &RecordMeta::default())
                .unwrap();
        }
    }

    #[test]
    fn late_rows_apart_leave_the_rest_in_order_and_lose_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = late_apart_writer(dir.path());
        append_at(&mut w, NEARLY_IN_ORDER);
        assert_eq!(w.finish().unwrap().rows(Table::Requests), 16);
        // The fourteen in order make a row group as they came; the two late ones, spilled,
        // one of their own.
        let groups = row_group_times(dir.path(), Table::Requests);
        let late = vec![at(0), at(5)];
        let in_order: Vec<Micros> = (0..14).map(at).collect();
        assert_eq!(groups, [in_order, late]);
    }

    #[test]
    fn rows_out_of_order_at_large_turn_late_rows_apart_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = late_apart_writer(dir.path());
        // Descending: the first row, then fifteen late ones.
        append_at(&mut w, (85..=100).rev());
        // Nearly in order, after a flush that found fifteen rows of sixteen late: kept together.
        append_at(&mut w, NEARLY_IN_ORDER);
        w.finish().unwrap();
        let mut together: Vec<Micros> = NEARLY_IN_ORDER.into_iter().map(at).collect();
        together.sort_unstable();
        // The late fifteen are a row group of their own, and the one before them a spill,
        // written when the file is published.
        assert_eq!(
            row_group_times(dir.path(), Table::Requests),
            [(85..100).map(at).collect(), together, vec![at(100)]]
        );
    }

    #[test]
    fn a_writer_given_wal_positions_keeps_late_rows_with_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = late_apart_writer(dir.path());
        w.set_wal_stream("s");
        for (position, t) in NEARLY_IN_ORDER.into_iter().enumerate() {
            w.set_wal_position(position as u64);
            w.append(&line(Record::Http(http(at(t))), b"x"), &RecordMeta::default())
                .unwrap();
        }
        w.finish().unwrap();
        let mut all: Vec<Micros> = NEARLY_IN_ORDER.into_iter().map(at).collect();
        all.sort_unstable();
        assert_eq!(row_group_times(dir.path(), Table::Requests), [all]);
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
    fn a_failed_file_is_written_again_from_the_encoded_copies_of_its_row_groups() {
        let options = |root: &Path| SpoolOptions {
            row_group_rows: 1000,
            ..retrying(root, 64 << 20)
        };
        let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
        let [clean, failing, holding] = dirs.each_ref().map(|d| d.path());
        let mut w = SpoolWriter::create(options(clean)).unwrap();
        append_requests(&mut w, 3000).unwrap();
        w.finish().unwrap();
        // A holding writer keeps its three row groups as batches: what they weigh.
        let mut probe = SpoolWriter::create(options(holding)).unwrap();
        probe.hold();
        append_requests(&mut probe, 3000).unwrap();
        let batches = probe.opts.files.held_bytes();

        let mut w = SpoolWriter::create(options(failing)).unwrap();
        append_requests(&mut w, 3000).unwrap();
        let copies = w.opts.files.held_bytes();
        assert!(
            copies * 4 < batches,
            "the copies of written row groups weigh {copies}, the batches {batches}"
        );
        let hour = failing.join("requests").join(Partition::of(at(0)).dir());
        std::fs::rename(&hour, failing.join("moved")).unwrap();
        assert!(w.publish_all().is_err());
        assert_eq!(w.unpublished_rows(), 3000);
        assert_eq!(
            w.opts.files.held_bytes(),
            copies,
            "the copies wait encoded to be written again"
        );
        w.resume();
        w.publish_all().unwrap();
        assert_eq!(w.stats().lost_rows, 0);
        assert_eq!(
            read_table(failing, Table::Requests).unwrap(),
            read_table(clean, Table::Requests).unwrap(),
            "the same rows as a file that never failed"
        );
    }

    #[test]
    fn a_holding_writer_encodes_its_rows_in_memory_before_it_drops_any() {
        let options = |root: &Path, retry_bytes| SpoolOptions {
            row_group_rows: 1000,
            ..retrying(root, retry_bytes)
        };
        let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
        let [clean, held, probe] = dirs.each_ref().map(|d| d.path());
        let mut w = SpoolWriter::create(options(clean, usize::MAX)).unwrap();
        append_requests(&mut w, 10_000).unwrap();
        w.finish().unwrap();
        let mut p = SpoolWriter::create(options(probe, usize::MAX)).unwrap();
        p.hold();
        append_requests(&mut p, 3000).unwrap();
        let three_batches = p.opts.files.held_bytes();

        // Ten row groups' worth of rows, held within the weight of three batches.
        let mut w = SpoolWriter::create(options(held, three_batches)).unwrap();
        w.hold();
        append_requests(&mut w, 10_000).unwrap();
        assert!(w.opts.files.held_bytes() <= three_batches);
        assert_eq!((w.unpublished_rows(), w.stats().lost_rows), (10_000, 0));
        w.resume();
        w.publish_all().unwrap();
        assert_eq!(
            read_table(held, Table::Requests).unwrap(),
            read_table(clean, Table::Requests).unwrap(),
            "the same rows as a writer that never held"
        );
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
        let group = probe.opts.files.held_bytes();
        drop(probe);
        let mut w = SpoolWriter::create(retrying(dir.path(), 3 * group)).unwrap();
        w.hold();
        append_requests(&mut w, 100).unwrap();
        let held = w.opts.files.held_bytes();
        assert!(held <= 3 * group, "{held} > {}", 3 * group);
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

    /// What a holding writer keeps in memory for 10 requests (in a spool of its own under `dir`).
    fn ten_rows_held(dir: &Path) -> usize {
        let mut probe = SpoolWriter::create(retrying(&dir.join("probe"), usize::MAX)).unwrap();
        probe.hold();
        append_requests(&mut probe, 10).unwrap();
        probe.opts.files.held_bytes()
    }

    #[test]
    fn a_writer_filling_shared_files_alone_holds_no_more_than_its_share() {
        let dir = tempfile::tempdir().unwrap();
        let group = ten_rows_held(dir.path());
        let o = retrying(dir.path(), 3 * group);
        // An idle second writer doubles the writers' budget, not this one's share of it.
        let idle = SpoolWriter::create(o.clone()).unwrap();
        let mut w = SpoolWriter::create(o).unwrap();
        for n in (10..=100).step_by(10) {
            append_requests(&mut w, 10).unwrap();
            let held = w.opts.files.held_bytes();
            assert!(held <= 3 * group, "{held} > {} after {n} rows", 3 * group);
        }
        idle.finish().unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(stats.lost_rows, 0);
        assert_eq!(published_rows(dir.path(), Table::Requests), 100);
    }

    #[test]
    fn a_healthy_writer_over_its_retry_bound_publishes_early() {
        let dir = tempfile::tempdir().unwrap();
        let group = ten_rows_held(dir.path());
        let mut w = SpoolWriter::create(retrying(dir.path(), 3 * group)).unwrap();
        append_requests(&mut w, 100).unwrap();
        assert!(w.opts.files.held_bytes() <= 3 * group);
        assert!(!w.stats().files.is_empty(), "files were published before finish");
        let stats = w.finish().unwrap();
        assert_eq!(stats.lost_rows, 0);
        assert_eq!(published_rows(dir.path(), Table::Requests), 100);
    }
}
