//! `weir plot`: charts of the windows, for people who would rather look.
//!
//! Three kinds, to SVG or PNG (by the file's extension), from one or more spools or a running
//! server, over any range:
//! - `quantiles`: p50, p95 and p99 of a timer over time, one panel per backend (or frontend or
//!   server, `--by`);
//! - `heatmap`: time across, latency up (1-2-5 steps, log scale), the share of each period's
//!   requests in each latency band as colour: where the bulk and the tail lie, and how they
//!   move;
//! - `distribution`: the latency distribution over the whole range, with p50, p95 and p99
//!   marked.
//!
//! Rows are merged exactly before any quantile is read, as `weir query` does. PNG text is
//! drawn with an embedded DejaVu Sans Mono (`cli/assets`), so charts look the same on any
//! machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use weir_aggregate::query::{self, KeyDim, Measure, QuerySpec};
use weir_aggregate::WindowStats;
use weir_model::time::civil_from_micros;
use weir_model::{Micros, WindowRow};

use crate::UsageError;

/// `weir plot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to draw.
    #[arg(long, value_enum, default_value_t = Kind::Quantiles)]
    kind: Kind,
    /// The chart file: `.svg` or `.png`.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// A spool folder to read the `windows` table from (repeatable).
    #[arg(long, value_name = "DIR", required_unless_present = "server")]
    spool: Vec<PathBuf>,
    /// A running `weir serve` (its recent windows; with --spool, those not yet in the spool).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Windows starting at or after this instant: RFC 3339, a date, or a duration back from now.
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Windows starting before this instant.
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// One panel per value of this key part (quantiles): backend, frontend or server.
    #[arg(long, default_value = "backend", value_name = "DIM")]
    by: String,
    /// The distribution: request, queue, connect, response, total, data.
    #[arg(long, default_value = "total", value_name = "NAME")]
    timer: String,
    /// Keep only series whose key parts have these values: backend=be_api,status_class=5xx.
    #[arg(long = "where", value_delimiter = ',', value_name = "EXPR")]
    filters: Vec<String>,
    /// Period of each point or column [default: about a hundredth of the range].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    every: Option<std::time::Duration>,
    /// Significant figures the windows were written with.
    #[arg(long, default_value_t = 2)]
    sigfig: u8,
    /// Width and height in pixels.
    #[arg(long, default_value = "1200x800", value_parser = parse_size, value_name = "WxH")]
    size: (u32, u32),
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// p50, p95, p99 over time per backend.
    Quantiles,
    /// Time x latency band, the share of requests as colour.
    Heatmap,
    /// The latency distribution over the range.
    Distribution,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, such as 1200x800")?;
    let n = |v: &str| v.parse::<u32>().ok().filter(|n| (200..=8000).contains(n));
    match (n(w), n(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err("width and height must be 200 to 8000 pixels".into()),
    }
}

/// Runs `weir plot`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let now = weir_model::time::now_micros();
    let since = args
        .since
        .as_deref()
        .map(|s| crate::query::instant("--since", s, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| crate::query::instant("--until", s, now))
        .transpose()?;
    let dim = KeyDim::from_name(&args.by)
        .filter(|d| *d != KeyDim::StatusClass)
        .ok_or_else(|| {
            UsageError(format!(
                "--by {:?}: expected backend, frontend or server",
                args.by
            ))
        })?;
    let measure = Measure::from_name(&args.timer)
        .filter(|m| *m != Measure::Bytes)
        .ok_or_else(|| UsageError(format!("--timer {:?}: expected a timer", args.timer)))?;
    let filters = crate::query::filters(&args.filters)?;
    if !is_chart(&args.to) {
        return Err(UsageError(format!(
            "--to {}: the file must end in .svg or .png",
            args.to.display()
        ))
        .into());
    }
    let svg = args.to.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let rows = crate::query::load(
        &args.spool,
        args.server.as_deref(),
        since,
        until,
        &[measure.name()],
    )?;
    anyhow::ensure!(!rows.is_empty(), "no windows in the range: nothing to plot");
    let first = rows.iter().map(|r| r.window_start).min().unwrap_or_default();
    let last = rows
        .iter()
        .map(|r| r.window_start + i64::from(r.window_secs) * 1_000_000)
        .max()
        .unwrap_or_default();
    let window = rows.iter().map(|r| r.window_secs).max().unwrap_or(10).max(1);
    let every = match args.every {
        Some(d) => u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1),
        None => {
            let span = ((last - first) / 1_000_000).max(1) as u32;
            (span / 100).max(window).div_ceil(window) * window
        }
    };
    let spec = QuerySpec {
        by: vec![dim],
        every: Some(every),
        filters: filters.clone(),
        measure,
        sigfig: args.sigfig,
        ..QuerySpec::default()
    };
    let chart = Chart {
        title_measure: measure.name(),
        first,
        last,
        every,
    };
    let job = Job {
        kind: args.kind,
        rows,
        spec,
        measure,
        chart,
    };
    register_font()?;
    if svg {
        job.draw(SVGBackend::new(&args.to, args.size).into_drawing_area())
    } else {
        job.draw(BitMapBackend::new(&args.to, args.size).into_drawing_area())
    }
    .with_context(|| format!("drawing {}", args.to.display()))?;
    eprintln!("weir: wrote {}", args.to.display());
    Ok(())
}

