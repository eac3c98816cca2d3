//! `weir serve`: the syslog server.
//!
//! Wiring, in data-path order: UDP receivers (a thread per socket, [`weir_ingest::listen::udp`])
//! and the TCP acceptor (tokio, [`weir_ingest::listen::tcp`]) feed bounded queues of batches,
//! one per worker, each sender always to the same one;
//! [`pipeline`] workers parse, spool, aggregate and route; [`windows`] closes the workers'
//! tumbling windows each second into `/metrics`, `/api/windows` and the `windows` table;
//! [`http`] serves `/metrics`, `/api/windows`, `/api/tail`, `/api/sources` and `/healthz`.
//! Before any of it starts, [`recovery`] replays the WAL segments a crash left into the spool
//! (the sockets are bound first, so the kernel holds what arrives meanwhile). Shutdown (SIGTERM,
//! Ctrl-C) runs in the same order: receivers
//! stop and drain the kernel's buffers, the pipeline drains the queue and publishes every
//! Parquet file, every open window is closed and the `windows` table published, then the HTTP
//! API closes. SIGHUP re-reads the config file: `[router]` limits
//! apply at once; sockets and spool writers stay as they are, and the log says which changed
//! settings wait for the next start.

pub mod breaker;
pub mod drain;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod recovery;
pub mod windows;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use weir_ingest::listen::{self, udp, BatchSink, QueueBytes, ReceiverCounters};
use weir_ingest::router::{Router, RouterConfig};
use weir_store::SpoolOptions;

use crate::config::Config;
use crate::UsageError;

/// `weir serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (weir.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP syslog address (repeatable) [default: 127.0.0.1:5514].
    #[arg(long, value_name = "ADDR")]
    pub udp: Vec<SocketAddr>,
    /// TCP syslog address (repeatable) [default: 127.0.0.1:5514].
    #[arg(long, value_name = "ADDR")]
    pub tcp: Vec<SocketAddr>,
    /// HTTP API address [default: 127.0.0.1:9514].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Spool folder [default: ./weir-spool].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Node id in file names [default: the host name].
    #[arg(long, value_name = "ID")]
    pub node: Option<String>,
    /// The zone of zone-less dates, overriding `ingest.haproxy_timezone`
    /// ([`crate::inputs::TIMEZONE_HELP`]).
    #[arg(long, value_name = "TZ", help = crate::inputs::TIMEZONE_HELP)]
    pub timezone: Option<String>,
    /// HAProxy log-format of the lines (HAProxy's syntax), the default for frontends without
    /// their own [config: ingest.log_format].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// haproxy.cfg to read each frontend's log format from [config: ingest.haproxy_config].
    #[arg(long, value_name = "FILE")]
    pub haproxy_config: Option<PathBuf>,
    /// Pipeline worker threads [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Also run a generator that sends a mix of HAProxy and application lines to this
    /// server's own UDP port, so that data flows at once.
    #[arg(long)]
    pub demo: bool,
    /// Lines per second the demo generator sends.
    #[arg(long, default_value_t = 200.0, value_name = "N", requires = "demo")]
    pub demo_rate: f64,
}

impl Args {
    /// The config file (or the defaults) with the flags applied.
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if !self.udp.is_empty() {
            c.ingest.udp = self.udp.clone();
        }
        if !self.tcp.is_empty() {
            c.ingest.tcp = self.tcp.clone();
        }
        if let Some(h) = self.http {
            c.http.listen = h;
        }
        if let Some(s) = &self.spool {
            c.store.spool = s.clone();
        }
        if let Some(n) = &self.node {
            c.node = n.clone();
        }
        if let Some(tz) = &self.timezone {
            c.ingest.haproxy_timezone = tz.clone();
        }
        if let Some(f) = &self.log_format {
            c.ingest.log_format = Some(f.clone());
        }
        if let Some(f) = &self.haproxy_config {
            c.ingest.haproxy_config = Some(f.clone());
        }
        c.check().map_err(|e| UsageError(format!("{e:#}")))?;
        Ok(c)
    }
}

/// Batches the pipeline queues hold in all before UDP receivers start dropping. A batch holds
/// what one `recvmmsg` returned (1 to 64 datagrams); the queues are deep so that a worker busy
/// encoding a Parquet row group (a fraction of a second) loses nothing at full rate.
const QUEUE_BATCHES: usize = 65_536;

/// Spent batches kept for reuse by the receivers (each at most 256 KiB, see
/// [`pipeline`]): enough for a steady flow without an allocation per batch, and at most
/// 16 MiB.
const RECYCLED_BATCHES: usize = 64;

