//! The syslog header layer: a line in, a [`SyslogHeader`] and the message bytes out.
//!
//! Every header HAProxy sends (see HAPROXY.md) and what rsyslog or syslog-ng write to files:
//!
//! | form | example prefix |
//! |---|---|
//! | `local` | `<134>Nov 22 01:22:06 haproxy[12136]: ` |
//! | `rfc3164`, files | `<134>Nov 22 01:22:06 lb1 haproxy[12136]: `, `Nov 22 01:22:06 lb1 haproxy[1]: ` |
//! | `rfc5424` | `<134>1 2026-11-22T01:22:06.964484+00:00 - haproxy 12136 - - ` |
//! | `timed`, `iso` | `<6>2026-11-22T01:22:06.964501+00:00 `, `2026-11-22T01:22:06.964505+00:00 ` |
//! | rsyslog high precision | `2026-11-22T01:22:06.964505+01:00 lb1 haproxy[1]: ` |
//! | `priority`, `short` | `<134>`, `<6>` |
//! | `raw` | nothing |
//!
//! RFC 5424 goes through `syslog_loose`, which handles structured data and its escapes. The
//! RFC 3164 and ISO-prefixed forms, which carry the bulk of HAProxy traffic, are read by a
//! hand-written scanner: `weir report` reads millions of lines a second and `syslog_loose`
//! (built on `chrono` parsing) costs more than the whole HAProxy line parse. The property test
//! below holds the two to the same answers.

use std::cell::{Cell, RefCell};

use weir_model::time::{micros_from_civil, month_from_abbrev};
use weir_model::{Micros, RejectReason, SyslogHeader};

use crate::haproxy::fields::{find, find_near, utf8, Text};
use crate::ParseOptions;

/// How the header was written; tells which fields it could carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderForm {
    /// No header at all (HAProxy `raw`, or a bare log file).
    None,
    /// Only `<PRI>` (HAProxy `priority` and `short`).
    PriOnly,
    /// RFC 3164 `Mmm dd hh:mm:ss` timestamp: no year, read in the configured zone.
    Rfc3164,
    /// An RFC 3339 timestamp without the `1 ` version (HAProxy `timed`/`iso`, rsyslog).
    Iso,
    /// RFC 5424.
    Rfc5424,
}

/// Reads the header at the start of `line`; returns it, its form, and the message after it.
///
/// A line that does not start like any header is all message (`HeaderForm::None`). Only a
/// header that starts well and then breaks, such as `<999>` or a bad RFC 5424 timestamp, is an
/// error.
pub fn parse_header<'a>(
    line: &'a [u8],
    opts: &ParseOptions,
) -> Result<(SyslogHeader<'a>, HeaderForm, &'a [u8]), RejectReason> {
    parse_header_in(line, opts, None)
}

/// [`parse_header`] of a line already validated as UTF-8 (`text`, when it is): host and tag
/// become `&str` by slicing instead of one validation each.
#[inline]
pub(crate) fn parse_header_in<'a>(
    line: &'a [u8],
    opts: &ParseOptions,
    text: Option<Text<'a>>,
) -> Result<(SyslogHeader<'a>, HeaderForm, &'a [u8]), RejectReason> {
    let mut header = SyslogHeader::default();
    let mut rest = line;
    let mut form = HeaderForm::None;
    if let Some((pri, after)) = pri(line)? {
        header.facility = Some(pri / 8);
        header.severity = Some(pri % 8);
        rest = after;
        form = HeaderForm::PriOnly;
        if rest.len() > 2
            && rest[0] == b'1'
            && rest[1] == b' '
            && (rest[2].is_ascii_digit() || rest[2] == b'-')
        {
            return rfc5424(line, header, opts);
        }
    }
    if let Some((ts, after)) = rfc3164_timestamp_cached(rest, opts) {
        header.timestamp = Some(ts);
        let (host, app, procid, msg) = host_and_tag_cached(after, true, text);
        (header.host, header.app, header.procid) = (host, app, procid);
        return Ok((header, HeaderForm::Rfc3164, msg));
    }
    if let Some((ts, after)) = iso_timestamp(rest, opts) {
        header.timestamp = Some(ts);
        let (host, app, procid, msg) = host_and_tag_cached(after, false, text);
        (header.host, header.app, header.procid) = (host, app, procid);
        return Ok((header, HeaderForm::Iso, msg));
    }
    Ok((header, form, rest))
}

