//! Field parsers shared by the HTTP, CLF and TCP layouts: client address, accept date, proxy
//! names, counters and timers. Each is a nom parser over `&[u8]` (error type `()`: the caller
//! knows which field it asked for and maps a failure to the precise [`RejectReason`]).

use nom::bytes::complete::{tag, take_till1};
use std::cell::Cell;

use nom::{IResult, Parser};
use weir_model::time::{days_from_civil, month_from_abbrev, Micros, MICROS_PER_SEC};
use weir_model::{ClientAddr, RejectReason};

use crate::{ParseOptions, Zone};

/// A parse result whose failure carries nothing: the call site names the field.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, ()>;

/// A run of bytes up to the next space (at least one byte).
#[inline]
pub(crate) fn token(i: &[u8]) -> PResult<'_, &[u8]> {
    take_till1(|c| c == b' ').parse_complete(i)
}

/// A field followed by a space: the shape of every mandatory field but the last one of a line.
/// A field that runs to the end of the message may have been cut by HAProxy's `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    /// The field and what follows its separating space.
    Full(&'a [u8], &'a [u8]),
    /// The field runs to the end of the message (possibly cut short).
    Last(&'a [u8]),
    /// Nothing left.
    End,
}

/// Splits the next space-separated field.
#[inline(always)]
pub(crate) fn next_field(i: &[u8]) -> Field<'_> {
    if i.is_empty() {
        return Field::End;
    }
    match find(i, b' ') {
        Some(n) => Field::Full(&i[..n], &i[n + 1..]),
        None => Field::Last(i),
    }
}

/// `bytes` as `&str`, or [`RejectReason::InvalidUtf8`]. Validated with SIMD (`simdutf8`): a
/// whole line or chunk is checked at once, several times faster than `std::str::from_utf8`.
#[inline]
pub(crate) fn utf8(b: &[u8]) -> Result<&str, RejectReason> {
    simdutf8::basic::from_utf8(b).map_err(|_| RejectReason::InvalidUtf8)
}

/// A message validated as UTF-8 once, so that its fields become `&str` by slicing instead of
/// one validation per field (a tenth of the parse time otherwise). Fields are cut at ASCII
/// delimiters, which are always character boundaries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'a>(&'a str);

impl<'a> Text<'a> {
    /// Validates the whole message.
    #[inline]
    pub(crate) fn new(msg: &'a [u8]) -> Result<Self, RejectReason> {
        utf8(msg).map(Text)
    }

    /// Text already known to be UTF-8.
    #[inline]
    pub(crate) fn validated(s: &'a str) -> Self {
        Text(s)
    }

    /// The `&str` of `b`, a sub-slice of the message.
    #[inline]
    pub(crate) fn of(self, b: &'a [u8]) -> Result<&'a str, RejectReason> {
        let off = (b.as_ptr() as usize).wrapping_sub(self.0.as_ptr() as usize);
        let end = off.checked_add(b.len()).ok_or(RejectReason::InvalidUtf8)?;
        self.0.get(off..end).ok_or(RejectReason::InvalidUtf8)
    }
}

/// The position of the first `c` in a field, eight bytes at a time (SWAR): fields are a few
/// bytes to a few dozen, too short for `memchr`'s setup, and a byte loop costs a compare and a
/// branch per byte.
#[inline(always)]
pub(crate) fn find(b: &[u8], c: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * c as u64;
    let mut i = 0;
    while let Some(w) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let v = u64::from_le_bytes(*w) ^ pattern;
        // The lowest flagged byte is always a real match (borrows only flag bytes above one).
        let hits = v.wrapping_sub(LO) & !v & HI;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&x| x == c).map(|n| n + i)
}

/// The first `c` in `b`, which is usually found within a few dozen bytes of a long slice:
/// [`find`] first, `memchr` past that.
#[inline]
pub(crate) fn find_near(b: &[u8], c: u8) -> Option<usize> {
    let head = &b[..b.len().min(64)];
    match find(head, c) {
        Some(n) => Some(n),
        None if b.len() > head.len() => memchr::memchr(c, &b[head.len()..]).map(|n| n + head.len()),
        None => None,
    }
}

