//! HAProxy's own `log-format` language, compiled once into a parser of the lines it writes.
//!
//! [`LogFormat::compile`] turns a format string (`%ci:%cp [%tr] %ft ...`, as it stands after
//! `log-format` in `haproxy.cfg`) into a list of steps: literal bytes and variables, each
//! variable already bound to the column it fills (its target). [`LogFormat::parse`] walks the
//! steps over a message with no regex engine and no allocation: a variable's value ends at its
//! closing quote (`%{+Q}`), at its fixed width (dates), or where the next literal starts.
//! [`FormatSet`] holds the formats of several frontends and picks one per line.
//!
//! What HAProxy 2.6 prints, checked against its `doc/configuration.txt` §8.2.6 and real lines:
//! flags `Q` (quote strings; numbers, dates and termination states are never quoted), `X` (hex
//! for addresses, ports, `%Ts`, `%rt`, `%pid`) and `E` (backslash before `"`, `\`, `]`), set
//! per variable (`%{+Q}r`) or for all that follow (`%{+Q}o`); 2.6 has no `+json`/`+cbor`, so a
//! JSON layout is literal text around quoted variables. A space in the format is a separator:
//! runs of them merge, and an absent capture block (`%hr`, `%hs`, ...) takes its separator with
//! it. An absent value is `-` (or `""` when quoted).

mod parse;
mod set;
#[cfg(test)]
mod tests;

pub use set::{FormatSet, Formats};

use std::fmt;

/// A format string that cannot be compiled: the offending `%` item and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log-format {item:?}: {problem}")]
pub struct FormatError {
    /// The `%` item (`%Tx`, `%{+Z}ci`, `%[`...), as written.
    pub item: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// The variables of HAProxy 2.6's "Custom log format" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Var {
    Bytes,
    ReqCookie,
    RespCookie,
    Hostname,
    Method,
    UriPath,
    PathOnly,
    Query,
    Uri,
    Version,
    UniqueId,
    Status,
    DateGmt,
    Ta,
    Tc,
    Td,
    DateLocal,
    Th,
    Ti,
    Tq,
    TR,
    Tr,
    Timestamp,
    Tt,
    Tu,
    Tw,
    Uploaded,
    ActConn,
    Backend,
    BeConn,
    BackendIp,
    BackendPort,
    BackendQueue,
    ClientIp,
    ClientPort,
    Frontend,
    FeConn,
    FrontendIp,
    FrontendPort,
    FrontendTransport,
    LogCounter,
    ReqHeaders,
    ReqHeadersList,
    RespHeaders,
    RespHeadersList,
    Millis,
    Pid,
    Request,
    Retries,
    RequestCounter,
    Server,
    SrvConn,
    ServerIp,
    ServerPort,
    SrvQueue,
    SslCipher,
    SslVersion,
    Date,
    ReqDate,
    ReqDateGmt,
    ReqDateLocal,
    TermState,
    TermStateCookie,
    /// `%[expression]`.
    Sample,
}

/// How a variable's value is printed, which decides whether `Q` quotes it and how wide it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A string: quoted under `Q`, `-` when absent.
    Text,
    /// An address: quoted under `Q` unless printed in hex.
    Ip,
    /// A number, never quoted.
    Number,
    /// `dd/Mon/yyyy:HH:MM:SS.mmm`, 24 bytes.
    DateMs,
    /// `dd/Mon/yyyy:HH:MM:SS +hhmm`, 26 bytes.
    DateZone,
    /// A termination state, never quoted.
    Flags,
    /// A capture block `{a|b}`; absent when nothing is captured.
    Block,
    /// Captured values separated by spaces (CLF style); absent when nothing is captured.
    List,
}