/// Whether the header of `line` (read as `form`) gave an instant of its own, with an offset,
/// rather than a wall-clock time read in the configured zone.
pub(crate) fn carries_offset(line: &[u8], form: HeaderForm) -> bool {
    match form {
        HeaderForm::Rfc5424 => true,
        HeaderForm::Iso => {
            let s = match pri(line) {
                Ok(Some((_, after))) => after,
                _ => line,
            };
            let mut i = 19;
            if s.get(i) == Some(&b'.') {
                i += 1;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            matches!(s.get(i), Some(b'Z' | b'z' | b'+' | b'-'))
        }
        _ => false,
    }
}

/// `<PRI>`: `Ok(None)` when the line does not start with `<digit`.
fn pri(line: &[u8]) -> Result<Option<(u8, &[u8])>, RejectReason> {
    if line.len() < 3 || line[0] != b'<' || !line[1].is_ascii_digit() {
        return Ok(None);
    }
    let mut v: u32 = 0;
    for (i, &b) in line[1..].iter().enumerate().take(4) {
        match b {
            b'0'..=b'9' if i < 3 => v = v * 10 + (b - b'0') as u32,
            b'>' if i > 0 => {
                return if v <= 191 {
                    Ok(Some((v as u8, &line[i + 2..])))
                } else {
                    Err(RejectReason::BadSyslogHeader)
                };
            }
            _ => return Err(RejectReason::BadSyslogHeader),
        }
    }
    Err(RejectReason::BadSyslogHeader)
}

#[inline]
fn digits2(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9', ..] => Some(((a - b'0') * 10 + (c - b'0')) as u32),
        _ => None,
    }
}