/// An unsigned decimal of at most `max_digits` digits (no sign), or `None`.
#[inline]
pub(crate) fn dec_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        // 19 digits always fit in u64; longer counts are not something HAProxy prints.
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

/// An unsigned 32-bit decimal.
#[inline]
pub(crate) fn dec_u32(b: &[u8]) -> Option<u32> {
    if b.len() > 10 {
        return None;
    }
    dec_u64(b).and_then(|v| u32::try_from(v).ok())
}

/// A counter that may carry a `+` (retries when redispatched, bytes with logasap): the value
/// and whether the `+` was there.
#[inline(always)]
pub(crate) fn plus_u64(b: &[u8]) -> Option<(u64, bool)> {
    match b.first() {
        Some(b'+') => dec_u64(&b[1..]).map(|v| (v, true)),
        _ => dec_u64(b).map(|v| (v, false)),
    }
}

/// A timer: `-1` is `None` (stage never reached), `+N` is logasap (`+-1` is read as `None`
/// logged early). Any other negative value is not something HAProxy prints and fails.
#[inline]
pub(crate) fn timer(b: &[u8]) -> Option<(Option<i32>, bool)> {
    match b {
        b"-1" => Some((None, false)),
        b"+-1" => Some((None, true)),
        [b'+', rest @ ..] => dec_i32(rest).map(|v| (Some(v), true)),
        _ => dec_i32(b).map(|v| (Some(v), false)),
    }
}

#[inline]
fn dec_i32(b: &[u8]) -> Option<i32> {
    if b.len() > 10 {
        return None;
    }
    dec_u64(b).and_then(|v| i32::try_from(v).ok())
}

/// An HTTP status: `-1` is `None`, otherwise a number up to 65535.
#[inline]
pub(crate) fn status(b: &[u8]) -> Option<Option<u16>> {
    if b == b"-1" {
        return Some(None);
    }
    if b.len() > 5 {
        return None;
    }
    dec_u64(b).and_then(|v| u16::try_from(v).ok()).map(Some)
}

/// Splits `b` at `/` into exactly `N` parts, or `None`.
#[inline]
pub(crate) fn split_slash<const N: usize>(b: &[u8]) -> Option<[&[u8]; N]> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut rest = b;
    for (k, slot) in out.iter_mut().enumerate() {
        if k + 1 == N {
            if find(rest, b'/').is_some() {
                return None;
            }
            *slot = rest;
        } else {
            let n = find(rest, b'/')?;
            *slot = &rest[..n];
            rest = &rest[n + 1..];
        }
    }
    Some(out)
}

/// The client token `ip:port`, split at the **last** `:` (IPv6 is printed without brackets).
///
/// HAProxy never prints an invalid address, so the text before the colon is kept as logged
/// (anonymized logs use `X.X.X.1`, `IPADDRESS`, ...); only a token without a colon or with
/// nothing before it is refused. The port is `None` when not numeric.
#[inline(always)]
pub(crate) fn client_addr<'a>(t: Text<'a>, tok: &'a [u8]) -> Result<ClientAddr<'a>, RejectReason> {
    let colon = tok
        .iter()
        .rposition(|&c| c == b':')
        .ok_or(RejectReason::BadClientAddr)?;
    if colon == 0 {
        return Err(RejectReason::BadClientAddr);
    }
    let ip = t.of(&tok[..colon])?;
    let port_b = &tok[colon + 1..];
    let port = if port_b.len() <= 5 {
        dec_u64(port_b).and_then(|p| u16::try_from(p).ok())
    } else {
        None
    };
    Ok(ClientAddr { ip, port })
}

