//! `weir tail`: follows the lines of a running `weir serve` live, as `heroku logs --tail` does.
//!
//! One `GET /api/tail` with the filters as query parameters; the response is an endless stream
//! of lines that is copied to stdout as it arrives (text, or NDJSON with `--json`). A tail whose
//! reader falls behind loses its oldest lines on the server and is told so in band, by the
//! `Error L11 (tail buffer overflow)` notice, which is printed as a line of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use anyhow::Context;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::UsageError;

/// The HTTP API of `weir serve` when it runs with its defaults.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9514";

/// How long to wait for the server to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Characters escaped in a query value: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `weir tail`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Args {
    /// The HTTP API of the running server.
    #[arg(long, value_name = "URL", env = "WEIR_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Recent lines of each matching source to show first, then follow.
    #[arg(short = 'n', long = "num", value_name = "N", default_value_t = 0)]
    pub lines: usize,
    /// Only lines of this app: the syslog tag (`haproxy`, or Heroku's `shop` in
    /// `shop[web.1]`), or the process type of a tag that names a process (`web` for
    /// `web.1[20117]`).
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Only lines of this host (the syslog HOSTNAME).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only lines of this process: `web.1` exactly, or `web` for every `web.*`; the process
    /// is the procid (`shop[web.1]`) or a tag of the form `TYPE.N` (`web.1[20117]`).
    #[arg(long, value_name = "PS")]
    pub ps: Option<String>,
    /// Only HAProxy lines of this backend.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Only HTTP lines with this status: a class (`5xx`) or a code (`503`).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only lines whose total time is at least this many milliseconds.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i32).range(0..))]
    pub slow: Option<i32>,
    /// Only lines of this syslog severity or a more severe one: `emerg`, `alert`, `crit`,
    /// `err`, `warning` (`warn`), `notice`, `info`, `debug`, or 0-7.
    #[arg(long, value_name = "LEVEL", value_parser = level)]
    pub level: Option<String>,
    /// Print NDJSON objects (received_at, source, backend, status, total_ms, line) instead of
    /// the lines' text.
    #[arg(long)]
    pub json: bool,
}

/// Checks `--level` here, so a typo is a usage error, not the server's 400.
fn level(s: &str) -> Result<String, String> {
    weir_ingest::router::parse_level(s)
        .map(|_| s.trim().to_owned())
        .map_err(|e| e.to_string())
}

impl Args {
    /// The `/api/tail` URL these arguments ask for: the server's address, then every filter
    /// that is set, each value percent-encoded.
    pub fn url(&self) -> String {
        let mut url = self.server.trim_end_matches('/').to_owned();
        url.push_str("/api/tail?n=");
        url.push_str(&self.lines.to_string());
        let slow = self.slow.map(|ms| ms.to_string());
        let params = [
            ("app", self.app.as_deref()),
            ("host", self.host.as_deref()),
            ("ps", self.ps.as_deref()),
            ("backend", self.backend.as_deref()),
            ("status", self.status.as_deref()),
            ("slow", slow.as_deref()),
            ("level", self.level.as_deref()),
        ];
        for (key, value) in params {
            if let Some(v) = value {
                url.push('&');
                url.push_str(key);
                url.push('=');
                url.extend(utf8_percent_encode(v, QUERY_VALUE));
            }
        }
        url
    }

    /// The `Accept` header: NDJSON for `--json`, else text.
    fn accept(&self) -> &'static str {
        if self.json {
            "application/x-ndjson"
        } else {
            "text/plain"
        }
    }
}

/// Runs `weir tail` until the server ends the stream.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    follow(&args, &mut stdout.lock())?;
    eprintln!("weir: the server ended the tail");
    Ok(())
}

