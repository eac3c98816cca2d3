//! The one error type of weir-store. Appending a record fails only on I/O or encoding errors of
//! the files being written; a record itself is never "invalid" here (the parser decided that).

use std::path::PathBuf;

/// Everything that can go wrong while writing or reading the spool.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation on `path` failed (create, write, fsync, rename, read).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: `create`, `rename`, `fsync`, ...
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet encoder or decoder failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow rejected a batch (a schema and its columns disagree).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A [`crate::SpoolOptions`] value is unusable.
    #[error("invalid spool option {name}: {reason}")]
    InvalidOption {
        /// The option's field name.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The spool's `FORMAT` file names a version this build does not write or read.
    #[error("{}: spool format {found:?}, this build uses {expected}", path.display())]
    FormatMismatch {
        /// The `FORMAT` file.
        path: PathBuf,
        /// What the file says.
        found: String,
        /// [`crate::SPOOL_FORMAT_VERSION`].
        expected: u32,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done and where.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}
