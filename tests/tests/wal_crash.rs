//! Crash recovery of `weir serve`, as a black box: lines sent over TCP until `/metrics` counts
//! every one, then the server is killed (`kill -9`, or aborted by the
//! `WEIR_CRASH_AFTER_PUBLISH` fail point in the middle of publishing its partitions or of
//! replaying its WAL) and started again on the same spool; after a SIGTERM the spool must hold
//! every line exactly once. The same holds when `weir spool compact` is aborted at each of its
//! steps by the `WEIR_CRASH_IN_COMPACTION` fail point before the restart. A WAL segment cut short loses only the frames after the cut, and the
//! restart reports the loss on `/metrics` and in its log.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_array::{Array, Int32Array, StringArray, TimestampMicrosecondArray};
use serve_support::{pyarrow_counts, read_table, row_count, send_mix, Metrics, WeirServe};
use weir_e2e::{OutputWithin, PROCESS_TIMEOUT};
use weir_store::Table;

/// Lines sent per test: HAProxy and application lines of several hour partitions and tables.
const LINES: u64 = 20_000;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// Rows expected per table from a scrape: accepted lines per table, rejects in `rejects`, and
/// the l2met metrics of the app lines in `metrics` (rows handed to the spool).
fn accepted_per_table(m: &Metrics) -> BTreeMap<Table, u64> {
    let mut out = BTreeMap::new();
    for table in [Table::Requests, Table::Tcp, Table::App] {
        let n = m.get(&format!("weir_accepted_total{{table=\"{}\"}}", table.name()));
        out.insert(table, n);
    }
    out.insert(Table::Rejects, m.sum("weir_rejected_total"));
    out.insert(Table::Metrics, m.get("weir_spool_rows_total{table=\"metrics\"}"));
    out
}

/// Waits until `LINES` lines are counted as accepted (in the WAL); returns the rows each table
/// must end with.
fn wait_all_accepted(weir: &WeirServe) -> BTreeMap<Table, u64> {
    let m = weir.wait_metrics(deadline(), &format!("{LINES} lines accepted"), |m| {
        m.sum("weir_accepted_total") + m.sum("weir_rejected_total") == LINES
    });
    accepted_per_table(&m)
}

/// Starts a server, sends `LINES` lines and waits until every one is accepted.
fn accept_all(dir: &Path, config: &str) -> (WeirServe, BTreeMap<Table, u64>) {
    let weir = WeirServe::start(dir, config);
    send_mix(weir.tcp, 11, LINES);
    let expected = wait_all_accepted(&weir);
    (weir, expected)
}

/// Rows in the line tables of the spool.
fn spool_lines(spool: &Path) -> u64 {
    Table::LINES.iter().map(|&t| row_count(spool, t) as u64).sum()
}

/// The node's WAL segments in the spool.
fn segments(spool: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(spool.join("wal"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "wal"));
    out.sort();
    out
}

/// Every table holds exactly the rows expected, and no request row twice.
fn assert_each_line_once(spool: &Path, expected: &BTreeMap<Table, u64>) {
    let got: BTreeMap<Table, u64> = expected
        .keys()
        .map(|&t| (t, row_count(spool, t) as u64))
        .collect();
    assert_eq!(&got, expected, "rows per table");
    assert!(got[&Table::Metrics] > 0, "the app lines carry l2met metrics");
    assert_eq!(Table::LINES.iter().map(|t| got[t]).sum::<u64>(), LINES);
    // Every generated request has its own accept time and client port: a request replayed
    // twice would show up as a repeated key.
    let mut keys = HashSet::new();
    for batch in read_table(spool, Table::Requests) {
        let col = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
        let (ts, ip, port) = (col("ts"), col("client_ip"), col("client_port"));
        let ts = ts.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        let ip = ip.as_any().downcast_ref::<StringArray>().unwrap();
        let port = port.as_any().downcast_ref::<Int32Array>().unwrap();
        for i in 0..batch.num_rows() {
            let key = (
                ts.value(i),
                ip.value(i).to_owned(),
                port.is_valid(i).then(|| port.value(i)),
            );
            assert!(keys.insert(key.clone()), "request {key:?} is in the spool twice");
        }
    }
    assert!(segments(spool).is_empty(), "a clean stop leaves no WAL segment");
}

