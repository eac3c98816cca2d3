//! Compaction: the published files of one partition (`<table>/date=YYYY-MM-DD/hour=HH`) in,
//! one Parquet file out: the same rows, in the order of their files (by name) and of their rows,
//! in row groups of [`CompactOptions::row_group_rows`] rows each sorted by time (stably, as the
//! spool writer sorts its own), with the table's schema and the spool file properties.
//!
//! A partition is compacted in three steps, and the rename is where it commits:
//!
//! 1. the rows of its files are written to a hidden `.<name>.compacted.parquet.tmp`, whose footer
//!    names the inputs ([`META_COMPACTED_FROM`]) and carries the union of their WAL position
//!    records ([`META_WAL_POSITIONS`]), so that a replay skips their rows as before;
//! 2. the temporary is fsynced, renamed to `<name>.compacted.parquet`, and the folder fsynced;
//! 3. the inputs are deleted, then the folder fsynced.
//!
//! A crash before the rename leaves only a temporary, which [`finish_pending`] removes (the
//! compaction is rolled back: the inputs are untouched). A crash after it leaves a published
//! compacted file beside some of its inputs: weir's readers ([`crate::table_files`], the
//! `windows` reader, WAL replay) skip a file that a compacted file in its folder names, and
//! [`finish_pending`] deletes it (the compaction is rolled forward). Readers that list the
//! folder themselves (DuckDB, pyarrow, Spark) see those inputs' rows twice until then.
//!
//! Compactions, the start of `serve` (which finishes them) and `weir spool check` take the
//! spool's [`SpoolLock`], one partition at a time, so that none of them lists a folder while
//! another deletes from it. A running `serve` takes no lock: it only adds files under new names,
//! and a compaction takes the files that exist when it lists the partition.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::StoreError;
use crate::file::sync_dir;
use crate::schema::{Table, TableSchema, SPOOL_FORMAT_VERSION};
use crate::wal::{META_POSITION, META_RANGES_PREFIX, META_STREAM};
use crate::windows::WINDOWS;

/// How a compacted file's name ends; no writer's file name does (theirs end in a sequence
/// number), so a file is known to be compacted by its name alone.
pub const COMPACTED_SUFFIX: &str = ".compacted.parquet";

/// The footer key of a compacted file naming its inputs, one file name a line: while any of
/// them is still in the folder, it is superseded.
pub const META_COMPACTED_FROM: &str = "weir.compacted_from";

/// The footer key of a compacted file holding the WAL position records of its inputs, one
/// `<source file name>\t<stream>\t<first>-<last>` a line, the source being the file that first
/// published those rows (see [`WalRecord`]).
pub const META_WAL_POSITIONS: &str = "weir.wal_positions";

/// The fail point of crash tests: with `WEIR_CRASH_IN_COMPACTION=STEP` in the environment a
/// compaction aborts the process (as a `kill -9` would stop it) at STEP: `written` (the
/// temporary is complete and fsynced, not yet renamed), `published` (renamed, no input deleted
/// yet) or `deleted` (the first input deleted, the others not).
pub const FAIL_POINT: &str = "WEIR_CRASH_IN_COMPACTION";

/// The lock file under the spool root (hidden: readers skip it).
const LOCK_FILE: &str = ".compact.lock";

/// The folders of the spool's tables that compaction knows.
pub fn table_names() -> Vec<&'static str> {
    Table::ALL.iter().map(|t| t.name()).chain([WINDOWS]).collect()
}

/// An advisory lock (`flock`) on `<spool>/.compact.lock`, released when dropped or when its
/// process dies, so a killed compaction never leaves the spool locked.
#[derive(Debug)]
pub struct SpoolLock {
    _lock: Option<nix::fcntl::Flock<File>>,
}

impl SpoolLock {
    /// Takes the lock exclusively (to compact or finish compactions), waiting for its holder;
    /// `on_wait` is called once before waiting. A spool folder that does not exist yet needs no
    /// lock (there is nothing to compact).
    pub fn exclusive(spool: &Path, on_wait: impl FnOnce()) -> Result<SpoolLock, StoreError> {
        SpoolLock::take(spool, true, on_wait)
    }

