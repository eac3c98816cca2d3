//! The log formats of an `haproxy.cfg`: every `log-format` and `option httplog [clf]`,
//! `option httpslog`, `option tcplog` in `defaults`, `frontend` and `listen` sections, resolved
//! per frontend as HAProxy 2.6 applies them, into a [`FormatSet`].
//!
//! HAProxy's rules, from its manual (§4 "Proxies"): a `defaults` section resets every setting
//! and presets those of the proxies after it, until the next `defaults`; `frontend X from NAME`
//! (and `defaults Y from NAME`) start from a named one instead. Within a section the last of
//! `log-format` and `option *log` wins, and `no option httplog` (or `tcplog`, `httpslog`)
//! clears it. `option httplog` in a `mode tcp` proxy logs as `option tcplog`. The last
//! `defaults` section's format is the set's default, for lines of frontends the file does not
//! name. Words are split as HAProxy splits them: `"..."` with backslash escapes, `'...'`
//! verbatim, `\ ` and the other backslash escapes outside quotes, `#` starting a comment.

use super::logformat::{Builtin, FormatError, FormatSet};

/// A configuration that cannot be read: the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ConfigError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// The log settings of one section, as far as formats go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LogSettings {
    /// The format string in force, with the line that set it.
    format: Option<(String, usize)>,
    /// `mode http` (the default is tcp).
    http: bool,
}

/// What the file says: each frontend's format (with the line that set it) and the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFormats {
    /// `(frontend, format, line)` for every frontend or listen section that logs with a format.
    pub frontends: Vec<(String, String, usize)>,
    /// The format of the last `defaults` section, when it has one.
    pub default: Option<(String, usize)>,
}

impl ConfigFormats {
    /// Compiles them into a set; a bad format is an error naming its line.
    pub fn into_set(self) -> Result<FormatSet, ConfigError> {
        let mut set = FormatSet::new();
        let err = |line: usize| {
            move |e: FormatError| ConfigError {
                line,
                problem: e.to_string(),
            }
        };
        for (fe, format, line) in &self.frontends {
            set.assign(fe, format).map_err(err(*line))?;
        }
        if let Some((format, line)) = &self.default {
            set.set_default(format).map_err(err(*line))?;
        }
        Ok(set)
    }
}

