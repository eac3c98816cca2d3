//! The records a log line becomes. Every type borrows from the line it was parsed from.

use crate::fields::Fields;
use crate::time::Micros;

/// One input line after parsing: the syslog header (possibly empty), the record, and the bytes
/// of the whole line as received (without its line terminator).
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The syslog header; every field is `None` when the line had none (`raw` format).
    pub header: SyslogHeader<'a>,
    /// What the message was.
    pub record: Record<'a>,
    /// The whole line, verbatim.
    pub raw: &'a [u8],
}

/// What one line turned out to be. Each variant lands in exactly one spool table.
///
/// The HTTP variant is large (it borrows every field of the line), and that is deliberate: a
/// `Record` lives on the stack for the duration of one line, and boxing it would cost an
/// allocation per line on the hot path.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Record<'a> {
    /// An HAProxy HTTP or HTTPS request log (`requests` table).
    Http(HttpLog<'a>),
    /// An HAProxy TCP session log (`tcp` table).
    Tcp(TcpLog<'a>),
    /// An application line, or an HAProxy event or connection-error line (`app` table).
    App(AppLog<'a>),
    /// A line that could not be parsed (`rejects` table).
    Reject(Reject<'a>),
}

/// The syslog header fields, RFC 3164 or RFC 5424, whichever the line carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyslogHeader<'a> {
    /// Facility number (PRI / 8), when a PRI was present.
    pub facility: Option<u8>,
    /// Severity number (PRI % 8), when a PRI was present.
    pub severity: Option<u8>,
    /// The header's timestamp. RFC 3164 has no year: the parser's reference year is used.
    pub timestamp: Option<Micros>,
    /// HOSTNAME.
    pub host: Option<&'a str>,
    /// APP-NAME (RFC 5424) or the TAG before `[pid]` (RFC 3164), e.g. `haproxy`.
    pub app: Option<&'a str>,
    /// PROCID (RFC 5424) or the pid in `tag[pid]:`.
    pub procid: Option<&'a str>,
    /// RFC 5424 STRUCTURED-DATA as written (`[id param="value"]...`), when not `-`.
    pub structured_data: Option<&'a str>,
}

/// HAProxy's five timers, in log order. `request` is TR (Tq before 1.7), `total` is Ta (Tt
/// before 1.7 and in TCP logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// TR: first request byte to end of headers (Tq ≤ 1.6: includes handshake and idle).
    Request,
    /// Tw: time spent in queues.
    Queue,
    /// Tc: TCP connect to the server, retries included.
    Connect,
    /// Tr: server time to response headers.
    Response,
    /// Ta: first request byte to last response byte (Tt: whole session).
    Total,
}

impl Timer {
    /// All timers, in log order.
    pub const ALL: [Timer; 5] = [
        Timer::Request,
        Timer::Queue,
        Timer::Connect,
        Timer::Response,
        Timer::Total,
    ];

    /// The snake_case name used in columns and CLI flags.
    pub fn name(self) -> &'static str {
        match self {
            Timer::Request => "request",
            Timer::Queue => "queue",
            Timer::Connect => "connect",
            Timer::Response => "response",
            Timer::Total => "total",
        }
    }

    /// Parses a name as [`Timer::name`] gives it, or HAProxy's letters (`TR`, `Tq`, `Tw`, ...).
    pub fn from_name(s: &str) -> Option<Timer> {
        Some(match s {
            "request" | "TR" | "Tq" | "tr" | "tq" => Timer::Request,
            "queue" | "Tw" | "tw" => Timer::Queue,
            "connect" | "Tc" | "tc" => Timer::Connect,
            "response" | "Tr" => Timer::Response,
            "total" | "Ta" | "Tt" | "ta" | "tt" => Timer::Total,
            _ => return None,
        })
    }
}

/// The timers of one HTTP request, in milliseconds; `None` where HAProxy logged `-1` (the stage
/// was never reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// TR (or Tq).
    pub request: Option<i32>,
    /// Tw.
    pub queue: Option<i32>,
    /// Tc.
    pub connect: Option<i32>,
    /// Tr.
    pub response: Option<i32>,
    /// Ta (or Tt).
    pub total: Option<i32>,
    /// The total was prefixed with `+` (`option logasap`): logged before the end.
    pub total_logasap: bool,
}

impl Timings {
    /// The value of one timer.
    #[inline]
    pub fn get(&self, t: Timer) -> Option<i32> {
        match t {
            Timer::Request => self.request,
            Timer::Queue => self.queue,
            Timer::Connect => self.connect,
            Timer::Response => self.response,
            Timer::Total => self.total,
        }
    }

