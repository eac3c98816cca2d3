//! weir's own telemetry for `/metrics`: every counter is registered once, here, under a name
//! from [`Name`]; the hot path adds to pre-resolved handles (one per reject reason, per table),
//! never looks a label up. Counters that other crates keep as atomics (receivers, router) are
//! copied in when `/metrics` is scraped.

use std::sync::atomic::Ordering;

use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use weir_aggregate::exposition::{status_class_names, timer_names, Exposition};
use weir_aggregate::l2met::{L2metLive, L2MET_QUANTILES};
use weir_ingest::listen::ReceiverCounters;
use weir_ingest::router::Router;
use weir_model::{MetricKind, RejectReason};
use weir_store::Table;

/// Every metric weir exports, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// Messages received, by transport.
    Received,
    /// Bytes received, by transport.
    ReceivedBytes,
    /// `recvmmsg` calls that returned data.
    UdpBatches,
    /// Lines parsed into a table other than rejects, by table.
    Accepted,
    /// Lines rejected, by reason.
    Rejected,
    /// Lines lost, by stage and reason.
    Dropped,
    /// Rows handed to the spool writer, by table.
    SpoolRows,
    /// Parquet files published.
    SpoolFiles,
    /// Bytes of the Parquet files published.
    SpoolBytes,
    /// Spool write failures.
    SpoolErrors,
    /// Batches waiting for the pipeline.
    QueueDepth,
    /// Memory of the batches waiting for the pipeline.
    QueueBytes,
    /// TCP connections accepted / open.
    TcpConnections,
    /// TCP connections open now.
    TcpOpen,
    /// TCP connections closed at once past `max_tcp_connections`.
    TcpRefused,
    /// TCP connections closed after `tcp_idle_timeout` of silence.
    TcpTimedOut,
    /// Tail requests refused past `max_tails`.
    TailsRefused,
    /// Router sources and sessions.
    RouterSources,
    /// Open tail sessions.
    TailSessions,
    /// Sources evicted from the router.
    SourcesEvicted,
    /// Lines shed from the recent rings to stay within `router.max_bytes`.
    RouterShedLines,
    /// Memory the recent rings hold, as counted against `router.max_bytes`.
    RouterRecentBytes,
    /// Per-source lines.
    SourceLines,
    /// Per-source lines dropped from tails.
    SourceDrops,
    /// The kernel's UDP counters.
    KernelUdp,
    /// Bytes appended to the WAL.
    WalBytes,
    /// WAL fsyncs.
    WalSyncs,
    /// WAL segments deleted once their rows were published.
    WalReleased,
    /// Lines of WAL segments shed over `wal_max_bytes`.
    WalShedLines,
    /// WAL write, sync or delete failures.
    WalErrors,
    /// Lines spooled without a WAL frame because the append failed.
    WalUnlogged,
    /// Lines read back from the WAL at start, by outcome.
    WalReplayed,
    /// Bytes of WAL segments on disk, per stream.
    WalDiskBytes,
    /// Torn or corrupt WAL frames found at start.
    WalTornFrames,
    /// Bytes of WAL segments lost to torn or corrupt frames.
    WalTornBytes,
    /// Whether the disk breaker is open (1) or closed (0).
    DiskBreakerOpen,
    /// Times the disk breaker opened.
    DiskBreakerOpened,
    /// Rows in memory not yet in a published file.
    SpoolHeldRows,
    /// `measure#`/`count#`/`sample#` pairs that were not valid metrics.
    L2metInvalid,
}