/// `(name, variable, shape, HTTP only)`, as the manual's table lists them.
const VARS: &[(&str, Var, Shape, bool)] = &[
    ("B", Var::Bytes, Shape::Number, false),
    ("CC", Var::ReqCookie, Shape::Text, true),
    ("CS", Var::RespCookie, Shape::Text, true),
    ("H", Var::Hostname, Shape::Text, false),
    ("HM", Var::Method, Shape::Text, true),
    ("HP", Var::UriPath, Shape::Text, true),
    ("HPO", Var::PathOnly, Shape::Text, true),
    ("HQ", Var::Query, Shape::Text, true),
    ("HU", Var::Uri, Shape::Text, true),
    ("HV", Var::Version, Shape::Text, true),
    ("ID", Var::UniqueId, Shape::Text, false),
    ("ST", Var::Status, Shape::Number, true),
    ("T", Var::DateGmt, Shape::DateZone, false),
    ("Ta", Var::Ta, Shape::Number, true),
    ("Tc", Var::Tc, Shape::Number, false),
    ("Td", Var::Td, Shape::Number, false),
    ("Tl", Var::DateLocal, Shape::DateZone, false),
    ("Th", Var::Th, Shape::Number, false),
    ("Ti", Var::Ti, Shape::Number, true),
    ("Tq", Var::Tq, Shape::Number, true),
    ("TR", Var::TR, Shape::Number, true),
    ("Tr", Var::Tr, Shape::Number, true),
    ("Ts", Var::Timestamp, Shape::Number, false),
    ("Tt", Var::Tt, Shape::Number, false),
    ("Tu", Var::Tu, Shape::Number, false),
    ("Tw", Var::Tw, Shape::Number, false),
    ("U", Var::Uploaded, Shape::Number, false),
    ("ac", Var::ActConn, Shape::Number, false),
    ("b", Var::Backend, Shape::Text, false),
    ("bc", Var::BeConn, Shape::Number, false),
    ("bi", Var::BackendIp, Shape::Ip, false),
    ("bp", Var::BackendPort, Shape::Number, false),
    ("bq", Var::BackendQueue, Shape::Number, false),
    ("ci", Var::ClientIp, Shape::Ip, false),
    ("cp", Var::ClientPort, Shape::Number, false),
    ("f", Var::Frontend, Shape::Text, false),
    ("fc", Var::FeConn, Shape::Number, false),
    ("fi", Var::FrontendIp, Shape::Ip, false),
    ("fp", Var::FrontendPort, Shape::Number, false),
    ("ft", Var::FrontendTransport, Shape::Text, false),
    ("lc", Var::LogCounter, Shape::Number, false),
    ("hr", Var::ReqHeaders, Shape::Block, true),
    ("hrl", Var::ReqHeadersList, Shape::List, true),
    ("hs", Var::RespHeaders, Shape::Block, true),
    ("hsl", Var::RespHeadersList, Shape::List, true),
    ("ms", Var::Millis, Shape::Number, false),
    ("pid", Var::Pid, Shape::Number, false),
    ("r", Var::Request, Shape::Text, true),
    ("rc", Var::Retries, Shape::Number, false),
    ("rt", Var::RequestCounter, Shape::Number, false),
    ("s", Var::Server, Shape::Text, false),
    ("sc", Var::SrvConn, Shape::Number, false),
    ("si", Var::ServerIp, Shape::Ip, false),
    ("sp", Var::ServerPort, Shape::Number, false),
    ("sq", Var::SrvQueue, Shape::Number, false),
    ("sslc", Var::SslCipher, Shape::Text, false),
    ("sslv", Var::SslVersion, Shape::Text, false),
    ("t", Var::Date, Shape::DateMs, false),
    ("tr", Var::ReqDate, Shape::DateMs, true),
    ("trg", Var::ReqDateGmt, Shape::DateZone, true),
    ("trl", Var::ReqDateLocal, Shape::DateZone, true),
    ("ts", Var::TermState, Shape::Flags, false),
    ("tsc", Var::TermStateCookie, Shape::Flags, true),
];

