//! weir's shared vocabulary: what a parsed log line *is*, with no I/O.
//!
//! Bytes come in at `weir-ingest`, which turns each line into a [`Line`]: the syslog
//! [`SyslogHeader`] plus one [`Record`]: an HAProxy HTTP request ([`HttpLog`]), a TCP session
//! ([`TcpLog`]), an application or HAProxy event line ([`AppLog`]), or a [`Reject`] that keeps
//! the bytes verbatim with the [`RejectReason`]. Records borrow from the input buffer (`'a`): the
//! hot path parses without allocating, and the stages that keep data (`weir-store`) or count it
//! (`weir-aggregate`) copy only what they need.
//!
//! [`Table`] names the spool's tables, and [`Record::table`] says which one each record lands
//! in: that mapping exists here once, for the writer and for `serve`.
//!
//! [`time`] holds the calendar arithmetic shared by parsers and writers (microseconds since the
//! Unix epoch, UTC, everywhere), and [`Timer`] names HAProxy's five timers in one place.
//! [`window`] defines a row of the `windows` table, the mergeable partial aggregate that the
//! aggregator builds and the spool writer stores, and [`packed`] the same row in a few hundred
//! bytes for the rows a live server keeps; [`metric`] the l2met metrics an app line may carry,
//! rows of the `metrics` table.

pub mod fields;
pub mod metric;
pub mod packed;
pub mod record;
pub mod table;
pub mod time;
pub mod window;

pub use fields::{FieldSource, Fields};
pub use metric::{BaseUnit, Metric, MetricKind};
pub use packed::PackedRow;
pub use record::{
    AppKind, AppLog, Captures, ClientAddr, HttpLog, Line, Record, Reject, RejectReason, RequestLine,
    RouterLog, SyslogHeader, TcpLog, Timer, Timings, TlsInfo,
};
pub use table::Table;
pub use time::Micros;
pub use window::{
    BucketsRef, Distribution, DistributionRef, StatusClass, WindowKey, WindowRow, WindowRowRef,
};
