//! One line in, one [`Line`] out: the syslog header, then the message by content.
//!
//! The order of questions: is it empty? does it have a syslog header ([`crate::syslog`])? is the
//! message HAProxy's ([`crate::haproxy`])? If not and a header was present, it is an application
//! line; a headerless line that is not HAProxy is a reject (`unknown_format`).
//! Every outcome is a value: the caller stores it, counts it, and goes on.

use weir_model::time::{civil_from_micros, micros_from_civil};
use weir_model::{AppKind, AppLog, Line, Micros, Record, Reject, RejectReason, SyslogHeader};

use crate::haproxy::fields::{utf8, Text};
use crate::haproxy::{self, Message};
use crate::read::{Chunk, StrLines};
use crate::syslog::{self, HeaderForm};
use crate::ParseOptions;

/// What the caller expects the lines to be (`weir import --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Decide per line by content.
    #[default]
    Auto,
    /// HAProxy output only: any other line is a reject (`unknown_format`).
    Haproxy,
    /// Every line has a syslog header: one without is a reject (`bad_syslog_header`).
    Syslog,
    /// Application lines: the message is never read as HAProxy's.
    App,
}

/// Parses one line. `raw` is the line without its terminator; trailing `\r`, `\n` and NUL bytes
/// (which UDP senders append) are ignored.
pub fn parse_line<'a>(raw: &'a [u8], opts: &ParseOptions) -> Line<'a> {
    parse_line_as(raw, opts, Expect::Auto)
}

/// [`parse_line`] with an expectation of what the line is.
///
/// The [`Line`] is built once, in the caller's return slot, and the parsers write the record
/// into it: an HTTP record is some 450 bytes, and moving it from parser to record to line cost
/// a tenth of the parse.
pub fn parse_line_as<'a>(raw: &'a [u8], opts: &ParseOptions, expect: Expect) -> Line<'a> {
    build(raw, opts, expect, None)
}

/// [`parse_line`] of a line already known to be UTF-8 (cut from a block validated at once,
/// say): the same [`Line`], without validating the line again.
pub fn parse_line_str<'a>(raw: &'a str, opts: &ParseOptions) -> Line<'a> {
    build(raw.as_bytes(), opts, Expect::Auto, Some(Text::validated(raw)))
}

/// Parses every line of `text` (cut where [`StrLines`] cuts) as [`parse_line_as`] does and
/// hands each [`Line`] to `each`. One `Line` is filled in place for all of them: returning a
/// fresh one per line cost a copy of its 500-odd bytes, a few percent of `weir report`.
pub fn for_each_line_str<'a>(
    text: &'a str,
    opts: &ParseOptions,
    expect: Expect,
    each: impl FnMut(&Line<'a>),
) {
    lines_of_str(text, opts, expect, usize::MAX, each);
}

/// [`for_each_line_str`], with a line longer than `max_line` a `too_long` reject.
#[inline(always)]
fn lines_of_str<'a>(
    text: &'a str,
    opts: &ParseOptions,
    expect: Expect,
    max_line: usize,
    mut each: impl FnMut(&Line<'a>),
) {
    let mut line = Line {
        header: SyslogHeader::default(),
        record: empty(b""),
        raw: b"",
    };
    for raw in StrLines::new(text) {
        if raw.len() > max_line {
            each(&too_long(&raw.as_bytes()[..max_line]));
            continue;
        }
        fill(
            &mut line,
            raw.as_bytes(),
            opts,
            expect,
            Some(Text::validated(raw)),
        );
        each(&line);
    }
}

