//! weir-store: parsed records in, zstd Parquet files out, in a Hive-partitioned spool.
//!
//! The data path, in module order: [`schema`] names the tables and their Arrow schemas (the
//! on-disk contract, versioned by [`SPOOL_FORMAT_VERSION`]); `rows` appends a
//! [`weir_model::Line`] into the Arrow builders of its table, with [`weir_ingest::kv`] splitting
//! application messages into `key=value` fields; [`partition`] picks the `date=/hour=` folder; [`writer`]'s
//! [`SpoolWriter`] buffers rows per table and hour, sorts each row group by time, and hands them
//! to a `file` that is written as a hidden temporary and published atomically; the `pool` of
//! open files lets the writers of one spool fill one file per partition between them;
//! [`reader`] lists and decodes published files. [`wal`] is the write-ahead log `serve` appends
//! every batch to before parsing it, and reads back after a crash. [`compact`] merges a
//! partition's files into one, atomically, for `weir spool compact`.
//!
//! ```text
//! <spool>/FORMAT
//! <spool>/requests/date=2026-11-22/hour=01/<node>-<boot>-<seq>.parquet
//! <spool>/tcp/...  <spool>/app/...  <spool>/rejects/...
//! <spool>/wal/<node>-<yyyymmdd>-<boot>-<seq>.wal
//! ```
//!
//! Invariants: a published file is complete and never rewritten (compaction replaces files with
//! a new one and deletes them, never changes one); a file name is unique across
//! the writers that share a spool (node, boot and a shared sequence); within a row group rows are
//! in time order.

pub mod compact;
mod error;
mod file;
pub mod partition;
mod pool;
pub mod reader;
mod rows;
pub mod schema;
#[cfg(test)]
mod testutil;
pub mod wal;
pub mod windows;
pub mod writer;

pub use error::StoreError;
pub use file::PublishedFile;
pub use reader::{read_file, read_table, table_files};
pub use schema::{Table, TableSchema, SPOOL_FORMAT_VERSION};
pub use writer::{OpenFiles, RecordMeta, SpoolOptions, SpoolStats, SpoolWriter};
