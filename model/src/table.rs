//! The tables of the spool, and which table each kind of record lands in: the one place that
//! maps records to tables, used by the spool writer, by `serve`'s counters and by readers that
//! name a table.

use std::fmt;

use crate::record::Record;
use crate::time::Micros;

/// A table of the spool: one folder `<spool>/<name>/`, one schema (`weir-store` holds the
/// schemas).
///
/// Every line lands in exactly one of [`Table::LINES`]; `metrics` holds rows derived from app
/// lines (their l2met metrics), several or none a line. The `windows` table has a writer of
/// its own and is not listed here. Every match over it is exhaustive so the compiler lists
/// what a new table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// HAProxy HTTP and HTTPS request logs.
    Requests,
    /// HAProxy TCP session logs.
    Tcp,
    /// Application lines and HAProxy event / connection-error lines.
    App,
    /// Lines that could not be parsed, verbatim.
    Rejects,
    /// l2met metrics of app lines (`measure#`, `count#`, `sample#`), a row each.
    Metrics,
}

impl Table {
    /// Every table, in [`Table::index`] order.
    pub const ALL: [Table; 5] = [
        Table::Requests,
        Table::Tcp,
        Table::App,
        Table::Rejects,
        Table::Metrics,
    ];

    /// The tables a line's own row lands in, one per line: counting their rows counts lines.
    pub const LINES: [Table; 4] = [Table::Requests, Table::Tcp, Table::App, Table::Rejects];

    /// The folder name under the spool root, also the name used by queries.
    pub fn name(self) -> &'static str {
        match self {
            Table::Requests => "requests",
            Table::Tcp => "tcp",
            Table::App => "app",
            Table::Rejects => "rejects",
            Table::Metrics => "metrics",
        }
    }

    /// The table named `name`, as [`Table::name`] spells it.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A dense index (0..[`Table::ALL`]`.len()`) for per-table arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'a> Record<'a> {
    /// The `backend` column of its row (requests and tcp), which tails filter and show.
    #[inline]
    pub fn backend(&self) -> Option<&'a str> {
        match self {
            Record::Http(r) => Some(r.backend),
            Record::Tcp(r) => Some(r.backend),
            Record::App(_) | Record::Reject(_) => None,
        }
    }

    /// The `status` column of its row (requests).
    #[inline]
    pub fn status(&self) -> Option<u16> {
        match self {
            Record::Http(r) => r.status,
            _ => None,
        }
    }

    /// The `total_ms` column of its row (requests: Ta; tcp: Tt).
    #[inline]
    pub fn total_ms(&self) -> Option<i32> {
        match self {
            Record::Http(r) => r.timings.total,
            Record::Tcp(r) => r.total_ms,
            Record::App(_) | Record::Reject(_) => None,
        }
    }

    /// The spool table this record belongs to.
    #[inline]
    pub fn table(&self) -> Table {
        match self {
            Record::Http(_) => Table::Requests,
            Record::Tcp(_) => Table::Tcp,
            Record::App(_) => Table::App,
            Record::Reject(_) => Table::Rejects,
        }
    }

    /// The time a row of this record is filed under (its table's `ts`, the partition's hour):
    /// the accept date of a request or session, an application line's own time, else when
    /// weir received it (`received_at`, `None` when unknown).
    #[inline]
    pub fn event_time(&self, received_at: Option<Micros>) -> Option<Micros> {
        match self {
            Record::Http(r) => Some(r.accept_ts),
            Record::Tcp(r) => Some(r.accept_ts),
            Record::App(r) => r.ts.or(received_at),
            Record::Reject(_) => received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AppKind, AppLog, Reject, RejectReason};

    #[test]
    fn names_and_indexes_round_trip() {
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
            assert_eq!(Table::ALL[t.index()], t);
            assert_eq!(t.to_string(), t.name());
        }
        assert_eq!(Table::from_name("windows"), None);
    }

    #[test]
    fn records_choose_their_table_and_time() {
        let reject = Record::Reject(Reject {
            reason: RejectReason::Empty,
            message: b"",
        });
        assert_eq!(reject.table(), Table::Rejects);
        assert_eq!(reject.event_time(Some(7)), Some(7));
        assert_eq!(
            (reject.backend(), reject.status(), reject.total_ms()),
            (None, None, None)
        );
        let app = |ts| {
            Record::App(AppLog {
                kind: AppKind::Plain,
                ts,
                message: "",
                client: None,
                subject: None,
                router: None,
            })
        };
        assert_eq!(app(Some(3)).table(), Table::App);
        assert_eq!(app(Some(3)).event_time(Some(7)), Some(3));
        assert_eq!(app(None).event_time(Some(7)), Some(7));
        assert_eq!(app(None).event_time(None), None);
    }
}
