//! `weir spool check DIR` and `weir spool compact DIR`.
//!
//! `check` verifies a spool as a restart would meet it. Every published Parquet file of every
//! table is decoded to its last row (a damaged file is named, with the error); every WAL segment
//! is read frame by frame (the lines a restart would replay, and a torn tail's bytes);
//! temporaries a crash left behind are counted (a restart sweeps them), and so are the files of
//! an interrupted compaction. Exit code 1 when a file is damaged or a segment torn.
//!
//! `compact` merges each partition's files into one, one partition at a time, through
//! [`weir_store::compact`], after finishing what an interrupted compaction left.

use std::path::{Path, PathBuf};

use anyhow::Context;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use weir_store::Table;

use crate::output::{Cell, Format, Table as OutTable};

/// `weir spool`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SpoolCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SpoolCommand {
    /// Verify every Parquet file and WAL segment of a spool and report what a restart would
    /// replay; exit 1 if anything is damaged.
    Check {
        /// The spool folder.
        dir: PathBuf,
    },
    /// Merge the files of each hour partition into one.
    ///
    /// Every table's partitions (requests, tcp, app, rejects, windows), or those --partition
    /// selects, are compacted one at a time: the partition's files are merged into one
    /// `*.compacted.parquet` (same rows, schema and compression; row groups of 128Ki rows, each
    /// sorted by time), which is published atomically, then the files it replaces are deleted.
    /// A running `weir serve` may go on writing: only the files present when a partition is
    /// listed are merged, and files published later stay beside the compacted one (compact
    /// again to merge them). A compaction that is killed is finished by the next `weir spool
    /// compact` or `weir serve` start, and no row is ever counted twice by weir; a reader that
    /// lists the files itself (DuckDB, pyarrow, Spark) may see a partition's rows twice in the
    /// moment between the publication and the deletions (after a kill at that moment, until
    /// the next compaction or start; `weir spool check` tells).
    Compact {
        /// The spool folder.
        dir: PathBuf,
        /// Only the partitions under TABLE[/date=YYYY-MM-DD[/hour=HH]], e.g.
        /// `requests/date=2026-11-30/hour=14` or `app/date=2026-11-30` (repeatable).
        #[arg(long, value_name = "TABLE[/date=D[/hour=H]]", value_parser = parse_selector)]
        partition: Vec<PathBuf>,
    },
}

/// Parses `TABLE[/date=YYYY-MM-DD[/hour=HH]]` into the relative folder it names.
fn parse_selector(s: &str) -> Result<PathBuf, String> {
    let syntax = "use TABLE[/date=YYYY-MM-DD[/hour=HH]]";
    let mut parts = s.trim_end_matches('/').split('/');
    let table = parts.next().unwrap_or_default();
    let tables = weir_store::compact::table_names();
    if !tables.contains(&table) {
        return Err(format!(
            "{table:?} is not a table ({}); {syntax}",
            tables.join(", ")
        ));
    }
    let mut out = PathBuf::from(table);
    if let Some(date) = parts.next() {
        let ok = date.strip_prefix("date=").is_some_and(|d| {
            let b = d.as_bytes();
            b.len() == 10
                && b.iter().enumerate().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        *c == b'-'
                    } else {
                        c.is_ascii_digit()
                    }
                })
        });
        if !ok {
            return Err(format!("{date:?} is not date=YYYY-MM-DD; {syntax}"));
        }
        out.push(date);
    }
    if let Some(hour) = parts.next() {
        let ok = hour
            .strip_prefix("hour=")
            .is_some_and(|h| h.len() == 2 && h.parse::<u8>().is_ok_and(|h| h < 24));
        if !ok {
            return Err(format!("{hour:?} is not hour=00 to hour=23; {syntax}"));
        }
        out.push(hour);
    }
    if parts.next().is_some() {
        return Err(format!("{s:?}: too many parts; {syntax}"));
    }
    Ok(out)
}

/// One table's files.
#[derive(Debug, Default, PartialEq)]
struct TableCheck {
    files: u64,
    rows: u64,
    damaged: Vec<(PathBuf, String)>,
}

/// Decodes every row of `files`.
fn check_files(files: &[PathBuf]) -> TableCheck {
    let mut out = TableCheck::default();
    for path in files {
        out.files += 1;
        let read = (|| -> Result<u64, String> {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| e.to_string())?;
            let mut rows = 0;
            for batch in reader {
                rows += batch.map_err(|e| e.to_string())?.num_rows() as u64;
            }
            Ok(rows)
        })();
        match read {
            Ok(rows) => out.rows += rows,
            Err(e) => out.damaged.push((path.clone(), e)),
        }
    }
    out
}

/// Files named like a writer's temporaries (`.*.tmp`, `.*.spill`) anywhere under `dir`.
fn temporaries(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            temporaries(&path, out);
        } else if name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".spill")) {
            out.push(path);
        }
    }
}

/// Runs `weir spool`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        SpoolCommand::Check { dir } => check(&dir),
        SpoolCommand::Compact { dir, partition } => compact(&dir, &partition),
    }
}

fn ensure_spool(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        dir.join("FORMAT").is_file(),
        "{}: not a weir spool (no FORMAT file)",
        dir.display()
    );
    Ok(())
}

