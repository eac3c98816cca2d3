//! One row of the `windows` table: the partial aggregate of the requests of one tumbling
//! window and one series key (frontend, backend, server, status class).
//!
//! Rows are *partial*: two rows with the same window and key (from two pipeline workers, two
//! nodes, or a record that arrived after its window was written) add up to the row of their
//! union. So each timer's distribution is kept as the HDR histogram's non-empty buckets, each
//! at its lowest value, which weir re-records exactly and plain SQL sums per bucket. The
//! aggregator (`weir-aggregate`) builds rows; the spool writer (`weir-store`) writes them.

use crate::time::Micros;

/// The class of an HTTP status, the last part of a series key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusClass {
    /// 100–199.
    Info,
    /// 200–299.
    Success,
    /// 300–399.
    Redirect,
    /// 400–499.
    ClientError,
    /// 500–599.
    ServerError,
    /// No status (`-1`: the request never got a response) or a code outside 100–599.
    Other,
}

impl StatusClass {
    /// Every class, in the order of the `status_1xx` … `status_other` columns.
    pub const ALL: [StatusClass; 6] = [
        StatusClass::Info,
        StatusClass::Success,
        StatusClass::Redirect,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::Other,
    ];

    /// The class of a logged status.
    #[inline]
    pub fn of(status: Option<u16>) -> StatusClass {
        match status {
            Some(100..=199) => StatusClass::Info,
            Some(200..=299) => StatusClass::Success,
            Some(300..=399) => StatusClass::Redirect,
            Some(400..=499) => StatusClass::ClientError,
            Some(500..=599) => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }

    /// `1xx` … `5xx`, `other`: the `status_class` column and label.
    pub fn name(self) -> &'static str {
        match self {
            StatusClass::Info => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Other => "other",
        }
    }

    /// Reads [`StatusClass::name`] back.
    pub fn from_name(s: &str) -> Option<StatusClass> {
        StatusClass::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether requests of this class count as errors: a 5xx, or no response at all.
    pub fn is_error(self) -> bool {
        matches!(self, StatusClass::ServerError | StatusClass::Other)
    }
}

/// What a series is the requests of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowKey {
    /// The frontend name (without the TLS `~`).
    pub frontend: String,
    /// The backend name.
    pub backend: String,
    /// The server name (`<NOSRV>` and the like as logged).
    pub server: String,
    /// The status class.
    pub status_class: StatusClass,
}

/// The names of the distributions a window row keeps, in column order: HAProxy's five timers,
/// the data time, and the response bytes.
pub const DISTRIBUTIONS: [&str; 7] = [
    "request", "queue", "connect", "response", "total", "data", "bytes",
];

/// One distribution of a window row: exact count, mean and max, and the histogram's non-empty
/// buckets as (lowest value of the bucket, count), in increasing value order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distribution {
    /// How many values were recorded.
    pub count: u64,
    /// Their exact mean (0 when `count` is 0).
    pub mean: f64,
    /// Their exact maximum (0 when `count` is 0).
    pub max: u64,
    /// Non-empty buckets, `(value, n)`: `n` values fell in the bucket whose lowest value is
    /// `value`. The counts add up to `count`.
    pub buckets: Vec<(u64, u64)>,
}

/// One row of the `windows` table.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    /// The window's first instant (inclusive), UTC.
    pub window_start: Micros,
    /// The window's length in seconds.
    pub window_secs: u32,
    /// The node that aggregated it.
    pub node: String,
    /// The series.
    pub key: WindowKey,
    /// Requests counted.
    pub requests: u64,
    /// Bytes sent to clients.
    pub bytes_read: u64,
    /// Requests of an error class ([`StatusClass::is_error`]).
    pub errors: u64,
    /// Requests per status class, in [`StatusClass::ALL`] order.
    pub status_classes: [u64; 6],
    /// Requests per status code (`-1` for none), ascending.
    pub status_counts: Vec<(i32, u64)>,
    /// Requests per termination state, ascending.
    pub termination_counts: Vec<(String, u64)>,
    /// The distributions, in [`DISTRIBUTIONS`] order.
    pub distributions: [Distribution; 7],
}

