//! The `windows` table: [`WindowRow`]s to Arrow columns and back.
//!
//! One row is one partial aggregate (window, series key); readers merge rows with the same
//! window and key. Each distribution `d` of [`DISTRIBUTIONS`] has four columns: `d_count`,
//! `d_mean`, `d_max`, and `d_hist`, its HDR histogram's non-empty buckets as
//! `list<struct<ms: int32, n: int64>>` (for `bytes`: `struct<bytes: int64, n: int64>`), each
//! bucket at its lowest value, so that SQL merges rows by unnesting and summing `n` per bucket.
//! Status codes and termination states are `map` columns.
//!
//! [`WindowsWriter`] buffers rows per hour partition of their window start (a live server's
//! packed, [`PackedRow`], until they are written) and publishes each partition as one Parquet
//! file (hidden temporary, fsync, rename, fsync the folder) when its oldest row is `rotate_age`
//! old and at [`WindowsWriter::finish`]; rows are few (one per series and window), so files
//! stay small and a file per partition and period is enough. An import
//! (no `rotate_age`) of a log in no time order makes many more rows (each late request reopens
//! its window as a correction row), spread over many hours: there the writer keeps a file open
//! per partition and writes the largest partitions' rows into them, a row group at a time, when
//! the rows pass the memory budget, so the files stay one per partition.
//! [`read_windows`] reads the table back for `weir query`, opening only the `date=/hour=`
//! partitions that can hold windows of the asked range.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Float64Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use weir_model::window::DISTRIBUTIONS;
use weir_model::{
    BucketsRef, Distribution, DistributionRef, Micros, PackedRow, StatusClass, WindowKey, WindowRow,
    WindowRowRef,
};

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::error::StoreError;
use crate::file::{ensure_dir, publish_many, sync_dir, OpenFile, Published};
use crate::partition::Partition;
use crate::schema::{map_field, timestamp_type};
use crate::writer::{spool_file_properties, SpoolOptions};

/// The folder of the table under the spool root.
pub const WINDOWS: &str = "windows";

fn bucket_fields(d: &str) -> Fields {
    let value = if d == "bytes" {
        Field::new("bytes", DataType::Int64, false)
    } else {
        Field::new("ms", DataType::Int32, false)
    };
    Fields::from(vec![value, Field::new("n", DataType::Int64, false)])
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let i64f = |n: &str| Field::new(n, DataType::Int64, false);
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    let mut f = vec![
        Field::new("window_start", timestamp_type(), false),
        Field::new("window_secs", DataType::Int32, false),
        utf8("node"),
        utf8("frontend"),
        utf8("backend"),
        utf8("server"),
        utf8("status_class"),
        i64f("requests"),
        i64f("bytes_read"),
        i64f("errors"),
    ];
    for c in StatusClass::ALL {
        f.push(i64f(&format!("status_{}", c.name())));
    }
    f.push(map_field("status_counts", DataType::Int32, DataType::Int64));
    f.push(map_field("termination_counts", DataType::Utf8, DataType::Int64));
    for d in DISTRIBUTIONS {
        f.push(i64f(&format!("{d}_count")));
        f.push(Field::new(format!("{d}_mean"), DataType::Float64, false));
        f.push(i64f(&format!("{d}_max")));
        f.push(Field::new(
            format!("{d}_hist"),
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(bucket_fields(d)),
                true,
            ))),
            false,
        ));
    }
    Arc::new(Schema::new(f))
});

