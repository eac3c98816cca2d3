//! Tests of the HAProxy message parsers: one per trap, on real lines of the corpus
//! (`tests/corpus/haproxy`), property tests per layout, and the regressions they found.

use proptest::prelude::*;
use weir_model::time::micros_from_civil;
use weir_model::{AppKind, Captures, ClientAddr, RequestLine, Timings};

use super::*;
use crate::Zone;

fn opts() -> ParseOptions {
    ParseOptions::default()
}

#[track_caller]
fn http(msg: &str) -> HttpLog<'_> {
    match parse_message(msg.as_bytes(), &opts()) {
        Message::Http(h) => h,
        other => panic!("not an HTTP log: {other:?}\n{msg}"),
    }
}

#[track_caller]
fn tcp(msg: &str) -> TcpLog<'_> {
    match parse_message(msg.as_bytes(), &opts()) {
        Message::Tcp(t) => t,
        other => panic!("not a TCP log: {other:?}\n{msg}"),
    }
}

#[track_caller]
fn event(msg: &str) -> AppLog<'_> {
    match parse_message(msg.as_bytes(), &opts()) {
        Message::Event(e) => e,
        other => panic!("not an event: {other:?}\n{msg}"),
    }
}

#[track_caller]
fn reject(msg: &[u8]) -> RejectReason {
    match parse_message(msg, &opts()) {
        Message::Reject(r) => r,
        other => panic!("not a reject: {other:?}\n{}", String::from_utf8_lossy(msg)),
    }
}

const GET_INDEX: &str = "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0/3/3 200 212 - - ---- 1/1/0/0/0 0/0 {127.0.0.1:18080|curl/7.88.1} {text/html} \"GET /index.html HTTP/1.1\"";

#[test]
fn httplog_every_field() {
    let h = http(GET_INDEX);
    assert_eq!(
        h.client,
        ClientAddr {
            ip: "127.0.0.1",
            port: Some(34798)
        }
    );
    assert_eq!(h.accept_ts, micros_from_civil(2026, 11, 22, 1, 22, 7, 183_000));
    assert_eq!(
        (h.frontend, h.ssl, h.backend, h.server),
        ("fe_http", false, "be_app", "app1")
    );
    assert_eq!(
        h.timings,
        Timings {
            request: Some(0),
            queue: Some(0),
            connect: Some(0),
            response: Some(3),
            total: Some(3),
            total_logasap: false
        }
    );
    assert_eq!((h.status, h.bytes_read, h.bytes_logasap), (Some(200), 212, false));
    assert_eq!(
        (h.req_cookie, h.resp_cookie, h.termination_state),
        (None, None, "----")
    );
    assert_eq!(
        (
            h.actconn,
            h.feconn,
            h.beconn,
            h.srv_conn,
            h.retries,
            h.redispatched
        ),
        (1, 1, 0, 0, 0, false)
    );
    assert_eq!((h.srv_queue, h.backend_queue), (0, 0));
    assert_eq!(h.req_headers, Some(Captures("127.0.0.1:18080|curl/7.88.1")));
    assert_eq!(h.resp_headers, Some(Captures("text/html")));
    assert_eq!(h.request.raw, "GET /index.html HTTP/1.1");
    assert_eq!(
        (
            h.request.method,
            h.request.path,
            h.request.query,
            h.request.http_version
        ),
        (Some("GET"), Some("/index.html"), None, Some("HTTP/1.1"))
    );
    assert!(!h.truncated && !h.clf && !h.request.bad && h.tls.is_none());
}

#[test]
fn trailing_newline_is_ignored() {
    assert_eq!(http(&format!("{GET_INDEX}\n")), http(GET_INDEX));
    assert_eq!(http(&format!("{GET_INDEX}\r\n")), http(GET_INDEX));
}

#[test]
fn ipv6_client_without_brackets() {
    let h = http("::1:44820 [22/Nov/2026:01:22:15.462] fe_http be_app/app1 0/0/0/4/4 200 212 - - ---- 1/1/0/0/0 0/0 {[::1]:18080|curl/7.88.1} {text/html} \"GET /index.html HTTP/1.1\"");
    assert_eq!(
        h.client,
        ClientAddr {
            ip: "::1",
            port: Some(44820)
        }
    );
    let t = tcp(
        "2a02:6b8::3:56276 [29/May/2015:10:36:47.766] Service1 Service1/host-1 2/0/0 423 -- 282/36/0/0/0 0/0",
    );
    assert_eq!(
        t.client,
        ClientAddr {
            ip: "2a02:6b8::3",
            port: Some(56276)
        }
    );
}

