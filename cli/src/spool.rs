//! `weir spool check DIR`: verifies a spool as a restart would meet it. Every published
//! Parquet file of every table is decoded to its last row (a damaged file is named, with the
//! error); every WAL segment is read frame by frame (the lines a restart would replay, and a
//! torn tail's bytes); temporaries a crash left behind are counted (a restart sweeps them).
//! Exit code 1 when a file is damaged or a segment torn.

use std::path::{Path, PathBuf};

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
    let SpoolCommand::Check { dir } = args.command;
    anyhow::ensure!(
        dir.join("FORMAT").is_file(),
        "{}: not a weir spool (no FORMAT file)",
        dir.display()
    );
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