/// Starts a server on the spool a crash left (it replays the WAL first) and stops it cleanly.
fn restart_and_stop(dir: &Path) -> Metrics {
    let mut weir = WeirServe::start(dir, "");
    let m = weir.metrics();
    weir.stop(deadline());
    m
}

/// Restarts on a spool that held `published` rows after the crash: the replay writes the rest,
/// and the spool ends with every line once. Returns the restarted server's scrape.
fn recover_and_check(dir: &Path, published: u64, expected: &BTreeMap<Table, u64>) -> Metrics {
    let m = restart_and_stop(dir);
    let written = m.get("weir_wal_replayed_lines_total{outcome=\"written\"}");
    assert_eq!(written, LINES - published);
    assert_each_line_once(&dir.join("spool"), expected);
    m
}

/// After a crash that left part of the WAL's lines published: the restart skips exactly those.
fn recover_after_partial_publication(dir: &Path, expected: &BTreeMap<Table, u64>) {
    let published = spool_lines(&dir.join("spool"));
    assert!(
        published > 0 && published < LINES,
        "{published} rows published before the crash"
    );
    let m = recover_and_check(dir, published, expected);
    let skipped = m.get("weir_wal_replayed_lines_total{outcome=\"already_published\"}");
    assert_eq!(skipped, published);
}

/// `weir spool check SPOOL`: whether it passed, and what it printed.
fn spool_check(spool: &Path) -> (bool, String) {
    let out = std::process::Command::new(weir_e2e::weir_bin())
        .args(["spool", "check"])
        .arg(spool)
        .stdin(std::process::Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .expect("running weir spool check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn kill_9_after_lines_are_accepted_loses_none_and_doubles_none() {
    let dir = tempfile::tempdir().unwrap();
    let (mut weir, expected) = accept_all(dir.path(), "");
    let on_disk: u64 = segments(&weir.spool)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk > 0, "the WAL holds the unpublished lines");
    weir.wait_metrics(deadline(), &format!("weir_wal_disk_bytes at {on_disk}"), |m| {
        m.sum("weir_wal_disk_bytes") == on_disk
    });
    weir.kill9();
    let (ok, report) = spool_check(&weir.spool);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{LINES} lines a restart would replay")),
        "{report}"
    );
    let tables = ["requests", "tcp", "app", "rejects"];
    assert!(
        tables.iter().all(|t| !dir.path().join("spool").join(t).exists()),
        "nothing was published before the kill (rotate_age is 5 minutes)"
    );
    let m = recover_and_check(dir.path(), 0, &expected);
    assert_eq!(m.get("weir_wal_torn_frames_total"), 0);
    pyarrow_counts(&weir.spool, LINES);
}

/// Files published by age and WAL segments released while lines keep coming, then a kill: the
/// restart replays only what was not yet published.
#[test]
fn kill_9_after_some_partitions_were_published_and_segments_released() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[store]\nrotate_age = \"1s\"\nwal_segment_size = \"64KiB\"\n";
    let mut weir = WeirServe::start(dir.path(), config);
    send_mix(weir.tcp, 11, LINES / 2);
    weir.wait_metrics(deadline(), "files published and segments released", |m| {
        m.get("weir_spool_files_total") > 0 && m.get("weir_wal_segments_released_total") > 0
    });
    send_mix(weir.tcp, 12, LINES / 2);
    let expected = wait_all_accepted(&weir);
    weir.kill9();
    let published: u64 = spool_lines(&weir.spool);
    assert!(published > 0, "some rows were published before the kill");
    recover_and_check(dir.path(), published, &expected);
}