/// Runs `weir serve` until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::alloc::for_server();
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weir-io")
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, config))
}

/// The disk breaker's first retry after a failed write, and its longest wait between retries.
const BREAKER_FIRST_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
const BREAKER_MAX_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Spool options for a config: files named `<node>-<boot>-<seq>`, where `boot` counts the
/// starts of this node on this spool.
fn spool_options(config: &Config, boot: &str, seq: Arc<AtomicU64>) -> SpoolOptions {
    SpoolOptions {
        sequence: seq,
        zstd_level: config.store.zstd_level,
        rotate_bytes: config.store.rotate_size,
        rotate_age: Some(config.store.rotate_age),
        retry_bytes: Some(usize::try_from(config.store.retry_buffer).unwrap_or(usize::MAX)),
        max_buffered_bytes: usize::try_from(config.store.build_buffer).unwrap_or(usize::MAX),
        ..SpoolOptions::new(&config.store.spool, &config.node, boot)
    }
}

/// Reads and increments the node's start counter in `<spool>/.boot-<node>`, atomically (a
/// temporary, fsync, rename, fsync of the folder): a start killed at any point leaves the old
/// count or the new one, never a torn file that would reuse a count and its file names.
fn next_boot(config: &Config) -> anyhow::Result<String> {
    let spool = &config.store.spool;
    std::fs::create_dir_all(spool).with_context(|| format!("creating the spool {}", spool.display()))?;
    let path = spool.join(format!(".boot-{}", config.node));
    let last: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let boot = last + 1;
    let tmp = spool.join(format!(".boot-{}.tmp", config.node));
    (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{boot}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(spool)?.sync_all()
    })()
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(format!("b{boot}"))
}

/// The WAL's options for this start; each pipeline worker appends its index to the stream.
fn wal_options(config: &Config, boot: &str, workers: usize) -> Option<weir_store::wal::WalOptions> {
    config.store.wal.then(|| weir_store::wal::WalOptions {
        dir: config.store.spool.join("wal"),
        node: config.node.clone(),
        boot: boot.to_owned(),
        stream: boot.to_owned(),
        sequence: Arc::new(AtomicU64::new(0)),
        segment_bytes: config.store.wal_segment_size,
        fsync_interval: config.store.fsync_interval,
        // Each worker's share, and at least one segment each.
        max_bytes: (config.store.wal_max_bytes / workers as u64).max(config.store.wal_segment_size),
    })
}