/// Parses every line of a chunk of a stream ([`crate::read::for_each_chunk`]) and hands each
/// [`Line`] to `each`, as [`for_each_line_str`] does, with two things that need the stream:
///
/// - A line longer than `max_line` bytes (and a chunk that is one such line's head,
///   [`Chunk::too_long`]) is a `too_long` reject that keeps its first `max_line` bytes.
/// - In a zone with daylight saving, a wall-clock time the zone repeats (the autumn hour) is
///   read closest to the line's syslog header when the header carries an offset, else closest
///   to the previous line's instant ([`ParseOptions::near`]): a line an hour "earlier" in the
///   repeated hour than the lines before it is in its second pass. The previous line of a
///   chunk's first line is the last line of the chunk before it, which is asked for (waiting
///   for that chunk to be done) only when the chunk opens within two hours of a change of
///   offset; so the answer never depends on where the input was cut or on which worker ran
///   which chunk.
pub fn for_each_line_of_chunk<'a>(
    chunk: &'a Chunk,
    opts: &ParseOptions,
    expect: Expect,
    max_line: usize,
    mut each: impl FnMut(&Line<'a>),
) {
    let chained = opts.zone.has_rules();
    if chunk.too_long().is_some() {
        each(&too_long(chunk.data()));
        if chained {
            chunk.hand_on(chunk.handed_in());
        }
        return;
    }
    let valid = simdutf8::basic::from_utf8(chunk.data());
    if !chained {
        // Nothing carries from line to line: the loops of `for_each_line_str` and `parse_line`,
        // with the parse inlined into the first (a call per line costs a few percent).
        match valid {
            Ok(text) => lines_of_str(text, opts, expect, max_line, each),
            Err(_) => {
                for raw in chunk.lines() {
                    each(&match raw.len() > max_line {
                        true => too_long(&raw[..max_line]),
                        false => parse_line_as(raw, opts, expect),
                    });
                }
            }
        }
        return;
    }
    let mut opts = ParseOptions { near: None, ..*opts };
    let mut line = Line {
        header: SyslogHeader::default(),
        record: empty(b""),
        raw: b"",
    };
    // Whether the previous line's instant is known (or was asked of the chunk before).
    let mut settled = false;
    let mut one = |raw: &'a [u8], text: Option<Text<'a>>| {
        if raw.len() > max_line {
            each(&too_long(&raw[..max_line]));
            return;
        }
        fill(&mut line, raw, &opts, expect, text);
        if let Some(t) = instant(&line) {
            if !settled {
                settled = true;
                if opts.zone.changes_near(t, 2 * HOUR) {
                    opts.near = chunk.handed_in();
                    if opts.near.is_some() {
                        fill(&mut line, raw, &opts, expect, text);
                    }
                }
            }
            opts.near = instant(&line);
        }
        each(&line);
    };
    match valid {
        // One UTF-8 validation per chunk, not one per line.
        Ok(text) => StrLines::new(text).for_each(|raw| one(raw.as_bytes(), Some(Text::validated(raw)))),
        Err(_) => chunk.lines().for_each(|raw| one(raw, None)),
    }
    chunk.hand_on(if settled { opts.near } else { chunk.handed_in() });
}

const HOUR: Micros = 3_600_000_000;

/// The instant a line stands at in its stream: its event time, else its header's time.
fn instant(line: &Line<'_>) -> Option<Micros> {
    match &line.record {
        Record::Http(h) => Some(h.accept_ts),
        Record::Tcp(t) => Some(t.accept_ts),
        Record::App(a) => a.ts,
        Record::Reject(_) => None,
    }
}

/// The `too_long` reject of a line, keeping `kept`.
fn too_long(kept: &[u8]) -> Line<'_> {
    Line {
        header: SyslogHeader::default(),
        record: Record::Reject(Reject {
            reason: RejectReason::TooLong,
            message: kept,
        }),
        raw: kept,
    }
}

/// Builds the [`Line`] of `raw`; `text` is `raw` as `&str` when the caller has it.
#[inline(always)]
fn build<'a>(raw: &'a [u8], opts: &ParseOptions, expect: Expect, text: Option<Text<'a>>) -> Line<'a> {
    let mut line = Line {
        header: SyslogHeader::default(),
        record: empty(raw),
        raw,
    };
    fill(&mut line, raw, opts, expect, text);
    line
}

/// The record a line starts as, before its parse says otherwise.
#[inline(always)]
fn empty(raw: &[u8]) -> Record<'_> {
    Record::Reject(Reject {
        reason: RejectReason::Empty,
        message: raw,
    })
}

/// Makes `line` the [`Line`] of `raw`, whatever it held before.
#[inline(always)]
fn fill<'a>(line: &mut Line<'a>, raw: &'a [u8], opts: &ParseOptions, expect: Expect, text: Option<Text<'a>>) {
    line.header = SyslogHeader::default();
    line.record = empty(raw);
    line.raw = raw;
    if let Err((reason, message)) = parse_into(line, trim_end(raw), opts, expect, text) {
        line.record = Record::Reject(Reject { reason, message });
    }
}

