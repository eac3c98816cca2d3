//! Calendar arithmetic without a time-zone database: civil date <-> days since 1970-01-01
//! (Howard Hinnant's algorithms), month names, and formatting. All instants are [`Micros`]:
//! microseconds since the Unix epoch, UTC.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (`m` in 1..=12).
pub const fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub const fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// Microseconds of a civil date and time, UTC.
pub const fn micros_from_civil(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Micros {
    let days = days_from_civil(y, mo, d);
    (days * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64) * MICROS_PER_SEC + us as i64
}

/// The wall clock now.
pub fn now_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Month number (1..=12) of an English three-letter abbreviation such as `b"Nov"`.
#[inline]
pub fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    if m.len() != 3 {
        return None;
    }
    let k = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    Some(match &k {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Splits an instant into `(year, month, day, hour, minute, second, micros)`, UTC.
pub fn civil_from_micros(t: Micros) -> (i32, u32, u32, u32, u32, u32, u32) {
    let secs = t.div_euclid(MICROS_PER_SEC);
    let us = t.rem_euclid(MICROS_PER_SEC) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, us)
}

/// RFC 3339 rendering with microseconds, e.g. `2026-11-22T01:22:06.958000Z`.
pub fn format_rfc3339(t: Micros) -> String {
    let (y, mo, d, h, mi, s, us) = civil_from_micros(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_over_four_centuries() {
        for z in (-146_097 * 2..146_097 * 2).step_by(13) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            micros_from_civil(2026, 11, 22, 1, 22, 6, 958_000),
            1_795_310_526_958_000
        );
        assert_eq!(
            format_rfc3339(1_795_310_526_958_000),
            "2026-11-22T01:22:06.958000Z"
        );
        assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
    }

    #[test]
    fn month_names() {
        assert_eq!(month_from_abbrev(b"Nov"), Some(11));
        assert_eq!(month_from_abbrev(b"JAN"), Some(1));
        assert_eq!(month_from_abbrev(b"Nox"), None);
        assert_eq!(month_from_abbrev(b"No"), None);
    }
}
