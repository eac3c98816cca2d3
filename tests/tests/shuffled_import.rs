//! A log whose lines hop between hundreds of hours imports into about one file per partition.
//!
//! `weir gen` writes a few dozen lines for each of 210 hours; the lines are shuffled with a
//! fixed seed (as a skewed clock or logs merged from several balancers would mix them, only
//! more so) and imported by three workers. The spool must hold at most two files per partition
//! (table and hour) it touches, and every line exactly once: the rows read back are compared,
//! as multisets, with what `weir_ingest::parse_line` makes of the lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, BinaryArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use weir_e2e::{stdout_of, weir_bin as weir};
use weir_ingest::{parse_line, ParseOptions, Zone};
use weir_model::time::{civil_from_micros, now_micros};
use weir_model::Record;
use weir_store::{read_table, Table};

const HOURS: u32 = 210;
const LINES_PER_HOUR: u32 = 60;

/// A row's identity in the spool: its table and the columns that tell it from the others.
fn row_key(line: &weir_model::Line<'_>) -> (Table, String) {
    let table = line.record.table();
    let key = match &line.record {
        Record::Http(r) => format!(
            "{} {}:{:?} {}",
            r.accept_ts, r.client.ip, r.client.port, r.bytes_read
        ),
        Record::Tcp(r) => format!(
            "{} {}:{:?} {}",
            r.accept_ts, r.client.ip, r.client.port, r.bytes_read
        ),
        Record::App(r) => r.message.to_owned(),
        Record::Reject(_) => String::from_utf8_lossy(line.raw).into_owned(),
    };
    (table, key)
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .unwrap_or_else(|| panic!("column {name}"))
}

/// The same identities, read from the spool.
fn spool_keys(spool: &Path, table: Table) -> Vec<String> {
    let mut keys = Vec::new();
    for b in read_table(spool, table).unwrap() {
        for i in 0..b.num_rows() {
            keys.push(match table {
                Table::Requests | Table::Tcp => {
                    let port = column::<Int32Array>(&b, "client_port");
                    let bytes = column::<arrow_array::Int64Array>(&b, "bytes_read");
                    format!(
                        "{} {}:{:?} {}",
                        column::<TimestampMicrosecondArray>(&b, "ts").value(i),
                        column::<StringArray>(&b, "client_ip").value(i),
                        port.is_valid(i).then(|| port.value(i)),
                        bytes.value(i)
                    )
                }
                Table::App => column::<StringArray>(&b, "message").value(i).to_owned(),
                Table::Rejects => {
                    String::from_utf8_lossy(column::<BinaryArray>(&b, "raw").value(i)).into_owned()
                }
                Table::Metrics => unreachable!("the line tables only"),
            });
        }
    }
    keys
}

/// Parquet files under `dir`, by the folder (partition) that holds them.
fn files_by_partition(dir: &Path, out: &mut BTreeMap<String, usize>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_by_partition(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            let folder = p.parent().unwrap().display().to_string();
            *out.entry(folder).or_default() += 1;
        }
    }
}

#[test]
fn shuffled_lines_across_210_hours_make_about_one_file_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for h in 0..HOURS {
        let (day, hour) = (1 + h / 24, h % 24);
        let out = stdout_of(Command::new(weir()).args([
            "gen",
            "--kind",
            "haproxy",
            "--count",
            &LINES_PER_HOUR.to_string(),
            "--seed",
            &(h + 1).to_string(),
            "--start",
            &format!("2026-10-{day:02}T{hour:02}:00:00Z"),
        ]));
        lines.extend(
            out.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    lines.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    let log = dir.path().join("shuffled.log");
    std::fs::write(&log, lines.join(&b'\n')).unwrap();
    let spool = dir.path().join("spool");
    stdout_of(
        Command::new(weir())
            .args(["import", "--threads", "3", "--node", "e2e", "--spool"])
            .arg(&spool)
            .arg(&log),
    );

    let mut files = BTreeMap::new();
    files_by_partition(&spool, &mut files);
    let requests = files.keys().filter(|p| p.contains("/requests/")).count();
    assert!(requests >= HOURS as usize, "{requests} requests partitions");
    let total: usize = files.values().sum();
    assert!(
        total <= 2 * files.len(),
        "{total} files for {} partitions: {files:#?}",
        files.len()
    );

    let opts = ParseOptions {
        zone: Zone::UTC,
        year: civil_from_micros(now_micros()).0,
        ..ParseOptions::default()
    };
    let mut want: BTreeMap<Table, Vec<String>> = BTreeMap::new();
    for l in &lines {
        let (table, key) = row_key(&parse_line(l, &opts));
        want.entry(table).or_default().push(key);
    }
    for table in Table::LINES {
        let mut want = want.remove(&table).unwrap_or_default();
        let mut got = if spool.join(table.name()).is_dir() {
            spool_keys(&spool, table)
        } else {
            Vec::new()
        };
        want.sort();
        got.sort();
        assert_eq!(got.len(), want.len(), "{table}: rows");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{table}: first difference at sorted row {i}: spool {:?}, lines {:?}",
                got[i], want[i]
            );
        }
    }
}
