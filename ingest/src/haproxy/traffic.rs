//! Lines that open with `client [accept date]`: the HTTP/HTTPS log, the TCP log and the
//! connection-error line share this prefix; the token after the date and the number of timers
//! tell them apart (`frontend/bind:` is an error, five timers HTTP, three TCP).

use weir_model::{
    AppKind, AppLog, Captures, ClientAddr, Fields, HttpLog, Micros, Record, RejectReason, RequestLine,
    TcpLog, Timings,
};

use super::fields::{
    accept_date, backend_server, client_addr, conn_counts_tok, cookie, frontend, next_field, plus_u64,
    queues, split_slash, status, timers, Field, Text,
};
use super::request::{request_line, suffix};
use super::Message;
use crate::ParseOptions;

/// Parses a message whose first token is followed by ` [`. `client` is that token, `rest`
/// starts at the `[`.
#[inline(always)]
///
/// An HTTP record is written into `slot` and `None` returned (see
/// [`super::parse_message_into`]); any other outcome is returned. `text` is the validated
/// line, when the caller has it.
pub(crate) fn parse<'a>(
    msg: &'a [u8],
    client: &'a [u8],
    rest: &'a [u8],
    opts: &ParseOptions,
    slot: &mut Record<'a>,
    text: Option<Text<'a>>,
) -> Option<Message<'a>> {
    let (after_date, ts) = match accept_date(rest, opts) {
        Ok((r, ts)) => (r, ts),
        Err(_) => {
            return Some(if looks_like_traffic_after_bad_date(rest) {
                Message::Reject(RejectReason::BadDate)
            } else {
                Message::NotHaproxy
            });
        }
    };
    let t = match text.map_or_else(|| Text::new(msg), Ok) {
        Ok(t) => t,
        Err(r) => return Some(Message::Reject(r)),
    };
    let client = match client_addr(t, client) {
        Ok(c) => c,
        Err(r) => return Some(Message::Reject(r)),
    };
    let Some(after_date) = after_date.strip_prefix(b" ") else {
        return Some(Message::Reject(RejectReason::BadProxyNames));
    };
    match next_field(after_date) {
        Field::Full(fe, _) if fe.ends_with(b":") => Some(conn_error(t, msg, client, ts, &fe[..fe.len() - 1])),
        Field::Full(fe, rest) => match proxied(t, client, ts, fe, rest, slot, opts.request_line) {
            Ok(m) => m,
            Err(r) => Some(Message::Reject(r)),
        },
        Field::Last(_) | Field::End => Some(Message::Reject(RejectReason::BadProxyNames)),
    }
}

/// After an unreadable `[date]`: is the rest still shaped like a traffic line
/// (`] frontend backend/server ...` or `] frontend/bind: ...`)? Then it is a broken HAProxy
/// line; otherwise some other program's line that happens to start alike.
fn looks_like_traffic_after_bad_date(rest: &[u8]) -> bool {
    let Some(close) = memchr::memchr(b']', rest) else {
        return false;
    };
    let Some(after) = rest[close + 1..].strip_prefix(b" ") else {
        return false;
    };
    match next_field(after) {
        Field::Full(fe, _) if fe.ends_with(b":") => memchr::memchr(b'/', fe).is_some(),
        Field::Full(_, rest) => match next_field(rest) {
            Field::Full(bs, rest) => {
                memchr::memchr(b'/', bs).is_some()
                    && matches!(next_field(rest), Field::Full(t, _) | Field::Last(t) if split_slash::<3>(t).is_some() || split_slash::<5>(t).is_some())
            }
            _ => false,
        },
        _ => false,
    }
}

fn conn_error<'a>(
    t: Text<'a>,
    msg: &'a [u8],
    client: ClientAddr<'a>,
    ts: Micros,
    subject: &'a [u8],
) -> Message<'a> {
    let (Ok(message), Ok(subject)) = (t.of(msg), t.of(subject)) else {
        return Message::Reject(RejectReason::InvalidUtf8);
    };
    Message::Event(AppLog {
        kind: AppKind::HaproxyConnError,
        ts: Some(ts),
        message,
        client: Some(client),
        subject: Some(subject),
        router: None,
    })
}