/// The Parquet properties of the `windows` files: those of every spool file, but the integer
/// columns (counts, maxima, and the histograms' bucket values and counts) are
/// `BYTE_STREAM_SPLIT` rather than dictionary-encoded, as in the other tables. A dictionary per
/// bucket column cost more memory to encode a row group (a hash table and a dictionary page for
/// each of the fourteen) and more time to write and to read than it saved in size: zstd folds
/// the split high bytes of small numbers away.
fn properties(zstd_level: i32) -> Result<WriterProperties, StoreError> {
    use parquet::basic::{Encoding, Type as PhysicalType};
    let mut b = spool_file_properties(WINDOWS, zstd_level)?;
    let parquet_schema = parquet::arrow::ArrowSchemaConverter::new().convert(&schema())?;
    for col in parquet_schema.columns() {
        if matches!(col.physical_type(), PhysicalType::INT32 | PhysicalType::INT64)
            && col.path().string() != "window_start"
        {
            b = b
                .set_column_dictionary_enabled(col.path().clone(), false)
                .set_column_encoding(col.path().clone(), Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(b.build())
}

/// The Arrow schema of the `windows` table.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The rows as one record batch of [`schema`], in the given order (rows or shared rows).
pub fn batch<R: std::borrow::Borrow<WindowRow>>(rows: &[R]) -> Result<RecordBatch, StoreError> {
    let schema = schema();
    let mut start = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut secs = Int32Builder::new();
    let mut strings: [StringBuilder; 5] = std::array::from_fn(|_| StringBuilder::new());
    let mut counts: [Int64Builder; 9] = std::array::from_fn(|_| Int64Builder::new());
    let mut status = MapBuilder::new(None, Int32Builder::new(), Int64Builder::new());
    let mut terms = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    let mut dist_count: [Int64Builder; 7] = std::array::from_fn(|_| Int64Builder::new());
    let mut dist_mean: [Float64Builder; 7] = std::array::from_fn(|_| Float64Builder::new());
    let mut dist_max: [Int64Builder; 7] = std::array::from_fn(|_| Int64Builder::new());
    let mut hists: Vec<ListBuilder<StructBuilder>> = DISTRIBUTIONS
        .iter()
        .map(|d| {
            let fields = bucket_fields(d);
            let item = Arc::new(Field::new("item", DataType::Struct(fields.clone()), true));
            ListBuilder::new(StructBuilder::from_fields(fields, 0)).with_field(item)
        })
        .collect();
    for r in rows {
        let r: &WindowRow = r.borrow();
        start.append_value(r.window_start);
        secs.append_value(i32::try_from(r.window_secs).unwrap_or(i32::MAX));
        for (b, v) in strings.iter_mut().zip([
            r.node.as_str(),
            &r.key.frontend,
            &r.key.backend,
            &r.key.server,
            r.key.status_class.name(),
        ]) {
            b.append_value(v);
        }
        let mut ints = vec![r.requests, r.bytes_read, r.errors];
        ints.extend(r.status_classes);
        for (b, v) in counts.iter_mut().zip(ints) {
            b.append_value(i64_of(v));
        }
        for &(code, n) in &r.status_counts {
            status.keys().append_value(code);
            status.values().append_value(i64_of(n));
        }
        status.append(true)?;
        for (t, n) in &r.termination_counts {
            terms.keys().append_value(t);
            terms.values().append_value(i64_of(*n));
        }
        terms.append(true)?;
        for (i, d) in r.distributions.iter().enumerate() {
            dist_count[i].append_value(i64_of(d.count));
            dist_mean[i].append_value(d.mean);
            dist_max[i].append_value(i64_of(d.max));
            let list = &mut hists[i];
            let items = list.values();
            for &(v, n) in &d.buckets {
                if DISTRIBUTIONS[i] == "bytes" {
                    push_field::<Int64Builder>(items, 0).append_value(i64_of(v));
                } else {
                    push_field::<Int32Builder>(items, 0).append_value(i32::try_from(v).unwrap_or(i32::MAX));
                }
                push_field::<Int64Builder>(items, 1).append_value(i64_of(n));
                items.append(true);
            }
            list.append(true);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(start.finish()), Arc::new(secs.finish())];
    columns.extend(strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(status.finish()));
    columns.push(Arc::new(terms.finish()));
    for (i, h) in hists.iter_mut().enumerate() {
        columns.push(Arc::new(dist_count[i].finish()));
        columns.push(Arc::new(dist_mean[i].finish()));
        columns.push(Arc::new(dist_max[i].finish()));
        columns.push(Arc::new(h.finish()));
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn push_field<T: arrow_array::builder::ArrayBuilder>(b: &mut StructBuilder, i: usize) -> &mut T {
    b.field_builder::<T>(i)
        .expect("the bucket struct's fields are built from bucket_fields")
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, StoreError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Arrow(arrow_schema::ArrowError::SchemaError(format!(
                "windows: column {name} is missing or of another type"
            )))
        })
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A distribution's four columns, with the bucket struct's children downcast once.
struct Hist<'a> {
    count: &'a Int64Array,
    mean: &'a Float64Array,
    max: &'a Int64Array,
    offsets: &'a [i32],
    values: BucketValues<'a>,
    ns: &'a Int64Array,
}

/// The `ms` (`int32`) or `bytes` (`int64`) child of a bucket struct.
enum BucketValues<'a> {
    Ms(&'a Int32Array),
    Bytes(&'a Int64Array),
}

impl<'a> Hist<'a> {
    fn new(
        count: &'a Int64Array,
        mean: &'a Float64Array,
        max: &'a Int64Array,
        hist: &'a ListArray,
    ) -> Result<Hist<'a>, StoreError> {
        let bad = || {
            StoreError::Arrow(arrow_schema::ArrowError::SchemaError(
                "windows: a histogram column is not list<struct<value, n>>".into(),
            ))
        };
        let items = hist
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(bad)?;
        let v = items.column(0).as_any();
        let values = match (v.downcast_ref::<Int32Array>(), v.downcast_ref::<Int64Array>()) {
            (Some(a), _) => BucketValues::Ms(a),
            (None, Some(a)) => BucketValues::Bytes(a),
            _ => return Err(bad()),
        };
        let ns = items
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(bad)?;
        Ok(Hist {
            count,
            mean,
            max,
            offsets: hist.value_offsets(),
            values,
            ns,
        })
    }

    fn view(&self, r: usize) -> DistributionRef<'a> {
        let (from, to) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
        let ns = &self.ns.values()[from..to];
        DistributionRef {
            count: u64_of(self.count.value(r)),
            mean: self.mean.value(r),
            max: u64_of(self.max.value(r)),
            buckets: match self.values {
                BucketValues::Ms(a) => BucketsRef::Ms(&a.values()[from..to], ns),
                BucketValues::Bytes(a) => BucketsRef::Wide(&a.values()[from..to], ns),
            },
        }
    }

    fn row(&self, r: usize) -> Distribution {
        let (from, to) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
        let buckets = (from..to)
            .map(|j| {
                let v = match self.values {
                    BucketValues::Ms(a) => u64::try_from(a.value(j)).unwrap_or(0),
                    BucketValues::Bytes(a) => u64_of(a.value(j)),
                };
                (v, u64_of(self.ns.value(j)))
            })
            .collect();
        Distribution {
            count: u64_of(self.count.value(r)),
            mean: self.mean.value(r),
            max: u64_of(self.max.value(r)),
            buckets,
        }
    }
}

/// The rows of a batch of [`schema`] (or of a projection of it: distributions whose columns
/// are missing are left empty).
pub fn rows_of(b: &RecordBatch) -> Result<Vec<WindowRow>, StoreError> {
    let start = col::<TimestampMicrosecondArray>(b, "window_start")?;
    let secs = col::<Int32Array>(b, "window_secs")?;
    let s = |n| col::<StringArray>(b, n);
    let (node, fe, be, srv, class) = (
        s("node")?,
        s("frontend")?,
        s("backend")?,
        s("server")?,
        s("status_class")?,
    );
    let i = |n: &str| col::<Int64Array>(b, n);
    let (requests, bytes, errors) = (i("requests")?, i("bytes_read")?, i("errors")?);
    let classes: Vec<&Int64Array> = StatusClass::ALL
        .iter()
        .map(|c| i(&format!("status_{}", c.name())))
        .collect::<Result<_, _>>()?;
    let status = col::<MapArray>(b, "status_counts")?;
    let terms = col::<MapArray>(b, "termination_counts")?;
    // A distribution whose columns were not read (a projection) stays empty.
    let mut dists = Vec::new();
    for d in DISTRIBUTIONS {
        let hist = b.column_by_name(&format!("{d}_hist"));
        dists.push(match hist {
            None => None,
            Some(_) => Some(Hist::new(
                i(&format!("{d}_count"))?,
                col::<Float64Array>(b, &format!("{d}_mean"))?,
                i(&format!("{d}_max"))?,
                col::<ListArray>(b, &format!("{d}_hist"))?,
            )?),
        });
    }
    let mut out = Vec::with_capacity(b.num_rows());
    for r in 0..b.num_rows() {
        let entries = |m: &MapArray| -> StructArray { m.value(r) };
        let st = entries(status);
        let codes = st.column(0).as_any().downcast_ref::<Int32Array>();
        let ns = st.column(1).as_any().downcast_ref::<Int64Array>();
        let status_counts = match (codes, ns) {
            (Some(c), Some(n)) => (0..c.len()).map(|k| (c.value(k), u64_of(n.value(k)))).collect(),
            _ => Vec::new(),
        };
        let te = entries(terms);
        let names = te.column(0).as_any().downcast_ref::<StringArray>();
        let ns = te.column(1).as_any().downcast_ref::<Int64Array>();
        let termination_counts = match (names, ns) {
            (Some(t), Some(n)) => (0..t.len())
                .map(|k| (t.value(k).to_owned(), u64_of(n.value(k))))
                .collect(),
            _ => Vec::new(),
        };
        let distributions: [Distribution; 7] =
            std::array::from_fn(|k| dists[k].as_ref().map_or_else(Distribution::default, |h| h.row(r)));
        out.push(WindowRow {
            window_start: start.value(r),
            window_secs: u32::try_from(secs.value(r)).unwrap_or(0),
            node: node.value(r).to_owned(),
            key: WindowKey {
                frontend: fe.value(r).to_owned(),
                backend: be.value(r).to_owned(),
                server: srv.value(r).to_owned(),
                status_class: StatusClass::from_name(class.value(r)).unwrap_or(StatusClass::Other),
            },
            requests: u64_of(requests.value(r)),
            bytes_read: u64_of(bytes.value(r)),
            errors: u64_of(errors.value(r)),
            status_classes: std::array::from_fn(|k| u64_of(classes[k].value(r))),
            status_counts,
            termination_counts,
            distributions,
        });
    }
    Ok(out)
}

/// Rows a partition buffers before they are published as a file of their own; past as many in
/// all partitions, the older partitions are published.
pub const MAX_PENDING_ROWS: usize = 16_384;

/// Rows per row group of a file [`WindowsWriter`] publishes whole (a live server's): the
/// memory a publication holds, its Arrow batch and its encoded pages, is that of this many
/// rows, not of the whole file.
const PUBLISH_GROUP_ROWS: usize = 2048;

/// An estimate of the memory a row holds: the struct, its strings and vectors with their
/// allocations' overhead, and their items.
fn row_weight(r: &WindowRow) -> usize {
    const ALLOCATION: usize = 32;
    let buckets: usize = r.distributions.iter().map(|d| d.buckets.len()).sum();
    let strings = r.node.len() + r.key.frontend.len() + r.key.backend.len() + r.key.server.len();
    let terminations: usize = r
        .termination_counts
        .iter()
        .map(|(t, _)| 24 + 8 + t.len() + ALLOCATION)
        .sum();
    std::mem::size_of::<WindowRow>()
        + strings
        + 13 * ALLOCATION
        + 16 * (buckets + r.status_counts.len())
        + terminations
}

/// A row waiting in a [`WindowsWriter`]: as the aggregator made it (an import writes its rows
/// soon), or packed ([`PackedRow`]: a live server keeps its rows until their partition's file
/// is published, two windows of every series, and a packed row holds a tenth of the memory).
#[derive(Debug)]
enum Waiting {
    Row(Box<WindowRow>),
    Packed(PackedRow),
}

impl Waiting {
    fn window_start(&self) -> Micros {
        match self {
            Waiting::Row(r) => r.window_start,
            Waiting::Packed(p) => p.window_start,
        }
    }

    /// The order rows are written in: by window, then key.
    fn order(&self) -> (Micros, (&str, &str, &str, StatusClass)) {
        match self {
            Waiting::Row(r) => {
                let k = &r.key;
                (
                    r.window_start,
                    (&k.frontend, &k.backend, &k.server, k.status_class),
                )
            }
            Waiting::Packed(p) => (p.window_start, p.key()),
        }
    }

    fn weight(&self) -> usize {
        match self {
            Waiting::Row(r) => row_weight(r),
            Waiting::Packed(p) => p.weight(),
        }
    }

    fn row(&self) -> Cow<'_, WindowRow> {
        match self {
            Waiting::Row(r) => Cow::Borrowed(r),
            Waiting::Packed(p) => Cow::Owned(p.unpack()),
        }
    }
}

/// Sorts rows by window and key (those of a live server mostly come in that order already).
fn sort_waiting(rows: &mut [Waiting]) {
    if !rows.is_sorted_by(|a, b| a.order() <= b.order()) {
        rows.sort_by(|a, b| a.order().cmp(&b.order()));
    }
}

/// The record batches of `rows`, [`PUBLISH_GROUP_ROWS`] at a time (packed rows are unpacked
/// one batch at a time).
fn batches(rows: &[Waiting]) -> impl Iterator<Item = Result<RecordBatch, StoreError>> + '_ {
    rows.chunks(PUBLISH_GROUP_ROWS).map(|chunk| {
        let rows: Vec<Cow<'_, WindowRow>> = chunk.iter().map(Waiting::row).collect();
        batch(&rows)
    })
}

/// A published `windows` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFile {
    /// Its path.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl From<Published> for WindowFile {
    fn from(p: Published) -> WindowFile {
        WindowFile {
            path: p.path,
            rows: p.rows,
            bytes: p.bytes,
        }
    }
}

