//! Helpers for tests that run the real HAProxy on loopback: finding the binary, free ports, a
//! tiny HTTP backend, raw clients, the HAProxy process guard and the UDP log collector.
//!
//! Included with `#[path]` by the test files that need it; everything binds `127.0.0.1:0`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Size of the `/big` response body.
pub const BIG_BYTES: usize = 64 << 20;

/// The HAProxy binary: `$HAPROXY`, else `haproxy` on `PATH`, else `/usr/sbin/haproxy`.
pub fn find_haproxy() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HAPROXY") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    find_program("haproxy").or_else(|| {
        let p = Path::new("/usr/sbin/haproxy");
        p.is_file().then(|| p.to_path_buf())
    })
}

/// A program on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A prerequisite is missing: fail under CI (env `CI` set), else say so and let the test return.
/// Returns `true` when the caller should skip.
pub fn skip_unless_ci(what: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required when CI is set");
    }
    eprintln!("skipping: {what} is not available");
    true
}

/// A loopback port that was free a moment ago (bind to 0, read, drop). Also a closed port.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Starts the test HTTP server on `127.0.0.1:0`; it answers one request per connection and
/// closes: `/missing` 404, `/moved` 302 (no Content-Type), `/slow` never answers (it waits
/// until HAProxy's `timeout server` closes the connection, so no clock of the test's decides),
/// `/big` 200 with [`BIG_BYTES`] of body, anything else 200 `text/html`.
pub fn spawn_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                // The peer may go away at any point (timeouts, aborts): that is the point.
                let _ = answer(conn);
            });
        }
    });
    addr
}

fn answer(mut conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let reply = |status: &str, headers: &str, body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    match path {
        "/missing" => conn.write_all(&reply(
            "404 Not Found",
            "Content-Type: text/html; charset=utf-8\r\n",
            b"<html>not found</html>",
        ))?,
        "/moved" => conn.write_all(&reply("302 Found", "Location: /index.html\r\n", b""))?,
        "/slow" => {
            // Read until HAProxy gives up on us and closes (or the read timeout above ends it).
            while conn.read(&mut chunk)? > 0 {}
        }
        "/big" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \
                 {BIG_BYTES}\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(head.as_bytes())?;
            let block = vec![b'x'; 64 << 10];
            for _ in 0..BIG_BYTES / block.len() {
                conn.write_all(&block)?;
            }
        }
        _ => conn.write_all(&reply(
            "200 OK",
            "Content-Type: text/html\r\n",
            b"<html>hello</html>",
        ))?,
    }
    conn.shutdown(Shutdown::Write)?;
    // Drain what the peer still sends so that closing does not reset the connection.
    let _ = conn.read(&mut chunk);
    Ok(())
}

/// Sends `request` to `127.0.0.1:port` and reads until the server closes. Returns the client's
/// local port (the `%cp` HAProxy logs) and the response bytes.
pub fn exchange(port: u16, request: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let local = s.local_addr()?.port();
    s.write_all(request)?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    Ok((local, response))
}

/// Requests `path` (a large response), reads `keep` bytes and closes with unread data pending,
/// which resets the connection: HAProxy logs a client abort during the data phase (`CD--`).
pub fn abort_download(port: u16, request: &[u8], keep: usize) -> io::Result<(u16, usize)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let local = s.local_addr()?.port();
    s.write_all(request)?;
    let mut buf = vec![0u8; 16 << 10];
    let mut got = 0;
    while got < keep {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    drop(s);
    Ok((local, got))
}

/// A running HAProxy; killed and reaped on drop.
pub struct Haproxy {
    child: Child,
}

impl Haproxy {
    /// Runs `haproxy -db -f cfg` in the foreground, local time = UTC (accept dates are local
    /// time without a zone), stdout and stderr into `dir/haproxy.out`.
    pub fn start(bin: &Path, cfg: &Path, dir: &Path) -> io::Result<Haproxy> {
        let out = std::fs::File::create(dir.join("haproxy.out"))?;
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(cfg)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Haproxy { child })
    }

    /// The process id (HAProxy's syslog `procid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `port` accepts a connection, failing early if HAProxy exits.
    pub fn wait_ready(&mut self, port: u16, deadline: Instant) -> Result<(), String> {
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("haproxy exited: {status}"));
            }
            if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("haproxy did not start listening in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UDP socket HAProxy logs to, and every datagram received so far.
pub struct LogCollector {
    socket: UdpSocket,
    /// The datagrams, in arrival order.
    pub datagrams: Vec<Vec<u8>>,
}

impl LogCollector {
    /// Binds `127.0.0.1:0`.
    pub fn bind() -> io::Result<LogCollector> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(LogCollector {
            socket,
            datagrams: Vec::new(),
        })
    }

    /// The port to put in HAProxy's `log` line.
    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("udp local addr").port()
    }

    /// Receives datagrams until `done(datagrams)` holds or the deadline passes; returns `done`'s
    /// last answer.
    pub fn collect_until(&mut self, deadline: Instant, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> bool {
        let mut buf = vec![0u8; 65_536];
        loop {
            if done(&self.datagrams) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            match self.socket.recv(&mut buf) {
                Ok(n) => self.datagrams.push(buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("receiving logs: {e}"),
            }
        }
    }

    /// The first datagram containing `needle`.
    pub fn find(&self, needle: &str) -> Option<&[u8]> {
        find_in(&self.datagrams, needle)
    }
}

/// The first datagram containing `needle`.
pub fn find_in<'a>(datagrams: &'a [Vec<u8>], needle: &str) -> Option<&'a [u8]> {
    datagrams
        .iter()
        .find(|d| d.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(Vec::as_slice)
}

/// The frontends of a running `live.cfg`: their ports.
pub struct LivePorts {
    /// `fe_http`.
    pub http: u16,
    /// `fe_logasap`.
    pub logasap: u16,
    /// `fe_tcp`.
    pub tcp: u16,
}

/// Starts HAProxy in `dir` on `live.cfg`: logging to UDP `log_port`, proxying to `backend`,
/// with `https_frontend` (a filled `https.cfg`, or nothing) spliced in. Returns once it
/// listens; panics with its output and config if it does not by `deadline`.
pub fn start_live(
    bin: &Path,
    dir: &Path,
    log_port: u16,
    backend: SocketAddr,
    https_frontend: &str,
    deadline: Instant,
) -> (Haproxy, LivePorts) {
    let [probe, http, logasap, tcp, dead, refused] = [(); 6].map(|_| free_port());
    let config = include_str!("live.cfg")
        .replace("{{LOG_PORT}}", &log_port.to_string())
        .replace("{{PROBE_PORT}}", &probe.to_string())
        .replace("{{HTTP_PORT}}", &http.to_string())
        .replace("{{LOGASAP_PORT}}", &logasap.to_string())
        .replace("{{TCP_PORT}}", &tcp.to_string())
        .replace("{{HTTPS_FRONTEND}}", https_frontend)
        .replace("{{APP_ADDR}}", &backend.to_string())
        .replace("{{DEAD_PORT}}", &dead.to_string())
        .replace("{{REFUSED_PORT}}", &refused.to_string());
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, &config).expect("write haproxy.cfg");
    let mut proxy = Haproxy::start(bin, &cfg_path, dir).expect("start haproxy");
    if let Err(e) = proxy.wait_ready(probe, deadline) {
        let out = std::fs::read_to_string(dir.join("haproxy.out")).unwrap_or_default();
        panic!("{e}\n--- haproxy output ---\n{out}\n--- config ---\n{config}");
    }
    (proxy, LivePorts { http, logasap, tcp })
}