    /// Takes the lock shared (to read the spool with no compaction deleting files meanwhile),
    /// waiting for an exclusive holder. A spool this process cannot write is read unlocked.
    pub fn shared(spool: &Path, on_wait: impl FnOnce()) -> Result<SpoolLock, StoreError> {
        SpoolLock::take(spool, false, on_wait)
    }

    fn take(spool: &Path, exclusive: bool, on_wait: impl FnOnce()) -> Result<SpoolLock, StoreError> {
        use nix::errno::Errno;
        use nix::fcntl::{Flock, FlockArg};
        if !spool.is_dir() {
            return Ok(SpoolLock { _lock: None });
        }
        let path = spool.join(LOCK_FILE);
        let file = match File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if !exclusive => match File::open(&path) {
                Ok(f) => f,
                Err(_) => {
                    let _ = e;
                    return Ok(SpoolLock { _lock: None });
                }
            },
            Err(e) => return Err(StoreError::io("open", &path)(e)),
        };
        let (now, wait) = if exclusive {
            (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
        } else {
            (FlockArg::LockSharedNonblock, FlockArg::LockShared)
        };
        let lock_err = |e: Errno| StoreError::io("lock", &path)(std::io::Error::from(e));
        let file = match Flock::lock(file, now) {
            Ok(lock) => return Ok(SpoolLock { _lock: Some(lock) }),
            Err((file, Errno::EWOULDBLOCK)) => file,
            Err((_, e)) => return Err(lock_err(e)),
        };
        on_wait();
        let mut file = file;
        loop {
            match Flock::lock(file, wait) {
                Ok(lock) => return Ok(SpoolLock { _lock: Some(lock) }),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(lock_err(e)),
            }
        }
    }
}

/// One partition folder of one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionDir {
    /// Its path relative to the spool root: `requests/date=2026-11-30/hour=14`.
    pub name: PathBuf,
    /// Its path.
    pub dir: PathBuf,
    /// The table's folder name (`requests`, ..., `windows`).
    pub table: &'static str,
}

