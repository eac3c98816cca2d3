//! `weir.toml`: every key optional, defaults in one place ([`Config::default`]), documented for
//! users in [`DEFAULT_TOML`], which `weir config default` prints and a test parses back.
//!
//! Each stage owns its section (`IngestConfig`, `RouterConfig`, ...); `serve` turns them into
//! runtime types. Unknown keys are errors that name the key, so a typo never silently
//! falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

use crate::UsageError;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Node id, the first part of every spool file name.
    pub node: String,
    /// Receivers.
    pub ingest: IngestConfig,
    /// Per-source buffers and tail sessions.
    pub router: RouterSection,
    /// Tumbling windows of histograms and counters.
    pub aggregate: AggregateConfig,
    /// The Parquet spool.
    pub store: StoreConfig,
    /// The HTTP API.
    pub http: HttpConfig,
    /// Drains: apps whose lines are forwarded to a syslog server or an HTTPS endpoint
    /// (`[[drain]]`).
    #[serde(rename = "drain")]
    pub drains: Vec<DrainConfig>,
}

/// `[[drain]]`: forward one app's lines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    /// The app, as `weir tail --app` matches it.
    pub app: String,
    /// `syslog+tcp://HOST:PORT` (RFC 5424, octet-counted), `syslog+udp://HOST:PORT`, or
    /// `https://[USER:PASSWORD@]HOST[:PORT]/PATH` (`http://` too): batches of RFC 5424 messages
    /// POSTed as `application/logplex-1`, with basic auth from the userinfo.
    pub url: String,
    /// Lines held while the server is unreachable, besides the write or batch being retried
    /// (up to 256 lines over TCP, 500 over HTTPS); past that the oldest are dropped, and counted
    /// in band (`Error L10`) when it is back.
    #[serde(default = "default_drain_buffer")]
    pub buffer: usize,
    /// HTTPS drains: a PEM file of the CA certificates to trust instead of the bundled Mozilla
    /// roots (a private CA, or a test's self-signed one). Verification stays on.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_drain_buffer() -> usize {
    1024
}

/// `[aggregate]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateConfig {
    /// Length of the tumbling windows.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
    /// How long a window stays open after the latest accept date passed its end.
    #[serde(deserialize_with = "de_duration")]
    pub lateness: Duration,
    /// Significant figures of the histograms (1..=5).
    pub sigfig: u8,
    /// Most series (frontend, backend, server, status class) open at once; more are counted in
    /// an overflow series.
    pub max_series: usize,
}

/// `[ingest]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// UDP syslog addresses.
    pub udp: Vec<SocketAddr>,
    /// TCP syslog addresses (LF or RFC 6587 octet-counted framing, detected per frame).
    pub tcp: Vec<SocketAddr>,
    /// Longest accepted line or frame, in bytes; longer ones are rejects (`too_long`).
    pub max_line: usize,
    /// Memory the batches waiting for the pipeline may hold; past it UDP batches are dropped
    /// (counted) and TCP connections wait.
    #[serde(deserialize_with = "de_bytes")]
    pub queue_bytes: u64,
    /// TCP connections open at once; more are closed as they come, and counted.
    pub max_tcp_connections: usize,
    /// A TCP connection that sends nothing for this long is closed, and counted.
    #[serde(deserialize_with = "de_duration")]
    pub tcp_idle_timeout: Duration,
    /// SO_RCVBUF asked for on UDP sockets.
    #[serde(deserialize_with = "de_bytes")]
    pub rcvbuf: u64,
    /// UDP sockets per address (SO_REUSEPORT), each with its own receive thread.
    pub udp_sockets: usize,
    /// The zone of HAProxy's accept dates: UTC, a fixed offset such as "+02:00", or an IANA
    /// zone such as "Europe/Berlin".
    pub haproxy_timezone: String,
    /// HAProxy log-format of the lines (HAProxy's syntax), for frontends without their own.
    pub log_format: Option<String>,
    /// haproxy.cfg whose `log-format` / `option *log` lines give each frontend's format.
    pub haproxy_config: Option<PathBuf>,
}