/// Why a line is a reject, and the part of it that failed.
type Failure<'a> = (RejectReason, &'a [u8]);

/// Fills `out.header` and `out.record` from `line` (the raw line without its terminator); on
/// a failure the header read so far stays and the caller files the record as a reject.
#[inline(always)]
fn parse_into<'a>(
    out: &mut Line<'a>,
    line: &'a [u8],
    opts: &ParseOptions,
    expect: Expect,
    text: Option<Text<'a>>,
) -> Result<(), Failure<'a>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err((RejectReason::Empty, line));
    }
    // One validation of the whole line (unless the caller did it); the header and the message
    // slice their `&str`s out of it. A line that is not UTF-8 throughout is read field by
    // field, as before.
    let text = text.or_else(|| Text::new(line).ok());
    let (header, form, msg) = syslog::parse_header_in(line, opts, text).map_err(|r| (r, line))?;
    out.header = header;
    // A header that carries its own offset settles the message's repeated hour.
    let with_header;
    let opts = match header.timestamp {
        Some(t) if opts.zone.has_rules() && syslog::carries_offset(line, form) => {
            with_header = ParseOptions {
                near: Some(t),
                ..*opts
            };
            &with_header
        }
        _ => opts,
    };
    if form == HeaderForm::None && expect == Expect::Syslog {
        return Err((RejectReason::BadSyslogHeader, msg));
    }
    let parsed = match expect {
        Expect::App => Some(Message::NotHaproxy),
        _ => match opts.formats {
            Some(f) => f.0.parse_into(msg, opts, &mut out.record, text, &out.header),
            None => haproxy::parse_message_into(msg, opts, &mut out.record, text),
        },
    };
    let header = &mut out.header;
    let record = match parsed {
        // The HTTP record is already in place.
        None => {
            if let Record::Http(h) = &out.record {
                fix_year(header, form, h.accept_ts);
            }
            return Ok(());
        }
        Some(Message::Http(h)) => {
            fix_year(header, form, h.accept_ts);
            Record::Http(h)
        }
        Some(Message::Tcp(t)) => {
            fix_year(header, form, t.accept_ts);
            Record::Tcp(t)
        }
        Some(Message::Event(mut e)) => {
            if let Some(ts) = e.ts {
                fix_year(header, form, ts);
            }
            e.ts = e.ts.or(header.timestamp);
            Record::App(e)
        }
        Some(Message::Reject(reason)) => return Err((reason, msg)),
        Some(Message::NotHaproxy) if form == HeaderForm::None && expect != Expect::App => {
            return Err((RejectReason::UnknownFormat, msg));
        }
        Some(Message::NotHaproxy) if expect == Expect::Haproxy => {
            return Err((RejectReason::UnknownFormat, msg));
        }
        Some(Message::NotHaproxy) if crate::heroku::is_router(header.app, header.procid) => {
            let message = utf8(msg).map_err(|r| (r, msg))?;
            let router = crate::heroku::parse_router(message).map_err(|r| (r, msg))?;
            Record::App(AppLog {
                kind: AppKind::Router,
                ts: header.timestamp,
                message,
                client: None,
                subject: None,
                router: Some(router),
            })
        }
        Some(Message::NotHaproxy) => {
            let message = utf8(msg).map_err(|r| (r, msg))?;
            Record::App(AppLog {
                kind: AppKind::Plain,
                ts: header.timestamp,
                message,
                client: None,
                subject: None,
                router: None,
            })
        }
    };
    out.record = record;
    Ok(())
}