/// One chart to draw.
struct Job {
    kind: Kind,
    rows: Vec<WindowRow>,
    spec: QuerySpec,
    measure: Measure,
    chart: Chart,
}

impl Job {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (c, rows, spec) = (&self.chart, &self.rows, &self.spec);
        match self.kind {
            Kind::Quantiles => c.quantiles(&root, &query::run(rows.clone(), spec)?),
            Kind::Heatmap => c.heatmap(&root, &periods(rows, spec)?, self.measure),
            Kind::Distribution => {
                let whole = QuerySpec {
                    every: None,
                    ..spec.clone()
                };
                c.distribution(&root, &periods(rows, &whole)?, self.measure)
            }
        }?;
        root.present().map_err(plot_error)
    }
}

fn register_font() -> anyhow::Result<()> {
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        include_bytes!("../assets/DejaVuSansMono.ttf"),
    )
    .map_err(|_| anyhow::anyhow!("the embedded font could not be loaded"))
}

fn plot_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The merged stats of each period (all series that pass the filters), in time order.
fn periods(rows: &[WindowRow], spec: &QuerySpec) -> anyhow::Result<Vec<(Micros, WindowStats)>> {
    let mut out: BTreeMap<Micros, WindowStats> = BTreeMap::new();
    for r in rows {
        if !spec.filters.iter().all(|(d, v)| d.value(&r.key) == v.as_str()) {
            continue;
        }
        let p = match spec.every {
            Some(e) => {
                let e = i64::from(e) * 1_000_000;
                r.window_start.div_euclid(e) * e
            }
            None => 0,
        };
        weir_aggregate::window::add_to(&mut out, p, r, spec.sigfig)?;
    }
    Ok(out.into_iter().collect())
}

/// `HH:MM` (UTC), with the date when the range spans days, with seconds when it is short.
fn clock_label(t: Micros, span: Micros) -> String {
    let (y, mo, d, h, mi, s, _) = civil_from_micros(t);
    if span > 86_400_000_000 {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
    } else if span < 900_000_000 {
        format!("{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{h:02}:{mi:02}")
    }
}

/// A series' values per band of `edges`.
fn band_counts(edges: &[u64], s: &weir_aggregate::sparse::SparseSeries) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() - 1];
    for (value, n) in s.buckets() {
        let band = edges
            .iter()
            .rposition(|e| *e <= value)
            .unwrap_or(0)
            .min(counts.len() - 1);
        counts[band] += n;
    }
    counts
}

/// Where `v` sits on the band axis: band `i` spans `[i, i + 1)`, log-interpolated inside.
fn band_position(edges: &[u64], v: u64) -> f64 {
    let i = edges
        .iter()
        .rposition(|e| *e <= v)
        .unwrap_or(0)
        .min(edges.len() - 2);
    let (lo, hi) = (edges[i] as f64, edges[i + 1] as f64);
    let frac = if lo <= 0.0 {
        (v as f64 / hi).clamp(0.0, 1.0)
    } else {
        ((v as f64).ln() - lo.ln()) / (hi.ln() - lo.ln())
    };
    i as f64 + frac.clamp(0.0, 1.0)
}