/// Reads the formats of a configuration's text.
pub fn read(text: &str) -> Result<ConfigFormats, ConfigError> {
    #[derive(PartialEq)]
    enum Kind {
        Defaults,
        Proxy,
        Other,
    }
    let mut named: Vec<(String, LogSettings)> = Vec::new();
    let mut last_defaults = LogSettings::default();
    let mut have_defaults = false;
    let mut out = ConfigFormats::default();
    // The section being read: its kind, name and settings.
    let mut section: Option<(Kind, String, LogSettings)> = None;
    let close = |s: Option<(Kind, String, LogSettings)>,
                 named: &mut Vec<(String, LogSettings)>,
                 last: &mut LogSettings,
                 out: &mut ConfigFormats| {
        match s {
            Some((Kind::Defaults, name, set)) => {
                if !name.is_empty() {
                    named.retain(|(n, _)| *n != name);
                    named.push((name, set.clone()));
                }
                *last = set;
            }
            Some((Kind::Proxy, name, set)) => {
                if let Some((format, line)) = set.format {
                    out.frontends.push((name, format, line));
                }
            }
            _ => {}
        }
    };
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let words = words(raw).map_err(|problem| ConfigError {
            line,
            problem: problem.to_owned(),
        })?;
        let Some(first) = words.first() else { continue };
        const OTHER: &[&str] = &[
            "global",
            "peers",
            "resolvers",
            "userlist",
            "mailers",
            "program",
            "http-errors",
            "ring",
            "cache",
            "fcgi-app",
        ];
        let is_section = matches!(first.as_str(), "defaults" | "frontend" | "listen" | "backend")
            || OTHER.contains(&first.as_str());
        if is_section {
            close(section.take(), &mut named, &mut last_defaults, &mut out);
        }
        let base = |from: Option<&String>| -> Result<LogSettings, ConfigError> {
            match from {
                None => Ok(last_defaults.clone()),
                Some(name) => named
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| s.clone())
                    .ok_or_else(|| ConfigError {
                        line,
                        problem: format!("no defaults section named {name:?} before this line"),
                    }),
            }
        };
        let from = match words.get(2).map(String::as_str) {
            Some("from") => Some(words.get(3).ok_or_else(|| ConfigError {
                line,
                problem: "\"from\" must name a defaults section".into(),
            })?),
            _ => None,
        };
        let opened = match first.as_str() {
            "defaults" => {
                // `defaults from X` has no name of its own.
                let (name, from) = match words.get(1).map(String::as_str) {
                    Some("from") => (String::new(), words.get(2)),
                    Some(name) => (name.to_owned(), from),
                    None => (String::new(), None),
                };
                let start = match from {
                    Some(_) => base(from)?,
                    None => LogSettings::default(),
                };
                Some((Kind::Defaults, name, start))
            }
            "frontend" | "listen" | "backend" => {
                let name = words.get(1).cloned().ok_or_else(|| ConfigError {
                    line,
                    problem: format!("{first} needs a name"),
                })?;
                let kind = if first == "backend" {
                    Kind::Other
                } else {
                    Kind::Proxy
                };
                Some((kind, name, base(from)?))
            }
            _ if is_section => Some((Kind::Other, String::new(), LogSettings::default())),
            _ => None,
        };
        if let Some(s) = opened {
            have_defaults |= s.0 == Kind::Defaults;
            section = Some(s);
            continue;
        }
        let Some((Kind::Defaults | Kind::Proxy, _, set)) = section.as_mut() else {
            continue;
        };
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["mode", mode, ..] => {
                set.http = *mode == "http";
                // `option httplog` set before `mode tcp` logs as tcplog too: re-check below.
                if !set.http {
                    if let Some((f, _)) = set.format.as_mut() {
                        if matches!(
                            Builtin::of_format(f),
                            Some(Builtin::HttpLog | Builtin::HttpLogClf)
                        ) {
                            *f = Builtin::TcpLog.format().to_owned();
                        }
                    }
                }
            }
            ["log-format", rest @ ..] if !rest.is_empty() => {
                set.format = Some((rest.join(" "), line));
            }
            ["option", "httplog", "clf", ..] => {
                set.format = Some((option_format(set.http, Builtin::HttpLogClf), line))
            }
            ["option", "httplog", ..] => set.format = Some((option_format(set.http, Builtin::HttpLog), line)),
            ["option", "httpslog", ..] => {
                set.format = Some((option_format(set.http, Builtin::HttpsLog), line))
            }
            ["option", "tcplog", ..] => set.format = Some((Builtin::TcpLog.format().to_owned(), line)),
            ["no", "option", "httplog" | "httpslog" | "tcplog", ..] | ["no", "log-format", ..] => {
                set.format = None
            }
            _ => {}
        }
    }
    close(section.take(), &mut named, &mut last_defaults, &mut out);
    if have_defaults {
        out.default = last_defaults.format;
    }
    Ok(out)
}

/// An HTTP `option` in a proxy of `mode tcp` logs as `option tcplog`.
fn option_format(http: bool, b: Builtin) -> String {
    if http { b } else { Builtin::TcpLog }.format().to_owned()
}

/// Reads a configuration into a [`FormatSet`].
pub fn format_set(text: &str) -> Result<FormatSet, ConfigError> {
    read(text)?.into_set()
}