/// `[router]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterSection {
    /// Lines kept per source, served as the backlog of `tail -n`.
    pub recent_lines: usize,
    /// Capacity of each tail session's queue; when full the oldest line is dropped.
    pub tail_queue: usize,
    /// Most sources tracked at once; the least recently active is evicted.
    pub max_sources: usize,
    /// Memory the recent lines of all sources may hold together; past it the least recently
    /// active sources lose their oldest lines first.
    #[serde(deserialize_with = "de_bytes")]
    pub max_bytes: u64,
    /// Memory each tail session's queue may hold; past it the oldest line is dropped.
    #[serde(deserialize_with = "de_bytes")]
    pub tail_queue_bytes: u64,
    /// Tail sessions open at once (drains included); more are refused with HTTP 503, and
    /// counted.
    pub max_tails: usize,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The spool folder.
    pub spool: PathBuf,
    /// zstd level of the Parquet files (1..=22).
    pub zstd_level: i32,
    /// A file is published when it reaches this size.
    #[serde(deserialize_with = "de_bytes")]
    pub rotate_size: u64,
    /// ... or when its oldest row is this old.
    #[serde(deserialize_with = "de_duration")]
    pub rotate_age: Duration,
    /// Append every accepted line to the write-ahead log in `<spool>/wal/` first.
    pub wal: bool,
    /// The WAL reaches the disk (fdatasync) at least this often; `0s` syncs every batch.
    #[serde(deserialize_with = "de_duration")]
    pub fsync_interval: Duration,
    /// Bound on the WAL on disk; past it the oldest segments are shed, counted and logged.
    #[serde(deserialize_with = "de_bytes")]
    pub wal_max_bytes: u64,
    /// A WAL segment is closed and a new one opened past this size.
    #[serde(deserialize_with = "de_bytes")]
    pub wal_segment_size: u64,
    /// Memory the pipeline workers' Arrow builders hold together (each worker gets its share)
    /// before rows become a row group.
    #[serde(deserialize_with = "de_bytes")]
    pub build_buffer: u64,
    /// Memory per pipeline worker (the workers share their files, and the sum) for the rows of
    /// unpublished files, so that a file that fails (a full disk) is written again from
    /// memory; past it the file holding the most is published early.
    #[serde(deserialize_with = "de_bytes")]
    pub retry_buffer: u64,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP API (`/metrics`, `/api/tail`, `/api/sources`, `/healthz`).
    pub listen: SocketAddr,
    /// Bounds of the timer histograms on `/metrics`, in milliseconds.
    pub buckets_ms: Vec<u64>,
    /// The most (frontend, backend, server) label sets of the traffic metrics on `/metrics`;
    /// the requests of more are counted under `(overflow)`. The live l2met series have a bound
    /// of the same size.
    pub max_series: usize,
}

const DEFAULT_SYSLOG: &str = "127.0.0.1:5514";

