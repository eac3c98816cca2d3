//! The compiler and parser against lines HAProxy 2.6.12 wrote for the formats of
//! `samples/haproxy/haproxy-2.6-custom-formats.cfg` (one line per request of
//! `samples/haproxy/haproxy-2.6-custom-formats.log`, captured over UDP on loopback: curl to
//! fe1 twice, fe2, fe3 and fe4), and against hand-made lines for what a live capture rarely
//! shows (IPv6, JSON, `-`, errors).

use proptest::prelude::*;
use weir_model::time::micros_from_civil;
use weir_model::{HttpLog, Record, RejectReason, TcpLog};

use super::*;
use crate::haproxy::config;
use crate::{parse_line, ParseOptions};

const CFG: &str = include_str!("../../../../samples/haproxy/haproxy-2.6-custom-formats.cfg");
const LIVE: &str = include_str!("../../../../samples/haproxy/haproxy-2.6-custom-formats.log");

/// The message of the n-th line, after its `<134>Nov 30 11:58:38 haproxy[16440]: ` header.
fn live(n: usize) -> &'static str {
    LIVE.lines().nth(n).unwrap().split_once("]: ").unwrap().1
}

/// The format of frontend `fe` in the test configuration.
fn cfg_format(fe: &str) -> String {
    let c = config::read(CFG).unwrap();
    c.frontends.into_iter().find(|(f, ..)| f == fe).unwrap().1
}

fn parse<'a>(format: &str, msg: &'a str) -> Option<Record<'a>> {
    // Records borrow their format: a test's formats live as long as the process.
    let format: &'static LogFormat = Box::leak(Box::new(LogFormat::compile(format).unwrap()));
    format.parse(msg.as_bytes(), &ParseOptions::default(), Some(0))
}

fn http<'a>(format: &str, msg: &'a str) -> HttpLog<'a> {
    match parse(format, msg) {
        Some(Record::Http(h)) => h,
        other => panic!("{format}\n{msg}\n{other:?}"),
    }
}

fn tcp<'a>(format: &str, msg: &'a str) -> TcpLog<'a> {
    match parse(format, msg) {
        Some(Record::Tcp(t)) => t,
        other => panic!("{format}\n{msg}\n{other:?}"),
    }
}

#[test]
fn every_variable_of_the_table_on_a_live_line() {
    let h = http(&cfg_format("fe1"), live(0));
    assert_eq!((h.client.ip, h.client.port), ("127.0.0.1", Some(51948)));
    assert_eq!(h.accept_ts, micros_from_civil(2026, 11, 30, 11, 58, 38, 254_000));
    assert_eq!(
        (h.frontend, h.ssl, h.backend, h.server),
        ("fe1", false, "be", "s1")
    );
    let t = h.timings;
    assert_eq!(
        (t.request, t.queue, t.connect, t.response, t.total),
        (Some(0), Some(0), Some(0), Some(6), Some(6))
    );
    assert_eq!(
        (h.status, h.bytes_read, h.termination_state),
        (Some(404), 500, "----")
    );
    assert_eq!((h.req_cookie, h.resp_cookie), (None, None));
    assert_eq!(
        (h.actconn, h.feconn, h.beconn, h.srv_conn, h.retries),
        (1, 1, 0, 0, 0)
    );
    assert_eq!((h.srv_queue, h.backend_queue), (0, 0));
    assert_eq!(
        h.req_headers.unwrap().decoded(),
        ["127.0.0.1:18090", "Mo\"zi|lla {x}"]
    );
    assert_eq!(h.resp_headers.unwrap().0, "text/html;charset=utf-8");
    let r = h.request;
    assert_eq!(
        (r.method, r.path, r.query, r.http_version),
        (Some("GET"), Some("/a/b"), Some("x=1&y=2"), Some("HTTP/1.1"))
    );
    let tls = h.tls.unwrap();
    assert_eq!((tls.version, tls.cipher), (None, None));
    let f = h.fields;
    for (name, value) in [
        ("H", Some("vm")),
        ("HM", Some("GET")),
        ("HQ", Some("?x=1&y=2")),
        ("ID", Some("7F000001:CAEC_7F000001:46AA_6B0D64EE_0000:4038")),
        ("Td", Some("0")),
        ("Th", Some("0")),
        ("Tq", Some("0")),
        ("Tt", Some("6")),
        ("U", Some("95")),
        ("bi", Some("127.0.0.1")),
        ("bp", Some("50058")),
        ("fp", Some("18090")),
        ("f", Some("fe1")),
        ("lc", Some("0")),
        ("hrl", Some("127.0.0.1:18090 Mo#22zi#7Clla #7Bx#7D")),
        ("pid", Some("16440")),
        ("sp", Some("18081")),
        ("ts", Some("--")),
    ] {
        assert!(f.names().contains(&name), "{name} missing from {:?}", f.names());
        assert_eq!(f.get(name), value, "{name}");
    }
    // Dates other than the accept date are not fields.
    assert!(!f.names().contains(&"T") && !f.names().contains(&"t"));
    // An empty query is absent.
    let h = http(&cfg_format("fe1"), live(1));
    assert_eq!(
        h.fields.to_vec().into_iter().find(|(n, _)| *n == "HQ"),
        Some(("HQ", None))
    );
    assert_eq!(h.request.query, None);
}

