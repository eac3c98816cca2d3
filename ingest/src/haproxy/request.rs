//! The request line `"METHOD URI VERSION"` and what may follow it: the `option httpslog`
//! suffix, or the older `%sslc/%sslv` pair some configurations append.

use weir_model::{RejectReason, RequestLine, TlsInfo};

use super::fields::{find, find_near, split_slash, Text};

/// Splits the text between the quotes. `complete` is false when the closing quote was missing
/// (the line was cut): the last word may be partial, so no HTTP version is claimed.
pub(crate) fn request_line<'a>(
    t: Text<'a>,
    raw_b: &'a [u8],
    complete: bool,
) -> Result<RequestLine<'a>, RejectReason> {
    let raw = t.of(raw_b)?;
    let mut req = RequestLine {
        raw,
        ..RequestLine::default()
    };
    if raw == "<BADREQ>" {
        req.bad = true;
        return Ok(req);
    }
    if raw.is_empty() {
        return Ok(req);
    }
    let b = raw.as_bytes();
    let Some(sp1) = find(b, b' ') else {
        // A single word: a whole method with nothing after it only when the quote closed.
        if complete {
            req.method = Some(raw);
        }
        return Ok(req);
    };
    req.method = Some(&raw[..sp1]);
    let after = &raw[sp1 + 1..];
    let uri = if complete {
        match after.as_bytes().iter().rposition(|&c| c == b' ') {
            Some(sp2) => {
                req.http_version = Some(&after[sp2 + 1..]);
                &after[..sp2]
            }
            // HTTP/0.9 style `GET /` has no version.
            None => after,
        }
    } else {
        // Cut short: the URI ends at the next space, whatever follows is a partial version.
        match find_near(after.as_bytes(), b' ') {
            Some(sp2) => &after[..sp2],
            None => after,
        }
    };
    match find_near(uri.as_bytes(), b'?') {
        Some(q) => {
            req.path = Some(&uri[..q]);
            req.query = Some(&uri[q + 1..]);
        }
        None => req.path = Some(uri),
    }
    Ok(req)
}

/// What followed the request line.
pub(crate) struct Suffix<'a> {
    /// TLS details, when the suffix was one of the known layouts.
    pub tls: Option<TlsInfo<'a>>,
    /// The `httpslog` suffix stopped before its last field.
    pub truncated: bool,
}

#[inline]
fn opt_str<'a>(t: Text<'a>, b: &'a [u8]) -> Result<Option<&'a str>, RejectReason> {
    if b == b"-" || b.is_empty() {
        Ok(None)
    } else {
        t.of(b).map(Some)
    }
}

#[inline]
fn opt_i32(b: &[u8]) -> Option<i32> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i32, |v, &c| v * 10 + (c - b'0') as i32);
    Some(if neg { -v } else { v })
}