/// Writes window rows into `<spool>/windows/date=/hour=/<node>-<boot>-<seq>.parquet`.
#[derive(Debug)]
pub struct WindowsWriter {
    opts: SpoolOptions,
    props: WriterProperties,
    /// Rows per partition, with when the first of them came.
    pending: std::collections::BTreeMap<Partition, (std::time::Instant, Vec<Waiting>)>,
    /// Rows in `pending`, and their weight ([`Waiting::weight`]).
    pending_rows: usize,
    pending_bytes: usize,
    /// Without `rotate_age` (an import), the files being filled, a row group at a time, with
    /// when each was last written to.
    open: std::collections::BTreeMap<Partition, (u64, OpenFile)>,
    writes: u64,
    published: Vec<WindowFile>,
}

impl WindowsWriter {
    /// A writer into the spool of `opts` (its node, boot, sequence, zstd level, rotate age and
    /// fsync apply).
    pub fn new(opts: SpoolOptions) -> Result<WindowsWriter, StoreError> {
        let props = properties(opts.zstd_level)?;
        Ok(WindowsWriter {
            opts,
            props,
            pending: std::collections::BTreeMap::new(),
            pending_rows: 0,
            pending_bytes: 0,
            open: std::collections::BTreeMap::new(),
            writes: 0,
            published: Vec::new(),
        })
    }