/// `Mmm dd hh:mm:ss ` (day as `dd`, ` d` or `0d`), followed by a space: the wall-clock time
/// (as if it were UTC) in `year`.
fn rfc3164_wall_clock(s: &[u8], year: i32) -> Option<(Micros, &[u8])> {
    if s.len() < 16 || s[3] != b' ' || s[6] != b' ' || s[9] != b':' || s[12] != b':' || s[15] != b' ' {
        return None;
    }
    let month = month_from_abbrev(&s[..3])?;
    let day = match (s[4], s[5]) {
        (b' ', d @ b'0'..=b'9') => (d - b'0') as u32,
        _ => digits2(&s[4..6])?,
    };
    let (h, m, sec) = (digits2(&s[7..9])?, digits2(&s[10..12])?, digits2(&s[13..15])?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let local = micros_from_civil(year, month, day, h, m, sec, 0);
    Some((local, &s[16..]))
}

/// The RFC 3164 timestamp at the start of `s`, read in the options' zone, with the last
/// wall-clock answer of this thread kept: consecutive lines mostly share their second, and
/// then the calendar work is three compares (the zone's is a compare and a subtraction).
#[inline]
fn rfc3164_timestamp_cached<'a>(s: &'a [u8], opts: &ParseOptions) -> Option<(Micros, &'a [u8])> {
    type Last = ([u8; 16], i32, Micros);
    thread_local! {
        static LAST: Cell<Option<Last>> = const { Cell::new(None) };
    }
    let key: [u8; 16] = *s.first_chunk::<16>()?;
    let local = match LAST.get() {
        Some((k, year, local)) if k == key && year == opts.year => local,
        _ => {
            let (local, _) = rfc3164_wall_clock(s, opts.year)?;
            LAST.set(Some((key, opts.year, local)));
            local
        }
    };
    Some((opts.zone.to_utc_near(local, opts.near), &s[16..]))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, followed by a space or the end.
fn iso_timestamp<'a>(s: &'a [u8], opts: &ParseOptions) -> Option<(Micros, &'a [u8])> {
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !(s[10] == b'T' || s[10] == b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let year = digits2(&s[0..2])? * 100 + digits2(&s[2..4])?;
    let (mo, d, h, mi, sec) = (
        digits2(&s[5..7])?,
        digits2(&s[8..10])?,
        digits2(&s[11..13])?,
        digits2(&s[14..16])?,
        digits2(&s[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0u32;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (s[i] - b'0') as u32;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let local = micros_from_civil(year as i32, mo, d, h, mi, sec, micros);
    let utc = match s.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            local
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (oh, om) = (digits2(s.get(i + 1..)?)?, digits2(s.get(i + 4..)?)?);
            if s[i + 3] != b':' {
                return None;
            }
            i += 6;
            let off = (oh * 3600 + om * 60) as i64 * 1_000_000;
            if sign == b'+' {
                local - off
            } else {
                local + off
            }
        }
        _ => opts.zone.to_utc_near(local, opts.near),
    };
    match s.get(i) {
        None => Some((utc, &s[i..])),
        Some(b' ') => Some((utc, &s[i + 1..])),
        _ => None,
    }
}

type HostTag<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// Where [`host_and_tag`] found host, tag and pid in the bytes before the message: the
/// answer for one line, kept to be reused for the next lines that start with the same bytes.
#[derive(Clone, Copy)]
struct KnownTag {
    /// The bytes up to the message (the last one a space), of which `len` are used.
    prefix: [u8; KnownTag::MAX],
    len: u8,
    tag_required: bool,
    host: Option<(u8, u8)>,
    app: Option<(u8, u8)>,
    procid: Option<(u8, u8)>,
}

impl KnownTag {
    const MAX: usize = 64;

    /// Remembers the answer `(host, app, procid, msg)` of `s`, when it can be reused: the bytes
    /// before the message are short and end with the space that ended the tag, so that any line
    /// starting with the same bytes gives the same answer.
    fn of(s: &[u8], tag_required: bool, found: &HostTag<'_>) -> Option<KnownTag> {
        let len = s.len() - found.3.len();
        if len == 0 || len > Self::MAX || s[len - 1] != b' ' {
            return None;
        }
        let at = |f: Option<&str>| {
            f.map(|f| {
                let start = f.as_ptr() as usize - s.as_ptr() as usize;
                (start as u8, (start + f.len()) as u8)
            })
        };
        let mut prefix = [0; Self::MAX];
        prefix[..len].copy_from_slice(&s[..len]);
        Some(KnownTag {
            prefix,
            len: len as u8,
            tag_required,
            host: at(found.0),
            app: at(found.1),
            procid: at(found.2),
        })
    }

    /// The answer for `s`, when `s` starts with the remembered bytes.
    #[inline]
    fn apply<'a>(&self, s: &'a [u8], tag_required: bool, text: Option<Text<'a>>) -> Option<HostTag<'a>> {
        let len = self.len as usize;
        // Eight bytes first: a line from another sender differs there, in one compare.
        let head = |b: &[u8]| b.first_chunk::<8>().map(|w| u64::from_ne_bytes(*w));
        if self.tag_required != tag_required
            || head(s) != head(&self.prefix)
            || s.get(..len)? != &self.prefix[..len]
        {
            return None;
        }
        let field = |r: Option<(u8, u8)>| match r {
            Some((a, b)) => ascii(text, &s[a as usize..b as usize]).map(Some),
            None => Some(None),
        };
        Some((
            field(self.host)?,
            field(self.app)?,
            field(self.procid)?,
            &s[len..],
        ))
    }
}

/// [`host_and_tag`], reusing the answer of a recent line of this thread when the new line has
/// the same bytes before its message: a sender repeats its host and `haproxy[pid]:` on every
/// line, and a file merged from a few balancers interleaves a few such prefixes.
#[inline]
fn host_and_tag_cached<'a>(s: &'a [u8], tag_required: bool, text: Option<Text<'a>>) -> HostTag<'a> {
    /// The recent prefixes kept, replaced oldest first.
    const SLOTS: usize = 4;
    struct Recent {
        slots: [Option<KnownTag>; SLOTS],
        next: usize,
    }
    thread_local! {
        static RECENT: RefCell<Recent> = const {
            RefCell::new(Recent {
                slots: [None; SLOTS],
                next: 0,
            })
        };
    }
    RECENT.with_borrow_mut(|recent| {
        for known in recent.slots.iter().flatten() {
            if let Some(found) = known.apply(s, tag_required, text) {
                return found;
            }
        }
        let found = host_and_tag(s, tag_required, text);
        if let Some(known) = KnownTag::of(s, tag_required, &found) {
            recent.slots[recent.next] = Some(known);
            recent.next = (recent.next + 1) % SLOTS;
        }
        found
    })
}

/// After a timestamp: `[HOST ]TAG[PID]: MSG`, or the message alone. `tag_required` is true for
/// RFC 3164, where a first word ending in `:` is the tag even without `[pid]`; after an ISO
/// timestamp (HAProxy `timed`/`iso`) the message may follow at once, so a lone first word such as
/// `SPOE:` is taken for a tag only when it carries a `[pid]`.
fn host_and_tag<'a>(s: &'a [u8], tag_required: bool, text: Option<Text<'a>>) -> HostTag<'a> {
    let (first, after_first) = word(s);
    if let Some((app, pid)) = tag(first, tag_required, text) {
        return (None, app, pid, skip_space(after_first));
    }
    let (second, after_second) = word(skip_space(after_first));
    if !first.is_empty() {
        if let Some((app, pid)) = tag(second, true, text) {
            let host = ascii(text, first).filter(|h| *h != "-");
            return (host, app, pid, skip_space(after_second));
        }
    }
    (None, None, None, s)
}

#[inline]
fn skip_space(s: &[u8]) -> &[u8] {
    s.strip_prefix(b" ").unwrap_or(s)
}

/// The next space-delimited word and what follows it (starting at the space).
#[inline]
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    match find_near(s, b' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, &s[s.len()..]),
    }
}

/// `name[pid]:` or, when `bare_ok`, `name:`.
fn tag<'a>(w: &'a [u8], bare_ok: bool, text: Option<Text<'a>>) -> Option<(Option<&'a str>, Option<&'a str>)> {
    let w = w.strip_suffix(b":")?;
    if w.is_empty() || w.len() > 128 {
        return None;
    }
    if let Some(body) = w.strip_suffix(b"]") {
        let open = find(body, b'[')?;
        let (name, pid) = (&body[..open], &body[open + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tag_char(b)) || pid.contains(&b'[') {
            return None;
        }
        return Some((ascii(text, name), ascii(text, pid).filter(|p| !p.is_empty())));
    }
    if bare_ok && w.iter().all(|&b| is_tag_char(b)) {
        return Some((ascii(text, w), None));
    }
    None
}

#[inline]
fn is_tag_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b':')
}

