//! weir-e2e: black-box tests of the `weir` binary, with the real peers (HAProxy, halog,
//! `logger`, pyarrow, DuckDB). The tests live in `tests/`; this library holds what every one of
//! them needs: where the workspace is and which `weir` binary to run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// Notes that a test's external tool `what` is missing and the test passes without it; under
/// `CI` a missing tool fails the test instead (`install` says how to get it).
pub fn skip_without(what: &str, install: &str) {
    assert!(std::env::var_os("CI").is_none(), "{what} is required ({install})");
    eprintln!("skipped: {what} is not installed ({install})");
}
