//! Running a compiled format over one message: each step either matches literal bytes or
//! cuts a value and stores it where [`Target`] says. A mismatch is `None` (the caller tries
//! another format); nothing is allocated and every stored string is a slice of the message.

use weir_model::time::MICROS_PER_SEC;
use weir_model::{Captures, FieldSource, Fields, HttpLog, Micros, Record, TcpLog, Timings, TlsInfo};

use super::{End, Layout, Literal, LogFormat, Shape, Target, VarStep};
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
        &'a self,
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

/// The most values one format can put into `fields`; a format with more is refused when it is
/// compiled. 32 covers every variable of HAProxy's table that has no column, and then some.
pub(crate) const MAX_FIELDS: usize = 32;

/// Where a field's value lies in the message; `start == u16::MAX` is a value logged as absent.
/// Offsets are 16-bit: HAProxy's `len` caps a log line at 65535 bytes.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u16,
    len: u16,
}

impl Span {
    const NONE: Span = Span {
        start: u16::MAX,
        len: 0,
    };
}

type Spans = [Span; MAX_FIELDS];

/// The fields are cut out of the message again when asked for: a record carries only the
/// format and the message, and most records' fields are never read (reports).
impl FieldSource for LogFormat {
    fn names(&self) -> &'static [&'static str] {
        self.names
    }

    fn each_value<'t>(&self, text: &'t str, each: &mut dyn FnMut(&'static str, Option<&'t str>)) {
        let mut spans = [Span::NONE; MAX_FIELDS];
        let mut scratch = HttpLog::default();
        let msg = text.as_bytes();
        let parsed = self.parse_spans(
            msg,
            Text::validated(text),
            Zone::UTC,
            Some(0),
            &mut scratch,
            &mut spans,
        );
        for (name, s) in self.names.iter().zip(spans) {
            let value = match parsed {
                Some(()) if s.start != u16::MAX => {
                    text.get(usize::from(s.start)..usize::from(s.start) + usize::from(s.len))
                }
                _ => None,
            };
            each(name, value);
        }
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
        &'a self,
        msg: &'a [u8],
        t: Text<'a>,
        zone: Zone,
        fallback_ts: Option<Micros>,
        out: &mut HttpLog<'a>,
    ) -> Option<()> {
        let mut spans = [Span::NONE; MAX_FIELDS];
        self.parse_spans(msg, t, zone, fallback_ts, out, &mut spans)?;
        if !self.names.is_empty() {
            out.fields = Fields::new(self, t.of(msg).ok()?);
        }
        Some(())
    }

    /// [`LogFormat::parse_into`] without the fields, whose places in `msg` go into `spans`.
    #[inline(always)]
    fn parse_spans<'a>(
        &self,
        msg: &'a [u8],
        t: Text<'a>,
        zone: Zone,
        fallback_ts: Option<Micros>,
        out: &mut HttpLog<'a>,
        spans: &mut Spans,
    ) -> Option<()> {
        let mut when = When::default();
        let mut rest: &'a [u8] = msg;
        // An absent capture block takes its separator with it.
        let mut skip_space = false;
        let mut prev_space = false;
        for part in self.parts.iter() {
            if let Some(v) = &part.var {
                if v.optional && absent_block(v, rest) {
                    skip_space = prev_space;
                } else {
                    skip_space = false;
                    if let (End::Digits, Some(l), Some(n)) = (v.end, &part.lit, Number::scan(rest)) {
                        let (value, after) = rest.split_at(n.len);
                        if l.at(after)
                            && store_number(v, &n, offset(msg, value), &mut when, out, spans).is_some()
                        {
                            rest = &after[l.bytes.len()..];
                            prev_space = l.ends_in_space;
                            continue;
                        }
                    }
                    let (value, after, took_literal) =
                        extent(v, rest, part.lit.as_ref().or(part.bound.as_ref()))?;
                    store(v, t, msg, value, zone, &mut when, out, spans)?;
                    prev_space = false;
                    match &part.lit {
                        Some(l) if took_literal => {
                            rest = after;
                            prev_space = l.ends_in_space;
                            continue;
                        }
                        // The bound literal is the next part's to match.
                        None if took_literal => rest = &rest[value.len()..],
                        _ => rest = after,
                    }
                }
            }
            if let Some(l) = &part.lit {
                rest = if l.at(rest) {
                    &rest[l.bytes.len()..]
                } else if skip_space && l.bytes[0] == b' ' && rest.starts_with(&l.bytes[1..]) {
                    &rest[l.bytes.len() - 1..]
                } else {
                    return None;
                };
                skip_space = false;
                prev_space = l.ends_in_space;
            }
        }
        if !rest.is_empty() {
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

/// A number as HAProxy prints it: digits with an optional `+` (logasap, redispatch) and `-`
/// (`-1`, a stage never reached) before them.
struct Number {
    value: u64,
    plus: bool,
    minus: bool,
    /// Bytes it took.
    len: usize,
}

impl Number {
    /// The number at the start of `b`: at least one digit, at most 18.
    #[inline(always)]
    fn scan(b: &[u8]) -> Option<Number> {
        let plus = b.first() == Some(&b'+');
        let b2 = &b[usize::from(plus)..];
        let minus = b2.first() == Some(&b'-');
        let body = &b2[usize::from(minus)..];
        let (mut value, mut digits) = (0u64, 0usize);
        for &c in body {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            value = value * 10 + u64::from(d);
            digits += 1;
        }
        (digits > 0 && digits <= 18).then_some(Number {
            value,
            plus,
            minus,
            len: usize::from(plus) + usize::from(minus) + digits,
        })
    }

    /// A timer, a status: `-1` is "none", other negative values are not HAProxy's.
    #[inline(always)]
    fn or_minus_one(&self) -> Option<Option<u64>> {
        match (self.minus, self.value) {
            (true, 1) => Some(None),
            (true, _) => None,
            (false, v) => Some(Some(v)),
        }
    }
}

/// Stores a number read by [`Number::scan`] at `start`; `None` when its target wants it in
/// another shape (the caller then reads the value the general way).
#[inline(always)]
fn store_number(
    v: &VarStep,
    n: &Number,
    start: usize,
    when: &mut When,
    out: &mut HttpLog<'_>,
    spans: &mut Spans,
) -> Option<()> {
    let plain = || (!n.plus && !n.minus).then_some(n.value);
    let u32_of = |x: u64| u32::try_from(x).ok();
    match v.target {
        Target::Timer(k) => {
            let value = match n.or_minus_one()? {
                Some(x) => Some(i32::try_from(x).ok()?),
                None => None,
            };
            set_timer(&mut out.timings, k, value, n.plus);
        }
        Target::Status if !n.plus => {
            out.status = match n.or_minus_one()? {
                Some(x) => Some(u16::try_from(x).ok()?),
                None => None,
            }
        }
        Target::Bytes if !n.minus => (out.bytes_read, out.bytes_logasap) = (n.value, n.plus),
        Target::Retries if !n.minus => (out.retries, out.redispatched) = (u32_of(n.value)?, n.plus),
        Target::ActConn => out.actconn = u32_of(plain()?)?,
        Target::FeConn => out.feconn = u32_of(plain()?)?,
        Target::BeConn => out.beconn = u32_of(plain()?)?,
        Target::SrvConn => out.srv_conn = u32_of(plain()?)?,
        Target::SrvQueue => out.srv_queue = u32_of(plain()?)?,
        Target::BackendQueue => out.backend_queue = u32_of(plain()?)?,
        Target::ClientPort => out.client.port = u16::try_from(plain()?).ok(),
        Target::Millis => when.millis = Some(u32_of(plain()?).filter(|ms| *ms < 1000)?),
        Target::Field(i) => {
            spans[usize::from(i)] = Span {
                start: u16::try_from(start).ok().filter(|s| *s != u16::MAX)?,
                len: u16::try_from(n.len).ok()?,
            }
        }
        Target::Skip => {}
        _ => return None,
    }
    Some(())
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

/// The value at the start of `rest`, what follows it, and whether the literal after the value
/// was matched on the way (the caller then skips it).
#[inline(always)]
fn extent<'a>(v: &VarStep, rest: &'a [u8], lit: Option<&Literal>) -> Option<(&'a [u8], &'a [u8], bool)> {
    let lit = || lit;
    match v.end {
        End::Quoted { escaped } => {
            let inner = rest.strip_prefix(b"\"")?;
            let close = if escaped {
                closing_quote_escaped(inner)?
            } else {
                memchr::memchr(b'"', inner)?
            };
            Some((&inner[..close], &inner[close + 1..], false))
        }
        End::Block { quoted: true } => {
            let inner = rest.strip_prefix(b"\"{")?;
            let close = memchr::memchr(b'"', inner)?;
            let value = inner[..close].strip_suffix(b"}")?;
            Some((value, &inner[close + 1..], false))
        }
        End::Block { quoted: false } => {
            let inner = rest.strip_prefix(b"{")?;
            let close = memchr::memchr(b'}', inner)?;
            Some((&inner[..close], &inner[close + 1..], false))
        }
        // `[date]` of an old HAProxy without milliseconds: up to the next literal instead.
        End::Fixed(w) if rest.len() >= w && rest[20] != b']' => {
            let (value, after) = rest.split_at(w);
            Some((value, after, false))
        }
        End::IpColon => {
            let tok = &rest[..find_near(rest, b' ').unwrap_or(rest.len())];
            let (value, after) = rest.split_at(memchr::memrchr(b':', tok)?);
            Some((value, after, false))
        }
        End::Request if !rest.starts_with(b"<BADREQ>") => {
            let a = find_near(rest, b' ')? + 1;
            let from = a + find_near(&rest[a..], b' ')? + 1;
            up_to_literal(rest, from, lit()?)
        }
        End::Space => {
            let (value, after) = rest.split_at(find_near(rest, b' ').unwrap_or(rest.len()));
            Some((value, after, false))
        }
        End::Rest => Some((rest, &[], false)),
        End::Literal | End::Digits | End::Request | End::Fixed(_) => match lit() {
            Some(l) => up_to_literal(rest, 0, l),
            None => Some((rest, &[], false)),
        },
    }
}

/// The value up to the first `l` at or after `from`, and what follows `l`.
#[inline(always)]
fn up_to_literal<'a>(rest: &'a [u8], from: usize, l: &Literal) -> Option<(&'a [u8], &'a [u8], bool)> {
    let end = from + find_literal(&rest[from..], l)?;
    Some((&rest[..end], &rest[end + l.bytes.len()..], true))
}

/// Where `value`, a slice of `msg`, starts in it.
#[inline(always)]
fn offset(msg: &[u8], value: &[u8]) -> usize {
    value.as_ptr() as usize - msg.as_ptr() as usize
}

/// The first occurrence of `lit` in `hay`. Values are short: the first candidate is almost
/// always the one.
#[inline(always)]
fn find_literal(hay: &[u8], lit: &Literal) -> Option<usize> {
    let first = lit.bytes[0];
    let at = find_near(hay, first)?;
    if lit.at(&hay[at..]) {
        return Some(at);
    }
    find_literal_after(hay, lit, at + 1)
}

/// [`find_literal`] past a false start.
#[inline(never)]
fn find_literal_after(hay: &[u8], lit: &Literal, mut from: usize) -> Option<usize> {
    loop {
        let at = from + find_near(hay.get(from..)?, lit.bytes[0])?;
        if lit.at(&hay[at..]) {
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
    msg: &'a [u8],
    b: &'a [u8],
    zone: Zone,
    when: &mut When,
    out: &mut HttpLog<'a>,
    spans: &mut Spans,
) -> Option<()> {
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
            set_timer(&mut out.timings, k, value, logasap);
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
            spans[usize::from(i)] = match present(b) {
                // HAProxy never writes a line past 65535 bytes; a longer one is not its.
                Some(_) => Span {
                    start: u16::try_from(offset(msg, b)).ok().filter(|s| *s != u16::MAX)?,
                    len: u16::try_from(b.len()).ok()?,
                },
                None => Span::NONE,
            }
        }
        Target::Skip => {}
    }
    Some(())
}

/// Sets timer `k` (in log order); `logasap` counts for the total only.
#[inline(always)]
fn set_timer(tm: &mut Timings, k: u8, value: Option<i32>, logasap: bool) {
    match k {
        0 => tm.request = value,
        1 => tm.queue = value,
        2 => tm.connect = value,
        3 => tm.response = value,
        _ => (tm.total, tm.total_logasap) = (value, logasap),
    }
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