/// Two ASCII digits.
#[inline]
pub(crate) fn d2(b: &[u8]) -> Option<u32> {
    let (a, c) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (a <= 9 && c <= 9).then_some(a as u32 * 10 + c as u32)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `dd/Mon/yyyy:HH:MM:SS` (20 bytes) as wall-clock micros "as if UTC", validated.
///
/// Consecutive lines mostly share their second: the last date read on this thread is kept
/// with its bytes and reused when they match (three word compares instead of the calendar).
#[inline]
pub(crate) fn civil_datetime(b: &[u8]) -> Option<Micros> {
    thread_local! {
        static LAST: Cell<Option<([u8; 20], Micros)>> = const { Cell::new(None) };
    }
    let key: [u8; 20] = *b.first_chunk::<20>()?;
    if let Some((k, v)) = LAST.get() {
        if k == key {
            return Some(v);
        }
    }
    let v = civil_datetime_uncached(&key)?;
    LAST.set(Some((key, v)));
    Some(v)
}

/// [`civil_datetime`] without the cache.
fn civil_datetime_uncached(b: &[u8]) -> Option<Micros> {
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[14] != b':' || b[17] != b':' {
        return None;
    }
    let day = d2(&b[0..2])?;
    let month = month_from_abbrev(&b[3..6])?;
    let year = d2(&b[7..9])? * 100 + d2(&b[9..11])?;
    let (h, mi, s) = (d2(&b[12..14])?, d2(&b[15..17])?, d2(&b[18..20])?);
    let year = year as i32;
    if day == 0 || day > days_in_month(year, month) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + (h * 3600 + mi * 60 + s) as i64) * MICROS_PER_SEC)
}

/// A fraction of a second `.mmm` (1 to 6 digits) as micros.
#[inline]
pub(crate) fn fraction(b: &[u8]) -> Option<Micros> {
    // Milliseconds, as HAProxy writes them, without the general loop.
    if let [a, b, c] = *b {
        let (a, b, c) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'), c.wrapping_sub(b'0'));
        if a > 9 || b > 9 || c > 9 {
            return None;
        }
        return Some((a as i64 * 100 + b as i64 * 10 + c as i64) * 1000);
    }
    if b.is_empty() || b.len() > 6 {
        return None;
    }
    let v = dec_u64(b)? as i64;
    Some(v * 10i64.pow(6 - b.len() as u32))
}

/// The accept date `[22/Nov/2026:01:22:06.958]` (milliseconds optional), read in the options'
/// zone (a repeated hour settled by `opts.near`) and returned as UTC micros.
#[inline(always)]
pub(crate) fn accept_date<'a>(i: &'a [u8], opts: &ParseOptions) -> PResult<'a, Micros> {
    let (i, _) = tag(&b"["[..]).parse_complete(i)?;
    // `]` sits at a fixed place with milliseconds (the usual case) or without.
    let close = match i.get(24) {
        Some(b']') => 24,
        _ => find_near(i, b']').ok_or(nom::Err::Error(()))?,
    };
    let body = &i[..close];
    let local = civil_datetime(body).ok_or(nom::Err::Error(()))?;
    let frac = match &body[20..] {
        [] => 0,
        [b'.', ms @ ..] => fraction(ms).ok_or(nom::Err::Error(()))?,
        _ => return Err(nom::Err::Error(())),
    };
    Ok((&i[close + 1..], opts.zone.to_utc_near(local + frac, opts.near)))
}

/// The CLF date `[22/Nov/2026:01:22:16 +0000]`, which carries its own offset.
pub(crate) fn clf_date(i: &[u8]) -> PResult<'_, Micros> {
    let (i, _) = tag(&b"["[..]).parse_complete(i)?;
    let close = memchr::memchr(b']', i).ok_or(nom::Err::Error(()))?;
    let body = &i[..close];
    let local = civil_datetime(body).ok_or(nom::Err::Error(()))?;
    let off = match &body[20..] {
        [b' ', sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (
                d2(&[*h1, *h2]).ok_or(nom::Err::Error(()))?,
                d2(&[*m1, *m2]).ok_or(nom::Err::Error(()))?,
            );
            if h > 23 || m > 59 {
                return Err(nom::Err::Error(()));
            }
            let secs = (h * 3600 + m * 60) as i32;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(nom::Err::Error(())),
    };
    Ok((&i[close + 1..], Zone::fixed(off).to_utc(local)))
}

