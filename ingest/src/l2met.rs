//! The l2met metrics of an app message: `measure#NAME=VALUE[UNIT]`, `count#NAME=VALUE[UNIT]`
//! and `sample#NAME=VALUE[UNIT]` pairs, with the line's `source=` (if any) applied to each.
//!
//! The grammar is l2met's, on top of the [`crate::kv`] tokenizer: a value is a decimal number
//! (sign, digits, fraction, exponent), followed at once by its unit (`12ms`, `1.5MB`, `45%`,
//! `3`). A pair whose value does not start with a finite number, or whose name is empty, is no
//! metric: it stays a plain field of the line, and [`for_each_metric`] reports it to the caller
//! so that it is counted. Lines without `#` cost one `memchr`-style scan.

use weir_model::{Metric, MetricKind};

use crate::kv::kv_pairs;

/// What [`for_each_metric`] found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricScan {
    /// Metrics handed to the callback.
    pub metrics: u32,
    /// `measure#`/`count#`/`sample#` pairs that were not metrics (no number, empty name).
    pub invalid: u32,
}

/// Calls `f` with each l2met metric of `message`, in order; returns how many were found and
/// how many metric-looking pairs were not valid.
pub fn for_each_metric<'a>(message: &'a str, mut f: impl FnMut(Metric<'a>)) -> MetricScan {
    let mut scan = MetricScan::default();
    if !message.contains('#') {
        return scan;
    }
    let mut source = None;
    let mut any = false;
    for (k, v) in kv_pairs(message) {
        if k == "source" && source.is_none() {
            source = Some(v);
        } else if metric_key(k).is_some() {
            any = true;
        }
    }
    if !any {
        return scan;
    }
    for (k, v) in kv_pairs(message) {
        let Some((kind, name)) = metric_key(k) else {
            continue;
        };
        match parse_value(v) {
            Some((value, unit)) if !name.is_empty() => {
                scan.metrics += 1;
                f(Metric {
                    kind,
                    name,
                    value,
                    unit,
                    source,
                });
            }
            _ => scan.invalid += 1,
        }
    }
    scan
}

/// The kind and name of a `kind#name` key.
fn metric_key(key: &str) -> Option<(MetricKind, &str)> {
    let (kind, name) = key.split_once('#')?;
    Some((MetricKind::from_name(kind)?, name))
}

/// Splits `12.5ms` into `(12.5, "ms")`; `None` when it does not start with a finite number.
pub fn parse_value(v: &str) -> Option<(f64, &str)> {
    let b = v.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - digits_start;
    if i < b.len() && b[i] == b'.' {
        let frac_start = i + 1;
        let mut j = frac_start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        digits += j - frac_start;
        i = j;
    }
    if digits == 0 {
        return None;
    }
    // An exponent only when digits follow it: `5e3` is 5000, `5em` is 5 in unit `em`.
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let value: f64 = v[..i].parse().ok()?;
    value.is_finite().then_some((value, &v[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A metric as a tuple: kind, name, value, unit, source.
    type Found<'a> = (MetricKind, &'a str, f64, &'a str, Option<&'a str>);

    fn metrics(message: &str) -> (Vec<Found<'_>>, MetricScan) {
        let mut out = Vec::new();
        let scan = for_each_metric(message, |m| out.push((m.kind, m.name, m.value, m.unit, m.source)));
        (out, scan)
    }

    #[test]
    fn measures_counts_and_samples_with_units_and_source() {
        let (m, scan) = metrics(
            "at=info source=db-1 measure#db.query=12.5ms count#db.rows=3 sample#pool.free=-2 measure#size=1.5MB",
        );
        use MetricKind::*;
        assert_eq!(
            m,
            vec![
                (Measure, "db.query", 12.5, "ms", Some("db-1")),
                (Count, "db.rows", 3.0, "", Some("db-1")),
                (Sample, "pool.free", -2.0, "", Some("db-1")),
                (Measure, "size", 1.5, "MB", Some("db-1")),
            ]
        );
        assert_eq!(
            scan,
            MetricScan {
                metrics: 4,
                invalid: 0
            }
        );
    }

    #[test]
    fn source_after_the_metrics_still_applies_and_no_source_is_none() {
        assert_eq!(metrics("count#hits=1 source=web").0[0].4, Some("web"));
        assert_eq!(metrics("count#hits=1").0[0].4, None);
    }

    #[test]
    fn non_numbers_empty_names_and_other_keys_are_not_metrics() {
        let (m, scan) = metrics("measure#a=fast measure#=3 gauge#x=1 count#b=NaN sample#c=. measure#d=inf");
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(
            scan,
            MetricScan {
                metrics: 0,
                invalid: 5
            }
        );
        assert_eq!(metrics("plain text, no pairs #1").1, MetricScan::default());
    }

    #[test]
    fn exponents_only_when_digits_follow() {
        assert_eq!(parse_value("5e3"), Some((5000.0, "")));
        assert_eq!(parse_value("5em"), Some((5.0, "em")));
        assert_eq!(parse_value(".5s"), Some((0.5, "s")));
        assert_eq!(parse_value("-"), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_every_metric_is_finite(s in ".{0,80}") {
            for_each_metric(&s, |m| assert!(m.value.is_finite()));
        }

        #[test]
        fn a_written_measure_reads_back(v in -1.0e9f64..1.0e9, unit in "(ms|s|us|bytes|MB|%|)") {
            let line = format!("measure#x.y={v}{unit}");
            let (m, _) = metrics(&line);
            prop_assert_eq!(m.len(), 1);
            prop_assert_eq!(m[0].2, v);
            prop_assert_eq!(m[0].3, unit.as_str());
        }
    }
}