/// A mandatory field: it must be followed by a space, or it may have been cut.
#[inline]
fn full(f: Field<'_>, reason: RejectReason) -> Result<(&[u8], &[u8]), RejectReason> {
    match f {
        Field::Full(t, r) => Ok((t, r)),
        _ => Err(reason),
    }
}

/// `frontend backend/server timers ...`: HTTP when five timers (written into `slot`, `None`
/// returned), TCP when three.
#[inline(always)]
fn proxied<'a>(
    t: Text<'a>,
    client: ClientAddr<'a>,
    accept_ts: Micros,
    fe: &'a [u8],
    rest: &'a [u8],
    slot: &mut Record<'a>,
    request_line: bool,
) -> Result<Option<Message<'a>>, RejectReason> {
    let (frontend, ssl) = frontend(t, fe)?;
    let (bs, rest) = full(next_field(rest), RejectReason::BadProxyNames)?;
    let (backend, server) = backend_server(t, bs)?;
    let (tm, rest) = full(next_field(rest), RejectReason::BadTimers)?;
    if let Some(([request, queue, connect, response, total], total_logasap)) = timers::<5>(tm) {
        let timings = Timings {
            request,
            queue,
            connect,
            response,
            total,
            total_logasap,
        };
        let (status, rest) = match short_field::<3>(rest) {
            // Three digits, as nearly every status is.
            Some((&[a, b, c], rest)) if is_digits([a, b, c]) => (Some(digits3([a, b, c])), rest),
            _ => {
                let (st, rest) = full(next_field(rest), RejectReason::BadStatus)?;
                (status(st).ok_or(RejectReason::BadStatus)?, rest)
            }
        };
        let (bytes_read, bytes_logasap, rest) = match digits_then_space(rest) {
            Some((v, rest)) => (v, false, rest),
            None => {
                let (by, rest) = full(next_field(rest), RejectReason::BadBytes)?;
                let (v, plus) = plus_u64(by).ok_or(RejectReason::BadBytes)?;
                (v, plus, rest)
            }
        };
        *slot = Record::Http(HttpLog {
            client,
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
            request: RequestLine::default(),
            tls: None,
            truncated: false,
            clf: false,
            fields: Fields::EMPTY,
        });
        if let Record::Http(log) = slot {
            http_tail(t, rest, log, request_line)?;
        }
        return Ok(None);
    }
    if let Some(([queue_ms, connect_ms, total_ms], total_logasap)) = timers::<3>(tm) {
        return tcp(
            t,
            client,
            accept_ts,
            frontend,
            ssl,
            backend,
            server,
            [queue_ms, connect_ms, total_ms],
            total_logasap,
            rest,
        )
        .map(|tcp| Some(Message::Tcp(tcp)));
    }
    Err(RejectReason::BadTimers)
}