impl Default for Config {
    fn default() -> Self {
        Config {
            node: crate::default_node(),
            ingest: IngestConfig::default(),
            router: RouterSection::default(),
            aggregate: AggregateConfig::default(),
            store: StoreConfig::default(),
            http: HttpConfig::default(),
            drains: Vec::new(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        let addr: SocketAddr = DEFAULT_SYSLOG.parse().expect("valid default address");
        IngestConfig {
            udp: vec![addr],
            tcp: vec![addr],
            max_line: 65536,
            queue_bytes: 64 << 20,
            max_tcp_connections: 4096,
            tcp_idle_timeout: Duration::from_secs(3600),
            rcvbuf: 32 << 20,
            udp_sockets: 1,
            haproxy_timezone: "UTC".into(),
            log_format: None,
            haproxy_config: None,
        }
    }
}

impl Default for RouterSection {
    fn default() -> Self {
        RouterSection {
            recent_lines: 1500,
            tail_queue: 1024,
            max_sources: 10_000,
            max_bytes: 256 << 20,
            tail_queue_bytes: 512 << 10,
            max_tails: 256,
        }
    }
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            window: Duration::from_secs(10),
            lateness: Duration::from_secs(5),
            sigfig: 2,
            max_series: 100_000,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            spool: PathBuf::from("./weir-spool"),
            zstd_level: 3,
            rotate_size: 128 << 20,
            rotate_age: Duration::from_secs(300),
            wal: true,
            fsync_interval: Duration::from_secs(1),
            wal_max_bytes: 4 << 30,
            wal_segment_size: 64 << 20,
            build_buffer: 128 << 20,
            retry_buffer: 16 << 20,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9514".parse().expect("valid default address"),
            buckets_ms: vec![5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
            max_series: 2_000,
        }
    }
}

/// What `weir config default` prints: every key with its default and what it does.
pub const DEFAULT_TOML: &str = r#"# weir.toml: every key is optional; these are the defaults.

# Node id: the first part of every spool file name (default: the host name).
# node = "lb1"

[ingest]
# UDP syslog listeners. HAProxy: `log 127.0.0.1:5514 local0`.
udp = ["127.0.0.1:5514"]
# TCP syslog listeners; LF-terminated and RFC 6587 octet-counted frames are told apart per frame.
# HAProxy: `log tcp@127.0.0.1:5514 local0`.
tcp = ["127.0.0.1:5514"]
# Longest line or frame in bytes; a longer one is kept as a reject (too_long).
max_line = 65536
# Memory the received batches waiting for the pipeline workers may hold. Past it a UDP batch is
# dropped (weir_dropped_total{stage="receive"}) and TCP connections wait, which slows senders.
queue_bytes = "64MiB"
# TCP connections open at once; past it a new one is closed at once (weir_tcp_refused_total).
max_tcp_connections = 4096
# A TCP connection that sends nothing for this long is closed (weir_tcp_timed_out_total). Long
# by default: a sender on a quiet link should not lose its first line to a closed connection.
tcp_idle_timeout = "1h"
# Receive buffer asked of the kernel for each UDP socket (capped by net.core.rmem_max).
rcvbuf = "32MiB"
# UDP sockets per address, bound with SO_REUSEPORT, each read by its own thread.
udp_sockets = 1
# The zone HAProxy writes its accept dates in: "UTC", a fixed offset such as "+02:00", or an
# IANA zone such as "Europe/Berlin" (daylight saving applied; the repeated autumn hour is
# settled by the syslog header's offset, else by the line before).
haproxy_timezone = "UTC"
# HAProxy's own log-format of the lines, when not a built-in layout: the default for frontends
# that haproxy_config does not name (the string after `log-format` in haproxy.cfg).
# log_format = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ID %{+Q}r"
# haproxy.cfg to read each frontend's format from: every log-format, option httplog [clf],
# option httpslog and option tcplog, with defaults sections applied as HAProxy applies them.
# haproxy_config = "/etc/haproxy/haproxy.cfg"

[router]
# Lines kept per source (host, app, process) for `weir tail -n`.
recent_lines = 1500
# Memory the kept lines of all sources hold together, counted as their buffers hold it from the
# allocator: a line's length plus 72 bytes, and up to a quarter more as room to grow. Past it the
# least recently active sources lose their oldest lines first, each keeping its newest 10 while
# those fit (weir_router_shed_lines_total; "shed" per source in /api/sources). 256MiB keeps
# 650,000 to 830,000 lines of 250 bytes: the 1,500 of about 500 busy sources, or 65 or more
# each of 10,000. A small box (1GiB) does well with it; give a busy big one more.
max_bytes = "256MiB"
# Queue of each tail session; when a reader falls behind the oldest line is dropped and the
# reader is told: "Error L11 (tail buffer overflow): N messages dropped since T".
tail_queue = 1024
# ...and the memory each tail queue may hold, the same way (1,024 lines of 400 bytes fit).
tail_queue_bytes = "512KiB"
# Sources tracked at once; past it the least recently active one is forgotten.
max_sources = 10000
# Tail sessions (and drains) open at once; past it /api/tail answers 503 (weir_tails_refused_total).
max_tails = 256

[aggregate]
# Tumbling windows (by accept date) of HDR histograms and counters per frontend, backend, server
# and status class: the `windows` table, /metrics, /api/windows, `weir query` and `weir top`.
window = "10s"
# A window is closed this long after the latest accept date (or the clock) passed its end; a
# request later than that is still counted, in another partial row of its window.
lateness = "5s"
# Significant figures of the histograms: 2 is within 1 %, 3 within 0.1 % (more memory).
sigfig = 2
# Most series open at once; past it new series are counted in an "(overflow)" series.
max_series = 100000

[store]
# The Parquet spool folder (Hive-partitioned: <table>/date=YYYY-MM-DD/hour=HH/).
spool = "./weir-spool"
# zstd level of the Parquet files (1..=22).
zstd_level = 3
# A Parquet file is published when it reaches this size...
rotate_size = "128MiB"
# ...or when its oldest row is this old.
rotate_age = "5m"
# The write-ahead log (<spool>/wal/): every accepted line is appended to it before it counts,
# and replayed into Parquet at the next start if weir was killed, so a crash loses nothing.
wal = true
# The WAL reaches the disk this often: a power cut loses at most this much ("0s": every batch).
fsync_interval = "1s"
# Bound on the WAL on disk; past it the oldest segments, not yet published, are deleted (counted
# in weir_wal_shed_lines_total and logged): those lines are still written, but a crash loses them.
# While the disk is full no line is appended to the WAL (weir_wal_unlogged_lines_total counts
# them); they are kept in memory and written to Parquet once space returns.
wal_max_bytes = "4GiB"
# A WAL segment is closed and a new one opened past this size; a closed segment is deleted once
# every Parquet file made from it is published.
wal_segment_size = "64MiB"
# Memory the pipeline workers' Arrow builders hold together before their rows become a row group
# (each worker gets an equal share). Rows are weighed as their line plus 128 bytes, scaled per
# table by what its builders really held at a large flush; a partition is written as a row
# group at 131,072 rows or when its worker's share is full, largest first.
build_buffer = "128MiB"
# The rows of unpublished Parquet files are kept in memory up to this much per pipeline worker
# (the workers share their files, and the sum), so that a file that fails on a full disk is
# written again from memory once space returns, and no row is lost. Rows already written are
# kept as their compressed row groups, a tenth or less of their size in Arrow, and so are the
# rows held while the disk is full. Past it the file holding the most is published early
# (smaller files at high rates); while the disk stays full, the oldest held rows past it are
# dropped (counted in weir_dropped_total{stage="spool"}).
retry_buffer = "16MiB"

[http]
# The HTTP API: /metrics, /api/windows, /api/tail, /api/sources, /healthz.
listen = "127.0.0.1:9514"
# Bucket bounds (ms) of the timer histograms on /metrics.
buckets_ms = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
# The most (frontend, backend, server) label sets of the traffic metrics on /metrics (each has a
# histogram per timer); requests of more are counted under "(overflow)". Windows, the spool and
# weir query keep every series. The live l2met series (weir_l2met_*) are bounded by the same
# number; values of more are counted in weir_l2met_overflow_total.
max_series = 2000

# Drains forward one app's lines (as `weir tail --app` matches it) as RFC 5424: to a syslog server
# as octet-counted frames over TCP (syslog+tcp://) or one datagram a line (syslog+udp://), or to
# an HTTPS endpoint as Heroku's HTTPS drains do (https://, or http:// behind a TLS-terminating
# proxy): POSTs of application/logplex-1 batches (up to 500 messages or 1 MiB, sent at most 1 s
# after their first line) with Logplex-Msg-Count, Logplex-Frame-Id and Logplex-Drain-Token
# headers, basic auth from the URL's user:password, certificates checked against the bundled
# Mozilla roots or `ca_file`; a batch not answered 2xx is sent again with backoff.
# Each has its own buffer of `buffer` lines (besides the write or batch being retried): while its
# server is unreachable the oldest lines are dropped, and `Error L10 (output buffer overflow): N
# messages dropped since T` is sent first when it is back. Repeat the table for more drains.
# [[drain]]
# app = "web"
# url = "syslog+tcp://127.0.0.1:6514"
# buffer = 1024
# [[drain]]
# app = "web"
# url = "https://user:token@logs.example.com/drain"
# ca_file = "/etc/weir/private-ca.pem"
"#;

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).map_err(|e| UsageError(format!("{}: {e:#}", path.display())).into())
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Checks what the types alone do not.
    pub fn check(&self) -> anyhow::Result<()> {
        for d in &self.drains {
            let target = crate::serve::drain::Target::parse(&d.url).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                d.ca_file.is_none() || matches!(target, crate::serve::drain::Target::Http(_)),
                "drain for {:?}: ca_file applies to https:// drains only",
                d.app
            );
            anyhow::ensure!(d.buffer > 0, "drain for {:?}: buffer must be at least 1", d.app);
        }
        anyhow::ensure!(
            weir_ingest::Zone::parse(&self.ingest.haproxy_timezone).is_some(),
            "ingest.haproxy_timezone = {:?}: expected UTC, a fixed offset such as +02:00, or an \
             IANA zone such as Europe/Berlin",
            self.ingest.haproxy_timezone
        );
        if let Some(f) = &self.ingest.log_format {
            weir_ingest::haproxy::logformat::LogFormat::compile(f)
                .map_err(|e| anyhow::anyhow!("ingest.log_format: {e}"))?;
        }
        anyhow::ensure!(
            self.ingest.max_line >= 480,
            "ingest.max_line must be at least 480 bytes"
        );
        anyhow::ensure!(
            self.ingest.udp_sockets >= 1,
            "ingest.udp_sockets must be at least 1"
        );
        anyhow::ensure!(
            self.router.tail_queue >= 1,
            "router.tail_queue must be at least 1"
        );
        anyhow::ensure!(
            self.router.max_sources >= 1,
            "router.max_sources must be at least 1"
        );
        anyhow::ensure!(
            self.ingest.queue_bytes >= 1 << 20,
            "ingest.queue_bytes must be at least 1MiB"
        );
        anyhow::ensure!(
            self.store.build_buffer >= 1 << 20,
            "store.build_buffer must be at least 1MiB"
        );
        anyhow::ensure!(
            (1..=22).contains(&self.store.zstd_level),
            "store.zstd_level must be in 1..=22"
        );
        anyhow::ensure!(
            self.store.wal_segment_size >= 4096 && self.store.wal_max_bytes >= self.store.wal_segment_size,
            "store.wal_segment_size must be at least 4KiB and store.wal_max_bytes at least one segment"
        );
        anyhow::ensure!(!self.node.is_empty(), "node must not be empty");
        let w = self.aggregate.window;
        anyhow::ensure!(
            w.as_secs() >= 1 && w.subsec_nanos() == 0,
            "aggregate.window must be a whole number of seconds"
        );
        anyhow::ensure!(
            (1..=5).contains(&self.aggregate.sigfig),
            "aggregate.sigfig must be in 1..=5"
        );
        anyhow::ensure!(
            self.aggregate.max_series >= 1,
            "aggregate.max_series must be at least 1"
        );
        anyhow::ensure!(
            !self.http.buckets_ms.is_empty(),
            "http.buckets_ms must name at least one bound"
        );
        Ok(())
    }
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Int(n) => Ok(n),
        Size::Text(s) => s
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a size such as \"32MiB\": {e}"))),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration such as \"5m\": {e}")))
}