    /// Td, the data transfer time: Ta − (TR + Tw + Tc + Tr), when all five are known, as halog
    /// computes it.
    #[inline]
    pub fn data(&self) -> Option<i32> {
        Some(self.total? - (self.request? + self.queue? + self.connect? + self.response?))
    }
}

/// A client address as HAProxy prints it: `ip:port`, IPv6 without brackets, `unix:N`, `-:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientAddr<'a> {
    /// The address text before the last `:` (`127.0.0.1`, `::1`, `unix`, `-`).
    pub ip: &'a str,
    /// The port, when numeric.
    pub port: Option<u16>,
}

/// A capture block `{a|b|c}` as logged: its inner text, escapes (`#7C`, `#XX`) still in place.
/// [`Captures::iter`] splits and [`unescape`] decodes, so the hot path pays nothing for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captures<'a>(pub &'a str);

impl<'a> Captures<'a> {
    /// The captured values, still escaped.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        self.0.split('|')
    }

    /// The captured values, decoded.
    pub fn decoded(&self) -> Vec<String> {
        self.iter().map(|v| unescape(v).into_owned()).collect()
    }
}

/// Decodes HAProxy's `#XX` hex escapes (used in captures for `|{}"` and non-printable bytes).
/// A `#` not followed by two hex digits is kept as is.
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('#') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The request line `"METHOD URI VERSION"` of an HTTP log, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestLine<'a> {
    /// The text between the quotes, as logged (may be cut short when the line was truncated).
    pub raw: &'a str,
    /// `GET`, `POST`, ...; `None` for `<BADREQ>` or an empty request.
    pub method: Option<&'a str>,
    /// The URI up to `?` (an absolute URI keeps its scheme and host).
    pub path: Option<&'a str>,
    /// The part after the first `?`, without it.
    pub query: Option<&'a str>,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub http_version: Option<&'a str>,
    /// The request was `<BADREQ>`.
    pub bad: bool,
}

/// The extra fields of `option httpslog` (HAProxy 2.5+), after the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsInfo<'a> {
    /// `fc_err`: the connection error code.
    pub fc_err: Option<i32>,
    /// `ssl_fc_err` in hex, as logged.
    pub ssl_fc_err: Option<&'a str>,
    /// `ssl_c_err`.
    pub ssl_c_err: Option<i32>,
    /// `ssl_c_ca_err`.
    pub ssl_c_ca_err: Option<i32>,
    /// `ssl_fc_is_resumed`.
    pub resumed: Option<bool>,
    /// The SNI sent by the client.
    pub sni: Option<&'a str>,
    /// `TLSv1.3`, ...
    pub version: Option<&'a str>,
    /// The cipher suite.
    pub cipher: Option<&'a str>,
}

/// One HAProxy HTTP request (`option httplog`, `httpslog` or `httplog clf`, or a custom
/// `log-format`). The default is every field at its "not logged" value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpLog<'a> {
    /// Client address.
    pub client: ClientAddr<'a>,
    /// The accept date, read in the configured HAProxy time zone and stored as UTC.
    pub accept_ts: Micros,
    /// The frontend name, without the TLS marker.
    pub frontend: &'a str,
    /// The frontend name ended in `~`: the connection was TLS.
    pub ssl: bool,
    /// Backend name (the frontend's name when no backend was reached).
    pub backend: &'a str,
    /// Server name, or `<NOSRV>`, `<STATS>`, `<CACHE>`, ...
    pub server: &'a str,
    /// The five timers.
    pub timings: Timings,
    /// HTTP status; `None` where HAProxy logged `-1`.
    pub status: Option<u16>,
    /// Bytes sent to the client.
    pub bytes_read: u64,
    /// The byte count was prefixed with `+` (logasap).
    pub bytes_logasap: bool,
    /// `%CC`, `None` when `-`.
    pub req_cookie: Option<&'a str>,
    /// `%CS`, `None` when `-`.
    pub resp_cookie: Option<&'a str>,
    /// The 4-character termination state, e.g. `----`, `sH--`.
    pub termination_state: &'a str,
    /// Concurrent connections on the process.
    pub actconn: u32,
    /// ... on the frontend.
    pub feconn: u32,
    /// ... on the backend.
    pub beconn: u32,
    /// ... on the server.
    pub srv_conn: u32,
    /// Connection retries.
    pub retries: u32,
    /// The retry count was prefixed with `+`: the request was redispatched.
    pub redispatched: bool,
    /// Requests ahead in the server queue.
    pub srv_queue: u32,
    /// Requests ahead in the backend queue.
    pub backend_queue: u32,
    /// Captured request headers `{...}`, when configured.
    pub req_headers: Option<Captures<'a>>,
    /// Captured response headers `{...}`, when configured.
    pub resp_headers: Option<Captures<'a>>,
    /// The request line.
    pub request: RequestLine<'a>,
    /// `option httpslog` fields, when present.
    pub tls: Option<TlsInfo<'a>>,
    /// The line was cut short (HAProxy's `len`, or a missing closing quote): what is present
    /// was parsed, the rest is missing.
    pub truncated: bool,
    /// The line was in `option httplog clf` layout.
    pub clf: bool,
    /// Values of a custom `log-format` without a column of their own.
    pub fields: Fields<'a>,
}

