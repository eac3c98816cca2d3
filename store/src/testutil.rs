//! Records for tests: one of each kind, with every field set to something recognisable; and a
//! written file's Parquet footer.

use weir_model::time::micros_from_civil;
use weir_model::{
    AppKind, AppLog, Captures, ClientAddr, Fields, HttpLog, Line, Micros, Record, Reject, RejectReason,
    RequestLine, SyslogHeader, TcpLog, Timings, TlsInfo,
};

/// 2026-11-22 01:22:06.958 UTC plus `ms` milliseconds.
pub(crate) fn at(ms: i64) -> Micros {
    micros_from_civil(2026, 11, 22, 1, 22, 6, 958_000) + ms * 1000
}

pub(crate) fn header() -> SyslogHeader<'static> {
    SyslogHeader {
        facility: Some(16),
        severity: Some(6),
        timestamp: Some(at(0)),
        host: Some("lb1"),
        app: Some("haproxy"),
        procid: Some("12136"),
        structured_data: None,
    }
}

/// A full HTTPS request with captures (one escaped) and a query string.
pub(crate) fn http(ts: Micros) -> HttpLog<'static> {
    HttpLog {
        client: ClientAddr {
            ip: "10.0.0.1",
            port: Some(39164),
        },
        accept_ts: ts,
        frontend: "fe_https",
        ssl: true,
        backend: "be_app",
        server: "web1",
        timings: Timings {
            request: Some(1),
            queue: Some(0),
            connect: Some(2),
            response: Some(40),
            total: Some(45),
            total_logasap: false,
        },
        status: Some(200),
        bytes_read: 1234,
        bytes_logasap: false,
        req_cookie: None,
        resp_cookie: Some("SID=1"),
        termination_state: "----",
        actconn: 10,
        feconn: 9,
        beconn: 3,
        srv_conn: 1,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
        req_headers: Some(Captures("example.com|a#7Cb")),
        resp_headers: None,
        request: RequestLine {
            raw: "GET /api/x?id=1 HTTP/1.1",
            method: Some("GET"),
            path: Some("/api/x"),
            query: Some("id=1"),
            http_version: Some("HTTP/1.1"),
            bad: false,
        },
        tls: Some(TlsInfo {
            fc_err: Some(0),
            ssl_fc_err: Some("0"),
            ssl_c_err: Some(0),
            ssl_c_ca_err: Some(0),
            resumed: Some(true),
            sni: Some("example.com"),
            version: Some("TLSv1.3"),
            cipher: Some("TLS_AES_256_GCM_SHA384"),
        }),
        truncated: false,
        clf: false,
        fields: Fields::EMPTY,
    }
}

/// A `<BADREQ>` with `-1` timers and no status, no captures, no TLS.
pub(crate) fn bad_http(ts: Micros) -> HttpLog<'static> {
    HttpLog {
        client: ClientAddr {
            ip: "::1",
            port: None,
        },
        frontend: "fe_http",
        ssl: false,
        backend: "fe_http",
        server: "<NOSRV>",
        timings: Timings {
            total: Some(5),
            ..Timings::default()
        },
        status: None,
        bytes_read: 0,
        req_headers: None,
        resp_cookie: None,
        termination_state: "CR--",
        request: RequestLine {
            raw: "<BADREQ>",
            bad: true,
            ..RequestLine::default()
        },
        tls: None,
        truncated: true,
        clf: true,
        fields: Fields::EMPTY,
        retries: 3,
        redispatched: true,
        ..http(ts)
    }
}

pub(crate) fn tcp(ts: Micros) -> TcpLog<'static> {
    TcpLog {
        client: ClientAddr {
            ip: "192.168.1.2",
            port: Some(5000),
        },
        accept_ts: ts,
        frontend: "fe_tcp",
        ssl: false,
        backend: "be_db",
        server: "db1",
        queue_ms: Some(0),
        connect_ms: None,
        total_ms: Some(5007),
        total_logasap: true,
        bytes_read: 212,
        bytes_logasap: false,
        termination_state: "--",
        actconn: 1,
        feconn: 1,
        beconn: 1,
        srv_conn: 1,
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
        fields: Fields::EMPTY,
    }
}

pub(crate) fn app_plain(ts: Option<Micros>) -> AppLog<'static> {
    AppLog {
        kind: AppKind::Plain,
        ts,
        message: r#"at=info path="/a b" status=200"#,
        client: None,
        subject: None,
        router: None,
    }
}

pub(crate) fn app_conn_error(ts: Micros) -> AppLog<'static> {
    AppLog {
        kind: AppKind::HaproxyConnError,
        ts: Some(ts),
        message: "10.0.0.9:4242 [22/Nov/2026:01:22:06.958] fe_https/1: SSL handshake failure",
        client: Some(ClientAddr {
            ip: "10.0.0.9",
            port: Some(4242),
        }),
        subject: Some("fe_https/1"),
        router: None,
    }
}

pub(crate) fn line<'a>(record: Record<'a>, raw: &'a [u8]) -> Line<'a> {
    Line {
        header: header(),
        record,
        raw,
    }
}

pub(crate) fn reject_line(raw: &'static [u8], header: SyslogHeader<'static>) -> Line<'static> {
    Line {
        header,
        record: Record::Reject(Reject {
            reason: RejectReason::UnknownFormat,
            message: raw,
        }),
        raw,
    }
}

/// A stand-in for a compiled log format: the values of `ID` and `ssl_fc` are the words of the
/// text after their `=`, `-` for none.
pub(crate) struct WordFields;

impl weir_model::FieldSource for WordFields {
    fn names(&self) -> &'static [&'static str] {
        &["ID", "ssl_fc"]
    }

    fn each_value<'t>(&self, text: &'t str, each: &mut dyn FnMut(&'static str, Option<&'t str>)) {
        for (name, word) in self.names().iter().zip(text.split(' ')) {
            each(name, word.split_once('=').map(|(_, v)| v).filter(|v| *v != "-"));
        }
    }
}

/// The Parquet footer (row groups and their statistics) of the file at `path`.
pub(crate) fn parquet_metadata(path: &std::path::Path) -> parquet::file::metadata::ParquetMetaData {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    parquet::file::reader::FileReader::metadata(&reader).clone()
}
