//! `weir`, the binary: measures the flow of an HAProxy fleet's logs.
//!
//! `main` is parse -> init telemetry -> run -> exit code. Each subcommand lives in its own
//! module with an `Args` (clap derive) and a `run`: [`import`] turns logs into the Parquet spool,
//! [`report`] reads logs directly and prints halog-style reports, [`query`] merges the
//! spool's windows into percentiles per group and period, [`gen`] writes realistic
//! HAProxy traffic. [`output`] renders tables as text, CSV or JSON for all of them.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error. A broken pipe (`weir report
//! ... | head`) is success.

mod alloc;
mod config;
mod gen;
mod import;
mod inputs;
mod live;
mod metric_query;
mod output;
mod plot;
mod query;
mod report;
mod serve;
mod spool;
mod tail;
mod top;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weir: HAProxy and app logs in, p99s per backend and Parquet out.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse log files into the Parquet spool (requests, tcp, app, rejects tables).
    Import(import::Args),
    /// Read log files and print a report (halog's reports, with all five timers).
    Report(report::Args),
    /// Percentiles, counts and Apdex per window, backend or server from the spool's windows.
    Query(query::Args),
    /// Draw the windows to SVG or PNG: percentiles over time, a latency heatmap, the distribution.
    Plot(plot::Args),
    /// Generate realistic HAProxy log lines (deterministic for a seed).
    Gen(gen::Args),
    /// Run the syslog server: UDP and TCP in, Parquet spool, live tails and /metrics out.
    Serve(serve::Args),
    /// Print the default configuration, or check a config file.
    Config(config::Args),
    /// Follow the lines of a running server live, as heroku logs --tail does.
    Tail(tail::Args),
    /// A live view of a running server: req/s, errors and percentiles per backend and server.
    Top(top::Args),
    /// Look after a spool: `check` verifies every file and WAL segment, `compact` merges each
    /// partition's files into one.
    Spool(spool::Args),
}

/// A usage or configuration error: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    if matches!(
        cli.command,
        Command::Import(_) | Command::Report(_) | Command::Query(_) | Command::Plot(_)
    ) {
        alloc::for_batch();
    }
    let result = match cli.command {
        Command::Import(a) => import::run(a),
        Command::Report(a) => report::run(a),
        Command::Query(a) => query::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Config(a) => config::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Top(a) => top::run(a),
        Command::Spool(a) => spool::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// The node id used when none is configured: this host's name.
pub fn default_node() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "weir".to_string())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