/// Every `<table>/date=*/hour=*` folder under `spool`, in name order.
pub fn partitions(spool: &Path) -> Result<Vec<PartitionDir>, StoreError> {
    let mut out = Vec::new();
    for table in table_names() {
        for date in subdirs(&spool.join(table), "date=")? {
            for hour in subdirs(&date, "hour=")? {
                let name = hour
                    .strip_prefix(spool)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| hour.clone());
                out.push(PartitionDir {
                    name,
                    dir: hour,
                    table,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The folders in `dir` whose names start with `prefix`; none when `dir` does not exist.
fn subdirs(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let is_dir = entry
            .file_type()
            .map_err(StoreError::io("stat", entry.path()))?
            .is_dir();
        if is_dir && entry.file_name().to_string_lossy().starts_with(prefix) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Box<dyn Iterator<Item = std::io::Result<std::fs::DirEntry>>>, StoreError> {
    match std::fs::read_dir(dir) {
        Ok(d) => Ok(Box::new(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(StoreError::io("list", dir)(e)),
    }
}

/// The published Parquet files directly in `dir` (hidden files skipped), in name order.
fn published_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(['.', '_']) && name.ends_with(".parquet") {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `path` names a compacted file.
pub fn is_compacted(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(COMPACTED_SUFFIX))
}

/// The key-value metadata in the footer of the Parquet file at `path`.
pub(crate) fn footer(path: &Path) -> Result<Vec<KeyValue>, StoreError> {
    let file = File::open(path).map_err(StoreError::io("open", path))?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)?;
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    Ok(meta
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default())
}

fn find<'a>(kv: &'a [KeyValue], key: &str) -> Option<&'a str> {
    kv.iter().find(|e| e.key == key).and_then(|e| e.value.as_deref())
}

/// The files a compacted file's footer names as its inputs.
fn compacted_from(kv: &[KeyValue]) -> Vec<String> {
    find(kv, META_COMPACTED_FROM)
        .map(|v| v.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Drops from `files` every file that a compacted file of its folder (also in `files`) names as
/// an input: its rows are in that compacted file, which a crash kept from deleting it. Only
/// folders with a compacted file and another file beside it are looked at, so a spool without
/// unfinished compactions costs no read. A compacted file whose footer cannot be read
/// supersedes nothing (`weir spool check` names it damaged).
pub fn drop_superseded(files: &mut Vec<PathBuf>) {
    let mut per_dir: BTreeMap<&Path, usize> = BTreeMap::new();
    for f in files.iter() {
        if let Some(dir) = f.parent() {
            *per_dir.entry(dir).or_default() += 1;
        }
    }
    let mut gone: HashSet<PathBuf> = HashSet::new();
    for f in files.iter().filter(|f| is_compacted(f)) {
        let Some(dir) = f.parent() else { continue };
        if per_dir.get(dir).is_none_or(|&n| n < 2) {
            continue;
        }
        if let Ok(kv) = footer(f) {
            gone.extend(compacted_from(&kv).into_iter().map(|n| dir.join(n)));
        }
    }
    if !gone.is_empty() {
        files.retain(|f| !gone.contains(f));
    }
}

/// What an interrupted compaction left: published files whose rows a compacted file beside them
/// holds, and temporaries of compacted files never published.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Inputs of published compacted files, still in their folders.
    pub superseded: Vec<PathBuf>,
    /// `.*.compacted.parquet.tmp` files.
    pub temporaries: Vec<PathBuf>,
}

/// Finds what interrupted compactions left under `spool`, changing nothing.
pub fn pending(spool: &Path) -> Result<Pending, StoreError> {
    let mut out = Pending::default();
    for part in partitions(spool)? {
        pending_in(&part.dir, &mut out)?;
    }
    Ok(out)
}

fn pending_in(dir: &Path, out: &mut Pending) -> Result<(), StoreError> {
    for entry in read_dir(dir)? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(&format!("{COMPACTED_SUFFIX}.tmp")) {
            out.temporaries.push(entry.path());
        }
    }
    let files = published_files(dir)?;
    let mut kept = files.clone();
    drop_superseded(&mut kept);
    out.superseded
        .extend(files.into_iter().filter(|f| !kept.contains(f)));
    Ok(())
}

/// Finishes what interrupted compactions left under `spool` (the caller holds the
/// [`SpoolLock`] exclusively): deletes the inputs of every published compacted file (rolled
/// forward) and the temporaries of unpublished ones (rolled back). Returns what it removed.
pub fn finish_pending(spool: &Path, fsync: bool) -> Result<Pending, StoreError> {
    let mut all = Pending::default();
    for part in partitions(spool)? {
        finish_in(&part.dir, fsync, &mut all)?;
    }
    Ok(all)
}

/// [`finish_pending`] for the partition folder `dir` alone.
pub fn finish_partition(dir: &Path, fsync: bool) -> Result<Pending, StoreError> {
    let mut found = Pending::default();
    finish_in(dir, fsync, &mut found)?;
    Ok(found)
}

fn finish_in(dir: &Path, fsync: bool, all: &mut Pending) -> Result<(), StoreError> {
    let mut found = Pending::default();
    pending_in(dir, &mut found)?;
    if found == Pending::default() {
        return Ok(());
    }
    for path in found.superseded.iter().chain(&found.temporaries) {
        remove(path)?;
    }
    if fsync {
        sync_dir(dir)?;
    }
    all.superseded.extend(found.superseded);
    all.temporaries.extend(found.temporaries);
    Ok(())
}

/// Removes a file; one already gone is not an error.
fn remove(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove", path)(e)),
    }
}

/// The rows of one file that first published them hold the lines of WAL `stream` from `first`
/// to `last` (of their partition). A compacted file keeps the records of every file it holds
/// the rows of (see [`crate::wal::published_ranges`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalRecord {
    /// The name of the file that first published the rows (`<node>-<boot>-<seq>.parquet`).
    pub source: String,
    /// The WAL stream.
    pub stream: String,
    /// The first position of the range.
    pub first: u64,
    /// The last position of the range.
    pub last: u64,
}

/// `first-last` ranges, comma-separated; a bare number is a range from 0 (the records of
/// earlier versions).
fn parse_ranges(text: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    text.split(',').filter_map(|r| match r.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((0, r.parse().ok()?)),
    })
}

/// The WAL records of the file named `name` with footer `kv`: its own ranges (a writer's file)
/// or the records it carries (a compacted file).
pub fn wal_records(name: &str, kv: &[KeyValue]) -> Vec<WalRecord> {
    if let Some(lines) = find(kv, META_WAL_POSITIONS) {
        return lines
            .lines()
            .flat_map(|l| {
                let mut parts = l.split('\t');
                let (source, stream, ranges) = (parts.next(), parts.next(), parts.next());
                let (Some(source), Some(stream), Some(ranges)) = (source, stream, ranges) else {
                    return Vec::new();
                };
                parse_ranges(ranges)
                    .map(|(first, last)| WalRecord {
                        source: source.to_owned(),
                        stream: stream.to_owned(),
                        first,
                        last,
                    })
                    .collect()
            })
            .collect();
    }
    let mut out = Vec::new();
    if let (Some(stream), Some(last)) = (
        find(kv, META_STREAM),
        find(kv, META_POSITION).and_then(|p| p.parse().ok()),
    ) {
        out.push(WalRecord {
            source: name.to_owned(),
            stream: stream.to_owned(),
            first: 0,
            last,
        });
    }
    for e in kv {
        let (Some(stream), Some(value)) = (e.key.strip_prefix(META_RANGES_PREFIX), &e.value) else {
            continue;
        };
        out.extend(parse_ranges(value).map(|(first, last)| WalRecord {
            source: name.to_owned(),
            stream: stream.to_owned(),
            first,
            last,
        }));
    }
    out
}

/// Merges, of records with the same stream and the same writer (the source name less its
/// sequence number), the ranges that overlap or touch: all a replay reads, so the records of a
/// partition compacted again and again stay about as few as its writers.
fn merge_records(records: Vec<WalRecord>) -> Vec<WalRecord> {
    let mut by: BTreeMap<(String, String), Vec<WalRecord>> = BTreeMap::new();
    for r in records {
        let writer = r
            .source
            .rsplit_once('-')
            .map_or(r.source.as_str(), |(w, _)| w)
            .to_owned();
        by.entry((writer, r.stream.clone())).or_default().push(r);
    }
    let mut out = Vec::new();
    for (_, mut v) in by {
        v.sort_by_key(|r| (r.first, r.last));
        let mut merged: Vec<WalRecord> = Vec::with_capacity(v.len());
        for r in v {
            match merged.last_mut() {
                Some(m) if r.first <= m.last.saturating_add(1) => m.last = m.last.max(r.last),
                _ => merged.push(r),
            }
        }
        out.extend(merged);
    }
    out
}

/// How compacted files are written.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// zstd level (DESIGN's default 3).
    pub zstd_level: i32,
    /// Rows per row group (128 Ki, as the spool writer's).
    pub row_group_rows: usize,
    /// fsync the file and its folder (on; tests may turn it off).
    pub fsync: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            zstd_level: 3,
            row_group_rows: 128 * 1024,
            fsync: true,
        }
    }
}

