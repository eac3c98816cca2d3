//! `weir top`: a live view of a running `weir serve`, refreshed every second.
//!
//! Each refresh reads the server's windows of the last `--span` (closed and open, from
//! `/api/windows`) and merges them per backend, and per server of the backends the user
//! expanded: requests per second, error percentage, p50/p95/p99 of the total time, p99 of the
//! response time and Apdex. A status line shows weir's own health from `/metrics`: lines in per
//! second, rejects, drops, the pipeline queue. Keys: ↑/↓ select, Enter or → expands a backend
//! into its servers, ← folds it, q or Esc quits. A narrow terminal shows fewer columns, never
//! a broken layout.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use weir_aggregate::query::{self, KeyDim, Measure, QuerySpec};
use weir_aggregate::TimerId;
use weir_model::WindowRow;

/// `weir top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:9514", value_name = "URL")]
    server: String,
    /// How much recent traffic each line sums up (a whole number of seconds).
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration, value_name = "DUR")]
    span: Duration,
    /// Apdex target T for the total time.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration, value_name = "T")]
    apdex_t: Duration,
}

/// One line of the view: a backend, or one of its servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRow {
    /// The backend.
    pub backend: String,
    /// The server, for a server line.
    pub server: Option<String>,
    /// Requests per second over the span.
    pub rate: f64,
    /// Share of requests that were errors (5xx or no response), percent.
    pub error_pct: f64,
    /// p50, p95, p99 of the total time, ms.
    pub total: Option<[u64; 3]>,
    /// p99 of the response time, ms.
    pub response_p99: Option<u64>,
    /// Apdex of the total time.
    pub apdex: Option<f64>,
}

/// The lines of the view: every backend, each followed by its servers when expanded.
pub fn view(
    rows: &[WindowRow],
    span_secs: f64,
    apdex_t: u64,
    sigfig: u8,
    expanded: &BTreeSet<String>,
) -> Vec<ViewRow> {
    let spec = |by: Vec<KeyDim>, measure| QuerySpec {
        by,
        measure,
        apdex_t: Some(apdex_t),
        sigfig,
        ..QuerySpec::default()
    };
    let run = |s: &QuerySpec| query::run(rows.iter().cloned(), s).unwrap_or_default();
    let lines = |by: Vec<KeyDim>| {
        let total = run(&spec(by.clone(), Measure::Timer(TimerId::Total)));
        let response = run(&spec(by, Measure::Timer(TimerId::Response)));
        total
            .into_iter()
            .zip(response)
            .map(|(t, r)| ViewRow {
                backend: t.group[0].clone(),
                server: t.group.get(1).cloned(),
                rate: t.requests as f64 / span_secs.max(1.0),
                error_pct: if t.requests == 0 {
                    0.0
                } else {
                    100.0 * t.errors as f64 / t.requests as f64
                },
                total: t.summary.map(|s| [s.p50, s.p95, s.p99]),
                response_p99: r.summary.map(|s| s.p99),
                apdex: t.apdex,
            })
            .collect::<Vec<_>>()
    };
    let servers = if expanded.is_empty() {
        Vec::new()
    } else {
        lines(vec![KeyDim::Backend, KeyDim::Server])
    };
    let mut out = Vec::new();
    for b in lines(vec![KeyDim::Backend]) {
        let open = expanded.contains(&b.backend);
        let name = b.backend.clone();
        out.push(b);
        if open {
            out.extend(servers.iter().filter(|s| s.backend == name).cloned());
        }
    }
    out
}

/// The columns, most important first; a narrow terminal shows a prefix of them.
const COLUMNS: [(&str, u16); 8] = [
    ("backend / server", 22),
    ("req/s", 9),
    ("err %", 7),
    ("p99 ms", 8),
    ("p50 ms", 8),
    ("p95 ms", 8),
    ("resp p99", 9),
    ("apdex", 6),
];

fn cells(r: &ViewRow) -> [String; 8] {
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let t = r.total;
    [
        match &r.server {
            Some(s) => format!("  {s}"),
            None => r.backend.clone(),
        },
        format!("{:.1}", r.rate),
        format!("{:.2}", r.error_pct),
        ms(t.map(|t| t[2])),
        ms(t.map(|t| t[0])),
        ms(t.map(|t| t[1])),
        ms(r.response_p99),
        r.apdex.map_or_else(|| "-".to_owned(), |a| format!("{a:.2}")),
    ]
}

/// How many columns fit in `width`.
fn columns_that_fit(width: u16) -> usize {
    let mut used = 0u16;
    let mut n = 0;
    for (_, w) in COLUMNS {
        if used + w + 1 > width && n > 0 {
            break;
        }
        used += w + 1;
        n += 1;
    }
    n
}

/// weir's own health, from two `/metrics` reads a second apart.
#[derive(Debug, Clone, Default)]
struct Health {
    received: f64,
    rejected: f64,
    dropped: f64,
    queue: f64,
    at: Option<Instant>,
    rate: f64,
}

impl Health {
    fn update(&mut self, metrics: &[(String, f64)]) {
        let sum = |prefix: &str| -> f64 {
            metrics
                .iter()
                .filter(|(n, _)| n == prefix || n.starts_with(&format!("{prefix}{{")))
                .map(|(_, v)| v)
                .sum()
        };
        let received = sum("weir_received_total");
        let now = Instant::now();
        if let Some(at) = self.at {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.rate = (received - self.received).max(0.0) / secs;
            }
        }
        self.received = received;
        self.rejected = sum("weir_rejected_total");
        self.dropped = sum("weir_dropped_total");
        self.queue = sum("weir_pipeline_queue_batches");
        self.at = Some(now);
    }

    fn line(&self) -> String {
        format!(
            "in {:.0} lines/s · rejected {:.0} · dropped {:.0} · pipeline queue {:.0}",
            self.rate, self.rejected, self.dropped, self.queue
        )
    }
}

