//! Application lines: the message of any syslog line that is not HAProxy output.
//!
//! The message is kept whole; [`key_values`] splits `key=value` pairs (logfmt, Heroku, l2met
//! `measure#db.query=12ms`) lazily and without allocating, for the writers that store them as a
//! map column.

/// Iterates over the `key=value` pairs of a message. Values may be double-quoted
/// (`msg="a b"`, with `\"` inside); words without `=` are skipped.
pub fn key_values(message: &str) -> KeyValues<'_> {
    KeyValues { rest: message }
}

/// Iterator returned by [`key_values`].
#[derive(Debug, Clone)]
pub struct KeyValues<'a> {
    rest: &'a str,
}

impl<'a> Iterator for KeyValues<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        loop {
            let s = self.rest.trim_start_matches(' ');
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            let word_end = s.find(' ').unwrap_or(s.len());
            let Some(eq) = s[..word_end].find('=') else {
                self.rest = &s[word_end..];
                continue;
            };
            let key = &s[..eq];
            let after = &s[eq + 1..];
            if let Some(quoted) = after.strip_prefix('"') {
                let bytes = quoted.as_bytes();
                let mut i = 0;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                self.rest = quoted.get(end + 1..).unwrap_or("");
                if key.is_empty() {
                    continue;
                }
                return Some((key, &quoted[..end]));
            }
            let vend = after.find(' ').unwrap_or(after.len());
            self.rest = &after[vend..];
            if key.is_empty() {
                continue;
            }
            return Some((key, &after[..vend]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_and_l2met() {
        let kv: Vec<_> =
            key_values("at=info method=GET path=\"/a b\" measure#db.query=12ms plain word x=").collect();
        assert_eq!(
            kv,
            vec![
                ("at", "info"),
                ("method", "GET"),
                ("path", "/a b"),
                ("measure#db.query", "12ms"),
                ("x", "")
            ]
        );
    }

    #[test]
    fn escaped_quote_and_unterminated_quote() {
        let kv: Vec<_> = key_values(r#"a="x \" y" b="open"#).collect();
        assert_eq!(kv, vec![("a", r#"x \" y"#), ("b", "open")]);
        assert_eq!(key_values("=v k=1").collect::<Vec<_>>(), vec![("k", "1")]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = key_values(&s).count();
        }
    }
}
