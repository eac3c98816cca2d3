//! The zone of zone-less dates (HAProxy's accept date, RFC 3164 headers): UTC, a fixed offset,
//! or an IANA zone with its daylight-saving rules (through `jiff`, which reads the system's
//! time-zone database and falls back to the copy built into the binary).
//!
//! A wall-clock time in an IANA zone has one reading, none (the hour skipped in spring) or two
//! (the hour repeated in autumn). [`Zone::to_utc_near`] reads a skipped time with the offset
//! before the change, and of two readings takes the one closest to a reference instant the
//! caller knows (the syslog header's own instant, or the previous line's; see
//! [`crate::ParseOptions::near`]), else the first. The zone database is asked once per local
//! hour and thread: the answer for the hour is kept, and the lines of that hour are converted
//! with a compare and a subtraction.

use std::cell::Cell;
use std::sync::Mutex;

use weir_model::time::civil_from_micros;
use weir_model::Micros;

const SEC: i64 = 1_000_000;
const HOUR: i64 = 3600 * SEC;
/// A reference instant further than this from both readings of a repeated hour is not used:
/// it belongs to another day (an RFC 3164 header given the wrong year, say).
const NEAR_LIMIT: i64 = 24 * HOUR;

/// The zone HAProxy (or the syslog daemon) wrote zone-less dates in. `Copy`: an IANA zone is a
/// reference to its rules, loaded once per process and name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset east of UTC, in seconds (`+02:00` is 7200); UTC is 0.
    Fixed(i32),
    /// An IANA zone (`Europe/Berlin`) with its daylight-saving rules.
    Named(&'static NamedZone),
}

/// An IANA zone's name and rules.
pub struct NamedZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl PartialEq for NamedZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for NamedZone {}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(s) => write!(f, "Zone::Fixed({s})"),
            Zone::Named(z) => write!(f, "Zone::Named({})", z.name),
        }
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Fixed(0);

    /// A fixed offset of `offset_secs` seconds east of UTC.
    pub const fn fixed(offset_secs: i32) -> Zone {
        Zone::Fixed(offset_secs)
    }

    /// Parses `UTC`, `Z`, `GMT`, a fixed offset `+HH:MM`, `-HHMM`, `+HH`, or an IANA zone name
    /// (`Europe/Berlin`).
    pub fn parse(s: &str) -> Option<Zone> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s == "Z" || s.eq_ignore_ascii_case("gmt") {
            return Some(Zone::UTC);
        }
        match s.as_bytes().first()? {
            b'+' | b'-' => parse_offset(s).map(Zone::Fixed),
            _ => named(s).map(Zone::Named),
        }
    }

    /// The zone's name as the user gave it (`UTC`, `+02:00`, `Europe/Berlin`).
    pub fn name(&self) -> String {
        match self {
            Zone::Fixed(0) => "UTC".to_string(),
            Zone::Fixed(s) => {
                let a = s.unsigned_abs();
                let sign = if *s < 0 { '-' } else { '+' };
                format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
            }
            Zone::Named(z) => z.name.clone(),
        }
    }

    /// Whether the zone changes its offset (an IANA zone): only then can a wall-clock time
    /// have two readings, and only then is the previous line's instant worth keeping.
    #[inline]
    pub fn has_rules(self) -> bool {
        matches!(self, Zone::Named(_))
    }

    /// Converts a wall-clock time in this zone (computed as if it were UTC) to UTC; a repeated
    /// hour gets its first reading. See [`Zone::to_utc_near`].
    #[inline]
    pub fn to_utc(self, local_as_utc: Micros) -> Micros {
        self.to_utc_near(local_as_utc, None)
    }

    /// Converts a wall-clock time in this zone to UTC. A time the zone skipped (the spring
    /// change) is read with the offset before the change. A time the zone repeated (the
    /// autumn change) has two readings: the one closer to `near` is taken, when `near` is
    /// within a day of them, else the earlier (a tie goes to the earlier too).
    #[inline]
    pub fn to_utc_near(self, local_as_utc: Micros, near: Option<Micros>) -> Micros {
        match self {
            Zone::Fixed(s) => local_as_utc - s as i64 * SEC,
            Zone::Named(z) => z.to_utc(local_as_utc, near),
        }
    }

    /// Whether the zone changes its offset within `within` of the instant `at`.
    pub fn changes_near(self, at: Micros, within: Micros) -> bool {
        let Zone::Named(z) = self else { return false };
        let Ok(from) = jiff::Timestamp::from_microsecond(at.saturating_sub(within)) else {
            return false;
        };
        z.tz.following(from)
            .next()
            .is_some_and(|t| t.timestamp().as_microsecond() <= at.saturating_add(within))
    }
}

