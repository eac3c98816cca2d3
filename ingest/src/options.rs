//! What a parser needs to know that the line does not say: the time zone HAProxy wrote its
//! accept dates in, the year to give RFC 3164 timestamps, which carry none, and the custom
//! `log-format`s the lines were written with.

use weir_model::Micros;

use crate::haproxy::logformat::Formats;

/// A fixed UTC offset for HAProxy's zone-less accept dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Zone {
    /// Seconds east of UTC (`+02:00` is 7200).
    pub offset_secs: i32,
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone { offset_secs: 0 };

    /// Parses `UTC`, `Z`, or a fixed offset `+HH:MM`, `-HHMM`, `+HH`.
    pub fn parse(s: &str) -> Option<Zone> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s == "Z" || s.eq_ignore_ascii_case("gmt") {
            return Some(Zone::UTC);
        }
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
            return None;
        }
        let h: i32 = digits[..2].parse().ok()?;
        let m: i32 = if digits.len() == 4 {
            digits[2..].parse().ok()?
        } else {
            0
        };
        if h > 23 || m > 59 {
            return None;
        }
        Some(Zone {
            offset_secs: sign * (h * 3600 + m * 60),
        })
    }

    /// Converts a wall-clock instant in this zone (computed as if it were UTC) to UTC.
    #[inline]
    pub fn to_utc(self, local_as_utc: Micros) -> Micros {
        local_as_utc - self.offset_secs as i64 * 1_000_000
    }
}

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
            formats: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::parse("+02:00"), Some(Zone { offset_secs: 7200 }));
        assert_eq!(Zone::parse("-0130"), Some(Zone { offset_secs: -5400 }));
        assert_eq!(Zone::parse("+05"), Some(Zone { offset_secs: 18000 }));
        assert_eq!(Zone::parse("Europe/Paris"), None);
        assert_eq!(Zone::parse("+25:00"), None);
    }
}
