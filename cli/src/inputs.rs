//! What every command that reads logs shares: the parse options from flags, the worker count,
//! and a progress bar that shows on a terminal and stays quiet when piped.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_ingest::read::Input;
use weir_ingest::{ParseOptions, Zone};

use crate::UsageError;

/// Parse options for `--timezone` (the zone HAProxy wrote accept dates in). RFC 3164 header
/// timestamps get the current year, corrected per line by the request's own date.
pub fn parse_options(timezone: &str) -> anyhow::Result<ParseOptions> {
    let zone = Zone::parse(timezone).ok_or_else(|| {
        UsageError(format!(
            "--timezone {timezone:?}: expected UTC or a fixed offset such as +02:00"
        ))
    })?;
    let (year, ..) = weir_model::time::civil_from_micros(weir_model::time::now_micros());
    Ok(ParseOptions { zone, year })
}

/// Worker threads: the flag, or every core.
pub fn threads(flag: Option<usize>) -> usize {
    flag.filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// The inputs named on the command line; none means standard input.
pub fn inputs(files: &[String]) -> Vec<Input> {
    if files.is_empty() {
        vec![Input::Stdin]
    } else {
        files.iter().map(|f| Input::from_arg(f)).collect()
    }
}

/// A byte-count progress bar over the inputs' sizes, drawn on stderr only when it is a terminal.
pub fn progress_bar(inputs: &[Input]) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let total: Option<u64> = inputs.iter().map(Input::len_hint).sum();
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