/// Latency bands, 1-2-5 steps: [0,1), [1,2), [2,5), [5,10), ... up to past `max`.
fn bands(max: u64) -> Vec<u64> {
    let mut edges = vec![0, 1];
    let mut base = 1u64;
    while *edges.last().unwrap_or(&0) <= max {
        for m in [2, 5, 10] {
            edges.push(base * m);
        }
        base *= 10;
    }
    edges
}

struct Chart {
    title_measure: &'static str,
    first: Micros,
    last: Micros,
    every: u32,
}

const COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
];

impl Chart {
    fn x_range(&self) -> std::ops::Range<f64> {
        0.0..((self.last - self.first) as f64 / 1e6).max(1.0)
    }

    fn x_label(&self, secs: &f64) -> String {
        clock_label(self.first + (*secs * 1e6) as Micros, self.last - self.first)
    }

    fn quantiles<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rows: &[query::QueryRow],
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(plot_error)?;
        let mut groups: BTreeMap<&str, Vec<&query::QueryRow>> = BTreeMap::new();
        for r in rows {
            groups.entry(r.group[0].as_str()).or_default().push(r);
        }
        let (title, body) = root.split_vertically(56);
        let title = title
            .titled(
                &format!(
                    "{} time (ms, log scale) per {}s, UTC",
                    self.title_measure, self.every
                ),
                ("sans-serif", 20),
            )
            .map_err(plot_error)?;
        let (w, _) = title.dim_in_pixel();
        for (i, label) in ["p50", "p95", "p99"].iter().enumerate() {
            let x = w as i32 / 2 - 90 + 70 * i as i32;
            title
                .draw(&PathElement::new(
                    vec![(x, 8), (x + 18, 8)],
                    COLOURS[i].stroke_width(3),
                ))
                .map_err(plot_error)?;
            title
                .draw(&Text::new(*label, (x + 22, 1), ("sans-serif", 14).into_font()))
                .map_err(plot_error)?;
        }
        let n = groups.len().max(1);
        let cols = (n as f64).sqrt().ceil() as usize;
        let rows_n = n.div_ceil(cols);
        let panels = body.split_evenly((rows_n, cols));
        for ((name, points), area) in groups.iter().zip(panels.iter()) {
            let max = points
                .iter()
                .filter_map(|p| p.summary.map(|s| s.p99))
                .max()
                .unwrap_or(1)
                .max(1) as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(*name, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(56)
                .build_cartesian_2d(self.x_range(), (0.5f64..max * 1.5).log_scale())
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(5)
                .x_label_formatter(&|x| self.x_label(x))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(plot_error)?;
            for (i, (_, pick)) in [
                ("p50", (|s: &weir_aggregate::TimerSummary| s.p50) as fn(&_) -> u64),
                ("p95", |s| s.p95),
                ("p99", |s| s.p99),
            ]
            .into_iter()
            .enumerate()
            {
                let series: Vec<(f64, f64)> = points
                    .iter()
                    .filter_map(|p| {
                        let s = p.summary?;
                        let x = (p.period_start - self.first) as f64 / 1e6;
                        Some((x, (pick(&s) as f64).max(0.5)))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(series, COLOURS[i].stroke_width(2)))
                    .map_err(plot_error)?;
            }
        }
        Ok(())
    }

    fn heatmap<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        periods: &[(Micros, WindowStats)],
        measure: Measure,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(plot_error)?;
        let series = |s: &WindowStats| match measure {
            Measure::Timer(t) => s.timers().get(t).clone(),
            Measure::Bytes => s.bytes().clone(),
        };
        let max = periods.iter().map(|(_, s)| series(s).max()).max().unwrap_or(1);
        let edges = bands(max);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{} time: share of each {}s period's requests per latency band (ms), UTC",
                    self.title_measure, self.every
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(self.x_range(), 0f64..(edges.len() - 1) as f64)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(8)
            .y_labels(edges.len())
            .x_label_formatter(&|x| self.x_label(x))
            .y_label_formatter(&|y| {
                let i = y.round() as usize;
                edges.get(i).map_or_else(String::new, |e| e.to_string())
            })
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(plot_error)?;
        let width = f64::from(self.every);
        let mut cells = Vec::new();
        for (start, stats) in periods {
            let s = series(stats);
            let total = s.count().max(1) as f64;
            let counts = band_counts(&edges, &s);
            let x = (*start - self.first) as f64 / 1e6;
            for (band, n) in counts.into_iter().enumerate().filter(|(_, n)| *n > 0) {
                let share = n as f64 / total;
                // Log scale of the share, so that the tail (0.1 %) is as visible as the bulk.
                let level = ((share.log10() + 4.0) / 4.0).clamp(0.05, 1.0);
                let colour = RGBColor(
                    (255.0 * (1.0 - level * 0.85)) as u8,
                    (255.0 * (1.0 - level * 0.6)) as u8,
                    (255.0 * (1.0 - level * 0.2)) as u8,
                );
                cells.push(Rectangle::new(
                    [(x, band as f64), (x + width, band as f64 + 1.0)],
                    colour.filled(),
                ));
            }
        }
        chart.draw_series(cells).map_err(plot_error)?;
        Ok(())
    }