/// One HAProxy TCP session (`option tcplog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLog<'a> {
    /// Client address.
    pub client: ClientAddr<'a>,
    /// The accept date (UTC).
    pub accept_ts: Micros,
    /// The frontend name, without the TLS marker.
    pub frontend: &'a str,
    /// The frontend name ended in `~`.
    pub ssl: bool,
    /// Backend name.
    pub backend: &'a str,
    /// Server name or `<NOSRV>`.
    pub server: &'a str,
    /// Tw.
    pub queue_ms: Option<i32>,
    /// Tc.
    pub connect_ms: Option<i32>,
    /// Tt.
    pub total_ms: Option<i32>,
    /// Tt was prefixed with `+`.
    pub total_logasap: bool,
    /// Bytes sent to the client.
    pub bytes_read: u64,
    /// The byte count was prefixed with `+`.
    pub bytes_logasap: bool,
    /// The 2-character termination state.
    pub termination_state: &'a str,
    /// Concurrent connections on the process.
    pub actconn: u32,
    /// ... on the frontend.
    pub feconn: u32,
    /// ... on the backend.
    pub beconn: u32,
    /// ... on the server.
    pub srv_conn: u32,
    /// Connection retries.
    pub retries: u32,
    /// Redispatched (`+` before retries).
    pub redispatched: bool,
    /// Server queue.
    pub srv_queue: u32,
    /// Backend queue.
    pub backend_queue: u32,
    /// Values of a custom `log-format` without a column of their own.
    pub fields: Fields<'a>,
}

/// What kind of non-request line an [`AppLog`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppKind {
    /// An application's own line (free text or key=value).
    Plain,
    /// An HAProxy event: `Proxy X started.`, `Server b/s is DOWN ...`, `SPOE: ...`.
    HaproxyEvent,
    /// An HAProxy connection error: `ip:port [date] frontend/bind: message`.
    HaproxyConnError,
    /// A Heroku router line (`heroku[router]: at=info method=GET ...`), its fields in
    /// [`AppLog::router`].
    Router,
}

impl AppKind {
    /// The snake_case name stored in the `app` table's `kind` column.
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Plain => "app",
            AppKind::HaproxyEvent => "haproxy_event",
            AppKind::HaproxyConnError => "haproxy_conn_error",
            AppKind::Router => "router",
        }
    }
}

/// A line for the `app` table: an application's message or an HAProxy event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppLog<'a> {
    /// What kind of line.
    pub kind: AppKind,
    /// The event time when the message carried one (a connection error's accept date),
    /// else the header's timestamp.
    pub ts: Option<Micros>,
    /// The message text after the syslog header.
    pub message: &'a str,
    /// For a connection error: the client address.
    pub client: Option<ClientAddr<'a>>,
    /// For a connection error: `frontend/bind`; for a server event: `backend/server`.
    pub subject: Option<&'a str>,
    /// For a Heroku router line: its fields.
    pub router: Option<RouterLog<'a>>,
}

/// The fields of a Heroku router line, borrowed from it (quoted values without their quotes;
/// Heroku escapes nothing inside them). A field the router left empty (`dyno=` `connect=` on an
/// error) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterLog<'a> {
    /// `at`: `info`, `warning` or `error`.
    pub at: &'a str,
    /// `code`: the Heroku error code of an error line (`H12`).
    pub code: Option<&'a str>,
    /// `desc`: the error's description (`Request timeout`).
    pub desc: Option<&'a str>,
    /// `method`.
    pub method: Option<&'a str>,
    /// `path`, with its query string.
    pub path: Option<&'a str>,
    /// `host`: the request's Host header.
    pub host: Option<&'a str>,
    /// `request_id`.
    pub request_id: Option<&'a str>,
    /// `fwd`: the X-Forwarded-For the router saw.
    pub fwd: Option<&'a str>,
    /// `dyno`: the dyno that served the request (`web.1`).
    pub dyno: Option<&'a str>,
    /// `connect`: milliseconds to connect to the dyno.
    pub connect_ms: Option<u32>,
    /// `service`: milliseconds proxying between the dyno and the client.
    pub service_ms: Option<u32>,
    /// `status`: the HTTP status the client got.
    pub status: Option<u16>,
    /// `bytes`: bytes sent to the client.
    pub bytes: Option<u64>,
    /// `protocol`: `http` or `https`.
    pub protocol: Option<&'a str>,
}