/// A partition compacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The new file.
    pub path: PathBuf,
    /// The files it replaced (deleted).
    pub inputs: Vec<PathBuf>,
    /// Rows in it (the sum of its inputs').
    pub rows: u64,
    /// Bytes of the inputs.
    pub bytes_before: u64,
    /// Bytes of the new file.
    pub bytes_after: u64,
}

/// The schema and writer properties of a table's files, by folder name.
fn table_format(table: &str, opts: &CompactOptions) -> Result<(SchemaRef, WriterProperties), StoreError> {
    if table == WINDOWS {
        let props = crate::writer::spool_file_properties(WINDOWS, opts.zstd_level)?
            .set_max_row_group_row_count(Some(opts.row_group_rows))
            .build();
        return Ok((crate::windows::schema(), props));
    }
    let Some(t) = Table::ALL.iter().find(|t| t.name() == table) else {
        return Err(StoreError::InvalidOption {
            name: "table",
            reason: format!("{table:?} is not a spool table"),
        });
    };
    let props = crate::writer::writer_properties(*t, opts.zstd_level, opts.row_group_rows)?;
    Ok((t.schema(), props))
}

/// Checks that `spool` is of this build's format: compaction rewrites files, as writers do.
pub fn check_format(spool: &Path) -> Result<(), StoreError> {
    let path = spool.join("FORMAT");
    let found = std::fs::read_to_string(&path).map_err(StoreError::io("read", &path))?;
    if found.trim() == SPOOL_FORMAT_VERSION.to_string() {
        Ok(())
    } else {
        Err(StoreError::FormatMismatch {
            path,
            found,
            expected: SPOOL_FORMAT_VERSION,
        })
    }
}

