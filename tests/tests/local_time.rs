//! `--timezone Europe/Berlin` through both daylight-saving changes of 2026: `weir import`
//! writes `ts` in UTC right for every line (read back with pyarrow), the repeated autumn hour
//! included, and `weir report --since/--until` counts each UTC hour around the changes alike.
//!
//! Two logs of the same requests, one every two minutes from 23:00 UTC the evening before each
//! change to 03:00 UTC after it, with Berlin wall-clock dates: one with RFC 3164 headers (no
//! offset: the repeated hour is settled by line order) and one with RFC 5424 headers (with the
//! offset, and the lines shuffled so that line order would mislead). Each request's path
//! carries the instant it was written for; Berlin's offsets come from the rule (+01:00, +02:00
//! from 29 March 01:00 UTC, +01:00 from 25 October 01:00 UTC), not from a zone database.
//!
//! Without python3 and pyarrow the import half prints why and passes, unless `CI` is set.

use std::path::Path;
use std::process::Command;

use weir_e2e::{skip_without, weir_bin as weir};
use weir_model::time::{civil_from_micros, micros_from_civil};
use weir_model::Micros;

const TWO_MINUTES: Micros = 120_000_000;

/// The UTC instants of the requests.
fn written() -> Vec<Micros> {
    let mut all = Vec::new();
    for (month, day) in [(3, 28), (10, 24)] {
        let first = micros_from_civil(2026, month, day, 23, 0, 0, 456_000);
        all.extend((0..120).map(|k| first + k * TWO_MINUTES));
    }
    all
}

/// Hours east of UTC in Berlin at `t` (2026 only).
fn berlin_hours(t: Micros) -> i64 {
    let dst_from = micros_from_civil(2026, 3, 29, 1, 0, 0, 0);
    let dst_until = micros_from_civil(2026, 10, 25, 1, 0, 0, 0);
    if t >= dst_from && t < dst_until {
        2
    } else {
        1
    }
}

/// The log line of the request written at `t`.
fn log_line(t: Micros, with_offset: bool) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let hours = berlin_hours(t);
    let (y, m, d, hh, mm, ss, us) = civil_from_micros(t + hours * 3_600_000_000);
    let mon = MON[m as usize - 1];
    let clock = format!("{hh:02}:{mm:02}:{ss:02}");
    let prefix = if with_offset {
        format!(
            "<134>1 {y}-{m:02}-{d:02}T{clock}.{:06}+0{hours}:00 lb2 haproxy 42 - - ",
            us
        )
    } else {
        format!("<134>{mon} {d:2} {clock} lb2 haproxy[42]: ")
    };
    format!(
        "{prefix}192.0.2.7:41000 [{d:02}/{mon}/{y}:{clock}.{:03}] www app/web1 1/0/2/30/33 200 512 - - ---- 3/3/1/1/0 0/0 \"GET /at/{t} HTTP/1.1\"\n",
        us / 1000
    )
}

/// Writes both logs into `dir`; returns their paths.
fn write_logs(dir: &Path) -> [std::path::PathBuf; 2] {
    let times = written();
    let plain: String = times.iter().map(|&t| log_line(t, false)).collect();
    // A fixed shuffle: every seventh line, round and round.
    let n = times.len();
    let shuffled: String = (0..n).map(|k| log_line(times[k * 7 % n], true)).collect();
    let a = dir.join("berlin-rfc3164.log");
    let b = dir.join("berlin-rfc5424.log");
    std::fs::write(&a, plain).unwrap();
    std::fs::write(&b, shuffled).unwrap();
    [a, b]
}

#[test]
fn import_writes_utc_through_both_changes() {
    let py_ok = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !py_ok {
        return skip_without("python3 with pyarrow", "pip install pyarrow");
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = write_logs(dir.path());
    let spool = dir.path().join("spool");
    let out = Command::new(weir())
        .args([
            "import",
            "--timezone",
            "Europe/Berlin",
            "--threads",
            "2",
            "--spool",
        ])
        .arg(&spool)
        .args(&logs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = Command::new("python3")
        .arg("-c")
        .arg(concat!(
            "import sys, pyarrow.compute as pc, pyarrow as pa, pyarrow.dataset as ds\n",
            "t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()\n",
            "assert str(t.schema.field('ts').type) == 'timestamp[us, tz=UTC]', t.schema.field('ts').type\n",
            "for p, ts in zip(t.column('path').to_pylist(), pc.cast(t.column('ts'), pa.int64()).to_pylist()):\n",
            "    print(p, ts)\n",
        ))
        .arg(spool.join("requests"))
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let rows: Vec<(Micros, Micros)> = String::from_utf8(read.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (path, ts) = l.split_once(' ').unwrap();
            let want = path.strip_prefix("/at/").unwrap().parse().unwrap();
            (want, ts.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 2 * written().len());
    let wrong: Vec<_> = rows
        .iter()
        .filter(|(want, ts)| want != ts)
        .map(|(want, ts)| (civil_from_micros(*want), civil_from_micros(*ts)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} rows off (written, read): {wrong:?}",
        wrong.len()
    );
}

#[test]
fn report_counts_each_utc_hour_around_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let logs = write_logs(dir.path());
    let times = written();
    for (month, day) in [(3, 29), (10, 25)] {
        for hour in 0..3 {
            let since = micros_from_civil(2026, month, day, hour, 0, 0, 0);
            let until = since + 3_600_000_000;
            let rfc = |t: Micros| {
                let (y, m, d, h, ..) = civil_from_micros(t);
                format!("{y}-{m:02}-{d:02}T{h:02}:00:00Z")
            };
            let out = Command::new(weir())
                .args([
                    "report",
                    "status",
                    "--format",
                    "csv",
                    "--timezone",
                    "Europe/Berlin",
                ])
                .args(["--since", &rfc(since), "--until", &rfc(until)])
                .args(&logs)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let want = 2 * times.iter().filter(|t| (since..until).contains(*t)).count();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("status,count\n200,{want}\n"),
                "{} to {}",
                rfc(since),
                rfc(until)
            );
        }
    }
}
