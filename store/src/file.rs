//! One Parquet file on its way into the spool: written as a hidden `.<name>.parquet.tmp` beside
//! its final place, then published atomically (close, fsync the file, rename, fsync the folder).
//! A published file is never written again. The temporary name starts with a dot because
//! pyarrow, R's arrow and Spark skip hidden files when they list a dataset, so a live spool stays
//! readable while files are being written.
//!
//! Small batches (a partition's share of a writer's memory budget, when lines hop between many
//! hours) are not made row groups at once: each column chunk of a Parquet row group has a fixed
//! cost (a zstd context, a dictionary, statistics) that dwarfs a few hundred rows. They are
//! spilled instead to a hidden file of Arrow IPC streams beside it (`.<name>.spill`, opened
//! only to append or read, so a waiting partition holds no file descriptor), which costs about a
//! copy, and become one sorted row group when the spill holds a row group's worth of rows (or
//! weighs the writers' builder budget: reading it back, merging and sorting it costs a few
//! times its size), or when the file is published. A batch of a quarter of that budget or more
//! is written as a row group at once: the writers' memory makes none larger.
//!
//! A file may be filled by several writers (see `pool`): each batch comes with the writer that
//! added it and the WAL lines it holds ([`WalRange`]), and the published footer lists every
//! stream's ranges, so that a replay skips exactly the lines the file holds. A batch is first
//! *pending* (in memory only: a writer on hold does not touch the disk), then written; with
//! `keep_copies` (serve) a copy stays in memory until the file is published, so that a file that
//! fails (a full disk) is written again from memory ([`OpenFile::abandon`]). A batch written as
//! a row group is kept as that row group's encoded bytes (zstd-compressed Parquet pages, a
//! tenth or less of the batch's Arrow arrays), taken as they go to the file; a failed file's
//! copies wait so, and each is decoded back into its batch only as it is written again. A
//! spilled batch is kept as it was added.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, RowGroupMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};

use crate::error::StoreError;
use crate::schema::Table;

/// A file the writer has published: its rows are in the spool for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// The table it belongs to.
    pub table: Table,
    /// Its final path.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A file just published: its final path, rows and bytes.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) path: PathBuf,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

impl Published {
    /// The spool's record of it, as a file of `table`.
    pub(crate) fn of(self, table: Table) -> PublishedFile {
        PublishedFile {
            table,
            path: self.path,
            rows: self.rows,
            bytes: self.bytes,
        }
    }
}

/// WAL lines of one stream in one batch of a partition: every line of the stream in that
/// partition with a position from `first` to `last` is in the batch (a writer's builder of a
/// partition takes all of them between two flushes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WalRange {
    pub(crate) stream: Arc<str>,
    pub(crate) first: u64,
    pub(crate) last: u64,
}

/// A sorted batch on its way into a file, with the writer that added it and its weight (as its
/// rows weighed in the builders).
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) batch: RecordBatch,
    pub(crate) weight: usize,
    pub(crate) writer: u64,
}

impl Group {
    pub(crate) fn rows(&self) -> u64 {
        self.batch.num_rows() as u64
    }
}

/// Rows of a writer that leave a file's memory: written with no copy kept, published, dropped
/// over the retry bound, or lost with a failed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) writer: u64,
    pub(crate) rows: u64,
    pub(crate) weight: usize,
}

impl From<&Group> for Released {
    fn from(g: &Group) -> Released {
        Released {
            writer: g.writer,
            rows: g.rows(),
            weight: g.weight,
        }
    }
}

/// A batch in a file's memory: pending, or a copy of one on disk kept until the file is
/// published.
#[derive(Debug)]
enum Kept {
    /// As it was added.
    Batch(Group),
    /// Written as row groups once, kept as their encoded bytes.
    Encoded(Encoded),
}

impl Kept {
    fn rows(&self) -> u64 {
        match self {
            Kept::Batch(g) => g.rows(),
            Kept::Encoded(e) => e.rows,
        }
    }

