//! Running a compiled format over one message: each step either matches literal bytes or
//! cuts a value and stores it where [`Target`] says. A mismatch is `None` (the caller tries
//! another format); nothing is allocated and every stored string is a slice of the message.

use weir_model::time::MICROS_PER_SEC;
use weir_model::{Captures, Fields, HttpLog, Micros, Record, Span, TcpLog, TlsInfo};

use super::{Layout, LogFormat, Shape, Step, Target, Var, VarStep};
use crate::haproxy::fields::{
    civil_datetime, cookie, d2, dec_u32, dec_u64, find, find_near, fraction, plus_u64, status, timer, Text,
};
use crate::haproxy::request::request_line;
use crate::{ParseOptions, Zone};

/// The TCP record of a TCP-layout format, from the HTTP record it was filled into.
pub(crate) fn to_tcp<'a>(h: &HttpLog<'a>) -> TcpLog<'a> {
    TcpLog {
        client: h.client,
        accept_ts: h.accept_ts,
        frontend: h.frontend,
        ssl: h.ssl,
        backend: h.backend,
        server: h.server,
        queue_ms: h.timings.queue,
        connect_ms: h.timings.connect,
        total_ms: h.timings.total,
        total_logasap: h.timings.total_logasap,
        bytes_read: h.bytes_read,
        bytes_logasap: h.bytes_logasap,
        termination_state: h.termination_state,
        actconn: h.actconn,
        feconn: h.feconn,
        beconn: h.beconn,
        srv_conn: h.srv_conn,
        retries: h.retries,
        redispatched: h.redispatched,
        srv_queue: h.srv_queue,
        backend_queue: h.backend_queue,
        fields: h.fields,
    }
}

impl LogFormat {
    /// Parses one message (the part after the syslog header) with this format alone: the
    /// record, or `None` when the message does not have this format's shape. `fallback_ts` is
    /// the accept date of a format that prints none (the syslog header's time).
    pub fn parse<'a>(
        &self,
        msg: &'a [u8],
        opts: &ParseOptions,
        fallback_ts: Option<Micros>,
    ) -> Option<Record<'a>> {
        let t = Text::new(msg).ok()?;
        let mut log = HttpLog::default();
        self.parse_into(msg, t, opts.zone, fallback_ts, &mut log)?;
        Some(match self.layout {
            Layout::Http => Record::Http(log),
            Layout::Tcp => Record::Tcp(to_tcp(&log)),
        })
    }
}

/// The date parts read so far; combined into `accept_ts` at the end.
#[derive(Default)]
struct When {
    /// The date, and whether it carried milliseconds.
    date: Option<(Micros, bool)>,
    millis: Option<u32>,
}

impl LogFormat {
    /// Parses `msg` (a slice of `t`) into `out`, which the caller has set to its default.
    /// `fallback_ts` (the syslog header's time) is the accept date of a format without one.
    /// `None` when the message does not have this format's shape.
    #[inline]
    pub(crate) fn parse_into<'a>(
        &self,
        msg: &'a [u8],
        t: Text<'a>,
        zone: Zone,
        fallback_ts: Option<Micros>,
        out: &mut HttpLog<'a>,
    ) -> Option<()> {
        if !self.names.is_empty() {
            out.fields = Fields {
                names: self.names,
                text: t.of(msg).ok()?,
                spans: [Span::NONE; weir_model::MAX_FIELDS],
            };
        }
        let mut when = When::default();
        let mut pos = 0usize;
        // An absent capture block takes its separator with it.
        let mut skip_space = false;
        let steps = &self.steps[..];
        for (k, step) in steps.iter().enumerate() {
            match step {
                Step::Lit(l) => {
                    let rest = &msg[pos..];
                    if rest.starts_with(l) {
                        pos += l.len();
                    } else if skip_space && l[0] == b' ' && rest.starts_with(&l[1..]) {
                        pos += l.len() - 1;
                    } else {
                        return None;
                    }
                    skip_space = false;
                }
                Step::Var(v) => {
                    if absent_block(v, &msg[pos..]) {
                        skip_space = k > 0 && matches!(&steps[k - 1], Step::Lit(l) if l.ends_with(b" "));
                        continue;
                    }
                    skip_space = false;
                    let (start, end, next) = extent(v, msg, pos, steps.get(k + 1))?;
                    store(v, t, msg, start, end, zone, &mut when, out)?;
                    pos = next;
                }
            }
        }
        if pos != msg.len() {
            return None;
        }
        out.accept_ts = match when.date {
            Some((ts, true)) => ts,
            Some((ts, false)) => ts + i64::from(when.millis.unwrap_or(0)) * 1000,
            None => fallback_ts?,
        };
        Some(())
    }
}

/// A capture variable (`%hr`, `%hsl`, ...) that printed nothing: HAProxy prints no block when
/// nothing is captured.
#[inline]
fn absent_block(v: &VarStep, rest: &[u8]) -> bool {
    match v.shape {
        Shape::Block if v.quoted => !rest.starts_with(b"\"{"),
        Shape::Block => rest.first() != Some(&b'{'),
        Shape::List => rest.is_empty() || (v.quoted && rest[0] != b'"'),
        _ => false,
    }
}

