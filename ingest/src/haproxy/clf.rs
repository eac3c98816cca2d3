//! `option httplog clf`: the Common Log Format prefix, then HAProxy's own fields, each separated
//! by a space (`%{+Q}` quotes the names and cookies in 2.x, older versions print them bare):
//!
//! ```text
//! ip - - [date +zone] "request" status bytes "" "" cport ms "fe" "be" "srv" TR Tw Tc Tr Ta tsc
//!   ac fc bc sc rc sq bq "CC" "CS" hrl hsl
//! ```
//!
//! The date carries its own offset, `ms` adds its milliseconds. Everything up to Ta is required;
//! a line cut after it is kept with `truncated`. The capture lists `%hrl %hsl` cannot be told
//! apart (their length is not printed) and are not read.

use weir_model::{Fields, HttpLog, Micros, RejectReason, Timings};

use super::fields::{
    backend_server_clf, clf_date, conn_counts, cookie, dec_u32, frontend, next_field, plus_u64, status,
    timer, Field, Text,
};
use super::request::request_line;
use super::Message;

/// Parses a message whose first token `ip` is followed by ` - - [`; `rest` starts at the `[`.
/// A line that does not carry HAProxy's `"" ""` after the byte count is some other server's
/// access log: [`Message::NotHaproxy`].
pub(crate) fn parse<'a>(msg: &'a [u8], ip: &'a [u8], rest: &'a [u8]) -> Message<'a> {
    match clf(msg, ip, rest) {
        Ok(m) => m,
        Err(r) => Message::Reject(r),
    }
}

#[inline]
fn full(f: Field<'_>, reason: RejectReason) -> Result<(&[u8], &[u8]), RejectReason> {
    match f {
        Field::Full(t, r) => Ok((t, r)),
        _ => Err(reason),
    }
}

/// A field that may be quoted (`"fe_clf"`).
#[inline]
fn unquote(b: &[u8]) -> &[u8] {
    match b {
        [b'"', inner @ .., b'"'] => inner,
        _ => b,
    }
}

fn clf<'a>(msg: &'a [u8], ip: &'a [u8], rest: &'a [u8]) -> Result<Message<'a>, RejectReason> {
    let Ok((rest, date)) = clf_date(rest) else {
        return Ok(Message::NotHaproxy);
    };
    let Some(rest) = rest.strip_prefix(b" \"") else {
        return Ok(Message::NotHaproxy);
    };
    let Some(close) = memchr::memchr(b'"', rest) else {
        // Cut inside the request line: nothing after it (names, timers) is left.
        return Err(RejectReason::BadRequestLine);
    };
    let req = &rest[..close];
    let Some(rest) = rest[close + 1..].strip_prefix(b" ") else {
        return Err(RejectReason::BadStatus);
    };
    let (st, rest) = full(next_field(rest), RejectReason::BadStatus)?;
    let (by, rest) = full(next_field(rest), RejectReason::BadBytes)?;
    // HAProxy prints two empty quoted fields here, where Apache/nginx put referer and agent.
    let Some(rest) = rest.strip_prefix(b"\"\" \"\"") else {
        return Ok(Message::NotHaproxy);
    };
    let t = Text::new(msg)?;
    let status = status(st).ok_or(RejectReason::BadStatus)?;
    let (bytes_read, bytes_logasap) = plus_u64(by).ok_or(RejectReason::BadBytes)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);

    let (cp, rest) = full(next_field(rest), RejectReason::BadClientAddr)?;
    let port = dec_u32(cp).and_then(|p| u16::try_from(p).ok());
    let (ms, rest) = full(next_field(rest), RejectReason::BadDate)?;
    let ms = dec_u32(ms).filter(|&m| m < 1000).ok_or(RejectReason::BadDate)?;
    let accept_ts: Micros = date + ms as i64 * 1000;
    let (fe, rest) = full(next_field(rest), RejectReason::BadProxyNames)?;
    let (be, rest) = full(next_field(rest), RejectReason::BadProxyNames)?;
    let (srv, mut rest) = full(next_field(rest), RejectReason::BadProxyNames)?;
    let (frontend, ssl) = frontend(t, unquote(fe))?;
    let (backend, server) = backend_server_clf(t, unquote(be), unquote(srv))?;

    let mut timings = Timings::default();
    let slots = [
        &mut timings.request,
        &mut timings.queue,
        &mut timings.connect,
        &mut timings.response,
        &mut timings.total,
    ];
    for (k, slot) in slots.into_iter().enumerate() {
        let (t, r) = full(next_field(rest), RejectReason::BadTimers)?;
        let (v, plus) = timer(t).ok_or(RejectReason::BadTimers)?;
        if plus && k != 4 {
            return Err(RejectReason::BadTimers);
        }
        timings.total_logasap = plus;
        *slot = v;
        rest = r;
    }
    let ip = t.of(ip)?;
    let mut log = HttpLog {
        client: weir_model::ClientAddr { ip, port },
        accept_ts,
        frontend,
        ssl,
        backend,
        server,
        timings,
        status,
        bytes_read,
        bytes_logasap,
        req_cookie: None,
        resp_cookie: None,
        termination_state: "",
        actconn: 0,
        feconn: 0,
        beconn: 0,
        srv_conn: 0,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
        req_headers: None,
        resp_headers: None,
        request: request_line(t, req, true)?,
        tls: None,
        truncated: false,
        clf: true,
        fields: Fields::EMPTY,
    };
    tail(t, rest, &mut log)?;
    Ok(Message::Http(log))
}

/// `tsc ac fc bc sc rc sq bq "CC" "CS"`: optional, a cut line keeps what was complete.
fn tail<'a>(t: Text<'a>, rest: &'a [u8], log: &mut HttpLog<'a>) -> Result<(), RejectReason> {
    let mut f: [&[u8]; 10] = [&[]; 10];
    let mut rest = rest;
    let mut n = 0;
    while n < f.len() {
        match next_field(rest) {
            Field::Full(t, r) => {
                f[n] = t;
                rest = r;
                n += 1;
            }
            // The last cookie may end the line; any other field running into the end was cut.
            Field::Last(t) if n == 9 => {
                f[n] = t;
                n += 1;
            }
            _ => break,
        }
    }
    if n >= 1 {
        if f[0].len() != 4 {
            return Err(RejectReason::BadTerminationState);
        }
        log.termination_state = t.of(f[0])?;
    }
    if n >= 6 {
        let c = conn_counts([f[1], f[2], f[3], f[4], f[5]]).ok_or(RejectReason::BadConnCounts)?;
        log.actconn = c.actconn;
        log.feconn = c.feconn;
        log.beconn = c.beconn;
        log.srv_conn = c.srv_conn;
        log.retries = c.retries;
        log.redispatched = c.redispatched;
    }
    if n >= 8 {
        log.srv_queue = dec_u32(f[6]).ok_or(RejectReason::BadQueues)?;
        log.backend_queue = dec_u32(f[7]).ok_or(RejectReason::BadQueues)?;
    }
    if n >= 9 {
        log.req_cookie = cookie(t, unquote(f[8]))?;
    }
    if n >= 10 {
        log.resp_cookie = cookie(t, unquote(f[9]))?;
    }
    if n < 10 {
        log.truncated = true;
    }
    Ok(())
}
