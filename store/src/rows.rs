//! Column builders, one struct per table: a [`weir_model::Line`] is appended field by field into
//! Arrow builders (strings are copied into each builder's contiguous buffer, so appending a row
//! allocates nothing except when a buffer grows), and [`TableRows::finish`] hands the columns
//! over in schema order.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    ListBuilder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::ArrayRef;
use weir_model::record::unescape;
use weir_model::{
    AppKind, AppLog, Captures, ClientAddr, Fields, HttpLog, Metric, Micros, Reject, RequestLine,
    SyslogHeader, TcpLog,
};

use crate::schema::Table;
use weir_ingest::appfields::for_each_app_field;

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// HAProxy's counters are unsigned; the columns are `INT32` (see [`crate::schema`]). Values that
/// do not fit (never seen in practice) saturate rather than wrap.
#[inline]
fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[inline]
fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `ts` .. `server`: the columns `requests` and `tcp` share.
#[derive(Debug)]
struct ConnectionHead {
    ts: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    host: StringBuilder,
    process: StringBuilder,
    pid: StringBuilder,
    client_ip: StringBuilder,
    client_port: Int32Builder,
    frontend: StringBuilder,
    ssl: BooleanBuilder,
    backend: StringBuilder,
    server: StringBuilder,
}

impl ConnectionHead {
    fn new() -> Self {
        ConnectionHead {
            ts: timestamps(),
            received_at: timestamps(),
            host: StringBuilder::new(),
            process: StringBuilder::new(),
            pid: StringBuilder::new(),
            client_ip: StringBuilder::new(),
            client_port: Int32Builder::new(),
            frontend: StringBuilder::new(),
            ssl: BooleanBuilder::new(),
            backend: StringBuilder::new(),
            server: StringBuilder::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn append(
        &mut self,
        h: &SyslogHeader<'_>,
        received_at: Option<Micros>,
        ts: Micros,
        client: &ClientAddr<'_>,
        frontend: &str,
        ssl: bool,
        backend: &str,
        server: &str,
    ) {
        self.ts.append_value(ts);
        self.received_at.append_option(received_at);
        self.host.append_option(h.host);
        self.process.append_option(h.app);
        self.pid.append_option(h.procid);
        self.client_ip.append_value(client.ip);
        self.client_port.append_option(client.port.map(i32::from));
        self.frontend.append_value(frontend);
        self.ssl.append_value(ssl);
        self.backend.append_value(backend);
        self.server.append_value(server);
    }

    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        out.push(Arc::new(self.ts.finish()));
        out.push(Arc::new(self.received_at.finish()));
        out.push(Arc::new(self.host.finish()));
        out.push(Arc::new(self.process.finish()));
        out.push(Arc::new(self.pid.finish()));
        out.push(Arc::new(self.client_ip.finish()));
        out.push(Arc::new(self.client_port.finish()));
        out.push(Arc::new(self.frontend.finish()));
        out.push(Arc::new(self.ssl.finish()));
        out.push(Arc::new(self.backend.finish()));
        out.push(Arc::new(self.server.finish()));
    }
}

/// `actconn` .. `backend_queue`.
#[derive(Debug)]
struct ConnectionCounters {
    actconn: Int32Builder,
    feconn: Int32Builder,
    beconn: Int32Builder,
    srv_conn: Int32Builder,
    retries: Int32Builder,
    redispatched: BooleanBuilder,
    srv_queue: Int32Builder,
    backend_queue: Int32Builder,
}

impl ConnectionCounters {
    fn new() -> Self {
        ConnectionCounters {
            actconn: Int32Builder::new(),
            feconn: Int32Builder::new(),
            beconn: Int32Builder::new(),
            srv_conn: Int32Builder::new(),
            retries: Int32Builder::new(),
            redispatched: BooleanBuilder::new(),
            srv_queue: Int32Builder::new(),
            backend_queue: Int32Builder::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn append(&mut self, ac: u32, fc: u32, bc: u32, sc: u32, rc: u32, redispatched: bool, sq: u32, bq: u32) {
        self.actconn.append_value(i32_of(ac));
        self.feconn.append_value(i32_of(fc));
        self.beconn.append_value(i32_of(bc));
        self.srv_conn.append_value(i32_of(sc));
        self.retries.append_value(i32_of(rc));
        self.redispatched.append_value(redispatched);
        self.srv_queue.append_value(i32_of(sq));
        self.backend_queue.append_value(i32_of(bq));
    }

    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        out.push(Arc::new(self.actconn.finish()));
        out.push(Arc::new(self.feconn.finish()));
        out.push(Arc::new(self.beconn.finish()));
        out.push(Arc::new(self.srv_conn.finish()));
        out.push(Arc::new(self.retries.finish()));
        out.push(Arc::new(self.redispatched.finish()));
        out.push(Arc::new(self.srv_queue.finish()));
        out.push(Arc::new(self.backend_queue.finish()));
    }
}

/// The `requests` table.
#[derive(Debug)]
pub(crate) struct RequestsRows {
    head: ConnectionHead,
    request_ms: Int32Builder,
    queue_ms: Int32Builder,
    connect_ms: Int32Builder,
    response_ms: Int32Builder,
    total_ms: Int32Builder,
    total_logasap: BooleanBuilder,
    status: Int16Builder,
    bytes_read: Int64Builder,
    bytes_logasap: BooleanBuilder,
    req_cookie: StringBuilder,
    resp_cookie: StringBuilder,
    termination_state: StringBuilder,
    counters: ConnectionCounters,
    req_headers: ListBuilder<StringBuilder>,
    resp_headers: ListBuilder<StringBuilder>,
    method: StringBuilder,
    path: StringBuilder,
    query: StringBuilder,
    http_version: StringBuilder,
    request_bad: BooleanBuilder,
    request_raw: StringBuilder,
    ssl_version: StringBuilder,
    ssl_cipher: StringBuilder,
    ssl_sni: StringBuilder,
    ssl_fc_err: StringBuilder,
    fc_err: Int32Builder,
    ssl_c_err: Int32Builder,
    ssl_c_ca_err: Int32Builder,
    ssl_resumed: BooleanBuilder,
    truncated: BooleanBuilder,
    clf: BooleanBuilder,
    fields: MapBuilder<StringBuilder, StringBuilder>,
}

/// Appends a capture block as a list of decoded values, or null when the log had none.
#[inline]
fn append_captures(b: &mut ListBuilder<StringBuilder>, c: Option<Captures<'_>>) {
    match c {
        Some(c) => {
            for v in c.iter() {
                b.values().append_value(unescape(v));
            }
            b.append(true);
        }
        None => b.append(false),
    }
}

/// A builder of a `map<string,string>` column (the `fields` of every table that has one).
fn string_map() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

/// Appends a custom format's extra values as one map (empty for the built-in layouts); a
/// value logged as absent (`-`) is a null.
#[inline]
fn append_fields(b: &mut MapBuilder<StringBuilder, StringBuilder>, f: &Fields<'_>) {
    f.for_each(|name, value| {
        b.keys().append_value(name);
        b.values().append_option(value);
    });
    // Infallible: keys and values were appended in pairs just above.
    let _ = b.append(true);
}

/// The logged request text, when the split parts do not give it back exactly
/// (`<BADREQ>`, a truncated line, odd spacing): `method SP path[?query] SP version`.
#[inline]
pub(crate) fn request_raw_if_lossy<'a>(r: &RequestLine<'a>) -> Option<&'a str> {
    match (r.method, r.path, r.http_version) {
        (Some(m), Some(p), Some(v)) => {
            let q = r.query.map_or(0, |q| q.len() + 1);
            if r.raw.len() == m.len() + 1 + p.len() + q + 1 + v.len() {
                None
            } else {
                Some(r.raw)
            }
        }
        _ => Some(r.raw),
    }
}