#[test]
fn dash_client_and_tls_frontend() {
    let h = http("-:47625 [22/Jun/2021:12:02:53.473] www-https~ app/app-node2 0/0/1/17/18 302 291 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"");
    assert_eq!(
        h.client,
        ClientAddr {
            ip: "-",
            port: Some(47625)
        }
    );
    assert_eq!((h.frontend, h.ssl), ("www-https", true));
}

#[test]
fn unix_socket_client() {
    let h = http("unix:1 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0/3/3 200 212 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"");
    assert_eq!(
        h.client,
        ClientAddr {
            ip: "unix",
            port: Some(1)
        }
    );
}

#[test]
fn anonymized_client_text_is_kept() {
    let t = tcp("X.X.X..211:64996 [12/Jul/2018:10:12:06.405] haproxy_frontend haproxy_backend/<backend_host_1> 1/1/80861 920 -- 380/380/380/118/0 0/0");
    assert_eq!(
        t.client,
        ClientAddr {
            ip: "X.X.X..211",
            port: Some(64996)
        }
    );
    assert_eq!(t.server, "<backend_host_1>");
    let h = http("IPADDRESS:50679 [21/May/2012:01:35:46.146] webapp webapp_backend/web09 27/0/1/0/217 200 1367 session=abc session=xyz ---- 600/529/336/158/0 0/0 {#7C#7C #7B5F41#7D|http://google.com/|} \"GET /images/image.gif HTTP/1.1\"");
    assert_eq!(h.client.ip, "IPADDRESS");
    assert_eq!(
        (h.req_cookie, h.resp_cookie),
        (Some("session=abc"), Some("session=xyz"))
    );
    assert_eq!(
        h.req_headers,
        Some(Captures("#7C#7C #7B5F41#7D|http://google.com/|"))
    );
    assert_eq!(
        h.req_headers.unwrap().decoded(),
        vec!["|| {5F41}", "http://google.com/", ""]
    );
}

#[test]
fn client_without_colon_is_a_reject() {
    assert_eq!(
        reject(b"IPADDRESS [21/May/2012:01:35:46.146] webapp webapp_backend/web09 27/0/1/0/217 200 1367 - - ---- 600/529/336/158/0 0/0 \"GET / HTTP/1.1\""),
        RejectReason::BadClientAddr
    );
}

#[test]
fn date_without_millis_and_in_a_zone() {
    let line = "127.0.0.1:34014 [09/Aug/2004:20:26:09] proxy-out proxy-out/cache1 0/0/0/162/+162 200 +350 - - ---- 0/0/0/0/0 0/0 {fr.adserver.yahoo.co||http://fr.f416.mail.} {|864|private||} \"GET http://fr.adserver.yahoo.com/\"";
    assert_eq!(http(line).accept_ts, micros_from_civil(2004, 8, 9, 20, 26, 9, 0));
    let east = ParseOptions {
        zone: Zone::fixed(2 * 3600),
        ..opts()
    };
    let Message::Http(h) = parse_message(line.as_bytes(), &east) else {
        panic!()
    };
    assert_eq!(h.accept_ts, micros_from_civil(2004, 8, 9, 18, 26, 9, 0));
}

#[test]
fn empty_date_is_bad_date() {
    let line = b"127.0.0.1:38401 [] loadbalancer default/instance6 0/0/0/155/156 302 15987 - - ---- 18/18/18/0/0 0/0 {123.123.123.123} \"GET /x HTTP/1.1\"";
    assert_eq!(reject(line), RejectReason::BadDate);
}

#[test]
fn unrelated_bracketed_lines_are_not_haproxy() {
    for line in [
        &b"10:00:00 [INFO] server started on port 80"[..],
        b"worker [main] ready",
        b"a [",
        b"x []",
    ] {
        assert_eq!(
            parse_message(line, &opts()),
            Message::NotHaproxy,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn nosrv_and_minus_one_timers_and_status() {
    let h = http("127.0.0.1:9079 [28/Jul/2015:14:48:58.120] front_front1 backend_foobar/srv8-backend 0/0/0/-1/1 -1 96 - - SD-- 17/2/2/0/0 0/0 \"GET /some/Random+Data-3299437 HTTP/1.1\"");
    assert_eq!(h.timings.response, None);
    assert_eq!(h.status, None);
    let h = http("127.0.0.1:34826 [22/Nov/2026:01:22:07.607] fe_http be_nosrv/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 {127.0.0.1:18080|curl/7.88.1} {} \"GET /down HTTP/1.1\"");
    assert_eq!(h.server, "<NOSRV>");
    assert_eq!(
        (h.timings.request, h.timings.queue, h.timings.total),
        (Some(0), None, Some(0))
    );
    assert_eq!(h.resp_headers, Some(Captures("")));
    assert_eq!(h.timings.data(), None);
}

#[test]
fn logasap_plus_on_total_and_bytes() {
    let h = http("127.0.0.1:42052 [22/Nov/2026:01:22:16.777] fe_logasap be_slow/slow1 0/0/0/5/+5 200 +173 - - ---- 1/1/1/1/0 0/0 \"GET /login HTTP/1.1\"");
    assert_eq!((h.timings.total, h.timings.total_logasap), (Some(5), true));
    assert_eq!((h.bytes_read, h.bytes_logasap), (173, true));
    assert_eq!(h.req_headers, None);
}

/// Found by `http_render_then_parse`: logasap with a total never reached renders as `+-1`.
#[test]
fn logasap_total_never_reached() {
    let h = http("192.0.2.7:8454 [14/Nov/2026:17:04:05.734] fe be/s 1/2/-1/-1/+-1 374 +33 - - RDDU 5/8/5/5/4 7/5 \"GET / HTTP/1.1\"");
    assert_eq!(
        (h.timings.total, h.timings.total_logasap, h.bytes_logasap),
        (None, true, true)
    );
}

#[test]
fn plus_on_another_timer_is_bad_timers() {
    let line = b"127.0.0.1:1 [22/Nov/2026:01:22:16.777] fe be/s 0/0/+0/5/5 200 173 - - ---- 1/1/1/1/0 0/0 \"GET / HTTP/1.1\"";
    assert_eq!(reject(line), RejectReason::BadTimers);
}

#[test]
fn redispatched_retries() {
    let h = http("10.0.0.1:34552 [15/Oct/2003:15:26:31.462] px-http px-http/srv1 3183/-1/-1/-1/11215 503 0 - - SC-- 205/202/202/115/+3 0/0 \"HEAD / HTTP/1.0\"");
    assert_eq!((h.retries, h.redispatched), (3, true));
}

#[test]
fn cookies_captured() {
    let h = http("127.0.0.1:34882 [22/Nov/2026:01:22:09.920] fe_http be_slow/slow1 0/0/0/6/6 200 173 - SESSID=abc123def ---- 1/1/0/0/0 0/0 {127.0.0.1:18080|curl/7.88.1} {text/plain} \"GET /login HTTP/1.1\"");
    assert_eq!((h.req_cookie, h.resp_cookie), (None, Some("SESSID=abc123def")));
}

#[test]
fn captures_with_spaces_and_escapes() {
    let h = http("127.0.0.1:41270 [22/Nov/2026:01:22:18.502] fe_http be_app/app1 0/0/0/4/4 404 500 - - ---- 1/1/0/0/0 0/0 {x|raw#7Cpipe #7Bbrace#7D} {text/html;charset=utf-8} \"GET /q?a=#22b#22&c={d}|e HTTP/1.1\"");
    assert_eq!(h.req_headers, Some(Captures("x|raw#7Cpipe #7Bbrace#7D")));
    assert_eq!(h.req_headers.unwrap().decoded(), vec!["x", "raw|pipe {brace}"]);
    assert_eq!(h.request.query, Some("a=#22b#22&c={d}|e"));
    let h = http("66.249.73.3:48921 [12/Aug/2022:13:38:42.104] front13_foobar-app~ backend_foobar-cache/blade714-backend 0/0/0/18/18 200 663 - - ---- 4008/1984/9/2/0 0/0 {like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/104.0.5112.79 Safari/|} \"GET /ajax/user/nass/about/games/favorite HTTP/2.0\"");
    assert_eq!(h.req_headers.unwrap().iter().count(), 2);
    assert_eq!(h.resp_headers, None);
    assert_eq!(h.request.http_version, Some("HTTP/2.0"));
}

#[test]
fn zero_one_two_capture_blocks() {
    let base = "127.0.0.1:43738 [10/Dec/2018:15:46:49.497] http-webservices http-webservices/<NOSRV> 0/-1/-1/-1/0 503 213 - - SC-- 1/1/0/0/0 0/0";
    let (l0, l1, l2) = (
        format!("{base} \"GET /foo HTTP/1.1\""),
        format!("{base} {{localhost:8888||}} \"GET /foo HTTP/1.1\""),
        format!("{base} {{localhost:8888||}} {{|}} \"GET /foo HTTP/1.1\""),
    );
    let (h0, h1, h2) = (http(&l0), http(&l1), http(&l2));
    assert_eq!((h0.req_headers, h0.resp_headers), (None, None));
    assert_eq!(
        (h1.req_headers, h1.resp_headers),
        (Some(Captures("localhost:8888||")), None)
    );
    assert_eq!(
        (h2.req_headers, h2.resp_headers),
        (Some(Captures("localhost:8888||")), Some(Captures("|")))
    );
    assert_eq!(h2.request.path, Some("/foo"));
    assert_eq!(
        reject(format!("{base} {{a}} {{b}} {{c}} \"GET /foo HTTP/1.1\"").as_bytes()),
        RejectReason::BadCaptures
    );
    assert_eq!(
        reject(format!("{base} {{a \"GET /foo HTTP/1.1\"").as_bytes()),
        RejectReason::BadCaptures
    );
    assert_eq!(
        reject(format!("{base} junk \"GET /foo HTTP/1.1\"").as_bytes()),
        RejectReason::BadRequestLine
    );
}

#[test]
fn badreq_and_empty_request() {
    let h = http("127.0.0.1:41262 [22/Nov/2026:01:22:18.298] fe_http fe_http/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 \"<BADREQ>\"");
    assert!(h.request.bad);
    assert_eq!(
        (h.request.method, h.request.path, h.backend),
        (None, None, "fe_http")
    );
    let h = http("127.0.0.1:34548 [15/Oct/2003:15:18:55.798] px-http px-http/<NOSRV> -1/-1/-1/-1/8490 -1 0 - - CR-- 2/2/2/0/0 0/0 \"\"");
    assert_eq!(h.request.raw, "");
    assert!(!h.request.bad);
}

#[test]
fn httpslog_suffix() {
    let h = http("127.0.0.1:57404 [22/Nov/2026:01:22:17.868] fe_https~ be_app/app1 0/0/1/1/2 200 182 - - ---- 1/1/0/0/0 0/0 \"GET /data.csv HTTP/1.1\" 0/0000000000000000/0/0/0 localhost/TLSv1.3/TLS_AES_256_GCM_SHA384");
    let tls = h.tls.unwrap();
    assert_eq!(
        (tls.sni, tls.version, tls.cipher),
        (Some("localhost"), Some("TLSv1.3"), Some("TLS_AES_256_GCM_SHA384"))
    );
    assert_eq!(
        (tls.fc_err, tls.ssl_c_err, tls.ssl_c_ca_err, tls.resumed),
        (Some(0), Some(0), Some(0), Some(false))
    );
    assert!(h.ssl && !h.truncated);
    assert_eq!(h.request.path, Some("/data.csv"));
}

#[test]
fn legacy_cipher_version_suffix() {
    let h = http("192.168.9.185:56276 [29/May/2015:10:36:47.766] Service1~ Service1/host-1 2/0/0/10/12 200 423 - - ---- 282/36/0/0/0 0/0 {d7d9b784-4276-42bc-ae79-71e9e84d2b85} \"POST /path/to/app HTTP/1.1\" ECDHE-RSA-AES128-GCM-SHA256/TLSv1.2");
    let tls = h.tls.unwrap();
    assert_eq!(
        (tls.cipher, tls.version),
        (Some("ECDHE-RSA-AES128-GCM-SHA256"), Some("TLSv1.2"))
    );
}

#[test]
fn line_cut_by_len_1024_keeps_the_record() {
    let line = format!(
        "127.0.0.1:41248 [22/Nov/2026:01:22:16.340] fe_http be_app/app1 0/0/0/6/6 404 500 - - ---- 1/1/0/0/0 0/0 {{127.0.0.1:18080|curl/7.88.1}} {{text/html;charset=utf-8}} \"GET /{}",
        "a".repeat(800)
    );
    let h = http(&line);
    assert!(h.truncated);
    assert_eq!(h.status, Some(404));
    assert_eq!(h.request.method, Some("GET"));
    assert_eq!(h.request.path.unwrap().len(), 801);
    assert_eq!(h.request.http_version, None);
}

#[test]
fn line_cut_by_len_120_after_the_byte_count() {
    let h = http("127.0.0.1:34782 [22/Nov/2026:01:22:06.958] fe_http be_app/app1 0/0/0/5/5 200 212 - ");
    assert!(h.truncated);
    assert_eq!(
        (h.status, h.bytes_read, h.req_cookie, h.termination_state),
        (Some(200), 212, None, "")
    );
    assert_eq!(h.request, RequestLine::default());
}

#[test]
fn line_cut_inside_the_counters_drops_them() {
    let h = http("127.0.0.1:1 [22/Nov/2026:01:22:06.958] fe be/s 0/0/0/5/5 200 212 - - ---- 1/1/0/");
    assert!(h.truncated);
    assert_eq!((h.termination_state, h.actconn), ("----", 0));
}

#[test]
fn line_cut_inside_a_capture_keeps_the_partial_text() {
    let h = http("127.0.0.1:1 [22/Nov/2026:01:22:06.958] fe be/s 0/0/0/5/5 200 212 - - ---- 1/1/0/0/0 0/0 {127.0.0.1:18080|cu");
    assert!(h.truncated);
    assert_eq!(h.req_headers, Some(Captures("127.0.0.1:18080|cu")));
}

#[test]
fn line_cut_before_the_byte_count_is_a_reject() {
    let full = GET_INDEX.as_bytes();
    let cases: [(&str, RejectReason); 7] = [
        ("127.0.0.1:34798 [22/Nov/2026:01:2", RejectReason::BadDate),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http",
            RejectReason::BadProxyNames,
        ),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1",
            RejectReason::BadProxyNames,
        ),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0",
            RejectReason::BadTimers,
        ),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0/3/3",
            RejectReason::BadTimers,
        ),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0/3/3 200",
            RejectReason::BadStatus,
        ),
        (
            "127.0.0.1:34798 [22/Nov/2026:01:22:07.183] fe_http be_app/app1 0/0/0/3/3 200 21",
            RejectReason::BadBytes,
        ),
    ];
    // The field that runs into the end of the message is the one named: it may be partial.
    for (line, reason) in cases {
        assert!(full.starts_with(line.as_bytes()));
        // A date cut short is not recognisably HAProxy's any more.
        let got = parse_message(line.as_bytes(), &opts());
        if reason == RejectReason::BadDate {
            assert_eq!(got, Message::NotHaproxy, "{line}");
        } else {
            assert_eq!(got, Message::Reject(reason), "{line}");
        }
    }
}