/// Where a variable's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    ClientIp,
    ClientPort,
    /// The accept date, with its precision and zone.
    AcceptDate(Shape),
    /// `%Ts`: seconds since the epoch.
    EpochSecs,
    /// `%ms`: milliseconds added to a date printed without them.
    Millis,
    FrontendTransport,
    Frontend,
    Backend,
    Server,
    /// One of the five timers, in log order.
    Timer(u8),
    Status,
    Bytes,
    ReqCookie,
    RespCookie,
    TermState,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    SrvQueue,
    BackendQueue,
    ReqHeaders,
    RespHeaders,
    Request,
    Method,
    /// A URI with its query (`%HU`): split at `?`.
    Uri,
    Path,
    /// `%HQ`: the query with its `?`.
    Query,
    Version,
    TlsVersion,
    TlsCipher,
    TlsSni,
    TlsFcErr,
    TlsSslFcErr,
    TlsCErr,
    TlsCaErr,
    TlsResumed,
    /// The n-th entry of `fields`.
    Field(u8),
    /// Read and dropped (a variable repeated).
    Skip,
}

/// One compiled variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarStep {
    pub var: Var,
    pub shape: Shape,
    pub target: Target,
    /// Printed between quotes.
    pub quoted: bool,
    /// `E`: `"`, `\` and `]` carry a backslash.
    pub escaped: bool,
    /// `X`: printed in hex.
    pub hex: bool,
    /// How the value's end is found, decided from the shape and the step after it.
    pub end: End,
    /// A capture block or list, which HAProxy leaves out when nothing is captured.
    pub optional: bool,
}

/// How a value's end is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// At its closing quote (`E`: one without a backslash before it).
    Quoted { escaped: bool },
    /// A capture block `{...}` (quoted: `"{...}"`), at its closing brace.
    Block { quoted: bool },
    /// A date of fixed width.
    Fixed(usize),
    /// A number followed by a literal: after its digits (and a leading `+` or `-`), where the
    /// literal must follow; anything else is read as [`End::Literal`].
    Digits,
    /// Where the next literal starts.
    Literal,
    /// An address before a `:` literal: at the last colon of its word (IPv6).
    IpColon,
    /// A request line before a literal opening with a space: at that literal after the
    /// line's own two spaces.
    Request,
    /// Followed by a variable: at the next space.
    Space,
    /// The last step: the rest of the message.
    Rest,
}

impl End {
    /// How a value of `v` followed by `next` ends.
    fn of(v: &VarStep, next: Option<&Step>) -> End {
        if v.quoted && v.shape != Shape::List {
            return match v.shape {
                Shape::Block => End::Block { quoted: true },
                _ => End::Quoted { escaped: v.escaped },
            };
        }
        match (v.shape, next) {
            (Shape::Block, _) => End::Block { quoted: false },
            (Shape::DateMs, _) => End::Fixed(24),
            (Shape::DateZone, _) => End::Fixed(26),
            (_, None) => End::Rest,
            (_, Some(Step::Var(_))) => End::Space,
            (Shape::Ip, Some(Step::Lit(l))) if l.bytes[0] == b':' => End::IpColon,
            (Shape::Number, Some(Step::Lit(_))) if !v.hex => End::Digits,
            (_, Some(Step::Lit(l))) if v.var == Var::Request && l.bytes[0] == b' ' => End::Request,
            (_, Some(Step::Lit(_))) => End::Literal,
        }
    }
}

/// Literal bytes of a format, with their first eight bytes as a masked word: most literals are
/// a few bytes (`/`, ` `, `" port=`), and one compare of a word beats a call to `memcmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Literal {
    pub bytes: Box<[u8]>,
    /// Ends in a separator.
    pub ends_in_space: bool,
    head: u64,
    mask: u64,
}

impl Literal {
    pub(crate) fn new(bytes: Vec<u8>) -> Literal {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        Literal {
            ends_in_space: bytes.ends_with(b" "),
            bytes: bytes.into_boxed_slice(),
            head: u64::from_le_bytes(word),
            mask,
        }
    }

