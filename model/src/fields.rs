//! Named values of a custom HAProxy `log-format` that have no column of their own (`%[sample]`
//! expressions, `%ID`, `%Th`, ...): the `fields` map of the `requests` and `tcp` tables.
//!
//! [`Fields`] stays `Copy` and borrowed like the rest of a record: the names belong to the
//! compiled format (built once per process, so they are `'static`), the values are spans of the
//! message the record was parsed from. Filling it allocates nothing.

/// The most values one format can put into `fields`; a format with more is refused when it is
/// compiled. 32 covers every variable of HAProxy's table that has no column, and then some.
pub const MAX_FIELDS: usize = 32;

/// Where a value lies in [`Fields::text`]; `start == ABSENT` is a value logged as `-` (or an
/// empty quoted string): the format has the field, this line had no value for it. Offsets are
/// 16-bit: HAProxy's `len` caps a log line at 65535 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset into the text.
    pub start: u16,
    /// Length in bytes.
    pub len: u16,
}

impl Span {
    const ABSENT: u16 = u16::MAX;

    /// The span of a value logged as absent.
    pub const NONE: Span = Span {
        start: Span::ABSENT,
        len: 0,
    };
}

/// The extra fields of one record: `names[i]` has the value at `spans[i]` in `text`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// The field names, in format order (the expression text: `capture.req.hdr(0)`, `ID`).
    pub names: &'static [&'static str],
    /// The text the spans point into (the message).
    pub text: &'a str,
    /// One span per name; the rest are unused.
    pub spans: [Span; MAX_FIELDS],
}

impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields::EMPTY
    }
}

impl<'a> Fields<'a> {
    /// No fields: every built-in layout.
    pub const EMPTY: Fields<'static> = Fields {
        names: &[],
        text: "",
        spans: [Span::NONE; MAX_FIELDS],
    };

    /// No field at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `(name, value)` pairs in format order; `None` for a value logged as absent.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<&'a str>)> + '_ {
        let text = self.text;
        self.names.iter().zip(self.spans.iter()).map(move |(name, s)| {
            let value = if s.start == Span::ABSENT {
                None
            } else {
                text.get(s.start as usize..s.start as usize + s.len as usize)
            };
            (*name, value)
        })
    }

    /// The value of `name`, when the format has it and the line gave one.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_spans_of_the_text() {
        let mut spans = [Span::NONE; MAX_FIELDS];
        spans[0] = Span { start: 3, len: 2 };
        let f = Fields {
            names: &["ID", "ssl_fc"],
            text: "id=ab ssl=-",
            spans,
        };
        assert_eq!(f.get("ID"), Some("ab"));
        assert_eq!(f.get("ssl_fc"), None);
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![("ID", Some("ab")), ("ssl_fc", None)]
        );
        assert!(Fields::EMPTY.is_empty());
    }
}