/// Reads the text after the closing quote of the request line (without the leading space).
///
/// `option httpslog` adds `fc_err/ssl_fc_err/ssl_c_err/ssl_c_ca_err/resumed sni/version/cipher`;
/// a lone `cipher/TLSvX` pair (`%sslc/%sslv`) is also read. Anything else is a custom suffix
/// and is ignored: the request itself is complete.
pub(crate) fn suffix<'a>(t: Text<'a>, s: &'a [u8]) -> Result<Suffix<'a>, RejectReason> {
    let (first, second) = match memchr::memchr(b' ', s) {
        Some(n) => (&s[..n], Some(&s[n + 1..])),
        None => (s, None),
    };
    if let Some([fc, ssl_fc, c_err, ca_err, resumed]) = split_slash::<5>(first) {
        let mut tls = TlsInfo {
            fc_err: opt_i32(fc),
            ssl_fc_err: opt_str(t, ssl_fc)?,
            ssl_c_err: opt_i32(c_err),
            ssl_c_ca_err: opt_i32(ca_err),
            resumed: match resumed {
                b"0" => Some(false),
                b"1" => Some(true),
                _ => None,
            },
            ..TlsInfo::default()
        };
        let Some(second) = second else {
            return Ok(Suffix {
                tls: Some(tls),
                truncated: true,
            });
        };
        let second = match memchr::memchr(b' ', second) {
            Some(n) => &second[..n],
            None => second,
        };
        let mut parts = second.splitn(3, |&c| c == b'/');
        tls.sni = opt_str(t, parts.next().unwrap_or_default())?;
        let version = parts.next();
        let cipher = parts.next();
        tls.version = opt_str(t, version.unwrap_or_default())?;
        tls.cipher = opt_str(t, cipher.unwrap_or_default())?;
        return Ok(Suffix {
            tls: Some(tls),
            truncated: cipher.is_none(),
        });
    }
    if let Some([cipher, version]) = split_slash::<2>(first) {
        if version.starts_with(b"TLSv") || version.starts_with(b"SSLv") {
            let tls = TlsInfo {
                cipher: opt_str(t, cipher)?,
                version: opt_str(t, version)?,
                ..TlsInfo::default()
            };
            return Ok(Suffix {
                tls: Some(tls),
                truncated: false,
            });
        }
    }
    Ok(Suffix {
        tls: None,
        truncated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_method_path_query_version() {
        let r = request_line(
            Text::new(b"GET /search?q=a%20b&lang=fr HTTP/1.1").unwrap(),
            b"GET /search?q=a%20b&lang=fr HTTP/1.1",
            true,
        )
        .unwrap();
        assert_eq!(r.method, Some("GET"));
        assert_eq!(r.path, Some("/search"));
        assert_eq!(r.query, Some("q=a%20b&lang=fr"));
        assert_eq!(r.http_version, Some("HTTP/1.1"));
        assert!(!r.bad);
    }

    #[test]
    fn badreq_and_empty() {
        let r = request_line(Text::new(b"<BADREQ>").unwrap(), b"<BADREQ>", true).unwrap();
        assert!(r.bad);
        assert_eq!(r.method, None);
        let r = request_line(Text::new(b"").unwrap(), b"", true).unwrap();
        assert_eq!((r.method, r.path), (None, None));
    }

    #[test]
    fn http09_and_absolute_uri_and_empty_query() {
        let r = request_line(
            Text::new(b"GET http://fr.adserver.yahoo.com/").unwrap(),
            b"GET http://fr.adserver.yahoo.com/",
            true,
        )
        .unwrap();
        assert_eq!(r.path, Some("http://fr.adserver.yahoo.com/"));
        assert_eq!(r.http_version, None);
        let r = request_line(
            Text::new(b"GET /cgi-bin/bug.cgi? HTTP/1.0").unwrap(),
            b"GET /cgi-bin/bug.cgi? HTTP/1.0",
            true,
        )
        .unwrap();
        assert_eq!(r.query, Some(""));
        let r = request_line(
            Text::new(b"CONNECT localhost:8080 HTTP/1.1").unwrap(),
            b"CONNECT localhost:8080 HTTP/1.1",
            true,
        )
        .unwrap();
        assert_eq!(r.path, Some("localhost:8080"));
    }

    #[test]
    fn escaped_quote_and_braces_stay_in_the_query() {
        let r = request_line(
            Text::new(b"GET /q?a=#22b#22&c={d}|e HTTP/1.1").unwrap(),
            b"GET /q?a=#22b#22&c={d}|e HTTP/1.1",
            true,
        )
        .unwrap();
        assert_eq!(r.query, Some("a=#22b#22&c={d}|e"));
    }

    #[test]
    fn cut_request_line_claims_no_version() {
        let r = request_line(Text::new(b"GET /aaaa").unwrap(), b"GET /aaaa", false).unwrap();
        assert_eq!(
            (r.method, r.path, r.http_version),
            (Some("GET"), Some("/aaaa"), None)
        );
        let r = request_line(Text::new(b"GET /a HTTP/1").unwrap(), b"GET /a HTTP/1", false).unwrap();
        assert_eq!((r.path, r.http_version), (Some("/a"), None));
        let r = request_line(Text::new(b"GE").unwrap(), b"GE", false).unwrap();
        assert_eq!(r.method, None);
    }

    #[test]
    fn httpslog_suffix() {
        let s = suffix(
            Text::new(b"0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384").unwrap(),
            b"0/0000000000000000/0/0/0 -/TLSv1.3/TLS_AES_256_GCM_SHA384",
        )
        .unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(tls.fc_err, Some(0));
        assert_eq!(tls.ssl_fc_err, Some("0000000000000000"));
        assert_eq!(tls.resumed, Some(false));
        assert_eq!(tls.sni, None);
        assert_eq!(tls.version, Some("TLSv1.3"));
        assert_eq!(tls.cipher, Some("TLS_AES_256_GCM_SHA384"));
        assert!(!s.truncated);
        let s = suffix(
            Text::new(b"0/0/0/0/1 1wt.eu/TLSv1.3/TLS_AES_256_GCM_SHA384").unwrap(),
            b"0/0/0/0/1 1wt.eu/TLSv1.3/TLS_AES_256_GCM_SHA384",
        )
        .unwrap();
        assert_eq!(s.tls.unwrap().sni, Some("1wt.eu"));
        assert_eq!(s.tls.unwrap().resumed, Some(true));
        let s = suffix(
            Text::new(b"0/0000000000000000/0/0/0 -/TLSv1.3").unwrap(),
            b"0/0000000000000000/0/0/0 -/TLSv1.3",
        )
        .unwrap();
        assert!(s.truncated);
    }

    #[test]
    fn cipher_version_pair_and_custom_suffix() {
        let s = suffix(
            Text::new(b"ECDHE-RSA-AES128-GCM-SHA256/TLSv1.2").unwrap(),
            b"ECDHE-RSA-AES128-GCM-SHA256/TLSv1.2",
        )
        .unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(
            (tls.cipher, tls.version),
            (Some("ECDHE-RSA-AES128-GCM-SHA256"), Some("TLSv1.2"))
        );
        assert!(suffix(Text::new(b"whatever else").unwrap(), b"whatever else")
            .unwrap()
            .tls
            .is_none());
    }
}