/// `+HH:MM`, `-HHMM`, `+HH` as seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// The zone named `name`, loaded once per process (a `Zone` must be `Copy`, so it points at
/// rules that live as long as the process; a config reload asks for the same few names again).
fn named(name: &str) -> Option<&'static NamedZone> {
    static LOADED: Mutex<Vec<&'static NamedZone>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(z) = loaded.iter().find(|z| z.name == name) {
        return Some(z);
    }
    let tz = jiff::tz::db().get(name).ok()?;
    let zone: &'static NamedZone = Box::leak(Box::new(NamedZone {
        name: name.to_string(),
        tz,
    }));
    loaded.push(zone);
    Some(zone)
}

/// How the wall-clock times of one local hour read in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// One offset, in micros.
    One(i64),
    /// Skipped by a change to a larger offset: read with the offset before it.
    Gap { before: i64 },
    /// Repeated by a change to a smaller offset: `before` gives the first reading.
    Fold { before: i64, after: i64 },
    /// The hour holds a change (at a time that is not a whole hour): ask per time.
    Mixed,
}

/// The last local hour of one offset converted on this thread: its zone (as an address), the
/// hour, and the offset. The common case, read in two compares and a subtraction.
type PlainHour = (usize, i64, i64);

/// The last local hour converted on this thread that holds a change of offset, and how it
/// reads: the lines of a skipped or repeated hour do not ask the database per line either.
type OddHour = (usize, i64, Reading);

impl NamedZone {
    #[inline]
    fn to_utc(&self, local: Micros, near: Option<Micros>) -> Micros {
        thread_local! {
            static PLAIN: Cell<PlainHour> = const { Cell::new((0, i64::MIN, 0)) };
            static ODD: Cell<Option<OddHour>> = const { Cell::new(None) };
        }
        let hour = local.div_euclid(HOUR);
        let me = self as *const NamedZone as usize;
        let (zone, known, off) = PLAIN.get();
        if zone == me && known == hour {
            return local - off;
        }
        let reading = match ODD.get() {
            Some((zone, known, r)) if zone == me && known == hour => r,
            _ => {
                let r = self.hour_reading(hour);
                match r {
                    Reading::One(off) => PLAIN.set((me, hour, off)),
                    r => ODD.set(Some((me, hour, r))),
                }
                r
            }
        };
        let reading = match reading {
            Reading::Mixed => self.reading_at(local),
            r => r,
        };
        match reading {
            Reading::One(off) | Reading::Gap { before: off } => local - off,
            Reading::Fold { before, after } => {
                let (first, second) = (local - before, local - after);
                match near {
                    Some(n) if (n - first).abs() < NEAR_LIMIT && (n - second).abs() < (n - first).abs() => {
                        second
                    }
                    _ => first,
                }
            }
            // `reading_at` never answers `Mixed`.
            Reading::Mixed => local,
        }
    }

    /// How local hour `hour` reads: its first and last second read alike (a change happens
    /// on a whole hour in every zone in use, nearly), else [`Reading::Mixed`].
    #[cold]
    fn hour_reading(&self, hour: i64) -> Reading {
        let (start, end) = (
            self.reading_at(hour * HOUR),
            self.reading_at(hour * HOUR + HOUR - SEC),
        );
        if start == end {
            start
        } else {
            Reading::Mixed
        }
    }

    /// How the wall-clock time `local` (to the second) reads, from the zone database.
    fn reading_at(&self, local: Micros) -> Reading {
        use jiff::tz::AmbiguousOffset;
        let (y, mo, d, h, mi, s, _) = civil_from_micros(local);
        let dt = (|| {
            jiff::civil::DateTime::new(
                i16::try_from(y).ok()?,
                mo as i8,
                d as i8,
                h as i8,
                mi as i8,
                s as i8,
                0,
            )
            .ok()
        })();
        // Outside jiff's years (±9999): the offset of today's rules.
        let Some(dt) = dt else {
            return Reading::One(self.tz.to_offset(jiff::Timestamp::UNIX_EPOCH).seconds() as i64 * SEC);
        };
        let us = |o: jiff::tz::Offset| o.seconds() as i64 * SEC;
        match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => Reading::One(us(offset)),
            AmbiguousOffset::Gap { before, .. } => Reading::Gap { before: us(before) },
            AmbiguousOffset::Fold { before, after } => Reading::Fold {
                before: us(before),
                after: us(after),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_model::time::micros_from_civil;

    fn berlin() -> Zone {
        Zone::parse("Europe/Berlin").unwrap()
    }

    #[test]
    fn fixed_zones() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::parse("+02:00"), Some(Zone::fixed(7200)));
        assert_eq!(Zone::parse("-0130"), Some(Zone::fixed(-5400)));
        assert_eq!(Zone::parse("+05"), Some(Zone::fixed(18000)));
        assert_eq!(Zone::parse("+25:00"), None);
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        assert_eq!(Zone::parse("+05:30").unwrap().name(), "+05:30");
        assert_eq!(Zone::parse("-0130").unwrap().name(), "-01:30");
    }