async fn serve(args: Args, config: Config) -> anyhow::Result<()> {
    // Taken over first: a SIGTERM that comes while the WAL is replayed, or right after the
    // addresses are printed, stops the server cleanly instead of killing it.
    let signals = StopSignals::install();
    let parse = weir_ingest::ParseOptions {
        formats: crate::inputs::formats(
            config.ingest.log_format.as_deref(),
            config.ingest.haproxy_config.as_deref(),
        )?,
        ..crate::inputs::parse_options(&config.ingest.haproxy_timezone)?
    };
    let router = Arc::new(Router::new(router_config(&config)));
    let metrics = Arc::new(metrics::Metrics::new());
    let counters = Arc::new(ReceiverCounters::default());
    let workers = crate::inputs::threads(args.workers);
    let (lane_tx, lane_rx): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| flume::bounded(QUEUE_BATCHES / workers))
        .unzip();
    let (recycle_tx, recycle_rx) = flume::bounded(RECYCLED_BATCHES);
    let queued = QueueBytes::new(usize::try_from(config.ingest.queue_bytes).unwrap_or(usize::MAX));
    let sink = BatchSink::new(lane_tx, recycle_rx).with_bound(queued.clone());

    // Bind everything first, so that a busy port fails before anything starts.
    let mut udp_sockets = Vec::new();
    for addr in &config.ingest.udp {
        for _ in 0..config.ingest.udp_sockets {
            let reuse = config.ingest.udp_sockets > 1;
            let s = udp::bind(*addr, config.ingest.rcvbuf as usize, reuse)
                .with_context(|| format!("binding UDP {addr}"))?;
            udp_sockets.push(s);
        }
    }
    let mut tcp_listeners = Vec::new();
    for addr in &config.ingest.tcp {
        tcp_listeners.push(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding TCP {addr}"))?,
        );
    }
    let http_listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP {}", config.http.listen))?;

    let boot = next_boot(&config)?;
    let seq = Arc::new(AtomicU64::new(0));
    // Replayed even with the WAL now off: segments left by a run that had it on hold lines that
    // were counted as accepted.
    let recovered = tokio::task::block_in_place(|| {
        recovery::recover(
            &parse,
            &spool_options(&config, &boot, seq.clone()),
            &config.store.spool.join("wal"),
            &metrics,
        )
    })
    .context("recovering the spool after an unclean stop")?;
    if recovered.compaction_leftovers > 0 {
        println!(
            "weir: finished an interrupted `weir spool compact`: removed {} files it had merged or begun",
            recovered.compaction_leftovers
        );
    }
    if recovered.swept > 0 {
        println!(
            "weir: removed {} temporary files left by an unclean stop",
            recovered.swept
        );
    }
    if recovered.segments > 0 {
        let secs = recovered.elapsed.as_secs_f64();
        println!(
            "weir: WAL: replayed {} lines from {} segments in {secs:.2}s ({:.0} lines/s) into {} files; {} lines were already published; {} torn frames ({} bytes lost)",
            recovered.replayed,
            recovered.segments,
            (recovered.replayed + recovered.skipped) as f64 / secs.max(1e-9),
            recovered.files,
            recovered.skipped,
            recovered.torn_frames,
            recovered.torn_bytes,
        );
    }
    let breaker = Arc::new(breaker::DiskBreaker::new(BREAKER_FIRST_RETRY, BREAKER_MAX_RETRY));
    let live_windows = Arc::new(
        windows::LiveWindows::new(
            weir_aggregate::WindowConfig {
                window_secs: config.aggregate.window.as_secs() as u32,
                lateness: config.aggregate.lateness.as_micros() as weir_model::Micros,
                sigfig: config.aggregate.sigfig,
                max_series: config.aggregate.max_series,
                node: config.node.clone(),
            },
            workers,
            config.http.buckets_ms.clone(),
            config.http.max_series,
            Some(weir_store::windows::WindowsWriter::new(spool_options(
                &config,
                &boot,
                seq.clone(),
            ))?),
        )?
        .with_breaker(breaker.clone(), metrics.clone()),
    );
    let ctx = pipeline::PipelineContext {
        parse,
        router: router.clone(),
        metrics: metrics.clone(),
        spool: SpoolOptions {
            // The workers share store.build_buffer.
            max_buffered_bytes: (config.store.build_buffer / workers as u64)
                .try_into()
                .unwrap_or(usize::MAX),
            ..spool_options(&config, &boot, seq.clone())
        },
        windows: live_windows.clone(),
        wal: wal_options(&config, &boot, workers),
        breaker,
        queued,
    };
    let pipeline = pipeline::start(ctx, lane_rx, recycle_tx)?;
    let budget = memory_budget(&config, workers);
    println!(
        "weir: memory budget {}: {}",
        size_text(budget.iter().map(|(_, n)| n).sum()),
        budget
            .iter()
            .map(|(what, n)| format!("{what} {}", size_text(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let drain_stop = Arc::new(AtomicBool::new(false));
    let drains: Vec<drain::Drain> = config
        .drains
        .iter()
        .map(|d| drain::Drain::start(&router, d, &config.node, drain_stop.clone()))
        .collect::<anyhow::Result<_>>()?;
    let drain_stats: Arc<Vec<http::DrainInfo>> = Arc::new(
        drains
            .iter()
            .map(|d| http::DrainInfo {
                app: d.app.clone(),
                url: d.url.clone(),
                id: d.id.clone(),
                buffer: d.buffer,
                stats: d.stats.clone(),
            })
            .collect(),
    );
    let stop_udp = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let udp_opts = udp::UdpOptions {
        max_line: config.ingest.max_line,
        ..udp::UdpOptions::default()
    };
    let mut udp_threads = Vec::new();
    let mut udp_addrs = Vec::new();
    for socket in udp_sockets {
        let local = socket.local_addr()?;
        udp_addrs.push(local);
        let granted = udp::recv_buffer_size(&socket).unwrap_or(0);
        println!("weir: UDP syslog on {local} (receive buffer {granted} bytes)");
        let (sink, counters, stop) = (sink.clone(), counters.clone(), stop_udp.clone());
        udp_threads.push(
            std::thread::Builder::new()
                .name(format!("weir-udp-{local}"))
                .spawn(move || udp::run(socket, udp_opts, sink, counters, stop))?,
        );
    }
    let mut tcp_tasks = Vec::new();
    for listener in tcp_listeners {
        println!(
            "weir: TCP syslog on {} (LF or octet-counted frames)",
            listener.local_addr()?
        );
        tcp_tasks.push(tokio::spawn(listen::tcp::serve(
            listener,
            config.ingest.max_line,
            listen::tcp::TcpLimits {
                max_connections: config.ingest.max_tcp_connections.max(1),
                idle_timeout: config.ingest.tcp_idle_timeout,
            },
            sink.clone(),
            counters.clone(),
            stop_rx.clone(),
        )));
    }
    drop(sink);
    let http_addr = http_listener.local_addr()?;
    let closer = tokio::spawn(windows::run_closer(
        live_windows.clone(),
        windows::Clock::start(),
        stop_rx.clone(),
    ));
    let api = http::routes(http::ApiState {
        router: router.clone(),
        metrics: metrics.clone(),
        receivers: counters.clone(),
        windows: live_windows.clone(),
        node: config.node.clone(),
        boot: boot.clone(),
        shutdown: stop_rx.clone(),
        drains: drain_stats,
        max_tails: config.router.max_tails,
    });
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, api)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });
    println!(
        "weir: HTTP API on http://{http_addr} (/metrics, /api/windows, /api/tail, /api/sources, /healthz)"
    );
    let spool_shown = std::fs::canonicalize(&config.store.spool).unwrap_or(config.store.spool.clone());
    println!(
        "weir: Parquet spool in {} (node {}, {boot})",
        spool_shown.display(),
        config.node
    );
    if let Some(addr) = config.ingest.udp.first() {
        println!("weir: in haproxy.cfg, global or defaults section:  log {addr} local0");
    }

    let demo_stop = Arc::new(AtomicBool::new(false));
    let demo = match (args.demo, udp_addrs.first()) {
        (true, Some(addr)) => {
            let mut target = *addr;
            if target.ip().is_unspecified() {
                target.set_ip(if target.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            println!(
                "weir: demo: sending {} lines/s of HAProxy and app traffic to udp://{target}",
                args.demo_rate
            );
            println!(
                "weir: try:  weir tail --server http://{http_addr} -n 20   (Ctrl-C here stops and flushes)"
            );
            Some(weir_gen::spawn_demo(
                target,
                args.demo_rate,
                1,
                demo_stop.clone(),
            )?)
        }
        (true, None) => return Err(UsageError("--demo needs a UDP listener".into()).into()),
        (false, _) => None,
    };

    wait_for_stop(signals, &args, &router, config.clone()).await;
    demo_stop.store(true, Ordering::Relaxed);
    if let Some(handle) = demo {
        match handle.join() {
            Ok(Ok(report)) => println!("weir: demo: {report}"),
            Ok(Err(e)) => eprintln!("weir: demo generator failed: {e}"),
            Err(_) => eprintln!("weir: demo generator panicked"),
        }
    }
    println!("weir: stopping: draining receivers and the pipeline");

    stop_udp.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in udp_threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "UDP receiver failed"),
            Err(_) => tracing::error!("UDP receiver panicked"),
        }
    }
    for t in tcp_tasks {
        let _ = t.await;
    }
    let (stats, unwritten) = tokio::task::spawn_blocking(move || {
        let (mut total, mut unwritten) = (weir_store::SpoolStats::default(), 0);
        for h in pipeline {
            if let Ok(end) = h.join() {
                total.merge(end.stats);
                unwritten += end.unwritten;
            }
        }
        (total, unwritten)
    })
    .await?;
    // Every line is routed: the drains send what they hold, then stop.
    drain_stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || drains.into_iter().for_each(drain::Drain::join)).await?;
    let _ = closer.await;
    let finishing = live_windows.clone();
    let windows = tokio::task::spawn_blocking(move || finishing.finish()).await?;
    let _ = http_task.await;
    if unwritten > 0 {
        if let Err(e) = &windows {
            tracing::error!(error = %e, "publishing the windows table failed");
        }
        anyhow::bail!(
            "{unwritten} rows could not be written to the spool at the stop; the lines that reached the WAL are replayed at the next start"
        );
    }
    windows.context("publishing the windows table")?;
    println!(
        "weir: stopped; {} rows in {} files published this run under {}",
        stats.line_rows(),
        stats.files.len(),
        spool_shown.display()
    );
    Ok(())
}

