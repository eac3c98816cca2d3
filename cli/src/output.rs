//! Tables out: aligned text for people, CSV and JSON for scripts. Every report and query
//! builds a [`Table`] and lets the user pick the rendering with `--format`.

use std::io::Write;

/// How to render a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects (numbers stay numbers).
    Json,
}

/// A header and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
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
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        let row: Vec<String> = row.into_iter().map(Into::into).collect();
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

    fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|i| {
                !self.rows.is_empty()
                    && self
                        .rows
                        .iter()
                        .all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok())
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
        for r in &self.rows {
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
        for r in &self.rows {
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

fn json_cell(c: &str) -> serde_json::Value {
    if c.is_empty() {
        return serde_json::Value::Null;
    }
    if let Ok(i) = c.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = c.parse::<f64>() {
        if f.is_finite() && !c.starts_with('+') {
            return serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(c.into());
        }
    }
    c.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(["status", "count"]);
        t.push(["200", "10"]);
        t.push(["a,\"b\"", "2.5"]);
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

    #[test]
    fn text_aligns_numbers_right() {
        let mut out = Vec::new();
        sample().render(Format::Table, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.lines().nth(1).unwrap(), "200        10");
    }
}
