//! `weir spool compact` on a spool imported in three runs (three files per partition): every
//! partition ends with one file holding the same rows, for weir's readers, pyarrow and
//! `weir query`; `--partition` compacts only what it names, and names nothing else.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use weir_e2e::{run_weir, weir_bin, OutputWithin, PROCESS_TIMEOUT};
use weir_store::compact::{partitions, PartitionDir};

/// Lines per import run.
const LINES: u64 = 3000;

/// A spool imported from three generated logs, each its own run.
fn imported(dir: &Path) -> PathBuf {
    let spool = dir.join("spool");
    for seed in 1..=3 {
        let log = dir.join(format!("mix{seed}.log"));
        let (log, spool) = (log.to_str().unwrap(), spool.to_str().unwrap());
        run_weir(&[
            "gen",
            "--kind",
            "mix",
            "--count",
            "3000",
            "--seed",
            &seed.to_string(),
            "--to",
            log,
        ]);
        run_weir(&["import", "--spool", spool, log]);
    }
    spool
}

/// Published files per partition, as a reader listing the folders finds them.
fn files_per_partition(spool: &Path) -> BTreeMap<PathBuf, usize> {
    partitions(spool)
        .unwrap()
        .into_iter()
        .map(|PartitionDir { name, dir, .. }| {
            let n = std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    !name.starts_with('.') && name.ends_with(".parquet")
                })
                .count();
            (name, n)
        })
        .collect()
}

fn query(spool: &Path) -> String {
    run_weir(&[
        "query",
        "--spool",
        spool.to_str().unwrap(),
        "--by",
        "backend,server",
        "--format",
        "csv",
    ])
}

#[test]
fn every_partition_ends_with_one_file_and_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let spool = imported(dir.path());
    let before = files_per_partition(&spool);
    assert!(before.values().all(|&n| n == 3), "{before:?}");
    assert!(before.keys().any(|p| p.starts_with("windows")), "{before:?}");
    let answer = query(&spool);

    let out = run_weir(&["spool", "compact", spool.to_str().unwrap()]);
    let n = before.len();
    assert!(
        out.contains(&format!(
            "compacted {n} partitions of {n} ({} files into {n})",
            3 * n
        )),
        "{out}"
    );
    let after = files_per_partition(&spool);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(after.values().all(|&n| n == 1), "{after:?}");
    serve_support::pyarrow_counts(&spool, 3 * LINES);
    assert_eq!(query(&spool), answer, "the windows merge to the same answer");
    let report = run_weir(&["spool", "check", spool.to_str().unwrap()]);
    assert!(!report.contains("interrupted compaction"), "{report}");

    let again = run_weir(&["spool", "compact", spool.to_str().unwrap()]);
    assert!(
        again.contains(&format!("compacted 0 partitions of {n}")),
        "{again}"
    );
}

#[test]
fn partition_compacts_only_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let spool = imported(dir.path());
    let before = files_per_partition(&spool);
    let chosen = before.keys().find(|p| p.starts_with("requests")).unwrap().clone();
    let out = run_weir(&[
        "spool",
        "compact",
        spool.to_str().unwrap(),
        "--partition",
        chosen.to_str().unwrap(),
    ]);
    assert!(
        out.contains("compacted 1 partitions of 1 (3 files into 1)"),
        "{out}"
    );
    let after = files_per_partition(&spool);
    for (p, n) in &after {
        assert_eq!(*n, if *p == chosen { 1 } else { before[p] }, "{p:?}");
    }
    serve_support::pyarrow_counts(&spool, 3 * LINES);

    for (arg, why) in [
        ("requests/date=2000-01-01", "no such partition"),
        ("sessions", "is not a table"),
        ("requests/hour=01", "is not date=YYYY-MM-DD"),
        ("requests/date=2026-11-22/hour=24", "is not hour=00 to hour=23"),
    ] {
        let out = Command::new(weir_bin())
            .args(["spool", "compact"])
            .arg(&spool)
            .args(["--partition", arg])
            .stdin(Stdio::null())
            .output_within(PROCESS_TIMEOUT)
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(why), "{arg}: {err}");
    }
}