/// A histogram's buckets as stored, borrowed: (lowest value, count) pairs of an owned
/// [`Distribution`], or the value and count columns of a stored row.
#[derive(Debug, Clone, Copy)]
pub enum BucketsRef<'a> {
    /// The pairs of a [`Distribution`].
    Pairs(&'a [(u64, u64)]),
    /// Millisecond values (the timers' `int32` column) and their counts.
    Ms(&'a [i32], &'a [i64]),
    /// Wide values (the bytes' `int64` column) and their counts.
    Wide(&'a [i64], &'a [i64]),
}

impl BucketsRef<'_> {
    /// Calls `f(value, n)` for each bucket, in stored order; negative numbers (which weir never
    /// writes) read as 0.
    #[inline]
    pub fn for_each(self, mut f: impl FnMut(u64, u64)) {
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        match self {
            BucketsRef::Pairs(p) => p.iter().for_each(|&(v, n)| f(v, n)),
            BucketsRef::Ms(v, n) => v.iter().zip(n).for_each(|(&v, &n)| f(u(i64::from(v)), u(n))),
            BucketsRef::Wide(v, n) => v.iter().zip(n).for_each(|(&v, &n)| f(u(v), u(n))),
        }
    }
}

/// A [`Distribution`] borrowed from where it is stored.
#[derive(Debug, Clone, Copy)]
pub struct DistributionRef<'a> {
    /// How many values were recorded.
    pub count: u64,
    /// Their exact mean.
    pub mean: f64,
    /// Their exact maximum.
    pub max: u64,
    /// The non-empty buckets.
    pub buckets: BucketsRef<'a>,
}

impl DistributionRef<'_> {
    /// A distribution that recorded nothing (or was not read).
    pub const EMPTY: DistributionRef<'static> = DistributionRef {
        count: 0,
        mean: 0.0,
        max: 0,
        buckets: BucketsRef::Pairs(&[]),
    };

    /// The exact sum of the values, from the count and the mean.
    pub fn sum(&self) -> u64 {
        (self.mean * self.count as f64).round() as u64
    }
}

/// What a query reads of a window row, borrowed: the time, the key, the counts and the
/// distributions. Readers build it straight from stored columns, without an owned
/// [`WindowRow`] per row.
#[derive(Debug, Clone, Copy)]
pub struct WindowRowRef<'a> {
    /// The window's first instant.
    pub window_start: Micros,
    /// The frontend (empty when not read).
    pub frontend: &'a str,
    /// The backend (empty when not read).
    pub backend: &'a str,
    /// The server (empty when not read).
    pub server: &'a str,
    /// The status class.
    pub status_class: StatusClass,
    /// Requests counted.
    pub requests: u64,
    /// Bytes sent to clients.
    pub bytes_read: u64,
    /// Requests per status class, in [`StatusClass::ALL`] order.
    pub status_classes: [u64; 6],
    /// The distributions, in [`DISTRIBUTIONS`] order ([`DistributionRef::EMPTY`] when not
    /// read).
    pub distributions: [DistributionRef<'a>; 7],
}

impl WindowRow {
    /// The row as a [`WindowRowRef`].
    pub fn view(&self) -> WindowRowRef<'_> {
        WindowRowRef {
            window_start: self.window_start,
            frontend: &self.key.frontend,
            backend: &self.key.backend,
            server: &self.key.server,
            status_class: self.key.status_class,
            requests: self.requests,
            bytes_read: self.bytes_read,
            status_classes: self.status_classes,
            distributions: std::array::from_fn(|k| {
                let d = &self.distributions[k];
                DistributionRef {
                    count: d.count,
                    mean: d.mean,
                    max: d.max,
                    buckets: BucketsRef::Pairs(&d.buckets),
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_statuses() {
        assert_eq!(StatusClass::of(Some(200)), StatusClass::Success);
        assert_eq!(StatusClass::of(Some(503)), StatusClass::ServerError);
        assert_eq!(StatusClass::of(None), StatusClass::Other);
        assert_eq!(StatusClass::of(Some(999)), StatusClass::Other);
        for c in StatusClass::ALL {
            assert_eq!(StatusClass::from_name(c.name()), Some(c));
        }
        assert!(StatusClass::Other.is_error() && !StatusClass::ClientError.is_error());
    }
}
