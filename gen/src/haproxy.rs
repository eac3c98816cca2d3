//! The simulated site behind `weir gen --kind haproxy`: HAProxy 2.6 traffic as rsyslog would
//! have written it to a file.
//!
//! A small site (`FRONTENDS`, `BACKENDS`) serves requests whose log lines are written when
//! they end, so syslog times increase while accept dates jitter back by each request's
//! duration, as in real files. Every line is one HAProxy 2.6 could write: timers are `-1`
//! exactly where a stage was not reached, termination states agree with statuses, capture
//! blocks follow each frontend's configuration, and `option logasap`, `option httpslog` and
//! `option tcplog` frontends print their own layouts. Lines are formatted into the caller's
//! buffer without allocating.

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use weir_model::time::{civil_from_micros, MICROS_PER_SEC};
use weir_model::Micros;

use crate::shape::{Captures, Header, Layout, Shape};

/// HAProxy logs its traffic at `local0.info`.
pub const HAPROXY_PRI: u8 = 16 * 8 + 6;

/// One segment of a URL template.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Literal text.
    L(&'static str),
    /// A decimal id below the bound, long-tailed (popular ids repeat).
    Id(u32),
    /// Eight lowercase hex digits (asset hashes, client ids).
    Hex8,
    /// A search word (some %-encoded).
    Word,
    /// A page number 1..=20.
    Page,
}

/// A request a backend serves.
#[derive(Debug, Clone, Copy)]
struct PathSpec {
    method: &'static str,
    parts: &'static [Part],
    /// The response Content-Type (captured as logged: spaces kept).
    content_type: &'static str,
    /// The success status this request gets (200, 201, 202, 204, 206).
    ok: u16,
    weight: u32,
}

const fn get(parts: &'static [Part], content_type: &'static str, weight: u32) -> PathSpec {
    PathSpec {
        method: "GET",
        parts,
        content_type,
        ok: 200,
        weight,
    }
}

const fn req(
    method: &'static str,
    parts: &'static [Part],
    content_type: &'static str,
    ok: u16,
    weight: u32,
) -> PathSpec {
    PathSpec {
        method,
        parts,
        content_type,
        ok,
        weight,
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

use Part::{Hex8, Id, Page, Word, L};

/// A backend: its servers, its response-time and size distributions, what it serves.
#[derive(Debug, Clone, Copy)]
struct BackendSpec {
    name: &'static str,
    servers: &'static [&'static str],
    /// The server that answers `slow_factor` times slower than its peers.
    slow_server: usize,
    slow_factor: f64,
    /// Median and log-normal sigma of Tr (server response time) in ms.
    tr_median: f64,
    tr_sigma: f64,
    /// Median and sigma of the response body size in bytes.
    body_median: f64,
    body_sigma: f64,
    /// Status codes of answered requests (the success entry stands for the path's own `ok`).
    statuses: &'static [(u16, u32)],
    paths: &'static [PathSpec],
    /// Probability that the server closes before its headers (502 `SH--`).
    p_server_abort: f64,
}

const BACKENDS: &[BackendSpec] = &[
    BackendSpec {
        name: "be_app",
        servers: &["app1", "app2", "app3", "app4", "app5", "app6"],
        slow_server: 3,
        slow_factor: 1.7,
        tr_median: 28.0,
        tr_sigma: 0.8,
        body_median: 22_000.0,
        body_sigma: 0.9,
        statuses: &[(200, 880), (302, 30), (304, 40), (404, 35), (401, 6), (500, 4)],
        paths: &[
            get(&[L("/")], HTML, 20),
            get(&[L("/products/"), Id(40_000)], HTML, 30),
            get(&[L("/products/"), Id(40_000), L("/reviews?page="), Page], HTML, 8),
            get(&[L("/search?q="), Word, L("&sort=relevance")], HTML, 10),
            get(&[L("/cart")], HTML, 6),
            req("POST", &[L("/cart/items")], JSON, 201, 4),
            req("POST", &[L("/checkout")], HTML, 200, 1),
            get(&[L("/account/orders")], HTML, 3),
            req("POST", &[L("/login")], HTML, 200, 2),
            req("HEAD", &[L("/")], HTML, 200, 1),
        ],
        p_server_abort: 0.0004,
    },
    BackendSpec {
        name: "be_api",
        servers: &["api1", "api2", "api3", "api4"],
        slow_server: 0,
        slow_factor: 1.0,
        tr_median: 12.0,
        tr_sigma: 1.0,
        body_median: 1_800.0,
        body_sigma: 1.2,
        statuses: &[
            (200, 900),
            (400, 15),
            (401, 20),
            (404, 30),
            (409, 5),
            (429, 10),
            (500, 5),
        ],
        paths: &[
            get(&[L("/v1/users/"), Id(2_000_000)], JSON, 20),
            get(&[L("/v1/orders?status=open&limit=50")], JSON, 10),
            get(&[L("/v1/orders/"), Id(9_000_000)], JSON, 15),
            get(&[L("/v1/items/"), Id(40_000), L("/stock")], JSON, 20),
            req("POST", &[L("/v1/orders")], JSON, 201, 5),
            req(
                "PUT",
                &[L("/v1/users/"), Id(2_000_000), L("/preferences")],
                JSON,
                200,
                3,
            ),
            req("DELETE", &[L("/v1/cart/items/"), Id(40_000)], JSON, 204, 2),
            req("POST", &[L("/v2/graphql")], JSON, 200, 10),
            req("POST", &[L("/v1/events")], JSON, 202, 8),
            req("OPTIONS", &[L("/v1/orders")], JSON, 204, 1),
        ],
        p_server_abort: 0.0003,
    },
    BackendSpec {
        name: "be_static",
        servers: &["static1", "static2"],
        slow_server: 1,
        slow_factor: 1.0,
        tr_median: 1.2,
        tr_sigma: 0.7,
        body_median: 30_000.0,
        body_sigma: 1.4,
        statuses: &[(200, 850), (304, 130), (404, 20)],
        paths: &[
            get(
                &[L("/static/js/app."), Hex8, L(".js")],
                "application/javascript",
                20,
            ),
            get(&[L("/static/css/main."), Hex8, L(".css")], "text/css", 10),
            get(&[L("/static/img/p/"), Id(40_000), L(".webp")], "image/webp", 50),
            get(&[L("/favicon.ico")], "image/x-icon", 5),
            get(&[L("/fonts/inter-var.woff2")], "font/woff2", 5),
        ],
        p_server_abort: 0.0001,
    },
    BackendSpec {
        name: "be_auth",
        servers: &["auth1", "auth2", "auth3"],
        slow_server: 2,
        slow_factor: 1.3,
        tr_median: 45.0,
        tr_sigma: 0.5,
        body_median: 600.0,
        body_sigma: 0.5,
        statuses: &[(200, 900), (302, 40), (400, 20), (401, 40)],
        paths: &[
            req("POST", &[L("/oauth/token")], JSON, 200, 40),
            get(
                &[
                    L("/oauth/authorize?client_id="),
                    Hex8,
                    L("&response_type=code&scope=openid%20profile"),
                ],
                HTML,
                20,
            ),
            get(&[L("/session")], JSON, 30),
            req("POST", &[L("/logout")], JSON, 204, 5),
        ],
        p_server_abort: 0.0002,
    },
    BackendSpec {
        name: "be_search",
        servers: &["search1", "search2", "search3", "search4", "search5"],
        slow_server: 4,
        slow_factor: 2.5,
        tr_median: 85.0,
        tr_sigma: 1.1,
        body_median: 9_000.0,
        body_sigma: 0.9,
        statuses: &[(200, 960), (400, 10), (404, 10), (500, 10), (503, 3)],
        paths: &[
            get(&[L("/search?q="), Word, L("+"), Word, L("&lang=en")], JSON, 50),
            get(&[L("/suggest?q="), Word], JSON, 50),
        ],
        p_server_abort: 0.0006,
    },
    BackendSpec {
        name: "be_metrics",
        servers: &["prom1", "prom2"],
        slow_server: 0,
        slow_factor: 1.0,
        tr_median: 3.0,
        tr_sigma: 0.5,
        body_median: 40_000.0,
        body_sigma: 0.3,
        statuses: &[(200, 1000)],
        paths: &[
            get(&[L("/metrics")], "text/plain; version=0.0.4", 50),
            get(&[L("/healthz")], "text/plain", 50),
        ],
        p_server_abort: 0.0,
    },
    BackendSpec {
        name: "be_dl",
        servers: &["dl1", "dl2"],
        slow_server: 1,
        slow_factor: 1.0,
        tr_median: 2.0,
        tr_sigma: 0.6,
        body_median: 30_000_000.0,
        body_sigma: 1.5,
        statuses: &[(200, 900), (206, 60), (404, 30), (304, 10)],
        paths: &[
            get(
                &[L("/downloads/weir-0."), Page, L(".tar.gz")],
                "application/gzip",
                40,
            ),
            get(&[L("/media/video/"), Id(5_000), L(".mp4")], "video/mp4", 60),
        ],
        p_server_abort: 0.0002,
    },
];

/// The TCP backend of the `option tcplog` frontend.
const TCP_SERVERS: &[&str] = &["pg1", "pg2"];

/// Which request headers a frontend captures (`capture request header ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqCaptures {
    None,
    Host,
    HostUa,
}

