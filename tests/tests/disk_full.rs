//! A full disk under `weir serve`, on a real small file system: the spool is a tmpfs of 4 MiB
//! mounted by the test. Lines come over TCP until the disk is full; while it is, `/metrics`
//! answers and counts (the disk breaker open, lines not logged, rows held), and a `weir tail`
//! keeps receiving new lines; once space is freed the held rows are written without a restart;
//! after a SIGTERM the spool holds every line accepted, before and during the full disk.
//!
//! Mounting needs root: without it the test is skipped, unless `CI` is set.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{pyarrow_counts, row_count, send_mix, Metrics, TailChild, WeirServe};
use support::skip_unless_ci;
use weir_e2e::{OutputWithin, PROCESS_TIMEOUT};
use weir_store::Table;

/// Lines sent per round.
const ROUND: u64 = 2_000;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`4m`) at `path`; `None` when this machine does not let us.
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stdin(Stdio::null())
            .output_within(PROCESS_TIMEOUT)
            .ok()?;
        if !out.status.success() {
            eprintln!("mount: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(Tmpfs {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(&self.path)
            .stdin(Stdio::null())
            .output_within(PROCESS_TIMEOUT);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s.lines().find(|l| l.starts_with("Uid:"))?;
            Some(uid.split_whitespace().nth(1)? == "0")
        })
        .unwrap_or(false)
}

/// Grows `path` until the file system refuses a write; returns its size.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    let mut size = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => size += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    size
}

/// Lines counted as received into the tables (accepted or rejected).
fn counted(m: &Metrics) -> u64 {
    m.sum("weir_accepted_total") + m.sum("weir_rejected_total")
}

/// Sends a round of lines and waits until all of them are counted; returns the scrape.
fn send_round(weir: &WeirServe, seed: u64, total: u64) -> Metrics {
    send_mix(weir.tcp, seed, ROUND);
    weir.wait_metrics(deadline(), &format!("{total} lines counted"), |m| {
        counted(m) == total
    })
}

#[test]
fn a_full_disk_keeps_tails_and_metrics_and_loses_nothing_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    if !is_root() && std::env::var_os("CI").is_none() {
        skip_unless_ci("root, to mount a tmpfs");
        return;
    }
    let Some(_tmpfs) = Tmpfs::mount(&spool, "4m") else {
        panic!("mounting a tmpfs failed (root, or CI set)");
    };
    let config = "[store]\nrotate_age = \"1s\"\nwal_segment_size = \"64KiB\"\n";
    let weir = WeirServe::start(dir.path(), config);
    let tail = TailChild::spawn(dir.path(), "tail", &weir.url(), &[]);
    weir.wait_tail_sessions(1, deadline());

    // Room to spare: the first lines go to the WAL and to published files.
    let mut sent = ROUND;
    let mut seed = 1;
    send_round(&weir, seed, sent);
    let healthy = weir.wait_metrics(deadline(), "the first files published", |m| {
        m.get("weir_spool_files_total") > 0
    });
    assert_eq!(healthy.get("weir_disk_breaker_open"), 0);
    assert_eq!(healthy.get("weir_wal_unlogged_lines_total"), 0);

    // Fill the disk but for a little: the server's own writes take the rest.
    let filler = spool.join("filler");
    fill(&filler);
    let keep = std::fs::metadata(&filler)
        .unwrap()
        .len()
        .saturating_sub(96 * 1024);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(keep)
        .unwrap();
    let full = loop {
        seed += 1;
        sent += ROUND;
        let m = send_round(&weir, seed, sent);
        if m.get("weir_disk_breaker_open") == 1 {
            break m;
        }
        assert!(seed < 40, "the disk never filled; last /metrics:\n{}", m.text);
    };
    assert!(full.get("weir_disk_breaker_opened_total") >= 1);
    // What the server freed since (WAL segments of published rows) is taken too, so that the
    // disk stays full until the test frees it.
    let top_up = spool.join("top-up");
    fill(&top_up);

    // Full: lines still come in, are counted, parsed and routed; none is logged or written.
    let tail_before = tail.lines().len();
    seed += 1;
    sent += ROUND;
    let during = send_round(&weir, seed, sent);
    assert_eq!(during.get("weir_disk_breaker_open"), 1, "{}", during.text);
    assert!(
        during.get("weir_wal_unlogged_lines_total") >= ROUND,
        "lines not made durable are counted: {}",
        during.text
    );
    assert!(during.get("weir_spool_held_rows") >= ROUND, "{}", during.text);
    assert!(
        tail.wait_until(deadline(), |lines| lines.len() > tail_before),
        "the tail got no line while the disk was full"
    );
    assert_eq!(
        during.sum_where("weir_dropped_total", &["stage=\"spool\""]),
        0,
        "{}",
        during.text
    );

    // Space comes back: the breaker's probe finds it and the held rows are written.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&top_up).unwrap();
    let files_when_full = during.get("weir_spool_files_total");
    let resumed = weir.wait_metrics(deadline(), "the held rows written", |m| {
        m.get("weir_disk_breaker_open") == 0
            && m.get("weir_spool_held_rows") == 0
            && m.get("weir_spool_files_total") > files_when_full
    });
    assert_eq!(counted(&resumed), sent, "no line was lost on the way in");

    let mut weir = weir;
    weir.stop(deadline());
    let stderr = weir.stderr_text();
    let opened = stderr.matches("spool disk writes failed").count() as u64;
    let closed = stderr.matches("spool disk writes work again").count() as u64;
    assert_eq!(
        (opened, closed),
        (resumed.get("weir_disk_breaker_opened_total"), opened),
        "one log line per change of state:\n{stderr}"
    );
    // Thousands of lines and dozens of batches failed; the log says so a few times at most.
    assert!((1..=3).contains(&opened), "{stderr}");
    let rows: u64 = Table::ALL.iter().map(|&t| row_count(&spool, t) as u64).sum();
    assert_eq!(rows, sent, "every line accepted is in the spool");
    pyarrow_counts(&spool, sent);
}