/// Splits `name~` into `(name, true)`.
#[inline]
pub(crate) fn frontend<'a>(t: Text<'a>, tok: &'a [u8]) -> Result<(&'a str, bool), RejectReason> {
    let s = t.of(tok)?;
    Ok(match s.strip_suffix('~') {
        Some(name) => (name, true),
        None => (s, false),
    })
}

/// Splits `backend/server` at the first `/`.
#[inline(always)]
pub(crate) fn backend_server<'a>(t: Text<'a>, tok: &'a [u8]) -> Result<(&'a str, &'a str), RejectReason> {
    let n = find(tok, b'/').ok_or(RejectReason::BadProxyNames)?;
    if n == 0 || n + 1 == tok.len() {
        return Err(RejectReason::BadProxyNames);
    }
    Ok((t.of(&tok[..n])?, t.of(&tok[n + 1..])?))
}

/// The CLF layout prints backend and server as two fields.
#[inline]
pub(crate) fn backend_server_clf<'a>(
    t: Text<'a>,
    be: &'a [u8],
    srv: &'a [u8],
) -> Result<(&'a str, &'a str), RejectReason> {
    if be.is_empty() || srv.is_empty() {
        return Err(RejectReason::BadProxyNames);
    }
    Ok((t.of(be)?, t.of(srv)?))
}

/// A cookie field: `-` (or empty) is `None`.
#[inline]
pub(crate) fn cookie<'a>(t: Text<'a>, tok: &'a [u8]) -> Result<Option<&'a str>, RejectReason> {
    if tok == b"-" || tok.is_empty() {
        Ok(None)
    } else {
        t.of(tok).map(Some)
    }
}

/// One number of a `/`-separated group, with the sign HAProxy may put before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Num {
    pub value: u64,
    pub plus: bool,
    pub minus: bool,
}

/// Reads `N` `/`-separated numbers (each optionally signed: `+`, `-` or `+-` before its
/// digits, at most 18 digits) in one pass over the bytes, the way halog does: the timers, the
/// counters and the queues are all this shape.
#[inline(always)]
pub(crate) fn slash_nums<const N: usize>(tok: &[u8]) -> Option<[Num; N]> {
    let mut out = [Num::default(); N];
    let mut bytes = tok.iter().copied();
    for (k, n) in out.iter_mut().enumerate() {
        let mut c = bytes.next()?;
        if c == b'+' {
            n.plus = true;
            c = bytes.next()?;
        }
        if c == b'-' {
            n.minus = true;
            c = bytes.next()?;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        let (mut value, mut digits) = (d as u64, 1);
        // The byte after the digits: `/` between numbers, nothing after the last.
        let end = loop {
            match bytes.next() {
                Some(c) if c.wrapping_sub(b'0') <= 9 => {
                    value = value.wrapping_mul(10).wrapping_add((c - b'0') as u64);
                    digits += 1;
                }
                other => break other,
            }
        };
        // 18 digits always fit; HAProxy never prints more.
        if digits > 18 {
            return None;
        }
        n.value = value;
        match end {
            Some(b'/') if k + 1 < N => {}
            None if k + 1 == N => {}
            _ => return None,
        }
    }
    Some(out)
}

/// `N` timers: `-1` is `None`; `+` (logasap) only on the last, returned apart.
#[inline(always)]
pub(crate) fn timers<const N: usize>(tok: &[u8]) -> Option<([Option<i32>; N], bool)> {
    let nums = slash_nums::<N>(tok)?;
    let mut out = [None; N];
    for (k, n) in nums.iter().enumerate() {
        if n.plus && k + 1 != N {
            return None;
        }
        out[k] = match (n.minus, n.value) {
            (true, 1) => None,
            (true, _) => return None,
            (false, v) => Some(i32::try_from(v).ok()?),
        };
    }
    Some((out, nums[N - 1].plus))
}

/// `ac/fc/bc/sc/rc` in one token.
#[inline(always)]
pub(crate) fn conn_counts_tok(tok: &[u8]) -> Option<ConnCounts> {
    let n = slash_nums::<5>(tok)?;
    if n.iter().any(|n| n.minus) || n[..4].iter().any(|n| n.plus) {
        return None;
    }
    let u = |k: usize| u32::try_from(n[k].value).ok();
    Some(ConnCounts {
        actconn: u(0)?,
        feconn: u(1)?,
        beconn: u(2)?,
        srv_conn: u(3)?,
        retries: u(4)?,
        redispatched: n[4].plus,
    })
}

/// The connection counters `ac/fc/bc/sc/rc` (`rc` may be `+N`: redispatched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ConnCounts {
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    pub redispatched: bool,
}