/// SIGTERM and SIGHUP, handled by weir from the moment they are installed.
struct StopSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl StopSignals {
    fn install() -> StopSignals {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
            (Ok(term), Ok(hup)) => StopSignals(Some((term, hup))),
            _ => StopSignals(None),
        }
    }
}

/// Waits for SIGTERM or Ctrl-C; on SIGHUP reloads the config file.
async fn wait_for_stop(signals: StopSignals, args: &Args, router: &Router, mut current: Config) {
    let Some((mut term, mut hup)) = signals.0 else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => reload(args, router, &mut current),
        }
    }
}

/// SIGHUP: re-reads the config file. `[router]` limits apply at once; listeners, the HTTP
/// address, the zone and the spool keep their sockets and writers until the next start, and
/// the log says which of them changed.
fn reload(args: &Args, router: &Router, current: &mut Config) {
    let new = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir: SIGHUP: configuration not applied: {e:#}");
            return;
        }
    };
    router.set_config(router_config(&new));
    let mut restart = Vec::new();
    if new.ingest != current.ingest {
        restart.push("[ingest]");
    }
    if new.http != current.http {
        restart.push("[http]");
    }
    if new.store != current.store || new.node != current.node {
        restart.push("[store]/node");
    }
    if restart.is_empty() {
        println!("weir: SIGHUP: configuration reloaded; [router] limits applied");
    } else {
        println!(
            "weir: SIGHUP: [router] limits applied; {} changed and take effect at the next start",
            restart.join(", ")
        );
    }
    current.router = new.router;
}

