//! The `summary` report: what the input held (lines by kind, rejects by reason), the time it
//! spans, and the headline numbers of its HTTP requests.

use weir_model::time::format_rfc3339;
use weir_model::{AppKind, Line, Micros, Record, RejectReason};

use super::stats::pct;
use super::{Cell, ReportTable};
use crate::timers::TimerSeries;
use crate::Error;

/// Counters of the `summary` report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    lines: u64,
    http: u64,
    tcp: u64,
    app: u64,
    events: u64,
    conn_errors: u64,
    rejects: [u64; RejectReason::ALL.len()],
    /// Earliest and latest accept date of HTTP and TCP lines.
    first: Option<Micros>,
    last: Option<Micros>,
    http_bytes: u64,
    tcp_bytes: u64,
    /// Index 0 = other, 1..=5 = 1xx..5xx.
    classes: [u64; 6],
    ok: u64,
    total: TimerSeries,
}

impl Summary {
    pub(crate) fn new(sigfig: u8) -> Result<Summary, Error> {
        Ok(Summary {
            lines: 0,
            http: 0,
            tcp: 0,
            app: 0,
            events: 0,
            conn_errors: 0,
            rejects: [0; RejectReason::ALL.len()],
            first: None,
            last: None,
            http_bytes: 0,
            tcp_bytes: 0,
            classes: [0; 6],
            ok: 0,
            total: TimerSeries::new(sigfig)?,
        })
    }

    fn seen(&mut self, ts: Micros) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }

    pub(crate) fn add(&mut self, line: &Line<'_>) {
        self.lines += 1;
        match &line.record {
            Record::Http(h) => {
                self.http += 1;
                self.seen(h.accept_ts);
                self.http_bytes += h.bytes_read;
                let class = match h.status {
                    Some(s @ 100..=599) => (s / 100) as usize,
                    _ => 0,
                };
                self.classes[class] += 1;
                let t = &h.timings;
                let ok = t.request.is_some()
                    && t.queue.is_some()
                    && t.connect.is_some()
                    && t.response.is_some()
                    && t.total.is_some();
                self.ok += ok as u64;
                if let Some(v) = t.total {
                    self.total.record(v.max(0) as u64);
                }
            }
            Record::Tcp(t) => {
                self.tcp += 1;
                self.seen(t.accept_ts);
                self.tcp_bytes += t.bytes_read;
            }
            Record::App(a) => match a.kind {
                AppKind::Plain | AppKind::Router => self.app += 1,
                AppKind::HaproxyEvent => self.events += 1,
                AppKind::HaproxyConnError => self.conn_errors += 1,
            },
            Record::Reject(r) => {
                if let Some(i) = RejectReason::ALL.iter().position(|x| *x == r.reason) {
                    self.rejects[i] += 1;
                }
            }
        }
    }

    pub(crate) fn merge(&mut self, o: &Summary) -> Result<(), Error> {
        self.lines += o.lines;
        self.http += o.http;
        self.tcp += o.tcp;
        self.app += o.app;
        self.events += o.events;
        self.conn_errors += o.conn_errors;
        for (a, b) in self.rejects.iter_mut().zip(o.rejects) {
            *a += b;
        }
        if let Some(f) = o.first {
            self.seen(f);
        }
        if let Some(l) = o.last {
            self.seen(l);
        }
        self.http_bytes += o.http_bytes;
        self.tcp_bytes += o.tcp_bytes;
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        self.ok += o.ok;
        self.total.merge(&o.total)
    }

    /// `key,value` rows. Reject reasons appear only when they occurred.
    pub(crate) fn rows(&self) -> ReportTable {
        let mut t = ReportTable::new(&[], ["key", "value"]);
        let mut kv = |k: &str, v: Cell| t.rows.push(vec![k.into(), v]);
        kv("lines", self.lines.into());
        kv("http_requests", self.http.into());
        kv("tcp_sessions", self.tcp.into());
        kv("app_lines", self.app.into());
        kv("haproxy_events", self.events.into());
        kv("haproxy_conn_errors", self.conn_errors.into());
        kv("rejects", self.rejects.iter().sum::<u64>().into());
        for (reason, n) in RejectReason::ALL.iter().zip(self.rejects).filter(|(_, n)| *n > 0) {
            kv(&format!("rejects_{}", reason.as_str()), n.into());
        }
        kv("first_ts", self.first.map(format_rfc3339).into());
        kv("last_ts", self.last.map(format_rfc3339).into());
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) => (l - f) as f64 / 1e6,
            _ => 0.0,
        };
        kv("span_secs", Cell::fixed(span, 3));
        let rate = if span > 0.0 {
            Cell::fixed((self.http + self.tcp) as f64 / span, 3)
        } else {
            Cell::Null
        };
        kv("requests_per_sec", rate);
        kv("http_bytes", self.http_bytes.into());
        kv("tcp_bytes", self.tcp_bytes.into());
        let names = [
            "status_1xx",
            "status_2xx",
            "status_3xx",
            "status_4xx",
            "status_5xx",
            "status_other",
        ];
        for (name, class) in names.into_iter().zip([1, 2, 3, 4, 5, 0]) {
            kv(name, self.classes[class].into());
        }
        kv("ok", self.ok.into());
        kv("ok_pct", pct(self.ok, self.http));
        let s = self.total.summary();
        kv("total_mean_ms", s.map(|s| Cell::fixed(s.mean, 3)).into());
        kv("total_p50_ms", s.map(|s| s.p50).into());
        kv("total_p99_ms", s.map(|s| s.p99).into());
        kv("total_max_ms", s.map(|s| s.max).into());
        t
    }
}