/// What a frontend does with a request.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// `use_backend` to this backend (by name).
    Backend(&'static str),
    /// `http-request redirect` (301 to https on a plain frontend, 302 on a TLS one).
    Redirect,
    /// `http-request deny` (403 `PR--`).
    Deny,
    /// A request HAProxy could not parse (`<BADREQ>`).
    BadReq,
    /// The stats page (`<STATS>`).
    Stats,
}

/// A frontend and its logging configuration.
#[derive(Debug, Clone, Copy)]
struct FrontendSpec {
    name: &'static str,
    ssl: bool,
    /// `option tcplog` (else `option httplog`).
    tcp: bool,
    /// `option httpslog`.
    httpslog: bool,
    logasap: bool,
    req_captures: ReqCaptures,
    /// `capture response header Content-Type`.
    resp_captures: bool,
    /// ALPN offers h2 (TLS frontends only).
    h2: bool,
    /// Clients come from the internal network.
    internal: bool,
    hosts: &'static [&'static str],
    routes: &'static [(Route, u32)],
    weight: u32,
}

const FRONTENDS: &[FrontendSpec] = &[
    FrontendSpec {
        name: "fe_https",
        ssl: true,
        tcp: false,
        httpslog: false,
        logasap: false,
        req_captures: ReqCaptures::HostUa,
        resp_captures: true,
        h2: true,
        internal: false,
        hosts: &["www.example.com", "shop.example.com", "example.com"],
        routes: &[
            (Route::Backend("be_app"), 600),
            (Route::Backend("be_static"), 250),
            (Route::Backend("be_auth"), 60),
            (Route::Backend("be_search"), 50),
            (Route::Deny, 6),
            (Route::Redirect, 8),
            (Route::BadReq, 1),
        ],
        weight: 45,
    },
    FrontendSpec {
        name: "fe_http",
        ssl: false,
        tcp: false,
        httpslog: false,
        logasap: false,
        req_captures: ReqCaptures::HostUa,
        resp_captures: false,
        h2: false,
        internal: false,
        hosts: &["www.example.com", "example.com"],
        routes: &[
            (Route::Redirect, 800),
            (Route::Backend("be_static"), 100),
            (Route::Deny, 60),
            (Route::BadReq, 40),
        ],
        weight: 14,
    },
    FrontendSpec {
        name: "fe_api",
        ssl: true,
        tcp: false,
        httpslog: true,
        logasap: false,
        req_captures: ReqCaptures::None,
        resp_captures: false,
        h2: true,
        internal: false,
        hosts: &["api.example.com"],
        routes: &[
            (Route::Backend("be_api"), 850),
            (Route::Backend("be_search"), 120),
            (Route::Backend("be_auth"), 30),
            (Route::Deny, 3),
            (Route::BadReq, 1),
        ],
        weight: 18,
    },
    FrontendSpec {
        name: "fe_internal",
        ssl: false,
        tcp: false,
        httpslog: false,
        logasap: false,
        req_captures: ReqCaptures::None,
        resp_captures: false,
        h2: false,
        internal: true,
        hosts: &["internal.example.net"],
        routes: &[
            (Route::Backend("be_metrics"), 500),
            (Route::Backend("be_search"), 300),
            (Route::Backend("be_auth"), 150),
            (Route::Stats, 20),
        ],
        weight: 15,
    },
    FrontendSpec {
        name: "fe_download",
        ssl: true,
        tcp: false,
        httpslog: false,
        logasap: true,
        req_captures: ReqCaptures::Host,
        resp_captures: false,
        h2: true,
        internal: false,
        hosts: &["dl.example.com"],
        routes: &[(Route::Backend("be_dl"), 1)],
        weight: 3,
    },
    FrontendSpec {
        name: "fe_db",
        ssl: false,
        tcp: true,
        httpslog: false,
        logasap: false,
        req_captures: ReqCaptures::None,
        resp_captures: false,
        h2: false,
        internal: true,
        hosts: &[],
        routes: &[],
        weight: 5,
    },
];

/// User agents as clients send them; captured with `len 48` and escaped at init.
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; scan|probe {\"v\":2})",
    "",
];

/// Words for search queries, some %-encoded as browsers send them.
const WORDS: &[&str] = &[
    "shoes",
    "red",
    "lamp",
    "caf%C3%A9",
    "table",
    "usb-c",
    "a%20b",
    "gift",
    "%22quoted%22",
    "chair",
    "sofa",
    "desk",
    "kettle",
    "m%C3%BCsli",
    "bike",
    "tent",
];

/// Paths that scanners try and `http-request deny` refuses. A raw `"` is logged as `#22`.
const DENIED_PATHS: &[&str] = &[
    "/wp-login.php",
    "/.env",
    "/.git/config",
    "/phpmyadmin/index.php",
    "/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id)",
    "/search?q=#22%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "/admin/config.php?x={a}|b",
];

const TLS13_CIPHERS: &[&str] = &[
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
];
const TLS12_CIPHERS: &[&str] = &["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"];

/// The load balancers writing into the same file: host name and HAProxy pid.
const LOAD_BALANCERS: &[(&str, u32)] = &[("lb1", 12136), ("lb2", 8873)];

/// HAProxy's own error pages, bytes sent (status line, headers and body).
const BYTES_400: u64 = 0;
const BYTES_403: u64 = 192;
const BYTES_502: u64 = 207;
const BYTES_503: u64 = 217;
const BYTES_504: u64 = 198;

/// Timeouts of the simulated configuration, ms.
const TIMEOUT_SERVER: u32 = 30_000;
const TIMEOUT_CLIENT: u32 = 30_000;
const TIMEOUT_HTTP_REQUEST: u32 = 10_000;
const TIMEOUT_CONNECT: u32 = 5_000;
const TCP_TIMEOUT_CLIENT: u32 = 1_800_000;
/// Retries before a connection error is final (`retries 3`, `option redispatch`).
const RETRIES: u32 = 3;

/// Mean simulated request rate, per second (it swings ±40% over an hour), unless
/// [`Shape::site_rate`] says otherwise.
const BASE_RATE: f64 = 250.0;
/// The simulated minutes (since start) during which every be_auth server is DOWN.
const AUTH_OUTAGE_MIN: std::ops::Range<i64> = 25..27;
/// The simulated minutes during which be_search is overloaded (slow, queueing, 504s).
const SEARCH_SLOW_MIN: std::ops::Range<i64> = 50..55;

/// A client of the simulated site.
#[derive(Debug, Clone)]
struct Client {
    ip: String,
    /// Index into [`HaproxyGen::user_agents`].
    ua: usize,
    /// Speaks HTTP/2 when the frontend offers it.
    h2: bool,
}

/// A backend with its distributions built.
#[derive(Debug)]
struct Backend {
    spec: &'static BackendSpec,
    tr: LogNormal<f64>,
    body: LogNormal<f64>,
    statuses: WeightedIndex<u32>,
    paths: WeightedIndex<u32>,
}

/// A frontend with its route table built.
#[derive(Debug)]
struct Frontend {
    spec: &'static FrontendSpec,
    routes: Option<WeightedIndex<u32>>,
    /// Backend index of each route (`usize::MAX` for non-backend routes).
    route_backends: Vec<usize>,
}

/// The fields of one HTTP log line, computed before it is written.
#[derive(Debug, Clone, Copy)]
struct HttpFields {
    backend: &'static str,
    server: &'static str,
    /// TR, Tw, Tc, Tr; `None` prints `-1`.
    timers: [Option<u32>; 4],
    ta: u32,
    status: u16,
    bytes: u64,
    state: &'static str,
    retries: u32,
    redispatched: bool,
    queues: (u32, u32),
    /// Response Content-Type capture; `None` prints `{}`.
    content_type: Option<&'static str>,
    /// The request was not parsed: no captures, `"<BADREQ>"`.
    bad: bool,
    method: &'static str,
    h2: bool,
}

/// Where and when an HTTP line is written, and what it reports besides its [`HttpFields`].
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Index of the load balancer writing it.
    lb: usize,
    /// Index of the client in its pool (internal or public).
    client: usize,
    internal: bool,
    /// Index of the client's user agent.
    ua: usize,
    host: &'static str,
    port: u32,
    accept: Micros,
    /// Ta and bytes as logged (logasap stops them at the response headers).
    ta: u32,
    bytes: u64,
    counts: [u32; 4],
}

