//! weir-aggregate: records in, summaries out.