impl RequestsRows {
    pub(crate) fn new() -> Self {
        RequestsRows {
            head: ConnectionHead::new(),
            request_ms: Int32Builder::new(),
            queue_ms: Int32Builder::new(),
            connect_ms: Int32Builder::new(),
            response_ms: Int32Builder::new(),
            total_ms: Int32Builder::new(),
            total_logasap: BooleanBuilder::new(),
            status: Int16Builder::new(),
            bytes_read: Int64Builder::new(),
            bytes_logasap: BooleanBuilder::new(),
            req_cookie: StringBuilder::new(),
            resp_cookie: StringBuilder::new(),
            termination_state: StringBuilder::new(),
            counters: ConnectionCounters::new(),
            req_headers: ListBuilder::new(StringBuilder::new()),
            resp_headers: ListBuilder::new(StringBuilder::new()),
            method: StringBuilder::new(),
            path: StringBuilder::new(),
            query: StringBuilder::new(),
            http_version: StringBuilder::new(),
            request_bad: BooleanBuilder::new(),
            request_raw: StringBuilder::new(),
            ssl_version: StringBuilder::new(),
            ssl_cipher: StringBuilder::new(),
            ssl_sni: StringBuilder::new(),
            ssl_fc_err: StringBuilder::new(),
            fc_err: Int32Builder::new(),
            ssl_c_err: Int32Builder::new(),
            ssl_c_ca_err: Int32Builder::new(),
            ssl_resumed: BooleanBuilder::new(),
            truncated: BooleanBuilder::new(),
            clf: BooleanBuilder::new(),
            fields: string_map(),
        }
    }