    /// Buffers rows; they are published by [`WindowsWriter::rotate_aged`] or
    /// [`WindowsWriter::finish`], or as soon as a partition holds [`MAX_PENDING_ROWS`], which
    /// bounds the memory a long import holds (the error is that publish's).
    ///
    /// Without `rotate_age` (an import, whose spool nobody reads before it ends), a full
    /// partition, and the largest ones while the rows weigh more than `max_buffered_bytes`,
    /// become a row group of the partition's open file instead: a log whose requests come back
    /// to hundreds of hours fills a file per hour, not a file per visit, in row groups as large
    /// as the budget allows (each column chunk of a row group costs a zstd context).
    pub fn append(&mut self, rows: &[WindowRow]) -> Result<(), StoreError> {
        self.append_owned(rows.to_vec())
    }

    /// [`WindowsWriter::append`], taking the rows instead of copying them.
    pub fn append_owned(&mut self, rows: Vec<WindowRow>) -> Result<(), StoreError> {
        self.append_waiting(rows.into_iter().map(|r| Waiting::Row(Box::new(r))).collect())
    }

    /// [`WindowsWriter::append`], the rows packed: they wait in a tenth of the memory, and are
    /// unpacked as they are written (a live server's rows, which wait for `rotate_age`).
    pub fn append_packed(&mut self, rows: Vec<PackedRow>) -> Result<(), StoreError> {
        self.append_waiting(rows.into_iter().map(Waiting::Packed).collect())
    }

    fn append_waiting(&mut self, rows: Vec<Waiting>) -> Result<(), StoreError> {
        let mut full = Vec::new();
        self.pending_rows += rows.len();
        for r in rows {
            self.pending_bytes += r.weight();
            let p = Partition::of(r.window_start());
            let (_, pending) = self
                .pending
                .entry(p)
                .or_insert_with(|| (std::time::Instant::now(), Vec::new()));
            pending.push(r);
            if pending.len() == MAX_PENDING_ROWS {
                full.push(p);
            }
        }
        if self.opts.rotate_age.is_none() {
            for p in full {
                self.write_group(p)?;
            }
            while self.pending_bytes > self.opts.max_buffered_bytes {
                let Some(largest) = self
                    .pending
                    .iter()
                    .max_by_key(|(_, (_, rows))| rows.len())
                    .map(|(p, _)| *p)
                else {
                    break;
                };
                self.write_group(largest)?;
            }
            return Ok(());
        }
        // Rows that come late for an older partition would wait there until the end: once the
        // writer holds that many rows in all, every partition but the newest is published.
        if self.pending_rows >= MAX_PENDING_ROWS {
            let newest = self.pending.keys().next_back().copied();
            full.extend(self.pending.keys().copied().filter(|p| Some(*p) != newest));
        }
        full.sort_unstable();
        full.dedup();
        for p in full {
            self.publish(p)?;
        }
        Ok(())
    }

