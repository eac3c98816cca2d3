//! Helpers for tests that run `weir serve` as a black box: finding (or building) the binary, a
//! running server on `127.0.0.1:0` ports with its addresses read from its stdout, `/metrics`
//! scrapes, `weir tail` children read on a thread, SIGTERM with a deadline, and reading the
//! spool's tables back.
//!
//! Included with `#[path]` by the test files that need it, next to `support.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
pub use weir_e2e::weir_bin;
use weir_e2e::{OutputWithin, PROCESS_TIMEOUT};

use arrow_array::{Array, BinaryArray, Int16Array, RecordBatch, StringArray};
use weir_store::Table;

/// A running `weir serve`; killed and reaped on drop unless [`WeirServe::stop`] ran.
pub struct WeirServe {
    child: Option<Child>,
    /// The UDP syslog address.
    pub udp: SocketAddr,
    /// The TCP syslog address.
    pub tcp: SocketAddr,
    /// The HTTP API address.
    pub http: SocketAddr,
    /// The spool folder.
    pub spool: PathBuf,
    /// Where stderr goes.
    stderr_path: PathBuf,
    /// Every stdout line so far, the startup lines included.
    stdout: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<std::thread::JoinHandle<()>>,
}

impl WeirServe {
    /// Starts `weir serve` on `127.0.0.1:0` for UDP, TCP and HTTP with its spool in `dir/spool`,
    /// `config` (TOML, may be empty) as its config file, and two pipeline workers. Returns once
    /// it printed its HTTP address.
    pub fn start(dir: &Path, config: &str) -> WeirServe {
        WeirServe::start_with(dir, config, &[])
    }

    /// [`WeirServe::start`] with more command-line arguments after the usual ones.
    pub fn start_with(dir: &Path, config: &str, args: &[&str]) -> WeirServe {
        WeirServe::start_command(dir, WeirServe::command(dir, config, args))
    }