    pub(crate) fn append(&mut self, h: &SyslogHeader<'_>, r: &HttpLog<'_>, received_at: Option<Micros>) {
        self.head.append(
            h,
            received_at,
            r.accept_ts,
            &r.client,
            r.frontend,
            r.ssl,
            r.backend,
            r.server,
        );
        let t = &r.timings;
        self.request_ms.append_option(t.request);
        self.queue_ms.append_option(t.queue);
        self.connect_ms.append_option(t.connect);
        self.response_ms.append_option(t.response);
        self.total_ms.append_option(t.total);
        self.total_logasap.append_value(t.total_logasap);
        self.status
            .append_option(r.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX)));
        self.bytes_read.append_value(i64_of(r.bytes_read));
        self.bytes_logasap.append_value(r.bytes_logasap);
        self.req_cookie.append_option(r.req_cookie);
        self.resp_cookie.append_option(r.resp_cookie);
        self.termination_state.append_value(r.termination_state);
        self.counters.append(
            r.actconn,
            r.feconn,
            r.beconn,
            r.srv_conn,
            r.retries,
            r.redispatched,
            r.srv_queue,
            r.backend_queue,
        );
        append_captures(&mut self.req_headers, r.req_headers);
        append_captures(&mut self.resp_headers, r.resp_headers);
        let q = &r.request;
        self.method.append_option(q.method);
        self.path.append_option(q.path);
        self.query.append_option(q.query);
        self.http_version.append_option(q.http_version);
        self.request_bad.append_value(q.bad);
        self.request_raw.append_option(request_raw_if_lossy(q));
        let tls = r.tls.unwrap_or_default();
        self.ssl_version.append_option(tls.version);
        self.ssl_cipher.append_option(tls.cipher);
        self.ssl_sni.append_option(tls.sni);
        self.ssl_fc_err.append_option(tls.ssl_fc_err);
        self.fc_err.append_option(tls.fc_err);
        self.ssl_c_err.append_option(tls.ssl_c_err);
        self.ssl_c_ca_err.append_option(tls.ssl_c_ca_err);
        self.ssl_resumed.append_option(tls.resumed);
        self.truncated.append_value(r.truncated);
        self.clf.append_value(r.clf);
        append_fields(&mut self.fields, &r.fields);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = Vec::with_capacity(52);
        self.head.finish(&mut out);
        out.push(Arc::new(self.request_ms.finish()));
        out.push(Arc::new(self.queue_ms.finish()));
        out.push(Arc::new(self.connect_ms.finish()));
        out.push(Arc::new(self.response_ms.finish()));
        out.push(Arc::new(self.total_ms.finish()));
        out.push(Arc::new(self.total_logasap.finish()));
        out.push(Arc::new(self.status.finish()));
        out.push(Arc::new(self.bytes_read.finish()));
        out.push(Arc::new(self.bytes_logasap.finish()));
        out.push(Arc::new(self.req_cookie.finish()));
        out.push(Arc::new(self.resp_cookie.finish()));
        out.push(Arc::new(self.termination_state.finish()));
        self.counters.finish(&mut out);
        out.push(Arc::new(self.req_headers.finish()));
        out.push(Arc::new(self.resp_headers.finish()));
        out.push(Arc::new(self.method.finish()));
        out.push(Arc::new(self.path.finish()));
        out.push(Arc::new(self.query.finish()));
        out.push(Arc::new(self.http_version.finish()));
        out.push(Arc::new(self.request_bad.finish()));
        out.push(Arc::new(self.request_raw.finish()));
        out.push(Arc::new(self.ssl_version.finish()));
        out.push(Arc::new(self.ssl_cipher.finish()));
        out.push(Arc::new(self.ssl_sni.finish()));
        out.push(Arc::new(self.ssl_fc_err.finish()));
        out.push(Arc::new(self.fc_err.finish()));
        out.push(Arc::new(self.ssl_c_err.finish()));
        out.push(Arc::new(self.ssl_c_ca_err.finish()));
        out.push(Arc::new(self.ssl_resumed.finish()));
        out.push(Arc::new(self.truncated.finish()));
        out.push(Arc::new(self.clf.finish()));
        out.push(Arc::new(self.fields.finish()));
        out
    }
}