/// Opens the tail and copies it to `out` line by line until the server ends it.
///
/// A refused connection is a runtime error naming the URL; a rejected filter (HTTP 400) is a
/// [`UsageError`] carrying the server's message.
pub fn follow(args: &Args, out: &mut impl Write) -> anyhow::Result<()> {
    let url = args.url();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let response = agent
        .get(&url)
        .header("Accept", args.accept())
        .call()
        .with_context(|| format!("cannot reach weir serve at {url} (is it running? see --server)"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body.read_to_string().unwrap_or_default();
        let message = text.trim();
        if status == 400 {
            return Err(UsageError(format!("the server rejected the tail: {message}")).into());
        }
        anyhow::bail!("{url} answered HTTP {status}: {message}");
    }
    copy_lines(body.into_reader(), out).with_context(|| format!("reading the tail from {url}"))
}

/// Copies `body` to `out` a line at a time; `out` is flushed whenever no more input is waiting,
/// so each line shows as soon as it arrived even when `out` is a pipe, without a system call
/// per line when lines come in bursts.
fn copy_lines(body: impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 << 10, body);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return out.flush();
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        out.write_all(&line)?;
        if reader.buffer().is_empty() {
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::net::TcpListener;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("tail").chain(argv.iter().copied()))
            .expect("valid arguments")
            .args
    }

    fn parse_err(argv: &[&str]) -> clap::error::ErrorKind {
        Cli::try_parse_from(std::iter::once("tail").chain(argv.iter().copied()))
            .expect_err("invalid arguments")
            .kind()
    }

    #[test]
    fn defaults() {
        let a = parse(&[]);
        // WEIR_SERVER may be set in the environment running the tests.
        if std::env::var_os("WEIR_SERVER").is_none() {
            assert_eq!(a.server, DEFAULT_SERVER);
        }
        assert_eq!(a.lines, 0);
        assert_eq!(
            (a.app, a.host, a.ps, a.backend, a.status, a.slow),
            (None, None, None, None, None, None)
        );
        assert!(!a.json);
    }

    #[test]
    fn flag_server() {
        assert_eq!(
            parse(&["--server", "http://10.0.0.5:9514"]).server,
            "http://10.0.0.5:9514"
        );
    }

    #[test]
    fn flag_n() {
        assert_eq!(parse(&["-n", "50"]).lines, 50);
        assert_eq!(parse(&["--num", "7"]).lines, 7);
        assert_eq!(parse_err(&["-n", "-1"]), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(
            parse_err(&["-n", "many"]),
            clap::error::ErrorKind::ValueValidation
        );
    }

    #[test]
    fn flag_app() {
        assert_eq!(parse(&["--app", "web"]).app.as_deref(), Some("web"));
    }

    #[test]
    fn flag_host() {
        assert_eq!(parse(&["--host", "lb1"]).host.as_deref(), Some("lb1"));
    }

    #[test]
    fn flag_ps() {
        assert_eq!(parse(&["--ps", "web.1"]).ps.as_deref(), Some("web.1"));
    }

    #[test]
    fn flag_backend() {
        assert_eq!(parse(&["--backend", "be_app"]).backend.as_deref(), Some("be_app"));
    }

    #[test]
    fn flag_status() {
        assert_eq!(parse(&["--status", "5xx"]).status.as_deref(), Some("5xx"));
        assert_eq!(parse(&["--status", "503"]).status.as_deref(), Some("503"));
    }

    #[test]
    fn flag_level() {
        assert_eq!(parse(&["--level", "warn"]).level.as_deref(), Some("warn"));
        assert_eq!(parse(&["--level", "3"]).level.as_deref(), Some("3"));
        assert_eq!(
            parse_err(&["--level", "loud"]),
            clap::error::ErrorKind::ValueValidation
        );
    }

    #[test]
    fn flag_slow() {
        assert_eq!(parse(&["--slow", "250"]).slow, Some(250));
        assert_eq!(
            parse_err(&["--slow", "fast"]),
            clap::error::ErrorKind::ValueValidation
        );
        assert_eq!(parse_err(&["--slow=-5"]), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn flag_json() {
        let a = parse(&["--json"]);
        assert!(a.json);
        assert_eq!(a.accept(), "application/x-ndjson");
        assert_eq!(parse(&[]).accept(), "text/plain");
    }

    fn args(server: &str) -> Args {
        Args {
            server: server.to_owned(),
            lines: 0,
            app: None,
            host: None,
            ps: None,
            backend: None,
            status: None,
            slow: None,
            level: None,
            json: false,
        }
    }

    #[test]
    fn url_without_filters_asks_for_no_backlog() {
        assert_eq!(
            args("http://127.0.0.1:9514").url(),
            "http://127.0.0.1:9514/api/tail?n=0"
        );
        // A trailing slash or a path prefix (behind a proxy) is kept as given.
        assert_eq!(args("http://h:1/").url(), "http://h:1/api/tail?n=0");
        assert_eq!(args("http://h:1/weir").url(), "http://h:1/weir/api/tail?n=0");
    }

    #[test]
    fn url_carries_every_filter_in_order() {
        let a = Args {
            lines: 50,
            app: Some("web".into()),
            host: Some("lb1".into()),
            ps: Some("web.1".into()),
            backend: Some("be_app".into()),
            status: Some("5xx".into()),
            slow: Some(250),
            level: Some("warn".into()),
            ..args("http://127.0.0.1:9514")
        };
        assert_eq!(
            a.url(),
            "http://127.0.0.1:9514/api/tail?n=50&app=web&host=lb1&ps=web.1&backend=be_app&status=5xx&slow=250&level=warn"
        );
    }

    #[test]
    fn url_encodes_values() {
        let a = Args {
            app: Some("my app".into()),
            host: Some("a&b=c".into()),
            backend: Some("be/x+y?#%".into()),
            ps: Some("wéb~1".into()),
            ..args("http://h:1")
        };
        assert_eq!(
            a.url(),
            "http://h:1/api/tail?n=0&app=my%20app&host=a%26b%3Dc&ps=w%C3%A9b~1&backend=be%2Fx%2By%3F%23%25"
        );
    }

    /// A one-shot HTTP server on 127.0.0.1:0 that answers the first request with `response` and
    /// hands back the request it got.
    fn serve_once(response: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .expect("read timeout");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).expect("read request");
                assert!(n > 0, "client closed before sending its request");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(response).expect("write response");
            String::from_utf8(request).expect("ASCII request")
        });
        (format!("http://{addr}"), handle)
    }

    #[test]
    fn streams_chunked_lines_and_the_l11_notice() {
        let (server, handle) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\
              Connection: close\r\n\r\n\
              9\r\n{\"a\":1}\n\n\r\n\
              5\r\n{\"b\":\r\n\
              3\r\n2}\n\r\n\
              1c\r\n{\"error\":\"L11\",\"dropped\":3}\n\r\n\
              0\r\n\r\n",
        );
        let a = Args {
            json: true,
            app: Some("web".into()),
            lines: 5,
            ..args(&server)
        };
        let mut out = Vec::new();
        follow(&a, &mut out).expect("tail");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1}\n\n{\"b\":2}\n{\"error\":\"L11\",\"dropped\":3}\n"
        );
        let request = handle.join().unwrap();
        assert!(
            request.starts_with("GET /api/tail?n=5&app=web HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("accept: application/x-ndjson\r\n"),
            "{request}"
        );
    }

    #[test]
    fn text_mode_keeps_bytes_and_ends_a_last_unterminated_line() {
        let (server, handle) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n\
              one\nError L11 (tail buffer overflow): 2 messages dropped since 2026-11-22T01:22:06Z\nlast",
        );
        let mut out = Vec::new();
        follow(&args(&server), &mut out).expect("tail");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "one\nError L11 (tail buffer overflow): 2 messages dropped since 2026-11-22T01:22:06Z\nlast\n"
        );
        let request = handle.join().unwrap();
        assert!(
            request.to_ascii_lowercase().contains("accept: text/plain\r\n"),
            "{request}"
        );
    }

    #[test]
    fn bad_filter_is_a_usage_error_with_the_servers_message() {
        let (server, handle) = serve_once(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 28\r\n\
              Connection: close\r\n\r\nbad status filter \"6xx\": no\n",
        );
        let a = Args {
            status: Some("6xx".into()),
            ..args(&server)
        };
        let err = follow(&a, &mut Vec::new()).expect_err("400 is an error");
        let usage = err.downcast_ref::<UsageError>().expect("a usage error");
        assert_eq!(
            usage.0,
            "the server rejected the tail: bad status filter \"6xx\": no"
        );
        handle.join().unwrap();
    }

    #[test]
    fn other_statuses_are_runtime_errors() {
        let (server, handle) = serve_once(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\nConnection: close\r\n\r\nshutdown\n",
        );
        let err = follow(&args(&server), &mut Vec::new()).expect_err("503 is an error");
        assert!(err.downcast_ref::<UsageError>().is_none());
        let text = format!("{err:#}");
        assert!(text.contains("HTTP 503: shutdown"), "{text}");
        handle.join().unwrap();
    }

    #[test]
    fn connection_refused_names_the_url() {
        // Bound then dropped: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let err = follow(&args(&server), &mut Vec::new()).expect_err("nothing listens");
        assert!(err.downcast_ref::<UsageError>().is_none());
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("cannot reach weir serve at {server}/api/tail?n=0")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
}
