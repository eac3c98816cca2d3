//! HAProxy messages (the part after the syslog header, or a whole line in `raw` format).
//!
//! Entry point: [`parse_message`], which tells the layouts apart by shape and hands over to
//! [`traffic`] (`ip:port [date] ...`: HTTP/HTTPS log, TCP log, connection errors), [`clf`]
//! (`ip - - [date +zone] ...`) or [`event`] (`Proxy X started.`, `Server be/srv is DOWN`, ...).
//! [`fields`] holds the field parsers they share, [`request`] the request line and the
//! `httpslog` suffix. Records borrow from the message; nothing is allocated, nothing panics.
//! [`logformat`] compiles custom `log-format`s (per frontend, in a [`logformat::FormatSet`])
//! and [`config`] reads them out of `haproxy.cfg`.
//!
//! # What becomes a record, a reject, or neither
//!
//! - A message that does not have HAProxy's shape is [`Message::NotHaproxy`]: the caller files
//!   it as an application line (or an unknown format when there was no syslog header). That
//!   includes lines opening like a traffic line whose date is unreadable *and* whose rest does
//!   not look like `frontend backend/server timers` either, and access logs of other servers in
//!   Common Log Format (HAProxy's CLF carries `"" ""` after the byte count; Apache/nginx don't).
//! - A message with HAProxy's shape and a broken field is [`Message::Reject`] naming the first
//!   field that could not be read: `[]` as a date is [`RejectReason::BadDate`], a client token
//!   without a `:` is [`RejectReason::BadClientAddr`], four timers are
//!   [`RejectReason::BadTimers`], a non-UTF-8 field is [`RejectReason::InvalidUtf8`], and so on.
//!   A custom `log-format` that inserts a field between `backend/server` and the timers is not
//!   a built-in layout and is rejected as [`RejectReason::BadTimers`].
//! - **Client addresses.** HAProxy never prints an invalid address, so an odd one comes from
//!   anonymization or hand-edited fixtures (`X.X.X..211:64996`, `11174.211.190:10165`). An SRE
//!   wants those requests counted, so the text before the last `:` is kept as logged; only a
//!   token without a colon (or with nothing before it) is a reject. A non-numeric port is kept as
//!   `port: None`.
//! - **Truncation** (HAProxy's `len`, default 1024, as low as 80): in the HTTP log the fields up
//!   to the byte count are required, and each must be followed by its space (a field running into
//!   the end of the message may have been cut: `200 21` could be `200 2126`). A line cut there is
//!   a reject naming that field. A line cut later is kept with `truncated: true`: what was
//!   read completely stays, the partial last field is dropped (counters stay 0), except a cut
//!   capture block or request line, whose partial text is kept as logged (the request line then
//!   claims no HTTP version). In CLF the required part runs to Ta (names and timers come after
//!   the request); a CLF line cut inside its request line is [`RejectReason::BadRequestLine`].
//!   The TCP log has no `truncated` flag, so every one of its fields is required and a cut TCP
//!   line is a reject naming the first missing field (`1/1/0/0/` -> [`RejectReason::BadConnCounts`]).
//! - One capture block is taken as the request headers (HAProxy prints the same `{...}` whether
//!   only request or only response headers are captured). More than two blocks, or a `"` inside
//!   a block (it would be escaped as `#22`), is [`RejectReason::BadCaptures`].
//! - After the request line, the `option httpslog` suffix and the older `%sslc/%sslv` pair fill
//!   [`weir_model::TlsInfo`]; any other suffix is ignored, as is anything after a TCP log's queues.
//! - Event lines carry no time (`ts: None`): the caller supplies the syslog header's. Connection
//!   errors carry their accept date. Both keep the whole message as `message`.

pub mod clf;
pub mod config;
pub mod event;
pub mod fields;
pub mod logformat;
pub mod request;
pub mod traffic;

use weir_model::{AppLog, HttpLog, Record, Reject, RejectReason, TcpLog};

use crate::ParseOptions;

/// What an HAProxy-looking message turned out to be.
// Unboxed on purpose: a `Box` would allocate per line, and the value moves straight into a
// `Record`, which is as large.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    /// HTTP/HTTPS/CLF request log.
    Http(HttpLog<'a>),
    /// TCP log.
    Tcp(TcpLog<'a>),
    /// Event or connection-error line.
    Event(AppLog<'a>),
    /// Does not look like HAProxy output at all (the caller may treat it as an app line).
    NotHaproxy,
    /// Looks like an HAProxy traffic log but a field is broken.
    Reject(RejectReason),
}

/// Parses one message: the bytes after the syslog header (trailing CR/LF are ignored). A bare
/// `tag[pid]: ` left in front of it (a header without timestamp, as in the manual's examples)
/// is skipped.
pub fn parse_message<'a>(msg: &'a [u8], opts: &ParseOptions) -> Message<'a> {
    let mut slot = Record::Reject(Reject {
        reason: RejectReason::UnknownFormat,
        message: msg,
    });
    match parse_message_into(msg, opts, &mut slot, None) {
        Some(m) => m,
        None => match slot {
            Record::Http(h) => Message::Http(h),
            // `parse_message_into` returns `None` only after writing an HTTP record.
            _ => Message::Reject(RejectReason::UnknownFormat),
        },
    }
}

/// [`parse_message`] that builds an HTTP record in place, in `slot`, and then returns `None`
/// (the record is the bulk of the traffic and some 450 bytes: moving it costs). Every other
/// outcome is returned; `slot` may then hold a partly filled record, for the caller to replace.
/// `text`, when given, is the whole line (of which `msg` is a part) validated as UTF-8.
#[inline(always)]
pub(crate) fn parse_message_into<'a>(
    msg: &'a [u8],
    opts: &ParseOptions,
    slot: &mut Record<'a>,
    text: Option<fields::Text<'a>>,
) -> Option<Message<'a>> {
    let mut msg = msg;
    while let [rest @ .., b'\n' | b'\r'] = msg {
        msg = rest;
    }
    let Some(sp) = fields::find_near(msg, b' ') else {
        return Some(Message::NotHaproxy);
    };
    let (first, rest) = (&msg[..sp], &msg[sp + 1..]);
    if first.len() > 3 && first.ends_with(b"]:") && first[0] != b'[' && first.contains(&b'[') {
        let Some(sp) = fields::find_near(rest, b' ') else {
            return Some(Message::NotHaproxy);
        };
        return body(rest, &rest[..sp], &rest[sp + 1..], opts, slot, text);
    }
    body(msg, first, rest, opts, slot, text)
}

/// The message proper, told apart by its first word and what follows it.
#[inline(always)]
fn body<'a>(
    msg: &'a [u8],
    first: &'a [u8],
    rest: &'a [u8],
    opts: &ParseOptions,
    slot: &mut Record<'a>,
    text: Option<fields::Text<'a>>,
) -> Option<Message<'a>> {
    match rest.first() {
        // `SPOE: [agent] ...` opens like a traffic line: an unreadable date falls back to events.
        Some(b'[') if !first.is_empty() => match traffic::parse(msg, first, rest, opts, slot, text) {
            Some(Message::NotHaproxy) => Some(event::parse(msg).unwrap_or(Message::NotHaproxy)),
            m => m,
        },
        Some(b'-') if !first.is_empty() && rest.starts_with(b"- - [") => {
            Some(clf::parse(msg, first, &rest[4..]))
        }
        _ => Some(event::parse(msg).unwrap_or(Message::NotHaproxy)),
    }
}

#[cfg(test)]
mod tests;