    fn writer(&self) -> u64 {
        match self {
            Kept::Batch(g) => g.writer,
            Kept::Encoded(e) => e.writer,
        }
    }

    fn weight(&self) -> usize {
        match self {
            Kept::Batch(g) => g.weight,
            Kept::Encoded(e) => e.weight,
        }
    }

    fn released(&self) -> Released {
        match self {
            Kept::Batch(g) => Released::from(g),
            Kept::Encoded(e) => Released {
                writer: e.writer,
                rows: e.rows,
                weight: e.weight,
            },
        }
    }
}

/// Row groups as written: their bytes (at `start` in the file) and their metadata.
#[derive(Debug)]
struct Encoded {
    writer: u64,
    rows: u64,
    /// The memory this copy holds (its bytes and an estimate of its metadata) when it was
    /// first made; a copy made again when a failed file is rewritten keeps that weight.
    weight: usize,
    start: u64,
    bytes: Bytes,
    row_groups: Vec<RowGroupMetaData>,
}

/// Memory a column chunk's metadata holds, about (its path, statistics and offsets).
const CHUNK_META_BYTES: usize = 512;

impl Encoded {
    /// The batch these row groups hold, read back with `schema`.
    fn decode(&self, schema: &SchemaRef) -> Result<RecordBatch, StoreError> {
        let Some(first) = self.row_groups.first() else {
            return Ok(RecordBatch::new_empty(schema.clone()));
        };
        let file = FileMetaData::new(1, self.rows as i64, None, None, first.schema_descr_ptr(), None);
        let meta = ParquetMetaData::new(file, self.row_groups.clone());
        let options = ArrowReaderOptions::new().with_schema(schema.clone());
        let meta = ArrowReaderMetadata::try_new(Arc::new(meta), options)?;
        let at = At {
            start: self.start,
            bytes: self.bytes.clone(),
        };
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(at, meta)
            .with_batch_size(self.rows.max(1) as usize)
            .build()?;
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        Ok(arrow_select::concat::concat_batches(schema, &batches)?)
    }
}

/// Bytes that sit at `start` in a file, read as that file.
struct At {
    start: u64,
    bytes: Bytes,
}

impl At {
    fn slice(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|o| o as usize)
            .filter(|o| o.saturating_add(length) <= self.bytes.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::EOF(format!("bytes {start}+{length} are not among those kept"))
            })?;
        Ok(self.bytes.slice(from..from + length))
    }
}

impl Length for At {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for At {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let rest = (self.len().saturating_sub(start)) as usize;
        Ok(bytes::Buf::reader(self.slice(start, rest)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, length)
    }
}

/// The file a Parquet writer writes (none: memory only); with `keep`, the bytes written are
/// also kept until taken.
struct Tee {
    file: Option<File>,
    keep: bool,
    /// The file offset of `kept`'s first byte.
    taken: u64,
    kept: Vec<u8>,
}

/// Row groups just written through a keeping [`Tee`]: the offset of their bytes, the bytes and
/// their metadata.
struct Written {
    start: u64,
    bytes: Vec<u8>,
    row_groups: Vec<RowGroupMetaData>,
}

impl Written {
    /// The memory their copy holds: the bytes and an estimate of the metadata.
    fn weight(&self) -> usize {
        let columns: usize = self.row_groups.iter().map(|g| g.num_columns()).sum();
        self.bytes.len() + columns * CHUNK_META_BYTES
    }

    fn into_copy(self, writer: u64, rows: u64, weight: usize) -> Encoded {
        Encoded {
            writer,
            rows,
            weight,
            start: self.start,
            bytes: Bytes::from(self.bytes),
            row_groups: self.row_groups,
        }
    }
}

/// Writes `batch` as one row group (one sorted batch per row group keeps `sorting_columns`
/// true and leaves no encoded pages buffered between batches); with a keeping tee, returns
/// what was written, all of it out of the writer's buffer (`path` names the file in errors).
fn write_row_group(
    w: &mut ArrowWriter<Tee>,
    batch: &RecordBatch,
    path: &Path,
) -> Result<Option<Written>, StoreError> {
    let before = w.flushed_row_groups().len();
    w.write(batch)?;
    w.flush()?;
    if !w.inner().keep {
        return Ok(None);
    }
    w.sync().map_err(StoreError::io("write", path))?;
    let row_groups = w.flushed_row_groups()[before..].to_vec();
    let (start, bytes) = w.inner_mut().take();
    Ok(Some(Written {
        start,
        bytes,
        row_groups,
    }))
}

impl Tee {
    fn new(file: Option<File>, keep: bool) -> Tee {
        Tee {
            file,
            keep,
            taken: 0,
            kept: Vec::new(),
        }
    }

