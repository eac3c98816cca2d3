//! weir's own telemetry for `/metrics`: every counter is registered once, here, under a name
//! from [`Name`]; the hot path adds to pre-resolved handles (one per reject reason, per table),
//! never looks a label up. Counters that other crates keep as atomics (receivers, router) are
//! copied in when `/metrics` is scraped.

use std::sync::atomic::Ordering;

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use weir_ingest::listen::ReceiverCounters;
use weir_ingest::router::Router;
use weir_model::RejectReason;
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
    /// TCP connections accepted / open.
    TcpConnections,
    /// TCP connections open now.
    TcpOpen,
    /// Router sources and sessions.
    RouterSources,
    /// Open tail sessions.
    TailSessions,
    /// Sources evicted from the router.
    SourcesEvicted,
    /// Per-source lines.
    SourceLines,
    /// Per-source lines dropped from tails.
    SourceDrops,
    /// The kernel's UDP counters.
    KernelUdp,
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
            Name::TcpConnections => "weir_tcp_connections_total",
            Name::TcpOpen => "weir_tcp_connections_open",
            Name::RouterSources => "weir_router_sources",
            Name::TailSessions => "weir_tail_sessions",
            Name::SourcesEvicted => "weir_router_sources_evicted_total",
            Name::SourceLines => "weir_source_lines_total",
            Name::SourceDrops => "weir_source_dropped_total",
            Name::KernelUdp => "weir_kernel_udp_total",
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
    spool_rows: [IntCounter; 4],
    /// Parquet files published.
    pub spool_files: IntCounter,
    /// Bytes of the Parquet files published.
    pub spool_bytes: IntCounter,
    /// Spool write failures.
    pub spool_errors: IntCounter,
    /// Batches waiting for the pipeline.
    pub queue_depth: IntGauge,
    tcp_connections: IntCounter,
    tcp_open: IntGauge,
    sources: IntGauge,
    sessions: IntGauge,
    evicted: IntCounter,
    source_lines: IntCounterVec,
    source_drops: IntCounterVec,
    kernel_udp: IntGaugeVec,
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
        let kernel_udp = IntGaugeVec::new(
            Opts::new(
                Name::KernelUdp.as_str(),
                "The kernel's UDP counters for the whole machine (/proc/net/snmp).",
            ),
            &["counter"],
        )
        .expect("valid metric");
        r.register(Box::new(kernel_udp.clone()))
            .expect("metric registered once");
        Metrics {
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
            tcp_connections: counter(&r, Name::TcpConnections, "TCP connections accepted."),
            tcp_open: gauge(&r, Name::TcpOpen, "TCP connections open."),
            sources: gauge(&r, Name::RouterSources, "Sources tracked by the router."),
            sessions: gauge(&r, Name::TailSessions, "Open tail sessions."),
            evicted: counter(
                &r,
                Name::SourcesEvicted,
                "Sources evicted to stay within max_sources.",
            ),
            source_lines: counter_vec(&r, Name::SourceLines, "Lines per source.", &["source"]),
            source_drops: counter_vec(&r, Name::SourceDrops, "Tail drops per source.", &["source"]),
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
            (Table::Rejects, None) => {}
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
    /// kernel's counters.
    pub fn render(&self, receivers: &ReceiverCounters, router: &Router) -> String {
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
        let stats = router.stats();
        self.sources.set(stats.sources as i64);
        self.sessions.set(stats.sessions as i64);
        sync(&self.evicted, stats.evictions);
        sync(&self.dropped[DropStage::TailOverflow as usize], stats.drops);
        for s in router.sources() {
            let label = s.key.to_string();
            sync(&self.source_lines.with_label_values(&[&label]), s.lines);
            sync(&self.source_drops.with_label_values(&[&label]), s.drops);
        }
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
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("Prometheus text is UTF-8")
    }
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn sync(c: &IntCounter, total: u64) {
    let have = c.get();
    if total > have {
        c.inc_by(total - have);
    }
}