/// `weir config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print every key with its default value and what it does.
    Default,
    /// Check a config file; exit 2 with the file, line and key when it is wrong.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// Runs `weir config`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Default => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Action::Check { file } => {
            Config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_is_the_default_config() {
        let parsed = Config::parse(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Config::default());
    }

    /// The keys documented commented out (they have no default) parse when uncommented.
    #[test]
    fn commented_keys_of_the_default_parse() {
        let text = DEFAULT_TOML
            .replace("# log_format =", "log_format =")
            .replace("# haproxy_config =", "haproxy_config =")
            .replace("# [[drain]]", "[[drain]]");
        let text = ["app", "url", "buffer", "ca_file"]
            .iter()
            .fold(text, |t, k| t.replace(&format!("# {k} ="), &format!("{k} =")));
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.drains.len(), 2);
        assert_eq!(c.drains[0].ca_file, None);
        assert_eq!(c.drains[1].buffer, 1024);
        assert_eq!(
            c.drains[1].ca_file.as_deref(),
            Some(Path::new("/etc/weir/private-ca.pem"))
        );
        assert!(c.ingest.log_format.unwrap().starts_with("%ci:%cp [%tr]"));
        assert_eq!(
            c.ingest.haproxy_config,
            Some(PathBuf::from("/etc/haproxy/haproxy.cfg"))
        );
        let err = Config::parse("[ingest]\nlog_format = \"%ci %Zz\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("%Zz"), "{err:#}");
    }

    #[test]
    fn sizes_and_durations() {
        let c = Config::parse(
            "[ingest]\nrcvbuf = \"64MiB\"\n[store]\nrotate_age = \"90s\"\nrotate_size = 1000\n",
        )
        .unwrap();
        assert_eq!(c.ingest.rcvbuf, 64 << 20);
        assert_eq!(c.store.rotate_age, Duration::from_secs(90));
        assert_eq!(c.store.rotate_size, 1000);
        let c = Config::parse(
            "[store]\nwal = false\nfsync_interval = \"0s\"\nwal_max_bytes = \"1GiB\"\nwal_segment_size = \"8MiB\"\n",
        )
        .unwrap();
        assert!(!c.store.wal);
        assert_eq!(c.store.fsync_interval, Duration::ZERO);
        assert_eq!(
            (c.store.wal_max_bytes, c.store.wal_segment_size),
            (1 << 30, 8 << 20)
        );
        assert!(Config::parse("[store]\nwal_max_bytes = \"1MiB\"\n").is_err());
        let c = Config::parse("[store]\nretry_buffer = \"256MiB\"\n").unwrap();
        assert_eq!(c.store.retry_buffer, 256 << 20);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[router]\nrecent_line = 5\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("recent_line"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(Config::parse("[ingest]\nhaproxy_timezone = \"Mars/Olympus\"\n").is_err());
        assert!(Config::parse("[ingest]\nhaproxy_timezone = \"Europe/Berlin\"\n").is_ok());
        assert!(Config::parse("[store]\nzstd_level = 40\n").is_err());
        assert!(Config::parse("[store]\nrotate_age = \"soon\"\n").is_err());
        assert!(Config::parse("[ingest]\nudp = [\"nope\"]\n").is_err());
        let drain = |extra: &str| Config::parse(&format!("[[drain]]\napp = \"web\"\n{extra}"));
        assert!(drain("url = \"https://h/\"\nca_file = \"ca.pem\"\n").is_ok());
        let e = drain("url = \"syslog+tcp://h:6514\"\nca_file = \"ca.pem\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("https:// drains only"), "{e:#}");
        let e = drain("url = \"https://h/\"\nbuffer = 0\n").unwrap_err();
        assert!(format!("{e:#}").contains("at least 1"), "{e:#}");
        let e = drain("url = \"gopher://h:70\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("https://HOST"), "{e:#}");
    }

    #[test]
    fn samples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                n += 1;
            }
        }
        assert!(n > 0, "no sample configs in {}", dir.display());
    }
}
