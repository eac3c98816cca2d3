//! The spool reader: lists a table's published files and decodes them into Arrow batches. Used
//! by tests and `weir query`; heavier analysis belongs to DuckDB, pyarrow or R on the same files.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::StoreError;
use crate::schema::Table;

/// The published files of `table` under `spool`, in path order (partition, then name). Hidden
/// files (temporaries of writers at work) are skipped, and so are the inputs of a compacted file
/// that an interrupted compaction left beside it ([`crate::compact::drop_superseded`]). A table
/// never written has none.
pub fn table_files(spool: &Path, table: Table) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    collect(&spool.join(table.name()), &mut out)?;
    out.sort();
    crate::compact::drop_superseded(&mut out);
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io {
                op: "list",
                path: dir.to_owned(),
                source: e,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(StoreError::io("stat", &path))?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if name.ends_with(".parquet") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every row of `table` in `spool`, as the batches of its files in [`table_files`] order.
pub fn read_table(spool: &Path, table: Table) -> Result<Vec<RecordBatch>, StoreError> {
    let mut batches = Vec::new();
    for path in table_files(spool, table)? {
        batches.extend(read_file(&path)?);
    }
    Ok(batches)
}

/// Every row of one Parquet file.
pub fn read_file(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    let file = std::fs::File::open(path).map_err(StoreError::io("open", path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