/// Tells on stderr that the spool's lock is held by someone else.
fn waiting(dir: &Path) -> impl FnOnce() + '_ {
    move || {
        eprintln!(
            "weir: waiting for the compaction lock of {} (a `weir spool compact` or a starting `weir serve`)",
            dir.display()
        )
    }
}

/// `weir spool compact`.
fn compact(dir: &Path, selectors: &[PathBuf]) -> anyhow::Result<()> {
    use weir_store::compact::{self, SpoolLock};
    ensure_spool(dir)?;
    compact::check_format(dir)?;
    let lock = SpoolLock::exclusive(dir, waiting(dir))?;
    let finished = compact::finish_pending(dir, true)?;
    drop(lock);
    let mut parts = compact::partitions(dir)?;
    for sel in selectors {
        if !parts.iter().any(|p| p.name.starts_with(sel)) {
            return Err(crate::UsageError(format!(
                "--partition {}: no such partition in {}",
                sel.display(),
                dir.display()
            ))
            .into());
        }
    }
    if !selectors.is_empty() {
        parts.retain(|p| selectors.iter().any(|s| p.name.starts_with(s)));
    }
    let opts = compact::CompactOptions::default();
    let mut table = OutTable::new([
        "table",
        "partition",
        "files",
        "rows",
        "bytes before",
        "bytes after",
    ]);
    let (mut partitions, mut files) = (0u64, 0u64);
    for part in &parts {
        let _lock = SpoolLock::exclusive(dir, waiting(dir))?;
        let Some(done) = compact::compact_partition(part, &opts)
            .map_err(anyhow::Error::new)
            .with_context(|| format!("compacting {}", part.dir.display()))?
        else {
            continue;
        };
        partitions += 1;
        files += done.inputs.len() as u64;
        let within = part.name.strip_prefix(part.table).unwrap_or(&part.name);
        table.push([
            Cell::from(part.table),
            Cell::from(within.display().to_string().as_str()),
            Cell::count(done.inputs.len() as u64),
            Cell::count(done.rows),
            Cell::count(done.bytes_before),
            Cell::count(done.bytes_after),
        ]);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    use std::io::Write;
    if !finished.superseded.is_empty() || !finished.temporaries.is_empty() {
        writeln!(
            out,
            "finished an interrupted compaction: removed {} files already merged and {} temporaries",
            finished.superseded.len(),
            finished.temporaries.len()
        )?;
    }
    if partitions > 0 {
        table.render(Format::Table, &mut out)?;
    }
    writeln!(
        out,
        "compacted {partitions} partitions of {} ({files} files into {partitions})",
        parts.len()
    )?;
    Ok(())
}

/// `weir spool check`.
fn check(dir: &Path) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    ensure_spool(&dir)?;
    // A compaction at work on a partition is waited for, so that no file it deletes is
    // reported missing.
    let _lock = weir_store::compact::SpoolLock::shared(&dir, waiting(&dir))?;
    let unfinished = weir_store::compact::pending(&dir)?;
    let mut table = OutTable::new(["table", "files", "rows", "damaged files"]);
    let mut damaged = Vec::new();
    let mut tables: Vec<(String, Vec<PathBuf>)> = Table::ALL
        .iter()
        .map(|t| Ok((t.name().to_owned(), weir_store::table_files(&dir, *t)?)))
        .collect::<Result<_, weir_store::StoreError>>()?;
    tables.push((
        weir_store::windows::WINDOWS.to_owned(),
        weir_store::windows::window_files(&dir, None, None)?,
    ));
    for (name, files) in &tables {
        let c = check_files(files);
        table.push([
            Cell::from(name.as_str()),
            Cell::count(c.files),
            Cell::count(c.rows),
            Cell::count(c.damaged.len() as u64),
        ]);
        damaged.extend(c.damaged);
    }
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wal"))
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    let (mut lines, mut torn) = (0u64, Vec::new());
    for path in &segments {
        let seq = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.rsplit('-').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let contents = weir_store::wal::read_segment(path, seq)?;
        lines += contents.lines;
        if let Some(t) = contents.torn {
            torn.push((path.clone(), t));
        }
    }
    let mut tmp = Vec::new();
    temporaries(&dir, &mut tmp);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    table.render(Format::Table, &mut out)?;
    use std::io::Write;
    writeln!(
        out,
        "\nWAL: {} segments, {lines} lines a restart would replay (lines already in a published file are skipped then), {} torn",
        segments.len(),
        torn.len()
    )?;
    writeln!(out, "temporaries a restart sweeps: {}", tmp.len())?;
    if !unfinished.superseded.is_empty() {
        writeln!(
            out,
            "interrupted compaction: {} files whose rows a compacted file beside them holds (not counted above; other readers see them twice until `weir spool compact` or a `weir serve` start removes them)",
            unfinished.superseded.len()
        )?;
    }
    for (path, e) in &damaged {
        writeln!(out, "damaged: {}: {e}", path.display())?;
    }
    for (path, t) in &torn {
        writeln!(
            out,
            "torn: {}: {} bytes from offset {} are lost",
            path.display(),
            t.bytes,
            t.offset
        )?;
    }
    if !damaged.is_empty() || !torn.is_empty() {
        anyhow::bail!(
            "{} damaged files, {} torn WAL segments",
            damaged.len(),
            torn.len()
        );
    }
    Ok(())
}