    /// `hay` starts with these bytes.
    #[inline(always)]
    pub(crate) fn at(&self, hay: &[u8]) -> bool {
        match hay.first_chunk::<8>() {
            Some(w) => {
                u64::from_le_bytes(*w) & self.mask == self.head
                    && (self.bytes.len() <= 8 || hay.get(8..self.bytes.len()) == Some(&self.bytes[8..]))
            }
            None => hay.starts_with(&self.bytes),
        }
    }
}

/// A step of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Bytes that must be there (a separator is one space).
    Lit(Literal),
    /// A value.
    Var(VarStep),
}

/// A variable and the literal after it, which the parser handles together (the literal ends
/// the value, so it is found once). A capture block keeps its literal apart: when the block is
/// absent, HAProxy leaves out the separator too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub var: Option<VarStep>,
    pub lit: Option<Literal>,
    /// For a capture block: the literal after it, which ends the value but is matched by the
    /// next part.
    pub bound: Option<Literal>,
}

impl Part {
    fn pair(steps: &[Step]) -> Box<[Part]> {
        let mut parts = Vec::with_capacity(steps.len());
        let mut k = 0;
        while let Some(step) = steps.get(k) {
            k += 1;
            parts.push(match step {
                Step::Lit(l) => Part {
                    var: None,
                    lit: Some(l.clone()),
                    bound: None,
                },
                Step::Var(v) => {
                    let next = match steps.get(k) {
                        Some(Step::Lit(l)) => Some(l.clone()),
                        _ => None,
                    };
                    let (lit, bound) = if v.optional {
                        (None, next)
                    } else {
                        k += usize::from(next.is_some());
                        (next, None)
                    };
                    Part {
                        var: Some(v.clone()),
                        lit,
                        bound,
                    }
                }
            });
        }
        parts.into_boxed_slice()
    }
}

/// Whether a format's lines are HTTP requests or TCP sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Has an HTTP-only variable (`%ST`, `%r`, `%HM`, `%TR`, ...): `requests` table.
    Http,
    /// None: `tcp` table.
    Tcp,
}

/// HAProxy's built-in layouts, as `log-format` strings (HAProxy 2.6's `option ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `option httplog`.
    HttpLog,
    /// `option httplog clf`.
    HttpLogClf,
    /// `option httpslog`.
    HttpsLog,
    /// `option tcplog`.
    TcpLog,
}

impl Builtin {
    /// Every built-in layout.
    pub const ALL: [Builtin; 4] = [
        Builtin::HttpLog,
        Builtin::HttpLogClf,
        Builtin::HttpsLog,
        Builtin::TcpLog,
    ];

    /// The format string HAProxy 2.6 uses for it.
    pub fn format(self) -> &'static str {
        match self {
            Builtin::HttpLog => {
                "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
            }
            Builtin::HttpLogClf => {
                "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"
            }
            Builtin::HttpsLog => {
                "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r %[fc_err]/%[ssl_fc_err,hex]/%[ssl_c_err]/%[ssl_c_ca_err]/%[ssl_fc_is_resumed] %[ssl_fc_sni]/%sslv/%sslc"
            }
            Builtin::TcpLog => "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq",
        }
    }

    /// The name of the `option` that selects it.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::HttpLog => "httplog",
            Builtin::HttpLogClf => "httplog clf",
            Builtin::HttpsLog => "httpslog",
            Builtin::TcpLog => "tcplog",
        }
    }

    /// The built-in layout whose format string is exactly `format`.
    pub fn of_format(format: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.format() == format)
    }
}