#[test]
fn quote_hex_and_escape_flags() {
    let h = http(&cfg_format("fe2"), live(2));
    assert_eq!((h.client.ip, h.client.port), ("127.0.0.1", Some(52264)));
    // `%Ts` in hex is the only date: seconds.
    assert_eq!(h.accept_ts, 0x6B0D_64EE * 1_000_000);
    assert_eq!(h.request.path, Some("/p"));
    assert_eq!(h.req_headers.unwrap().0, "127.0.0.1:18091|Mo#22zi\\lla ]x");
    assert_eq!(h.backend, "be");
    let f = h.fields;
    assert_eq!(f.get("pid"), Some("4038"));
    assert_eq!(f.get("rt"), Some("0002"));
    assert_eq!(f.get("ssl_fc"), Some("0"));
    assert_eq!(f.get("capture.req.hdr(0)"), Some("127.0.0.1:18091"));
    assert_eq!(f.get("capture.req.hdr(1)"), Some(r#"Mo\"zi\\lla \]x"#));
    assert_eq!(f.to_vec().into_iter().last(), Some(("capture.res.hdr(5)", None)));
}

#[test]
fn builtin_clf_and_logasap() {
    let h = http(Builtin::HttpLogClf.format(), live(3));
    assert_eq!((h.client.ip, h.client.port), ("127.0.0.1", Some(49406)));
    assert_eq!(h.accept_ts, micros_from_civil(2026, 11, 30, 11, 58, 38, 302_000));
    assert_eq!((h.frontend, h.backend, h.server), ("fe3", "be", "s1"));
    assert_eq!(
        (h.status, h.timings.total, h.request.path),
        (Some(404), Some(5), Some("/c"))
    );
    let h = http(&cfg_format("fe4"), live(4));
    assert_eq!((h.bytes_read, h.bytes_logasap), (500, true));
    assert_eq!((h.timings.total, h.timings.total_logasap), (Some(4), true));
    assert_eq!(h.fields.get("Tt"), Some("+4"));
}

#[test]
fn json_and_key_value_layouts() {
    let json = r#"{"client":"%ci","port":%cp,"date":"%tr","fe":"%ft","be":"%b","srv":"%s","status":%ST,"bytes":%B,"ta":%Ta,"path":"%HP","q":"%HQ","id":"%ID","ua":"%[capture.req.hdr(1)]"}"#;
    let line = r#"{"client":"::1","port":4242,"date":"22/Nov/2026:01:22:06.958","fe":"fe_json~","be":"be_app","srv":"app1","status":200,"bytes":212,"ta":5,"path":"/x y","q":"?a=1","id":"abc-1","ua":"curl/8 (x, y)"}"#;
    let h = http(json, line);
    assert_eq!((h.client.ip, h.client.port), ("::1", Some(4242)));
    assert_eq!((h.frontend, h.ssl), ("fe_json", true));
    assert_eq!(
        (h.status, h.bytes_read, h.timings.total),
        (Some(200), 212, Some(5))
    );
    assert_eq!((h.request.path, h.request.query), (Some("/x y"), Some("a=1")));
    assert_eq!(h.fields.get("ID"), Some("abc-1"));
    assert_eq!(h.fields.get("capture.req.hdr(1)"), Some("curl/8 (x, y)"));

    let kv = "%{+Q}o client=%ci port=%cp fe=%ft be=%b srv=%s status=%ST bytes=%B t=%TR/%Tw/%Tc/%Tr/%Ta ts=%tsc conn=%ac/%fc/%bc/%sc/%rc q=%sq/%bq req=%r date=%tr";
    let line = r#"client="10.0.0.1" port=5000 fe="fe" be="be" srv="s1" status=503 bytes=+10 t=1/-1/2/3/+9 ts=sH-- conn=5/4/3/2/+1 q=0/1 req="GET /a?b HTTP/1.1" date=22/Nov/2026:01:22:06.958"#;
    let h = http(kv, line);
    assert_eq!((h.status, h.bytes_read, h.bytes_logasap), (Some(503), 10, true));
    assert_eq!(
        (h.timings.queue, h.timings.total, h.timings.total_logasap),
        (None, Some(9), true)
    );
    assert_eq!((h.retries, h.redispatched, h.backend_queue), (1, true, 1));
    assert_eq!((h.request.method, h.request.query), (Some("GET"), Some("b")));
    assert!(h.fields.is_empty());
}

#[test]
fn absent_values_and_collapsed_capture_blocks() {
    let f = "%ci:%cp %ST %[ssl_fc_sni] %CC %[var(txn.x)]";
    let h = http(f, "1.2.3.4:5 200 - - -");
    assert_eq!((h.req_cookie, h.tls.unwrap().sni), (None, None));
    assert_eq!(
        h.fields.to_vec().into_iter().collect::<Vec<_>>(),
        [("var(txn.x)", None)]
    );
    // The built-in httplog with no, one and two capture blocks.
    let fmt = Builtin::HttpLog.format();
    let base = "10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0";
    for (blocks, req, resp) in [
        ("", None, None),
        (" {a b|c}", Some("a b|c"), None),
        (" {a} {b}", Some("a"), Some("b")),
    ] {
        let line = format!("{base}{blocks} \"GET /x HTTP/1.1\"");
        let h = http(fmt, &line);
        assert_eq!(h.req_headers.map(|c| c.0), req, "{line}");
        assert_eq!(h.resp_headers.map(|c| c.0), resp, "{line}");
        assert_eq!(h.request.path, Some("/x"));
    }
}

#[test]
fn tcp_layouts_and_ipv6() {
    let t = tcp(
        Builtin::TcpLog.format(),
        "::1:37026 [22/Nov/2026:01:22:17.428] fe_tcp~ be_tcp/app1 1/0/+7 217 -- 1/1/0/0/0 0/0",
    );
    assert_eq!((t.client.ip, t.client.port, t.ssl), ("::1", Some(37026), true));
    assert_eq!((t.total_ms, t.total_logasap, t.bytes_read), (Some(7), true, 217));
    let t = tcp("%ci %b %[src_port] %B", "127.0.0.1 be 4444 12");
    assert_eq!((t.backend, t.fields.get("src_port")), ("be", Some("4444")));
}

#[test]
fn mismatches_are_none() {
    let f = "%ci:%cp [%tr] %ft %ST";
    for line in [
        "",
        "1.2.3.4:5 [22/Nov/2026:01:22:06.958] fe",
        "1.2.3.4:5 [22/Nov/2026:01:22:06.958] fe 200 extra",
        "1.2.3.4:5 [bad date here, truly bad] fe 200",
        "1.2.3.4:5 [22/Nov/2026:01:22:06.958] fe abc",
    ] {
        assert_eq!(parse(f, line), None, "{line}");
    }
}

#[test]
fn compile_errors_name_the_item() {
    for (f, item) in [
        ("%ci %Zz", "%Zz"),
        ("%{+Z}ci", "%{+Z}ci"),
        ("%ci %[src", "%[src"),
        ("%{+Q", "%{+Q"),
        ("100%", "%"),
    ] {
        let e = LogFormat::compile(f).unwrap_err();
        assert_eq!(e.item, item, "{f}: {e}");
        assert!(e.to_string().contains(item));
    }
    // `%%`, separators that merge, and the layout.
    let f = LogFormat::compile("  %ci   100%% %B").unwrap();
    assert_eq!(f.layout(), Layout::Tcp);
    assert_eq!(f.steps[1], Step::Lit(Literal::new(b" 100% ".to_vec())));
    assert_eq!(f.parts.len(), 2);
    assert_eq!(LogFormat::compile("%ci %ST").unwrap().layout(), Layout::Http);
    assert_eq!(
        LogFormat::compile(r"%ci\ %ST").unwrap().steps,
        LogFormat::compile("%ci %ST").unwrap().steps
    );
}

/// Lines of several frontends in one stream, each read by its own format; the default for
/// the rest; the built-in layouts last; and a reject that says no format matched.
#[test]
fn format_set_picks_by_frontend() {
    let mut set = FormatSet::new();
    set.assign("fe_a", "%ft %ci %ST %[capture.req.hdr(0)]").unwrap();
    set.assign("fe_b", "%ft %ci %ST %B").unwrap();
    set.set_default("%ft %ci %ST").unwrap();
    set.assign("fe_h", Builtin::HttpLog.format()).unwrap();
    let set: &'static FormatSet = Box::leak(Box::new(set));
    let opts = ParseOptions {
        year: 2026,
        formats: Some(Formats(set)),
        ..ParseOptions::default()
    };
    let hdr = "<134>Nov 22 01:22:06 lb haproxy[1]: ";
    let rec = |msg: &str| parse_line(format!("{hdr}{msg}").leak().as_bytes(), &opts).record;
    let Record::Http(h) = rec("fe_a 1.1.1.1 200 x") else {
        panic!()
    };
    assert_eq!(h.fields.get("capture.req.hdr(0)"), Some("x"));
    let Record::Http(h) = rec("fe_b 1.1.1.1 200 42") else {
        panic!()
    };
    assert_eq!(h.bytes_read, 42);
    // `fe_b`'s format would read this line, but fe_a has its own format.
    let Record::Http(h) = rec("fe_a 1.1.1.1 200 42") else {
        panic!()
    };
    assert_eq!(h.fields.get("capture.req.hdr(0)"), Some("42"));
    // A frontend the file does not name: the default, with the header's time.
    let Record::Http(h) = rec("fe_z 1.1.1.1 204") else {
        panic!()
    };
    assert_eq!(
        (h.status, h.accept_ts),
        (Some(204), micros_from_civil(2026, 11, 22, 1, 22, 6, 0))
    );
    // The built-in layout through the hand-tuned parser.
    let Record::Http(h) = rec(
        "10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe_h be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET /x HTTP/1.1\"",
    ) else {
        panic!()
    };
    assert_eq!(h.request.path, Some("/x"));
    // The default would take it, but fe_h logs with httplog and the line is broken.
    let Record::Reject(r) = rec("10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe_h be/s1 0/0/1/2 200") else {
        panic!()
    };
    assert_eq!(r.reason, RejectReason::NoFormatMatch);
    // Events stay events; another line of HAProxy's is a reject, another program's an app line.
    assert!(matches!(rec("Proxy fe_a started."), Record::App(_)));
    let Record::Reject(r) = rec("fe_q something else") else {
        panic!()
    };
    assert_eq!(r.reason, RejectReason::NoFormatMatch);
    let other = parse_line(b"<134>Nov 22 01:22:06 lb app[1]: fe_q something else", &opts).record;
    assert!(matches!(other, Record::App(_)));
}

fn field_is_a_slice_of(msg: &[u8], s: &str) -> bool {
    let (p, m) = (s.as_ptr() as usize, msg.as_ptr() as usize);
    s.is_empty() || (p >= m && p + s.len() <= m + msg.len())
}

fn check_slices(format: &LogFormat, msg: &[u8]) {
    let opts = ParseOptions::default();
    let h = match format.parse(msg, &opts, Some(0)) {
        Some(Record::Http(h)) => h,
        Some(Record::Tcp(t)) => {
            for (_, v) in t.fields.to_vec().into_iter() {
                assert!(field_is_a_slice_of(msg, v.unwrap_or("")));
            }
            return;
        }
        _ => return,
    };
    let mut strs = vec![
        h.client.ip,
        h.frontend,
        h.backend,
        h.server,
        h.termination_state,
        h.request.raw,
    ];
    strs.extend(h.req_cookie);
    strs.extend(h.request.path);
    strs.extend(h.request.query);
    strs.extend(h.req_headers.map(|c| c.0));
    strs.extend(h.fields.to_vec().into_iter().filter_map(|(_, v)| v));
    for s in strs {
        assert!(field_is_a_slice_of(msg, s), "{s:?}");
    }
}

proptest! {
    #[test]
    fn any_bytes_never_panic_and_fields_are_slices(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..400,
        k in 0usize..4,
    ) {
        let formats = [
            Builtin::HttpLog.format().to_owned(),
            Builtin::HttpLogClf.format().to_owned(),
            cfg_format("fe1"),
            cfg_format("fe2"),
        ];
        let f = LogFormat::compile(&formats[k]).unwrap();
        check_slices(&f, &bytes);
        // A real line cut short, and with random bytes spliced in.
        let line = live(k.min(2)).as_bytes();
        let cut = cut.min(line.len());
        check_slices(&f, &line[..cut]);
        let mut spliced = line[..cut].to_vec();
        spliced.extend_from_slice(&bytes);
        spliced.extend_from_slice(&line[cut..]);
        check_slices(&f, &spliced);
    }
}