/// The kill lands in the middle of publishing partitions: the shutdown's publication of every
/// open partition is cut after its first file by the fail point, so some partitions of the WAL's
/// lines are in the spool and the others are not.
#[test]
fn a_crash_between_the_files_of_a_rotation_replays_only_what_was_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let config = "";
    let mut cmd = WeirServe::command(dir.path(), config, &[]);
    cmd.env("WEIR_CRASH_AFTER_PUBLISH", "1");
    let mut weir = WeirServe::start_command(dir.path(), cmd);
    send_mix(weir.tcp, 11, LINES);
    let expected = wait_all_accepted(&weir);
    weir.terminate();
    let exit = weir.wait_exit(deadline());
    assert!(!exit.success(), "the fail point aborts the publication: {exit}");
    assert!(
        weir.stderr_text().contains("WEIR_CRASH_AFTER_PUBLISH"),
        "{}",
        weir.stderr_text()
    );
    recover_after_partial_publication(dir.path(), &expected);
}

/// A crash during the replay itself: the second start is aborted after the first file the
/// replay publishes; the third replays the rest.
#[test]
fn a_crash_during_replay_is_recovered_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut weir, expected) = accept_all(dir.path(), "");
    weir.kill9();
    let out = WeirServe::command(dir.path(), "", &[])
        .env("WEIR_CRASH_AFTER_PUBLISH", "1")
        .output_within(PROCESS_TIMEOUT)
        .expect("weir serve");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "aborted during replay: {stdout}");
    assert!(stdout.contains("weir: WAL: replaying"), "{stdout}");
    assert!(
        !stdout.contains("HTTP API on"),
        "the crash came before serving: {stdout}"
    );
    recover_after_partial_publication(dir.path(), &expected);
}

/// The last segment cut short inside its last frame: the restart recovers every frame before
/// the cut, counts the torn frame and the bytes lost, and logs them.
#[test]
fn a_torn_wal_tail_loses_only_its_last_frame_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut weir, _) = accept_all(dir.path(), "");
    weir.kill9();
    let last = segments(&weir.spool).pop().expect("a WAL segment");
    let seq = |p: &Path| -> u64 {
        let stem = p.file_stem().unwrap().to_str().unwrap();
        stem.rsplit('-').next().unwrap().parse().unwrap()
    };
    let whole = weir_store::wal::read_segment(&last, seq(&last)).unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);
    let cut = weir_store::wal::read_segment(&last, seq(&last)).unwrap();
    let lost = whole.lines - cut.lines;
    assert!(lost > 0 && cut.torn.is_some(), "the cut tears the last frame");
    let (ok, report) = spool_check(&weir.spool);
    assert!(!ok, "a torn segment fails the check: {report}");
    assert!(
        report.contains(&format!("{} lines a restart would replay", LINES - lost))
            && report.contains("1 torn"),
        "{report}"
    );

    let mut weir = WeirServe::start(dir.path(), "");
    let m = weir.metrics();
    let stderr = weir.stderr_text();
    weir.stop(deadline());
    assert_eq!(m.get("weir_wal_torn_frames_total"), 1);
    assert_eq!(m.get("weir_wal_torn_bytes_total"), cut.torn.unwrap().bytes);
    assert_eq!(
        m.get("weir_wal_replayed_lines_total{outcome=\"written\"}"),
        LINES - lost
    );
    assert!(stderr.contains("torn or corrupt frame"), "{stderr}");
    let rows: u64 = Table::LINES
        .iter()
        .map(|&t| row_count(&weir.spool, t) as u64)
        .sum();
    assert_eq!(rows, LINES - lost);
}

