//! Named values of a custom HAProxy `log-format` that have no column of their own (`%[sample]`
//! expressions, `%ID`, `%Th`, ...): the `fields` map of the `requests` and `tcp` tables.
//!
//! [`Fields`] stays `Copy`, borrowed and small (two references) like the rest of a record: it
//! holds the message and the format that parsed it, and the values are cut out of the message
//! again only when a stage asks for them (the spool writer). The built-in layouts, which are
//! most of the traffic, carry none and pay nothing for the feature.

/// What can name and find the extra values of a message it parsed: a compiled log format.
pub trait FieldSource: Sync {
    /// The field names, in format order (the expression text: `capture.req.hdr(0)`, `ID`).
    fn names(&self) -> &'static [&'static str];

    /// Calls `each` with every field of `text` (a message this source parsed), in order;
    /// `None` for a value logged as absent (`-`, or an empty quoted string).
    fn each_value<'t>(&self, text: &'t str, each: &mut dyn FnMut(&'static str, Option<&'t str>));
}

/// The extra fields of one record: the message and the format that reads them out of it.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    source: Option<&'a dyn FieldSource>,
    text: &'a str,
}

impl<'a> Fields<'a> {
    /// No fields: every built-in layout.
    pub const EMPTY: Fields<'static> = Fields {
        source: None,
        text: "",
    };

    /// The fields `source` finds in `text`.
    pub fn new(source: &'a dyn FieldSource, text: &'a str) -> Self {
        Fields {
            source: Some(source),
            text,
        }
    }

    /// No field at all.
    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }

    /// The field names, in format order.
    pub fn names(&self) -> &'static [&'static str] {
        self.source.map_or(&[], |s| s.names())
    }

    /// Calls `each` with every `(name, value)` in format order; `None` for a value logged as
    /// absent. Allocates nothing.
    pub fn for_each(&self, mut each: impl FnMut(&'static str, Option<&'a str>)) {
        if let Some(s) = self.source {
            s.each_value(self.text, &mut each);
        }
    }

    /// Every `(name, value)`, collected.
    pub fn to_vec(&self) -> Vec<(&'static str, Option<&'a str>)> {
        let mut out = Vec::new();
        self.for_each(|n, v| out.push((n, v)));
        out
    }

    /// The value of `name`, when the format has it and the line gave one.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let mut found = None;
        self.for_each(|n, v| {
            if n == name && found.is_none() {
                found = v;
            }
        });
        found
    }
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields::EMPTY
    }
}

impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.to_vec()).finish()
    }
}

/// Equal when they hold the same names and values.
impl PartialEq for Fields<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names() && self.to_vec() == other.to_vec()
    }
}

impl Eq for Fields<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `key=value` words, the key the name.
    struct Words;

    impl FieldSource for Words {
        fn names(&self) -> &'static [&'static str] {
            &["ID", "ssl_fc"]
        }

        fn each_value<'t>(&self, text: &'t str, each: &mut dyn FnMut(&'static str, Option<&'t str>)) {
            for (name, word) in self.names().iter().zip(text.split(' ')) {
                let v = word.split_once('=').map(|(_, v)| v).filter(|v| *v != "-");
                each(name, v);
            }
        }
    }

    #[test]
    fn values_come_from_the_source() {
        let f = Fields::new(&Words, "id=ab ssl=-");
        assert_eq!(f.get("ID"), Some("ab"));
        assert_eq!(f.get("ssl_fc"), None);
        assert_eq!(f.to_vec(), vec![("ID", Some("ab")), ("ssl_fc", None)]);
        assert!(Fields::EMPTY.is_empty());
        assert_eq!(Fields::EMPTY, Fields::default());
        assert_ne!(f, Fields::EMPTY);
    }
}