/// Renders a second as `Nov 22 01:22:06` and `22/Nov/2026:01:22:06`, cached per second.
#[derive(Debug)]
pub(crate) struct DateCache {
    sec: i64,
    /// `Nov 22 01:22:06`, the RFC 3164 timestamp (day space-padded).
    pub(crate) syslog: [u8; 15],
    /// `22/Nov/2026:01:22:06`, HAProxy's accept date.
    pub(crate) accept: [u8; 20],
}

pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl DateCache {
    /// A cache that holds no second yet.
    pub(crate) fn new() -> DateCache {
        DateCache {
            sec: i64::MIN,
            syslog: [b' '; 15],
            accept: [b' '; 20],
        }
    }

    /// Renders the second of `t` (a no-op when it is the second already held).
    pub(crate) fn set(&mut self, t: Micros) {
        let sec = t.div_euclid(MICROS_PER_SEC);
        if sec == self.sec {
            return;
        }
        self.sec = sec;
        let (y, mo, d, h, mi, s, _) = civil_from_micros(t);
        let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
        let mon = MONTHS[(mo - 1) as usize];
        let (dd, hh, mm, ss) = (two(d), two(h), two(mi), two(s));
        // `Nov  2 01:22:06`: the day is space-padded.
        let day0 = if d < 10 { b' ' } else { dd[0] };
        self.syslog = [
            mon[0], mon[1], mon[2], b' ', day0, dd[1], b' ', hh[0], hh[1], b':', mm[0], mm[1], b':', ss[0],
            ss[1],
        ];
        let yy = y.clamp(0, 9999) as u32;
        let (y1, y2) = (two(yy / 100), two(yy % 100));
        self.accept = [
            dd[0], dd[1], b'/', mon[0], mon[1], mon[2], b'/', y1[0], y1[1], y2[0], y2[1], b':', hh[0], hh[1],
            b':', mm[0], mm[1], b':', ss[0], ss[1],
        ];
    }
}

/// The generator: a seeded simulation of the site, one line per call.
pub struct HaproxyGen {
    rng: StdRng,
    start: Micros,
    /// Emission time of the previous line (lines are written when requests end).
    clock: Micros,
    /// Stamp lines with the wall clock instead of the simulated one.
    wall: bool,
    frontends: Vec<Frontend>,
    frontend_pick: WeightedIndex<u32>,
    /// The server names of [`Shape::servers`] (empty: each backend's own).
    server_names: Vec<String>,
    /// Mean simulated requests per second.
    base_rate: f64,
    backends: Vec<Backend>,
    public: Vec<Client>,
    internal: Vec<Client>,
    /// Captured User-Agent values (truncated to 48 bytes, escaped).
    user_agents: Vec<String>,
    /// [`Shape::layout`].
    layout: Option<Layout>,
    /// [`Shape::captures`].
    captures: Option<Captures>,
    /// The load balancers writing the file: host name and HAProxy pid.
    lbs: Vec<(String, u32)>,
    /// Scratch for the request URI, reused.
    uri: Vec<u8>,
    syslog_date: DateCache,
    accept_date: DateCache,
    int: itoa::Buffer,
}

/// Log-normal with the given median and sigma.
fn log_normal(median: f64, sigma: f64) -> LogNormal<f64> {
    LogNormal::new(median.ln(), sigma).expect("finite log-normal parameters")
}

/// `capture request header ... len N`, then HAProxy's log escaping of `"` `{` `|` `}`, and of
/// bytes outside 32..126.
fn capture_value(raw: &str, len: usize) -> String {
    let mut out = String::new();
    for &b in raw.as_bytes().iter().take(len) {
        match b {
            b'"' | b'{' | b'|' | b'}' | b'#' => out.push_str(&format!("#{b:02X}")),
            32..=126 => out.push(b as char),
            _ => out.push_str(&format!("#{b:02X}")),
        }
    }
    out
}

/// The load balancers of a [`Shape`]: `lb1`.. with their pids (the default pair when neither
/// knob is set); a process's pid follows its host's.
fn load_balancers(shape: &Shape) -> Vec<(String, u32)> {
    let hosts = shape.hosts.unwrap_or(LOAD_BALANCERS.len()).max(1);
    let processes = shape.processes.unwrap_or(1).max(1);
    (0..hosts)
        .flat_map(|h| {
            let pid = LOAD_BALANCERS.get(h).map_or(10_000 + 1_009 * h as u32, |lb| lb.1);
            (0..processes).map(move |p| (format!("lb{}", h + 1), pid + p as u32))
        })
        .collect()
}

/// Whether a frontend writes lines in `layout` (all do when no layout is asked for).
fn writes(fe: &FrontendSpec, layout: Option<Layout>) -> bool {
    match layout {
        None => true,
        Some(Layout::Httplog | Layout::Clf) => !fe.tcp,
        Some(Layout::Httpslog) => !fe.tcp && fe.ssl,
        Some(Layout::Tcplog) => fe.tcp,
    }
}

impl HaproxyGen {
    /// A generator whose first line is written at `start`, reproducible for `seed`.
    pub fn new(seed: u64, start: Micros) -> HaproxyGen {
        HaproxyGen::with_shape(seed, start, &Shape::default())
    }

    /// A generator of the site reshaped by `shape` (a default shape is [`HaproxyGen::new`]).
    pub fn with_shape(seed: u64, start: Micros, shape: &Shape) -> HaproxyGen {
        let mut rng = StdRng::seed_from_u64(seed);
        let backends: Vec<Backend> = BACKENDS
            .iter()
            .map(|spec| Backend {
                spec,
                tr: log_normal(spec.tr_median, spec.tr_sigma),
                body: log_normal(spec.body_median, spec.body_sigma),
                statuses: WeightedIndex::new(spec.statuses.iter().map(|s| s.1)).expect("status weights"),
                paths: WeightedIndex::new(spec.paths.iter().map(|p| p.weight)).expect("path weights"),
            })
            .collect();
        let frontends = FRONTENDS
            .iter()
            .map(|spec| Frontend {
                spec,
                routes: (!spec.routes.is_empty())
                    .then(|| WeightedIndex::new(spec.routes.iter().map(|r| r.1)).expect("route weights")),
                route_backends: spec
                    .routes
                    .iter()
                    .map(|(r, _)| match r {
                        Route::Backend(name) => BACKENDS
                            .iter()
                            .position(|b| b.name == *name)
                            .expect("routes name known backends"),
                        _ => usize::MAX,
                    })
                    .collect(),
            })
            .collect();
        let frontend_pick =
            WeightedIndex::new(
                FRONTENDS
                    .iter()
                    .map(|f| if writes(f, shape.layout) { f.weight } else { 0 }),
            )
            .expect("frontend weights");
        let public = (0..5000).map(|_| Self::public_client(&mut rng)).collect();
        let internal = (0..40)
            .map(|_| Client {
                ip: format!(
                    "10.{}.{}.{}",
                    rng.random_range(0..4),
                    rng.random_range(0..8),
                    rng.random_range(2..250)
                ),
                ua: USER_AGENTS.len() - 4,
                h2: false,
            })
            .collect();
        HaproxyGen {
            rng,
            start,
            clock: start,
            wall: false,
            frontends,
            frontend_pick,
            backends,
            public,
            internal,
            user_agents: USER_AGENTS.iter().map(|ua| capture_value(ua, 48)).collect(),
            layout: shape.layout,
            captures: shape.captures.clone(),
            base_rate: shape
                .site_rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .unwrap_or(BASE_RATE),
            server_names: (1..=shape.servers.unwrap_or(0))
                .map(|i| format!("srv{i}"))
                .collect(),
            lbs: load_balancers(shape),
            uri: Vec::with_capacity(256),
            syslog_date: DateCache::new(),
            accept_date: DateCache::new(),
            int: itoa::Buffer::new(),
        }
    }

    fn public_client(rng: &mut StdRng) -> Client {
        const FIRST_OCTETS: &[u8] = &[
            24, 31, 45, 62, 73, 81, 86, 91, 104, 109, 151, 176, 185, 188, 193, 203, 212, 217,
        ];
        let ip = if rng.random_bool(0.12) {
            format!(
                "2001:db8:{:x}:{:x}::{:x}",
                rng.random_range(1..0xffffu32),
                rng.random_range(0..0x100u32),
                rng.random_range(1..0xffffu32)
            )
        } else {
            format!(
                "{}.{}.{}.{}",
                FIRST_OCTETS[rng.random_range(0..FIRST_OCTETS.len())],
                rng.random_range(0..256),
                rng.random_range(0..256),
                rng.random_range(1..255)
            )
        };
        let ua = match rng.random_range(0..100) {
            0..=29 => 0,
            30..=49 => 1,
            50..=59 => 2,
            60..=69 => 3,
            70..=79 => 4,
            80..=83 => 5,
            84..=88 => 6,
            89..=91 => 7,
            92..=94 => 8,
            95..=97 => 9,
            98 => 10,
            _ => 11,
        };
        Client {
            ip,
            ua,
            h2: ua <= 4 && rng.random_bool(0.5),
        }
    }

