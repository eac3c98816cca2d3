//! `weir query --metric NAME`: an l2met metric (`measure#NAME=`, `count#NAME=`, `sample#NAME=`)
//! over any range, grouped by app, source, host or proc, from the `metrics` table of one or
//! more spools.
//!
//! Rows are read from the hour partitions that can hold the range, brought to a display unit
//! (time in milliseconds, sizes in bytes, other units as written: `12ms` and `0.012s` are one
//! metric), and aggregated per group, period and kind: a measure into an HDR histogram (its
//! quantiles exact to the precision), a count into a sum, a sample into its newest value; each
//! with its row count, sum, mean, min and max.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch, StringArray};
use weir_aggregate::l2met::{display_unit, MetricStats};
use weir_model::{MetricKind, Micros};

use crate::output::{Cell, Table};
use crate::UsageError;

/// What a metric can be grouped and filtered by: columns of the `metrics` table.
pub const DIMS: [&str; 4] = ["app", "source", "host", "proc"];

/// A metric query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// The metric's name, as written after `#`.
    pub name: String,
    /// Rows at or after this time.
    pub since: Option<Micros>,
    /// Rows before this time.
    pub until: Option<Micros>,
    /// Group by these columns (of [`DIMS`]).
    pub by: Vec<String>,
    /// Period length, seconds; `None` for one row per group.
    pub every: Option<u32>,
    /// Keep only rows whose columns have these values.
    pub filters: Vec<(String, String)>,
    /// Significant figures of the measures' histograms.
    pub sigfig: u8,
}

/// A column of [`DIMS`] by its name.
pub fn dim(s: &str) -> Result<String, UsageError> {
    let s = s.trim();
    if DIMS.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(UsageError(format!(
            "{s:?}: a metric is grouped and filtered by {}",
            DIMS.join(", ")
        )))
    }
}

/// One output row.
#[derive(Debug, Clone)]
pub struct MetricRow {
    /// The values of the `--by` columns.
    pub group: Vec<String>,
    /// The period's start (the range's first row's time without `--every`).
    pub period_start: Micros,
    /// measure, count or sample.
    pub kind: MetricKind,
    /// The display unit.
    pub unit: String,
    /// What its rows add up to.
    pub stats: MetricStats,
}

type Key = (Vec<String>, Micros, MetricKind, String);

/// Runs `spec` over the `metrics` tables of `spools`.
pub fn execute(spools: &[PathBuf], spec: &MetricSpec) -> anyhow::Result<Vec<MetricRow>> {
    let mut groups: BTreeMap<Key, MetricStats> = BTreeMap::new();
    let mut first_ts = Micros::MAX;
    for spool in spools {
        let parts = weir_store::windows::table_partitions(spool, "metrics", spec.since, spec.until)
            .with_context(|| format!("reading the metrics of {}", spool.display()))?;
        for (_, files) in parts {
            for f in files {
                let batches =
                    weir_store::read_file(&f).with_context(|| format!("reading {}", f.display()))?;
                for b in &batches {
                    add_batch(spec, b, &mut groups, &mut first_ts)
                        .with_context(|| format!("reading {}", f.display()))?;
                }
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|((group, period_start, kind, unit), stats)| MetricRow {
            group,
            period_start: if spec.every.is_some() {
                period_start
            } else {
                first_ts
            },
            kind,
            unit,
            stats,
        })
        .collect())
}

fn strings<'b>(b: &'b RecordBatch, name: &str) -> anyhow::Result<&'b StringArray> {
    let i = b
        .schema()
        .index_of(name)
        .with_context(|| format!("the metrics table has no {name} column"))?;
    b.column(i)
        .as_string_opt::<i32>()
        .with_context(|| format!("the metrics table's {name} column is not text"))
}

/// Row `i` of `a`, empty when null.
fn text(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) {
        ""
    } else {
        a.value(i)
    }
}

fn add_batch(
    spec: &MetricSpec,
    b: &RecordBatch,
    groups: &mut BTreeMap<Key, MetricStats>,
    first_ts: &mut Micros,
) -> anyhow::Result<()> {
    let schema = b.schema();
    let ts = b
        .column(schema.index_of("ts")?)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .context("the metrics table's ts column is not a timestamp")?;
    let value = b
        .column(schema.index_of("value")?)
        .as_primitive_opt::<Float64Type>()
        .context("the metrics table's value column is not a double")?;
    let (names, kinds, units) = (strings(b, "name")?, strings(b, "kind")?, strings(b, "unit")?);
    let by: Vec<&StringArray> = spec.by.iter().map(|d| strings(b, d)).collect::<Result<_, _>>()?;
    let filters: Vec<(&StringArray, &str)> = spec
        .filters
        .iter()
        .map(|(d, v)| Ok((strings(b, d)?, v.as_str())))
        .collect::<anyhow::Result<_>>()?;
    for i in 0..b.num_rows() {
        if names.is_null(i) || names.value(i) != spec.name {
            continue;
        }
        let t = ts.value(i);
        if spec.since.is_some_and(|s| t < s) || spec.until.is_some_and(|u| t >= u) {
            continue;
        }
        if filters.iter().any(|(a, v)| text(a, i) != *v) {
            continue;
        }
        let Some(kind) = MetricKind::from_name(text(kinds, i)) else {
            continue;
        };
        let (unit, factor) = display_unit(text(units, i));
        let period = match spec.every {
            Some(e) => {
                let e = Micros::from(e) * 1_000_000;
                t - t.rem_euclid(e)
            }
            None => 0,
        };
        *first_ts = (*first_ts).min(t);
        let key = (
            by.iter().map(|a| text(a, i).to_owned()).collect(),
            period,
            kind,
            unit.into_owned(),
        );
        let stats = match groups.get_mut(&key) {
            Some(s) => s,
            None => {
                let s = MetricStats::new(kind, &key.3, spec.sigfig)?;
                groups.entry(key).or_insert(s)
            }
        };
        stats.add(t, value.value(i) * factor);
    }
    Ok(())
}

/// The result as a table: the `--by` columns, `window_start`, `kind`, `unit`, `count`, `sum`,
/// `mean`, `min`, `p50`, `p90`, `p95`, `p99`, `max` (quantiles of measures only) and `last`.
pub fn table(spec: &MetricSpec, rows: &[MetricRow]) -> Table {
    let mut header: Vec<String> = spec.by.clone();
    header.extend(
        [
            "window_start",
            "kind",
            "unit",
            "count",
            "sum",
            "mean",
            "min",
            "p50",
            "p90",
            "p95",
            "p99",
            "max",
            "last",
        ]
        .map(String::from),
    );
    let mut t = Table::new(header);
    let num = |v: Option<f64>| v.map_or(Cell::Null, |v| Cell::fixed(v, 3));
    for r in rows {
        let mut cells: Vec<Cell> = r.group.iter().map(|g| Cell::Str(g.clone())).collect();
        cells.push(Cell::Str(crate::query::rfc3339(r.period_start)));
        cells.push(Cell::Str(r.kind.name().to_owned()));
        cells.push(Cell::Str(r.unit.clone()));
        let s = &r.stats;
        cells.push(Cell::count(s.count));
        cells.push(num(Some(s.sum)));
        cells.push(num(s.mean()));
        cells.push(num(Some(s.min)));
        for q in [0.5, 0.9, 0.95, 0.99] {
            cells.push(num(s.quantile(q)));
        }
        cells.push(num(Some(s.max)));
        cells.push(num(s.last.map(|(_, v)| v)));
        t.push(cells);
    }
    t
}