    /// Writes a partition's pending rows as a row group of its open file (opening one, and
    /// publishing the file written least recently when `max_open_files` hold a descriptor).
    fn write_group(&mut self, p: Partition) -> Result<(), StoreError> {
        let Some((_, mut rows)) = self.pending.remove(&p) else {
            return Ok(());
        };
        self.pending_rows -= rows.len();
        self.pending_bytes -= rows.iter().map(Waiting::weight).sum::<usize>();
        sort_waiting(&mut rows);
        self.writes += 1;
        let mut file = match self.open.remove(&p) {
            Some((_, file)) => file,
            None => {
                let descriptors = self.open.values().filter(|(_, f)| f.holds_descriptor()).count();
                if descriptors >= self.opts.max_open_files {
                    let lru = self
                        .open
                        .iter()
                        .filter(|(_, (_, f))| f.holds_descriptor())
                        .min_by_key(|(_, (used, _))| *used)
                        .map(|(p, _)| *p);
                    if let Some((_, mut file)) = lru.and_then(|lru| self.open.remove(&lru)) {
                        self.published.push(file.publish(self.opts.fsync)?.into());
                    }
                }
                let dir = self.opts.root.join(WINDOWS).join(p.dir());
                OpenFile::create(
                    &self.opts.root,
                    &dir,
                    &self.file_name(),
                    schema(),
                    self.props.clone(),
                    // A full partition's rows (MAX_PENDING_ROWS) make a row group at once
                    // rather than a spill read back at publication.
                    self.opts.row_group_rows.min(4 * MAX_PENDING_ROWS),
                    false,
                )
                .with_buffer_bytes(self.opts.max_buffered_bytes)
            }
        };
        let whole: Vec<Cow<'_, WindowRow>> = rows.iter().map(Waiting::row).collect();
        file.write_batch(batch(&whole)?, self.opts.fsync)?;
        if file.rows() >= self.opts.rotate_rows || file.bytes() >= self.opts.rotate_bytes {
            self.published.push(file.publish(self.opts.fsync)?.into());
        } else {
            self.open.insert(p, (self.writes, file));
        }
        Ok(())
    }

    fn file_name(&self) -> String {
        let seq = self
            .opts
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{}-{seq:06}.parquet", self.opts.node, self.opts.boot)
    }

    /// The rows buffered and not yet published (packed ones unpacked).
    pub fn pending(&self) -> impl Iterator<Item = Cow<'_, WindowRow>> {
        self.pending
            .values()
            .flat_map(|(_, rows)| rows.iter().map(Waiting::row))
    }

    /// Rows buffered and not yet published (nor written to an open file).
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Publishes the partitions whose first buffered row is `rotate_age` old.
    pub fn rotate_aged(&mut self) -> Result<(), StoreError> {
        let Some(age) = self.opts.rotate_age else {
            return Ok(());
        };
        let due: Vec<Partition> = self
            .pending
            .iter()
            .filter(|(_, (since, _))| since.elapsed() >= age)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.publish(p)?;
        }
        Ok(())
    }

    /// Publishes everything buffered; returns every file published by this writer.
    pub fn finish(mut self) -> Result<Vec<WindowFile>, StoreError> {
        let all: Vec<Partition> = self.pending.keys().copied().collect();
        for p in all {
            if self.open.contains_key(&p) {
                self.write_group(p)?;
            } else {
                self.publish(p)?;
            }
        }
        let open = std::mem::take(&mut self.open)
            .into_values()
            .map(|(_, f)| ((), f))
            .collect();
        for (_, _, published) in publish_many(open, self.opts.fsync) {
            self.published.push(published?.into());
        }
        Ok(self.published)
    }

    /// The files published so far.
    pub fn published(&self) -> &[WindowFile] {
        &self.published
    }

    fn publish(&mut self, p: Partition) -> Result<(), StoreError> {
        let Some((_, mut rows)) = self.pending.remove(&p) else {
            return Ok(());
        };
        self.pending_rows -= rows.len();
        self.pending_bytes -= rows.iter().map(Waiting::weight).sum::<usize>();
        sort_waiting(&mut rows);
        let dir = self.opts.root.join(WINDOWS).join(p.dir());
        ensure_dir(&self.opts.root, &dir, self.opts.fsync)?;
        let name = self.file_name();
        let (path, tmp) = (dir.join(&name), dir.join(format!(".{name}.tmp")));
        let written = (|| {
            let file = std::fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
            let mut w = ArrowWriter::try_new(file, schema(), Some(self.props.clone()))?;
            // A row group per PUBLISH_GROUP_ROWS rows: the writer encodes a whole row group in
            // memory, and a live server's partition can hold two windows of every series.
            for b in batches(&rows) {
                w.write(&b?)?;
                w.flush()?;
            }
            let file = w.into_inner()?;
            if self.opts.fsync {
                file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
            }
            let bytes = file.metadata().map_err(StoreError::io("stat", &tmp))?.len();
            std::fs::rename(&tmp, &path).map_err(StoreError::io("rename", &tmp))?;
            if self.opts.fsync {
                sync_dir(&dir)?;
            }
            Ok(bytes)
        })();
        match written {
            Ok(bytes) => {
                self.published.push(WindowFile {
                    path,
                    rows: rows.len() as u64,
                    bytes,
                });
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                // The rows stay buffered for the next attempt.
                self.pending_rows += rows.len();
                self.pending_bytes += rows.iter().map(Waiting::weight).sum::<usize>();
                self.pending.insert(p, (std::time::Instant::now(), rows));
                Err(e)
            }
        }
    }
}