/// Where the value at `pos` starts and ends, and where the next step starts.
#[inline]
fn extent(v: &VarStep, m: &[u8], pos: usize, next: Option<&Step>) -> Option<(usize, usize, usize)> {
    let rest = &m[pos..];
    if v.quoted && v.shape != Shape::List {
        let inner = rest.strip_prefix(b"\"")?;
        let close = if v.escaped {
            closing_quote_escaped(inner)?
        } else {
            memchr::memchr(b'"', inner)?
        };
        let (start, end) = (pos + 1, pos + 1 + close);
        // A quoted capture block is `"{...}"`: the value is inside the braces.
        if v.shape == Shape::Block {
            if close < 2 || inner[close - 1] != b'}' {
                return None;
            }
            return Some((start + 1, end - 1, end + 1));
        }
        return Some((start, end, end + 1));
    }
    let width = match v.shape {
        Shape::DateMs => Some(24),
        Shape::DateZone => Some(26),
        Shape::Block => {
            let close = memchr::memchr(b'}', rest)?;
            return Some((pos + 1, pos + close, pos + close + 1));
        }
        _ => None,
    };
    if let Some(w) = width {
        // `[date]` of an old HAProxy without milliseconds: up to the next literal instead.
        if rest.len() >= w && rest[20] != b']' {
            return Some((pos, pos + w, pos + w));
        }
    }
    let end = match next {
        None => m.len(),
        Some(Step::Var(_)) => pos + find_near(rest, b' ').unwrap_or(rest.len()),
        Some(Step::Lit(l)) => {
            // IPv6 has colons: an address before `:` ends at the token's last colon.
            if v.shape == Shape::Ip && l[0] == b':' {
                let tok = &rest[..find_near(rest, b' ').unwrap_or(rest.len())];
                pos + memchr::memrchr(b':', tok)?
            } else {
                // A request line `METHOD URI VERSION` has two spaces of its own.
                let from = if v.var == Var::Request && l[0] == b' ' && !rest.starts_with(b"<BADREQ>") {
                    let a = find_near(rest, b' ')? + 1;
                    a + find_near(&rest[a..], b' ')? + 1
                } else {
                    0
                };
                pos + from + find_literal(&rest[from..], l)?
            }
        }
    };
    Some((pos, end, end))
}

/// The first occurrence of `lit` in `hay`.
#[inline]
fn find_literal(hay: &[u8], lit: &[u8]) -> Option<usize> {
    let first = lit[0];
    let mut from = 0;
    loop {
        let at = from + find_near(&hay[from..], first)?;
        if hay[at..].starts_with(lit) {
            return Some(at);
        }
        from = at + 1;
    }
}

