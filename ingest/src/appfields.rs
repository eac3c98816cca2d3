//! The `fields` of an application line: RFC 5424 STRUCTURED-DATA parameters, then the
//! message's own fields: a JSON object (or rsyslog's `@cee:` JSON), flattened, or else its
//! `key=value` pairs (logfmt, l2met).
//!
//! SD parameters are named `SD-ID.PARAM` (`exampleSDID@32473.iut`), as Vector and rsyslog's
//! JSON output name them; nested JSON objects are flattened with dots (`http.status`), arrays
//! kept as JSON text, `null`s left out, numbers and booleans written as JSON writes them. Values
//! are borrowed from the line unless an escape had to be undone.

use std::borrow::Cow;

use crate::kv::kv_pairs;

/// Calls `f(name, value)` for every field of an application line: the SD parameters of
/// `structured_data` (the header's raw STRUCTURED-DATA), then those of `message`.
pub fn for_each_app_field(structured_data: Option<&str>, message: &str, mut f: impl FnMut(&str, &str)) {
    if let Some(sd) = structured_data {
        sd_params(sd, &mut f);
    }
    let trimmed = message.trim_start();
    let json = trimmed.strip_prefix("@cee:").map_or(trimmed, str::trim_start);
    if json.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) {
            let mut name = String::new();
            flatten(&mut name, &map, &mut f);
            return;
        }
    }
    for (k, v) in kv_pairs(message) {
        f(k, v);
    }
}

/// The members of `map` under the prefix in `name`.
fn flatten(
    name: &mut String,
    map: &serde_json::Map<String, serde_json::Value>,
    f: &mut impl FnMut(&str, &str),
) {
    let base = name.len();
    for (k, v) in map {
        name.truncate(base);
        if base > 0 {
            name.push('.');
        }
        name.push_str(k);
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => f(name, s),
            serde_json::Value::Object(inner) => flatten(name, inner, f),
            other => f(name, &other.to_string()),
        }
    }
    name.truncate(base);
}

/// The parameters of STRUCTURED-DATA, `[id name="value" ...]...`. A malformed element ends
/// the reading: what came before it is kept.
fn sd_params(sd: &str, f: &mut impl FnMut(&str, &str)) {
    let b = sd.as_bytes();
    let mut i = 0;
    let mut name = String::new();
    while i < b.len() && b[i] == b'[' {
        let id_end = match sd[i + 1..].find([' ', ']']) {
            Some(n) => i + 1 + n,
            None => return,
        };
        let id = &sd[i + 1..id_end];
        i = id_end;
        loop {
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            match b.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(_) => {}
                None => return,
            }
            let Some(eq) = sd[i..].find('=').map(|n| i + n) else {
                return;
            };
            let param = &sd[i..eq];
            if b.get(eq + 1) != Some(&b'"') {
                return;
            }
            let Some((value, end)) = quoted(sd, eq + 2) else {
                return;
            };
            name.clear();
            name.push_str(id);
            name.push('.');
            name.push_str(param);
            f(&name, &value);
            i = end;
        }
    }
}

/// The PARAM-VALUE starting at `from` (after its opening quote), with `\"`, `\\` and `\]`
/// undone, and the index after its closing quote.
fn quoted(sd: &str, from: usize) -> Option<(Cow<'_, str>, usize)> {
    let b = sd.as_bytes();
    let mut i = from;
    let mut owned: Option<String> = None;
    let mut run = from;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let value = match owned {
                    Some(mut s) => {
                        s.push_str(&sd[run..i]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&sd[from..i]),
                };
                return Some((value, i + 1));
            }
            b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&sd[run..i]);
                run = i + 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fields(sd: Option<&str>, msg: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for_each_app_field(sd, msg, |k, v| out.push((k.to_owned(), v.to_owned())));
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn structured_data_params_are_named_by_their_element() {
        let sd = r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][meta seq="a \"b\" \] \\ c"]"#;
        assert_eq!(
            fields(Some(sd), "at=info n=1"),
            pairs(&[
                ("exampleSDID@32473.iut", "3"),
                ("exampleSDID@32473.eventSource", "Application"),
                ("exampleSDID@32473.eventID", "1011"),
                ("meta.seq", r#"a "b" ] \ c"#),
                ("at", "info"),
                ("n", "1"),
            ])
        );
        assert_eq!(
            fields(Some("[timeQuality tzKnown=\"1\"]"), ""),
            pairs(&[("timeQuality.tzKnown", "1")])
        );
        assert_eq!(
            fields(Some("[x a=\"1\"][broken"), ""),
            pairs(&[("x.a", "1")]),
            "kept up to the damage"
        );
    }

    #[test]
    fn json_messages_are_flattened() {
        let msg = r#"{"level":"warn","msg":"slow","http":{"status":503,"path":"/a"},"tags":["a","b"],"ok":false,"gone":null}"#;
        assert_eq!(
            fields(None, msg),
            pairs(&[
                ("level", "warn"),
                ("msg", "slow"),
                ("http.status", "503"),
                ("http.path", "/a"),
                ("tags", r#"["a","b"]"#),
                ("ok", "false"),
            ])
        );
        assert_eq!(fields(None, r#"@cee: {"a":1}"#), pairs(&[("a", "1")]));
        assert_eq!(
            fields(None, "{not json} k=v"),
            pairs(&[("k", "v")]),
            "not JSON: key=value"
        );
    }

    proptest! {
        /// Any text, as SD or message, is read without a panic.
        #[test]
        fn never_panics(sd in "\\PC*", msg in "\\PC*", raw in prop::collection::vec(any::<u8>(), 0..64)) {
            let lossy = String::from_utf8_lossy(&raw);
            for s in [sd.as_str(), &lossy] {
                for_each_app_field(Some(s), &msg, |_, _| {});
                for_each_app_field(Some(s), s, |_, _| {});
            }
        }
    }
}