/// The TCP log after its timers. Every field is required: [`TcpLog`] has no way to say a
/// field is missing, so a cut line is a reject naming the first field it lacks.
#[allow(clippy::too_many_arguments)]
fn tcp<'a>(
    t: Text<'a>,
    client: ClientAddr<'a>,
    accept_ts: Micros,
    frontend: &'a str,
    ssl: bool,
    backend: &'a str,
    server: &'a str,
    [queue_ms, connect_ms, total_ms]: [Option<i32>; 3],
    total_logasap: bool,
    rest: &'a [u8],
) -> Result<TcpLog<'a>, RejectReason> {
    let (by, rest) = full(next_field(rest), RejectReason::BadBytes)?;
    let (bytes_read, bytes_logasap) = plus_u64(by).ok_or(RejectReason::BadBytes)?;
    let (ts, rest) = full(next_field(rest), RejectReason::BadTerminationState)?;
    if ts.len() != 2 {
        return Err(RejectReason::BadTerminationState);
    }
    let termination_state = t.of(ts)?;
    let (cc, rest) = full(next_field(rest), RejectReason::BadConnCounts)?;
    let c = conn_counts_tok(cc).ok_or(RejectReason::BadConnCounts)?;
    // The queues end the built-in layout; a custom suffix after them is ignored.
    let q = match next_field(rest) {
        Field::Full(q, _) | Field::Last(q) => q,
        Field::End => return Err(RejectReason::BadQueues),
    };
    let (srv_queue, backend_queue) = queues(q).ok_or(RejectReason::BadQueues)?;
    Ok(TcpLog {
        client,
        accept_ts,
        frontend,
        ssl,
        backend,
        server,
        queue_ms,
        connect_ms,
        total_ms,
        total_logasap,
        bytes_read,
        bytes_logasap,
        termination_state,
        actconn: c.actconn,
        feconn: c.feconn,
        beconn: c.beconn,
        srv_conn: c.srv_conn,
        retries: c.retries,
        redispatched: c.redispatched,
        srv_queue,
        backend_queue,
        fields: Fields::EMPTY,
    })
}

/// The next field when it is exactly `N` bytes long (no space among them, a space after
/// them): what [`next_field`] would return as [`Field::Full`], without searching for the space.
#[inline(always)]
fn short_field<const N: usize>(i: &[u8]) -> Option<(&[u8], &[u8])> {
    let (head, rest) = i.split_first_chunk::<N>()?;
    let rest = rest.strip_prefix(b" ")?;
    (!head.contains(&b' ')).then_some((&head[..], rest))
}

/// A field of 1 to 19 digits followed by a space, read in one pass: its value and what follows
/// the space. `None` for anything else (a sign, a longer number, no space), which the caller
/// reads the general way.
#[inline(always)]
fn digits_then_space(i: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (n, &c) in i.iter().enumerate().take(20) {
        match c.wrapping_sub(b'0') {
            // A 20th digit wraps, and is then refused: no space follows within the 20 bytes.
            d @ 0..=9 => v = v.wrapping_mul(10).wrapping_add(d as u64),
            _ if c == b' ' && n > 0 => return Some((v, &i[n + 1..])),
            _ => return None,
        }
    }
    None
}

