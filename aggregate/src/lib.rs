//! weir-aggregate: records in, mergeable summaries out.
//!
//! Every aggregate here is a *partial* aggregate: it can be built on any slice of the input
//! and merged with another one built on another slice, and the merge is exact (counters add,
//! HDR histograms add bucket by bucket). That is what lets `weir report` give each worker
//! thread its own accumulator, and what lets readers of the windows table merge rows from
//! many windows and many nodes.
//!
//! Layout, from the core outwards:
//!
//! - [`hdr`]: how weir builds HDR histograms (milliseconds, configurable significant figures,
//!   auto-resizing) and how it serializes them (V2 + deflate, the `t_hdr` column format).
//! - [`timers`]: [`TimerHistograms`], one histogram per HAProxy timer (TR, Tw, Tc, Tr, Ta)
//!   plus the data time Td, with exact count, sum and max beside each. It is the shared core
//!   of the reports and of the tumbling-window aggregator.
//! - [`window`]: the tumbling-window aggregator of DESIGN §2: [`WindowAggregator`] keys
//!   [`WindowStats`] by (window, frontend, backend, server, status class), closes windows by
//!   a watermark with lateness, bounds its series, and emits mergeable
//!   [`weir_model::WindowRow`]s; [`merge_rows`] is the readers' merge.
//! - [`sparse`]: [`sparse::SparseSeries`], an HDR histogram that keeps only its non-empty
//!   buckets (bucketing identical to hdrhistogram's), the windows' series.
//! - [`exposition`]: closed window rows folded into Prometheus-style cumulative counters and
//!   fixed-bound histograms per series, and the last closed window's quantiles per backend.
//! - [`l2met`]: the live l2met metrics of app lines (`measure#` into windowed histograms,
//!   `count#` into sums, `sample#` as levels) behind `/metrics`.
//! - [`query`]: `weir query` over window rows: filter, group by any part of the key,
//!   re-bucket by period, merge, then read quantiles and Apdex off the merged histograms.
//! - [`report`]: the `weir report` kinds (summary, status, servers, backends, urls,
//!   termination, timers). [`ReportAccumulator`] computes only what its kind needs,
//!   `add`s one [`weir_model::Line`] at a time, `merge`s, and renders a [`ReportTable`].
//!
//! Nothing here panics on input: a line a report has no use for is skipped, a value out of a
//! histogram's range is clamped, and the only errors ([`Error`]) are configuration mistakes
//! (an impossible precision) or merging things that do not belong together.

pub mod exposition;
pub mod hdr;
pub mod l2met;
pub mod query;
pub mod report;
pub mod sparse;
pub mod timers;
pub mod window;

pub use report::{Dim, ReportAccumulator, ReportKind, ReportSpec, ReportTable, TimeRange};
pub use timers::{TimerHistograms, TimerId, TimerSummary};
pub use window::{
    merge_ordered, merge_pair, merge_rows, WindowAggregator, WindowConfig, WindowCounters, WindowStats,
};

/// What can go wrong while aggregating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The precision asked for is outside 1..=5 significant figures.
    #[error("significant figures must be 1 to 5, not {0}")]
    Precision(u8),
    /// hdrhistogram refused to create a histogram.
    #[error("cannot create a histogram with {sigfig} significant figures: {source}")]
    Histogram {
        /// The precision asked for.
        sigfig: u8,
        /// What hdrhistogram said.
        #[source]
        source: hdrhistogram::CreationError,
    },
    /// Two histograms could not be added (different precision).
    #[error("cannot merge histograms: {0}")]
    Merge(#[from] hdrhistogram::AdditionError),
    /// Two accumulators of different kinds, groupings or precisions were merged.
    #[error("cannot merge a {right} accumulator into a {left} accumulator")]
    Mismatch {
        /// What the accumulator merged into was.
        left: String,
        /// What the other one was.
        right: String,
    },
    /// A histogram could not be serialized.
    #[error("cannot serialize a histogram: {0}")]
    Serialize(#[from] hdrhistogram::serialization::V2DeflateSerializeError),
    /// Bytes did not hold a serialized histogram.
    #[error("cannot read a serialized histogram: {0}")]
    Deserialize(#[from] hdrhistogram::serialization::DeserializeError),
}