    /// The name a line gives `server`: itself, or with [`Shape::servers`] one of those names
    /// (never for HAProxy's `<NOSRV>` and the like).
    fn server_name(&mut self, server: &'static str) -> &str {
        if self.server_names.is_empty() || server.starts_with('<') {
            return server;
        }
        let i = self.rng.random_range(0..self.server_names.len());
        &self.server_names[i]
    }

    /// Appends the next line, `\n`-terminated, to `buf`.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) {
        let elapsed_s = (self.clock - self.start) as f64 / 1e6;
        let rate = self.base_rate * (1.0 + 0.4 * (elapsed_s * std::f64::consts::TAU / 3600.0).sin());
        let gap = -(1.0 - self.rng.random::<f64>()).ln() / rate;
        if self.wall {
            self.clock = self.clock.max(weir_model::time::now_micros());
        } else {
            self.clock += (gap * 1e6) as Micros;
        }
        let fe = self.frontend_pick.sample(&mut self.rng);
        if self.frontends[fe].spec.tcp {
            self.tcp_line(fe, buf);
        } else {
            self.http_line(fe, buf);
        }
    }

    /// The emission time of the last line written.
    pub fn clock(&self) -> Micros {
        self.clock
    }

    /// Stamps every later line with the wall clock at the moment it is generated, so that a
    /// live receiver sees current traffic whatever the sending rate (the simulated request
    /// rate then no longer sets the time).
    pub fn follow_wall_clock(&mut self) {
        self.wall = true;
    }

    fn minute(&self) -> i64 {
        (self.clock - self.start) / (60 * MICROS_PER_SEC)
    }

    fn pick_client(&mut self, internal: bool) -> usize {
        let pool = if internal {
            self.internal.len()
        } else {
            self.public.len()
        };
        // A few clients make most requests.
        let u: f64 = self.rng.random();
        ((pool as f64 * u.powi(3)) as usize).min(pool - 1)
    }

    /// Writes the URI of a path template into `self.uri`; `absolute` prefixes `https://host`.
    fn write_uri(&mut self, spec: &PathSpec, absolute: Option<&str>) {
        self.uri.clear();
        if let Some(host) = absolute {
            self.uri.extend_from_slice(b"https://");
            self.uri.extend_from_slice(host.as_bytes());
        }
        for part in spec.parts {
            match *part {
                L(s) => self.uri.extend_from_slice(s.as_bytes()),
                Id(max) => {
                    let u: f64 = self.rng.random();
                    let id = 1 + (f64::from(max) * u * u) as u32;
                    self.uri.extend_from_slice(self.int.format(id).as_bytes());
                }
                Hex8 => {
                    // A handful of values, as of a few deployed builds.
                    let v = self.rng.random_range(1..7u32).wrapping_mul(0x9E37_79B9);
                    for shift in (0..8).rev() {
                        self.uri
                            .push(b"0123456789abcdef"[((v >> (shift * 4)) & 0xf) as usize]);
                    }
                }
                Word => {
                    let w = WORDS[self.rng.random_range(0..WORDS.len())];
                    self.uri.extend_from_slice(w.as_bytes());
                }
                Page => {
                    let p = 1 + (self.rng.random::<f64>().powi(2) * 20.0) as u32;
                    self.uri.extend_from_slice(self.int.format(p).as_bytes());
                }
            }
        }
    }

    /// TR: time to receive the request headers.
    fn request_time(&mut self) -> u32 {
        match self.rng.random_range(0..1000) {
            0..=879 => 0,
            880..=979 => self.rng.random_range(1..4),
            _ => (log_normal(40.0, 1.2).sample(&mut self.rng) as u32).min(TIMEOUT_HTTP_REQUEST - 1),
        }
    }

    /// Tc: TCP connect to the server.
    fn connect_time(&mut self) -> u32 {
        match self.rng.random_range(0..100) {
            0..=69 => 0,
            70..=94 => 1,
            _ => self.rng.random_range(2..9),
        }
    }

    /// Concurrency counters `ac/fc/bc/sc` around the current load; `bc`/`sc` are 0 when no
    /// backend or server was involved.
    fn conn_counts(&mut self, fe_weight: u32, backend: bool, server: bool) -> [u32; 4] {
        let load = 30 + self.rng.random_range(0..40u32);
        let ac = load + self.rng.random_range(0..load);
        let fc = 1 + ac * fe_weight / 100 + self.rng.random_range(0..4);
        let bc = if backend { self.rng.random_range(0..=fc) } else { 0 };
        let sc = if server {
            self.rng.random_range(0..=bc / 3 + 1)
        } else {
            0
        };
        [ac, fc.min(ac), bc, sc]
    }

    fn http_line(&mut self, fe_idx: usize, buf: &mut Vec<u8>) {
        let fe: &'static FrontendSpec = self.frontends[fe_idx].spec;
        let client = self.pick_client(fe.internal);
        let (ip_h2, ua) = {
            let c = if fe.internal {
                &self.internal[client]
            } else {
                &self.public[client]
            };
            (c.h2, c.ua)
        };
        let h2 = fe.ssl && fe.h2 && ip_h2;
        let host = fe.hosts[self.rng.random_range(0..fe.hosts.len())];
        let route_idx = self.frontends[fe_idx]
            .routes
            .as_ref()
            .map_or(0, |r| r.sample(&mut self.rng));
        let route = fe.routes[route_idx].0;
        let absolute = h2.then_some(host);
        let f = match route {
            Route::Backend(_) => {
                let b = self.frontends[fe_idx].route_backends[route_idx];
                self.backend_request(fe, b, absolute)
            }
            Route::Redirect => self.redirect(fe, host, absolute),
            Route::Deny => {
                self.uri.clear();
                if let Some(h) = absolute {
                    self.uri.extend_from_slice(b"https://");
                    self.uri.extend_from_slice(h.as_bytes());
                }
                let p = DENIED_PATHS[self.rng.random_range(0..DENIED_PATHS.len())];
                self.uri.extend_from_slice(p.as_bytes());
                let tr = self.request_time();
                HttpFields {
                    backend: fe.name,
                    server: "<NOSRV>",
                    timers: [Some(tr), None, None, None],
                    ta: tr,
                    status: 403,
                    bytes: BYTES_403,
                    state: "PR--",
                    retries: 0,
                    redispatched: false,
                    queues: (0, 0),
                    content_type: None,
                    bad: false,
                    method: if self.rng.random_bool(0.8) { "GET" } else { "POST" },
                    h2,
                }
            }
            Route::BadReq => {
                self.uri.clear();
                let (status, state, ta) = match self.rng.random_range(0..10) {
                    0..=3 => (400, "PR--", self.rng.random_range(0..3)),
                    4..=7 => (
                        400,
                        "CR--",
                        (log_normal(200.0, 1.5).sample(&mut self.rng) as u32).min(9_999),
                    ),
                    _ => (408, "cR--", TIMEOUT_HTTP_REQUEST + self.rng.random_range(0..3)),
                };
                HttpFields {
                    backend: fe.name,
                    server: "<NOSRV>",
                    timers: [None; 4],
                    ta,
                    status,
                    bytes: BYTES_400,
                    state,
                    retries: 0,
                    redispatched: false,
                    queues: (0, 0),
                    content_type: None,
                    bad: true,
                    method: "",
                    h2: false,
                }
            }
            Route::Stats => {
                self.uri.clear();
                self.uri.extend_from_slice(b"/haproxy?stats;csv");
                let tr = self.request_time();
                HttpFields {
                    backend: fe.name,
                    server: "<STATS>",
                    timers: [Some(tr), Some(0), Some(0), Some(0)],
                    ta: tr + self.rng.random_range(0..3),
                    status: 200,
                    bytes: 9_000 + self.rng.random_range(0..3_000),
                    state: "LR--",
                    retries: 0,
                    redispatched: false,
                    queues: (0, 0),
                    content_type: Some("text/plain"),
                    bad: false,
                    method: "GET",
                    h2: false,
                }
            }
        };
        let counts = self.conn_counts(fe.weight, f.backend != fe.name, !f.server.starts_with('<'));

        // Lines are written when the request ends; with logasap, once the response headers
        // are in (the logged Ta then stops there).
        let logasap = fe.logasap && self.layout != Some(Layout::Clf);
        let (ta, bytes) = if logasap && f.timers[3].is_some() {
            let t: u32 = f.timers.iter().map(|t| t.unwrap_or(0)).sum();
            (
                t + self.rng.random_range(0..2),
                180 + self.rng.random_range(0..220),
            )
        } else {
            (f.ta, f.bytes)
        };
        let accept = self.clock - i64::from(ta) * 1000 - self.rng.random_range(0..1000);
        let port = self.rng.random_range(1024..=65535u32);
        let lb = self.rng.random_range(0..self.lbs.len());
        let line = Line {
            lb,
            client,
            internal: fe.internal,
            ua,
            host,
            port,
            accept,
            ta,
            bytes,
            counts,
        };
        if self.layout == Some(Layout::Clf) {
            self.write_clf(buf, fe, &f, &line);
            return;
        }

        self.write_prefix(buf, lb, client, fe.internal, port, accept, fe);
        buf.extend_from_slice(f.backend.as_bytes());
        buf.push(b'/');
        let server = self.server_name(f.server);
        buf.extend_from_slice(server.as_bytes());
        buf.push(b' ');
        for t in f.timers {
            self.push_timer(buf, t);
            buf.push(b'/');
        }
        if fe.logasap {
            buf.push(b'+');
        }
        self.push_u64(buf, u64::from(ta));
        buf.push(b' ');
        self.push_u64(buf, u64::from(f.status));
        buf.push(b' ');
        if fe.logasap {
            buf.push(b'+');
        }
        self.push_u64(buf, bytes);
        buf.extend_from_slice(b" - - ");
        buf.extend_from_slice(f.state.as_bytes());
        buf.push(b' ');
        self.push_counts(buf, counts, f.retries, f.redispatched, f.queues);
        if let Some(captures) = self.captures.take_if(|_| !f.bad) {
            for block in [&captures.request, &captures.response] {
                if !block.is_empty() {
                    buf.extend_from_slice(b" {");
                    self.push_captured(buf, block, b"|", &f, &line);
                    buf.push(b'}');
                }
            }
            self.captures = Some(captures);
        } else if !f.bad && self.captures.is_none() {
            match fe.req_captures {
                ReqCaptures::None => {}
                ReqCaptures::Host => {
                    buf.extend_from_slice(b" {");
                    buf.extend_from_slice(host.as_bytes());
                    buf.push(b'}');
                }
                ReqCaptures::HostUa => {
                    buf.extend_from_slice(b" {");
                    buf.extend_from_slice(host.as_bytes());
                    buf.push(b'|');
                    buf.extend_from_slice(self.user_agents[ua].as_bytes());
                    buf.push(b'}');
                }
            }
            if fe.resp_captures {
                buf.extend_from_slice(b" {");
                buf.extend_from_slice(f.content_type.unwrap_or("").as_bytes());
                buf.push(b'}');
            }
        }
        buf.extend_from_slice(b" \"");
        self.push_request(buf, &f);
        buf.push(b'"');
        let httpslog = match self.layout {
            None => fe.httpslog,
            Some(layout) => layout == Layout::Httpslog,
        };
        if httpslog {
            self.push_tls(buf, host);
        }
        buf.push(b'\n');
    }

    /// The request line as logged between its quotes: `METHOD URI VERSION`, or `<BADREQ>`.
    fn push_request(&self, buf: &mut Vec<u8>, f: &HttpFields) {
        if f.bad {
            buf.extend_from_slice(b"<BADREQ>");
        } else {
            buf.extend_from_slice(f.method.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(&self.uri);
            buf.extend_from_slice(if f.h2 { b" HTTP/2.0" } else { b" HTTP/1.1" });
        }
    }

    /// The values of captured headers, separated by `sep`, as HAProxy escapes them.
    fn push_captured(
        &mut self,
        buf: &mut Vec<u8>,
        headers: &[Header],
        sep: &[u8],
        f: &HttpFields,
        line: &Line,
    ) {
        for (i, h) in headers.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(sep);
            }
            self.push_header(buf, *h, f, line);
        }
    }

    /// One captured header's value for this request.
    fn push_header(&mut self, buf: &mut Vec<u8>, h: Header, f: &HttpFields, line: &Line) {
        match h {
            Header::Host => buf.extend_from_slice(line.host.as_bytes()),
            Header::UserAgent => buf.extend_from_slice(self.user_agents[line.ua].as_bytes()),
            Header::Referer => {
                if self.rng.random_bool(0.6) {
                    buf.extend_from_slice(b"https://");
                    buf.extend_from_slice(line.host.as_bytes());
                    buf.push(b'/');
                    if self.rng.random_bool(0.5) {
                        buf.extend_from_slice(b"products/");
                        let id = self.rng.random_range(1..40_000u64);
                        self.push_u64(buf, id);
                    }
                }
            }
            Header::XForwardedFor => {
                let pool = if line.internal {
                    &self.internal
                } else {
                    &self.public
                };
                buf.extend_from_slice(pool[line.client].ip.as_bytes());
            }
            Header::XRequestId => {
                let v: u64 = self.rng.random();
                for shift in (0..16).rev() {
                    buf.push(b"0123456789abcdef"[((v >> (shift * 4)) & 0xf) as usize]);
                }
            }
            Header::ContentType => buf.extend_from_slice(f.content_type.unwrap_or("").as_bytes()),
            Header::ContentLength => {
                if f.content_type.is_some() {
                    self.push_u64(buf, f.bytes.saturating_sub(180));
                }
            }
            Header::CacheControl => buf.extend_from_slice(match (f.status, f.backend) {
                (200 | 304, "be_static" | "be_dl") => b"public, max-age=31536000, immutable".as_slice(),
                (200, _) => b"private, no-cache".as_slice(),
                _ => b"".as_slice(),
            }),
            Header::Location => {
                if (300..400).contains(&f.status) && f.status != 304 {
                    buf.extend_from_slice(b"https://");
                    buf.extend_from_slice(line.host.as_bytes());
                    buf.push(b'/');
                }
            }
        }
    }

    /// An HTTP line in `option httplog clf`'s layout: the CLF prefix (date in UTC with its
    /// offset, no milliseconds), then HAProxy's fields, names quoted, separated by spaces.
    fn write_clf(&mut self, buf: &mut Vec<u8>, fe: &FrontendSpec, f: &HttpFields, line: &Line) {
        self.write_syslog_prefix(buf, line.lb);
        let ip = if line.internal {
            &self.internal[line.client].ip
        } else {
            &self.public[line.client].ip
        };
        buf.extend_from_slice(ip.as_bytes());
        buf.extend_from_slice(b" - - [");
        self.accept_date.set(line.accept);
        buf.extend_from_slice(&self.accept_date.accept);
        buf.extend_from_slice(b" +0000] \"");
        self.push_request(buf, f);
        buf.extend_from_slice(b"\" ");
        self.push_u64(buf, u64::from(f.status));
        buf.push(b' ');
        self.push_u64(buf, line.bytes);
        buf.extend_from_slice(b" \"\" \"\" ");
        self.push_u64(buf, u64::from(line.port));
        buf.push(b' ');
        self.push_u64(buf, (line.accept.rem_euclid(MICROS_PER_SEC) / 1000) as u64);
        let server = self.server_name(f.server);
        for name in [fe.name, f.backend, server] {
            buf.extend_from_slice(b" \"");
            buf.extend_from_slice(name.as_bytes());
            buf.push(b'"');
        }
        for t in f.timers {
            buf.push(b' ');
            self.push_timer(buf, t);
        }
        buf.push(b' ');
        self.push_u64(buf, u64::from(line.ta));
        buf.push(b' ');
        buf.extend_from_slice(f.state.as_bytes());
        for v in line.counts {
            buf.push(b' ');
            self.push_u64(buf, u64::from(v));
        }
        buf.push(b' ');
        if f.redispatched {
            buf.push(b'+');
        }
        self.push_u64(buf, u64::from(f.retries));
        for q in [f.queues.0, f.queues.1] {
            buf.push(b' ');
            self.push_u64(buf, u64::from(q));
        }
        buf.extend_from_slice(b" \"\" \"\"");
        // `%hrl %hsl`: each captured value quoted; HAProxy drops the separator of an empty one.
        let mut any = false;
        if let Some(captures) = self.captures.take_if(|_| !f.bad) {
            for block in [&captures.request, &captures.response] {
                if !block.is_empty() {
                    buf.extend_from_slice(b" \"");
                    self.push_captured(buf, block, b"\" \"", f, line);
                    buf.push(b'"');
                    any = true;
                }
            }
            self.captures = Some(captures);
        }
        if !any {
            buf.push(b' ');
        }
        buf.push(b'\n');
    }

    /// `option httpslog`'s tail: `fc_err/ssl_fc_err/ssl_c_err/ssl_c_ca_err/resumed sni/version/cipher`.
    fn push_tls(&mut self, buf: &mut Vec<u8>, host: &str) {
        buf.extend_from_slice(b" 0/0000000000000000/0/0/");
        buf.push(if self.rng.random_bool(0.3) { b'1' } else { b'0' });
        buf.push(b' ');
        if self.rng.random_bool(0.03) {
            buf.push(b'-');
        } else {
            buf.extend_from_slice(host.as_bytes());
        }
        if self.rng.random_bool(0.9) {
            buf.extend_from_slice(b"/TLSv1.3/");
            let c = TLS13_CIPHERS[self.rng.random_range(0..TLS13_CIPHERS.len())];
            buf.extend_from_slice(c.as_bytes());
        } else {
            buf.extend_from_slice(b"/TLSv1.2/");
            let c = TLS12_CIPHERS[self.rng.random_range(0..TLS12_CIPHERS.len())];
            buf.extend_from_slice(c.as_bytes());
        }
    }

    /// A request that reached a backend: answered, or failed in one of the ways HAProxy logs.
    fn backend_request(&mut self, fe: &'static FrontendSpec, b: usize, absolute: Option<&str>) -> HttpFields {
        let spec: &'static BackendSpec = self.backends[b].spec;
        let path = spec.paths[self.backends[b].paths.sample(&mut self.rng)];
        self.write_uri(&path, absolute);
        let h2 = absolute.is_some();
        let tr_req = self.request_time();
        let minute = self.minute();
        let overloaded = spec.name == "be_search" && SEARCH_SLOW_MIN.contains(&minute);
        let base = HttpFields {
            backend: spec.name,
            server: "<NOSRV>",
            timers: [Some(tr_req), None, None, None],
            ta: tr_req,
            status: 503,
            bytes: BYTES_503,
            state: "SC--",
            retries: 0,
            redispatched: false,
            queues: (0, 0),
            content_type: None,
            bad: false,
            method: path.method,
            h2,
        };
        // Every server DOWN: 503 without a server, nothing queued.
        if spec.name == "be_auth" && AUTH_OUTAGE_MIN.contains(&minute) {
            return base;
        }
        let srv_idx = self.rng.random_range(0..spec.servers.len());
        let mut server = spec.servers[srv_idx];
        let (tw, queues) = if self.rng.random_bool(if overloaded { 0.3 } else { 0.004 }) {
            let tw = (log_normal(if overloaded { 400.0 } else { 30.0 }, 1.0).sample(&mut self.rng) as u32)
                .min(4_999);
            let q = self.rng.random_range(1..if overloaded { 60 } else { 12 });
            (tw, if self.rng.random_bool(0.5) { (q, 0) } else { (0, q) })
        } else {
            (0, (0, 0))
        };
        let head = tr_req + tw;
        let fail = self.rng.random_range(0..100_000u32);
        if fail < 80 {
            // Connection refused on every try: retries, each after a 1 s turn-around.
            return HttpFields {
                server,
                timers: [Some(tr_req), Some(tw), None, None],
                ta: head + RETRIES * 1000 + self.rng.random_range(0..10),
                retries: RETRIES,
                queues,
                ..base
            };
        }
        if fail < 95 {
            // Connect timeout on every try.
            return HttpFields {
                server,
                timers: [Some(tr_req), Some(tw), None, None],
                ta: head + (RETRIES + 1) * TIMEOUT_CONNECT + self.rng.random_range(0..10),
                state: "sC--",
                retries: RETRIES,
                queues,
                ..base
            };
        }
        let mut tc = self.connect_time();
        let (mut retries, mut redispatched) = (0, false);
        if fail < 195 {
            retries = self.rng.random_range(1..RETRIES);
            tc += retries * 1000;
        } else if fail < 225 {
            // Redispatched to another server on the last retry.
            retries = RETRIES;
            redispatched = true;
            tc += RETRIES * 1000;
            server = spec.servers[(srv_idx + 1) % spec.servers.len()];
        }
        let slow = if srv_idx == spec.slow_server {
            spec.slow_factor
        } else {
            1.0
        };
        let mut tr = self.backends[b].tr.sample(&mut self.rng) * slow * if overloaded { 4.0 } else { 1.0 };
        if self.rng.random_bool(0.002) {
            tr *= log_normal(15.0, 1.0).sample(&mut self.rng);
        } else if self.rng.random_bool(0.0003) {
            // A hung request: the server never answers.
            tr = f64::from(TIMEOUT_SERVER);
        }
        let head = head + tc;
        let timers = [Some(tr_req), Some(tw), Some(tc), None];
        if tr >= f64::from(TIMEOUT_SERVER) {
            return HttpFields {
                server,
                timers,
                ta: head + TIMEOUT_SERVER + self.rng.random_range(0..3),
                status: 504,
                bytes: BYTES_504,
                state: "sH--",
                retries,
                redispatched,
                queues,
                ..base
            };
        }
        let tr = tr as u32;
        if self.rng.random_bool(spec.p_server_abort) {
            return HttpFields {
                server,
                timers,
                ta: head + tr,
                status: 502,
                bytes: BYTES_502,
                state: "SH--",
                retries,
                redispatched,
                queues,
                ..base
            };
        }
        let mut status = spec.statuses[self.backends[b].statuses.sample(&mut self.rng)].0;
        if status == 200 || (status == 304 && path.method != "GET") {
            status = path.ok;
        }
        let headers = 180 + self.rng.random_range(0..220u64);
        let body = match status {
            200 | 201 if path.method == "HEAD" => 0,
            200 | 201 | 206 => self.backends[b].body.sample(&mut self.rng).clamp(20.0, 4e9) as u64,
            202 | 204 | 304 => 0,
            301 | 302 => self.rng.random_range(0..160),
            404 => 300 + self.rng.random_range(0..1200),
            _ => 40 + self.rng.random_range(0..400),
        };
        let content_type = match status {
            204 | 304 | 301 | 302 => None,
            404 | 500 | 503 if path.content_type != JSON => Some(HTML),
            _ => Some(path.content_type),
        };
        // Transfer time at a per-client bandwidth (bytes per ms).
        let bandwidth = log_normal(3_000.0, 1.0).sample(&mut self.rng).max(50.0);
        let data = (body as f64 / bandwidth) as u32;
        let mut f = HttpFields {
            server,
            timers: [Some(tr_req), Some(tw), Some(tc), Some(tr)],
            ta: head + tr + data + self.rng.random_range(0..2),
            status,
            bytes: headers + body,
            state: "----",
            retries,
            redispatched,
            queues,
            content_type,
            ..base
        };
        if body > 50_000 && !fe.logasap {
            let abort = self.rng.random_range(0..1000);
            if abort < 3 {
                // The client went away mid-body.
                let part = self.rng.random_range(0.01..0.9);
                f.bytes = headers + (body as f64 * part) as u64;
                f.ta = head + tr + (f64::from(data) * part) as u32;
                f.state = "CD--";
            } else if abort < 4 {
                // The client stopped reading: timeout client during the data phase.
                let part = self.rng.random_range(0.01..0.9);
                f.bytes = headers + (body as f64 * part) as u64;
                f.ta = head + tr + (f64::from(data) * part) as u32 + TIMEOUT_CLIENT;
                f.state = "cD--";
            }
        }
        f
    }

    /// `http-request redirect`: 301 to https on a plain frontend, 302 elsewhere.
    fn redirect(&mut self, fe: &'static FrontendSpec, host: &str, absolute: Option<&str>) -> HttpFields {
        // HAProxy 2.6 logs 85 bytes for a 302 to `/new`: 81 plus the location; "Moved Permanently"
        // is 12 bytes longer than "Found".
        let (status, fixed) = if fe.ssl { (302u16, 81u64) } else { (301, 93) };
        let b = 0;
        let spec = self.backends[b].spec;
        let path = spec.paths[self.backends[b].paths.sample(&mut self.rng)];
        self.write_uri(&path, absolute);
        let location_len = if fe.ssl {
            22
        } else {
            8 + host.len() + self.uri.len()
        };
        let tr = self.request_time();
        HttpFields {
            backend: fe.name,
            server: "<NOSRV>",
            timers: [Some(tr), None, None, None],
            ta: tr,
            status,
            bytes: fixed + location_len as u64,
            state: "LR--",
            retries: 0,
            redispatched: false,
            queues: (0, 0),
            content_type: None,
            bad: false,
            method: if path.method == "HEAD" { "HEAD" } else { "GET" },
            h2: absolute.is_some(),
        }
    }

    fn tcp_line(&mut self, fe_idx: usize, buf: &mut Vec<u8>) {
        let fe: &'static FrontendSpec = self.frontends[fe_idx].spec;
        let client = self.pick_client(true);
        let srv = self.rng.random_range(0..TCP_SERVERS.len());
        let session = log_normal(2_000.0, 2.0).sample(&mut self.rng).min(3.6e6) as u32;
        let bytes = log_normal(8_000.0, 1.5).sample(&mut self.rng) as u64;
        let tc = self.connect_time();
        // HAProxy 2.6 logs Tw as 0 or 1 on an unqueued TCP session.
        let tw = self.rng.random_range(0..2);
        let (server, tw, tc, tt, bytes, state) = match self.rng.random_range(0..1000) {
            0..=2 => ("<NOSRV>", None, None, self.rng.random_range(0..3), 0, "SC"),
            3..=5 => (
                TCP_SERVERS[srv],
                Some(tw),
                None,
                RETRIES * 1000 + self.rng.random_range(0..10),
                0,
                "SC",
            ),
            6..=35 => (
                TCP_SERVERS[srv],
                Some(tw),
                Some(tc),
                session + tw + tc,
                bytes,
                "CD",
            ),
            36..=65 => (
                TCP_SERVERS[srv],
                Some(tw),
                Some(tc),
                session + tw + tc + TCP_TIMEOUT_CLIENT,
                bytes,
                "cD",
            ),
            66..=75 => (
                TCP_SERVERS[srv],
                Some(tw),
                Some(tc),
                session + tw + tc,
                bytes,
                "SD",
            ),
            76..=80 => (
                TCP_SERVERS[srv],
                Some(tw),
                Some(tc),
                session + tw + tc + TCP_TIMEOUT_CLIENT,
                bytes,
                "sD",
            ),
            _ => (
                TCP_SERVERS[srv],
                Some(tw),
                Some(tc),
                session + tw + tc,
                bytes,
                "--",
            ),
        };
        let counts = self.conn_counts(fe.weight * 10, true, server != "<NOSRV>");
        let retries = if state == "SC" && tw.is_some() { RETRIES } else { 0 };
        let accept = self.clock - i64::from(tt) * 1000 - self.rng.random_range(0..1000);
        let port = self.rng.random_range(1024..=65535u32);
        let lb = self.rng.random_range(0..self.lbs.len());
        self.write_prefix(buf, lb, client, true, port, accept, fe);
        buf.extend_from_slice(b"be_pg/");
        buf.extend_from_slice(server.as_bytes());
        buf.push(b' ');
        self.push_timer(buf, tw);
        buf.push(b'/');
        self.push_timer(buf, tc);
        buf.push(b'/');
        self.push_u64(buf, u64::from(tt));
        buf.push(b' ');
        self.push_u64(buf, bytes);
        buf.push(b' ');
        buf.extend_from_slice(state.as_bytes());
        buf.push(b' ');
        self.push_counts(buf, counts, retries, false, (0, 0));
        buf.push(b'\n');
    }

    /// `Nov 22 01:22:06 lb1 haproxy[12136]: ` for load balancer `lb`.
    fn write_syslog_prefix(&mut self, buf: &mut Vec<u8>, lb: usize) {
        self.syslog_date.set(self.clock);
        buf.extend_from_slice(&self.syslog_date.syslog);
        buf.push(b' ');
        buf.extend_from_slice(self.lbs[lb].0.as_bytes());
        buf.extend_from_slice(b" haproxy[");
        self.push_u64(buf, u64::from(self.lbs[lb].1));
        buf.extend_from_slice(b"]: ");
    }

    /// `Nov 22 01:22:06 lb1 haproxy[12136]: ip:port [22/Nov/2026:01:22:06.958] frontend~ `.
    #[allow(clippy::too_many_arguments)]
    fn write_prefix(
        &mut self,
        buf: &mut Vec<u8>,
        lb: usize,
        client: usize,
        internal: bool,
        port: u32,
        accept: Micros,
        fe: &FrontendSpec,
    ) {
        self.write_syslog_prefix(buf, lb);
        let ip = if internal {
            &self.internal[client].ip
        } else {
            &self.public[client].ip
        };
        buf.extend_from_slice(ip.as_bytes());
        buf.push(b':');
        self.push_u64(buf, u64::from(port));
        buf.extend_from_slice(b" [");
        self.accept_date.set(accept);
        buf.extend_from_slice(&self.accept_date.accept);
        let ms = accept.rem_euclid(MICROS_PER_SEC) / 1000;
        buf.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
        ]);
        buf.extend_from_slice(b"] ");
        buf.extend_from_slice(fe.name.as_bytes());
        if fe.ssl {
            buf.push(b'~');
        }
        buf.push(b' ');
    }

    /// `ac/fc/bc/sc/rc sq/bq`.
    fn push_counts(
        &mut self,
        buf: &mut Vec<u8>,
        c: [u32; 4],
        retries: u32,
        redispatched: bool,
        q: (u32, u32),
    ) {
        for v in c {
            self.push_u64(buf, u64::from(v));
            buf.push(b'/');
        }
        if redispatched {
            buf.push(b'+');
        }
        self.push_u64(buf, u64::from(retries));
        buf.push(b' ');
        self.push_u64(buf, u64::from(q.0));
        buf.push(b'/');
        self.push_u64(buf, u64::from(q.1));
    }

    fn push_timer(&mut self, buf: &mut Vec<u8>, t: Option<u32>) {
        match t {
            Some(v) => self.push_u64(buf, u64::from(v)),
            None => buf.extend_from_slice(b"-1"),
        }
    }

    fn push_u64(&mut self, buf: &mut Vec<u8>, v: u64) {
        buf.extend_from_slice(self.int.format(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use weir_ingest::ParseOptions;
    use weir_model::time::micros_from_civil;
    use weir_model::Record;

    use super::*;

    fn lines(seed: u64, n: usize) -> Vec<u8> {
        let mut gen = HaproxyGen::new(seed, micros_from_civil(2026, 11, 22, 0, 0, 0, 0));
        let mut buf = Vec::new();
        for _ in 0..n {
            gen.next_line(&mut buf);
        }
        buf
    }

    fn shaped(shape: &Shape, n: usize) -> Vec<u8> {
        let mut gen = HaproxyGen::with_shape(3, micros_from_civil(2026, 11, 22, 0, 0, 0, 0), shape);
        let mut buf = Vec::new();
        for _ in 0..n {
            gen.next_line(&mut buf);
        }
        buf
    }

    /// Every layout parses as that layout, with the captures asked for (checked against the
    /// values the generator chose, not only parsed), and the lines come from hosts × processes
    /// writers.
    #[test]
    fn shaped_lines_parse_in_their_layout_with_their_captures() {
        let captures: Captures = "{host|user-agent|x-request-id} {content-type|location}"
            .parse()
            .unwrap();
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        for layout in [Layout::Httplog, Layout::Httpslog, Layout::Clf, Layout::Tcplog] {
            let shape = Shape {
                layout: Some(layout),
                captures: Some(captures.clone()),
                hosts: Some(3),
                processes: Some(2),
                servers: Some(40),
                site_rate: None,
            };
            let text = shaped(&shape, 5_000);
            assert_eq!(text, shaped(&shape, 5_000), "{layout:?}");
            let mut writers = BTreeSet::new();
            for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let shown = String::from_utf8_lossy(raw);
                let line = weir_ingest::parse_line(raw, &opts);
                writers.insert((line.header.host, line.header.procid));
                match (layout, line.record) {
                    (Layout::Tcplog, Record::Tcp(_)) => {}
                    (Layout::Httplog | Layout::Httpslog | Layout::Clf, Record::Http(h)) => {
                        assert_eq!(h.clf, layout == Layout::Clf, "{shown}");
                        let srv = h.server.strip_prefix("srv").and_then(|n| n.parse::<u32>().ok());
                        assert!(
                            srv.is_some_and(|n| (1..=40).contains(&n)) || h.server.starts_with('<'),
                            "{shown}"
                        );
                        assert_eq!(h.tls.is_some(), layout == Layout::Httpslog, "{shown}");
                        if layout == Layout::Httpslog {
                            assert!(h.ssl, "{shown}");
                        }
                        if layout == Layout::Clf || h.request.bad {
                            continue;
                        }
                        let req = h.req_headers.expect("request captures").decoded();
                        let resp = h.resp_headers.expect("response captures").decoded();
                        assert_eq!(req.len(), 3, "{shown}");
                        assert!(
                            req[0].ends_with("example.com") || req[0].ends_with(".net"),
                            "{shown}"
                        );
                        assert!(req[1].len() <= 48 * 3, "{shown}");
                        assert!(
                            req[2].len() == 16 && req[2].bytes().all(|b| b.is_ascii_hexdigit()),
                            "{shown}"
                        );
                        assert_eq!(resp.len(), 2, "{shown}");
                        let redirect = (300..400).contains(&h.status.unwrap_or(0)) && h.status != Some(304);
                        assert_eq!(!resp[1].is_empty(), redirect, "{shown}");
                    }
                    (_, other) => panic!("{layout:?}: {other:?}: {shown}"),
                }
            }
            assert_eq!(writers.len(), 6, "{layout:?}: {writers:?}");
        }
    }

    /// `'{host|user-agent} {content-type}'` on every httplog frontend makes the long lines of a
    /// typical fleet file (about 270 bytes), and the default shape is the site unchanged.
    #[test]
    fn capture_heavy_httplog_lines_are_long_and_the_default_shape_changes_nothing() {
        let shape = Shape {
            layout: Some(Layout::Httplog),
            captures: Some("{host|user-agent} {content-type}".parse().unwrap()),
            hosts: Some(1),
            processes: Some(1),
            servers: None,
            site_rate: None,
        };
        let text = shaped(&shape, 20_000);
        let mean = text.len() / 20_000;
        assert!((250..290).contains(&mean), "{mean}");
        let mut gen =
            HaproxyGen::with_shape(3, micros_from_civil(2026, 11, 22, 0, 0, 0, 0), &Shape::default());
        let mut buf = Vec::new();
        for _ in 0..1000 {
            gen.next_line(&mut buf);
        }
        let mut plain = HaproxyGen::new(3, micros_from_civil(2026, 11, 22, 0, 0, 0, 0));
        let mut want = Vec::new();
        for _ in 0..1000 {
            plain.next_line(&mut want);
        }
        assert_eq!(buf, want);
    }

    /// `site_rate` ten times the default packs the same number of requests into a tenth of
    /// the simulated time.
    #[test]
    fn a_higher_site_rate_packs_the_requests_closer() {
        let start = micros_from_civil(2026, 11, 22, 0, 0, 0, 0);
        let span = |site_rate| {
            let shape = Shape {
                site_rate,
                ..Shape::default()
            };
            let mut gen = HaproxyGen::with_shape(3, start, &shape);
            let mut buf = Vec::new();
            for _ in 0..20_000 {
                gen.next_line(&mut buf);
            }
            (gen.clock() - start) as f64
        };
        let ratio = span(None) / span(Some(BASE_RATE * 10.0));
        assert!((9.0..11.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn same_seed_same_lines_other_seed_other_lines() {
        assert_eq!(lines(7, 3000), lines(7, 3000));
        assert_ne!(lines(7, 3000), lines(8, 3000));
    }

    #[test]
    fn header_is_what_halog_expects() {
        let text = String::from_utf8(lines(1, 2000)).unwrap();
        for line in text.lines() {
            let b = line.as_bytes();
            assert!(MONTHS.iter().any(|m| &b[..3] == *m), "{line}");
            assert_eq!(b[3], b' ');
            assert!(b[4] == b' ' || b[4].is_ascii_digit(), "{line}");
            assert_eq!(&b[9..10], b":", "{line}");
            let host = line[16..].split(' ').next().unwrap();
            assert!(host == "lb1" || host == "lb2", "{line}");
            let tag = line[16..].split(' ').nth(1).unwrap();
            assert!(tag.starts_with("haproxy[") && tag.ends_with("]:"), "{line}");
        }
        let mut d = DateCache::new();
        d.set(micros_from_civil(2026, 12, 2, 3, 4, 5, 0));
        assert_eq!(&d.syslog, b"Dec  2 03:04:05");
        assert_eq!(&d.accept, b"02/Dec/2026:03:04:05");
    }

    #[test]
    fn mean_line_length_is_realistic() {
        let n = 20_000;
        let mean = lines(3, n).len() / n;
        assert!((190..=260).contains(&mean), "mean line length {mean}");
    }

    #[test]
    fn syslog_times_increase_and_accept_dates_trail_them() {
        let text = String::from_utf8(lines(5, 5000)).unwrap();
        let mut prev = String::new();
        for line in text.lines() {
            // Within one day, `HH:MM:SS` orders like time.
            let t = line[7..15].to_string();
            assert!(t >= prev, "{prev} then {t}");
            prev = t;
        }
    }

    #[test]
    fn capture_values_are_truncated_and_escaped() {
        assert_eq!(capture_value("a|b{c}\"d", 64), "a#7Cb#7Bc#7D#22d");
        assert_eq!(capture_value("abcdef", 3), "abc");
        assert_eq!(capture_value("é", 64), "#C3#A9");
    }

    #[test]
    fn wall_clock_mode_stamps_lines_now() {
        let before = weir_model::time::now_micros();
        let mut gen = HaproxyGen::new(1, before);
        gen.follow_wall_clock();
        let mut buf = Vec::new();
        for _ in 0..100 {
            gen.next_line(&mut buf);
        }
        let after = weir_model::time::now_micros();
        assert!(
            (before..=after).contains(&gen.clock()),
            "{before} {} {after}",
            gen.clock()
        );
    }

    /// Every line parses as HAProxy HTTP or TCP, and its fields agree with each other the way
    /// HAProxy's do.
    #[test]
    fn every_line_parses_and_is_consistent() {
        let text = lines(11, 50_000);
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        let mut states = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let shown = String::from_utf8_lossy(raw);
            let line = weir_ingest::parse_line(raw, &opts);
            assert_eq!(
                line.header.host.map(|h| h.starts_with("lb")),
                Some(true),
                "{shown}"
            );
            assert_eq!(line.header.app, Some("haproxy"), "{shown}");
            match line.record {
                Record::Http(h) => {
                    assert!(!h.truncated && !h.clf, "{shown}");
                    let t = h.timings;
                    let state = h.termination_state;
                    *states.entry((h.status, state.to_string())).or_insert(0u32) += 1;
                    seen.insert((h.frontend, h.ssl, h.tls.is_some(), t.total_logasap));
                    assert_eq!(t.total_logasap, h.bytes_logasap, "{shown}");
                    assert_eq!(t.total_logasap, h.frontend == "fe_download", "{shown}");
                    assert_eq!(h.tls.is_some(), h.frontend == "fe_api", "{shown}");
                    assert!(t.total.is_some(), "{shown}");
                    // A stage not reached leaves every later stage unreached.
                    let reached: Vec<bool> = [t.request, t.queue, t.connect, t.response]
                        .iter()
                        .map(|v| v.is_some())
                        .collect();
                    assert!(reached.windows(2).all(|w| w[0] || !w[1]), "{shown}");
                    let sum: i32 = [t.request, t.queue, t.connect, t.response].iter().flatten().sum();
                    assert!(t.total.unwrap() >= sum, "{shown}");
                    if h.request.bad {
                        assert!(h.req_headers.is_none() && h.resp_headers.is_none(), "{shown}");
                        assert!(matches!(state, "PR--" | "CR--" | "cR--"), "{shown}");
                        assert_eq!(t.request, None, "{shown}");
                    } else {
                        assert!(h.request.method.is_some() && h.request.path.is_some(), "{shown}");
                        let v = h.request.http_version.unwrap();
                        assert!(v == "HTTP/1.1" || (v == "HTTP/2.0" && h.ssl), "{shown}");
                        if v == "HTTP/2.0" {
                            assert!(h.request.path.unwrap().starts_with("https://"), "{shown}");
                        }
                    }
                    if h.server == "<NOSRV>" {
                        assert_eq!(t.connect, None, "{shown}");
                    }
                    match state {
                        "sH--" => assert!(h.status == Some(504) && t.response.is_none(), "{shown}"),
                        "SH--" => assert!(h.status == Some(502) && t.response.is_none(), "{shown}"),
                        "SC--" | "sC--" => assert!(h.status == Some(503) && t.connect.is_none(), "{shown}"),
                        "PR--" => assert!(matches!(h.status, Some(400 | 403)), "{shown}"),
                        "LR--" => assert!(matches!(h.status, Some(200 | 301 | 302)), "{shown}"),
                        "----" | "CD--" | "cD--" => assert!(t.response.is_some(), "{shown}"),
                        _ => {}
                    }
                    if h.redispatched {
                        assert_eq!(h.retries, RETRIES, "{shown}");
                    }
                }
                Record::Tcp(t) => {
                    assert_eq!(t.frontend, "fe_db", "{shown}");
                    assert_eq!(t.termination_state.len(), 2, "{shown}");
                    assert_eq!(t.connect_ms.is_none(), t.termination_state == "SC", "{shown}");
                    seen.insert((t.frontend, false, false, false));
                }
                other => panic!("not an HTTP or TCP log: {other:?}\n{shown}"),
            }
        }
        // The mix: every frontend, and every status/state pair worth testing, appears.
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<BTreeSet<_>>().len(),
            FRONTENDS.len(),
            "{seen:?}"
        );
        for pair in [
            (Some(200), "----"),
            (Some(304), "----"),
            (Some(404), "----"),
            (Some(403), "PR--"),
            (Some(400), "PR--"),
            (Some(400), "CR--"),
            (Some(408), "cR--"),
            (Some(301), "LR--"),
            (Some(302), "LR--"),
            (Some(503), "SC--"),
            (Some(504), "sH--"),
            (Some(200), "CD--"),
        ] {
            assert!(
                states.contains_key(&(pair.0, pair.1.to_string())),
                "missing {pair:?} in {states:?}"
            );
        }
        let total: u32 = states.values().sum();
        let ok = states.get(&(Some(200), "----".to_string())).copied().unwrap_or(0);
        assert!(ok * 100 / total >= 60, "200 ---- is {ok} of {total}");
    }
}
