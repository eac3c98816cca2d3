//! One Parquet file on its way into the spool: written as a hidden `.<name>.parquet.tmp` beside
//! its final place, then published atomically (close, fsync the file, rename, fsync the folder).
//! A published file is never written again. The temporary name starts with a dot because
//! pyarrow, R's arrow and Spark skip hidden files when they list a dataset, so a live spool stays
//! readable while files are being written.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

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

/// A Parquet file being written.
pub(crate) struct OpenFile {
    table: Table,
    tmp: PathBuf,
    path: PathBuf,
    /// `None` once published (or after a failure), so that `Drop` knows what to clean up.
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("tmp", &self.tmp)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl OpenFile {
    /// Creates `dir/.<name>.tmp`, to be published as `dir/<name>`.
    pub(crate) fn create(
        table: Table,
        dir: &Path,
        name: &str,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<OpenFile, StoreError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(StoreError::io("create", &tmp))?;
        let writer = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(OpenFile {
            table,
            tmp,
            path,
            writer: Some(writer),
            rows: 0,
        })
    }

    /// Writes `batch` as one complete row group.
    pub(crate) fn write_row_group(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(StoreError::Io {
                op: "write",
                path: self.tmp.clone(),
                source: std::io::Error::other("file already closed"),
            });
        };
        w.write(batch)?;
        // One sorted batch per row group keeps `sorting_columns` true and leaves no encoded
        // pages buffered between batches.
        w.flush()?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Adds a key-value pair to the footer written at publication.
    pub(crate) fn append_metadata(&mut self, key: &str, value: &str) {
        if let Some(w) = self.writer.as_mut() {
            w.append_key_value_metadata(KeyValue::new(key.to_owned(), value.to_owned()));
        }
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written to the file so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.bytes_written() as u64)
    }

    /// Writes the footer and moves the file to its final name, durably when `fsync`. A
    /// failure before the rename removes the temporary: nothing of it is in the spool, and the
    /// caller may write its rows again. The rename is the point of no return; a failed fsync of
    /// the folder after it is not an error, since writing the rows again would publish them
    /// twice (the file is in place; only a power cut in the next moments could lose its name).
    pub(crate) fn publish(mut self, fsync: bool) -> Result<PublishedFile, StoreError> {
        let Some(w) = self.writer.take() else {
            return Err(StoreError::Io {
                op: "publish",
                path: self.tmp.clone(),
                source: std::io::Error::other("file already closed"),
            });
        };
        let tmp = self.tmp.clone();
        let written = (|| {
            let file = w.into_inner()?;
            if fsync {
                file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
            }
            let bytes = file.metadata().map_err(StoreError::io("stat", &tmp))?.len();
            drop(file);
            std::fs::rename(&tmp, &self.path).map_err(StoreError::io("rename", &tmp))?;
            Ok(bytes)
        })();
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if fsync {
            if let Some(dir) = self.path.parent() {
                let _ = sync_dir(dir);
            }
        }
        crash_after_publish();
        Ok(PublishedFile {
            table: self.table,
            path: self.path.clone(),
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for OpenFile {
    /// A file dropped unpublished (an error, or a writer dropped without `finish`) removes its
    /// temporary: it was never part of the spool.
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
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