/// A compiled `log-format`. Built once per process; its field names are leaked to `'static`
/// so that records can name them without a lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct LogFormat {
    source: String,
    /// The steps, as written.
    pub(crate) steps: Box<[Step]>,
    /// The same steps paired for the parser: each variable with the literal after it.
    pub(crate) parts: Box<[Part]>,
    pub(crate) names: &'static [&'static str],
    pub(crate) layout: Layout,
    /// Has `%ft` or `%f`: a line names its frontend.
    pub(crate) names_frontend: bool,
    /// Has a date variable; without one the syslog header's time is used.
    pub(crate) has_date: bool,
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFormat")
            .field("source", &self.source)
            .field("layout", &self.layout)
            .field("fields", &self.names)
            .finish()
    }
}

/// The flags `Q`, `X`, `E` in force for a variable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags {
    quote: bool,
    hex: bool,
    escape: bool,
}

impl Flags {
    /// Applies `+Q,-X,...` (the text between the braces).
    fn apply(mut self, spec: &str, item: &str) -> Result<Flags, FormatError> {
        for f in spec.split(',').filter(|f| !f.is_empty()) {
            let on = match f.as_bytes()[0] {
                b'+' => true,
                b'-' => false,
                _ => return Err(error(item, "a flag is +X or -X")),
            };
            match &f[1..] {
                "Q" => self.quote = on,
                "X" => self.hex = on,
                "E" => self.escape = on,
                _ => return Err(error(item, "unknown flag (HAProxy 2.6 has Q, X and E)")),
            }
        }
        Ok(self)
    }
}

fn error(item: &str, problem: &'static str) -> FormatError {
    FormatError {
        item: item.to_owned(),
        problem,
    }
}

/// A variable as written, before its target is chosen.
struct Parsed {
    var: Var,
    shape: Shape,
    http: bool,
    flags: Flags,
    /// The field name: the expression of `%[...]`, else the variable's letters.
    name: String,
}