/// Reads five counters given as separate byte slices.
pub(crate) fn conn_counts(p: [&[u8]; 5]) -> Option<ConnCounts> {
    let (retries, redispatched) = plus_u64(p[4])?;
    Some(ConnCounts {
        actconn: dec_u32(p[0])?,
        feconn: dec_u32(p[1])?,
        beconn: dec_u32(p[2])?,
        srv_conn: dec_u32(p[3])?,
        retries: u32::try_from(retries).ok()?,
        redispatched,
    })
}

/// `sq/bq`.
#[inline(always)]
pub(crate) fn queues(tok: &[u8]) -> Option<(u32, u32)> {
    let [s, b] = slash_nums::<2>(tok)?;
    if s.plus || s.minus || b.plus || b.minus {
        return None;
    }
    Some((u32::try_from(s.value).ok()?, u32::try_from(b.value).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::time::micros_from_civil;

    fn ca(b: &[u8]) -> Result<ClientAddr<'_>, RejectReason> {
        client_addr(Text::new(b)?, b)
    }

    #[test]
    fn client_ipv6_splits_at_last_colon() {
        assert_eq!(
            ca(b"::1:44820"),
            Ok(ClientAddr {
                ip: "::1",
                port: Some(44820)
            })
        );
        assert_eq!(
            ca(b"2a00:1450:4010:c0b::71:56276"),
            Ok(ClientAddr {
                ip: "2a00:1450:4010:c0b::71",
                port: Some(56276)
            })
        );
    }

    #[test]
    fn client_unix_and_dash_and_anonymized() {
        assert_eq!(
            ca(b"unix:1"),
            Ok(ClientAddr {
                ip: "unix",
                port: Some(1)
            })
        );
        assert_eq!(
            ca(b"-:22222"),
            Ok(ClientAddr {
                ip: "-",
                port: Some(22222)
            })
        );
        assert_eq!(
            ca(b"X.X.X..211:64996"),
            Ok(ClientAddr {
                ip: "X.X.X..211",
                port: Some(64996)
            })
        );
        assert_eq!(ca(b"11174.211.190:10165").unwrap().ip, "11174.211.190");
        assert_eq!(
            ca(b"IPADDRESS:x"),
            Ok(ClientAddr {
                ip: "IPADDRESS",
                port: None
            })
        );
        assert_eq!(ca(b"1.2.3.4:99999").unwrap().port, None);
        assert_eq!(ca(b"IPADDRESS"), Err(RejectReason::BadClientAddr));
        assert_eq!(ca(b":80"), Err(RejectReason::BadClientAddr));
        assert_eq!(ca(b"\xff:80"), Err(RejectReason::InvalidUtf8));
    }

    #[test]
    fn accept_date_with_and_without_millis() {
        let (rest, t) = accept_date(b"[22/Nov/2026:01:22:06.958] x", &ParseOptions::default()).unwrap();
        assert_eq!(rest, b" x");
        assert_eq!(t, micros_from_civil(2026, 11, 22, 1, 22, 6, 958_000));
        let (_, t) = accept_date(b"[09/Aug/2004:20:26:09]", &ParseOptions::default()).unwrap();
        assert_eq!(t, micros_from_civil(2004, 8, 9, 20, 26, 9, 0));
    }

    #[test]
    fn fractions_of_every_length() {
        for (digits, micros) in [
            (&b"9"[..], Some(900_000)),
            (b"95", Some(950_000)),
            (b"958", Some(958_000)),
            (b"007", Some(7_000)),
            (b"9581", Some(958_100)),
            (b"958123", Some(958_123)),
            (b"", None),
            (b"9581234", None),
            (b"9a8", None),
            (b"/58", None),
            (b"95:", None),
        ] {
            assert_eq!(fraction(digits), micros, "{}", String::from_utf8_lossy(digits));
        }
    }

    #[test]
    fn accept_date_is_read_in_the_configured_zone() {
        let paris = ParseOptions {
            zone: Zone::fixed(3600),
            ..ParseOptions::default()
        };
        let (_, t) = accept_date(b"[22/Nov/2026:01:22:06.958]", &paris).unwrap();
        assert_eq!(t, micros_from_civil(2026, 11, 22, 0, 22, 6, 958_000));
    }

    #[test]
    fn the_date_cache_never_answers_for_other_bytes() {
        let zeros = [0u8; 20];
        assert_eq!(civil_datetime(&zeros), None);
        let a = civil_datetime(b"22/Nov/2026:01:22:06").unwrap();
        assert_eq!(civil_datetime(b"22/Nov/2026:01:22:06"), Some(a));
        assert_eq!(civil_datetime(b"22/Nov/2026:01:22:07"), Some(a + MICROS_PER_SEC));
        assert_eq!(civil_datetime(b"31/Feb/2026:01:22:06"), None);
        assert_eq!(civil_datetime(b"22/Nov/2026:01:22:0"), None);
    }

    #[test]
    fn bad_dates_fail() {
        for d in [
            &b"[]"[..],
            b"[22/Nov/2026:01:22:06.958",
            b"[31/Feb/2026:01:22:06]",
            b"[22/Nox/2026:01:22:06]",
            b"[22/Nov/2026:24:22:06]",
            b"[22/Nov/2026:01:22:06.]",
            b"[22/Nov/2026:01:22:06.1234567]",
            b"[22/Nov/2026:01:22:06 +0000]",
        ] {
            assert!(
                accept_date(d, &ParseOptions::default()).is_err(),
                "{}",
                String::from_utf8_lossy(d)
            );
        }
    }

    #[test]
    fn clf_date_uses_its_own_offset() {
        let (_, t) = clf_date(b"[22/Nov/2026:03:22:16 +0200]").unwrap();
        assert_eq!(t, micros_from_civil(2026, 11, 22, 1, 22, 16, 0));
        let (_, t) = clf_date(b"[22/Nov/2026:01:22:16 -0030]").unwrap();
        assert_eq!(t, micros_from_civil(2026, 11, 22, 1, 52, 16, 0));
        assert!(clf_date(b"[22/Nov/2026:01:22:16]").is_err());
    }

    #[test]
    fn find_agrees_with_a_byte_loop() {
        let hay = b"ab cd/ef  0123456789abcdef/ghij klmnopqrstuvwxyz\x80\xff /";
        for start in 0..hay.len() {
            for end in start..=hay.len() {
                let b = &hay[start..end];
                for c in [b' ', b'/', b'z', 0x80, 0xff, b'#'] {
                    assert_eq!(find(b, c), b.iter().position(|&x| x == c), "{start}..{end} {c}");
                    assert_eq!(find_near(b, c), b.iter().position(|&x| x == c));
                }
            }
        }
    }

    #[test]
    fn slash_nums_signs_and_lengths() {
        let v = triples::<3>;
        assert_eq!(
            v(b"+-1/-2/+3"),
            Some([(1, true, true), (2, false, true), (3, true, false)])
        );
        for bad in [
            &b"-+1/2/3"[..],
            b"--1/2/3",
            b"++1/2/3",
            b"1/2",
            b"1/2/3/4",
            b"1//3",
            b"1/2/",
            b"/1/2/3",
            b"1/2/3 ",
            b"1+/2/3",
            b"+/2/3",
            b"1/2/3x",
        ] {
            assert_eq!(v(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(slash_nums::<1>(&[b'9'; 18]).is_some());
        assert!(slash_nums::<1>(&[b'9'; 19]).is_none());
    }

    /// [`slash_nums`] as (value, plus, minus) triples.
    fn triples<const N: usize>(tok: &[u8]) -> Option<[(u64, bool, bool); N]> {
        slash_nums::<N>(tok).map(|n| n.map(|n| (n.value, n.plus, n.minus)))
    }

    /// The one-pass reader against the rule written out: exactly N parts between slashes, each
    /// an optional `+`, an optional `-`, then 1 to 18 digits.
    fn slash_nums_by_rule<const N: usize>(tok: &[u8]) -> Option<[(u64, bool, bool); N]> {
        let parts: Vec<&[u8]> = tok.split(|&c| c == b'/').collect();
        if parts.len() != N {
            return None;
        }
        let mut out = [(0, false, false); N];
        for (slot, mut p) in out.iter_mut().zip(parts) {
            let plus = p.first() == Some(&b'+');
            if plus {
                p = &p[1..];
            }
            let minus = p.first() == Some(&b'-');
            if minus {
                p = &p[1..];
            }
            if p.is_empty() || p.len() > 18 || !p.iter().all(u8::is_ascii_digit) {
                return None;
            }
            *slot = (std::str::from_utf8(p).ok()?.parse().ok()?, plus, minus);
        }
        Some(out)
    }

    proptest::proptest! {
        #[test]
        fn slash_nums_follow_the_rule(tok in "[0-9+/ -]{0,30}|([+]?-?[0-9]{1,20}/){0,5}[+]?-?[0-9]{1,20}") {
            proptest::prop_assert_eq!(triples::<3>(tok.as_bytes()), slash_nums_by_rule::<3>(tok.as_bytes()));
            proptest::prop_assert_eq!(triples::<5>(tok.as_bytes()), slash_nums_by_rule::<5>(tok.as_bytes()));
        }
    }

    #[test]
    fn timers_and_counters() {
        assert_eq!(timer(b"-1"), Some((None, false)));
        assert_eq!(timer(b"+30"), Some((Some(30), true)));
        assert_eq!(timer(b"5007"), Some((Some(5007), false)));
        assert_eq!(timer(b"-2"), None);
        assert_eq!(timer(b"99999999999"), None);
        assert_eq!(timer(b""), None);
        assert_eq!(status(b"-1"), Some(None));
        assert_eq!(status(b"503"), Some(Some(503)));
        assert_eq!(status(b"70000"), None);
        assert_eq!(plus_u64(b"+243"), Some((243, true)));
        assert_eq!(dec_u64(b"18446744073709551615"), None, "20 digits are refused");
        assert_eq!(dec_u64(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        let c = conn_counts([b"1", b"2", b"3", b"4", b"+1"]).unwrap();
        assert_eq!((c.retries, c.redispatched), (1, true));
        assert_eq!(queues(b"0/67"), Some((0, 67)));
        assert_eq!(queues(b"0/6/7"), None);
        assert_eq!(queues(b"0/"), None);
        assert_eq!(queues(b"/0"), None);
        assert_eq!(queues(b"-0/0"), None);
        assert_eq!(
            timers::<5>(b"0/-1/-1/-1/+30"),
            Some(([Some(0), None, None, None, Some(30)], true))
        );
        assert_eq!(
            timers::<5>(b"0/-1/-1/-1/+-1"),
            Some(([Some(0), None, None, None, None], true))
        );
        assert_eq!(timers::<5>(b"0/+1/-1/-1/30"), None);
        assert_eq!(timers::<5>(b"0/-2/-1/-1/30"), None);
        assert_eq!(timers::<5>(b"0/--1/-1/-1/30"), None);
        assert_eq!(timers::<5>(b"0/1-/-1/-1/30"), None);
        assert_eq!(timers::<5>(b"0/1/1/1"), None);
        assert_eq!(timers::<3>(b"0/1/1/1"), None);
        assert_eq!(timers::<3>(b"0/0/99999999999"), None);
        assert_eq!(
            conn_counts_tok(b"1/2/3/4/+5").map(|c| (c.retries, c.redispatched)),
            Some((5, true))
        );
        assert_eq!(conn_counts_tok(b"1/2/3/+4/5"), None);
    }
}