/// `b` as `&str`: a slice of `text` when the line was validated, else validated alone.
#[inline]
fn ascii<'a>(text: Option<Text<'a>>, b: &'a [u8]) -> Option<&'a str> {
    match text {
        Some(t) => t.of(b).ok(),
        None => std::str::from_utf8(b).ok(),
    }
}

/// RFC 5424 through `syslog_loose`. `line` starts at `<PRI>`.
fn rfc5424<'a>(
    line: &'a [u8],
    mut header: SyslogHeader<'a>,
    opts: &ParseOptions,
) -> Result<(SyslogHeader<'a>, HeaderForm, &'a [u8]), RejectReason> {
    // syslog_loose trims; the message is located again in the untrimmed bytes below.
    let text = utf8(line)?;
    let msg = match syslog_loose::parse_message_with_year_exact(
        text,
        |_| opts.year,
        syslog_loose::Variant::RFC5424,
    ) {
        Ok(m) => m,
        Err(_) => return without_structured_data(line, text, header, opts),
    };
    header.timestamp = msg.timestamp.map(|t| t.timestamp_micros());
    header.host = msg.hostname;
    header.app = msg.appname;
    // PROCID is the fifth space-separated field: `<PRI>1 TS HOST APP PROCID MSGID SD`.
    header.procid = text.split(' ').nth(4).filter(|p| *p != "-");
    let start = msg.msg.as_ptr() as usize - text.as_ptr() as usize;
    // STRUCTURED-DATA runs from the seventh field to the message.
    let sd_from = text.match_indices(' ').nth(5).map_or(text.len(), |(i, _)| i + 1);
    let sd_to = if msg.msg.is_empty() { text.len() } else { start };
    header.structured_data = text
        .get(sd_from..sd_to.max(sd_from))
        .map(str::trim_end)
        .filter(|sd| sd.starts_with('['));
    let body = if msg.msg.is_empty() {
        &line[line.len()..]
    } else {
        &line[start..]
    };
    Ok((header, HeaderForm::Rfc5424, body))
}