#[test]
fn every_prefix_of_a_line_is_parsed_or_rejected_without_panic() {
    for line in [GET_INDEX, "127.0.0.1 - - [22/Nov/2026:01:22:16 +0000] \"GET /index.html HTTP/1.1\" 200 212 \"\" \"\" 50538 994 \"fe_clf\" \"be_app\" \"app1\" 0 0 0 3 3 ---- 1 1 0 0 0 0 0 \"\" \"\" "] {
        let mut truncated_records = 0;
        for n in 0..=line.len() {
            match parse_message(&line.as_bytes()[..n], &opts()) {
                Message::Http(h) => truncated_records += usize::from(h.truncated),
                Message::NotHaproxy | Message::Reject(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(truncated_records > 20, "{truncated_records}");
    }
}

#[test]
fn tcplog_every_field() {
    let t = tcp("10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0");
    assert_eq!(
        t.client,
        ClientAddr {
            ip: "10.0.1.2",
            port: Some(33313)
        }
    );
    assert_eq!(t.accept_ts, micros_from_civil(2009, 2, 6, 12, 12, 51, 443_000));
    assert_eq!(
        (t.frontend, t.ssl, t.backend, t.server),
        ("fnt", false, "bck", "srv1")
    );
    assert_eq!(
        (t.queue_ms, t.connect_ms, t.total_ms, t.total_logasap),
        (Some(0), Some(0), Some(5007), false)
    );
    assert_eq!((t.bytes_read, t.termination_state), (212, "--"));
    assert_eq!(
        (t.actconn, t.feconn, t.beconn, t.srv_conn, t.retries),
        (0, 0, 0, 0, 3)
    );
    assert_eq!((t.srv_queue, t.backend_queue), (0, 0));
    let t = tcp("127.0.0.1:40962 [20/Sep/2018:15:44:23.285] main app/<NOSRV> -1/-1/1 212 SC 1/1/0/0/0 0/0");
    assert_eq!((t.queue_ms, t.connect_ms, t.server), (None, None, "<NOSRV>"));
}

#[test]
fn tcplog_server_names_with_colons() {
    let t = tcp("10.0.1.1:63569 [14/Jun/2023:13:33:29.574] public_ssl be_tcp:eck:elasticsearch-ingest/pod:elasticsearch-es-hot-data-nodes-2:elasticsearch-es-ingest-nodes:https:10.142.10.10:9200 199/1/205 2635 -- 29/29/5/3/0 0/0");
    assert_eq!(t.backend, "be_tcp:eck:elasticsearch-ingest");
    assert_eq!(
        t.server,
        "pod:elasticsearch-es-hot-data-nodes-2:elasticsearch-es-ingest-nodes:https:10.142.10.10:9200"
    );
}

#[test]
fn tcplog_cut_by_len_120_is_a_reject() {
    assert_eq!(
        reject(b"127.0.0.1:37026 [22/Nov/2026:01:22:17.428] fe_tcp be_tcp/app1 1/0/7 217 -- 1/1/0/0/"),
        RejectReason::BadConnCounts
    );
    assert_eq!(
        reject(b"127.0.0.1:37026 [22/Nov/2026:01:22:17.428] fe_tcp be_tcp/app1 1/0/7 217 --"),
        RejectReason::BadTerminationState
    );
    assert_eq!(
        reject(b"127.0.0.1:37026 [22/Nov/2026:01:22:17.428] fe_tcp be_tcp/app1 1/0/7 217 -- 1/1/0/0/0"),
        RejectReason::BadConnCounts
    );
    assert_eq!(
        reject(b"127.0.0.1:37026 [22/Nov/2026:01:22:17.428] fe_tcp be_tcp/app1 1/0/7 217 -- 1/1/0/0/0 0/"),
        RejectReason::BadQueues
    );
}

#[test]
fn four_timers_are_bad_timers() {
    assert_eq!(
        reject(b"127.0.0.1:1 [22/Nov/2026:01:22:17.428] fe be/s 1/0/7/1 217 -- 1/1/0/0/0 0/0"),
        RejectReason::BadTimers
    );
}

#[test]
fn custom_field_before_timers_is_bad_timers() {
    let line = b"-:22222 [22/May/2021:02:22:22.222] www-https~ myapp/node2 site.domain.com 0/0/0/18/18 200 200 - - ---- 222/222/2/0/0 0/0 \"OPTIONS /api/v2/app/ HTTP/1.1\"";
    assert_eq!(reject(line), RejectReason::BadTimers);
}

#[test]
fn invalid_utf8_in_a_field() {
    let line = b"127.0.0.1:1 [22/Nov/2026:01:22:17.428] fe\xff be/s 1/0/7/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
    assert_eq!(reject(line), RejectReason::InvalidUtf8);
    let line = b"127.0.0.1:1 [22/Nov/2026:01:22:17.428] fe be/s 1/0/7/1/1 200 1 - - ---- 1/1/0/0/0 0/0 \"GET /\xc3( HTTP/1.1\"";
    assert_eq!(reject(line), RejectReason::InvalidUtf8);
}

#[test]
fn clf_every_field() {
    let h = http("127.0.0.1 - - [22/Nov/2026:01:22:16 +0000] \"GET /index.html HTTP/1.1\" 200 212 \"\" \"\" 50538 994 \"fe_clf\" \"be_app\" \"app1\" 0 0 0 3 3 ---- 1 1 0 0 0 0 0 \"\" \"\" ");
    assert!(h.clf && !h.truncated);
    assert_eq!(
        h.client,
        ClientAddr {
            ip: "127.0.0.1",
            port: Some(50538)
        }
    );
    assert_eq!(h.accept_ts, micros_from_civil(2026, 11, 22, 1, 22, 16, 994_000));
    assert_eq!((h.frontend, h.backend, h.server), ("fe_clf", "be_app", "app1"));
    assert_eq!(
        (h.timings.request, h.timings.response, h.timings.total),
        (Some(0), Some(3), Some(3))
    );
    assert_eq!(
        (h.status, h.bytes_read, h.termination_state),
        (Some(200), 212, "----")
    );
    assert_eq!((h.actconn, h.feconn, h.beconn), (1, 1, 0));
    assert_eq!((h.req_cookie, h.resp_cookie), (None, None));
    assert_eq!(h.request.path, Some("/index.html"));
}

#[test]
fn clf_cut_by_len_120_is_a_reject() {
    let line = b"127.0.0.1 - - [22/Nov/2026:01:22:16 +0000] \"GET /index.html HTTP/1.1\" 200 212 \"\" \"\"";
    assert_eq!(reject(line), RejectReason::BadClientAddr);
}

#[test]
fn clf_cut_after_the_timers_is_truncated() {
    let h = http("127.0.0.1 - - [22/Nov/2026:01:22:16 +0000] \"GET / HTTP/1.1\" 200 212 \"\" \"\" 50538 994 fe_clf~ be_app app1 0 0 0 3 +3 ---- 1 1");
    assert!(h.truncated && h.ssl && h.timings.total_logasap);
    assert_eq!((h.termination_state, h.actconn), ("----", 0));
}

#[test]
fn other_servers_clf_is_not_haproxy() {
    let line = b"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"-\" \"Mozilla\"";
    assert_eq!(parse_message(line, &opts()), Message::NotHaproxy);
    let line = b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"-\" \"Mozilla\"";
    assert_eq!(parse_message(line, &opts()), Message::NotHaproxy);
}

#[test]
fn connection_error_lines() {
    let e = event("127.0.0.1:57416 [22/Nov/2026:01:22:23.812] fe_https/1: SSL handshake failure");
    assert_eq!(e.kind, AppKind::HaproxyConnError);
    assert_eq!(e.ts, Some(micros_from_civil(2026, 11, 22, 1, 22, 23, 812_000)));
    assert_eq!(
        e.client,
        Some(ClientAddr {
            ip: "127.0.0.1",
            port: Some(57416)
        })
    );
    assert_eq!(e.subject, Some("fe_https/1"));
    assert_eq!(
        e.message,
        "127.0.0.1:57416 [22/Nov/2026:01:22:23.812] fe_https/1: SSL handshake failure"
    );
    let e = event(
        "2a00:1450:4010:c02::8d:56276 [29/May/2015:10:36:47.766] Service1/bind-1: We have a problem here",
    );
    assert_eq!(
        (e.client.unwrap().ip, e.subject),
        ("2a00:1450:4010:c02::8d", Some("Service1/bind-1"))
    );
}

#[test]
fn event_lines() {
    let e = event("Server be_nosrv/dead1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
    assert_eq!(
        (e.kind, e.subject, e.ts, e.client),
        (AppKind::HaproxyEvent, Some("be_nosrv/dead1"), None, None)
    );
    assert_eq!(
        event("Server local-3001/local-3001 is UP, reason: Layer7 check passed").subject,
        Some("local-3001/local-3001")
    );
    assert_eq!(
        event("backend be_nosrv has no server available!").subject,
        Some("be_nosrv")
    );
    assert_eq!(event("Proxy prod_http_in started.").subject, Some("prod_http_in"));
    assert_eq!(event("Stopping proxy www in 0 ms.").subject, Some("www"));
    assert_eq!(event("Pausing proxy www.").subject, Some("www"));
    assert_eq!(
        event("Health check for server be/s1 failed, reason: Layer4 timeout").subject,
        Some("be/s1")
    );
    let e = event("SPOE: [hauth] <EVENT:on-frontend-http-request> sid=3 st=2 -1/-1/-1/-1/0 0/0 0/0 4/4");
    assert_eq!(e.subject, Some("hauth"));
    let e = event("Connect from 10.0.1.2:33312 to 10.0.3.31:8012 (www/HTTP)");
    assert_eq!(
        (e.client, e.subject),
        (
            Some(ClientAddr {
                ip: "10.0.1.2",
                port: Some(33312)
            }),
            Some("www")
        )
    );
}

#[test]
fn bare_tag_without_timestamp_is_skipped() {
    let t = tcp("haproxy[18989]: 127.0.0.1:34550 [15/Oct/2003:15:24:28.312] px-tcp px-tcp/srv1 0/0/5007 0 cD 0/0/0/0/0 0/0");
    assert_eq!((t.server, t.termination_state), ("srv1", "cD"));
    assert_eq!(
        parse_message(b"app[1]: hello world", &opts()),
        Message::NotHaproxy
    );
}

#[test]
fn application_lines_are_not_haproxy() {
    for line in [
        &b"Server started on port 8080"[..],
        b"Proxy configuration loaded",
        b"backend ready",
        b"GET / 200",
        b"",
        b"single",
        b"\n",
    ] {
        assert_eq!(
            parse_message(line, &opts()),
            Message::NotHaproxy,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

// ---- property tests ----

/// The fields of an HTTP log line, rendered in the `option httplog` layout.
#[derive(Debug, Clone)]
struct HttpFields {
    ipv6: bool,
    port: u16,
    day: u32,
    hour: u32,
    ms: u32,
    fe: String,
    ssl: bool,
    be: String,
    srv: String,
    timers: [Option<i32>; 5],
    logasap: bool,
    status: Option<u16>,
    bytes: u64,
    cookie: Option<String>,
    ts: String,
    counts: [u32; 5],
    redispatched: bool,
    queues: (u32, u32),
    captures: Vec<String>,
    method: String,
    path: String,
    query: Option<String>,
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,20}"
}

fn timer_value() -> impl Strategy<Value = Option<i32>> {
    prop_oneof![Just(None), (0i32..100_000_000).prop_map(Some)]
}

prop_compose! {
    fn http_fields()(
        ipv6 in any::<bool>(), port in any::<u16>(), day in 1u32..=28, hour in 0u32..24, ms in 0u32..1000,
        fe in name(), ssl in any::<bool>(), be in name(), srv in prop_oneof![name(), Just("<NOSRV>".to_string())],
        timers in proptest::array::uniform5(timer_value()), logasap in any::<bool>(),
        status in prop_oneof![Just(None), (100u16..600).prop_map(Some)], bytes in 0u64..(1 << 62),
        cookie in proptest::option::of("[A-Z]{1,6}=[a-z0-9]{1,10}"), ts in "[-CSPLRIDUKcs][-RQCHDLT][-NIDVEO][-NIUDRP]",
        counts in proptest::array::uniform5(0u32..100_000), redispatched in any::<bool>(), queues in (0u32..1000, 0u32..1000),
        captures in proptest::collection::vec("[ -!#-z|~]{0,30}", 0..=2),
        method in "[A-Z]{3,7}", path in "/[a-zA-Z0-9/._%{}|#-]{0,40}", query in proptest::option::of("[a-z0-9=&%]{0,20}"),
    ) -> HttpFields {
        HttpFields { ipv6, port, day, hour, ms, fe, ssl, be, srv, timers, logasap, status, bytes, cookie, ts, counts,
            redispatched, queues, captures, method, path, query }
    }
}

fn opt_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-1".to_string(), |v| v.to_string())
}

fn render_http(f: &HttpFields) -> String {
    let ip = if f.ipv6 { "2001:db8::1" } else { "192.0.2.7" };
    let plus = if f.logasap { "+" } else { "" };
    let t = &f.timers;
    let mut s = format!(
        "{ip}:{} [{:02}/Nov/2026:{:02}:04:05.{:03}] {}{} {}/{} {}/{}/{}/{}/{plus}{} {} {plus}{} {} - {} {}/{}/{}/{}/{}{} {}/{}",
        f.port,
        f.day,
        f.hour,
        f.ms,
        f.fe,
        if f.ssl { "~" } else { "" },
        f.be,
        f.srv,
        opt_num(t[0]),
        opt_num(t[1]),
        opt_num(t[2]),
        opt_num(t[3]),
        opt_num(t[4]),
        opt_num(f.status),
        f.bytes,
        f.cookie.as_deref().unwrap_or("-"),
        f.ts,
        f.counts[0],
        f.counts[1],
        f.counts[2],
        f.counts[3],
        if f.redispatched { "+" } else { "" },
        f.counts[4],
        f.queues.0,
        f.queues.1,
    );
    for c in &f.captures {
        s.push_str(&format!(" {{{c}}}"));
    }
    let q = f.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
    s.push_str(&format!(" \"{} {}{q} HTTP/1.1\"", f.method, f.path));
    s
}

proptest! {
    #[test]
    fn http_render_then_parse(f in http_fields()) {
        let line = render_http(&f);
        let h = http(&line);
        prop_assert_eq!(h.client.ip, if f.ipv6 { "2001:db8::1" } else { "192.0.2.7" });
        prop_assert_eq!(h.client.port, Some(f.port));
        prop_assert_eq!(h.accept_ts, micros_from_civil(2026, 11, f.day, f.hour, 4, 5, f.ms * 1000));
        prop_assert_eq!((h.frontend, h.ssl, h.backend, h.server), (f.fe.as_str(), f.ssl, f.be.as_str(), f.srv.as_str()));
        prop_assert_eq!(
            [h.timings.request, h.timings.queue, h.timings.connect, h.timings.response, h.timings.total],
            f.timers
        );
        prop_assert_eq!((h.timings.total_logasap, h.bytes_logasap), (f.logasap, f.logasap));
        prop_assert_eq!((h.status, h.bytes_read), (f.status, f.bytes));
        prop_assert_eq!(h.req_cookie, f.cookie.as_deref());
        prop_assert_eq!(h.termination_state, f.ts.as_str());
        prop_assert_eq!([h.actconn, h.feconn, h.beconn, h.srv_conn, h.retries], f.counts);
        prop_assert_eq!(h.redispatched, f.redispatched);
        prop_assert_eq!((h.srv_queue, h.backend_queue), f.queues);
        prop_assert_eq!(h.req_headers.map(|c| c.0), f.captures.first().map(String::as_str));
        prop_assert_eq!(h.resp_headers.map(|c| c.0), f.captures.get(1).map(String::as_str));
        prop_assert_eq!(h.request.method, Some(f.method.as_str()));
        prop_assert_eq!(h.request.path, Some(f.path.as_str()));
        prop_assert_eq!(h.request.query, f.query.as_deref());
        prop_assert_eq!(h.request.http_version, Some("HTTP/1.1"));
        prop_assert!(!h.truncated);

        // Every cut of the line is a truncated record, a reject, or not HAProxy: never a panic,
        // and never a record that claims to be complete.
        for n in 0..line.len() {
            if let Message::Http(c) = parse_message(&line.as_bytes()[..n], &opts()) {
                prop_assert!(c.truncated, "cut at {} parsed as complete: {}", n, &line[..n]);
            }
        }
    }

    #[test]
    fn tcp_render_then_parse(
        port in any::<u16>(), fe in name(), be in name(), srv in name(),
        timers in proptest::array::uniform3(timer_value()), bytes in any::<u32>(), ts in "[-CSPLcs][-RQCDLT]",
        counts in proptest::array::uniform5(0u32..100_000), queues in (0u32..1000, 0u32..1000),
    ) {
        let line = format!(
            "10.0.0.1:{port} [06/Feb/2009:12:12:51.443] {fe} {be}/{srv} {}/{}/{} {bytes} {ts} {}/{}/{}/{}/{} {}/{}",
            opt_num(timers[0]), opt_num(timers[1]), opt_num(timers[2]),
            counts[0], counts[1], counts[2], counts[3], counts[4], queues.0, queues.1
        );
        let t = tcp(&line);
        prop_assert_eq!(t.client.port, Some(port));
        prop_assert_eq!((t.frontend, t.backend, t.server), (fe.as_str(), be.as_str(), srv.as_str()));
        prop_assert_eq!([t.queue_ms, t.connect_ms, t.total_ms], timers);
        prop_assert_eq!((t.bytes_read, t.termination_state), (bytes as u64, ts.as_str()));
        prop_assert_eq!([t.actconn, t.feconn, t.beconn, t.srv_conn, t.retries], counts);
        prop_assert_eq!((t.srv_queue, t.backend_queue), queues);
    }

    #[test]
    fn clf_render_then_parse(
        port in any::<u16>(), ms in 0u32..1000, fe in name(), be in name(), srv in name(),
        timers in proptest::array::uniform5(timer_value()), status in 100u16..600, bytes in any::<u32>(),
        quoted in any::<bool>(), path in "/[a-z0-9/]{0,20}",
    ) {
        let q = if quoted { "\"" } else { "" };
        let line = format!(
            "198.51.100.4 - - [22/Nov/2026:01:22:16 +0000] \"GET {path} HTTP/1.1\" {status} {bytes} \"\" \"\" {port} {ms:03} {q}{fe}{q} {q}{be}{q} {q}{srv}{q} {} {} {} {} {} ---- 1 2 3 4 5 6 7 \"\" \"\" ",
            opt_num(timers[0]), opt_num(timers[1]), opt_num(timers[2]), opt_num(timers[3]), opt_num(timers[4]),
        );
        let h = http(&line);
        prop_assert!(h.clf && !h.truncated);
        prop_assert_eq!(h.client.port, Some(port));
        prop_assert_eq!(h.accept_ts, micros_from_civil(2026, 11, 22, 1, 22, 16, ms * 1000));
        prop_assert_eq!((h.frontend, h.backend, h.server), (fe.as_str(), be.as_str(), srv.as_str()));
        prop_assert_eq!(
            [h.timings.request, h.timings.queue, h.timings.connect, h.timings.response, h.timings.total],
            timers
        );
        prop_assert_eq!((h.status, h.bytes_read), (Some(status), bytes as u64));
        prop_assert_eq!([h.actconn, h.feconn, h.beconn, h.srv_conn, h.retries, h.srv_queue, h.backend_queue], [1, 2, 3, 4, 5, 6, 7]);
        prop_assert_eq!(h.request.path, Some(path.as_str()));
    }

    #[test]
    fn event_subjects(be in name(), srv in name()) {
        let line = format!("Server {be}/{srv} is DOWN, reason: Layer4 timeout");
        let e = event(&line);
        let expected = format!("{be}/{srv}");
        prop_assert_eq!(e.subject, Some(expected.as_str()));
        let line = format!("backend {be} has no server available!");
        prop_assert_eq!(event(&line).subject, Some(be.as_str()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_message(&b, &opts());
    }

    #[test]
    fn mutated_lines_never_panic(pos in 0usize..240, byte in any::<u8>(), cut in 0usize..260) {
        let mut b = GET_INDEX.as_bytes().to_vec();
        let pos = pos % b.len();
        b[pos] = byte;
        b.truncate(cut.min(b.len()));
        let _ = parse_message(&b, &opts());
    }
}

/// Rough throughput of the HTTP path: `cargo test -p weir-ingest --release -- --ignored
/// --nocapture haproxy_http_speed`.
#[test]
#[ignore]
fn haproxy_http_speed() {
    let lines: Vec<String> = (0..1000)
        .map(|k| {
            format!(
                "10.0.{}.{}:{} [22/Nov/2026:01:22:{:02}.{:03}] fe_http be_app/app{} 0/0/{}/{}/{} 200 {} - - ---- 1/1/0/0/0 0/0 {{example.com|Mozilla/5.0 (X11; Linux x86_64)}} {{text/html}} \"GET /static/js/app.{k}.js?v={} HTTP/1.1\"",
                k % 256, k % 7, 30000 + k, k % 60, k % 1000, k % 4, k % 3, k % 90, k % 200 + 1, 1000 + k * 7, k * 13
            )
        })
        .collect();
    let avg = lines.iter().map(String::len).sum::<usize>() / lines.len();
    let rounds = 2000;
    let start = std::time::Instant::now();
    let mut n = 0u64;
    for _ in 0..rounds {
        for l in &lines {
            if let Message::Http(h) = parse_message(std::hint::black_box(l.as_bytes()), &opts()) {
                n += h.bytes_read & 1;
            }
        }
    }
    let el = start.elapsed();
    let per = el.as_nanos() as f64 / (rounds * lines.len()) as f64;
    println!(
        "{per:.1} ns/line, avg {avg} bytes, {:.1} M lines/s ({n})",
        1e3 / per
    );
}
