//! Heroku router lines: what `heroku[router]` (RFC 5424: app `heroku`, procid `router`) writes
//! for each request, `at=info method=GET path="/" host=... request_id=... fwd="..." dyno=web.1
//! connect=1ms service=15ms status=200 bytes=1234 protocol=https`, and for each routing error,
//! `at=error code=H12 desc="Request timeout" ... dyno= connect= service=30000ms status=503`,
//! with the fields an error leaves empty read as absent. The pre-2012 error form `Error H10
//! (App crashed) -> GET myapp.heroku.com/ web=web.1 queue=0 wait=0ms service=0ms bytes=0` is
//! read too. A router line without `at=`, or with a field that is not what Heroku writes (a
//! status that is not a number, a time without `ms`), is a `bad_router_line` reject.

use weir_model::{RejectReason, RouterLog};

use crate::kv::kv_pairs;

/// Whether a header names Heroku's router as the sender.
pub fn is_router(app: Option<&str>, procid: Option<&str>) -> bool {
    app == Some("heroku") && procid == Some("router")
}

/// The fields of a router line's message.
pub fn parse_router(msg: &str) -> Result<RouterLog<'_>, RejectReason> {
    let msg = msg.trim();
    if let Some(rest) = msg.strip_prefix("Error ") {
        return legacy_error(rest).ok_or(RejectReason::BadRouterLine);
    }
    let bad = RejectReason::BadRouterLine;
    let mut r = RouterLog::default();
    let mut at = None;
    for (k, v) in kv_pairs(msg) {
        let text = (!v.is_empty()).then_some(v);
        match k {
            "at" => at = Some(v),
            "code" => r.code = text,
            "desc" => r.desc = text,
            "method" => r.method = text,
            "path" => r.path = text,
            "host" => r.host = text,
            "request_id" => r.request_id = text,
            "fwd" => r.fwd = text,
            "dyno" => r.dyno = text,
            "protocol" => r.protocol = text,
            "connect" => r.connect_ms = millis(v).ok_or(bad)?,
            "service" => r.service_ms = millis(v).ok_or(bad)?,
            "status" => {
                r.status = number(v)
                    .ok_or(bad)?
                    .map(u16::try_from)
                    .transpose()
                    .map_err(|_| bad)?
            }
            "bytes" => r.bytes = number(v).ok_or(bad)?,
            _ => {}
        }
    }
    r.at = at.filter(|a| !a.is_empty()).ok_or(bad)?;
    if r.status.is_some_and(|s| !(100..=999).contains(&s)) {
        return Err(bad);
    }
    Ok(r)
}

/// `12ms` (or a bare `12`) as `Some(Some(12))`, an empty value as `Some(None)`, anything else
/// as `None`.
fn millis(v: &str) -> Option<Option<u32>> {
    if v.is_empty() {
        return Some(None);
    }
    let digits = v.strip_suffix("ms").unwrap_or(v);
    number(digits)?.map(u32::try_from).transpose().ok()
}

/// Decimal digits as `Some(Some(n))`, empty as `Some(None)`, anything else as `None`.
fn number(v: &str) -> Option<Option<u64>> {
    if v.is_empty() {
        return Some(None);
    }
    if !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 19 {
        return None;
    }
    v.parse().ok().map(Some)
}

/// `H10 (App crashed) -> GET myapp.heroku.com/ web=web.1 queue=0 wait=0ms service=0ms bytes=0`.
fn legacy_error(rest: &str) -> Option<RouterLog<'_>> {
    let (code, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('(')?;
    let (desc, rest) = rest.split_once(')')?;
    let rest = rest.trim_start().strip_prefix("->")?.trim_start();
    let (method, rest) = rest.split_once(' ')?;
    let (target, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (host, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, "/"),
    };
    let mut r = RouterLog {
        at: "error",
        code: Some(code),
        desc: Some(desc),
        method: Some(method),
        host: (!host.is_empty()).then_some(host),
        path: Some(path),
        ..RouterLog::default()
    };
    for (k, v) in kv_pairs(rest) {
        match k {
            "web" | "dyno" => r.dyno = (!v.is_empty()).then_some(v),
            "service" => r.service_ms = millis(v)?,
            "connect" => r.connect_ms = millis(v)?,
            "bytes" => r.bytes = number(v)?,
            "status" => r.status = number(v)?.and_then(|s| u16::try_from(s).ok()),
            _ => {}
        }
    }
    let code_ok = code.len() == 3 && code.starts_with('H') && code[1..].bytes().all(|b| b.is_ascii_digit());
    code_ok.then_some(r)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_info_line_fills_every_field() {
        let r = parse_router(
            r#"at=info method=GET path="/api/items?page=2" host=myapp.herokuapp.com request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="204.204.204.204, 10.0.0.1" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 protocol=https"#,
        )
        .unwrap();
        assert_eq!(
            r,
            RouterLog {
                at: "info",
                code: None,
                desc: None,
                method: Some("GET"),
                path: Some("/api/items?page=2"),
                host: Some("myapp.herokuapp.com"),
                request_id: Some("8601b555-6a83-4c12-8269-97c8e32cdb22"),
                fwd: Some("204.204.204.204, 10.0.0.1"),
                dyno: Some("web.1"),
                connect_ms: Some(1),
                service_ms: Some(18),
                status: Some(200),
                bytes: Some(13),
                protocol: Some("https"),
            }
        );
    }

    #[test]
    fn the_legacy_error_form_is_read() {
        let r = parse_router(
            "Error H10 (App crashed) -> GET myapp.heroku.com/ web=web.1 queue=0 wait=0ms service=0ms bytes=0",
        )
        .unwrap();
        assert_eq!(
            (
                r.at,
                r.code,
                r.desc,
                r.method,
                r.host,
                r.path,
                r.dyno,
                r.service_ms,
                r.bytes
            ),
            (
                "error",
                Some("H10"),
                Some("App crashed"),
                Some("GET"),
                Some("myapp.heroku.com"),
                Some("/"),
                Some("web.1"),
                Some(0),
                Some(0)
            )
        );
    }

    #[test]
    fn what_heroku_does_not_write_is_a_reject() {
        for bad in [
            "method=GET path=/ status=200",
            "at= method=GET",
            "at=info status=2oo",
            "at=info status=42",
            "at=info connect=1s",
            "at=info service=-5ms",
            "at=info bytes=12kB",
            "Error H1X (x) -> GET a/",
            "Error H10 App crashed",
            "",
        ] {
            assert_eq!(parse_router(bad), Err(RejectReason::BadRouterLine), "{bad}");
        }
    }

    proptest! {
        /// Any text is a router log or a reject, never a panic.
        #[test]
        fn never_panics(s in "\\PC*", t in "(at=(info|error) )?(code=H[0-9]{2} )?(status=[0-9]{0,4} )?(connect=[0-9]{0,3}(ms)? )?(bytes=[0-9a-z]{0,5})?") {
            let _ = parse_router(&s);
            let _ = parse_router(&t);
            let _ = parse_router(&format!("Error {s}"));
        }
    }
}
