//! What a parser needs to know that the line does not say: the time zone HAProxy wrote its
//! accept dates in ([`Zone`]), the year to give RFC 3164 timestamps, which carry none, and
//! the instant that settles a wall-clock time the zone repeats.

use weir_model::Micros;

pub use crate::zone::Zone;

use crate::haproxy::logformat::Formats;

/// Options shared by every parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// The zone of HAProxy's accept dates (`[22/Nov/2026:01:22:06.958]` has none).
    pub zone: Zone,
    /// The year given to RFC 3164 timestamps (`Nov 22 01:22:06`).
    pub year: i32,
    /// Split HTTP request lines (method, path, query, version) and read the TLS suffix after
    /// them. Reports that need none of these turn it off: the request then keeps its defaults
    /// and `truncated` is not looked for past the capture blocks. A line is parsed or rejected
    /// alike either way, since nothing after the opening quote can make it a reject.
    pub request_line: bool,
    /// The instant a wall-clock time of the zone's repeated hour is read closest to (see
    /// [`Zone::to_utc_near`]): the caller that reads a stream sets it to the previous line's
    /// instant, and a line whose syslog header carries an offset uses that header's instant.
    pub near: Option<Micros>,
    /// Custom `log-format`s, tried before the built-in layouts; `None` reads built-in
    /// layouts only.
    pub formats: Option<Formats>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            zone: Zone::UTC,
            year: 1970,
            request_line: true,
            near: None,
            formats: None,
        }
    }
}