/// The closing `"` of an `E`-escaped string: one not preceded by a backslash escape.
fn closing_quote_escaped(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A number in decimal, or in hex under `X`.
#[inline]
fn number(v: &VarStep, b: &[u8]) -> Option<u64> {
    if v.hex {
        if b.is_empty() || b.len() > 16 {
            return None;
        }
        b.iter().try_fold(0u64, |acc, &c| {
            Some(acc * 16 + u64::from((c as char).to_digit(16)?))
        })
    } else {
        dec_u64(b)
    }
}

/// `dd/Mon/yyyy:HH:MM:SS +hhmm` as UTC.
fn date_with_offset(b: &[u8]) -> Option<Micros> {
    let local = civil_datetime(b)?;
    let [b' ', sign @ (b'+' | b'-'), h1, h2, m1, m2] = *b.get(20..26)? else {
        return None;
    };
    let (h, m) = (d2(&[h1, h2])?, d2(&[m1, m2])?);
    let off = i64::from(h * 3600 + m * 60) * MICROS_PER_SEC;
    Some(if sign == b'-' { local + off } else { local - off })
}

/// A value that is present unless logged as `-` or empty.
#[inline]
fn present(b: &[u8]) -> Option<&[u8]> {
    (!b.is_empty() && b != b"-").then_some(b)
}

/// Stores the value `m[start..end]` of `v`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn store<'a>(
    v: &VarStep,
    t: Text<'a>,
    m: &'a [u8],
    start: usize,
    end: usize,
    zone: Zone,
    when: &mut When,
    out: &mut HttpLog<'a>,
) -> Option<()> {
    let b = &m[start..end];
    let s = || t.of(b).ok();
    let opt_s = || match present(b) {
        Some(p) => t.of(p).ok().map(Some),
        None => Some(None),
    };
    match v.target {
        Target::ClientIp => out.client.ip = s()?,
        Target::ClientPort => {
            // Kept as `None` when not numeric, as the built-in parser does, but a port is one word.
            if find(b, b' ').is_some() {
                return None;
            }
            out.client.port = present(b)
                .and_then(|p| number(v, p))
                .and_then(|p| u16::try_from(p).ok())
        }
        Target::AcceptDate(Shape::DateMs) => {
            let local = civil_datetime(b)?;
            let frac = match b.get(20..) {
                None | Some([]) => 0,
                Some([b'.', ms @ ..]) => fraction(ms)?,
                _ => return None,
            };
            when.date = Some((zone.to_utc(local + frac), true));
        }
        Target::AcceptDate(_) => when.date = Some((date_with_offset(b)?, false)),
        Target::EpochSecs => {
            let secs = i64::try_from(number(v, b)?).ok()?;
            when.date = Some((secs.checked_mul(MICROS_PER_SEC)?, false));
        }
        Target::Millis => when.millis = Some(u32::try_from(dec_u64(b)?).ok().filter(|ms| *ms < 1000)?),
        Target::FrontendTransport => {
            let f = s()?;
            (out.frontend, out.ssl) = match f.strip_suffix('~') {
                Some(name) => (name, true),
                None => (f, false),
            };
        }
        Target::Frontend => out.frontend = s()?,
        Target::Backend => out.backend = s()?,
        Target::Server => out.server = s()?,
        Target::Timer(k) => {
            let (value, logasap) = timer(b)?;
            let tm = &mut out.timings;
            match k {
                0 => tm.request = value,
                1 => tm.queue = value,
                2 => tm.connect = value,
                3 => tm.response = value,
                _ => (tm.total, tm.total_logasap) = (value, logasap),
            }
        }
        Target::Status => out.status = status(b)?,
        Target::Bytes => (out.bytes_read, out.bytes_logasap) = plus_u64(b)?,
        Target::ReqCookie => out.req_cookie = cookie(t, b).ok()?,
        Target::RespCookie => out.resp_cookie = cookie(t, b).ok()?,
        Target::TermState => out.termination_state = s()?,
        Target::ActConn => out.actconn = dec_u32(b)?,
        Target::FeConn => out.feconn = dec_u32(b)?,
        Target::BeConn => out.beconn = dec_u32(b)?,
        Target::SrvConn => out.srv_conn = dec_u32(b)?,
        Target::Retries => {
            let (n, plus) = plus_u64(b)?;
            (out.retries, out.redispatched) = (u32::try_from(n).ok()?, plus);
        }
        Target::SrvQueue => out.srv_queue = dec_u32(b)?,
        Target::BackendQueue => out.backend_queue = dec_u32(b)?,
        Target::ReqHeaders => out.req_headers = Some(Captures(s()?)),
        Target::RespHeaders => out.resp_headers = Some(Captures(s()?)),
        Target::Request => out.request = request_line(t, b, true).ok()?,
        Target::Method => out.request.method = opt_s()?,
        Target::Uri => {
            if let Some(uri) = opt_s()? {
                out.request.raw = uri;
                let (path, query) = match find(uri.as_bytes(), b'?') {
                    Some(q) => (&uri[..q], Some(&uri[q + 1..])),
                    None => (uri, None),
                };
                out.request.path = Some(path);
                out.request.query = query;
            }
        }
        Target::Path => {
            out.request.path = opt_s()?;
            out.request.raw = out.request.path.unwrap_or("");
        }
        Target::Query => {
            out.request.query = opt_s()?
                .map(|q| q.strip_prefix('?').unwrap_or(q))
                .filter(|q| !q.is_empty())
        }
        Target::Version => out.request.http_version = opt_s()?,
        Target::TlsVersion => tls(out).version = opt_s()?,
        Target::TlsCipher => tls(out).cipher = opt_s()?,
        Target::TlsSni => tls(out).sni = opt_s()?,
        Target::TlsSslFcErr => tls(out).ssl_fc_err = opt_s()?,
        Target::TlsFcErr => tls(out).fc_err = small_int(b)?,
        Target::TlsCErr => tls(out).ssl_c_err = small_int(b)?,
        Target::TlsCaErr => tls(out).ssl_c_ca_err = small_int(b)?,
        Target::TlsResumed => {
            tls(out).resumed = match b {
                b"1" => Some(true),
                b"0" => Some(false),
                _ => None,
            }
        }
        Target::Field(i) => {
            out.fields.spans[usize::from(i)] = match present(b) {
                // HAProxy never writes a line past 65535 bytes; a longer one is not its.
                Some(_) => Span {
                    start: u16::try_from(start).ok().filter(|s| *s != u16::MAX)?,
                    len: u16::try_from(b.len()).ok()?,
                },
                None => Span::NONE,
            }
        }
        Target::Skip => {}
    }
    Some(())
}

/// A small decimal that may be absent (`-`).
fn small_int(b: &[u8]) -> Option<Option<i32>> {
    match present(b) {
        None => Some(None),
        Some(p) => dec_u32(p).and_then(|v| i32::try_from(v).ok()).map(Some),
    }
}

/// The TLS part of a record, created on first use.
fn tls<'r, 'a>(out: &'r mut HttpLog<'a>) -> &'r mut TlsInfo<'a> {
    out.tls.get_or_insert_with(TlsInfo::default)
}
