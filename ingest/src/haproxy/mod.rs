//! HAProxy messages (the part after the syslog header).
//!
//! Entry point: [`parse_message`].

use weir_model::{AppLog, HttpLog, RejectReason, TcpLog};

use crate::ParseOptions;

/// What an HAProxy-looking message turned out to be.
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

/// Parses one message.
pub fn parse_message<'a>(_msg: &'a [u8], _opts: &ParseOptions) -> Message<'a> {
    Message::NotHaproxy
}