    /// The bytes written since the last take, and the offset of the first.
    fn take(&mut self) -> (u64, Vec<u8>) {
        let start = self.taken;
        let kept = std::mem::take(&mut self.kept);
        self.taken += kept.len() as u64;
        (start, kept)
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match self.file.as_mut() {
            Some(f) => f.write(buf)?,
            None => buf.len(),
        };
        if self.keep {
            self.kept.extend_from_slice(&buf[..n]);
        } else {
            self.taken += n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// A Parquet file being written.
pub(crate) struct OpenFile {
    root: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    spill_path: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    /// Rows per row group; batches of less than a quarter of it are spilled.
    row_group_rows: usize,
    /// The writers' builder budget (weight): batches of a quarter of it or more are not
    /// spilled, and the spill becomes a row group once it weighs this much.
    buffer_bytes: usize,
    /// `None` until the first row group, and once published (or after a failure).
    writer: Option<ArrowWriter<Tee>>,
    /// Rows in the spill file (none: no spill file), and their weight.
    spilled: usize,
    spilled_weight: usize,
    /// Rows on disk, spilled ones included.
    written: u64,
    /// Batches not yet on disk, oldest first (a failed file's copies among them).
    pending: VecDeque<Kept>,
    /// Copies of the batches on disk, oldest first, with `keep_copies`.
    copies: VecDeque<Kept>,
    keep_copies: bool,
    /// Rows on disk with no copy in memory, per writer: lost if the file fails.
    uncopied: Vec<(u64, u64)>,
    /// Rows of copies that could not be decoded to be written again, per writer: lost.
    undecodable: Vec<(u64, u64)>,
    /// The WAL lines of every batch added, in the order added.
    wal: Vec<WalRange>,
    published: bool,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("tmp", &self.tmp)
            .field("written", &self.written)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl OpenFile {
    /// A file to be written as `dir/.<name>.tmp` and published as `dir/<name>`, `dir` being
    /// created below `root` when needed; nothing is created on disk before the first write.
    pub(crate) fn create(
        root: &Path,
        dir: &Path,
        name: &str,
        schema: SchemaRef,
        props: WriterProperties,
        row_group_rows: usize,
        keep_copies: bool,
    ) -> OpenFile {
        OpenFile {
            root: root.to_owned(),
            path: dir.join(name),
            tmp: dir.join(format!(".{name}.tmp")),
            spill_path: dir.join(format!(".{name}.spill")),
            schema,
            props,
            row_group_rows,
            buffer_bytes: usize::MAX,
            writer: None,
            spilled: 0,
            spilled_weight: 0,
            written: 0,
            pending: VecDeque::new(),
            copies: VecDeque::new(),
            keep_copies,
            uncopied: Vec::new(),
            undecodable: Vec::new(),
            wal: Vec::new(),
            published: false,
        }
    }

    /// Bounds what is spilled by the builder budget of the writers filling the file: a batch
    /// weighing a quarter of `bytes` or more is as large a row group as their memory makes and
    /// is written as one, and the spill becomes a row group once it weighs `bytes`, so that
    /// reading it back, merging and sorting it takes memory in proportion to that budget.
    pub(crate) fn with_buffer_bytes(mut self, bytes: usize) -> OpenFile {
        self.buffer_bytes = bytes;
        self
    }

    /// Adds a sorted batch, in memory until [`OpenFile::write_pending`], with the WAL lines it
    /// holds.
    pub(crate) fn add(&mut self, group: Group, wal: Option<WalRange>) {
        self.pending.push_back(Kept::Batch(group));
        self.wal.extend(wal);
    }

    /// Writes the pending batches: each as one complete row group, or spilled when it is
    /// small. Returns the rows that left memory (no copy kept, or a copy that could not be
    /// decoded: see [`OpenFile::take_undecodable`]), and the weight the copies of row groups
    /// shed (their rows stay held). A failure leaves the file half written: the caller abandons
    /// it.
    pub(crate) fn write_pending(&mut self, fsync: bool) -> Result<Vec<Released>, StoreError> {
        if self.published {
            return Err(StoreError::Io {
                op: "write",
                path: self.tmp.clone(),
                source: std::io::Error::other("file already published"),
            });
        }
        let mut released = Vec::new();
        if self.pending.is_empty() {
            return Ok(released);
        }
        if let Some(dir) = self.path.parent() {
            crate::file::ensure_dir(&self.root, dir, fsync)?;
        }
        while let Some(kept) = self.pending.front() {
            let (batch, weight) = match kept {
                Kept::Batch(g) => (g.batch.clone(), g.weight),
                Kept::Encoded(e) => match e.decode(&self.schema) {
                    Ok(batch) => (batch, e.weight),
                    Err(_) => {
                        let gone = kept.released();
                        self.undecodable.push((gone.writer, gone.rows));
                        released.push(gone);
                        self.pending.pop_front();
                        continue;
                    }
                },
            };
            let encoded = if batch.num_rows() * 4 >= self.row_group_rows || weight >= self.buffer_bytes / 4 {
                self.write_parquet(&batch)?
            } else {
                self.spill(&batch, weight)?;
                None
            };
            self.written += batch.num_rows() as u64;
            let Some(kept) = self.pending.pop_front() else {
                break;
            };
            let (writer, rows) = (kept.writer(), kept.rows());
            if !self.keep_copies {
                self.uncopy(writer, rows);
                released.push(kept.released());
                continue;
            }
            let Some(written) = encoded else {
                self.copies.push_back(kept);
                continue;
            };
            // A batch's copy sheds the weight its encoding saves; a copy written again keeps
            // the weight it has.
            let weight = match kept {
                Kept::Batch(g) => {
                    let kept = written.weight().min(g.weight);
                    released.push(Released {
                        writer,
                        rows: 0,
                        weight: g.weight - kept,
                    });
                    kept
                }
                Kept::Encoded(e) => e.weight,
            };
            self.copies
                .push_back(Kept::Encoded(written.into_copy(writer, rows, weight)));
        }
        Ok(released)
    }

    /// Adds `batch` and writes it at once (the `windows` writer's files, which have no WAL and
    /// keep no copies), weighed as the memory its arrays hold.
    pub(crate) fn write_batch(&mut self, batch: RecordBatch, fsync: bool) -> Result<(), StoreError> {
        let weight = batch.get_array_memory_size();
        self.add(
            Group {
                batch,
                weight,
                writer: 0,
            },
            None,
        );
        self.write_pending(fsync).map(|_| ())
    }

    fn uncopy(&mut self, writer: u64, rows: u64) {
        match self.uncopied.iter_mut().find(|(w, _)| *w == writer) {
            Some((_, n)) => *n += rows,
            None => self.uncopied.push((writer, rows)),
        }
    }

    /// Writes `batch` as a row group into the file (created with the first); with
    /// `keep_copies`, returns what was written, to be kept as its copy.
    fn write_parquet(&mut self, batch: &RecordBatch) -> Result<Option<Written>, StoreError> {
        let w = match self.writer.as_mut() {
            Some(w) => w,
            None => {
                let file = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&self.tmp)
                    .map_err(StoreError::io("create", &self.tmp))?;
                let tee = Tee::new(Some(file), self.keep_copies);
                let w = ArrowWriter::try_new(tee, self.schema.clone(), Some(self.props.clone()))?;
                self.writer.insert(w)
            }
        };
        write_row_group(w, batch, &self.tmp)
    }

    fn spill(&mut self, batch: &RecordBatch, weight: usize) -> Result<(), StoreError> {
        let path = &self.spill_path;
        let file = File::options()
            .append(true)
            .create(true)
            .open(path)
            .map_err(StoreError::io("append", path))?;
        let mut w = StreamWriter::try_new(BufWriter::new(file), &self.schema)?;
        w.write(batch)?;
        w.finish()?;
        w.into_inner()?.flush().map_err(StoreError::io("append", path))?;
        self.spilled += batch.num_rows();
        self.spilled_weight += weight;
        if self.spilled >= self.row_group_rows || self.spilled_weight >= self.buffer_bytes {
            self.drain_spill()?;
        }
        Ok(())
    }

    /// Turns the spilled batches into one sorted row group.
    fn drain_spill(&mut self) -> Result<(), StoreError> {
        if self.spilled == 0 {
            return Ok(());
        }
        let path = &self.spill_path;
        let file = File::open(path).map_err(StoreError::io("open", path))?;
        let mut input = BufReader::new(file);
        let mut batches = Vec::new();
        // Each spill is a stream of its own; a stream's reader stops right after its end
        // marker, where the next one starts.
        while !input.fill_buf().map_err(StoreError::io("read", path))?.is_empty() {
            for b in StreamReader::try_new(&mut input, None)? {
                batches.push(b?);
            }
        }
        let batch = arrow_select::concat::concat_batches(&self.schema, &batches)?;
        let batch = crate::writer::sort_by_time(batch)?;
        // The spilled batches' copies hold these rows: the row group's bytes are not kept.
        self.write_parquet(&batch)?;
        self.spilled = 0;
        self.spilled_weight = 0;
        let _ = std::fs::remove_file(&self.spill_path);
        Ok(())
    }

    /// After a failed write or publication: removes what is on disk; the copies become pending
    /// again, before the batches that were pending, and the rows on disk with no copy are
    /// returned, lost. The file can be written again from the start.
    pub(crate) fn abandon(&mut self) -> Vec<(u64, u64)> {
        self.remove_temporaries();
        self.written = 0;
        while let Some(kept) = self.copies.pop_back() {
            self.pending.push_front(kept);
        }
        std::mem::take(&mut self.uncopied)
    }

    /// Encodes the pending batches in memory, as their copies would be once written, for a
    /// writer that holds (a full disk) and needs room: the rows stay, in a tenth or less of the
    /// memory. Returns the weight shed (rows: 0). A batch whose encoding would not be smaller
    /// stays as it is.
    pub(crate) fn encode_pending(&mut self) -> Result<Vec<Released>, StoreError> {
        let mut shed = Vec::new();
        for kept in self.pending.iter_mut() {
            let Kept::Batch(g) = kept else {
                continue;
            };
            let tee = Tee::new(None, true);
            let mut w = ArrowWriter::try_new(tee, self.schema.clone(), Some(self.props.clone()))?;
            let Some(written) = write_row_group(&mut w, &g.batch, &self.tmp)? else {
                continue;
            };
            let weight = written.weight();
            if weight >= g.weight {
                continue;
            }
            shed.push(Released {
                writer: g.writer,
                rows: 0,
                weight: g.weight - weight,
            });
            *kept = Kept::Encoded(written.into_copy(g.writer, g.rows(), weight));
        }
        Ok(shed)
    }

    /// The rows of copies that could not be decoded to be written again, per writer, since
    /// the last call: lost (their weight was released by [`OpenFile::write_pending`]).
    pub(crate) fn take_undecodable(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.undecodable)
    }

    fn remove_temporaries(&mut self) {
        if self.spilled > 0 || self.spill_path.exists() {
            let _ = std::fs::remove_file(&self.spill_path);
        }
        self.spilled = 0;
        self.spilled_weight = 0;
        if !self.published {
            self.writer.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }

    /// Drops the oldest batch kept in memory, for a writer over its retry bound: a copy first
    /// (its rows stay in the file, lost only if the file fails), else a pending batch (lost).
    /// Returns the rows released and whether they are lost.
    pub(crate) fn drop_oldest(&mut self) -> Option<(Released, bool)> {
        if let Some(kept) = self.copies.pop_front() {
            let released = kept.released();
            self.uncopy(released.writer, released.rows);
            return Some((released, false));
        }
        let kept = self.pending.pop_front()?;
        Some((kept.released(), true))
    }

    /// The writer and weight of each batch in memory (pending or copies).
    fn held(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        let kept = self.pending.iter().chain(self.copies.iter());
        kept.map(|k| (k.writer(), k.weight()))
    }

    /// Weight of the batches in memory.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held().map(|(_, w)| w).sum()
    }

    /// Weight of the batches in memory that `writer` added.
    pub(crate) fn held_bytes_of(&self, writer: u64) -> usize {
        self.held().filter(|(w, _)| *w == writer).map(|(_, w)| w).sum()
    }

    /// Whether batches wait to be written.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the file holds no row at all (an abandoned file with nothing to write again).
    pub(crate) fn is_empty(&self) -> bool {
        self.written == 0 && self.pending.is_empty()
    }

    /// The WAL lines of the batches added.
    pub(crate) fn wal_ranges(&self) -> &[WalRange] {
        &self.wal
    }

    /// Whether the file holds a file descriptor (its Parquet file is open).
    pub(crate) fn holds_descriptor(&self) -> bool {
        self.writer.is_some()
    }

    /// Rows in the file, written or pending.
    pub(crate) fn rows(&self) -> u64 {
        self.written + self.pending.iter().map(Kept::rows).sum::<u64>()
    }

    /// Bytes written to the Parquet file so far (spilled rows are not counted: they are fewer
    /// than a row group).
    pub(crate) fn bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.bytes_written() as u64)
    }