/// The `tcp` table.
#[derive(Debug)]
pub(crate) struct TcpRows {
    head: ConnectionHead,
    queue_ms: Int32Builder,
    connect_ms: Int32Builder,
    total_ms: Int32Builder,
    total_logasap: BooleanBuilder,
    bytes_read: Int64Builder,
    bytes_logasap: BooleanBuilder,
    termination_state: StringBuilder,
    counters: ConnectionCounters,
    fields: MapBuilder<StringBuilder, StringBuilder>,
}

impl TcpRows {
    pub(crate) fn new() -> Self {
        TcpRows {
            head: ConnectionHead::new(),
            queue_ms: Int32Builder::new(),
            connect_ms: Int32Builder::new(),
            total_ms: Int32Builder::new(),
            total_logasap: BooleanBuilder::new(),
            bytes_read: Int64Builder::new(),
            bytes_logasap: BooleanBuilder::new(),
            termination_state: StringBuilder::new(),
            counters: ConnectionCounters::new(),
            fields: string_map(),
        }
    }

    pub(crate) fn append(&mut self, h: &SyslogHeader<'_>, r: &TcpLog<'_>, received_at: Option<Micros>) {
        self.head.append(
            h,
            received_at,
            r.accept_ts,
            &r.client,
            r.frontend,
            r.ssl,
            r.backend,
            r.server,
        );
        self.queue_ms.append_option(r.queue_ms);
        self.connect_ms.append_option(r.connect_ms);
        self.total_ms.append_option(r.total_ms);
        self.total_logasap.append_value(r.total_logasap);
        self.bytes_read.append_value(i64_of(r.bytes_read));
        self.bytes_logasap.append_value(r.bytes_logasap);
        self.termination_state.append_value(r.termination_state);
        self.counters.append(
            r.actconn,
            r.feconn,
            r.beconn,
            r.srv_conn,
            r.retries,
            r.redispatched,
            r.srv_queue,
            r.backend_queue,
        );
        append_fields(&mut self.fields, &r.fields);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = Vec::with_capacity(26);
        self.head.finish(&mut out);
        out.push(Arc::new(self.queue_ms.finish()));
        out.push(Arc::new(self.connect_ms.finish()));
        out.push(Arc::new(self.total_ms.finish()));
        out.push(Arc::new(self.total_logasap.finish()));
        out.push(Arc::new(self.bytes_read.finish()));
        out.push(Arc::new(self.bytes_logasap.finish()));
        out.push(Arc::new(self.termination_state.finish()));
        self.counters.finish(&mut out);
        out.push(Arc::new(self.fields.finish()));
        out
    }
}

/// The `app` table.
#[derive(Debug)]
pub(crate) struct AppRows {
    ts: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    host: StringBuilder,
    app: StringBuilder,
    proc_: StringBuilder,
    severity: Int8Builder,
    facility: Int8Builder,
    kind: StringBuilder,
    message: StringBuilder,
    fields: MapBuilder<StringBuilder, StringBuilder>,
    /// `router_code`, `router_method`, `router_path`, `router_host`.
    router_head: [StringBuilder; 4],
    router_status: Int16Builder,
    router_connect_ms: Int32Builder,
    router_service_ms: Int32Builder,
    router_bytes: Int64Builder,
    /// `router_dyno`, `router_request_id`, `router_fwd`, `router_protocol`.
    router_tail: [StringBuilder; 4],
}