#[inline(always)]
fn is_digits<const N: usize>(b: [u8; N]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// Three ASCII digits as a number.
#[inline(always)]
fn digits3([a, b, c]: [u8; 3]) -> u16 {
    (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16
}

/// Marks the record cut short and stops.
macro_rules! cut {
    ($log:expr) => {{
        $log.truncated = true;
        return Ok(());
    }};
}

/// The HTTP log after the byte count: cookies, termination state, counters, queues, 0–2
/// capture blocks, the request line and an optional suffix. The line may stop anywhere here
/// (HAProxy's `len`): what was read completely is kept and `truncated` is set; a field that
/// runs into the end of the message may be partial and is dropped. Without `request_line`
/// (see [`ParseOptions::request_line`]) it stops at the request's opening quote.
fn http_tail<'a>(
    t: Text<'a>,
    rest: &'a [u8],
    log: &mut HttpLog<'a>,
    split_request: bool,
) -> Result<(), RejectReason> {
    // Both cookies absent, the usual case, is left as it is (`None`).
    let rest = match rest.strip_prefix(b"- - ") {
        Some(rest) => rest,
        None => {
            let Field::Full(cc, rest) = next_field(rest) else {
                cut!(log)
            };
            log.req_cookie = cookie(t, cc)?;
            let Field::Full(cs, rest) = next_field(rest) else {
                cut!(log)
            };
            log.resp_cookie = cookie(t, cs)?;
            rest
        }
    };
    let (ts, rest) = match short_field::<4>(rest) {
        Some(found) => found,
        None => {
            let Field::Full(ts, rest) = next_field(rest) else {
                cut!(log)
            };
            (ts, rest)
        }
    };
    if ts.len() != 4 {
        return Err(RejectReason::BadTerminationState);
    }
    log.termination_state = t.of(ts)?;
    let Field::Full(cc, rest) = next_field(rest) else {
        cut!(log)
    };
    let c = conn_counts_tok(cc).ok_or(RejectReason::BadConnCounts)?;
    log.actconn = c.actconn;
    log.feconn = c.feconn;
    log.beconn = c.beconn;
    log.srv_conn = c.srv_conn;
    log.retries = c.retries;
    log.redispatched = c.redispatched;
    let (sq, bq, mut rest) = match short_field::<3>(rest) {
        // `0/0`: both queues empty, as they mostly are.
        Some((b"0/0", rest)) => (0, 0, rest),
        _ => {
            let Field::Full(q, rest) = next_field(rest) else {
                cut!(log)
            };
            let (sq, bq) = queues(q).ok_or(RejectReason::BadQueues)?;
            (sq, bq, rest)
        }
    };
    log.srv_queue = sq;
    log.backend_queue = bq;

    // Capture blocks: `}` `|` `"` are escaped inside (`#7D` ...), spaces are not.
    let mut blocks = 0;
    while let Some(inner) = rest.strip_prefix(b"{") {
        if blocks == 2 {
            return Err(RejectReason::BadCaptures);
        }
        let close = match memchr::memchr2(b'}', b'"', inner) {
            // A raw quote cannot be inside a block: this `{` was never closed.
            Some(n) if inner[n] == b'"' => return Err(RejectReason::BadCaptures),
            found => found,
        };
        let body = &inner[..close.unwrap_or(inner.len())];
        let caps = Some(Captures(t.of(body)?));
        if blocks == 0 {
            log.req_headers = caps;
        } else {
            log.resp_headers = caps;
        }
        blocks += 1;
        let Some(close) = close else { cut!(log) };
        match &inner[close + 1..] {
            [] => cut!(log),
            [b' ', r @ ..] => rest = r,
            _ => return Err(RejectReason::BadCaptures),
        }
    }

    let Some(req) = rest.strip_prefix(b"\"") else {
        return if rest.is_empty() {
            cut!(log)
        } else {
            Err(RejectReason::BadRequestLine)
        };
    };
    if !split_request {
        return Ok(());
    }
    let Some(close) = memchr::memchr(b'"', req) else {
        log.request = request_line(t, req, false)?;
        cut!(log)
    };
    log.request = request_line(t, &req[..close], true)?;
    if let [b' ', s @ ..] = &req[close + 1..] {
        if !s.is_empty() {
            let sfx = suffix(t, s)?;
            log.tls = sfx.tls;
            log.truncated = sfx.truncated;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcuts read a field exactly as the general path does, or leave it to it.
        #[test]
        fn shortcuts_agree_with_next_field(i in "[0-9+ -]{0,24}|[0-9]{18,21} x") {
            let i = i.as_bytes();
            let general = match next_field(i) {
                Field::Full(f, rest) => Some((f, rest)),
                _ => None,
            };
            if let Some(found) = short_field::<3>(i) {
                proptest::prop_assert_eq!(Some(found), general);
                if let (&[a, b, c], _) = found {
                    if is_digits([a, b, c]) {
                        proptest::prop_assert_eq!(Some(Some(digits3([a, b, c]))), status(found.0));
                    }
                }
            }
            if let Some(found) = short_field::<4>(i) {
                proptest::prop_assert_eq!(Some(found), general);
            }
            if let Some((v, rest)) = digits_then_space(i) {
                let (f, r) = general.unwrap();
                proptest::prop_assert_eq!(plus_u64(f), Some((v, false)));
                proptest::prop_assert_eq!(rest, r);
            } else if let Some((f, _)) = general {
                proptest::prop_assert!(
                    f.first().is_none_or(|c| !c.is_ascii_digit()) || plus_u64(f).is_none() || f.len() > 19,
                    "a plain number the shortcut missed"
                );
            }
        }
    }
}