    /// Writes the spilled rows, the footer (with the WAL ranges of its rows, per stream) and
    /// moves the file to its final name, durably when `fsync`. Every batch must be written
    /// first ([`OpenFile::write_pending`]). A failure before the rename leaves nothing of the
    /// file in the spool (the caller abandons it, to write it again). The rename is the point of
    /// no return; a failed fsync of the folder after it is not an error, since writing the rows
    /// again would publish them twice (the file is in place; only a power cut in the next
    /// moments could lose its name).
    pub(crate) fn publish(&mut self, fsync: bool) -> Result<Published, StoreError> {
        if self.published || !self.pending.is_empty() {
            return Err(StoreError::Io {
                op: "publish",
                path: self.tmp.clone(),
                source: std::io::Error::other("file already published, or rows not written"),
            });
        }
        self.drain_spill()?;
        for (key, value) in wal_metadata(&self.wal) {
            if let Some(w) = self.writer.as_mut() {
                w.append_key_value_metadata(KeyValue::new(key, value));
            }
        }
        let Some(w) = self.writer.take() else {
            return Err(StoreError::Io {
                op: "publish",
                path: self.tmp.clone(),
                source: std::io::Error::other("nothing was written"),
            });
        };
        let tmp = self.tmp.clone();
        let bytes = (|| {
            let file = w.into_inner()?.file.ok_or_else(|| StoreError::Io {
                op: "publish",
                path: tmp.clone(),
                source: std::io::Error::other("no file"),
            })?;
            if fsync {
                file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
            }
            let bytes = file.metadata().map_err(StoreError::io("stat", &tmp))?.len();
            drop(file);
            std::fs::rename(&tmp, &self.path).map_err(StoreError::io("rename", &tmp))?;
            Ok::<_, StoreError>(bytes)
        })()?;
        self.published = true;
        if fsync {
            if let Some(dir) = self.path.parent() {
                let _ = sync_dir(dir);
            }
        }
        crash_after_publish();
        Ok(Published {
            path: self.path.clone(),
            rows: self.written,
            bytes,
        })
    }