struct App {
    args: Args,
    rows: Vec<ViewRow>,
    expanded: BTreeSet<String>,
    state: TableState,
    health: Health,
    error: Option<String>,
}

impl App {
    fn refresh(&mut self) {
        let now = weir_model::time::now_micros();
        let span = self.args.span.as_micros() as i64;
        match crate::live::windows(&self.args.server, Some(now - span), false) {
            Ok(w) => {
                self.rows = view(
                    &w.rows,
                    self.args.span.as_secs_f64(),
                    self.args.apdex_t.as_millis() as u64,
                    w.sigfig,
                    &self.expanded,
                );
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{e:#}")),
        }
        if let Ok(m) = crate::live::metrics(&self.args.server) {
            self.health.update(&m);
        }
        if self.state.selected().is_none() && !self.rows.is_empty() {
            self.state.select(Some(0));
        }
    }

    fn draw(&mut self, f: &mut Frame) {
        let [title, table, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)])
                .areas(f.area());
        f.render_widget(
            Paragraph::new(Line::from(format!(
                "weir top · {} · last {} · q quits, Enter expands",
                self.args.server,
                humantime::format_duration(self.args.span)
            )))
            .style(Style::default().add_modifier(Modifier::BOLD)),
            title,
        );
        let n = columns_that_fit(table.width);
        let widths: Vec<Constraint> = COLUMNS[..n].iter().map(|(_, w)| Constraint::Length(*w)).collect();
        let header = Row::new(COLUMNS[..n].iter().map(|(h, _)| *h))
            .style(Style::default().add_modifier(Modifier::REVERSED));
        let body: Vec<Row> = self
            .rows
            .iter()
            .map(|r| Row::new(cells(r).into_iter().take(n)))
            .collect();
        let t = Table::new(body, widths)
            .header(header)
            .block(Block::default())
            .row_highlight_style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        f.render_stateful_widget(t, table, &mut self.state);
        let text = match &self.error {
            Some(e) => e.clone(),
            None => self.health.line(),
        };
        f.render_widget(Paragraph::new(text), status);
    }

    /// Handles a key; `false` to quit.
    fn key(&mut self, code: KeyCode) -> bool {
        let selected = self.state.selected().and_then(|i| self.rows.get(i)).cloned();
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Down | KeyCode::Char('j') => self.state.select_next(),
            KeyCode::Up | KeyCode::Char('k') => self.state.select_previous(),
            KeyCode::Enter | KeyCode::Right => {
                if let Some(r) = selected {
                    if !self.expanded.insert(r.backend.clone()) && r.server.is_none() {
                        self.expanded.remove(&r.backend);
                    }
                    self.refresh();
                }
            }
            KeyCode::Left => {
                if let Some(r) = selected {
                    self.expanded.remove(&r.backend);
                    self.refresh();
                }
            }
            _ => {}
        }
        true
    }
}

/// Runs `weir top` until q.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.span.as_secs() == 0 {
        return Err(crate::UsageError("--span must be at least 1s".into()).into());
    }
    let mut app = App {
        args,
        rows: Vec::new(),
        expanded: BTreeSet::new(),
        state: TableState::default(),
        health: Health::default(),
        error: None,
    };
    app.refresh();
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        let mut next = Instant::now() + Duration::from_secs(1);
        loop {
            terminal.draw(|f| app.draw(f))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press && !app.key(k.code) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= next {
                app.refresh();
                next = Instant::now() + Duration::from_secs(1);
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_aggregate::{WindowAggregator, WindowConfig};
    use weir_model::{HttpLog, Timings};

    fn rows() -> Vec<WindowRow> {
        let mut agg = WindowAggregator::new(WindowConfig::default()).unwrap();
        for i in 0..60u16 {
            let (backend, server) = if i % 3 == 0 {
                ("be_b", "b1")
            } else {
                ("be_a", if i % 2 == 0 { "a1" } else { "a2" })
            };
            agg.add(&HttpLog {
                accept_ts: i64::from(i) * 1_000_000,
                frontend: "fe",
                backend,
                server,
                timings: Timings {
                    request: Some(0),
                    queue: Some(0),
                    connect: Some(1),
                    response: Some(i32::from(i)),
                    total: Some(i32::from(i) * 10),
                    total_logasap: false,
                },
                status: Some(if i == 7 { 503 } else { 200 }),
                bytes_read: 10,
                termination_state: "----",
                ..HttpLog::default()
            });
        }
        agg.flush()
    }

    #[test]
    fn backends_with_rates_errors_and_expanded_servers() {
        let v = view(&rows(), 60.0, 300, 2, &BTreeSet::new());
        let names: Vec<(&str, f64)> = v.iter().map(|r| (r.backend.as_str(), r.rate)).collect();
        assert_eq!(names, [("be_a", 40.0 / 60.0), ("be_b", 20.0 / 60.0)]);
        assert_eq!(v[0].error_pct, 2.5);
        let expanded = view(&rows(), 60.0, 300, 2, &["be_a".to_owned()].into());
        let labels: Vec<String> = expanded.iter().map(|r| cells(r)[0].clone()).collect();
        assert_eq!(labels, ["be_a", "  a1", "  a2", "be_b"]);
    }

    #[test]
    fn narrow_terminals_show_fewer_columns() {
        assert_eq!(columns_that_fit(200), COLUMNS.len());
        assert_eq!(columns_that_fit(40), 2);
        assert_eq!(columns_that_fit(5), 1, "the name column always shows");
    }
}
