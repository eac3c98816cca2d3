//! Spool format compatibility: the golden spool of every format version, written by the weir
//! of that version from `samples/haproxy/`, is read by today's reader forever. A change that
//! breaks this test breaks users' existing data and needs a new `SPOOL_FORMAT_VERSION`.

use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, TimestampMicrosecondType};
use arrow_array::Array;
use weir_store::{read_table, Table, SPOOL_FORMAT_VERSION};

fn golden(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../samples/golden/v{version}"))
}

fn rows(version: u32, table: Table) -> usize {
    read_table(&golden(version), table)
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

#[test]
fn every_golden_version_up_to_the_current_one_is_readable() {
    for version in 1..=SPOOL_FORMAT_VERSION {
        let dir = golden(version);
        let format = std::fs::read_to_string(dir.join("FORMAT")).unwrap();
        assert_eq!(format.trim(), version.to_string(), "{}", dir.display());
        for table in Table::ALL {
            read_table(&dir, table).unwrap_or_else(|e| panic!("v{version} {}: {e}", table.name()));
        }
    }
}

/// Version 1 holds `samples/haproxy/haproxy-2.6-udp.log` (48 lines HAProxy 2.6.12 sent) and
/// `samples/haproxy/bad-lines.log` (2 lines that must be rejects).
#[test]
fn golden_v1_rows_and_values() {
    assert_eq!(rows(1, Table::Requests), 40);
    assert_eq!(rows(1, Table::Tcp), 2);
    assert_eq!(rows(1, Table::App), 6);
    assert_eq!(rows(1, Table::Rejects), 2);
    let batches = read_table(&golden(1), Table::Requests).unwrap();
    let batch = &batches[0];
    let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
    let ts = column("ts");
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    // 2026-11-22T01:22:06.958Z, the first request HAProxy logged.
    assert_eq!(ts.values().iter().min(), Some(&1_795_310_526_958_000));
    let status = column("status");
    let status = status.as_primitive::<Int16Type>();
    assert!(status.iter().any(|s| s == Some(503)));
    let frontend = column("frontend");
    let frontend = frontend.as_string::<i32>();
    assert!(frontend.iter().any(|f| f == Some("fe_http")));
}

/// Version 2 adds `fields` to `requests` and `tcp`. It holds what version 1 holds, read with
/// `--haproxy-config samples/haproxy/haproxy-2.6-custom-formats.cfg`, and the 5 lines HAProxy
/// 2.6.12 wrote with that configuration's custom formats
/// (`samples/haproxy/haproxy-2.6-custom-formats.log`).
#[test]
fn golden_v2_rows_and_fields() {
    assert_eq!(rows(2, Table::Requests), 45);
    assert_eq!(rows(2, Table::Tcp), 2);
    assert_eq!(rows(2, Table::App), 6);
    assert_eq!(rows(2, Table::Rejects), 2);
    let mut found = Vec::new();
    for batch in read_table(&golden(2), Table::Requests).unwrap() {
        let fields = batch.column(batch.schema().index_of("fields").unwrap()).clone();
        let fields = fields.as_map();
        for row in 0..fields.len() {
            let entries = fields.value(row);
            let (keys, values) = (
                entries.column(0).as_string::<i32>(),
                entries.column(1).as_string::<i32>(),
            );
            for k in 0..keys.len() {
                found.push((
                    keys.value(k).to_owned(),
                    values.is_valid(k).then(|| values.value(k).to_owned()),
                ));
            }
        }
    }
    for want in [
        ("capture.req.hdr(0)", Some("127.0.0.1:18091")),
        ("ssl_fc", Some("0")),
        ("capture.res.hdr(5)", None),
        ("ID", Some("7F000001:CAEC_7F000001:46AA_6B0D64EE_0000:4038")),
    ] {
        let want = (want.0.to_owned(), want.1.map(str::to_owned));
        assert!(found.contains(&want), "{want:?} not in {found:?}");
    }
}

/// Version 3 adds the `router_*` columns to `app`. It holds what version 2 holds and the Heroku
/// router lines of `samples/heroku/router.log` (a copy of `tests/corpus/heroku/router.log`).
#[test]
fn golden_v3_rows_and_router_columns() {
    assert_eq!(rows(3, Table::Requests), 45);
    assert_eq!(rows(3, Table::Tcp), 2);
    assert_eq!(rows(3, Table::App), 35);
    assert_eq!(rows(3, Table::Rejects), 2);
    let mut codes = Vec::new();
    let mut statuses = Vec::new();
    for batch in read_table(&golden(3), Table::App).unwrap() {
        let code = batch
            .column(batch.schema().index_of("router_code").unwrap())
            .clone();
        let status = batch
            .column(batch.schema().index_of("router_status").unwrap())
            .clone();
        codes.extend(code.as_string::<i32>().iter().flatten().map(str::to_owned));
        statuses.extend(status.as_primitive::<Int16Type>().iter().flatten());
    }
    assert_eq!(codes.len(), 27, "every documented code, H10 twice");
    assert!(codes.iter().any(|c| c == "H12") && codes.iter().any(|c| c == "H99"));
    assert!(statuses.contains(&200) && statuses.contains(&499));
}
