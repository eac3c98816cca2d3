//! weir-ingest: bytes in, records out.
//!
//! The data path, in module order: [`read`] opens inputs (files, `-`, `.gz`, `.zst`) and cuts
//! them into line-aligned chunks that worker threads parse in parallel; [`syslog`] reads the
//! syslog header of a line (RFC 3164 in all of HAProxy's variants, RFC 5424, rsyslog files
//! without PRI, or none). Over TCP, [`framing`] first cuts the byte stream into messages,
//! detecting per frame RFC 6587 octet counting or LF termination, with `max_line` enforced on
//! both; [`listen`] holds the UDP and TCP receivers that turn sockets into batches of messages.
//! [`haproxy`] parses HAProxy's HTTP, HTTPS, CLF and TCP logs, connection errors and events;
//! any other line with a syslog header is an application line, whose `key=value` pairs [`kv`]
//! splits when a stage wants them, and whose l2met metrics (`measure#db=12ms`) [`l2met`] reads. [`line::parse_line`] composes them into one
//! [`weir_model::Line`]: the single entry point for every caller; [`zone`] reads zone-less
//! dates in UTC, a fixed offset or an IANA zone. Last, the
//! [`router`] (logplex-style) fans parsed lines out to live tails: a recent-lines ring per
//! source, capped drop-oldest queues per tail session, so neither a noisy source nor a slow
//! reader ever holds up ingest.
//!
//! Nothing here allocates per field: records borrow from the input, and a failure is a small
//! `Copy` [`weir_model::RejectReason`], never a panic (the `fuzz/` targets hold us to it).

pub mod appfields;
pub mod framing;
pub mod haproxy;
pub mod heroku;
pub mod kv;
pub mod l2met;
pub mod line;
pub mod listen;
pub mod options;
pub mod read;
pub mod router;
pub mod syslog;
pub mod zone;

pub use line::{
    for_each_line_of_chunk, for_each_line_str, parse_line, parse_line_as, parse_line_str, Expect,
};
pub use options::{ParseOptions, Zone};
