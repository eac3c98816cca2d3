//! A zero-allocation `key=value` tokenizer for application messages (logfmt and l2met style):
//! `at=info method=GET path="/a b" measure#db=12ms`. It yields borrowed slices, so filling the
//! `app` table's `fields` map costs no allocation per pair.
//!
//! Rules: pairs are separated by white space; a key is a non-empty run of bytes other than
//! white space, `=` and `"`; a value is either a run up to the next white space or, when it
//! starts with `"`, everything up to the next `"` not preceded by a backslash (the quotes are
//! dropped, backslash escapes are kept verbatim; an unterminated quote runs to the end). Words
//! without `=` are skipped.

/// An iterator over the `key=value` pairs of a message. See the module docs for the grammar.
#[derive(Debug, Clone)]
pub struct KvPairs<'a> {
    s: &'a str,
    pos: usize,
}

/// The `key=value` pairs of `message`.
pub fn kv_pairs(message: &str) -> KvPairs<'_> {
    KvPairs { s: message, pos: 0 }
}

impl<'a> Iterator for KvPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let b = self.s.as_bytes();
        loop {
            while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return None;
            }
            let key_start = self.pos;
            while self.pos < b.len()
                && !matches!(b[self.pos], b'=' | b'"')
                && !b[self.pos].is_ascii_whitespace()
            {
                self.pos += 1;
            }
            if self.pos >= b.len() || b[self.pos] != b'=' || self.pos == key_start {
                self.skip_word();
                continue;
            }
            // Every delimiter is ASCII, so these byte offsets are char boundaries.
            let key = &self.s[key_start..self.pos];
            self.pos += 1;
            if self.pos < b.len() && b[self.pos] == b'"' {
                let start = self.pos + 1;
                let mut i = start;
                while i < b.len() && !(b[i] == b'"' && b[i - 1] != b'\\') {
                    i += 1;
                }
                self.pos = (i + 1).min(b.len());
                return Some((key, &self.s[start..i]));
            }
            let start = self.pos;
            while self.pos < b.len() && !b[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            return Some((key, &self.s[start..self.pos]));
        }
    }
}

impl KvPairs<'_> {
    /// Skips to the next white space, stepping over a quoted section so that `say "a=b c"`
    /// yields nothing from inside the quotes.
    fn skip_word(&mut self) {
        let b = self.s.as_bytes();
        let mut quoted = false;
        while self.pos < b.len() {
            let c = b[self.pos];
            if c == b'"' && (self.pos == 0 || b[self.pos - 1] != b'\\') {
                quoted = !quoted;
            } else if c.is_ascii_whitespace() && !quoted {
                return;
            }
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(&str, &str)> {
        kv_pairs(s).collect()
    }

    #[test]
    fn logfmt_with_quotes() {
        assert_eq!(
            pairs(r#"at=info method=GET path="/a b" status=200 empty= q="say \"hi\"""#),
            vec![
                ("at", "info"),
                ("method", "GET"),
                ("path", "/a b"),
                ("status", "200"),
                ("empty", ""),
                ("q", r#"say \"hi\""#),
            ]
        );
    }

    #[test]
    fn l2met_and_free_text() {
        assert_eq!(
            pairs("Completed request measure#db.query=12ms count#hits=1 in  3ms"),
            vec![("measure#db.query", "12ms"), ("count#hits", "1")]
        );
        assert_eq!(pairs("no pairs here"), vec![]);
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("=x a==b"), vec![("a", "=b")]);
    }

    #[test]
    fn quoted_words_and_unterminated_quotes() {
        assert_eq!(pairs(r#"said "x=1 y" k=v"#), vec![("k", "v")]);
        assert_eq!(pairs(r#"k="open to the end"#), vec![("k", "open to the end")]);
        assert_eq!(pairs("ключ=значение k=é"), vec![("ключ", "значение"), ("k", "é")]);
        assert_eq!(pairs("k=\"\""), vec![("k", "")]);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// A value as a logger writes it: bare (no white space, no leading quote) or quoted
        /// (with spaces, no quote or backslash inside).
        fn value() -> impl Strategy<Value = (String, String)> {
            prop_oneof![
                "[a-zA-Z0-9/=.#:%-]{0,10}".prop_map(|v| (v.clone(), v)),
                "[a-zA-Z0-9 /=.#-]{0,10}".prop_map(|v| (format!("\"{v}\""), v)),
            ]
        }

        proptest! {
            #[test]
            fn logfmt_lines_give_back_their_pairs(
                fields in proptest::collection::vec(("[a-z_][a-z0-9_.#]{0,8}", value()), 0..8),
                sep in "[ \t]{1,3}",
            ) {
                let text = fields
                    .iter()
                    .map(|(k, (written, _))| format!("{k}={written}"))
                    .collect::<Vec<_>>()
                    .join(&sep);
                let expected: Vec<(&str, &str)> =
                    fields.iter().map(|(k, (_, v))| (k.as_str(), v.as_str())).collect();
                prop_assert_eq!(pairs(&text), expected);
            }

            #[test]
            fn any_text_gives_ordered_slices_of_itself(text in "\\PC{0,60}|[a-z=\" \\\\]{0,40}") {
                let base = text.as_ptr() as usize;
                let mut end = 0;
                for (key, value) in kv_pairs(&text) {
                    let (k, v) = (key.as_ptr() as usize - base, value.as_ptr() as usize - base);
                    prop_assert!(!key.is_empty());
                    prop_assert!(!key.bytes().any(|b| b.is_ascii_whitespace() || b == b'=' || b == b'"'));
                    prop_assert!(k >= end && v > k && v + value.len() <= text.len());
                    prop_assert_eq!(&text[k + key.len()..k + key.len() + 1], "=");
                    end = v + value.len();
                }
            }
        }
    }
}