    /// The command [`WeirServe::start_with`] runs (`weir serve` on `127.0.0.1:0` ports, its
    /// spool in `dir/spool`, `config` written to `dir/weir.toml`), for a test that sets more
    /// on it (an environment variable) or runs it to its end.
    pub fn command(dir: &Path, config: &str, args: &[&str]) -> Command {
        let config_path = dir.join("weir.toml");
        std::fs::write(&config_path, config).expect("write weir.toml");
        let mut cmd = Command::new(weir_bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args([
                "--udp",
                "127.0.0.1:0",
                "--tcp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ])
            .arg("--spool")
            .arg(dir.join("spool"))
            .args(["--node", "e2e", "--workers", "2"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `cmd` (from [`WeirServe::command`]) and returns once it printed its addresses.
    pub fn start_command(dir: &Path, mut cmd: Command) -> WeirServe {
        let spool = dir.join("spool");
        let stderr_path = dir.join("weir-serve.err");
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start weir serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || read_serve_stdout(stdout, lines, addr_tx))
        };
        let mut serve = WeirServe {
            child: Some(child),
            udp: SocketAddr::from(([0, 0, 0, 0], 0)),
            tcp: SocketAddr::from(([0, 0, 0, 0], 0)),
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
            spool,
            stderr_path,
            stdout: lines,
            stdout_reader: Some(reader),
        };
        match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok((udp, tcp, http)) => {
                serve.udp = udp;
                serve.tcp = tcp;
                serve.http = http;
            }
            Err(_) => panic!(
                "weir serve did not print its addresses\n--- stdout ---\n{}\n--- stderr ---\n{}",
                serve.stdout_text(),
                serve.stderr_text()
            ),
        }
        serve
    }

    /// The HTTP API's base URL, for `weir tail --server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What it printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// What it printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// `GET path` on the HTTP API: the status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path)
    }

    /// A `/metrics` scrape.
    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        Metrics::parse(&body)
    }

    /// Scrapes `/metrics` until `done` holds, or panics at the deadline with the last scrape.
    pub fn wait_metrics(
        &self,
        deadline: Instant,
        what: &str,
        mut done: impl FnMut(&Metrics) -> bool,
    ) -> Metrics {
        loop {
            let m = self.metrics();
            if done(&m) {
                return m;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; last /metrics:\n{}", m.text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` tail sessions are open (a tail child has subscribed).
    pub fn wait_tail_sessions(&self, n: u64, deadline: Instant) {
        self.wait_metrics(deadline, &format!("{n} open tail sessions"), |m| {
            m.get("weir_tail_sessions") == n
        });
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("weir serve is running");
        child.kill().expect("kill -9 weir serve");
        child.wait().expect("reap weir serve");
        if let Some(r) = self.stdout_reader.take() {
            let _ = r.join();
        }
    }

    /// Waits until the process ends (after a signal, or by itself at a crash test's fail
    /// point), returning how; panics with its output at `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        let mut child = self.child.take().expect("weir serve is running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                if let Some(r) = self.stdout_reader.take() {
                    let _ = r.join();
                }
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "weir serve did not exit in time\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit (status 0), panicking with its output when it
    /// exits otherwise or not by `deadline`. Returns everything printed on stdout.
    pub fn stop(&mut self, deadline: Instant) -> String {
        self.terminate();
        let status = self.wait_exit(deadline);
        let stdout = self.stdout_text();
        assert!(
            status.success(),
            "weir serve exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            self.stderr_text()
        );
        stdout
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }
}

impl Drop for WeirServe {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads `weir serve`'s stdout into `lines`, sending the three addresses once the `HTTP API on`
/// line has come.
fn read_serve_stdout(
    stdout: ChildStdout,
    lines: Arc<Mutex<Vec<String>>>,
    addrs: mpsc::Sender<(SocketAddr, SocketAddr, SocketAddr)>,
) {
    let (mut udp, mut tcp) = (None, None);
    let mut sent = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let word_after = |prefix: &str| -> Option<SocketAddr> {
            let rest = line.strip_prefix(prefix)?;
            let word = rest.split_whitespace().next()?;
            word.trim_start_matches("http://").parse().ok()
        };
        if let Some(a) = word_after("weir: UDP syslog on ") {
            udp.get_or_insert(a);
        }
        if let Some(a) = word_after("weir: TCP syslog on ") {
            tcp.get_or_insert(a);
        }
        if let Some(http) = word_after("weir: HTTP API on ") {
            if let (Some(u), Some(t), false) = (udp, tcp, sent) {
                let _ = addrs.send((u, t, http));
                sent = true;
            }
        }
        lines.lock().unwrap().push(line);
    }
}

/// A field of `/proc/PID/status` in KiB: `VmRSS` (resident now) or `VmHWM` (the peak).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
}

/// `GET path` over HTTP/1.0 (so the body ends when the connection does): status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut response = Vec::new();
    s.read_to_end(&mut response).expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP response: {head}"));
    (status, body.to_owned())
}

/// A parsed `/metrics` scrape: every sample by its name with labels as printed
/// (`weir_received_total{transport="udp"}`).
pub struct Metrics {
    /// The samples.
    pub samples: BTreeMap<String, f64>,
    /// The scrape as received.
    pub text: String,
}

impl Metrics {
    /// Parses the Prometheus text format (comments skipped).
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// One sample, by its full name (labels included); 0 when absent.
    pub fn get(&self, name: &str) -> u64 {
        self.samples.get(name).copied().unwrap_or(0.0) as u64
    }

    /// The sum of every sample of a metric, over all its labels.
    pub fn sum(&self, metric: &str) -> u64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.as_str() == metric || k.starts_with(&format!("{metric}{{")))
            .map(|(_, v)| *v as u64)
            .sum()
    }

    /// The sum of the samples of a metric whose labels include every one of `labels`
    /// (`stage="receive"`), whatever order the exporter prints them in.
    pub fn sum_where(&self, metric: &str, labels: &[&str]) -> u64 {
        self.samples
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(metric)
                    .and_then(|rest| rest.strip_prefix('{'))
                    .is_some_and(|rest| labels.iter().all(|l| rest.contains(l)))
            })
            .map(|(_, v)| *v as u64)
            .sum()
    }

    /// Every sample of a metric with a non-zero value, by its labels.
    pub fn nonzero(&self, metric: &str) -> BTreeMap<String, u64> {
        self.samples
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(metric)?.to_owned(), *v as u64)))
            .filter(|(k, v)| (k.is_empty() || k.starts_with('{')) && *v > 0)
            .collect()
    }
}

/// A `weir tail` child whose stdout lines are collected by a thread.
pub struct TailChild {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    resume: Option<mpsc::Sender<()>>,
    stderr_path: PathBuf,
}

impl TailChild {
    /// Starts `weir tail --server URL ARGS...`; its lines are read as they come.
    pub fn spawn(dir: &Path, name: &str, server: &str, args: &[&str]) -> TailChild {
        TailChild::spawn_with(dir, name, server, args, false)
    }