    fn distribution<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        all: &[(Micros, WindowStats)],
        measure: Measure,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(plot_error)?;
        let Some((_, stats)) = all.first() else {
            anyhow::bail!("no requests to plot");
        };
        let s = match measure {
            Measure::Timer(t) => stats.timers().get(t).clone(),
            Measure::Bytes => stats.bytes().clone(),
        };
        let edges = bands(s.max());
        let counts = band_counts(&edges, &s);
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let summary = query::summarize(&s);
        let title = match summary {
            Some(x) => format!(
                "{} time distribution: {} requests, p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                self.title_measure, x.count, x.p50, x.p95, x.p99, x.max
            ),
            None => format!("{} time distribution: no values", self.title_measure),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..counts.len() as f64, 0f64..top * 1.1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(counts.len() + 1)
            .x_label_formatter(&|x| {
                edges
                    .get(x.round() as usize)
                    .map_or_else(String::new, |e| e.to_string())
            })
            .x_desc("latency band, ms (1-2-5 steps)")
            .y_desc("requests")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, n)| {
                Rectangle::new(
                    [(i as f64 + 0.05, 0.0), (i as f64 + 0.95, *n as f64)],
                    COLOURS[0].filled(),
                )
            }))
            .map_err(plot_error)?;
        if let Some(x) = summary {
            for (i, (label, v)) in [("p50", x.p50), ("p95", x.p95), ("p99", x.p99)]
                .into_iter()
                .enumerate()
            {
                let band = band_position(&edges, v);
                let colour = [COLOURS[1], COLOURS[2], RGBColor(148, 103, 189)][i];
                chart
                    .draw_series(LineSeries::new(
                        vec![(band, 0.0), (band, top * 1.05)],
                        colour.stroke_width(2),
                    ))
                    .map_err(plot_error)?
                    .label(format!("{label} {v} ms"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// Whether `path` is a chart `weir plot` can write.
pub fn is_chart(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("svg" | "png")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_on_the_band_axis() {
        let edges = bands(1000);
        assert_eq!(band_position(&edges, 0), 0.0);
        assert_eq!(band_position(&edges, 10), 4.0);
        assert!((band_position(&edges, 15) - 4.58).abs() < 0.01);
    }

    #[test]
    fn bands_cover_the_max_in_1_2_5_steps() {
        assert_eq!(bands(7), vec![0, 1, 2, 5, 10]);
        assert_eq!(bands(30_000)[..6], [0, 1, 2, 5, 10, 20]);
        assert!(*bands(30_000).last().unwrap() > 30_000);
    }

    #[test]
    fn sizes_and_files() {
        assert_eq!(parse_size("800x600"), Ok((800, 600)));
        assert!(parse_size("10x10").is_err());
        assert!(parse_size("800").is_err());
        assert!(is_chart(Path::new("a.SVG")) && is_chart(Path::new("b.png")));
        assert!(!is_chart(Path::new("c.jpg")));
    }
}