/// Why a line was rejected. Small and `Copy`: it is counted per reason on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The line was empty or only white space.
    Empty,
    /// The bytes were not valid UTF-8.
    InvalidUtf8,
    /// A `<PRI>` or timestamp that could not be read.
    BadSyslogHeader,
    /// The message matched no known format.
    UnknownFormat,
    /// The client `ip:port` could not be read.
    BadClientAddr,
    /// The `[accept date]` could not be read.
    BadDate,
    /// `frontend` or `backend/server` could not be read.
    BadProxyNames,
    /// The timers could not be read.
    BadTimers,
    /// The status code could not be read.
    BadStatus,
    /// The byte count could not be read.
    BadBytes,
    /// The termination state could not be read.
    BadTerminationState,
    /// The connection counters `ac/fc/bc/sc/rc` could not be read.
    BadConnCounts,
    /// The queue counters `sq/bq` could not be read.
    BadQueues,
    /// A capture block `{...}` was not closed.
    BadCaptures,
    /// The request line was missing.
    BadRequestLine,
    /// The line was longer than `max_line`.
    TooLong,
    /// A frame could not be delimited (bad octet count).
    BadFraming,
    /// HAProxy's line matched none of the configured `log-format`s nor a built-in layout.
    NoFormatMatch,
    /// A Heroku router line (`heroku[router]:`) without its `at=` or with a field that could
    /// not be read (a status that is not a number, a time without `ms`).
    BadRouterLine,
}

impl RejectReason {
    /// Every reason, for metrics registration and reports.
    pub const ALL: [RejectReason; 19] = [
        RejectReason::Empty,
        RejectReason::InvalidUtf8,
        RejectReason::BadSyslogHeader,
        RejectReason::UnknownFormat,
        RejectReason::BadClientAddr,
        RejectReason::BadDate,
        RejectReason::BadProxyNames,
        RejectReason::BadTimers,
        RejectReason::BadStatus,
        RejectReason::BadBytes,
        RejectReason::BadTerminationState,
        RejectReason::BadConnCounts,
        RejectReason::BadQueues,
        RejectReason::BadCaptures,
        RejectReason::BadRequestLine,
        RejectReason::TooLong,
        RejectReason::BadFraming,
        RejectReason::NoFormatMatch,
        RejectReason::BadRouterLine,
    ];

    /// The snake_case name stored in the `reason` column and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::BadSyslogHeader => "bad_syslog_header",
            RejectReason::UnknownFormat => "unknown_format",
            RejectReason::BadClientAddr => "bad_client_addr",
            RejectReason::BadDate => "bad_date",
            RejectReason::BadProxyNames => "bad_proxy_names",
            RejectReason::BadTimers => "bad_timers",
            RejectReason::BadStatus => "bad_status",
            RejectReason::BadBytes => "bad_bytes",
            RejectReason::BadTerminationState => "bad_termination_state",
            RejectReason::BadConnCounts => "bad_conn_counts",
            RejectReason::BadQueues => "bad_queues",
            RejectReason::BadCaptures => "bad_captures",
            RejectReason::BadRequestLine => "bad_request_line",
            RejectReason::TooLong => "too_long",
            RejectReason::BadFraming => "bad_framing",
            RejectReason::NoFormatMatch => "format_mismatch",
            RejectReason::BadRouterLine => "bad_router_line",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that could not be parsed; the bytes are kept verbatim in [`Line::raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject<'a> {
    /// Why.
    pub reason: RejectReason,
    /// The message part that failed (after the syslog header, when one was read).
    pub message: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_decodes_haproxy_escapes() {
        assert_eq!(unescape("a#7Cb"), "a|b");
        assert_eq!(unescape("#7B#7D#22"), "{}\"");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("50#"), "50#");
        assert_eq!(unescape("#zz"), "#zz");
    }

    #[test]
    fn data_time_needs_all_five_timers() {
        let t = Timings {
            request: Some(1),
            queue: Some(0),
            connect: Some(2),
            response: Some(10),
            total: Some(20),
            total_logasap: false,
        };
        assert_eq!(t.data(), Some(7));
        assert_eq!(Timings { connect: None, ..t }.data(), None);
    }

    #[test]
    fn timer_names_round_trip() {
        for t in Timer::ALL {
            assert_eq!(Timer::from_name(t.name()), Some(t));
        }
    }
}
