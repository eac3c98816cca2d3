//! Inputs that would make a naive reader grow or lose data: a stream with no newline, and
//! gzip and zstd files cut short.
//!
//! - 256 MiB without a newline on `weir report`'s standard input (streamed from the test, never
//!   written to disk): the answer is one `too_long` reject, and the peak resident memory
//!   (`/usr/bin/time -f %M`, the kernel's own count for the child) stays under 100 MB.
//! - A truncated `.gz` and `.zst`: `weir report` and `weir import` exit 1 with an error naming
//!   the file and the decompressed offset, after counting (and writing) exactly the lines
//!   that were whole before the damage.
//!
//! Without `/usr/bin/time` (Debian's `time`) the memory test prints why and passes, unless `CI`
//! is set.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use weir_e2e::{skip_without, weir_bin as weir};

/// How long a command may take before the test fails instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `cmd` to its end with its output captured, failing the test after [`TIMEOUT`].
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running weir");
    finish(child)
}

/// Waits for `child`, failing the test after [`TIMEOUT`].
fn finish(child: std::process::Child) -> Output {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(TIMEOUT)
        .expect("weir did not finish in time")
        .expect("waiting for weir")
}

/// The `key -> value` rows of `weir report summary --format json`.
fn summary(stdout: &[u8]) -> serde_json::Map<String, Value> {
    let rows: Vec<Value> = serde_json::from_slice(stdout).expect("summary JSON");
    rows.into_iter()
        .map(|r| (r["key"].as_str().unwrap().to_string(), r["value"].clone()))
        .collect()
}

#[test]
fn a_stream_without_newlines_keeps_memory_flat() {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return skip_without("/usr/bin/time", "apt-get install time");
    }
    let dir = tempfile::tempdir().unwrap();
    let rss_file = dir.path().join("maxrss");
    let mut child = Command::new(time)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(weir())
        .args(["report", "summary", "--format", "json", "--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running weir under /usr/bin/time");
    let mut stdin = child.stdin.take().unwrap();
    const MIB: usize = 1 << 20;
    let writer = std::thread::spawn(move || {
        let block = vec![b'x'; MIB];
        for _ in 0..256 {
            stdin.write_all(&block).expect("feeding weir");
        }
    });
    let out = finish(child);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = summary(&out.stdout);
    assert_eq!(s["lines"], 1);
    assert_eq!(s["rejects"], 1);
    assert_eq!(s["rejects_too_long"], 1);
    let kib: u64 = std::fs::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .expect("time's %M");
    eprintln!(
        "peak RSS reading 256 MiB without a newline: {} MB",
        kib * 1024 / 1_000_000
    );
    assert!(kib * 1024 < 100_000_000, "peak RSS {kib} KiB");
}

/// `n` HAProxy HTTP log lines, each ending in a newline.
fn log(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            format!(
                "<134>Nov 22 01:{:02}:{:02} lb1 haproxy[1]: 10.0.0.{}:{} [22/Nov/2026:01:{:02}:{:02}.{:03}] fe be/s{} 0/0/1/2/{} 200 {} - - ---- 1/1/0/0/0 0/0 \"GET /item/{i} HTTP/1.1\"\n",
                i / 60 % 60,
                i % 60,
                i % 250,
                1024 + i % 60000,
                i / 60 % 60,
                i % 60,
                i % 1000,
                i % 4,
                i % 97,
                100 + i
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// The decompressed byte offset named by an error such as `cannot read F past decompressed
/// byte N: ...`.
fn damaged_at(stderr: &str, file: &Path) -> usize {
    let want = format!("cannot read {} past decompressed byte ", file.display());
    let at = stderr.find(&want).unwrap_or_else(|| panic!("{stderr}")) + want.len();
    stderr[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn truncated_gzip_and_zstd_keep_the_lines_before_the_damage() {
    let data = log(60_000);
    let total = data.iter().filter(|&&b| b == b'\n').count();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("cut.log.gz", gz), ("cut.log.zst", zst)] {
        let file = dir.path().join(name);
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();

        let out = run(Command::new(weir())
            .args(["report", "summary", "--format", "json"])
            .arg(&file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let offset = damaged_at(&stderr, &file);
        let whole = data[..offset].iter().filter(|&&b| b == b'\n').count();
        assert!(whole > 0 && whole < total, "{name}: {whole} of {total}");
        let s = summary(&out.stdout);
        assert_eq!(s["lines"], whole as u64, "{name}");
        assert_eq!(s["http_requests"], whole as u64, "{name}");

        let spool = dir.path().join(format!("spool-{name}"));
        let out = run(Command::new(weir())
            .arg("import")
            .arg("--spool")
            .arg(&spool)
            .arg(&file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(damaged_at(&stderr, &file), offset, "{name}");
        assert!(
            stderr.contains(&format!("imported {whole} lines")),
            "{name}: {stderr}"
        );
        let requests = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("requests"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert_eq!(
            requests.split_whitespace().next(),
            Some(whole.to_string().as_str()),
            "{name}: {stderr}"
        );
    }
}