/// Splits one configuration line into words as HAProxy does: blanks separate words; `"..."`
/// keeps blanks and reads backslash escapes; `'...'` keeps everything verbatim; outside
/// quotes a backslash escapes the next character (`\ `, `\#`, `\"`); an unquoted `#` ends the
/// line. `\t`, `\n`, `\r` and `\xHH` are read outside single quotes.
pub fn words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut in_word = false;
    let b = line.as_bytes();
    let mut i = 0;
    let (mut squote, mut dquote) = (false, false);
    while i < b.len() {
        let c = b[i];
        if squote {
            if c == b'\'' {
                squote = false;
            } else {
                cur.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                let Some(&e) = b.get(i + 1) else {
                    return Err("a backslash ends the line");
                };
                i += 2;
                in_word = true;
                match e {
                    b't' => cur.push(b'\t'),
                    b'n' => cur.push(b'\n'),
                    b'r' => cur.push(b'\r'),
                    b'x' => {
                        let hex = b.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                        let v = std::str::from_utf8(hex)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or("\\x needs two hex digits")?;
                        cur.push(v);
                        i += 2;
                    }
                    _ => cur.push(e),
                }
                continue;
            }
            b'"' => {
                dquote = !dquote;
                in_word = true;
            }
            b'\'' if !dquote => {
                squote = true;
                in_word = true;
            }
            b' ' | b'\t' if !dquote => {
                if in_word {
                    out.push(String::from_utf8(std::mem::take(&mut cur)).map_err(|_| "invalid UTF-8")?);
                    in_word = false;
                }
            }
            b'#' if !dquote => break,
            _ => {
                cur.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    if squote || dquote {
        return Err("unclosed quote");
    }
    if in_word {
        out.push(String::from_utf8(cur).map_err(|_| "invalid UTF-8")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_haproxy_quoting() {
        assert_eq!(
            words("  log-format  %T\\ %t  # note").unwrap(),
            ["log-format", "%T %t"]
        );
        assert_eq!(
            words(r#"log-format "{\"ci\":\"%ci\"}""#).unwrap(),
            ["log-format", r#"{"ci":"%ci"}"#]
        );
        assert_eq!(
            words(r"log-format '%ci \ x'").unwrap(),
            ["log-format", r"%ci \ x"]
        );
        assert_eq!(words(r#"a"b c"d"#).unwrap(), ["ab cd"]);
        assert_eq!(words(r"a\x41\#b").unwrap(), ["aA#b"]);
        assert_eq!(words("say \"open").unwrap_err(), "unclosed quote");
        assert!(words("").unwrap().is_empty());
    }

    const CFG: &str = r#"
global
    log 127.0.0.1:514 local0

defaults base
    mode http
    option httplog

frontend plain
    bind :80

frontend custom
    bind :81
    log-format "%ci %ST %{+Q}r"

listen lst from base
    bind :82
    option httplog clf

defaults
    mode tcp
    option httplog

frontend tcpfe
    bind :83

frontend cleared
    bind :84
    no option httplog

frontend again from base
    bind :85
    log-format %ci\ %ST
    option httpslog

backend be
    log-format "%ci nothing"
"#;

    #[test]
    fn sections_inherit_as_haproxy_does() {
        let c = read(CFG).unwrap();
        let get = |fe: &str| {
            c.frontends
                .iter()
                .find(|(f, ..)| f == fe)
                .map(|(_, f, l)| (f.as_str(), *l))
        };
        assert_eq!(get("plain"), Some((Builtin::HttpLog.format(), 7)));
        assert_eq!(get("custom"), Some(("%ci %ST %{+Q}r", 14)));
        assert_eq!(get("lst"), Some((Builtin::HttpLogClf.format(), 18)));
        // `option httplog` in a tcp defaults section logs as tcplog.
        assert_eq!(get("tcpfe"), Some((Builtin::TcpLog.format(), 22)));
        assert_eq!(get("cleared"), None);
        assert_eq!(get("again"), Some((Builtin::HttpsLog.format(), 34)));
        assert_eq!(get("be"), None);
        assert_eq!(c.default, Some((Builtin::TcpLog.format().to_owned(), 22)));
        let set = c.into_set().unwrap();
        assert_eq!(set.formats().count(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let e = read("defaults\n  log-format \"%ci\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = format_set("frontend f\n  log-format %ci\\ %Zz\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("%Zz"), "{e}");
        let e = read("frontend f from nowhere\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
