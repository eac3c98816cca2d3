//! weir-e2e: black-box tests of the `weir` binary, with the real peers (HAProxy, halog,
//! `logger`, pyarrow, DuckDB). The tests live in `tests/`; this library holds what every one of
//! them needs: where the workspace is, which `weir` binary to run, and running a command with
//! a time limit, so that a process that hangs fails its test instead of hanging it.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a command a test runs (weir, halog, python, logger) may take before the test
/// fails: far beyond what any takes on a loaded machine, short of a hung CI job.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);

/// `Command::output` with a time limit.
pub trait OutputWithin {
    /// Runs the command with stdout and stderr captured (stdin as set on the command: set
    /// `Stdio::null()` for none) and waits for it at most `limit`; past it the process is
    /// killed and the answer is a `TimedOut` error that names the command.
    fn output_within(&mut self, limit: Duration) -> io::Result<Output>;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> io::Result<Output> {
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{self:?} did not exit within {limit:?} and was killed"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The weir binary: `$WEIR_BIN`, else `target/debug/weir`, built once per test binary with
/// `cargo build -p weir-cli` (a no-op when it is up to date, so it is never older than the
/// sources under test).
pub fn weir_bin() -> PathBuf {
    static WEIR: OnceLock<PathBuf> = OnceLock::new();
    WEIR.get_or_init(|| {
        if let Some(p) = std::env::var_os("WEIR_BIN") {
            return PathBuf::from(p);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "weir-cli"])
            .current_dir(root())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p weir-cli failed");
        target
            .join("debug")
            .join(format!("weir{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// Runs a command with no standard input and [`PROCESS_TIMEOUT`], fails the test unless it
/// succeeds, and returns its standard output.
pub fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `weir ARGS` as [`stdout_of`] does; returns its standard output as text.
pub fn run_weir(args: &[&str]) -> String {
    String::from_utf8(stdout_of(Command::new(weir_bin()).args(args))).expect("weir prints UTF-8")
}

/// Notes that a test's external tool `what` is missing and the test passes without it; under
/// `CI` a missing tool fails the test instead (`install` says how to get it).
pub fn skip_without(what: &str, install: &str) {
    assert!(std::env::var_os("CI").is_none(), "{what} is required ({install})");
    eprintln!("skipped: {what} is not installed ({install})");
}
