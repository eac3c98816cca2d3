//! A report's cells keep their type up to the renderer: a count is an integer, a mean a number
//! with its display precision, a name a string even when it reads like a number (a backend
//! named `1e3`), so JSON output never has to guess a type back from text.

use std::fmt;

/// One cell of a [`ReportTable`](super::ReportTable).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text: names, codes, times written out.
    Str(String),
    /// A count, a status code, a time in whole milliseconds.
    Int(i64),
    /// A number shown with a fixed number of decimals (means, percentages, rates).
    Float {
        /// The value.
        value: f64,
        /// Decimals in text and CSV; JSON carries the same rounding.
        decimals: u8,
    },
    /// No value: the mean of nothing, the quantiles of an empty series.
    Null,
}

impl Cell {
    /// A count: counts above `i64::MAX` do not occur, and saturate if they did.
    pub fn count(n: u64) -> Cell {
        Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// A number shown with `decimals` decimals.
    pub fn fixed(value: f64, decimals: u8) -> Cell {
        Cell::Float { value, decimals }
    }

    /// Whether the cell holds a number (text output aligns numeric columns right).
    pub fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float { .. })
    }

    /// The value of a `Float` rounded to its decimals, as its text shows it; `None` for a
    /// value that is not finite.
    pub fn rounded(value: f64, decimals: u8) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        // Rounding through the decimal text makes JSON agree with CSV to the last digit.
        format!("{value:.*}", usize::from(decimals)).parse().ok()
    }
}

/// The text of a cell as CSV and aligned text show it; `Null` is empty.
impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Str(s) => f.write_str(s),
            Cell::Int(n) => write!(f, "{n}"),
            Cell::Float { value, decimals } => write!(f, "{value:.*}", usize::from(*decimals)),
            Cell::Null => Ok(()),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Str(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Str(s.to_string())
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Cell {
        Cell::count(n)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Int(n)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_what_csv_always_showed() {
        assert_eq!(Cell::from(12u64).to_string(), "12");
        assert_eq!(Cell::Int(-1).to_string(), "-1");
        assert_eq!(Cell::fixed(2.0 / 3.0, 3).to_string(), "0.667");
        assert_eq!(Cell::fixed(50.0, 2).to_string(), "50.00");
        assert_eq!(Cell::Null.to_string(), "");
        assert_eq!(Cell::from("1e3").to_string(), "1e3");
        assert_eq!(Cell::from(None::<u64>), Cell::Null);
    }

    #[test]
    fn rounding_follows_the_text() {
        assert_eq!(Cell::rounded(2.0 / 3.0, 3), Some(0.667));
        assert_eq!(Cell::rounded(12.0, 3), Some(12.0));
        assert_eq!(Cell::rounded(f64::NAN, 3), None);
        assert!(!Cell::from("200").is_number());
        assert!(Cell::Int(200).is_number() && Cell::fixed(0.5, 1).is_number());
    }
}
