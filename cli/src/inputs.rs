//! What every command that reads logs shares: the parse options from flags (the zone, the
//! custom log formats), the worker count, and a progress bar that shows on a terminal and stays
//! quiet when piped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weir_ingest::haproxy::config;
use weir_ingest::haproxy::logformat::{FormatSet, Formats};
use weir_ingest::read::Input;
use weir_ingest::{ParseOptions, Zone};
use weir_model::time::{micros_from_civil, MICROS_PER_SEC};
use weir_model::Micros;

use crate::UsageError;

/// The help of `--timezone` (report, import, serve).
pub const TIMEZONE_HELP: &str = "The zone HAProxy (and the syslog daemon, for RFC 3164 headers) \
wrote zone-less dates in: UTC, a fixed offset such as +02:00, or an IANA name such as \
Europe/Berlin (daylight saving applied). A time skipped in spring is read with the offset \
before the change; a time repeated in autumn is read closest to the line's syslog header when \
it carries an offset (RFC 5424, ISO), else closest to the line before it (serve: to the time it \
arrived). Dates with their own offset (CLF) keep it.";

/// Parse options for `--timezone` (the zone HAProxy wrote accept dates in). RFC 3164 header
/// timestamps get the current year, corrected per line by the request's own date.
pub fn parse_options(timezone: &str) -> anyhow::Result<ParseOptions> {
    let zone = Zone::parse(timezone).ok_or_else(|| {
        UsageError(format!(
            "--timezone {timezone:?}: expected UTC, a fixed offset such as +02:00, or an IANA \
             zone such as Europe/Berlin"
        ))
    })?;
    let (year, ..) = weir_model::time::civil_from_micros(weir_model::time::now_micros());
    Ok(ParseOptions {
        zone,
        year,
        ..ParseOptions::default()
    })
}

/// `--log-format` and `--haproxy-config`: how HAProxy wrote the lines, when not in a built-in
/// layout.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FormatArgs {
    /// HAProxy log-format of the lines, in HAProxy's syntax (the string after `log-format` in
    /// haproxy.cfg, without the config's quotes): the default for frontends without their own.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// haproxy.cfg to read each frontend's format from (`log-format`, `option httplog`,
    /// `option httpslog`, `option tcplog`, with defaults sections applied as HAProxy does).
    #[arg(long, value_name = "FILE")]
    pub haproxy_config: Option<PathBuf>,
}

/// The custom formats of `--log-format` and `--haproxy-config` (or their config keys), compiled
/// once for the whole process; `None` when there are none (the built-in layouts need no set).
/// A format or configuration that cannot be read is a usage error naming the `%` item or the
/// line.
pub fn formats(log_format: Option<&str>, haproxy_config: Option<&Path>) -> anyhow::Result<Option<Formats>> {
    let mut set = match haproxy_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("--haproxy-config {}: {e}", path.display())))?;
            config::format_set(&text)
                .map_err(|e| UsageError(format!("--haproxy-config {}: {e}", path.display())))?
        }
        None => FormatSet::new(),
    };
    if let Some(f) = log_format {
        set.set_default(f)
            .map_err(|e| UsageError(format!("--log-format: {e}")))?;
    }
    if set.is_empty() {
        return Ok(None);
    }
    // Built once per process and read by every worker for its whole life.
    Ok(Some(Formats(Box::leak(Box::new(set)))))
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

/// An instant on the command line: RFC 3339 (`2026-11-22T01:22:06Z`, `...06.5+02:00`, a space
/// for the `T`) or a date alone (`2026-11-22`, midnight UTC). A time without a zone is refused:
/// the user must say which instant they mean.
pub fn parse_time(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0, |a, c| a * 10 + u32::from(c - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if b.len() == 10 {
        return Some(micros_from_civil(y, mo, d, 0, 0, 0, 0));
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut us = 0u32;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for k in 0..6 {
            us = us * 10
                + if k < digits {
                    u32::from(b[i + 1 + k] - b'0')
                } else {
                    0
                };
        }
        i += 1 + digits;
    }
    let offset_secs: i64 = match &b[i..] {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let off = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    Some(micros_from_civil(y, mo, d, h, mi, sec, us) - offset_secs * MICROS_PER_SEC)
}

/// A command's flags parsed from `argv` (without the program name), for the flag tests.
#[cfg(test)]
pub fn parse_args<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    #[derive(clap::Parser)]
    struct Command<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    <Command<A> as clap::Parser>::try_parse_from(std::iter::once("weir").chain(argv.iter().copied()))
        .map(|c| c.args)
}