/// What the bounded buffers of `serve` may hold, each with the keys that set it: their sum is
/// the memory budget `serve` prints at start. Beside it weir needs a fixed overhead (the
/// binary, threads, the source table, TCP connections' read buffers, windows, the spool's
/// open files); ARCHITECTURE.md states it as measured.
pub fn memory_budget(c: &Config, workers: usize) -> Vec<(String, u64)> {
    let workers = workers as u64;
    let r = &c.router;
    vec![
        ("recent lines (router.max_bytes)".into(), r.max_bytes),
        (
            format!("tail queues ({} x router.tail_queue_bytes)", r.max_tails),
            r.max_tails as u64 * r.tail_queue_bytes,
        ),
        ("receive queue (ingest.queue_bytes)".into(), c.ingest.queue_bytes),
        ("spool builders (store.build_buffer)".into(), c.store.build_buffer),
        (
            format!("unpublished row groups ({workers} x store.retry_buffer)"),
            workers * c.store.retry_buffer,
        ),
        (
            format!("WAL frames ({workers} x 1MiB)"),
            if c.store.wal {
                workers * weir_store::wal::FRAME_BUFFER_KEPT as u64
            } else {
                0
            },
        ),
    ]
}

/// `1.5GiB`, `64MiB`, `512KiB`: a size as the config writes it.
fn size_text(n: u64) -> String {
    let (v, unit) = match n {
        n if n >= 1 << 30 => (n as f64 / (1u64 << 30) as f64, "GiB"),
        n if n >= 1 << 20 => (n as f64 / (1u64 << 20) as f64, "MiB"),
        n => (n as f64 / 1024.0, "KiB"),
    };
    let text = format!("{v:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

fn router_config(c: &Config) -> RouterConfig {
    RouterConfig {
        recent_lines: c.router.recent_lines,
        tail_queue: c.router.tail_queue,
        max_sources: c.router.max_sources,
        max_bytes: usize::try_from(c.router.max_bytes).unwrap_or(usize::MAX),
        tail_queue_bytes: usize::try_from(c.router.tail_queue_bytes).unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(argv: &[&str]) -> anyhow::Result<Config> {
        crate::inputs::parse_args::<Args>(argv)?.config()
    }

    #[test]
    fn the_default_memory_budget_on_two_workers_is_610_mib() {
        let budget = memory_budget(&Config::default(), 2);
        let total: u64 = budget.iter().map(|(_, n)| n).sum();
        assert_eq!(total, (256 + 128 + 64 + 128 + 32 + 2) << 20, "{budget:?}");
        assert_eq!(size_text(total), "610MiB");
        assert_eq!(size_text(512 << 10), "512KiB");
        assert_eq!(size_text(3 << 29), "1.5GiB");
    }

    #[test]
    fn timezone_flag_overrides_the_config() {
        assert_eq!(config(&[]).unwrap().ingest.haproxy_timezone, "UTC");
        let c = config(&["--timezone", "Europe/Berlin"]).unwrap();
        assert_eq!(c.ingest.haproxy_timezone, "Europe/Berlin");
        let bad = config(&["--timezone", "Mars/Olympus"]).unwrap_err();
        assert!(bad.downcast_ref::<UsageError>().is_some(), "{bad:#}");
    }
}