    /// After [`OpenFile::publish`]: every batch still in memory leaves it.
    pub(crate) fn release_published(&mut self) -> Vec<Released> {
        let released = self.copies.iter().map(Kept::released).collect();
        self.copies.clear();
        self.uncopied.clear();
        released
    }
}

impl Drop for OpenFile {
    /// A file dropped unpublished (an error, or a writer dropped without `finish`) removes its
    /// temporaries: it was never part of the spool.
    fn drop(&mut self) {
        self.remove_temporaries();
    }
}

/// The footer entries naming the WAL lines a file holds: one key per stream,
/// `weir.wal_ranges.<stream>`, whose value lists `first-last` ranges (merged when adjacent),
/// comma-separated (see [`crate::wal::published_ranges`]).
fn wal_metadata(ranges: &[WalRange]) -> Vec<(String, String)> {
    let mut by_stream: Vec<(&str, Vec<(u64, u64)>)> = Vec::new();
    for r in ranges.iter().filter(|r| !r.stream.is_empty()) {
        match by_stream.iter_mut().find(|(s, _)| *s == &*r.stream) {
            Some((_, v)) => v.push((r.first, r.last)),
            None => by_stream.push((&r.stream, vec![(r.first, r.last)])),
        }
    }
    by_stream
        .into_iter()
        .map(|(stream, mut v)| {
            v.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
            for (first, last) in v {
                match merged.last_mut() {
                    Some(m) if first <= m.1.saturating_add(1) => m.1 = m.1.max(last),
                    _ => merged.push((first, last)),
                }
            }
            let value = merged
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(",");
            (format!("{}{stream}", crate::wal::META_RANGES_PREFIX), value)
        })
        .collect()
}

/// Threads that [`publish_many`] uses at most, and the files each takes at least.
const PUBLISH_THREADS: usize = 8;
const PUBLISH_FILES_PER_THREAD: usize = 16;

/// Publishes many files (the end of an import), each with its label, on several threads when
/// there are many: each thread waits on its fsyncs, which the disk serves together. Each file
/// comes back with its outcome.
pub(crate) fn publish_many<T: Send>(
    files: Vec<(T, OpenFile)>,
    fsync: bool,
) -> Vec<(T, OpenFile, Result<Published, StoreError>)> {
    let publish = |files: Vec<(T, OpenFile)>| -> Vec<(T, OpenFile, Result<Published, StoreError>)> {
        files
            .into_iter()
            .map(|(label, mut file)| {
                let published = file.publish(fsync);
                (label, file, published)
            })
            .collect()
    };
    let threads = files
        .len()
        .div_ceil(PUBLISH_FILES_PER_THREAD)
        .min(PUBLISH_THREADS);
    if threads <= 1 {
        return publish(files);
    }
    let mut shares: Vec<Vec<(T, OpenFile)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, f) in files.into_iter().enumerate() {
        shares[i % threads].push(f);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| s.spawn(|| publish(share)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("publishing thread panicked"))
            .collect()
    })
}

/// A test hook for crash tests: with `WEIR_CRASH_AFTER_PUBLISH=N` in the environment, the
/// process aborts (no destructor, no flush, as a `kill -9` would stop it) right after its N-th
/// published file, wherever that lands: mid-rotation, mid-replay.
fn crash_after_publish() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static PUBLISHED: AtomicU64 = AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| {
        std::env::var("WEIR_CRASH_AFTER_PUBLISH")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(limit) = limit {
        if PUBLISHED.fetch_add(1, Ordering::Relaxed) + 1 >= *limit {
            eprintln!("weir: WEIR_CRASH_AFTER_PUBLISH={limit}: aborting after a published file");
            std::process::abort();
        }
    }
}

/// fsyncs a folder, so that a rename or a new entry in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync", dir))
}

/// Creates `dir` and its missing parents below `root`; with `fsync`, each new folder's parent
/// is synced so that the new entry is durable.
pub(crate) fn ensure_dir(root: &Path, dir: &Path, fsync: bool) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
    if fsync {
        let mut d = dir;
        while let Some(parent) = d.parent() {
            sync_dir(parent)?;
            if parent == root || !parent.starts_with(root) {
                break;
            }
            d = parent;
        }
    }
    Ok(())
}
