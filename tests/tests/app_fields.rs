//! Application lines' fields, end to end: util-linux `logger` sends RFC 5424 lines with
//! structured data and RFC 3164 lines with logfmt and JSON messages, the test's own socket a
//! Heroku-named JSON line; the `app` table's `fields` map holds the SD parameters as
//! `SD-ID.PARAM`, the JSON members flattened, the logfmt pairs; `weir tail --level` passes the
//! severe lines only, and `--app`/`--ps` find the Heroku-named one.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use arrow_array::{Array, MapArray, StringArray};
use serve_support::{read_table, run_logger, TailChild, WeirServe};
use support::{find_program, skip_unless_ci};
use weir_store::Table;

/// Every app row's message with its fields.
fn fields_by_message(spool: &std::path::Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for b in read_table(spool, Table::App) {
        let messages = b
            .column_by_name("message")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let fields = b
            .column_by_name("fields")
            .unwrap()
            .as_any()
            .downcast_ref::<MapArray>()
            .unwrap();
        for r in 0..b.num_rows() {
            let entries = fields.value(r);
            let keys = entries.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let values = entries.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            let map = (0..keys.len())
                .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
                .collect();
            out.insert(messages.value(r).to_owned(), map);
        }
    }
    out
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn structured_data_json_and_logfmt_become_fields_and_levels_filter_tails() {
    let Some(logger) = find_program("logger") else {
        skip_unless_ci("logger (util-linux)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut weir = WeirServe::start(dir.path(), "");
    let port = weir.udp.port().to_string();
    let warn_tail = TailChild::spawn(dir.path(), "warn", &weir.url(), &["--level", "warn"]);
    let heroku_tail = TailChild::spawn(
        dir.path(),
        "heroku",
        &weir.url(),
        &["--app", "shop", "--ps", "web"],
    );
    weir.wait_tail_sessions(2, deadline);
    let sends: [&[&str]; 3] = [
        &[
            "--rfc5424",
            "-t",
            "checkout",
            "-p",
            "local0.warning",
            "--sd-id",
            "order@32473",
            "--sd-param",
            "id=\"A-17\"",
            "--sd-param",
            "note=\"say \\\"hi\\\"\"",
            "at=warn msg=slow duration=812ms",
        ],
        &[
            "--rfc3164",
            "-t",
            "web.1",
            "-p",
            "local0.info",
            r#"{"level":"info","http":{"status":200,"path":"/a"},"ok":true}"#,
        ],
        &[
            "--rfc3164",
            "-t",
            "worker.1",
            "-p",
            "local0.err",
            "at=error job=Mail n=3",
        ],
    ];
    for args in sends {
        run_logger(
            &logger,
            &[&["-d", "-n", "127.0.0.1", "-P", &port][..], args].concat(),
        );
    }
    let own = UdpSocket::bind("127.0.0.1:0").expect("bind");
    own.send_to(
        br#"<190>Nov 30 12:00:00 app1 shop[web.2]: @cee: {"msg":"cart","items":2}"#,
        weir.udp,
    )
    .expect("send");
    weir.wait_metrics(deadline, "four app lines", |m| {
        m.sum_where("weir_accepted_total", &["table=\"app\""]) >= 4
    });
    assert!(
        warn_tail.wait_until(deadline, |l| l.len() >= 2),
        "{:?}",
        warn_tail.lines()
    );
    assert!(
        heroku_tail.wait_until(deadline, |l| !l.is_empty()),
        "{:?}",
        heroku_tail.lines()
    );
    weir.stop(deadline);

    let warn = warn_tail.lines();
    assert_eq!(warn.len(), 2, "the warning and the error only: {warn:?}");
    assert!(
        warn[0].contains("at=warn") && warn[1].contains("at=error"),
        "{warn:?}"
    );
    let heroku = heroku_tail.lines();
    assert!(
        heroku.len() == 1 && heroku[0].contains("shop[web.2]"),
        "{heroku:?}"
    );

    let fields = fields_by_message(&weir.spool);
    assert_eq!(fields.len(), 4, "{fields:?}");
    let sd = &fields["at=warn msg=slow duration=812ms"];
    for (k, v) in [
        ("order@32473.id", "A-17"),
        ("order@32473.note", r#"say "hi""#),
        ("at", "warn"),
        ("msg", "slow"),
        ("duration", "812ms"),
    ] {
        assert_eq!(sd.get(k).map(String::as_str), Some(v), "{k} in {sd:?}");
    }
    assert_eq!(
        fields[r#"{"level":"info","http":{"status":200,"path":"/a"},"ok":true}"#],
        map(&[
            ("level", "info"),
            ("http.status", "200"),
            ("http.path", "/a"),
            ("ok", "true")
        ])
    );
    assert_eq!(
        fields["at=error job=Mail n=3"],
        map(&[("at", "error"), ("job", "Mail"), ("n", "3")])
    );
    assert_eq!(
        fields[r#"@cee: {"msg":"cart","items":2}"#],
        map(&[("msg", "cart"), ("items", "2")])
    );
}
