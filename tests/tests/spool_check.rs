//! `weir spool check` on an imported spool: every table's files and rows are reported and the
//! check passes; a published file cut short is named as damaged and the check fails.

use std::process::{Command, Stdio};

use weir_e2e::{run_weir, weir_bin, OutputWithin, PROCESS_TIMEOUT};

#[test]
fn a_damaged_file_is_named_and_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mix.log");
    let spool = dir.path().join("spool");
    let (log_s, spool_s) = (log.to_str().unwrap(), spool.to_str().unwrap());
    run_weir(&[
        "gen", "--kind", "mix", "--count", "3000", "--seed", "4", "--to", log_s,
    ]);
    run_weir(&["import", "--spool", spool_s, log_s]);
    let report = run_weir(&["spool", "check", spool_s]);
    let rows: u64 = report
        .lines()
        .filter(|l| {
            ["requests ", "tcp ", "app ", "rejects "]
                .iter()
                .any(|t| l.starts_with(t))
        })
        .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(rows, 3000, "every line is a row of one table: {report}");
    assert!(report.contains("WAL: 0 segments"), "{report}");

    let victim = weir_store::table_files(&spool, weir_store::Table::Requests)
        .unwrap()
        .remove(0);
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = Command::new(weir_bin())
        .args(["spool", "check", spool_s])
        .stdin(Stdio::null())
        .output_within(PROCESS_TIMEOUT)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("damaged: {}", victim.display())), "{text}");
}
