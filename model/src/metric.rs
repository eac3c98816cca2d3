//! Metrics written as log lines, the l2met way: `measure#db.query=12ms`, `count#signup=1`,
//! `sample#queue.depth=42`, with an optional `source=` naming what measured it. One app line
//! may carry several; each becomes a row of the `metrics` table ([`Metric`]) beside the line's
//! own row in `app`.
//!
//! A row keeps the value and unit as written. Aggregates (the live `/metrics` summaries and
//! `weir query --metric`) first bring a value to its unit's base with [`Metric::base`]: time
//! units to seconds, byte units to bytes, so that `12ms` and `0.012s` of one name add up; any
//! other unit (`%`, `req`, none) is kept as it is and is part of what a series is.

/// The three kinds of l2met metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// `measure#`: a distribution (latencies, sizes); aggregated into histograms.
    Measure,
    /// `count#`: an amount to add up; aggregated into sums.
    Count,
    /// `sample#`: a level (queue depth, memory); the last value wins.
    Sample,
}

impl MetricKind {
    /// Every kind, in declaration order.
    pub const ALL: [MetricKind; 3] = [MetricKind::Measure, MetricKind::Count, MetricKind::Sample];

    /// The name in the `kind` column and in the key prefix (`measure`, `count`, `sample`).
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Measure => "measure",
            MetricKind::Count => "count",
            MetricKind::Sample => "sample",
        }
    }

    /// The kind [`MetricKind::name`] spells `name`.
    pub fn from_name(name: &str) -> Option<MetricKind> {
        MetricKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One metric of an app line, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'a> {
    /// measure, count or sample.
    pub kind: MetricKind,
    /// The name after `#` (`db.query`).
    pub name: &'a str,
    /// The number as written, finite.
    pub value: f64,
    /// The unit written after the number (`ms`, `bytes`, `%`), empty when none.
    pub unit: &'a str,
    /// The line's `source=` value, when it has one.
    pub source: Option<&'a str>,
}

/// The unit a value is aggregated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaseUnit<'a> {
    /// Time, in seconds (written `ns`, `us`, `µs`, `ms`, `s`, `sec`, `min`, `h`).
    Seconds,
    /// Sizes, in bytes (written `b`, `B`, `byte(s)`, `kB`/`KB`/`kb`, `KiB`, `MB`, `MiB`, `GB`,
    /// `GiB`).
    Bytes,
    /// Any other unit, as written (possibly empty).
    Other(&'a str),
}

impl BaseUnit<'_> {
    /// The suffix of a Prometheus metric name in this unit (`seconds`, `bytes`), when it has
    /// a base unit.
    pub fn suffix(&self) -> Option<&'static str> {
        match self {
            BaseUnit::Seconds => Some("seconds"),
            BaseUnit::Bytes => Some("bytes"),
            BaseUnit::Other(_) => None,
        }
    }
}

/// `(base unit, factor)` of a written unit: value × factor is the value in the base unit.
pub fn base_unit(unit: &str) -> (BaseUnit<'_>, f64) {
    let time = match unit {
        "ns" => Some(1e-9),
        "us" | "µs" | "μs" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1.0),
        "min" | "mins" | "minute" | "minutes" => Some(60.0),
        "h" | "hr" | "hour" | "hours" => Some(3600.0),
        _ => None,
    };
    if let Some(f) = time {
        return (BaseUnit::Seconds, f);
    }
    let bytes = match unit {
        "b" | "B" | "byte" | "bytes" => Some(1.0),
        "kb" | "kB" | "KB" => Some(1e3),
        "KiB" | "kib" => Some(1024.0),
        "mb" | "MB" => Some(1e6),
        "MiB" | "mib" => Some(1024.0 * 1024.0),
        "gb" | "GB" => Some(1e9),
        "GiB" | "gib" => Some(1024.0 * 1024.0 * 1024.0),
        _ => None,
    };
    match bytes {
        Some(f) => (BaseUnit::Bytes, f),
        None => (BaseUnit::Other(unit), 1.0),
    }
}

impl<'a> Metric<'a> {
    /// The value in its unit's base, and that base.
    pub fn base(&self) -> (f64, BaseUnit<'a>) {
        let (unit, factor) = base_unit(self.unit);
        (self.value * factor, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_byte_units_reach_their_base_and_others_stay() {
        let m = |value, unit| Metric {
            kind: MetricKind::Measure,
            name: "x",
            value,
            unit,
            source: None,
        };
        assert_eq!(m(12.0, "ms").base(), (0.012, BaseUnit::Seconds));
        assert_eq!(m(2.0, "min").base(), (120.0, BaseUnit::Seconds));
        assert_eq!(m(3.0, "KiB").base(), (3072.0, BaseUnit::Bytes));
        assert_eq!(m(45.0, "%").base(), (45.0, BaseUnit::Other("%")));
        assert_eq!(m(7.0, "").base(), (7.0, BaseUnit::Other("")));
        for k in MetricKind::ALL {
            assert_eq!(MetricKind::from_name(k.name()), Some(k));
        }
    }
}