impl AppRows {
    pub(crate) fn new() -> Self {
        AppRows {
            ts: timestamps(),
            received_at: timestamps(),
            host: StringBuilder::new(),
            app: StringBuilder::new(),
            proc_: StringBuilder::new(),
            severity: Int8Builder::new(),
            facility: Int8Builder::new(),
            kind: StringBuilder::new(),
            message: StringBuilder::new(),
            fields: string_map(),
            router_head: std::array::from_fn(|_| StringBuilder::new()),
            router_status: Int16Builder::new(),
            router_connect_ms: Int32Builder::new(),
            router_service_ms: Int32Builder::new(),
            router_bytes: Int64Builder::new(),
            router_tail: std::array::from_fn(|_| StringBuilder::new()),
        }
    }

    pub(crate) fn append(&mut self, h: &SyslogHeader<'_>, r: &AppLog<'_>, received_at: Option<Micros>) {
        self.ts.append_option(r.ts);
        self.received_at.append_option(received_at);
        self.host.append_option(h.host);
        self.app.append_option(h.app);
        self.proc_.append_option(h.procid);
        // PRI is at most 191: facility <= 23, severity <= 7.
        self.severity.append_option(h.severity.map(|v| v.min(127) as i8));
        self.facility.append_option(h.facility.map(|v| v.min(127) as i8));
        self.kind.append_value(r.kind.name());
        self.message.append_value(r.message);
        match r.kind {
            AppKind::Router => {}
            AppKind::Plain => {
                let fields = &mut self.fields;
                for_each_app_field(h.structured_data, r.message, |k, v| {
                    fields.keys().append_value(k);
                    fields.values().append_value(v);
                });
            }
            AppKind::HaproxyEvent | AppKind::HaproxyConnError => {
                if let Some(c) = r.client {
                    self.fields.keys().append_value("client_ip");
                    self.fields.values().append_value(c.ip);
                    if let Some(port) = c.port {
                        self.fields.keys().append_value("client_port");
                        let values = self.fields.values();
                        // fmt::Write on a StringBuilder extends the pending value in place.
                        let _ = write!(values, "{port}");
                        values.append_value("");
                    }
                }
                if let Some(s) = r.subject {
                    self.fields.keys().append_value("subject");
                    self.fields.values().append_value(s);
                }
            }
        }
        // Infallible: keys and values were appended in pairs just above.
        let _ = self.fields.append(true);
        let rt = r.router.unwrap_or_default();
        for (b, v) in self
            .router_head
            .iter_mut()
            .zip([rt.code, rt.method, rt.path, rt.host])
        {
            b.append_option(v);
        }
        self.router_status
            .append_option(rt.status.map(|s| s.min(i16::MAX as u16) as i16));
        self.router_connect_ms
            .append_option(rt.connect_ms.map(|v| v.min(i32::MAX as u32) as i32));
        self.router_service_ms
            .append_option(rt.service_ms.map(|v| v.min(i32::MAX as u32) as i32));
        self.router_bytes
            .append_option(rt.bytes.map(|v| v.min(i64::MAX as u64) as i64));
        for (b, v) in self
            .router_tail
            .iter_mut()
            .zip([rt.dyno, rt.request_id, rt.fwd, rt.protocol])
        {
            b.append_option(v);
        }
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.received_at.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.proc_.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.facility.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.fields.finish()),
        ];
        out.extend(
            self.router_head
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        out.push(Arc::new(self.router_status.finish()));
        out.push(Arc::new(self.router_connect_ms.finish()));
        out.push(Arc::new(self.router_service_ms.finish()));
        out.push(Arc::new(self.router_bytes.finish()));
        out.extend(
            self.router_tail
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        out
    }
}

/// The `rejects` table.
#[derive(Debug)]
pub(crate) struct RejectsRows {
    received_at: TimestampMicrosecondBuilder,
    peer: StringBuilder,
    source: StringBuilder,
    reason: StringBuilder,
    raw: BinaryBuilder,
}

impl RejectsRows {
    pub(crate) fn new() -> Self {
        RejectsRows {
            received_at: timestamps(),
            peer: StringBuilder::new(),
            source: StringBuilder::new(),
            reason: StringBuilder::new(),
            raw: BinaryBuilder::new(),
        }
    }

