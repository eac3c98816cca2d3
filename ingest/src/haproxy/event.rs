//! HAProxy's notices: proxy start/stop, server state changes, health and agent checks, a
//! backend left without servers, SPOE agent events, the legacy `Connect from` line and the
//! `[NOTICE]`/`[WARNING]`/`[ALERT]` messages. Each becomes an [`AppKind::HaproxyEvent`] whose
//! subject names what it is about (`be/srv`, the proxy, the SPOE agent).

use nom::bytes::complete::tag;
use nom::Parser;
use weir_model::{AppKind, AppLog, ClientAddr, RejectReason};

use super::fields::{client_addr, token, utf8, Text};
use super::Message;

/// `prefix` then the subject word.
fn after<'a>(prefix: &'static str, i: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    (tag(prefix.as_bytes()), token)
        .parse_complete(i)
        .ok()
        .map(|(rest, (_, w))| (rest, w))
}

/// Events whose subject follows a fixed prefix, and a check on what must follow the subject
/// (so that an application's "Server started" is not taken for HAProxy's).
const SUBJECT_EVENTS: &[(&str, &[&str])] = &[
    (
        "Server ",
        &[
            " is ",
            " was ",
            " changed ",
            " administratively ",
            " ('",
            " is going ",
            " DNS ",
        ],
    ),
    (
        "Backup Server ",
        &[" is ", " was ", " changed ", " administratively ", " ('"],
    ),
    ("Health check for server ", &[" "]),
    ("Health check for backup server ", &[" "]),
    ("Agent check for server ", &[" "]),
    ("Agent check for backup server ", &[" "]),
    ("Proxy ", &[" started.", " stopped (", " reached ", " failed "]),
    ("Stopping proxy ", &[" in "]),
    ("Stopping frontend ", &[" in "]),
    ("Stopping backend ", &[" in "]),
    ("Pausing proxy ", &["."]),
    ("Pausing frontend ", &["."]),
    ("Resuming proxy ", &["."]),
    ("Resuming frontend ", &["."]),
    ("backend ", &[" has no server available!"]),
];

/// Events recognised by their opening words alone; no subject.
const PLAIN_EVENTS: &[&str] = &[
    "[NOTICE] ",
    "[WARNING] ",
    "[ALERT] ",
    "A bogus ",
    "Exiting Master process",
];

/// Parses an event line, or returns `None` when the message is not one.
pub(crate) fn parse<'a>(msg: &'a [u8]) -> Option<Message<'a>> {
    let first = *msg.first()?;
    // Cheap gate: every event opens with one of these bytes.
    if !matches!(
        first,
        b'S' | b'B' | b'H' | b'A' | b'P' | b'R' | b'b' | b'C' | b'[' | b'E'
    ) {
        return None;
    }
    let event = |subject: Option<&'a [u8]>, client: Option<ClientAddr<'a>>| -> Message<'a> {
        let (Ok(message), Ok(subject)) = (utf8(msg), subject.map(utf8).transpose()) else {
            return Message::Reject(RejectReason::InvalidUtf8);
        };
        Message::Event(AppLog {
            kind: AppKind::HaproxyEvent,
            ts: None,
            message,
            client,
            subject,
            router: None,
        })
    };
    for (prefix, follows) in SUBJECT_EVENTS {
        let Some((rest, subject)) = after(prefix, msg) else {
            continue;
        };
        // `Pausing proxy X.`: the sentence's full stop ends the subject.
        if rest.is_empty() && follows.contains(&".") {
            if let Some(s) = subject.strip_suffix(b".") {
                return Some(event(Some(s), None));
            }
        }
        if follows.iter().any(|f| rest.starts_with(f.as_bytes())) {
            return Some(event(Some(subject), None));
        }
    }
    if let Some(rest) = msg.strip_prefix(b"SPOE: [") {
        let agent = memchr::memchr(b']', rest).map(|n| &rest[..n]);
        return Some(event(agent, None));
    }
    // Legacy `Connect from ip:port to ip:port (proxy/mode)`.
    if let Some((rest, from)) = after("Connect from ", msg) {
        if rest.starts_with(b" to ") {
            let proxy = memchr::memrchr(b'(', rest).and_then(|open| {
                let inner = &rest[open + 1..];
                let end = memchr::memchr2(b'/', b')', inner)?;
                Some(&inner[..end])
            });
            return Some(match Text::new(msg).and_then(|t| client_addr(t, from)) {
                Ok(c) => event(proxy, Some(c)),
                Err(_) => event(proxy, None),
            });
        }
    }
    if PLAIN_EVENTS.iter().any(|p| msg.starts_with(p.as_bytes())) {
        return Some(event(None, None));
    }
    None
}