    /// Like [`TailChild::spawn`], but nothing is read from its stdout until
    /// [`TailChild::resume`]: once the pipe is full the tail stops reading the server, which
    /// is a slow reader.
    pub fn spawn_paused(dir: &Path, name: &str, server: &str, args: &[&str]) -> TailChild {
        TailChild::spawn_with(dir, name, server, args, true)
    }

    fn spawn_with(dir: &Path, name: &str, server: &str, args: &[&str], paused: bool) -> TailChild {
        let stderr_path = dir.join(format!("{name}.err"));
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        let mut child = Command::new(weir_bin())
            .args(["tail", "--server", server])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start weir tail");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<()>();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                if paused {
                    let _ = rx.recv();
                }
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        TailChild {
            child,
            lines,
            resume: paused.then_some(tx),
            stderr_path,
        }
    }

    /// Starts reading a paused tail.
    pub fn resume(&mut self) {
        if let Some(tx) = self.resume.take() {
            let _ = tx.send(());
        }
    }

    /// The lines read so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `done(lines)` holds; false at the deadline.
    pub fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&[String]) -> bool) -> bool {
        loop {
            if done(&self.lines.lock().unwrap()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The NDJSON lines read so far, parsed (a line that is not JSON fails the test).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("tail line is not JSON ({e}): {l}")))
            .collect()
    }

    /// What it printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for the exit (the server ends tails when it stops); kills it past the deadline.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `weir tail` to end on its own (its server stopped) with status 0.
    pub fn assert_exits_ok(&mut self, deadline: Instant) {
        let exit = self
            .wait_exit(deadline)
            .expect("weir tail exits when the server stops");
        assert!(
            exit.success(),
            "weir tail exited with {exit}: {}",
            self.stderr_text()
        );
    }
}

impl Drop for TailChild {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs util-linux `logger` with `args`; it must succeed.
pub fn run_logger(logger: &Path, args: &[&str]) {
    let out = Command::new(logger)
        .args(args)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running logger");
    assert!(
        out.status.success(),
        "logger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every record batch of a spool table.
pub fn read_table(spool: &Path, table: Table) -> Vec<RecordBatch> {
    weir_store::read_table(spool, table).unwrap_or_else(|e| panic!("reading {table}: {e}"))
}

/// Rows of a table.
pub fn row_count(spool: &Path, table: Table) -> usize {
    read_table(spool, table).iter().map(RecordBatch::num_rows).sum()
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

/// A string column of a table, every row, in file order.
pub fn strings(spool: &Path, table: Table, name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in read_table(spool, table) {
        let c = column::<StringArray>(&b, name);
        out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i).to_owned())));
    }
    out
}

/// An `Int16` column (the `status` of `requests`).
pub fn int16s(spool: &Path, table: Table, name: &str) -> Vec<Option<i16>> {
    let mut out = Vec::new();
    for b in read_table(spool, table) {
        let c = column::<Int16Array>(&b, name);
        out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))));
    }
    out
}

/// The `rejects` table as (reason, raw) pairs.
pub fn rejects(spool: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for b in read_table(spool, Table::Rejects) {
        let reason = column::<StringArray>(&b, "reason");
        let raw = column::<BinaryArray>(&b, "raw");
        out.extend((0..b.num_rows()).map(|i| (reason.value(i).to_owned(), raw.value(i).to_vec())));
    }
    out
}

/// Sends `count` lines of `weir gen --kind mix` over one TCP connection.
pub fn send_mix(tcp: SocketAddr, seed: u64, count: u64) {
    let out = Command::new(weir_bin())
        .args(["gen", "--kind", "mix", "--seed", &seed.to_string()])
        .args(["--count", &count.to_string()])
        .arg("--to")
        .arg(format!("tcp://{tcp}"))
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("weir gen");
    assert!(
        out.status.success(),
        "weir gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows of the line tables as pyarrow.dataset counts them.
pub fn pyarrow_counts(spool: &Path, want: u64) {
    let here = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .is_ok_and(|o| o.status.success());
    if !here {
        crate::support::skip_unless_ci("python3 with pyarrow");
        return;
    }
    let script = "import sys, pyarrow.dataset as ds\n\
        print(sum(ds.dataset(f'{sys.argv[1]}/{t}', format='parquet', partitioning='hive').count_rows()\n\
                  for t in ('requests', 'tcp', 'app', 'rejects') if __import__('os').path.isdir(f'{sys.argv[1]}/{t}')))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(spool)
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(n, want, "rows pyarrow reads");
}