impl Name {
    /// The exported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Received => "weir_received_total",
            Name::ReceivedBytes => "weir_received_bytes_total",
            Name::UdpBatches => "weir_udp_batches_total",
            Name::Accepted => "weir_accepted_total",
            Name::Rejected => "weir_rejected_total",
            Name::Dropped => "weir_dropped_total",
            Name::SpoolRows => "weir_spool_rows_total",
            Name::SpoolFiles => "weir_spool_files_total",
            Name::SpoolBytes => "weir_spool_bytes_total",
            Name::SpoolErrors => "weir_spool_errors_total",
            Name::QueueDepth => "weir_pipeline_queue_batches",
            Name::QueueBytes => "weir_pipeline_queue_bytes",
            Name::TcpConnections => "weir_tcp_connections_total",
            Name::TcpOpen => "weir_tcp_connections_open",
            Name::TcpRefused => "weir_tcp_refused_total",
            Name::TcpTimedOut => "weir_tcp_timed_out_total",
            Name::TailsRefused => "weir_tails_refused_total",
            Name::L2metInvalid => "weir_l2met_invalid_total",
            Name::RouterSources => "weir_router_sources",
            Name::TailSessions => "weir_tail_sessions",
            Name::SourcesEvicted => "weir_router_sources_evicted_total",
            Name::RouterShedLines => "weir_router_shed_lines_total",
            Name::RouterRecentBytes => "weir_router_recent_bytes",
            Name::SourceLines => "weir_source_lines_total",
            Name::SourceDrops => "weir_source_dropped_total",
            Name::KernelUdp => "weir_kernel_udp_datagrams",
            Name::WalBytes => "weir_wal_bytes_total",
            Name::WalSyncs => "weir_wal_syncs_total",
            Name::WalReleased => "weir_wal_segments_released_total",
            Name::WalShedLines => "weir_wal_shed_lines_total",
            Name::WalErrors => "weir_wal_errors_total",
            Name::WalUnlogged => "weir_wal_unlogged_lines_total",
            Name::WalReplayed => "weir_wal_replayed_lines_total",
            Name::WalDiskBytes => "weir_wal_disk_bytes",
            Name::WalTornFrames => "weir_wal_torn_frames_total",
            Name::WalTornBytes => "weir_wal_torn_bytes_total",
            Name::DiskBreakerOpen => "weir_disk_breaker_open",
            Name::DiskBreakerOpened => "weir_disk_breaker_opened_total",
            Name::SpoolHeldRows => "weir_spool_held_rows",
        }
    }
}

/// Where a line was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStage {
    /// The pipeline queue was full when a UDP batch arrived.
    ReceiveQueueFull,
    /// The spool could not write the line.
    SpoolWriteFailed,
    /// A tail session's queue was full (the line is still stored; only that reader missed it).
    TailOverflow,
}

/// The registry and the handles the pipeline uses.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: IntCounterVec,
    received_bytes: IntCounterVec,
    udp_batches: IntCounter,
    accepted: [IntCounter; 3],
    rejected: Vec<IntCounter>,
    dropped: [IntCounter; 3],
    spool_rows: [IntCounter; Table::ALL.len()],
    /// Parquet files published.
    pub spool_files: IntCounter,
    /// Bytes of the Parquet files published.
    pub spool_bytes: IntCounter,
    /// Spool write failures.
    pub spool_errors: IntCounter,
    /// Batches waiting for the pipeline.
    pub queue_depth: IntGauge,
    /// Memory of the batches waiting for the pipeline, as bounded by `ingest.queue_bytes`.
    pub queue_bytes: IntGauge,
    tcp_connections: IntCounter,
    tcp_open: IntGauge,
    tcp_refused: IntCounter,
    tcp_timed_out: IntCounter,
    /// Tail requests refused with 503 past `router.max_tails`.
    pub tails_refused: IntCounter,
    /// l2met pairs that were not valid metrics (kept as plain fields of their line).
    pub l2met_invalid: IntCounter,
    sources: IntGauge,
    sessions: IntGauge,
    evicted: IntCounter,
    router_shed: IntCounter,
    router_recent_bytes: IntGauge,
    source_lines: IntCounterVec,
    source_drops: IntCounterVec,
    /// The sources of the last render's per-source series: those the router evicted since
    /// leave `/metrics` (and start again from the router's new count if they come back).
    exposed_sources: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The length of the last render: the next one starts with room for about as much, so
    /// that megabytes of text are not copied from buffer to doubled buffer as they grow.
    last_render: std::sync::atomic::AtomicUsize,
    kernel_udp: IntGaugeVec,
    /// Bytes appended to the WAL.
    pub wal_bytes: IntCounter,
    /// WAL fsyncs.
    pub wal_syncs: IntCounter,
    /// WAL segments deleted once published.
    pub wal_released: IntCounter,
    /// Lines of shed WAL segments.
    pub wal_shed_lines: IntCounter,
    /// WAL failures.
    pub wal_errors: IntCounter,
    /// Lines spooled without a WAL frame.
    pub wal_unlogged_lines: IntCounter,
    /// Lines replayed from the WAL and written to the spool.
    pub wal_replayed: IntCounter,
    /// Lines read back from the WAL that a published file already held.
    pub wal_replay_skipped: IntCounter,
    /// Bytes of WAL segments on disk, by stream (pipeline worker).
    pub wal_disk_bytes: IntGaugeVec,
    /// Torn or corrupt WAL frames found at start.
    pub wal_torn_frames: IntCounter,
    /// Bytes lost to them.
    pub wal_torn_bytes: IntCounter,
    /// 1 while the disk breaker is open.
    pub disk_breaker_open: IntGauge,
    /// Times the disk breaker opened.
    pub disk_breaker_opened: IntCounter,
    /// Rows the spool writers hold in memory, not yet in a published file.
    pub spool_held_rows: IntGauge,
}