/// Compacts one partition (the caller holds the [`SpoolLock`] exclusively): finishes what an
/// interrupted compaction left in it ([`finish_partition`]), then merges the published files it
/// holds into one, as the module describes. `None` when it holds fewer than two files.
pub fn compact_partition(
    part: &PartitionDir,
    opts: &CompactOptions,
) -> Result<Option<Compacted>, StoreError> {
    // Inputs of a compacted file still beside it would otherwise be merged with it: twice.
    finish_partition(&part.dir, opts.fsync)?;
    let inputs = published_files(&part.dir)?;
    if inputs.len() < 2 {
        return Ok(None);
    }
    let (schema, props) = table_format(part.table, opts)?;
    let mut names = Vec::with_capacity(inputs.len());
    let mut records = Vec::new();
    let mut bytes_before = 0;
    for input in &inputs {
        let name = file_name(input);
        records.extend(wal_records(&name, &footer(input)?));
        bytes_before += std::fs::metadata(input)
            .map_err(StoreError::io("stat", input))?
            .len();
        names.push(name);
    }
    let records = merge_records(records);

    let name = new_name(&part.dir);
    let path = part.dir.join(&name);
    let tmp_path = part.dir.join(format!(".{name}.tmp"));
    let mut tmp = Temporary(Some(tmp_path.clone()));
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp_path)
        .map_err(StoreError::io("create", &tmp_path))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
    let mut groups = RowGroups {
        schema: schema.clone(),
        rows_per_group: opts.row_group_rows.max(1),
        pending: Vec::new(),
        pending_rows: 0,
        rows: 0,
    };
    for input in &inputs {
        let file = File::open(input).map_err(StoreError::io("open", input))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
            .with_batch_size(8 * 1024)
            .build()?;
        for batch in reader {
            let batch = RecordBatch::try_new(schema.clone(), batch?.columns().to_vec()).map_err(|e| {
                StoreError::io("read", input)(std::io::Error::other(format!(
                    "not of the {} table's schema: {e}",
                    part.table
                )))
            })?;
            groups.push(batch, &mut writer)?;
        }
    }
    groups.finish(&mut writer)?;
    writer.append_key_value_metadata(KeyValue::new(META_COMPACTED_FROM.to_owned(), names.join("\n")));
    if !records.is_empty() {
        let lines: Vec<String> = records
            .iter()
            .map(|r| format!("{}\t{}\t{}-{}", r.source, r.stream, r.first, r.last))
            .collect();
        writer.append_key_value_metadata(KeyValue::new(META_WAL_POSITIONS.to_owned(), lines.join("\n")));
    }
    let file = writer.into_inner()?;
    if opts.fsync {
        file.sync_all().map_err(StoreError::io("fsync", &tmp_path))?;
    }
    let bytes_after = file.metadata().map_err(StoreError::io("stat", &tmp_path))?.len();
    drop(file);
    fail_point("written");
    std::fs::rename(&tmp_path, &path).map_err(StoreError::io("rename", &tmp_path))?;
    tmp.0 = None;
    if opts.fsync {
        sync_dir(&part.dir)?;
    }
    fail_point("published");
    for (i, input) in inputs.iter().enumerate() {
        remove(input)?;
        if i == 0 {
            fail_point("deleted");
        }
    }
    if opts.fsync {
        sync_dir(&part.dir)?;
    }
    Ok(Some(Compacted {
        path,
        inputs,
        rows: groups.rows,
        bytes_before,
        bytes_after,
    }))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A name for a compacted file in `dir` that no file there has: the time in microseconds and