/// The `windows` files under `spool` whose hour partition can hold a window starting in
/// `[since, until)`: a window is filed under the hour of its start.
pub fn window_files(
    spool: &Path,
    since: Option<Micros>,
    until: Option<Micros>,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut out: Vec<PathBuf> = window_partitions(spool, since, until)?
        .into_iter()
        .flat_map(|(_, files)| files)
        .collect();
    out.sort();
    Ok(out)
}

/// [`window_files`] per hour partition, as (the hour's first instant, its files), in time
/// order. Every row of a partition's files has its window start in that hour.
pub fn window_partitions(
    spool: &Path,
    since: Option<Micros>,
    until: Option<Micros>,
) -> Result<Vec<(Micros, Vec<PathBuf>)>, StoreError> {
    table_partitions(spool, WINDOWS, since, until)
}

/// The published files of the table named `table` per hour partition that can hold times in
/// `[since, until)`, as (the hour's first instant, its files), in time order.
pub fn table_partitions(
    spool: &Path,
    table: &str,
    since: Option<Micros>,
    until: Option<Micros>,
) -> Result<Vec<(Micros, Vec<PathBuf>)>, StoreError> {
    let first = since.map(Partition::of);
    let last = until.map(|u| Partition::of(u - 1));
    let mut out = Vec::new();
    let root = spool.join(table);
    for date_dir in list(&root)? {
        for hour_dir in list(&date_dir)? {
            let Some(p) = partition_of(&date_dir, &hour_dir) else {
                continue;
            };
            if first.is_some_and(|f| p < f) || last.is_some_and(|l| p > l) {
                continue;
            }
            let mut files: Vec<PathBuf> = list(&hour_dir)?
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            files.sort();
            crate::compact::drop_superseded(&mut files);
            out.push((p.start(), files));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// Every window row under `spool` whose window starts in `[since, until)`.
pub fn read_windows(
    spool: &Path,
    since: Option<Micros>,
    until: Option<Micros>,
) -> Result<Vec<WindowRow>, StoreError> {
    read_windows_where(spool, since, until, |_| true)
}

/// [`read_windows`] of the files `keep` accepts.
pub fn read_windows_where(
    spool: &Path,
    since: Option<Micros>,
    until: Option<Micros>,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<WindowRow>, StoreError> {
    read_windows_projected(spool, since, until, keep, &DISTRIBUTIONS)
}

/// [`read_windows_where`] decoding only the distributions named in `dists` (of
/// [`DISTRIBUTIONS`]); the others are left empty in the rows. Every other column is read.
pub fn read_windows_projected(
    spool: &Path,
    since: Option<Micros>,
    until: Option<Micros>,
    keep: impl Fn(&Path) -> bool,
    dists: &[&str],
) -> Result<Vec<WindowRow>, StoreError> {
    let mut rows = Vec::new();
    for f in window_files(spool, since, until)?.into_iter().filter(|f| keep(f)) {
        for b in read_projected(&f, dists)? {
            rows.extend(rows_of(&b)?.into_iter().filter(|r| {
                since.is_none_or(|s| r.window_start >= s) && until.is_none_or(|u| r.window_start < u)
            }));
        }
    }
    Ok(rows)
}

/// The batches of one `windows` file, with the columns of the distributions not in `dists`
/// left out of the decoding.
fn read_projected(path: &Path, dists: &[&str]) -> Result<Vec<RecordBatch>, StoreError> {
    let wanted = |name: &str| {
        DISTRIBUTIONS
            .iter()
            .find(|d| name.starts_with(&format!("{d}_")) && !name.starts_with("bytes_read"))
            .is_none_or(|d| dists.contains(d))
    };
    Ok(open_projected(path, wanted)?.collect::<Result<Vec<_>, _>>()?)
}

/// A reader of the top-level columns of a `windows` file whose names `wanted` accepts.
fn open_projected(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, StoreError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    let file = std::fs::File::open(path).map_err(StoreError::io("open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    Ok(builder.with_projection(mask).with_batch_size(64 * 1024).build()?)
}

/// Row `r` of a string column that may not have been read ("" then).
fn text_at(a: Option<&StringArray>, r: usize) -> &str {
    a.map_or("", |a| a.value(r))
}

/// The key columns a query can group or filter by.
pub const KEY_COLUMNS: [&str; 4] = ["frontend", "backend", "server", "status_class"];

/// Calls `f` with every row of `files` (`windows` files), borrowed straight from the decoded
/// columns: only `window_start`, the counts, the key columns named in `keys` (of
/// [`KEY_COLUMNS`]; the others read as empty) and the distributions named in `dists` (of
/// [`DISTRIBUTIONS`]; the others read as empty) are decoded, and no row is copied.
pub fn scan_windows(
    files: &[PathBuf],
    keys: &[&str],
    dists: &[&str],
    mut f: impl FnMut(&WindowRowRef<'_>),
) -> Result<(), StoreError> {
    let wanted = |name: &str| {
        matches!(name, "window_start" | "requests" | "bytes_read")
            || name.starts_with("status_") && name != "status_counts" && name != "status_class"
            || keys.contains(&name)
            || dists.iter().any(|d| {
                name.strip_prefix(d)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|rest| matches!(rest, "count" | "mean" | "max" | "hist"))
            })
    };
    for path in files {
        for b in open_projected(path, wanted)? {
            let b = b?;
            let start = col::<TimestampMicrosecondArray>(&b, "window_start")?;
            let key = |n: &str| -> Result<Option<&StringArray>, StoreError> {
                if keys.contains(&n) {
                    col::<StringArray>(&b, n).map(Some)
                } else {
                    Ok(None)
                }
            };
            let (fe, be, srv, class) = (
                key("frontend")?,
                key("backend")?,
                key("server")?,
                key("status_class")?,
            );
            let i = |n: &str| col::<Int64Array>(&b, n);
            let (requests, bytes) = (i("requests")?, i("bytes_read")?);
            let classes: Vec<&Int64Array> = StatusClass::ALL
                .iter()
                .map(|c| i(&format!("status_{}", c.name())))
                .collect::<Result<_, _>>()?;
            let mut hists = Vec::with_capacity(DISTRIBUTIONS.len());
            for d in DISTRIBUTIONS {
                hists.push(if dists.contains(&d) {
                    Some(Hist::new(
                        i(&format!("{d}_count"))?,
                        col::<Float64Array>(&b, &format!("{d}_mean"))?,
                        i(&format!("{d}_max"))?,
                        col::<ListArray>(&b, &format!("{d}_hist"))?,
                    )?)
                } else {
                    None
                });
            }
            for r in 0..b.num_rows() {
                let row = WindowRowRef {
                    window_start: start.value(r),
                    frontend: text_at(fe, r),
                    backend: text_at(be, r),
                    server: text_at(srv, r),
                    status_class: class.map_or(StatusClass::Other, |c| {
                        StatusClass::from_name(c.value(r)).unwrap_or(StatusClass::Other)
                    }),
                    requests: u64_of(requests.value(r)),
                    bytes_read: u64_of(bytes.value(r)),
                    status_classes: std::array::from_fn(|k| u64_of(classes[k].value(r))),
                    distributions: std::array::from_fn(|k| {
                        hists[k].as_ref().map_or(DistributionRef::EMPTY, |h| h.view(r))
                    }),
                };
                f(&row);
            }
        }
    }
    Ok(())
}

/// The visible entries of a folder (none when it does not exist).
fn list(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                op: "list",
                path: dir.to_owned(),
                source: e,
            })
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(StoreError::io("list", dir))?;
        if !e.file_name().to_string_lossy().starts_with(['.', '_']) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The partition of `date=YYYY-MM-DD/hour=HH` folders.
fn partition_of(date_dir: &Path, hour_dir: &Path) -> Option<Partition> {
    let date = date_dir.file_name()?.to_str()?.strip_prefix("date=")?;
    let hour: i64 = hour_dir
        .file_name()?
        .to_str()?
        .strip_prefix("hour=")?
        .parse()
        .ok()?;
    let mut parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(0..24).contains(&hour) {
        return None;
    }
    let t = weir_model::time::micros_from_civil(y as i32, m as u32, d as u32, hour as u32, 0, 0, 0);
    Some(Partition::of(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> SpoolOptions {
        SpoolOptions {
            fsync: false,
            ..SpoolOptions::new(dir, "n1", "b1")
        }
    }

    fn row(start: Micros, backend: &str) -> WindowRow {
        let d = |k: u64| Distribution {
            count: 3,
            mean: k as f64 + 0.5,
            max: 10 * k,
            buckets: vec![(k, 1), (2 * k, 2)],
        };
        WindowRow {
            window_start: start,
            window_secs: 10,
            node: "n1".into(),
            key: WindowKey {
                frontend: "fe".into(),
                backend: backend.into(),
                server: "s1".into(),
                status_class: StatusClass::ServerError,
            },
            requests: 3,
            bytes_read: 12_345,
            errors: 3,
            status_classes: [0, 0, 0, 0, 3, 0],
            status_counts: vec![(502, 1), (503, 2)],
            termination_counts: vec![("SC--".into(), 1), ("sH--".into(), 2)],
            distributions: [d(1), d(2), d(3), d(4), d(5), d(6), d(70_000_000_000)],
        }
    }

    #[test]
    fn rows_round_trip_through_a_batch() {
        let rows = vec![row(0, "be_a"), row(10_000_000, "be_b")];
        let b = batch(&rows).unwrap();
        assert_eq!(b.schema(), schema());
        assert_eq!(rows_of(&b).unwrap(), rows);
    }

    #[test]
    fn written_rows_are_read_back_by_time_range() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        let hour = 3_600_000_000;
        let rows = vec![row(0, "be_a"), row(10_000_000, "be_b"), row(hour, "be_a")];
        let mut w = WindowsWriter::new(opts).unwrap();
        w.append(&rows).unwrap();
        assert_eq!(w.pending_rows(), 3);
        let files = w.finish().unwrap();
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 3);
        assert_eq!(files.len(), 2, "one file per hour partition");
        assert_eq!(read_windows(dir.path(), None, None).unwrap().len(), 3);
        assert_eq!(
            read_windows(dir.path(), Some(hour), None).unwrap(),
            vec![rows[2].clone()]
        );
        assert_eq!(
            read_windows(dir.path(), Some(5_000_000), Some(hour)).unwrap(),
            vec![rows[1].clone()]
        );
        assert_eq!(window_files(dir.path(), Some(hour), None).unwrap().len(), 1);
    }

    #[test]
    fn packed_rows_wait_and_are_written_in_window_and_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![row(10_000_000, "be_a"), row(0, "be_b"), row(0, "be_a")];
        let mut w = WindowsWriter::new(options(dir.path())).unwrap();
        w.append_packed(rows.iter().map(PackedRow::pack).collect())
            .unwrap();
        let waiting: Vec<WindowRow> = w.pending().map(Cow::into_owned).collect();
        assert_eq!(waiting, rows, "pending rows unpack to what was appended");
        w.finish().unwrap();
        assert_eq!(
            read_windows(dir.path(), None, None).unwrap(),
            vec![rows[2].clone(), rows[1].clone(), rows[0].clone()]
        );
    }

    #[test]
    fn a_scan_borrows_the_asked_columns_of_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        let rows = vec![row(0, "be_a"), row(3_600_000_000, "be_b")];
        let mut w = WindowsWriter::new(opts).unwrap();
        w.append(&rows).unwrap();
        w.finish().unwrap();
        let parts = window_partitions(dir.path(), None, None).unwrap();
        assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 3_600_000_000]);
        let files: Vec<PathBuf> = parts.into_iter().flat_map(|p| p.1).collect();
        let mut seen = Vec::new();
        scan_windows(&files, &["backend"], &["total", "bytes"], |r| {
            let pairs = |d: &DistributionRef<'_>| {
                let mut v = Vec::new();
                d.buckets.for_each(|a, n| v.push((a, n)));
                (d.count, d.mean, d.max, v)
            };
            seen.push((
                r.window_start,
                r.backend.to_owned(),
                r.frontend.to_owned(),
                r.requests,
                r.status_classes,
                pairs(&r.distributions[4]),
                pairs(&r.distributions[6]),
                r.distributions[0].count,
            ));
        })
        .unwrap();
        let want: Vec<_> = rows
            .iter()
            .map(|r| {
                let d = |k: usize| {
                    let d = &r.distributions[k];
                    (d.count, d.mean, d.max, d.buckets.clone())
                };
                (
                    r.window_start,
                    r.key.backend.clone(),
                    String::new(),
                    3,
                    r.status_classes,
                    d(4),
                    d(6),
                    0,
                )
            })
            .collect();
        assert_eq!(seen, want, "unread keys and distributions are empty");
    }

    #[test]
    fn a_full_partition_is_published_at_once_and_old_ones_follow() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        let hour = 3_600_000_000;
        let mut w = WindowsWriter::new(opts).unwrap();
        w.append(&[row(0, "late")]).unwrap();
        let many: Vec<WindowRow> = (0..MAX_PENDING_ROWS as i64)
            .map(|i| row(hour + i * 10_000_000 % hour, "be"))
            .collect();
        w.append_owned(many).unwrap();
        assert_eq!(w.published().len(), 2, "the full partition and the older one");
        assert_eq!(w.pending_rows(), 0);
        assert_eq!(
            read_windows(dir.path(), None, None).unwrap().len(),
            MAX_PENDING_ROWS + 1
        );
    }

    #[test]
    fn a_published_file_is_written_in_row_groups_of_bounded_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WindowsWriter::new(options(dir.path())).unwrap();
        let n = 2 * PUBLISH_GROUP_ROWS + 5;
        let rows: Vec<WindowRow> = (0..n as i64).map(|i| row(i * 10_000, "be")).collect();
        w.append(&rows).unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 1);
        let meta = crate::testutil::parquet_metadata(&files[0].path);
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        let bound = PUBLISH_GROUP_ROWS as i64;
        assert_eq!(groups, [bound, bound, 5]);
        assert_eq!(read_windows(dir.path(), None, None).unwrap(), rows);
    }

    #[test]
    fn an_import_fills_one_file_per_partition_in_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000_000;
        let one = row_weight(&row(0, "be"));
        let mut w = WindowsWriter::new(SpoolOptions {
            fsync: false,
            rotate_age: None,
            // Room for ten rows: rows for 50 hours come back to each hour again and again.
            max_buffered_bytes: 10 * one,
            ..SpoolOptions::new(dir.path(), "n1", "b1")
        })
        .unwrap();
        let hours = 50;
        for round in 0..8 {
            let rows: Vec<WindowRow> = (0..hours)
                .map(|h| row(h * hour + round * 10_000_000, "be"))
                .collect();
            w.append_owned(rows).unwrap();
            assert!(w.pending_bytes <= 10 * one);
        }
        assert!(w.published().is_empty(), "files stay open until the end");
        let files = w.finish().unwrap();
        assert_eq!(files.len(), hours as usize);
        assert!(files.iter().all(|f| f.rows == 8));
        assert_eq!(
            read_windows(dir.path(), None, None).unwrap().len(),
            8 * hours as usize
        );
    }

    #[test]
    fn an_import_writes_a_full_partition_as_a_row_group_not_a_spill() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WindowsWriter::new(SpoolOptions {
            fsync: false,
            rotate_age: None,
            ..SpoolOptions::new(dir.path(), "n1", "b1")
        })
        .unwrap();
        let n = MAX_PENDING_ROWS + 10;
        let rows: Vec<WindowRow> = (0..n as i64).map(|i| row(i * 10_000, "be")).collect();
        w.append_owned(rows.clone()).unwrap();
        let partition = dir.path().join(WINDOWS).join(Partition::of(0).dir());
        let spills = std::fs::read_dir(partition)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "spill")
            })
            .count();
        assert_eq!(spills, 0, "the full partition went to its Parquet temporary");
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(read_windows(dir.path(), None, None).unwrap(), rows);
    }

    #[test]
    fn partitions_of_folders() {
        let p = partition_of(Path::new("x/date=2026-11-22"), Path::new("x/hour=01")).unwrap();
        assert_eq!(p.dir(), PathBuf::from("date=2026-11-22/hour=01"));
        assert!(partition_of(Path::new("date=2026-13-22"), Path::new("hour=01")).is_none());
        assert!(partition_of(Path::new("date=x"), Path::new("hour=01")).is_none());
    }
}
