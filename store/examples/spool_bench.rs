//! Measures the spool writer on a log file: Parquet bytes per row against `zstd -3` of the text,
//! the bytes of each `requests` column, and rows/s of append + finish on one thread.
//!
//! `cargo run --release -p weir-store --example spool_bench -- FILE [ZSTD_LEVEL]`

use std::time::Instant;

use weir_ingest::{parse_line, ParseOptions};
use weir_store::{table_files, RecordMeta, SpoolOptions, SpoolWriter, Table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: spool_bench FILE [ZSTD_LEVEL]")?;
    let level: i32 = args.next().map_or(Ok(3), |s| s.parse())?;
    let text = std::fs::read(&path)?;
    let zstd3 = zstd::bulk::compress(&text, 3)?.len();
    let popts = ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    };
    let t0 = Instant::now();
    let lines: Vec<_> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_line(l, &popts))
        .collect();
    let parse = t0.elapsed();
    let dir = tempfile::tempdir()?;
    let opts = SpoolOptions {
        zstd_level: level,
        rotate_age: None,
        ..SpoolOptions::new(dir.path(), "bench", "0")
    };
    let t1 = Instant::now();
    let mut w = SpoolWriter::create(opts)?;
    for line in &lines {
        w.append(line, &RecordMeta::default())?;
    }
    let stats = w.finish()?;
    let write = t1.elapsed();
    let n = lines.len() as f64;
    println!(
        "{} lines, {} text bytes, zstd -3 {zstd3} B ({:.1} B/line)",
        lines.len(),
        text.len(),
        zstd3 as f64 / n
    );
    for t in Table::ALL {
        println!("  {t}: {} rows", stats.rows(t));
    }
    println!(
        "parquet {} B ({:.1} B/line), ratio to zstd -3 {:.3}, {} files",
        stats.bytes(),
        stats.bytes() as f64 / n,
        stats.bytes() as f64 / zstd3 as f64,
        stats.files.len()
    );
    println!(
        "parse {:.0} lines/s; append+finish {:.0} rows/s (one thread)",
        n / parse.as_secs_f64(),
        n / write.as_secs_f64()
    );
    // Where the time goes: builders alone (one huge buffer), then the encoding of it.
    let dir2 = tempfile::tempdir()?;
    let opts = SpoolOptions {
        zstd_level: level,
        rotate_age: None,
        row_group_rows: usize::MAX,
        max_buffered_bytes: usize::MAX,
        ..SpoolOptions::new(dir2.path(), "bench", "0")
    };
    let mut w = SpoolWriter::create(opts)?;
    let t2 = Instant::now();
    for line in &lines {
        w.append(line, &RecordMeta::default())?;
    }
    let t3 = Instant::now();
    w.finish()?;
    println!(
        "append into builders {:.0} rows/s; sort+encode+compress+write {:.0} rows/s",
        n / (t3 - t2).as_secs_f64(),
        n / t3.elapsed().as_secs_f64()
    );
    let mut cols: Vec<(String, i64)> = Vec::new();
    for f in table_files(dir.path(), Table::Requests)? {
        let r = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(f)?)?;
        for rg in parquet::file::reader::FileReader::metadata(&r).row_groups() {
            for c in rg.columns() {
                let name = c.column_path().string();
                match cols.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, b)) => *b += c.compressed_size(),
                    None => cols.push((name, c.compressed_size())),
                }
            }
        }
    }
    cols.sort_by_key(|(_, b)| -b);
    for (name, b) in cols.iter().take(20) {
        println!(
            "  {name:<28} {b:>10} B  {:.2} B/row",
            *b as f64 / stats.rows(Table::Requests).max(1) as f64
        );
    }
    Ok(())
}