/// the process id.
fn new_name(dir: &Path) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let pid = std::process::id();
    let mut n = 0u32;
    loop {
        let name = format!("c-{now}-{pid}-{n}{COMPACTED_SUFFIX}");
        if !dir.join(&name).exists() && !dir.join(format!(".{name}.tmp")).exists() {
            return name;
        }
        n += 1;
    }
}

/// A temporary removed when dropped unless renamed (set to `None`): a failed compaction leaves
/// nothing behind.
struct Temporary(Option<PathBuf>);

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Cuts the stream of input batches into row groups of `rows_per_group` rows, each sorted by
/// time (stably, as the spool writer sorts its own).
struct RowGroups {
    schema: SchemaRef,
    rows_per_group: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    rows: u64,
}

impl RowGroups {
    fn push(&mut self, batch: RecordBatch, w: &mut ArrowWriter<File>) -> Result<(), StoreError> {
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        while self.pending_rows >= self.rows_per_group {
            let all = arrow_select::concat::concat_batches(&self.schema, &self.pending)?;
            let rest = all.slice(self.rows_per_group, all.num_rows() - self.rows_per_group);
            self.write(all.slice(0, self.rows_per_group), w)?;
            self.pending_rows = rest.num_rows();
            self.pending = vec![rest];
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut ArrowWriter<File>) -> Result<(), StoreError> {
        if self.pending_rows > 0 {
            let all = arrow_select::concat::concat_batches(&self.schema, &self.pending)?;
            self.pending.clear();
            self.pending_rows = 0;
            self.write(all, w)?;
        }
        Ok(())
    }

    fn write(&mut self, group: RecordBatch, w: &mut ArrowWriter<File>) -> Result<(), StoreError> {
        let group = crate::writer::sort_by_time(group)?;
        self.rows += group.num_rows() as u64;
        w.write(&group)?;
        w.flush()?;
        Ok(())
    }
}

/// Aborts the process at compaction step `step` when [`FAIL_POINT`] names it.
fn fail_point(step: &str) {
    if std::env::var(FAIL_POINT).is_ok_and(|v| v == step) {
        eprintln!("weir: {FAIL_POINT}={step}: aborting the compaction");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{at, http, line};
    use crate::wal::published_ranges;
    use crate::{RecordMeta, SpoolOptions, SpoolWriter};
    use arrow_array::{Array, Int32Array, TimestampMicrosecondArray};
    use proptest::prelude::*;
    use weir_model::Record;

    const ROW_GROUP: usize = 7;

    fn options() -> CompactOptions {
        CompactOptions {
            row_group_rows: ROW_GROUP,
            fsync: false,
            ..CompactOptions::default()
        }
    }

    /// Publishes one `requests` file per element of `files` (rows `(ms, id)`: a request at
    /// `at(ms)` from client port `id`), from WAL stream `b1.w0` with growing positions. Returns
    /// the partition.
    fn write_files(root: &Path, boot: &str, files: &[Vec<(i64, i32)>]) -> PartitionDir {
        let mut w = SpoolWriter::create(SpoolOptions {
            fsync: false,
            row_group_rows: 5,
            ..SpoolOptions::new(root, "n1", boot)
        })
        .unwrap();
        w.set_wal_stream(format!("{boot}.w0"));
        let mut position = 0;
        for file in files {
            for &(ms, id) in file {
                let mut h = http(at(ms));
                h.client.port = Some(id as u16);
                w.set_wal_position(position);
                position += 1;
                w.append(&line(Record::Http(h), b"x"), &RecordMeta::default())
                    .unwrap();
            }
            w.publish_all().unwrap();
        }
        w.finish().unwrap();
        let mut parts = partitions(root).unwrap();
        assert_eq!(parts.len(), 1, "{parts:?}");
        parts.remove(0)
    }

    /// The `(ts, client_port)` of every row of `path`, in file order, and its row groups' sizes.
    fn rows_of(path: &Path) -> (Vec<(i64, i32)>, Vec<usize>) {
        let (mut rows, mut groups) = (Vec::new(), Vec::new());
        let file = File::open(path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        for g in builder.metadata().row_groups() {
            groups.push(g.num_rows() as usize);
        }
        assert_eq!(builder.schema().fields(), Table::Requests.schema().fields());
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let ts = batch
                .column(0)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            let port = batch.column_by_name("client_port").unwrap();
            let port = port.as_any().downcast_ref::<Int32Array>().unwrap();
            rows.extend((0..batch.num_rows()).map(|i| (ts.value(i), port.value(i))));
        }
        (rows, groups)
    }

    /// Rows of `requests` as weir's readers count them.
    fn request_rows(root: &Path) -> usize {
        crate::read_table(root, Table::Requests)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    fn names(files: &[PathBuf]) -> Vec<String> {
        files.iter().map(|f| file_name(f)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any partition of several files compacts into one file holding the inputs' rows in
        /// their order (files by name, rows as stored), cut into row groups of the asked size,
        /// each sorted by time with equal times in that order; its footer names the inputs and
        /// keeps what a replay reads of their WAL positions.
        #[test]
        fn a_partition_compacts_into_one_file_with_the_same_rows(
            files in prop::collection::vec(prop::collection::vec(0i64..40, 1..12), 2..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut id = 0;
            let files: Vec<Vec<(i64, i32)>> = files
                .into_iter()
                .map(|f| f.into_iter().map(|ms| { id += 1; (ms, id) }).collect())
                .collect();
            let part = write_files(dir.path(), "b1", &files);
            let inputs = published_files(&part.dir).unwrap();
            let mut before = Vec::new();
            for f in &inputs {
                before.extend(rows_of(f).0);
            }
            let positions = published_ranges(dir.path(), "n1", 1).unwrap();

            let done = compact_partition(&part, &options()).unwrap().unwrap();

            prop_assert_eq!(published_files(&part.dir).unwrap(), vec![done.path.clone()]);
            prop_assert_eq!(&done.inputs, &inputs);
            prop_assert_eq!(done.rows, before.len() as u64);
            let mut want = Vec::new();
            for chunk in before.chunks(ROW_GROUP) {
                let mut chunk = chunk.to_vec();
                chunk.sort_by_key(|&(ts, _)| ts);
                want.extend(chunk);
            }
            let (got, groups) = rows_of(&done.path);
            prop_assert_eq!(got, want);
            prop_assert!(groups[..groups.len() - 1].iter().all(|&n| n == ROW_GROUP), "{:?}", groups);
            let kv = footer(&done.path).unwrap();
            prop_assert_eq!(compacted_from(&kv), names(&inputs));
            prop_assert_eq!(find(&kv, "weir.table"), Some("requests"));
            prop_assert_eq!(published_ranges(dir.path(), "n1", 1).unwrap(), positions);
        }
    }

    /// Every state a crash can leave between the steps of a compaction: weir's readers count
    /// each row once in all of them, and `finish_pending` ends each one as the compaction would
    /// have (or as if it never started).
    #[test]
    fn every_interrupted_step_is_read_once_and_finished() {
        let files = vec![vec![(0, 1), (1, 2)], vec![(2, 3)], vec![(3, 4), (4, 5)]];
        for crash in ["written", "published", "deleted"] {
            let dir = tempfile::tempdir().unwrap();
            let part = write_files(dir.path(), "b1", &files);
            let inputs = published_files(&part.dir).unwrap();
            let saved: Vec<Vec<u8>> = inputs.iter().map(|f| std::fs::read(f).unwrap()).collect();
            let positions = published_ranges(dir.path(), "n1", 1).unwrap();
            let done = compact_partition(&part, &options()).unwrap().unwrap();
            // Lay the folder out as the crash would have left it.
            let restore = match crash {
                "written" => {
                    std::fs::rename(
                        &done.path,
                        part.dir.join(format!(".{}.tmp", file_name(&done.path))),
                    )
                    .unwrap();
                    0..inputs.len()
                }
                "published" => 0..inputs.len(),
                _ => 1..inputs.len(),
            };
            for i in restore {
                std::fs::write(&inputs[i], &saved[i]).unwrap();
            }
            assert_eq!(request_rows(dir.path()), 5, "{crash}");
            assert_eq!(
                published_ranges(dir.path(), "n1", 1).unwrap(),
                positions,
                "{crash}"
            );
            let found = pending(dir.path()).unwrap();
            assert_eq!(
                found.temporaries.len(),
                usize::from(crash == "written"),
                "{crash}"
            );
            let superseded = match crash {
                "written" => 0,
                "published" => inputs.len(),
                _ => inputs.len() - 1,
            };
            assert_eq!(found.superseded.len(), superseded, "{crash}");

            assert_eq!(finish_pending(dir.path(), false).unwrap(), found, "{crash}");
            assert_eq!(pending(dir.path()).unwrap(), Pending::default(), "{crash}");
            let left = published_files(&part.dir).unwrap();
            if crash == "written" {
                assert_eq!(left, inputs, "rolled back");
            } else {
                assert_eq!(left, vec![done.path.clone()], "rolled forward");
            }
            assert_eq!(request_rows(dir.path()), 5, "{crash}");
        }
    }

    /// A partition whose last compaction was killed after its rename is finished, not merged
    /// with the inputs still there.
    #[test]
    fn a_partition_left_mid_compaction_is_finished_before_it_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let part = write_files(dir.path(), "b1", &[vec![(0, 1)], vec![(1, 2), (2, 3)]]);
        let inputs = published_files(&part.dir).unwrap();
        let saved: Vec<Vec<u8>> = inputs.iter().map(|f| std::fs::read(f).unwrap()).collect();
        let first = compact_partition(&part, &options()).unwrap().unwrap();
        for (path, bytes) in inputs.iter().zip(&saved) {
            std::fs::write(path, bytes).unwrap();
        }
        write_files(dir.path(), "b2", &[vec![(3, 4)]]);
        let second = compact_partition(&part, &options()).unwrap().unwrap();
        assert_eq!(second.inputs.len(), 2, "{:?}", second.inputs);
        assert!(second.inputs.contains(&first.path));
        assert_eq!((second.rows, request_rows(dir.path())), (4, 4));
    }

    /// A compacted partition that receives more files is compacted again: the new file names
    /// the old compacted file as an input and keeps one WAL record per writer and stream.
    #[test]
    fn a_compacted_partition_compacts_again_keeping_the_wal_records() {
        let dir = tempfile::tempdir().unwrap();
        let part = write_files(dir.path(), "b1", &[vec![(0, 1)], vec![(1, 2)]]);
        let first = compact_partition(&part, &options()).unwrap().unwrap();
        write_files(dir.path(), "b2", &[vec![(2, 3)], vec![(3, 4)]]);
        let inputs = published_files(&part.dir).unwrap();
        assert_eq!(inputs.len(), 3);
        let positions = published_ranges(dir.path(), "n1", 1).unwrap();
        assert_eq!(positions.streams(), 2, "two streams: {positions:?}");
        let second = compact_partition(&part, &options()).unwrap().unwrap();
        assert_eq!(second.rows, 4);
        let kv = footer(&second.path).unwrap();
        assert!(compacted_from(&kv).contains(&file_name(&first.path)));
        let records = wal_records(&file_name(&second.path), &kv);
        assert_eq!(
            records
                .iter()
                .map(|r| (r.stream.as_str(), r.first, r.last))
                .collect::<Vec<_>>(),
            [("b1.w0", 0, 1), ("b2.w0", 0, 1)]
        );
        assert_eq!(published_ranges(dir.path(), "n1", 1).unwrap(), positions);
        // A start newer than b1 reads only b2's record.
        assert_eq!(published_ranges(dir.path(), "n1", 2).unwrap().streams(), 1);
        // A single file is left alone.
        assert_eq!(compact_partition(&part, &options()).unwrap(), None);
    }

    #[test]
    fn the_lock_is_exclusive_and_a_missing_spool_needs_none() {
        let dir = tempfile::tempdir().unwrap();
        let held = SpoolLock::exclusive(dir.path(), || panic!("free")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            SpoolLock::shared(&path, || tx.send(()).unwrap()).unwrap();
        });
        rx.recv().unwrap();
        drop(held);
        waiter.join().unwrap();
        SpoolLock::exclusive(&dir.path().join("none"), || panic!("no spool, no lock")).unwrap();
    }
}