/// RFC 3164 timestamps have no year; when the message carries a full date (HAProxy's accept
/// date), give the header the year that puts it closest to that date (a line written on
/// 1 January for a request accepted on 31 December belongs to the next year).
fn fix_year(header: &mut SyslogHeader<'_>, form: HeaderForm, event: Micros) {
    let Some(ts) = header.timestamp.filter(|_| form == HeaderForm::Rfc3164) else {
        return;
    };
    // Within half a year of the event, the year given by the parse options is the right one.
    const HALF_YEAR: u64 = 182 * 86_400 * 1_000_000;
    if (ts - event).unsigned_abs() < HALF_YEAR {
        return;
    }
    let (_, mo, d, h, mi, s, us) = civil_from_micros(ts);
    let (event_year, ..) = civil_from_micros(event);
    let best = [event_year - 1, event_year, event_year + 1]
        .into_iter()
        .map(|yy| micros_from_civil(yy, mo, d, h, mi, s, us))
        .min_by_key(|t| (t - event).unsigned_abs());
    header.timestamp = best;
}

#[inline]
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        }
    }

    #[test]
    fn parse_line_str_agrees_with_parse_line() {
        for raw in [
            "<134>Nov 22 01:22:06 lb1 haproxy[12136]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET /a?b HTTP/1.1\"\r",
            "Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1 20 -- 1/1/0/0/0 0/0",
            "Nov 22 01:22:06 h app: héllo wörld",
            "Proxy fe started.",
            "   ",
            "<999>Nov 22 01:22:06 h a: x",
            "hello there",
        ] {
            assert_eq!(parse_line_str(raw, &opts()), parse_line(raw.as_bytes(), &opts()), "{raw}");
        }
    }

    /// The reused `Line` carries nothing over from one line to the next: each comes out as
    /// `parse_line_str` makes it, whatever came before (a full HTTP record before a reject, a
    /// header before a headerless line).
    #[test]
    fn for_each_line_str_is_parse_line_str_per_line() {
        let text = concat!(
            "<134>Nov 22 01:22:06 lb1 haproxy[12136]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET /a?b HTTP/1.1\"\r\n",
            "hello there\n",
            "Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1 20 -- 1/1/0/0/0 0/0\n",
            "Proxy fe started.\n",
            "\n",
            "Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 {a|b} \"GET /x HTTP/1.1\"\n",
            "Nov 22 01:22:06 h app: héllo wörld\n",
            "10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0",
        );
        for expect in [Expect::Auto, Expect::Haproxy, Expect::Syslog, Expect::App] {
            let mut got = Vec::new();
            for_each_line_str(text, &opts(), expect, |l| got.push(l.clone()));
            let want: Vec<Line<'_>> = StrLines::new(text)
                .map(|raw| parse_line_as(raw.as_bytes(), &opts(), expect))
                .collect();
            assert_eq!(got.len(), 8);
            assert_eq!(got, want, "{expect:?}");
        }
    }

    #[test]
    fn empty_lines_are_rejects() {
        for raw in [&b""[..], b"   ", b"\n", b"\r\n\0"] {
            let l = parse_line(raw, &opts());
            assert!(matches!(
                l.record,
                Record::Reject(Reject {
                    reason: RejectReason::Empty,
                    ..
                })
            ));
            assert_eq!(l.raw, raw);
        }
    }

    #[test]
    fn app_line_with_header() {
        let l = parse_line(b"<13>Nov 22 01:22:06 myhost root: hello world\n", &opts());
        assert_eq!(l.header.app, Some("root"));
        match l.record {
            Record::App(a) => {
                assert_eq!((a.kind, a.message), (AppKind::Plain, "hello world"));
                assert_eq!(a.ts, Some(micros_from_civil(2026, 11, 22, 1, 22, 6, 0)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn headerless_unknown_line_is_rejected_verbatim() {
        let l = parse_line(b"hello there", &opts());
        assert_eq!(
            l.record,
            Record::Reject(Reject {
                reason: RejectReason::UnknownFormat,
                message: b"hello there"
            })
        );
    }

    #[test]
    fn expectations() {
        let reason = |raw: &[u8], e| match parse_line_as(raw, &opts(), e).record {
            Record::Reject(r) => Some(r.reason),
            _ => None,
        };
        assert_eq!(
            reason(b"<13>Nov 22 01:22:06 h a: hi", Expect::Haproxy),
            Some(RejectReason::UnknownFormat)
        );
        assert_eq!(
            reason(b"Proxy fe started.", Expect::Syslog),
            Some(RejectReason::BadSyslogHeader)
        );
        assert_eq!(reason(b"hello", Expect::App), None);
        assert_eq!(reason(b"hello", Expect::Auto), Some(RejectReason::UnknownFormat));
    }

    #[test]
    fn bad_pri_is_a_header_reject() {
        let l = parse_line(b"<999>Nov 22 01:22:06 h a: x", &opts());
        assert!(matches!(
            l.record,
            Record::Reject(Reject {
                reason: RejectReason::BadSyslogHeader,
                ..
            })
        ));
    }

    #[test]
    fn invalid_utf8_app_line_is_rejected() {
        let l = parse_line(b"<13>Nov 22 01:22:06 h a: \xff\xfe", &opts());
        assert!(matches!(
            l.record,
            Record::Reject(Reject {
                reason: RejectReason::InvalidUtf8,
                ..
            })
        ));
    }

    /// In Europe/Berlin, 25 October 2026 02:30 happens at 00:30 UTC (+02:00) and again at
    /// 01:30 UTC (+01:00). A header with an offset settles the accept date whatever the line
    /// before said; a zone-less header leaves it to the line before; a CLF date keeps its own.
    #[test]
    fn repeated_hour_settled_by_header_then_line_before() {
        let berlin = crate::Zone::parse("Europe/Berlin").unwrap();
        let first = micros_from_civil(2026, 10, 25, 0, 30, 0, 0);
        let second = micros_from_civil(2026, 10, 25, 1, 30, 0, 0);
        let accept = |raw: &str, near: Option<Micros>| {
            let o = ParseOptions {
                zone: berlin,
                year: 2026,
                near,
                ..ParseOptions::default()
            };
            match parse_line(raw.as_bytes(), &o).record {
                Record::Http(h) => h.accept_ts,
                other => panic!("{other:?}"),
            }
        };
        let msg = "10.0.0.1:5000 [25/Oct/2026:02:30:00.000] fe be/s1 0/0/1/2/3 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
        for near in [None, Some(first), Some(second)] {
            let l = format!("<134>1 2026-10-25T02:30:00.2+01:00 lb1 haproxy 1 - - {msg}");
            assert_eq!(accept(&l, near), second, "{near:?}");
            let l = format!("<134>2026-10-25T02:30:00.2+02:00 lb1 haproxy[1]: {msg}");
            assert_eq!(accept(&l, near), first, "{near:?}");
            let clf = "127.0.0.1 - - [25/Oct/2026:02:30:00 +0100] \"GET / HTTP/1.1\" 200 212 \"\" \"\" 50538 994 \"fe\" \"be\" \"s1\" 0 0 0 3 3 ---- 1 1 0 0 0 0 0 \"\" \"\" ";
            // CLF logs the milliseconds apart (`994`).
            assert_eq!(accept(clf, near), second + 994_000, "{near:?}");
        }
        for header in [
            "<134>Oct 25 02:30:00 lb1 haproxy[1]: ",
            "<134>2026-10-25T02:30:00 lb1 haproxy[1]: ",
            "",
        ] {
            let l = format!("{header}{msg}");
            assert_eq!(accept(&l, None), first, "{l}");
            assert_eq!(accept(&l, Some(first - 600_000_000)), first, "{l}");
            assert_eq!(accept(&l, Some(second + 600_000_000)), second, "{l}");
        }
    }

    #[test]
    fn year_follows_the_event() {
        let mut h = SyslogHeader {
            timestamp: Some(micros_from_civil(2026, 1, 1, 0, 0, 1, 0)),
            ..Default::default()
        };
        fix_year(
            &mut h,
            HeaderForm::Rfc3164,
            micros_from_civil(2025, 12, 31, 23, 59, 59, 0),
        );
        assert_eq!(h.timestamp, Some(micros_from_civil(2026, 1, 1, 0, 0, 1, 0)));
        let mut h = SyslogHeader {
            timestamp: Some(micros_from_civil(1970, 8, 5, 0, 50, 12, 0)),
            ..Default::default()
        };
        fix_year(
            &mut h,
            HeaderForm::Rfc3164,
            micros_from_civil(2012, 8, 5, 0, 50, 12, 93_000),
        );
        assert_eq!(h.timestamp, Some(micros_from_civil(2012, 8, 5, 0, 50, 12, 0)));
    }
}