/// Heroku's logplex drains write RFC 5424 without STRUCTURED-DATA (`<158>1 TS host heroku
/// router - at=info ...`), the message right after MSGID. Such a header is read with a `-` in
/// the SD's place; the message is what follows MSGID.
fn without_structured_data<'a>(
    line: &'a [u8],
    text: &'a str,
    mut header: SyslogHeader<'a>,
    opts: &ParseOptions,
) -> Result<(SyslogHeader<'a>, HeaderForm, &'a [u8]), RejectReason> {
    let bad = RejectReason::BadSyslogHeader;
    let msg_from = text.match_indices(' ').nth(5).map(|(i, _)| i + 1).ok_or(bad)?;
    if text[msg_from..].starts_with(['[', '-']) {
        return Err(bad);
    }
    let head = format!("{}-", &text[..msg_from]);
    let parsed =
        syslog_loose::parse_message_with_year_exact(&head, |_| opts.year, syslog_loose::Variant::RFC5424)
            .map_err(|_| bad)?;
    header.timestamp = parsed.timestamp.map(|t| t.timestamp_micros());
    let mut fields = text.split(' ');
    header.host = fields.nth(2).filter(|h| *h != "-");
    header.app = fields.next().filter(|a| *a != "-");
    header.procid = fields.next().filter(|p| *p != "-");
    header.structured_data = None;
    Ok((header, HeaderForm::Rfc5424, &line[msg_from..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::time::micros_from_civil;

    fn opts() -> ParseOptions {
        ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        }
    }

    fn parse(s: &str) -> (SyslogHeader<'_>, HeaderForm, &str) {
        let (h, f, m) = parse_header(s.as_bytes(), &opts()).unwrap();
        (h, f, std::str::from_utf8(m).unwrap())
    }

    const NOV22: i64 = micros_from_civil(2026, 11, 22, 1, 22, 6, 0);

    #[test]
    fn haproxy_local_format_has_no_host() {
        let (h, f, m) =
            parse("<134>Nov 22 01:22:06 haproxy[12136]: 127.0.0.1:34782 [22/Nov/2026:01:22:06.958] x");
        assert_eq!(f, HeaderForm::Rfc3164);
        assert_eq!((h.facility, h.severity), (Some(16), Some(6)));
        assert_eq!(h.timestamp, Some(NOV22));
        assert_eq!((h.host, h.app, h.procid), (None, Some("haproxy"), Some("12136")));
        assert_eq!(m, "127.0.0.1:34782 [22/Nov/2026:01:22:06.958] x");
    }

    #[test]
    fn rfc3164_with_hostname_and_padded_day() {
        let (h, _, m) = parse("<134>Nov  2 01:22:06 lb-test haproxy[13668]: Proxy x started.");
        assert_eq!(h.timestamp, Some(micros_from_civil(2026, 11, 2, 1, 22, 6, 0)));
        assert_eq!(
            (h.host, h.app, h.procid),
            (Some("lb-test"), Some("haproxy"), Some("13668"))
        );
        assert_eq!(m, "Proxy x started.");
        let (h, _, _) = parse("Feb 01 18:34:10 - haproxy[42471]: x");
        assert_eq!((h.host, h.app, h.facility), (None, Some("haproxy"), None));
    }

    #[test]
    fn rsyslog_file_without_pri_and_bare_tag() {
        let (h, f, m) = parse("Aug  5 00:50:12 localhost kernel: eth0 up");
        assert_eq!(f, HeaderForm::Rfc3164);
        assert_eq!(
            (h.host, h.app, h.procid, h.facility),
            (Some("localhost"), Some("kernel"), None, None)
        );
        assert_eq!(m, "eth0 up");
    }

    #[test]
    fn rfc5424_goes_through_syslog_loose() {
        let (h, f, m) =
            parse("<134>1 2026-11-22T01:22:06.964484+00:00 - haproxy 12136 - - 127.0.0.1:1 [x] y");
        assert_eq!(f, HeaderForm::Rfc5424);
        assert_eq!(h.timestamp, Some(NOV22 + 964_484));
        assert_eq!((h.host, h.app, h.procid), (None, Some("haproxy"), Some("12136")));
        assert_eq!(m, "127.0.0.1:1 [x] y");
        assert_eq!(h.structured_data, None, "a message that looks like SD is not SD");
        let (h, _, m) = parse("<14>1 2026-11-22T01:22:06Z app1 web 42 ID47 [ex@1 a=\"b\"] hello world");
        assert_eq!((h.host, h.app, h.procid), (Some("app1"), Some("web"), Some("42")));
        assert_eq!(m, "hello world");
        assert_eq!(h.structured_data, Some("[ex@1 a=\"b\"]"));
        let (h, _, m) = parse("<14>1 2026-11-22T01:22:06Z app1 web 42 ID47 [a x=\"1\"][b y=\"\\]\"]");
        assert_eq!((h.structured_data, m), (Some("[a x=\"1\"][b y=\"\\]\"]"), ""));
        // A logplex drain: no STRUCTURED-DATA at all.
        let (h, f, m) = parse("<158>1 2026-11-22T01:22:06+00:00 host heroku router - at=info status=200");
        assert_eq!(f, HeaderForm::Rfc5424);
        assert_eq!(
            (h.timestamp, h.host, h.app, h.procid),
            (Some(NOV22), Some("host"), Some("heroku"), Some("router"))
        );
        assert_eq!((h.structured_data, m), (None, "at=info status=200"));
    }

    #[test]
    fn timed_and_iso_have_no_tag() {
        let (h, f, m) =
            parse("<6>2026-11-22T01:22:06.964501+00:00 127.0.0.1:34782 [22/Nov/2026:01:22:06.958] fe");
        assert_eq!(f, HeaderForm::Iso);
        assert_eq!((h.severity, h.timestamp), (Some(6), Some(NOV22 + 964_501)));
        assert_eq!(m, "127.0.0.1:34782 [22/Nov/2026:01:22:06.958] fe");
        let (h, _, m) = parse("2026-11-22T02:22:06.5+01:00 SPOE: [hauth] x");
        assert_eq!((h.app, h.timestamp), (None, Some(NOV22 + 500_000)));
        assert_eq!(m, "SPOE: [hauth] x");
    }

    #[test]
    fn a_line_with_the_previous_lines_prefix_gets_its_own_fields() {
        let o = opts();
        let lines: [&[u8]; 5] = [
            b"Nov 22 00:00:00 lb2 haproxy[8873]: first",
            b"Nov 22 00:00:01 lb2 haproxy[8873]: second",
            b"Nov 22 00:00:01 lb2 haproxy[8874]: third",
            b"Nov 22 00:00:01 lb2 haproxy[8874]:fourth",
            b"Nov 22 00:00:01 lb2 haproxy[8874]: ",
        ];
        let got: Vec<_> = lines
            .iter()
            .map(|l| {
                let (h, _, msg) = parse_header(l, &o).unwrap();
                (h.host, h.app, h.procid, msg)
            })
            .collect();
        assert_eq!(
            got[0],
            (Some("lb2"), Some("haproxy"), Some("8873"), &b"first"[..])
        );
        assert_eq!(
            got[1],
            (Some("lb2"), Some("haproxy"), Some("8873"), &b"second"[..])
        );
        assert_eq!(
            got[2],
            (Some("lb2"), Some("haproxy"), Some("8874"), &b"third"[..])
        );
        // Without the space after the colon there is no tag (as before the same prefix).
        assert_eq!(got[3], (None, None, None, &b"lb2 haproxy[8874]:fourth"[..]));
        assert_eq!(got[4], (Some("lb2"), Some("haproxy"), Some("8874"), &b""[..]));
    }

    #[test]
    fn rsyslog_iso_with_host_and_tag() {
        let (h, _, m) = parse("2015-08-26T02:09:48+02:00 localhost haproxy[14389]: msg");
        assert_eq!(h.timestamp, Some(micros_from_civil(2015, 8, 26, 0, 9, 48, 0)));
        assert_eq!(
            (h.host, h.app, h.procid),
            (Some("localhost"), Some("haproxy"), Some("14389"))
        );
        assert_eq!(m, "msg");
    }

    #[test]
    fn pri_only_and_raw() {
        let (h, f, m) = parse("<6>127.0.0.1:1 [22/Nov/2026:01:22:06.958] fe");
        assert_eq!(
            (f, h.severity, h.facility),
            (HeaderForm::PriOnly, Some(6), Some(0))
        );
        assert_eq!(m, "127.0.0.1:1 [22/Nov/2026:01:22:06.958] fe");
        let (h, f, m) = parse("Proxy fe started.");
        assert_eq!((f, h), (HeaderForm::None, SyslogHeader::default()));
        assert_eq!(m, "Proxy fe started.");
    }

    #[test]
    fn cached_timestamps_follow_the_options() {
        let line = b"Nov 22 01:22:06 lb1 haproxy[1]: x";
        let ts = |year| {
            parse_header(line, &ParseOptions { year, ..opts() })
                .unwrap()
                .0
                .timestamp
        };
        assert_eq!(ts(2026), Some(micros_from_civil(2026, 11, 22, 1, 22, 6, 0)));
        assert_eq!(ts(2025), Some(micros_from_civil(2025, 11, 22, 1, 22, 6, 0)));
        let (h, f, _) = parse_header(b"Nov 22 01:22:06", &opts()).unwrap();
        assert_eq!((h.timestamp, f), (None, HeaderForm::None));
    }

    #[test]
    fn broken_headers_are_errors() {
        for bad in [
            "<999>x",
            "<1234>x",
            "<13x",
            "<134>1 2026-13-45T99:00:00Z - - - - - x",
        ] {
            assert_eq!(
                parse_header(bad.as_bytes(), &opts()).map(|_| ()),
                Err(RejectReason::BadSyslogHeader),
                "{bad}"
            );
        }
        // Not a PRI at all: the whole line is message.
        assert_eq!(parse_header(b"<html>", &opts()).unwrap().1, HeaderForm::None);
    }

    #[test]
    fn zone_applies_to_zoneless_timestamps_only() {
        let o = ParseOptions {
            zone: crate::Zone::fixed(3600),
            year: 2026,
            ..ParseOptions::default()
        };
        let (h, _, _) = parse_header(b"Nov 22 02:22:06 h a: m", &o).unwrap();
        assert_eq!(h.timestamp, Some(NOV22));
        let (h, _, _) = parse_header(b"2026-11-22T01:22:06Z h a[1]: m", &o).unwrap();
        assert_eq!(h.timestamp, Some(NOV22));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_header(&bytes, &opts());
        }

        /// Reusing the previous line's host and tag gives the same answer as reading them
        /// again, whatever the two lines are (a small alphabet makes shared prefixes common).
        #[test]
        fn reused_tag_agrees_with_a_fresh_read(
            a in "[a ]{0,3}[a-c\\[\\]:1 -]{0,16}",
            b in "[a ]{0,3}[a-c\\[\\]:1 -]{0,16}",
            tag_required in proptest::bool::ANY,
        ) {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            host_and_tag_cached(a, tag_required, Text::new(a).ok());
            proptest::prop_assert_eq!(
                host_and_tag_cached(b, tag_required, Text::new(b).ok()),
                host_and_tag(b, tag_required, Text::new(b).ok())
            );
            proptest::prop_assert_eq!(host_and_tag_cached(b, !tag_required, None), host_and_tag(b, !tag_required, None));
        }

        /// The hand-written RFC 3164 scanner agrees with syslog_loose.
        #[test]
        fn rfc3164_agrees_with_syslog_loose(
            pri in 0u8..192, mo in 1u32..13, d in 1u32..29, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
            host in "[a-z][a-z0-9-]{0,12}", app in "[a-z][a-z0-9_-]{0,10}", pid in 1u32..99999,
            msg in "[a-zA-Z0-9 .=]{1,40}",
        ) {
            const MONTHS: [&str; 12] = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"];
            let line = format!("<{pri}>{} {d:>2} {h:02}:{mi:02}:{s:02} {host} {app}[{pid}]: {msg}", MONTHS[mo as usize - 1]);
            let (ours, form, body) = parse_header(line.as_bytes(), &opts()).unwrap();
            proptest::prop_assert_eq!(form, HeaderForm::Rfc3164);
            let theirs = syslog_loose::parse_message_with_year_exact_tz(
                &line, |_| 2026, Some(chrono::FixedOffset::east_opt(0).unwrap()), syslog_loose::Variant::RFC3164,
            ).unwrap();
            proptest::prop_assert_eq!(ours.timestamp, theirs.timestamp.map(|t| t.timestamp_micros()));
            proptest::prop_assert_eq!(ours.host, theirs.hostname);
            proptest::prop_assert_eq!(ours.app, theirs.appname);
            proptest::prop_assert_eq!(ours.facility, theirs.facility.map(|f| f as u8));
            proptest::prop_assert_eq!(ours.severity, theirs.severity.map(|f| f as u8));
            proptest::prop_assert_eq!(std::str::from_utf8(body).unwrap().trim(), theirs.msg);
        }
    }
}
