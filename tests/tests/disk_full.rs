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

/// A server on a spool that is a 4 MiB tmpfs, and the lines it was sent so far.
struct FullDisk {
    // Dropped in this order: the server, the mount, the folder.
    weir: WeirServe,
    _tmpfs: Tmpfs,
    spool: PathBuf,
    sent: u64,
    seed: u64,
    /// Files the test wrote to fill the disk.
    fillers: Vec<PathBuf>,
}

impl FullDisk {
    /// Mounts the tmpfs under `dir` and starts a server on it; `None` when skipped.
    fn start(dir: &Path) -> Option<FullDisk> {
        let spool = dir.join("spool");
        if !is_root() && std::env::var_os("CI").is_none() {
            skip_unless_ci("root, to mount a tmpfs");
            return None;
        }
        let Some(tmpfs) = Tmpfs::mount(&spool, "4m") else {
            panic!("mounting a tmpfs failed (root, or CI set)");
        };
        let config = "[store]\nrotate_age = \"1s\"\nwal_segment_size = \"64KiB\"\n";
        Some(FullDisk {
            weir: WeirServe::start(dir, config),
            _tmpfs: tmpfs,
            spool,
            sent: 0,
            seed: 0,
            fillers: Vec::new(),
        })
    }

    /// Sends a round of lines and waits until all of them are counted.
    fn round(&mut self) -> Metrics {
        self.seed += 1;
        self.sent += ROUND;
        send_round(&self.weir, self.seed, self.sent)
    }

    /// Sends lines with room to spare until some files are published: every one of them went
    /// to the WAL.
    fn send_while_healthy(&mut self) {
        self.round();
        let healthy = self
            .weir
            .wait_metrics(deadline(), "the first files published", |m| {
                m.get("weir_spool_files_total") > 0
            });
        assert_eq!(healthy.get("weir_disk_breaker_open"), 0);
        assert_eq!(healthy.get("weir_wal_unlogged_lines_total"), 0);
    }

    /// Fills the disk but for a little, then sends lines until the server's own writes take
    /// the rest and its breaker opens; then takes what the server freed since (WAL segments of
    /// published rows), so that the disk stays full until [`FullDisk::free`].
    fn fill_up(&mut self) -> Metrics {
        let filler = self.spool.join("filler");
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
        self.fillers.push(filler);
        let full = loop {
            let m = self.round();
            if m.get("weir_disk_breaker_open") == 1 {
                break m;
            }
            assert!(
                self.seed < 40,
                "the disk never filled; last /metrics:\n{}",
                m.text
            );
        };
        assert!(full.get("weir_disk_breaker_opened_total") >= 1);
        let top_up = self.spool.join("top-up");
        fill(&top_up);
        self.fillers.push(top_up);
        full
    }

    /// Removes the fillers.
    fn free(&mut self) {
        for f in self.fillers.drain(..) {
            std::fs::remove_file(f).unwrap();
        }
    }

    /// Rows in the line tables of the spool.
    fn rows(&self) -> u64 {
        Table::LINES
            .iter()
            .map(|&t| row_count(&self.spool, t) as u64)
            .sum()
    }
}

#[test]
fn a_full_disk_keeps_tails_and_metrics_and_loses_nothing_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut disk) = FullDisk::start(dir.path()) else {
        return;
    };
    let tail = TailChild::spawn(dir.path(), "tail", &disk.weir.url(), &[]);
    disk.weir.wait_tail_sessions(1, deadline());
    disk.send_while_healthy();
    disk.fill_up();

    // Full: lines still come in, are counted, parsed and routed; none is logged or written.
    let tail_before = tail.lines().len();
    let during = disk.round();
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
    disk.free();
    let files_when_full = during.get("weir_spool_files_total");
    let resumed = disk.weir.wait_metrics(deadline(), "the held rows written", |m| {
        m.get("weir_disk_breaker_open") == 0
            && m.get("weir_spool_held_rows") == 0
            && m.get("weir_spool_files_total") > files_when_full
    });
    assert_eq!(counted(&resumed), disk.sent, "no line was lost on the way in");

    disk.weir.stop(deadline());
    let stderr = disk.weir.stderr_text();
    let opened = stderr.matches("spool disk writes failed").count() as u64;
    let closed = stderr.matches("spool disk writes work again").count() as u64;
    assert_eq!(
        (opened, closed),
        (resumed.get("weir_disk_breaker_opened_total"), opened),
        "one log line per change of state:\n{stderr}"
    );
    // Thousands of lines and dozens of batches failed; the log says so a few times at most.
    assert!((1..=3).contains(&opened), "{stderr}");
    assert_eq!(disk.rows(), disk.sent, "every line accepted is in the spool");
    pyarrow_counts(&disk.spool, disk.sent);
}

/// Stopped while the disk is still full: what reached the WAL before the disk filled is
/// replayed by the next start, once there is room; only the lines counted as unlogged, which
/// lived in memory alone, are missing.
#[test]
fn a_stop_on_a_full_disk_leaves_the_wal_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut disk) = FullDisk::start(dir.path()) else {
        return;
    };
    disk.send_while_healthy();
    disk.fill_up();
    let full = disk.round();
    let unlogged = full.get("weir_wal_unlogged_lines_total");
    assert!(unlogged >= ROUND, "{}", full.text);
    disk.weir.terminate();
    let exit = disk.weir.wait_exit(deadline());
    let stderr = disk.weir.stderr_text();
    assert!(
        !exit.success(),
        "a stop that could not write everything fails: {stderr}"
    );
    assert!(
        stderr.contains("rows could not be written to the spool at the stop"),
        "{stderr}"
    );

    disk.free();
    let mut weir = WeirServe::start(dir.path(), "");
    let replayed = weir.metrics();
    weir.stop(deadline());
    assert!(replayed.get("weir_wal_replayed_lines_total{outcome=\"written\"}") > 0);
    // An append cut short by the full disk was taken back off its segment: no torn frame.
    assert_eq!(replayed.get("weir_wal_torn_frames_total"), 0, "{}", replayed.text);
    let rows = disk.rows();
    assert!(
        (disk.sent - unlogged..=disk.sent).contains(&rows),
        "{rows} rows: {} sent, {unlogged} of them unlogged",
        disk.sent
    );
}
