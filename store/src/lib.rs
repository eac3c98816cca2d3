//! weir-store: records in, Parquet out.
