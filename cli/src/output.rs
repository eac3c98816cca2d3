//! Tables out: aligned text for people, CSV and JSON for scripts. Every report builds a
//! [`Table`] of typed [`Cell`]s and lets the user pick the rendering with `--format`: text and
//! CSV show each cell's text, JSON its type (numbers as numbers, names as strings, no value as
//! `null`).

use std::io::Write;

pub use weir_aggregate::report::Cell;

/// How to render a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects (counts and times are numbers, names are strings).
    Json,
}

/// A header and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column names and no rows.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push<C: Into<Cell>>(&mut self, row: impl IntoIterator<Item = C>) {
        let row: Vec<Cell> = row.into_iter().map(Into::into).collect();
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// Writes the table in `format`.
    pub fn render(&self, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
        match format {
            Format::Table => self.render_text(out),
            Format::Csv => self.render_csv(out),
            Format::Json => self.render_json(out),
        }
    }

    /// The cells' text, row by row.
    fn texts(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(ToString::to_string).collect())
            .collect()
    }

    fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let texts = self.texts();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &texts {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        // A column of numbers (and empty cells) is aligned right.
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|i| {
                !self.rows.is_empty() && self.rows.iter().all(|r| r[i].is_number() || r[i] == Cell::Null)
            })
            .collect();
        let line = |cells: &[String], out: &mut dyn Write| -> std::io::Result<()> {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = widths[i].saturating_sub(c.chars().count());
                if numeric[i] {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if i + 1 < cells.len() {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(&self.header, out)?;
        for r in &texts {
            line(r, out)?;
        }
        Ok(())
    }

    fn render_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let field = |c: &str| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_string()
            }
        };
        writeln!(
            out,
            "{}",
            self.header.iter().map(|c| field(c)).collect::<Vec<_>>().join(",")
        )?;
        for r in &self.texts() {
            writeln!(
                out,
                "{}",
                r.iter().map(|c| field(c)).collect::<Vec<_>>().join(",")
            )?;
        }
        Ok(())
    }

    fn render_json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let obj = self
                    .header
                    .iter()
                    .zip(r)
                    .map(|(h, c)| (h.clone(), json_cell(c)))
                    .collect::<serde_json::Map<_, _>>();
                serde_json::Value::Object(obj)
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)
    }
}

fn json_cell(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Str(s) => s.as_str().into(),
        Cell::Int(n) => (*n).into(),
        Cell::Float { value, decimals } => Cell::rounded(*value, *decimals)
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Cell::Null => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(["status", "count"]);
        t.push([Cell::Int(200), Cell::Int(10)]);
        t.push([Cell::from("a,\"b\""), Cell::fixed(2.5, 1)]);
        t
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut out = Vec::new();
        sample().render(Format::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "status,count\n200,10\n\"a,\"\"b\"\"\",2.5\n"
        );
    }

    #[test]
    fn json_keeps_numbers_numeric() {
        let mut out = Vec::new();
        sample().render(Format::Json, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["count"], 10);
        assert_eq!(v[1]["count"], 2.5);
        assert_eq!(v[1]["status"], "a,\"b\"");
    }

    /// A name that reads like a number stays a string; a mean keeps the rounding its text
    /// shows; no value is `null`.
    #[test]
    fn json_keeps_each_cell_type() {
        let mut t = Table::new(["backend", "requests", "avg", "p99"]);
        t.push([
            Cell::from("1e3"),
            Cell::Int(7),
            Cell::fixed(2.0 / 3.0, 3),
            Cell::Null,
        ]);
        t.push([
            Cell::from("007"),
            Cell::Int(0),
            Cell::fixed(f64::NAN, 3),
            Cell::Int(5),
        ]);
        let mut out = Vec::new();
        t.render(Format::Json, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["backend"], "1e3");
        assert_eq!(v[0]["requests"], 7);
        assert_eq!(v[0]["avg"], 0.667);
        assert!(v[0]["p99"].is_null());
        assert_eq!(v[1]["backend"], "007");
        assert!(v[1]["avg"].is_null());
        let mut csv = Vec::new();
        t.render(Format::Csv, &mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "backend,requests,avg,p99\n1e3,7,0.667,\n007,0,NaN,5\n"
        );
    }

    #[test]
    fn text_aligns_numbers_right() {
        let mut out = Vec::new();
        sample().render(Format::Table, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.lines().nth(1).unwrap(), "200        10");
    }
}
