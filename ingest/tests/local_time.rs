//! Local time through both daylight-saving changes of Europe/Berlin in 2026 (+01:00 until
//! 29 March 01:00 UTC, +02:00 until 25 October 01:00 UTC, +01:00 after): HAProxy lines written
//! every minute through each change, their accept dates in Berlin wall-clock time, read back
//! through the chunked reader (small chunks, several workers, mapped and read) must each give
//! the instant they were written for, the repeated autumn hour included. The expected instants
//! come from the rule above, not from the zone database weir uses.

use std::path::PathBuf;

use weir_ingest::read::{for_each_chunk, Chunking, Input};
use weir_ingest::{for_each_line_of_chunk, Expect, ParseOptions, Zone};
use weir_model::time::{civil_from_micros, micros_from_civil};
use weir_model::{Micros, Record};

const MIN: Micros = 60_000_000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Berlin's offset at UTC instant `t`, in seconds, for 2026.
fn berlin_offset(t: Micros) -> i64 {
    let summer = micros_from_civil(2026, 3, 29, 1, 0, 0, 0)..micros_from_civil(2026, 10, 25, 1, 0, 0, 0);
    if summer.contains(&t) {
        7200
    } else {
        3600
    }
}

/// The instants written: every minute (plus 123 ms) from 22:00 UTC the day before each change
/// to 04:00 UTC the day of it.
fn instants() -> Vec<Micros> {
    [(3, 28), (10, 24)]
        .into_iter()
        .flat_map(|(mo, d)| {
            let start = micros_from_civil(2026, mo, d, 22, 0, 0, 123_000);
            (0..360).map(move |k| start + k * MIN)
        })
        .collect()
}

/// An HAProxy HTTP log line accepted at UTC instant `t`, its dates in Berlin wall-clock time,
/// with an RFC 3164 header (no offset) or an RFC 5424 one (with the offset).
fn line(t: Micros, rfc5424: bool) -> String {
    let off = berlin_offset(t);
    let (y, mo, d, h, mi, s, us) = civil_from_micros(t + off * 1_000_000);
    let month = MONTHS[mo as usize - 1];
    let ms = us / 1000;
    let header = if rfc5424 {
        format!(
            "<134>1 {y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}+{:02}:00 lb1 haproxy 8873 - - ",
            off / 3600
        )
    } else {
        format!("<134>{month} {d:2} {h:02}:{mi:02}:{s:02} lb1 haproxy[8873]: ")
    };
    format!(
        "{header}10.0.0.1:5000 [{d:02}/{month}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET /t/{t} HTTP/1.1\""
    )
}

/// Every HTTP row's (path, accept instant) read from `text` with the chunk reader.
fn read_back(name: &str, text: &str, threads: usize, map_files: bool) -> Vec<(Micros, Micros)> {
    let dir = std::env::temp_dir().join(format!("weir-local-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let opts = ParseOptions {
        zone: Zone::parse("Europe/Berlin").unwrap(),
        year: 2026,
        ..ParseOptions::default()
    };
    let (states, result) = for_each_chunk(
        &[Input::Path(path)],
        threads,
        Chunking {
            bytes: 4096,
            map_files,
            window_bytes: 16384,
            ..Chunking::default()
        },
        |_| Vec::new(),
        |rows: &mut Vec<(Micros, Micros)>, chunk| {
            for_each_line_of_chunk(chunk, &opts, Expect::Auto, 65536, |l| match &l.record {
                Record::Http(h) => {
                    let t = h.request.path.unwrap().trim_start_matches("/t/").parse().unwrap();
                    rows.push((t, h.accept_ts));
                }
                other => panic!("{other:?}"),
            })
        },
        |_| {},
    );
    result.unwrap();
    states.into_iter().flatten().collect()
}

fn check(name: &str, lines: &[(Micros, String)]) {
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    for threads in [1, 3] {
        for map_files in [false, true] {
            let mut got = read_back(name, &text, threads, map_files);
            assert_eq!(got.len(), lines.len());
            got.sort();
            for (t, ts) in got {
                assert_eq!(
                    ts,
                    t,
                    "{name}: written at {:?}, read as {:?} (threads {threads}, mapped {map_files})",
                    civil_from_micros(t),
                    civil_from_micros(ts)
                );
            }
        }
    }
}

/// RFC 3164 headers carry no offset: the repeated hour is told by line order (the line an hour
/// "earlier" than the one before is in the second pass), across chunk boundaries.
#[test]
fn rfc3164_lines_through_both_changes() {
    let lines: Vec<_> = instants().into_iter().map(|t| (t, line(t, false))).collect();
    check("rfc3164.log", &lines);
}

/// RFC 5424 headers carry the offset: each line is settled by its own header, whatever order
/// the lines come in (here: backwards, so line order would mislead).
#[test]
fn rfc5424_lines_through_both_changes_in_any_order() {
    let mut lines: Vec<_> = instants().into_iter().map(|t| (t, line(t, true))).collect();
    lines.reverse();
    check("rfc5424.log", &lines);
}

/// A line in the repeated hour without anything before it (the first line of an input) takes
/// the first reading.
#[test]
fn first_line_in_the_repeated_hour_takes_the_first_reading() {
    let second_pass = micros_from_civil(2026, 10, 25, 1, 30, 0, 123_000);
    let got = read_back("alone.log", &format!("{}\n", line(second_pass, false)), 1, false);
    assert_eq!(got, vec![(second_pass, second_pass - 60 * MIN)]);
}
