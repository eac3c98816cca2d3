//! The built-in layouts as compiled `log-format`s agree with the hand-tuned parser: every HTTP
//! and TCP line of `tests/corpus/haproxy/` that the hand-tuned parser reads as a whole record
//! (not cut short, nothing after the request line but the layout's own fields) becomes the same
//! record through the compiled `option httplog` (`httpslog`, `httplog clf`, `tcplog`) format.

use std::path::Path;

use weir_ingest::haproxy::logformat::{Builtin, LogFormat};
use weir_ingest::syslog::parse_header;
use weir_ingest::{parse_line, ParseOptions};
use weir_model::{Fields, Record};

fn opts() -> ParseOptions {
    ParseOptions {
        year: 2026,
        ..ParseOptions::default()
    }
}

/// The lines of every `.log` file of the corpus.
fn corpus_lines() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/haproxy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "corpus in {}", dir.display());
    files
        .iter()
        .flat_map(|f| {
            std::fs::read(f)
                .unwrap()
                .split(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn compiled_builtins_agree_with_the_hand_tuned_parser_on_the_corpus() {
    let opts = opts();
    let compiled = Builtin::ALL.map(|b| (b, LogFormat::compile(b.format()).unwrap()));
    let format = |b: Builtin| &compiled.iter().find(|(x, _)| *x == b).unwrap().1;
    let (mut agreed, mut skipped) = (0, 0);
    for raw in corpus_lines() {
        let line = parse_line(&raw, &opts);
        let Ok((header, _, msg)) = parse_header(&raw, &opts) else {
            continue;
        };
        let msg = msg.strip_suffix(b"\r").unwrap_or(msg);
        // A bare `tag[pid]: ` before the message is the hand-tuned parser's leniency.
        if msg
            .split(|&b| b == b' ')
            .next()
            .is_some_and(|w| w.ends_with(b"]:"))
        {
            continue;
        }
        let shown = String::from_utf8_lossy(&raw);
        match line.record {
            Record::Http(want) => {
                let b = if want.clf {
                    Builtin::HttpLogClf
                } else if want.tls.is_some_and(|t| t.fc_err.is_some()) {
                    Builtin::HttpsLog
                } else {
                    Builtin::HttpLog
                };
                let got = format(b).parse(msg, &opts, header.timestamp);
                let Some(Record::Http(mut got)) = got else {
                    // Cut lines, old `%sslc/%sslv` suffixes, custom suffixes and `tag[pid]: `
                    // prefixes are the hand-tuned parser's leniency, not the layout.
                    skipped += 1;
                    assert!(
                        want.truncated
                            || want.tls.is_some()
                            || want.request.raw.is_empty()
                            || !msg.ends_with(b"\""),
                        "{b:?} did not read {shown}"
                    );
                    continue;
                };
                got.clf = want.clf;
                // The CLF capture lists, which the hand-tuned parser does not read, are fields.
                if want.clf {
                    assert_eq!(got.fields.names, ["hrl", "hsl"]);
                    got.fields = Fields::EMPTY;
                }
                assert_eq!(got.fields, Fields::EMPTY);
                assert_eq!(got, want, "{b:?}: {shown}");
                agreed += 1;
            }
            Record::Tcp(want) => {
                match format(Builtin::TcpLog).parse(msg, &opts, header.timestamp) {
                    Some(Record::Tcp(got)) => assert_eq!(got, want, "{shown}"),
                    // Anything after the queues is ignored by the hand-tuned parser.
                    _ => skipped += 1,
                }
                agreed += 1;
            }
            _ => {}
        }
    }
    eprintln!("compiled built-ins: {agreed} lines agree, {skipped} left to the hand-tuned parser");
    assert!(
        agreed > 500 && skipped < agreed / 10,
        "agreed {agreed}, skipped {skipped}"
    );
}