fn counter(registry: &Registry, name: Name, help: &str) -> IntCounter {
    let c = IntCounter::new(name.as_str(), help).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: Name, help: &str) -> IntGauge {
    let g = IntGauge::new(name.as_str(), help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter_vec(registry: &Registry, name: Name, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name.as_str(), help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge_vec(registry: &Registry, name: Name, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name.as_str(), help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let received = counter_vec(
            &r,
            Name::Received,
            "Messages received (datagrams or frames).",
            &["transport"],
        );
        let received_bytes = counter_vec(&r, Name::ReceivedBytes, "Bytes received.", &["transport"]);
        let accepted_vec = counter_vec(&r, Name::Accepted, "Lines parsed into a table.", &["table"]);
        let accepted = ["requests", "tcp", "app"].map(|t| accepted_vec.with_label_values(&[t]));
        let rejected_vec = counter_vec(
            &r,
            Name::Rejected,
            "Lines kept in the rejects table.",
            &["reason"],
        );
        let rejected = RejectReason::ALL
            .iter()
            .map(|x| rejected_vec.with_label_values(&[x.as_str()]))
            .collect();
        let dropped_vec = counter_vec(
            &r,
            Name::Dropped,
            "Lines lost, by stage and reason.",
            &["stage", "reason"],
        );
        let dropped = [
            dropped_vec.with_label_values(&["receive", "queue_full"]),
            dropped_vec.with_label_values(&["spool", "write_failed"]),
            dropped_vec.with_label_values(&["tail", "overflow"]),
        ];
        let rows_vec = counter_vec(&r, Name::SpoolRows, "Rows handed to the spool.", &["table"]);
        let spool_rows = Table::ALL.map(|t| rows_vec.with_label_values(&[t.name()]));
        let kernel_udp = gauge_vec(
            &r,
            Name::KernelUdp,
            "The kernel's UDP counters for the whole machine (/proc/net/snmp).",
            &["counter"],
        );
        let replayed = counter_vec(
            &r,
            Name::WalReplayed,
            "Lines read back from the WAL at start: written to the spool, or already in a published file.",
            &["outcome"],
        );
        Metrics {
            last_render: std::sync::atomic::AtomicUsize::new(0),
            wal_disk_bytes: gauge_vec(
                &r,
                Name::WalDiskBytes,
                "Bytes of write-ahead log segments on disk, by stream (one per pipeline worker).",
                &["stream"],
            ),
            wal_bytes: counter(&r, Name::WalBytes, "Bytes appended to the write-ahead log."),
            wal_syncs: counter(&r, Name::WalSyncs, "fsyncs of the write-ahead log."),
            wal_released: counter(
                &r,
                Name::WalReleased,
                "WAL segments deleted once every row in them was published.",
            ),
            wal_shed_lines: counter(
                &r,
                Name::WalShedLines,
                "Lines whose WAL segment was deleted over store.wal_max_bytes before they were published.",
            ),
            wal_errors: counter(&r, Name::WalErrors, "Write-ahead log failures."),
            wal_unlogged_lines: counter(
                &r,
                Name::WalUnlogged,
                "Lines spooled without a WAL frame (not durable): the append failed, or the disk breaker was open.",
            ),
            wal_replayed: replayed.with_label_values(&["written"]),
            wal_replay_skipped: replayed.with_label_values(&["already_published"]),
            wal_torn_frames: counter(
                &r,
                Name::WalTornFrames,
                "Torn or corrupt WAL frames found at start (each ends its segment).",
            ),
            wal_torn_bytes: counter(
                &r,
                Name::WalTornBytes,
                "Bytes of WAL segments not recovered because of a torn or corrupt frame.",
            ),
            disk_breaker_open: gauge(
                &r,
                Name::DiskBreakerOpen,
                "1 while spool or WAL writes fail (a full disk): rows are held in memory, lines are not logged, the disk is probed with backoff.",
            ),
            disk_breaker_opened: counter(
                &r,
                Name::DiskBreakerOpened,
                "Times spool or WAL writes started failing (the disk breaker opened).",
            ),
            spool_held_rows: gauge(
                &r,
                Name::SpoolHeldRows,
                "Rows in memory not yet in a published Parquet file (kept, and written again from memory if their file fails).",
            ),
            received,
            received_bytes,
            udp_batches: counter(&r, Name::UdpBatches, "recvmmsg calls that returned data."),
            accepted,
            rejected,
            dropped,
            spool_rows,
            spool_files: counter(&r, Name::SpoolFiles, "Parquet files published."),
            spool_bytes: counter(&r, Name::SpoolBytes, "Bytes of Parquet files published."),
            spool_errors: counter(&r, Name::SpoolErrors, "Spool write failures."),
            queue_depth: gauge(&r, Name::QueueDepth, "Batches waiting for the pipeline."),
            queue_bytes: gauge(
                &r,
                Name::QueueBytes,
                "Memory of the batches waiting for the pipeline (bounded by ingest.queue_bytes).",
            ),
            tcp_connections: counter(&r, Name::TcpConnections, "TCP connections accepted."),
            tcp_open: gauge(&r, Name::TcpOpen, "TCP connections open."),
            tcp_refused: counter(
                &r,
                Name::TcpRefused,
                "TCP connections closed at once because ingest.max_tcp_connections were open.",
            ),
            tcp_timed_out: counter(
                &r,
                Name::TcpTimedOut,
                "TCP connections closed after ingest.tcp_idle_timeout without a byte.",
            ),
            tails_refused: counter(
                &r,
                Name::TailsRefused,
                "Tail requests refused (HTTP 503) because router.max_tails sessions were open.",
            ),
            l2met_invalid: counter(
                &r,
                Name::L2metInvalid,
                "measure#, count# and sample# pairs of app lines whose value is not a number (kept as plain fields, not metrics).",
            ),
            sources: gauge(&r, Name::RouterSources, "Sources tracked by the router."),
            sessions: gauge(&r, Name::TailSessions, "Open tail sessions."),
            evicted: counter(
                &r,
                Name::SourcesEvicted,
                "Sources evicted to stay within max_sources.",
            ),
            router_shed: counter(
                &r,
                Name::RouterShedLines,
                "Lines shed from the recent rings (the backlog of tail -n) to stay within router.max_bytes.",
            ),
            router_recent_bytes: gauge(
                &r,
                Name::RouterRecentBytes,
                "Memory the recent rings hold, as counted against router.max_bytes.",
            ),
            source_lines: counter_vec(&r, Name::SourceLines, "Lines per source.", &["source"]),
            source_drops: counter_vec(&r, Name::SourceDrops, "Tail drops per source.", &["source"]),
            exposed_sources: Default::default(),
            kernel_udp,
            registry: r,
        }
    }

    /// A line went into `table` (`requests`, `tcp`, `app`), or was rejected for `reason`.
    #[inline]
    pub fn parsed(&self, table: Table, reject: Option<RejectReason>, n: u64) {
        match (table, reject) {
            (_, Some(reason)) => self.rejected[reason as usize].inc_by(n),
            (Table::Requests, None) => self.accepted[0].inc_by(n),
            (Table::Tcp, None) => self.accepted[1].inc_by(n),
            (Table::App, None) => self.accepted[2].inc_by(n),
            (Table::Rejects | Table::Metrics, None) => {}
        }
    }

    /// Rows handed to the spool writer.
    #[inline]
    pub fn spooled(&self, table: Table, n: u64) {
        self.spool_rows[table as usize].inc_by(n);
    }

    /// Lines lost at `stage`.
    pub fn dropped(&self, stage: DropStage, n: u64) {
        self.dropped[stage as usize].inc_by(n);
    }

    /// Renders the Prometheus text format, first copying in the receivers', router's and
    /// kernel's counters, and adding the traffic of the closed windows.
    pub fn render(
        &self,
        receivers: &ReceiverCounters,
        router: &Router,
        windows: &super::windows::LiveWindows,
        drains: &[super::http::DrainInfo],
    ) -> String {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        sync(
            &self.received.with_label_values(&["udp"]),
            load(&receivers.udp_datagrams),
        );
        sync(
            &self.received.with_label_values(&["tcp"]),
            load(&receivers.tcp_frames),
        );
        sync(
            &self.received_bytes.with_label_values(&["udp"]),
            load(&receivers.udp_bytes),
        );
        sync(
            &self.received_bytes.with_label_values(&["tcp"]),
            load(&receivers.tcp_bytes),
        );
        sync(&self.udp_batches, load(&receivers.udp_batches));
        sync(
            &self.dropped[DropStage::ReceiveQueueFull as usize],
            load(&receivers.dropped_queue_full),
        );
        sync(&self.tcp_connections, load(&receivers.tcp_connections));
        self.tcp_open.set(load(&receivers.tcp_open) as i64);
        sync(&self.tcp_refused, load(&receivers.tcp_refused));
        sync(&self.tcp_timed_out, load(&receivers.tcp_timed_out));
        let stats = router.stats();
        self.sources.set(stats.sources as i64);
        self.sessions.set(stats.sessions as i64);
        sync(&self.evicted, stats.evictions);
        sync(&self.router_shed, stats.shed);
        self.router_recent_bytes.set(stats.recent_bytes as i64);
        sync(&self.dropped[DropStage::TailOverflow as usize], stats.drops);
        let mut live = std::collections::HashSet::new();
        for s in router.sources() {
            let label = s.key.to_string();
            sync(&self.source_lines.with_label_values(&[&label]), s.lines);
            sync(&self.source_drops.with_label_values(&[&label]), s.drops);
            live.insert(label);
        }
        let mut exposed = self.exposed_sources.lock().unwrap_or_else(|p| p.into_inner());
        for gone in exposed.difference(&live) {
            let _ = self.source_lines.remove_label_values(&[gone]);
            let _ = self.source_drops.remove_label_values(&[gone]);
        }
        *exposed = live;
        drop(exposed);
        if let Some(k) = weir_ingest::listen::kernel_udp_drops() {
            self.kernel_udp
                .with_label_values(&["in_datagrams"])
                .set(k.in_datagrams as i64);
            self.kernel_udp
                .with_label_values(&["in_errors"])
                .set(k.in_errors as i64);
            self.kernel_udp
                .with_label_values(&["rcvbuf_errors"])
                .set(k.rcvbuf_errors as i64);
        }
        let mut families = self.registry.gather();
        let (counters, open) = windows.counters();
        families.extend([
            family(
                "weir_window_records_total",
                "Requests aggregated into windows.",
                MetricType::COUNTER,
                vec![counter_metric(&[], counters.records)],
            ),
            family(
                "weir_window_late_total",
                "Requests whose window had closed; each went into a later partial row.",
                MetricType::COUNTER,
                vec![counter_metric(&[], counters.late)],
            ),
            family(
                "weir_window_overflow_total",
                "Requests counted in an overflow series because aggregate.max_series series were open.",
                MetricType::COUNTER,
                vec![counter_metric(&[], counters.overflowed)],
            ),
            family(
                "weir_window_rows_total",
                "Window rows the workers closed (each worker's own; the rows of a series closed by several workers at once are then merged into one).",
                MetricType::COUNTER,
                vec![counter_metric(&[], counters.rows)],
            ),
            family(
                "weir_window_open_series",
                "Series of the windows open now.",
                MetricType::GAUGE,
                vec![gauge_metric(&[], open as f64)],
            ),
        ]);
        if !drains.is_empty() {
            type Field = fn(&super::drain::DrainStats) -> &std::sync::atomic::AtomicU64;
            let counters: [(&str, &str, Field); 5] = [
                ("weir_drain_sent_total", "Lines a drain sent.", |s| &s.sent),
                (
                    "weir_drain_dropped_total",
                    "Lines a drain dropped from its full buffer (told in band with Error L10).",
                    |s| &s.dropped,
                ),
                ("weir_drain_notices_total", "Error L10 notices a drain sent.", |s| &s.notices),
                (
                    "weir_drain_errors_total",
                    "A drain's failed attempts: connections refused or timed out, TLS failures, failed writes, HTTP answers other than 2xx.",
                    |s| &s.errors,
                ),
                (
                    "weir_drain_batches_total",
                    "Batches an HTTPS drain's endpoint took (answered 2xx).",
                    |s| &s.batches,
                ),
            ];
            for (name, help, field) in counters {
                let samples = drains
                    .iter()
                    .map(|d| {
                        let labels = [("drain", d.url.as_str()), ("app", d.app.as_str())];
                        counter_metric(&labels, field(&d.stats).load(Ordering::Relaxed))
                    })
                    .collect();
                families.push(family(name, help, MetricType::COUNTER, samples));
            }
            families.push(family(
                "weir_drain_connected",
                "Whether a drain is connected to its server (HTTPS: whether its endpoint took the last batch).",
                MetricType::GAUGE,
                drains
                    .iter()
                    .map(|d| {
                        let up = d.stats.connected.load(Ordering::Relaxed);
                        gauge_metric(
                            &[("drain", d.url.as_str()), ("app", d.app.as_str())],
                            f64::from(u8::from(up)),
                        )
                    })
                    .collect(),
            ));
        }
        windows.with_exposition(|e| {
            families.push(family(
                "weir_http_overflow_rows_total",
                "Window rows counted under the (overflow) label set of the traffic metrics because http.max_series label sets were taken.",
                MetricType::COUNTER,
                vec![counter_metric(&[], e.overflowed())],
            ));
        });
        windows.with_l2met(weir_model::time::now_micros(), |l| {
            families.extend(l2met_families(l))
        });
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let last = self.last_render.load(Ordering::Relaxed);
        let mut out = String::with_capacity(last + last / 16);
        TextEncoder::new()
            .encode_utf8(&families, &mut out)
            .expect("text encoding cannot fail");
        // The traffic, a series per label set (tens of thousands of lines at 10,000 series),
        // goes straight to the text: a `MetricFamily` of each sample would hold several times
        // the text's memory while it is written.
        windows.with_exposition(|e| write_traffic(e, &mut out));
        self.last_render.store(out.len(), Ordering::Relaxed);
        out
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = proto::LabelPair::default();
            l.set_name((*k).to_owned());
            l.set_value((*v).to_owned());
            l
        })
        .collect()
}

fn counter_metric(pairs: &[(&str, &str)], v: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(v as f64);
    let mut m = proto::Metric::default();
    m.set_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge_metric(pairs: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(v);
    let mut m = proto::Metric::default();
    m.set_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// The traffic of the closed windows: requests per series and status class, response bytes,
/// one histogram per timer with the configured bounds, and the last closed window's quantiles
/// per backend. Families with no series yet are left out. What [`write_traffic`] writes, kept
/// to check it against.
#[cfg(test)]
fn traffic_families(e: &Exposition) -> Vec<MetricFamily> {
    let mut requests = Vec::new();
    let mut bytes = Vec::new();
    let mut timers: Vec<Vec<proto::Metric>> = vec![Vec::new(); 6];
    for ((fe, be, srv), t) in e.series() {
        let key = [
            ("frontend", fe.as_str()),
            ("backend", be.as_str()),
            ("server", srv.as_str()),
        ];
        for (class, n) in status_class_names().into_iter().zip(t.requests) {
            if n > 0 {
                let mut l = key.to_vec();
                l.push(("status_class", class));
                requests.push(counter_metric(&l, n));
            }
        }
        bytes.push(counter_metric(&key, t.bytes_read));
        for (i, c) in t.timers.iter().enumerate() {
            let mut h = proto::Histogram::default();
            h.set_sample_count(c.count);
            h.set_sample_sum(c.sum / 1000.0);
            let buckets = e
                .bounds()
                .iter()
                .zip(c.le.iter().chain(std::iter::repeat(&0)))
                .map(|(bound, n)| {
                    let mut b = proto::Bucket::default();
                    b.set_upper_bound(*bound as f64 / 1000.0);
                    b.set_cumulative_count(*n);
                    b
                })
                .collect();
            h.set_bucket(buckets);
            let mut m = proto::Metric::default();
            m.set_label(labels(&key));
            m.set_histogram(h);
            timers[i].push(m);
        }
    }
    let mut out = Vec::new();
    if requests.is_empty() {
        return out;
    }
    out.push(family(
        "weir_http_requests_total",
        "HTTP requests in closed windows, by frontend, backend, server and status class.",
        MetricType::COUNTER,
        requests,
    ));
    out.push(family(
        "weir_http_response_bytes_total",
        "Bytes sent to clients, in closed windows.",
        MetricType::COUNTER,
        bytes,
    ));
    for (name, metrics) in timer_names().into_iter().zip(timers) {
        out.push(family(
            &format!("weir_http_{name}_seconds"),
            &format!(
                "HAProxy's {name} time, in closed windows (bounds from http.buckets_ms; counts exact to the histograms' precision)."
            ),
            MetricType::HISTOGRAM,
            metrics,
        ));
    }
    if let Some(last) = e.last_window() {
        let mut gauges = Vec::new();
        for (backend, per_timer) in &last.backends {
            for (timer, q) in timer_names().into_iter().zip(per_timer) {
                let Some(q) = q else { continue };
                for (stat, v) in ["p50", "p95", "p99"].into_iter().zip(q) {
                    gauges.push(gauge_metric(
                        &[("backend", backend), ("timer", timer), ("stat", stat)],
                        *v as f64 / 1000.0,
                    ));
                }
            }
        }
        out.push(family(
            "weir_last_window_seconds",
            "p50, p95 and p99 (label stat) of each timer per backend over the last closed window.",
            MetricType::GAUGE,
            gauges,
        ));
    }
    out
}

/// Writes the traffic of the closed windows in the text format, as [`TextEncoder`] would write
/// `traffic_families` (kept for the tests), without building them.
fn write_traffic(e: &Exposition, out: &mut String) {
    if e.series().values().all(|t| t.requests.iter().all(|&n| n == 0)) {
        return;
    }
    header(
        out,
        "weir_http_requests_total",
        "HTTP requests in closed windows, by frontend, backend, server and status class.",
        "counter",
    );
    for (series, t) in e.series() {
        let [fe, be, srv] = key(series);
        for (class, n) in status_class_names().into_iter().zip(t.requests) {
            if n > 0 {
                let labels = [fe, be, srv, ("status_class", class)];
                sample(out, "weir_http_requests_total", &labels, n as f64);
            }
        }
    }
    header(
        out,
        "weir_http_response_bytes_total",
        "Bytes sent to clients, in closed windows.",
        "counter",
    );
    for (series, t) in e.series() {
        sample(
            out,
            "weir_http_response_bytes_total",
            &key(series),
            t.bytes_read as f64,
        );
    }
    let bounds: Vec<String> = e
        .bounds()
        .iter()
        .map(|b| (*b as f64 / 1000.0).to_string())
        .collect();
    for (i, name) in timer_names().into_iter().enumerate() {
        let family = format!("weir_http_{name}_seconds");
        header(
            out,
            &family,
            &format!(
                "HAProxy's {name} time, in closed windows (bounds from http.buckets_ms; counts exact to the histograms' precision)."
            ),
            "histogram",
        );
        let (bucket, sum, count) = (
            format!("{family}_bucket"),
            format!("{family}_sum"),
            format!("{family}_count"),
        );
        for (series, t) in e.series() {
            let c = &t.timers[i];
            let [fe, be, srv] = key(series);
            for (bound, n) in bounds.iter().zip(c.le.iter().chain(std::iter::repeat(&0))) {
                sample(out, &bucket, &[fe, be, srv, ("le", bound)], *n as f64);
            }
            sample(out, &bucket, &[fe, be, srv, ("le", "+Inf")], c.count as f64);
            sample(out, &sum, &[fe, be, srv], c.sum / 1000.0);
            sample(out, &count, &[fe, be, srv], c.count as f64);
        }
    }
    if let Some(last) = e.last_window() {
        header(
            out,
            "weir_last_window_seconds",
            "p50, p95 and p99 (label stat) of each timer per backend over the last closed window.",
            "gauge",
        );
        for (backend, per_timer) in &last.backends {
            for (timer, q) in timer_names().into_iter().zip(per_timer) {
                let Some(q) = q else { continue };
                for (stat, v) in ["p50", "p95", "p99"].into_iter().zip(q) {
                    let labels = [("backend", backend.as_str()), ("timer", timer), ("stat", stat)];
                    sample(out, "weir_last_window_seconds", &labels, *v as f64 / 1000.0);
                }
            }
        }
    }
}

/// A series' labels on the traffic metrics.
fn key((fe, be, srv): &(String, String, String)) -> [(&'static str, &str); 3] {
    [("frontend", fe), ("backend", be), ("server", srv)]
}

/// A family's `# HELP` and `# TYPE` lines (the help has no backslash or line feed to escape).
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line, `name{label="value",...} value`, its label values escaped as the format
/// asks (backslash, double quote and line feed).
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    use std::fmt::Write;
    out.push_str(name);
    for (i, (label, v)) in labels.iter().enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(label);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !labels.is_empty() {
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// The live l2met metrics: a summary per measure (p50/p95/p99 of the last closed window, count
/// and sum of all), a counter per count, a gauge per sample; labels `app` and `source`. With the
/// count of what `max_series` left out and of late measures.
fn l2met_families(l: &L2metLive) -> Vec<MetricFamily> {
    let mut out = vec![
        family(
            "weir_l2met_overflow_total",
            "l2met values left out of /metrics because http.max_series series were kept (their rows are in the metrics table).",
            MetricType::COUNTER,
            vec![counter_metric(&[], l.overflowed())],
        ),
        family(
            "weir_l2met_late_total",
            "l2met measures whose window had closed: in their series' count and sum, not in its quantiles.",
            MetricType::COUNTER,
            vec![counter_metric(&[], l.late())],
        ),
    ];
    let series = l.series();
    for group in series.chunk_by(|a, b| a.family == b.family) {
        let first = group[0];
        let (kind, help) = match first.kind {
            MetricKind::Measure => (
                MetricType::SUMMARY,
                "p50, p95 and p99 over the last closed window; count and sum of every value",
            ),
            MetricKind::Count => (MetricType::COUNTER, "running total"),
            MetricKind::Sample => (MetricType::GAUGE, "newest value"),
        };
        let metrics = group
            .iter()
            .map(|s| {
                let key = [("app", s.app.as_str()), ("source", s.source.as_str())];
                match s.kind {
                    MetricKind::Measure => {
                        let mut summary = proto::Summary::default();
                        summary.set_sample_count(s.count);
                        summary.set_sample_sum(s.sum);
                        if let Some(q) = s.quantiles() {
                            let quantiles = L2MET_QUANTILES
                                .iter()
                                .zip(q)
                                .map(|(&at, v)| {
                                    let mut p = proto::Quantile::default();
                                    p.set_quantile(at);
                                    p.set_value(v);
                                    p
                                })
                                .collect();
                            summary.set_quantile(quantiles);
                        }
                        let mut m = proto::Metric::default();
                        m.set_label(labels(&key));
                        m.set_summary(summary);
                        m
                    }
                    MetricKind::Count => {
                        let mut c = proto::Counter::default();
                        c.set_value(s.sum);
                        let mut m = proto::Metric::default();
                        m.set_label(labels(&key));
                        m.set_counter(c);
                        m
                    }
                    MetricKind::Sample => gauge_metric(&key, s.level.map_or(0.0, |(_, v)| v)),
                }
            })
            .collect();
        let name = match first.kind {
            MetricKind::Count => format!("{}_total", first.family),
            _ => first.family.clone(),
        };
        out.push(family(
            &name,
            &format!("l2met {} {}: {help}.", first.kind.name(), first.name),
            kind,
            metrics,
        ));
    }
    out
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn sync(c: &IntCounter, total: u64) {
    let have = c.get();
    if total > have {
        c.inc_by(total - have);
    }
}

#[cfg(test)]
mod tests {
    use weir_aggregate::WindowConfig;
    use weir_ingest::router::{RouterConfig, SourceRef};
    use weir_ingest::{parse_line_str, ParseOptions};

    use super::*;
    use crate::serve::windows::LiveWindows;

    /// The traffic written straight to text reads as the `prometheus` crate's encoder writes
    /// the same families, label values that need escaping included.
    #[test]
    fn traffic_text_is_what_the_encoder_writes() {
        let mut windows = weir_aggregate::WindowAggregator::new(WindowConfig::default()).unwrap();
        for (second, backend, status, total) in [
            (1, "be_api/s1", 200, 4),
            (2, "be_api/s1", 200, 40),
            (3, "be_\"odd\\one/s1", 503, 700),
            (12, "be_api/s2", 200, 900),
        ] {
            let text = format!(
                "<134>Nov 22 01:22:{second:02} lb1 haproxy[1]: 10.0.0.1:4000 [22/Nov/2026:01:22:{second:02}.000] fe {backend} 0/0/1/2/{total} {status} 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
            );
            let line = parse_line_str(&text, &ParseOptions::default());
            let weir_model::Record::Http(h) = &line.record else {
                panic!("not a request: {text}")
            };
            windows.add(h);
        }
        let mut e = Exposition::new(vec![5, 50, 500, 2_500], 2, 100);
        e.observe(&windows.flush()).unwrap();
        e.seal().unwrap();
        assert!(e.last_window().is_some());
        let mut written = String::new();
        write_traffic(&e, &mut written);
        let encoded = TextEncoder::new()
            .encode_to_string(&traffic_families(&e))
            .unwrap();
        assert!(written.contains("backend=\"be_\\\"odd\\\\one\""), "{written}");
        assert_eq!(written, encoded);
    }

    /// A source the router evicts leaves `/metrics`; when it sends again it is back, counted
    /// from its new lines.
    #[test]
    fn evicted_sources_leave_the_per_source_series_and_come_back() {
        let router = Router::new(RouterConfig {
            max_sources: 2,
            ..RouterConfig::default()
        });
        let windows = LiveWindows::new(WindowConfig::default(), 1, vec![10], 100, None).unwrap();
        let (metrics, receivers) = (Metrics::new(), ReceiverCounters::default());
        let send = |host: &str, n: usize| {
            for _ in 0..n {
                let text = format!("<14>Nov 30 12:00:00 {host} app: hello");
                let line = parse_line_str(&text, &ParseOptions::default());
                router.publish_line(SourceRef::from_header(&line.header), &line, 0);
            }
        };
        let series = |text: &str, host: &str| {
            text.lines()
                .find(|l| l.starts_with("weir_source_lines_total{") && l.contains(&format!("\"{host}/")))
                .map(|l| l.rsplit_once(' ').unwrap().1.to_owned())
        };
        send("a", 3);
        send("b", 1);
        let text = metrics.render(&receivers, &router, &windows, &[]);
        assert_eq!(series(&text, "a").as_deref(), Some("3"));
        send("c", 1);
        let text = metrics.render(&receivers, &router, &windows, &[]);
        assert_eq!(series(&text, "a"), None, "evicted:\n{text}");
        assert_eq!(series(&text, "c").as_deref(), Some("1"));
        send("a", 2);
        let text = metrics.render(&receivers, &router, &windows, &[]);
        assert_eq!(
            series(&text, "a").as_deref(),
            Some("2"),
            "back, from its new lines"
        );
    }
}