    #[test]
    fn named_zones_are_loaded_once() {
        let (a, b) = (berlin(), berlin());
        assert_eq!(a, b);
        let (Zone::Named(x), Zone::Named(y)) = (a, b) else {
            panic!("{a:?}")
        };
        assert!(std::ptr::eq(x, y));
        assert_eq!(a.name(), "Europe/Berlin");
        assert_ne!(a, Zone::parse("Europe/Paris").unwrap());
    }

    /// Europe/Berlin in 2026: +01:00 until 29 March 01:00 UTC, +02:00 until 25 October
    /// 01:00 UTC, then +01:00 again.
    #[test]
    fn berlin_through_both_changes() {
        let z = berlin();
        let l = |mo, d, h, mi| micros_from_civil(2026, mo, d, h, mi, 0, 0);
        let u = l;
        // Winter and summer.
        assert_eq!(z.to_utc(l(1, 10, 12, 0)), u(1, 10, 11, 0));
        assert_eq!(z.to_utc(l(7, 10, 12, 0)), u(7, 10, 10, 0));
        // Spring: 01:59 is +01:00, 02:00-02:59 do not exist (read with +01:00), 03:00 is +02:00.
        assert_eq!(z.to_utc(l(3, 29, 1, 59)), u(3, 29, 0, 59));
        assert_eq!(z.to_utc(l(3, 29, 2, 30)), u(3, 29, 1, 30));
        assert_eq!(z.to_utc(l(3, 29, 3, 0)), u(3, 29, 1, 0));
        // Autumn: 02:00-02:59 happen twice; first reading unless told otherwise.
        assert_eq!(z.to_utc(l(10, 25, 1, 59)), u(10, 24, 23, 59));
        assert_eq!(z.to_utc(l(10, 25, 2, 30)), u(10, 25, 0, 30));
        assert_eq!(z.to_utc(l(10, 25, 3, 0)), u(10, 25, 2, 0));
        let second = Some(u(10, 25, 1, 50));
        assert_eq!(z.to_utc_near(l(10, 25, 2, 30), second), u(10, 25, 1, 30));
        assert_eq!(z.to_utc_near(l(10, 25, 2, 5), second), u(10, 25, 1, 5));
        let first = Some(u(10, 25, 0, 20));
        assert_eq!(z.to_utc_near(l(10, 25, 2, 30), first), u(10, 25, 0, 30));
        // A reference from another day is not used.
        let far = Some(u(10, 26, 1, 30));
        assert_eq!(z.to_utc_near(l(10, 25, 2, 30), far), u(10, 25, 0, 30));
        // The reference never moves an unambiguous time.
        assert_eq!(z.to_utc_near(l(10, 25, 3, 30), first), u(10, 25, 2, 30));
    }

    /// A change at a half hour (Lord Howe moves by 30 minutes at 02:00) is read per time
    /// within its hour, every minute agreeing with the database.
    #[test]
    fn change_inside_an_hour() {
        let z = Zone::parse("Australia/Lord_Howe").unwrap();
        let Zone::Named(nz) = z else { unreachable!() };
        // 2026-10-04 02:00 local: +10:30 -> +11:00, 02:00-02:29 skipped.
        for mi in 0..60 {
            for h in [1, 2, 3] {
                let local = micros_from_civil(2026, 10, 4, h, mi, 0, 0);
                let want = match nz.reading_at(local) {
                    Reading::One(o) | Reading::Gap { before: o } => local - o,
                    Reading::Fold { before, .. } => local - before,
                    Reading::Mixed => unreachable!(),
                };
                assert_eq!(z.to_utc(local), want, "{h}:{mi}");
            }
        }
        assert_eq!(
            z.to_utc(micros_from_civil(2026, 10, 4, 2, 15, 0, 0)),
            micros_from_civil(2026, 10, 3, 15, 45, 0, 0)
        );
    }

    #[test]
    fn changes_near() {
        let z = berlin();
        let change = micros_from_civil(2026, 10, 25, 1, 0, 0, 0);
        assert!(z.changes_near(change - HOUR, 2 * HOUR));
        assert!(z.changes_near(change + HOUR, 2 * HOUR));
        assert!(!z.changes_near(change + 3 * HOUR, 2 * HOUR));
        assert!(!Zone::UTC.changes_near(change, 2 * HOUR));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        for t in [
            i64::MIN / 2,
            -1,
            0,
            micros_from_civil(9999, 12, 31, 23, 59, 59, 0),
            i64::MAX / 2,
        ] {
            let _ = berlin().to_utc_near(t, Some(t));
        }
    }
}
