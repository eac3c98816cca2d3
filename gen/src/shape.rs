//! The knobs that shape the simulated HAProxy fleet's files: which log layout the frontends
//! write, which headers they capture, and how many load balancers (hosts) and HAProxy processes
//! write into one file. A default [`Shape`] is the site as it is, byte for byte; each knob set
//! overrides one aspect for every frontend, so a benchmark can measure the layout a fleet
//! writes (`--layout httplog --captures '{host|user-agent} {content-type}' --hosts 1
//! --processes 1`) rather than the generator's mix.

use std::fmt;
use std::str::FromStr;

/// How the HAProxy lines are shaped; `Default` keeps the simulated site's own configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Every line in this layout (only the frontends that write it take traffic).
    pub layout: Option<Layout>,
    /// Every HTTP frontend captures these headers.
    pub captures: Option<Captures>,
    /// Load balancers writing into the file: `lb1`..`lbN` [default: 2].
    pub hosts: Option<usize>,
    /// HAProxy processes (pids) per load balancer [default: 1].
    pub processes: Option<usize>,
    /// Every request a server answered names one of this many servers, `srv1`..`srvN`, picked
    /// at random whatever its backend (for loads of many series) [default: each backend's own
    /// few].
    pub servers: Option<usize>,
    /// Mean simulated requests per second of the whole site (it swings ±40% over an hour); the
    /// lines' times advance by it, so a day of traffic is `86,400 × rate` lines [default: 250].
    pub site_rate: Option<f64>,
}

/// A log layout HAProxy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Layout {
    /// `option httplog` on every HTTP frontend (no TCP lines, no TLS tail).
    Httplog,
    /// `option httpslog`: the TLS frontends only, each line with its TLS fields.
    Httpslog,
    /// `option httplog clf`: the Common Log Format prefix, then HAProxy's fields.
    Clf,
    /// `option tcplog`: TCP sessions only.
    Tcplog,
}

/// A header HAProxy can capture (`capture request header` / `capture response header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Request `Host`.
    Host,
    /// Request `User-Agent` (`len 48`).
    UserAgent,
    /// Request `Referer`.
    Referer,
    /// Request `X-Forwarded-For`.
    XForwardedFor,
    /// Request `X-Request-ID`.
    XRequestId,
    /// Response `Content-Type`.
    ContentType,
    /// Response `Content-Length`.
    ContentLength,
    /// Response `Cache-Control`.
    CacheControl,
    /// Response `Location`.
    Location,
}

impl Header {
    const ALL: [(&'static str, Header, bool); 9] = [
        ("host", Header::Host, true),
        ("user-agent", Header::UserAgent, true),
        ("referer", Header::Referer, true),
        ("x-forwarded-for", Header::XForwardedFor, true),
        ("x-request-id", Header::XRequestId, true),
        ("content-type", Header::ContentType, false),
        ("content-length", Header::ContentLength, false),
        ("cache-control", Header::CacheControl, false),
        ("location", Header::Location, false),
    ];

    /// The header's name, lower case.
    pub fn name(self) -> &'static str {
        Header::ALL
            .iter()
            .find(|(_, h, _)| *h == self)
            .map_or("", |(n, _, _)| n)
    }

    /// Whether a client sends it (else a server does).
    pub fn is_request(self) -> bool {
        Header::ALL.iter().any(|(_, h, req)| *h == self && *req)
    }
}

/// The capture blocks of a line: `{request headers} {response headers}`, as HAProxy prints
/// them after the connection counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    /// `capture request header`s, in order (the first block).
    pub request: Vec<Header>,
    /// `capture response header`s, in order (the second block).
    pub response: Vec<Header>,
}

/// Parses `{host|user-agent} {content-type}`: up to two blocks, request headers then response
/// headers, names separated by `|`; `''` or `{}` for none.
impl FromStr for Captures {
    type Err = String;

    fn from_str(s: &str) -> Result<Captures, String> {
        let mut blocks = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.split_once('}'))
                .ok_or_else(|| {
                    format!("`{s}`: capture blocks look like {{host|user-agent}} {{content-type}}")
                })?;
            blocks.push(inner.0);
            rest = inner.1.trim_start();
        }
        if blocks.len() > 2 {
            return Err(format!(
                "`{s}`: at most two blocks, request headers then response headers"
            ));
        }
        let mut captures = Captures::default();
        for (i, block) in blocks.into_iter().enumerate() {
            let request = i == 0;
            for name in block.split('|').map(str::trim).filter(|n| !n.is_empty()) {
                let (_, header, is_request) = Header::ALL
                    .iter()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        let known: Vec<_> = Header::ALL.iter().map(|(n, _, _)| *n).collect();
                        format!("unknown header `{name}` (known: {})", known.join(", "))
                    })?;
                if *is_request != request {
                    let side = if request { "request" } else { "response" };
                    return Err(format!("`{name}` is not a {side} header"));
                }
                if request {
                    captures.request.push(*header);
                } else {
                    captures.response.push(*header);
                }
            }
        }
        Ok(captures)
    }
}

impl fmt::Display for Captures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = |hs: &[Header]| hs.iter().map(|h| h.name()).collect::<Vec<_>>().join("|");
        write!(f, "{{{}}} {{{}}}", block(&self.request), block(&self.response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_blocks_parse() {
        let c: Captures = "{host|User-Agent} {content-type}".parse().unwrap();
        assert_eq!(c.request, [Header::Host, Header::UserAgent]);
        assert_eq!(c.response, [Header::ContentType]);
        assert_eq!(c.to_string(), "{host|user-agent} {content-type}");
        assert_eq!("".parse::<Captures>(), Ok(Captures::default()));
        assert_eq!("{} {}".parse::<Captures>(), Ok(Captures::default()));
        let only_resp: Captures = "{} {location|cache-control}".parse().unwrap();
        assert_eq!(only_resp.response, [Header::Location, Header::CacheControl]);
        assert!("{host".parse::<Captures>().is_err());
        assert!("{cookie}".parse::<Captures>().is_err());
        assert!("{content-type}".parse::<Captures>().is_err());
        assert!("{host} {user-agent}".parse::<Captures>().is_err());
        assert!("{} {} {}".parse::<Captures>().is_err());
    }
}