/// The spool of a server that published every line it received in small files (files of a
/// second, in four rounds, so each partition has several) and was then killed: `dir/spool`
/// holds the files and the WAL segments of every line (one open segment per worker), which a
/// restart must skip entirely. Returns the rows each table must end with.
fn killed_with_small_files(dir: &Path) -> BTreeMap<Table, u64> {
    let mut weir = WeirServe::start(dir, "[store]\nrotate_age = \"1s\"\n");
    for round in 1..=4 {
        send_mix(weir.tcp, 20 + round, LINES / 4);
        let sent = round * LINES / 4;
        let until = deadline();
        while spool_lines(&weir.spool) < sent {
            assert!(Instant::now() < until, "{sent} rows not published in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let expected = wait_all_accepted(&weir);
    weir.kill9();
    assert_eq!(spool_lines(&weir.spool), LINES);
    assert!(
        !segments(&weir.spool).is_empty(),
        "the WAL holds the published lines"
    );
    expected
}

/// A copy of the folder `from` (spool, config) at `to`.
fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// `weir spool compact SPOOL`, with `WEIR_CRASH_IN_COMPACTION=crash` when given: whether it
/// succeeded, and its stdout and stderr.
fn spool_compact(spool: &Path, crash: Option<&str>) -> (bool, String) {
    let mut cmd = std::process::Command::new(weir_e2e::weir_bin());
    cmd.args(["spool", "compact"])
        .arg(spool)
        .stdin(std::process::Stdio::null());
    if let Some(step) = crash {
        cmd.env("WEIR_CRASH_IN_COMPACTION", step);
    }
    let out = cmd.output_within(PROCESS_TIMEOUT).expect("weir spool compact");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The Parquet files of the line tables and their temporaries (`*.parquet.tmp`).
fn parquet_files(spool: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = ["requests", "tcp", "app", "rejects"]
        .iter()
        .map(|t| spool.join(t))
        .collect();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().contains(".parquet") {
                out.push(path);
            }
        }
    }
    out
}

/// The compaction of a killed server's spool, aborted at each of its steps by the
/// `WEIR_CRASH_IN_COMPACTION` fail point, then finished by `finish`: weir counts every row once
/// after the crash, and after `finish` and a restart (which replays the WAL, skipping every
/// line since the compacted files hold them) and SIGTERM the spool holds every line once, for
/// weir, for pyarrow and for `weir spool check`.
fn a_crash_during_compaction(finish: &str) {
    let base = tempfile::tempdir().unwrap();
    let expected = killed_with_small_files(base.path());
    let published = LINES;
    for crash in ["written", "published", "deleted"] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("copy");
        copy_dir(base.path(), &dir);
        let spool = dir.join("spool");
        let files_before = parquet_files(&spool).len();
        let (ok, out) = spool_compact(&spool, Some(crash));
        assert!(!ok && out.contains("WEIR_CRASH_IN_COMPACTION"), "{crash}: {out}");
        assert_eq!(
            spool_lines(&spool),
            published,
            "{crash}: weir counts each row once"
        );
        let (ok, report) = spool_check(&spool);
        assert!(ok, "{crash}: {report}");
        let files = parquet_files(&spool);
        let temporaries = files
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(".compacted.parquet.tmp"))
            .count();
        let (published_now, deleted) = match crash {
            "written" => (false, 0),
            "published" => (true, 0),
            _ => (true, 1),
        };
        assert_eq!(temporaries, usize::from(!published_now), "{crash}: {files:?}");
        assert_eq!(
            files.len() - temporaries,
            files_before + usize::from(published_now) - deleted,
            "{crash}: what a reader listing the folders finds"
        );
        assert_eq!(
            report.contains("interrupted compaction: "),
            published_now,
            "{crash}: {report}"
        );
        if finish == "compact" {
            let (ok, out) = spool_compact(&spool, None);
            assert!(ok, "{crash}: {out}");
            assert!(
                out.contains("finished an interrupted compaction"),
                "{crash}: {out}"
            );
            assert_eq!(spool_lines(&spool), published, "{crash}");
        }
        let m = recover_and_check(&dir, published, &expected);
        let skipped = m.get("weir_wal_replayed_lines_total{outcome=\"already_published\"}");
        assert_eq!(
            skipped, published,
            "{crash}: the compacted files' rows are skipped"
        );
        pyarrow_counts(&spool, LINES);
        let (ok, report) = spool_check(&spool);
        assert!(
            ok && !report.contains("interrupted compaction")
                && report.contains("temporaries a restart sweeps: 0"),
            "{crash}: {report}"
        );
    }
}

#[test]
fn a_crash_during_compaction_is_finished_by_the_next_compaction() {
    a_crash_during_compaction("compact");
}

#[test]
fn a_crash_during_compaction_is_finished_by_the_next_serve_start() {
    a_crash_during_compaction("serve");
}