    /// `received_at` here is the partition time (the caller's, or its clock when it gave none),
    /// so that the column and the partition agree.
    pub(crate) fn append(
        &mut self,
        h: &SyslogHeader<'_>,
        r: &Reject<'_>,
        raw: &[u8],
        received_at: Micros,
        peer: Option<&str>,
    ) {
        self.received_at.append_value(received_at);
        self.peer.append_option(peer);
        // The source is `host/app` as the router names it, when the header gave either.
        match (h.host, h.app) {
            (None, None) => self.source.append_null(),
            (host, app) => {
                let _ = write!(self.source, "{}/{}", host.unwrap_or("-"), app.unwrap_or("-"));
                self.source.append_value("");
            }
        }
        self.reason.append_value(r.reason.as_str());
        self.raw.append_value(raw);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.received_at.finish()),
            Arc::new(self.peer.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
        ]
    }
}

/// The `metrics` table: one row per l2met metric of an app line.
#[derive(Debug)]
pub(crate) struct MetricsRows {
    ts: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    host: StringBuilder,
    app: StringBuilder,
    proc_: StringBuilder,
    source: StringBuilder,
    kind: StringBuilder,
    name: StringBuilder,
    value: Float64Builder,
    unit: StringBuilder,
}

impl MetricsRows {
    pub(crate) fn new() -> Self {
        MetricsRows {
            ts: timestamps(),
            received_at: timestamps(),
            host: StringBuilder::new(),
            app: StringBuilder::new(),
            proc_: StringBuilder::new(),
            source: StringBuilder::new(),
            kind: StringBuilder::new(),
            name: StringBuilder::new(),
            value: Float64Builder::new(),
            unit: StringBuilder::new(),
        }
    }

    /// `ts` is the line's time (the partition's), `received_at` when weir got it.
    pub(crate) fn append(
        &mut self,
        h: &SyslogHeader<'_>,
        m: &Metric<'_>,
        ts: Micros,
        received_at: Option<Micros>,
    ) {
        self.ts.append_value(ts);
        self.received_at.append_option(received_at);
        self.host.append_option(h.host);
        self.app.append_option(h.app);
        self.proc_.append_option(h.procid);
        self.source.append_option(m.source);
        self.kind.append_value(m.kind.name());
        self.name.append_value(m.name);
        self.value.append_value(m.value);
        self.unit.append_value(m.unit);
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.ts.finish()),
            Arc::new(self.received_at.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.proc_.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.unit.finish()),
        ]
    }
}

/// The builders of one table (`windows` has a writer of its own). Boxed: the
/// builders are large and few, and the partition map moves them around.
#[derive(Debug)]
pub(crate) enum TableRows {
    /// `requests`.
    Requests(Box<RequestsRows>),
    /// `tcp`.
    Tcp(Box<TcpRows>),
    /// `app`.
    App(Box<AppRows>),
    /// `rejects`.
    Rejects(Box<RejectsRows>),
    /// `metrics`.
    Metrics(Box<MetricsRows>),
}

impl TableRows {
    /// Empty builders for `table`.
    pub(crate) fn new(table: Table) -> Self {
        match table {
            Table::Requests => TableRows::Requests(Box::new(RequestsRows::new())),
            Table::Tcp => TableRows::Tcp(Box::new(TcpRows::new())),
            Table::App => TableRows::App(Box::new(AppRows::new())),
            Table::Rejects => TableRows::Rejects(Box::new(RejectsRows::new())),
            Table::Metrics => TableRows::Metrics(Box::new(MetricsRows::new())),
        }
    }

    /// Builders for `table` that hold no memory yet. Arrow's `new()` reserves 1,024 values a
    /// column (about 200 KiB for `requests`), too much for the hundreds of partitions a shuffled
    /// log keeps buffering at once; these grow with their rows, as builders do after a `finish`.
    pub(crate) fn empty(table: Table) -> Self {
        let mut rows = TableRows::new(table);
        rows.finish();
        rows
    }

    /// The buffered columns, in schema order; the builders are left empty.
    pub(crate) fn finish(&mut self) -> Vec<ArrayRef> {
        match self {
            TableRows::Requests(r) => r.finish(),
            TableRows::Tcp(r) => r.finish(),
            TableRows::App(r) => r.finish(),
            TableRows::Rejects(r) => r.finish(),
            TableRows::Metrics(r) => r.finish(),
        }
    }
}