impl LogFormat {
    /// Compiles a format string: the text after `log-format` in `haproxy.cfg` once the
    /// configuration's quoting is undone (see [`crate::haproxy::config::words`]).
    pub fn compile(source: &str) -> Result<LogFormat, FormatError> {
        let mut lit: Vec<u8> = Vec::new();
        let mut items: Vec<Result<Parsed, Vec<u8>>> = Vec::new();
        let mut global = Flags::default();
        let b = source.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    let start = i;
                    i += 1;
                    if b.get(i) == Some(&b'%') {
                        lit.push(b'%');
                        i += 1;
                        continue;
                    }
                    let mut flags = global;
                    let mut spec = None;
                    if b.get(i) == Some(&b'{') {
                        let close = source[i..]
                            .find('}')
                            .ok_or_else(|| error(&source[start..], "unclosed {"))?;
                        spec = Some(&source[i + 1..i + close]);
                        i += close + 1;
                    }
                    let (name, var, shape, http) = if b.get(i) == Some(&b'[') {
                        let close = sample_end(&b[i..])
                            .ok_or_else(|| error(&source[start..], "unclosed %[ expression"))?;
                        let expr = source[i + 1..i + close].trim();
                        i += close + 1;
                        if expr.is_empty() {
                            return Err(error(&source[start..i], "empty %[] expression"));
                        }
                        (expr.to_owned(), Var::Sample, Shape::Text, false)
                    } else {
                        let len = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                        let name = &source[i..i + len];
                        i += len;
                        if name.is_empty() {
                            return Err(error(
                                &source[start..i.min(b.len())],
                                "a variable name must follow %",
                            ));
                        }
                        if name == "o" {
                            if let Some(spec) = spec {
                                global = global.apply(spec, &source[start..i])?;
                            }
                            continue;
                        }
                        let &(n, var, shape, http) = VARS
                            .iter()
                            .find(|(n, ..)| *n == name)
                            .ok_or_else(|| error(&source[start..i], "unknown variable"))?;
                        (n.to_owned(), var, shape, http)
                    };
                    if let Some(spec) = spec {
                        flags = flags.apply(spec, &source[start..i])?;
                    }
                    if !lit.is_empty() {
                        items.push(Err(std::mem::take(&mut lit)));
                    }
                    items.push(Ok(Parsed {
                        var,
                        shape,
                        http,
                        flags,
                        name,
                    }));
                }
                // A separator: runs merge, and none leads the line. `\ ` is one too, as a
                // format copied from haproxy.cfg writes it.
                b' ' | b'\\' if b[i] == b' ' || b.get(i + 1) == Some(&b' ') => {
                    let after_space = lit.last() == Some(&b' ') || (lit.is_empty() && items.is_empty());
                    if !after_space {
                        lit.push(b' ');
                    }
                    i += if b[i] == b' ' { 1 } else { 2 };
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            items.push(Err(lit));
        }
        Self::bind(source, items)
    }

    /// Chooses each variable's target: a column when it has one that no better variable
    /// claims, else an entry of `fields`.
    fn bind(source: &str, items: Vec<Result<Parsed, Vec<u8>>>) -> Result<LogFormat, FormatError> {
        let present: Vec<Var> = items
            .iter()
            .filter_map(|it| it.as_ref().ok().map(|p| p.var))
            .collect();
        let has = |v: Var| present.contains(&v);
        let layout = if items.iter().any(|it| matches!(it, Ok(p) if p.http)) {
            Layout::Http
        } else {
            Layout::Tcp
        };
        let http = layout == Layout::Http;
        // The accept date: the request's own date first, then the session's, then %Ts.
        let date_rank = |v: Var| match v {
            Var::ReqDate | Var::ReqDateGmt | Var::ReqDateLocal => Some(0),
            Var::Date | Var::DateGmt | Var::DateLocal => Some(1),
            Var::Timestamp => Some(2),
            _ => None,
        };
        let best_date = items
            .iter()
            .filter_map(|it| it.as_ref().ok())
            .filter_map(|p| date_rank(p.var).map(|r| (r, p.var)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, v)| v);
        let mut names: Vec<&'static str> = Vec::new();
        let mut seen: Vec<Var> = Vec::new();
        let mut steps = Vec::with_capacity(items.len());
        for it in items {
            let p = match it {
                Err(lit) => {
                    steps.push(Step::Lit(Literal::new(lit)));
                    continue;
                }
                Ok(p) => p,
            };
            let column = match p.var {
                _ if p.var != Var::Sample && seen.contains(&p.var) => Some(Target::Skip),
                Var::ClientIp => Some(Target::ClientIp),
                Var::ClientPort => Some(Target::ClientPort),
                // Every date is the accept date: the most precise one is read, the others skipped.
                v if date_rank(v).is_some() => Some(if best_date == Some(v) {
                    match p.shape {
                        Shape::Number => Target::EpochSecs,
                        s => Target::AcceptDate(s),
                    }
                } else {
                    Target::Skip
                }),
                Var::Millis => Some(Target::Millis),
                Var::FrontendTransport => Some(Target::FrontendTransport),
                Var::Frontend => (!has(Var::FrontendTransport)).then_some(Target::Frontend),
                Var::Backend => Some(Target::Backend),
                Var::Server => Some(Target::Server),
                Var::TR => Some(Target::Timer(0)),
                Var::Tq => (!has(Var::TR)).then_some(Target::Timer(0)),
                Var::Tw => Some(Target::Timer(1)),
                Var::Tc => Some(Target::Timer(2)),
                Var::Tr => Some(Target::Timer(3)),
                Var::Ta => (http || !has(Var::Tt)).then_some(Target::Timer(4)),
                Var::Tt => (!(http && has(Var::Ta))).then_some(Target::Timer(4)),
                Var::Status => Some(Target::Status),
                Var::Bytes => Some(Target::Bytes),
                Var::ReqCookie => Some(Target::ReqCookie),
                Var::RespCookie => Some(Target::RespCookie),
                Var::TermStateCookie => Some(Target::TermState),
                Var::TermState => (!has(Var::TermStateCookie)).then_some(Target::TermState),
                Var::ActConn => Some(Target::ActConn),
                Var::FeConn => Some(Target::FeConn),
                Var::BeConn => Some(Target::BeConn),
                Var::SrvConn => Some(Target::SrvConn),
                Var::Retries => Some(Target::Retries),
                Var::SrvQueue => Some(Target::SrvQueue),
                Var::BackendQueue => Some(Target::BackendQueue),
                Var::ReqHeaders => Some(Target::ReqHeaders),
                Var::RespHeaders => Some(Target::RespHeaders),
                Var::Request => Some(Target::Request),
                Var::Method => (!has(Var::Request)).then_some(Target::Method),
                Var::Uri => (!has(Var::Request)).then_some(Target::Uri),
                Var::UriPath => (!has(Var::Request) && !has(Var::Uri)).then_some(Target::Path),
                Var::PathOnly => {
                    (!has(Var::Request) && !has(Var::Uri) && !has(Var::UriPath)).then_some(Target::Path)
                }
                Var::Query => (!has(Var::Request) && !has(Var::Uri)).then_some(Target::Query),
                Var::Version => (!has(Var::Request)).then_some(Target::Version),
                Var::SslVersion => Some(Target::TlsVersion),
                Var::SslCipher => Some(Target::TlsCipher),
                Var::Sample => match p.name.as_str() {
                    "fc_err" => Some(Target::TlsFcErr),
                    "ssl_fc_err,hex" => Some(Target::TlsSslFcErr),
                    "ssl_c_err" => Some(Target::TlsCErr),
                    "ssl_c_ca_err" => Some(Target::TlsCaErr),
                    "ssl_fc_is_resumed" => Some(Target::TlsResumed),
                    "ssl_fc_sni" => Some(Target::TlsSni),
                    _ => None,
                },
                _ => None,
            };
            let claims_column = !matches!(column, None | Some(Target::Skip));
            if claims_column && p.var != Var::Sample {
                seen.push(p.var);
            }
            let target = match column {
                Some(t) => t,
                None if names.contains(&p.name.as_str()) => Target::Skip,
                None => {
                    if names.len() == parse::MAX_FIELDS {
                        return Err(error(
                            &format!("%{}", p.name),
                            "too many values without a column (at most 32)",
                        ));
                    }
                    names.push(Box::leak(p.name.into_boxed_str()));
                    Target::Field((names.len() - 1) as u8)
                }
            };
            let quotable = match p.shape {
                Shape::Text | Shape::Block | Shape::List => true,
                Shape::Ip => !p.flags.hex,
                _ => false,
            };
            steps.push(Step::Var(VarStep {
                var: p.var,
                shape: p.shape,
                target,
                quoted: quotable && p.flags.quote,
                escaped: p.flags.escape,
                hex: p.flags.hex,
                end: End::Rest,
                optional: matches!(p.shape, Shape::Block | Shape::List),
            }));
        }
        for k in 0..steps.len() {
            let end = match (&steps[k], steps.get(k + 1)) {
                (Step::Var(v), next) => End::of(v, next),
                _ => continue,
            };
            if let Step::Var(v) = &mut steps[k] {
                v.end = end;
            }
        }
        let names_frontend = has(Var::FrontendTransport) || has(Var::Frontend);
        Ok(LogFormat {
            source: source.to_owned(),
            parts: Part::pair(&steps),
            steps: steps.into_boxed_slice(),
            names: Box::leak(names.into_boxed_slice()),
            layout,
            names_frontend,
            has_date: best_date.is_some(),
        })
    }

    /// The format string it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// HTTP or TCP.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The names of the values that go into `fields`, in format order.
    pub fn field_names(&self) -> &'static [&'static str] {
        self.names
    }
}

/// The length of `[expr]` up to its closing `]` (brackets nest, as in `%[var(txn.a[0])]`).
fn sample_end(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in b.iter().enumerate() {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}
