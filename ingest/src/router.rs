//! The router (as in Heroku's logplex): parsed lines in, live tails out, sans I/O. [`Router`]
//! keeps one source per (host, app-name, procid prefix) with a ring of its recent lines (the
//! backlog of `tail -n`) and counters; each [`TailSession`] has its own capped queue that drops
//! its *oldest* line when full and then tells its reader so in band, with logplex's
//! `Error L11 (tail buffer overflow)`.
//!
//! Publishing never waits on a reader: a publisher holds one source's lock and, for each
//! matching tail, that tail's queue lock, just long enough to push a pointer. A reader waits on
//! its own condition variable with no lock held, so a slow tail only loses its own lines, and a
//! noisy source only fills its own ring and the queues of the tails that asked for it.
//!
//! Ordering: lines of one source reach every tail in publish order. Across sources, the backlog
//! is merged in publish order; live lines follow the backlog.
//!
//! Memory: the rings of all sources together hold at most [`RouterConfig::max_bytes`], weighed
//! as what their buffers hold from the allocator (capacity, not just the lines' lengths). Past
//! it the least recently active sources lose their oldest lines first, each keeping its newest
//! [`BUDGET_FLOOR_LINES`] while that fits; what is shed is counted per source. A tail queue
//! is bounded by [`RouterConfig::tail_queue_bytes`] as well as by lines.

use hashbrown::{DefaultHashBuilder, Equivalent, HashMap};
use std::borrow::Cow;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use weir_model::time::format_rfc3339;
use weir_model::{Line, Micros, Record, SyslogHeader};

/// Lines each source keeps of its newest when the rings are over [`RouterConfig::max_bytes`]:
/// sources lose lines down to this floor, least recently active first, before any source is
/// taken below it (then again least recently active first, down to nothing).
pub const BUDGET_FLOOR_LINES: usize = 10;

/// The longest host, app-name or procid prefix kept in a [`SourceKey`], in bytes (RFC 5424's
/// HOSTNAME limit); longer values are cut at a character boundary.
pub const MAX_KEY_PART: usize = 255;

/// The router's limits (the config's `[router]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Lines kept per source for the backlog of new tails (`tail -n`).
    pub recent_lines: usize,
    /// Lines a tail session may hold before it drops its oldest (at least 1).
    pub tail_queue: usize,
    /// Sources tracked at once; the least recently active is evicted past it (at least 1).
    pub max_sources: usize,
    /// Bytes the recent rings of all sources may hold together (their buffers' capacity and
    /// per-line bookkeeping); past it lines are shed as the module docs say.
    pub max_bytes: usize,
    /// Bytes a tail session's queue may hold (each line weighed with its bookkeeping); past it
    /// the oldest line is dropped, as past `tail_queue` lines.
    pub tail_queue_bytes: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            recent_lines: 1500,
            tail_queue: 1024,
            max_sources: 10_000,
            max_bytes: 256 << 20,
            tail_queue_bytes: 512 << 10,
        }
    }
}

/// What a line came from: `(host, app-name, procid prefix)`, e.g. `lb1/haproxy`, `host/app/web.1`.
///
/// The procid prefix is the syslog PROCID with numeric process ids dropped: HAProxy's pid
/// changes on every reload while it stays the same source, whereas Heroku's `web.1` names a
/// dyno, which is a source of its own (and `--ps web` selects all `web.*` dynos).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceKey {
    /// HOSTNAME, empty when the line had none.
    pub host: String,
    /// APP-NAME (the RFC 3164 tag), empty when none.
    pub app: String,
    /// The procid prefix (see the type's doc), empty for none or a numeric pid.
    pub proc_prefix: String,
}

/// A borrowed [`SourceKey`], to look a source up without allocating. Hashes as the owned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceRef<'a> {
    /// HOSTNAME.
    pub host: &'a str,
    /// APP-NAME.
    pub app: &'a str,
    /// Procid prefix.
    pub proc_prefix: &'a str,
}

impl<'a> SourceRef<'a> {
    /// The source of a line with these header fields: the procid is reduced to its prefix
    /// ([`proc_prefix`]) and each part is cut to [`MAX_KEY_PART`] bytes.
    pub fn new(host: Option<&'a str>, app: Option<&'a str>, procid: Option<&'a str>) -> SourceRef<'a> {
        SourceRef {
            host: clip(host.unwrap_or("")),
            app: clip(app.unwrap_or("")),
            proc_prefix: clip(proc_prefix(procid)),
        }
    }

    /// The source of a parsed line's syslog header.
    pub fn from_header(header: &SyslogHeader<'a>) -> SourceRef<'a> {
        SourceRef::new(header.host, header.app, header.procid)
    }

    /// The owned key.
    pub fn to_key(&self) -> SourceKey {
        SourceKey {
            host: self.host.to_owned(),
            app: self.app.to_owned(),
            proc_prefix: self.proc_prefix.to_owned(),
        }
    }
}

impl SourceKey {
    /// The borrowed form, for [`Router::publish`].
    pub fn as_source_ref(&self) -> SourceRef<'_> {
        SourceRef {
            host: &self.host,
            app: &self.app,
            proc_prefix: &self.proc_prefix,
        }
    }
}

impl Equivalent<SourceKey> for SourceRef<'_> {
    fn equivalent(&self, key: &SourceKey) -> bool {
        self.host == key.host && self.app == key.app && self.proc_prefix == key.proc_prefix
    }
}

impl fmt::Display for SourceKey {
    /// `host/app`, then `/proc` when there is a procid prefix; an empty part shows as `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        write!(f, "{}/{}", part(&self.host), part(&self.app))?;
        if !self.proc_prefix.is_empty() {
            write!(f, "/{}", self.proc_prefix)?;
        }
        Ok(())
    }
}

/// The procid prefix of a PROCID: `""` for none, `-`, or a process id (digits, optionally with
/// dotted parts such as a thread number: `13668`, `13668.2`); else the PROCID itself (`web.1`,
/// `router`).
pub fn proc_prefix(procid: Option<&str>) -> &str {
    match procid {
        None | Some("-") => "",
        Some(p)
            if p.starts_with(|c: char| c.is_ascii_digit())
                && p.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            ""
        }
        Some(p) => p,
    }
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_KEY_PART {
        return s;
    }
    let mut end = MAX_KEY_PART;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One routed line: its raw text and the few fields tail filters need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineData {
    /// The line as received, without its framing (shared: a routed line's clones in tail
    /// queues all point at one copy).
    pub raw: Arc<[u8]>,
    /// What routing and tails read of it.
    pub fields: LineFields,
}

/// The fields of a routed line that tails filter and show, without its bytes: a source's
/// recent ring keeps these beside the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineFields {
    /// When weir read it.
    pub received_at: Micros,
    /// The HAProxy backend, for HTTP and TCP logs: see [`LineData::backend`]. `InRaw`
    /// offsets are into the line's bytes.
    backend: BackendName,
    /// The HTTP status, for HTTP logs.
    pub status: Option<u16>,
    /// The total time (Ta, or Tt for TCP) in milliseconds, when logged.
    pub total_ms: Option<i32>,
    /// The syslog severity (0 emergency .. 7 debug), when the line had a PRI.
    pub severity: Option<u8>,
    /// The line was a reject (counted in the source's `rejects`).
    pub rejected: bool,
}

/// Where a [`LineData`]'s backend name is: inside `raw` (the parsed case, no allocation) or
/// held on its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum BackendName {
    #[default]
    None,
    InRaw(u32, u32),
    Owned(Arc<str>),
}

impl LineData {
    /// A line with no parsed fields (an application line, say).
    pub fn new(raw: &[u8], received_at: Micros) -> LineData {
        LineFields {
            received_at,
            ..LineFields::default()
        }
        .with_raw(raw)
    }

    /// The HAProxy backend, for HTTP and TCP logs.
    pub fn backend(&self) -> Option<&str> {
        self.fields.backend(&self.raw)
    }

    /// Sets the backend name.
    pub fn with_backend(mut self, name: &str) -> LineData {
        self.fields.backend = BackendName::Owned(name.into());
        self
    }

    /// The routed form of a parsed line.
    pub fn from_line(line: &Line<'_>, received_at: Micros) -> LineData {
        LineFields::of(line, received_at).with_raw(line.raw)
    }

    /// The raw text, invalid UTF-8 replaced.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.raw)
    }
}

impl LineFields {
    /// The fields of a parsed line, without copying it.
    fn of(line: &Line<'_>, received_at: Micros) -> LineFields {
        let mut f = LineFields {
            received_at,
            ..LineFields::default()
        };
        let backend_in = |name: &str| {
            let start = (name.as_ptr() as usize).wrapping_sub(line.raw.as_ptr() as usize);
            let end = start.wrapping_add(name.len());
            if end <= line.raw.len() && start <= end {
                BackendName::InRaw(start as u32, end as u32)
            } else {
                BackendName::Owned(name.into())
            }
        };
        let r = &line.record;
        f.backend = r.backend().map_or(BackendName::None, backend_in);
        f.status = r.status();
        f.total_ms = r.total_ms();
        f.severity = line.header.severity;
        f.rejected = matches!(r, Record::Reject(_));
        f
    }

    /// Heap bytes the fields hold of their own (a backend name not inside the line).
    fn heap_bytes(&self) -> usize {
        match &self.backend {
            BackendName::Owned(name) => name.len() + 2 * std::mem::size_of::<usize>() + ALLOC_OVERHEAD,
            _ => 0,
        }
    }

    /// The backend name, read from `raw` (the line's bytes) when it sits there.
    fn backend<'a>(&'a self, raw: &'a [u8]) -> Option<&'a str> {
        match &self.backend {
            BackendName::None => None,
            BackendName::InRaw(a, b) => std::str::from_utf8(raw.get(*a as usize..*b as usize)?).ok(),
            BackendName::Owned(name) => Some(name),
        }
    }

    /// The whole line, with a copy of its bytes.
    fn with_raw(self, raw: &[u8]) -> LineData {
        LineData {
            raw: raw.into(),
            fields: self,
        }
    }
}

/// A source's recent lines: their bytes back to back in one circular buffer and, per line, its
/// publish number and fields. Keeping a line copies its bytes in, and once the buffer has grown
/// to its working size nothing is allocated; the oldest line leaves by moving the buffer's
/// start, without touching its (long cold) memory. A line becomes a [`LineData`] of its own
/// only when a tail asks for the backlog.
///
/// Its buffers grow by a quarter at a time (not doubling), so that what they hold from the
/// allocator stays close to what the lines need; [`RecentRing::footprint`] is that memory.
#[derive(Debug, Default)]
struct RecentRing {
    bytes: VecDeque<u8>,
    lines: VecDeque<RecentLine>,
    /// The offset of `bytes[0]`, counted since the ring began.
    front: u64,
    /// Heap bytes the lines' fields hold outside the buffers (backend names of their own).
    outside: usize,
}

/// One line of a [`RecentRing`].
#[derive(Debug)]
struct RecentLine {
    seq: u64,
    /// The offset of its first byte, counted as [`RecentRing::front`] is.
    start: u64,
    len: u32,
    fields: LineFields,
}

/// Bytes the allocator keeps beside each block it hands out (glibc's chunk header, rounded).
const ALLOC_OVERHEAD: usize = 16;

impl RecentRing {
    fn len(&self) -> usize {
        self.lines.len()
    }

    /// The heap memory the ring holds: both buffers' capacity and what its lines hold outside.
    fn footprint(&self) -> usize {
        let block = |cap: usize, size: usize| if cap == 0 { 0 } else { cap * size + ALLOC_OVERHEAD };
        block(self.bytes.capacity(), 1)
            + block(self.lines.capacity(), std::mem::size_of::<RecentLine>())
            + self.outside
    }

    fn pop_oldest(&mut self) -> bool {
        let Some(old) = self.lines.pop_front() else {
            return false;
        };
        self.bytes.drain(..old.len as usize);
        self.front += old.len as u64;
        self.outside -= old.fields.heap_bytes();
        true
    }

    /// Keeps a line, first dropping the oldest ones so that at most `cap` remain.
    fn push(&mut self, seq: u64, raw: &[u8], fields: LineFields, cap: usize) {
        while self.lines.len() >= cap.max(1) && self.pop_oldest() {}
        if cap == 0 {
            return;
        }
        let start = self.front + self.bytes.len() as u64;
        if self.bytes.capacity() - self.bytes.len() < raw.len() {
            self.bytes.reserve_exact(raw.len() + self.bytes.len() / 4 + 256);
        }
        if self.lines.capacity() == self.lines.len() {
            self.lines.reserve_exact(self.lines.len() / 4 + 4);
        }
        self.outside += fields.heap_bytes();
        self.bytes.extend(raw);
        self.lines.push_back(RecentLine {
            seq,
            start,
            len: raw.len() as u32,
            fields,
        });
    }

    /// Drops the oldest lines until at most `keep` remain, and gives back the buffers' spare
    /// room; returns how many lines went.
    fn shed_to(&mut self, keep: usize) -> u64 {
        let mut shed = 0;
        while self.lines.len() > keep && self.pop_oldest() {
            shed += 1;
        }
        if self.lines.is_empty() {
            *self = RecentRing {
                front: self.front,
                ..RecentRing::default()
            };
            return shed;
        }
        let room = |len: usize| len + len / 4;
        if self.bytes.capacity() > room(self.bytes.len()) + 256 {
            self.bytes.shrink_to(room(self.bytes.len()));
        }
        if self.lines.capacity() > room(self.lines.len()) + 4 {
            self.lines.shrink_to(room(self.lines.len()));
        }
        shed
    }

    /// The lines, newest first, with their bytes. Puts the buffer in one piece first (a copy
    /// only when it has wrapped around), so that every line is one slice.
    fn iter_rev(&mut self) -> impl Iterator<Item = (&RecentLine, &[u8])> {
        let bytes: &[u8] = self.bytes.make_contiguous();
        let front = self.front;
        self.lines.iter().rev().map(move |l| {
            let from = (l.start - front) as usize;
            (l, &bytes[from..from + l.len as usize])
        })
    }
}

/// A [`LineData`] shared by the tail queues that want it: cloning is one `Arc` bump (of the raw
/// bytes) and a copy of the few parsed fields. It is made once per line, and only when some
/// tail wants the line; the recent rings keep bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedLine(LineData);

impl From<LineData> for RoutedLine {
    fn from(data: LineData) -> RoutedLine {
        RoutedLine(data)
    }
}

impl Deref for RoutedLine {
    type Target = LineData;
    fn deref(&self) -> &LineData {
        &self.0
    }
}

/// A bad tail filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `--status` was neither a class (`5xx`) nor a code (`503`).
    #[error("bad status filter {0:?}: expected a class such as 5xx or a code such as 503")]
    BadStatus(String),
    /// `--level` was not a syslog severity.
    #[error("bad level {0:?}: expected emerg, alert, crit, err, warning, notice, info, debug or 0-7")]
    BadLevel(String),
}

/// The `--status` of a tail: a class or one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// `5xx`: every status from 500 to 599.
    Class(u8),
    /// `503`: that status only.
    Code(u16),
}

impl StatusFilter {
    /// Whether `status` is selected.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusFilter::Class(c) => status / 100 == u16::from(c),
            StatusFilter::Code(c) => status == c,
        }
    }
}

impl FromStr for StatusFilter {
    type Err = FilterError;

    /// `1xx` to `5xx` (any case), or a code from 100 to 599.
    fn from_str(s: &str) -> Result<StatusFilter, FilterError> {
        let bad = || FilterError::BadStatus(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 3 || !(b'1'..=b'5').contains(&b[0]) {
            return Err(bad());
        }
        if b[1..].eq_ignore_ascii_case(b"xx") {
            return Ok(StatusFilter::Class(b[0] - b'0'));
        }
        s.parse::<u16>().map(StatusFilter::Code).map_err(|_| bad())
    }
}

/// What a tail asks for; every field set must match (an empty filter matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailFilter {
    /// The app-name, exactly.
    pub app: Option<String>,
    /// The host, exactly.
    pub host: Option<String>,
    /// The process: `web.1` exactly, or `web` for every `web.*`.
    pub ps: Option<String>,
    /// The HAProxy backend, exactly.
    pub backend: Option<String>,
    /// The HTTP status class or code.
    pub status: Option<StatusFilter>,
    /// Lines whose total time is at least this many milliseconds.
    pub slow_ms: Option<i32>,
    /// Lines of this syslog severity or a more severe one (`4`, warning, takes 0 to 4); lines
    /// without a PRI do not match.
    pub level: Option<u8>,
}

/// Whether process `name` is `ps` (`web.1`), or of the process type `ps` (`web` for every
/// `web.N`).
fn process_matches(ps: &str, name: &str) -> bool {
    name == ps || name.strip_prefix(ps).is_some_and(|rest| rest.starts_with('.'))
}

/// A tag that names a process, `TYPE.N` (`web.1`, `worker.12`): its type.
fn process_type(tag: &str) -> Option<&str> {
    let (ty, n) = tag.rsplit_once('.')?;
    (!ty.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(ty)
}

/// Reads `--level`: a syslog severity by name (`emerg`, `alert`, `crit`, `err`/`error`,
/// `warning`/`warn`, `notice`, `info`, `debug`) or number (0-7).
pub fn parse_level(s: &str) -> Result<u8, FilterError> {
    const NAMES: [&[&str]; 8] = [
        &["emerg", "emergency", "panic"],
        &["alert"],
        &["crit", "critical"],
        &["err", "error"],
        &["warning", "warn"],
        &["notice"],
        &["info", "informational"],
        &["debug"],
    ];
    let lower = s.trim().to_ascii_lowercase();
    if let Ok(n) = lower.parse::<u8>() {
        if n <= 7 {
            return Ok(n);
        }
    }
    NAMES
        .iter()
        .position(|names| names.contains(&lower.as_str()))
        .map(|n| n as u8)
        .ok_or_else(|| FilterError::BadLevel(s.to_owned()))
}

impl TailFilter {
    /// The part of the filter that depends on the source only.
    ///
    /// Apps name their processes in one of two ways, and both match what a user means: as
    /// Heroku does, the tag is the app and the procid the process (`shop[web.1]`); or the tag
    /// is the process and the procid its pid (`web.1[20117]`). So `--app` matches the tag, or
    /// the type of a `TYPE.N` tag (`web` for `web.1`), and `--ps` matches the procid, or a
    /// `TYPE.N` tag.
    pub fn matches_source(&self, key: &SourceKey) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let tag_type = if key.proc_prefix.is_empty() {
            process_type(&key.app)
        } else {
            None
        };
        self.app
            .as_deref()
            .is_none_or(|app| app == key.app || tag_type == Some(app))
            && eq(&self.host, &key.host)
            && self.ps.as_deref().is_none_or(|ps| {
                process_matches(ps, &key.proc_prefix) || tag_type.is_some() && process_matches(ps, &key.app)
            })
    }

    /// The part of the filter that depends on the line only.
    pub fn matches_line(&self, line: &LineData) -> bool {
        self.matches_fields(&line.fields, &line.raw)
    }

    /// [`TailFilter::matches_line`] on a line's fields and bytes.
    fn matches_fields(&self, line: &LineFields, raw: &[u8]) -> bool {
        self.backend
            .as_deref()
            .is_none_or(|b| line.backend(raw) == Some(b))
            && self
                .status
                .is_none_or(|s| line.status.is_some_and(|st| s.matches(st)))
            && self
                .slow_ms
                .is_none_or(|ms| line.total_ms.is_some_and(|t| t >= ms))
            && self.level.is_none_or(|l| line.severity.is_some_and(|s| s <= l))
    }

    /// Whether a line of this source is selected.
    pub fn matches(&self, key: &SourceKey, line: &LineData) -> bool {
        self.matches_source(key) && self.matches_line(line)
    }
}

/// A source's identity and counters, shared with the entries that carry its lines.
#[derive(Debug)]
struct SourceMeta {
    key: Arc<SourceKey>,
    lines: AtomicU64,
    bytes: AtomicU64,
    rejects: AtomicU64,
    drops: AtomicU64,
    /// Lines shed from its ring to keep the rings within `max_bytes`.
    shed: AtomicU64,
    last_received: AtomicI64,
    /// The router clock at its last line, for LRU eviction and budget shedding.
    last_tick: AtomicU64,
}

/// One line in a ring or queue: its place in publish order, its source, the line.
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    source: Arc<SourceMeta>,
    line: RoutedLine,
}

impl Entry {
    /// What a queued entry holds: its slot, and the line's bytes with their allocation (counted
    /// in full for each queue, though queues share one copy).
    fn weight(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.line.raw.len()
            + 2 * std::mem::size_of::<usize>()
            + ALLOC_OVERHEAD
            + self.line.fields.heap_bytes()
    }
}

/// One source: counters, and behind its lock the recent ring and the tails that want it.
#[derive(Debug)]
struct Source {
    meta: Arc<SourceMeta>,
    state: Mutex<SourceState>,
}

#[derive(Debug)]
struct SourceState {
    recent: RecentRing,
    sessions: Vec<Arc<SessionShared>>,
    /// The ring's footprint as last added to [`Router::recent_bytes`].
    accounted: usize,
    /// The source was evicted: its ring is gone and keeps nothing more.
    evicted: bool,
}

impl SourceState {
    /// Brings the router's total in line with the ring's footprint.
    fn account(&mut self, total: &AtomicUsize) {
        let now = self.recent.footprint();
        if now > self.accounted {
            total.fetch_add(now - self.accounted, SeqCst);
        } else if now < self.accounted {
            total.fetch_sub(self.accounted - now, SeqCst);
        }
        self.accounted = now;
    }
}

/// Wakes an async reader; set with [`TailSession::set_waker`].
type Waker = Arc<dyn Fn() + Send + Sync>;

/// A tail's queue, shared by the publishers and its one reader.
struct SessionShared {
    filter: TailFilter,
    capacity: usize,
    /// Bound on [`Queue::bytes`].
    max_bytes: usize,
    closed: AtomicBool,
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Entry>,
    /// The items' weight ([`Entry::weight`]).
    bytes: usize,
    /// Drops since the reader last got the L11 notice, and when the first of them happened.
    dropped: u64,
    first_drop: Option<Micros>,
    dropped_total: u64,
    waiting: bool,
    waker: Option<Waker>,
}

impl fmt::Debug for SessionShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionShared")
            .field("filter", &self.filter)
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl SessionShared {
    fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Queues a line, dropping the oldest while the queue is full (by lines or by bytes);
    /// returns how many were dropped.
    fn push(&self, entry: Entry, now: Micros) -> u64 {
        let weight = entry.weight();
        let mut q = lock(&self.queue);
        let was_empty = q.items.is_empty() && q.dropped == 0;
        let mut dropped = 0;
        while q.items.len() >= self.capacity || !q.items.is_empty() && q.bytes + weight > self.max_bytes {
            let Some(old) = q.items.pop_front() else {
                break;
            };
            q.bytes -= old.weight();
            old.source.drops.fetch_add(1, Relaxed);
            q.dropped += 1;
            q.dropped_total += 1;
            q.first_drop.get_or_insert(now);
            dropped += 1;
        }
        q.bytes += weight;
        q.items.push_back(entry);
        let notify = q.waiting;
        let waker = if was_empty { q.waker.clone() } else { None };
        drop(q);
        if notify {
            self.ready.notify_one();
        }
        if let Some(w) = waker {
            w();
        }
        dropped
    }

    fn close(&self) {
        self.closed.store(true, Relaxed);
        let waker = {
            let q = lock(&self.queue);
            q.waker.clone()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w();
        }
    }
}

impl Queue {
    /// The L11 notice if lines were dropped since the last one, else the oldest line.
    fn take(&mut self) -> Option<TailItem> {
        if self.dropped > 0 {
            let notice = Overflow {
                dropped: self.dropped,
                since: self.first_drop.take().unwrap_or_default(),
            };
            self.dropped = 0;
            return Some(TailItem::Overflow(notice));
        }
        let e = self.items.pop_front()?;
        self.bytes -= e.weight();
        Some(e.into())
    }
}

/// What a tail reader receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailItem {
    /// A line.
    Line(TailLine),
    /// The in-band notice that lines were dropped (logplex's L11).
    Overflow(Overflow),
}

impl From<Entry> for TailItem {
    fn from(e: Entry) -> TailItem {
        TailItem::Line(TailLine {
            source: e.source.key.clone(),
            line: e.line,
        })
    }
}

impl fmt::Display for TailItem {
    /// A line's text, or the notice.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailItem::Line(l) => f.write_str(&l.line.text()),
            TailItem::Overflow(o) => o.fmt(f),
        }
    }
}

/// A line delivered to a tail, with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// Where it came from.
    pub source: Arc<SourceKey>,
    /// The line.
    pub line: RoutedLine,
}

/// `dropped` lines were lost from a full tail queue, the first of them at `since` (the
/// `received_at` of the line whose arrival pushed it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// How many lines were dropped.
    pub dropped: u64,
    /// When the first was dropped.
    pub since: Micros,
}

impl Overflow {
    /// The notice a drain sends in band (logplex's L10): `Error L10 (output buffer overflow): N
    /// messages dropped since 2026-11-22T01:22:06.958000Z`.
    pub fn drain_notice(&self) -> String {
        format!(
            "Error L10 (output buffer overflow): {} messages dropped since {}",
            self.dropped,
            format_rfc3339(self.since)
        )
    }
}

impl fmt::Display for Overflow {
    /// `Error L11 (tail buffer overflow): N messages dropped since 2026-11-22T01:22:06.958000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error L11 (tail buffer overflow): {} messages dropped since {}",
            self.dropped,
            format_rfc3339(self.since)
        )
    }
}

/// Why [`TailSession::recv_timeout`] returned without an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived in time.
    #[error("no line within the timeout")]
    Timeout,
    /// The session was closed and everything queued has been read.
    #[error("tail session closed")]
    Closed,
}

/// A tail's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailStats {
    /// Lines waiting in the queue (backlog not counted).
    pub queued: usize,
    /// Their weight, as bounded by `tail_queue_bytes`.
    pub queued_bytes: usize,
    /// Lines dropped from the queue since the session began.
    pub dropped: u64,
}

/// A live tail: first the backlog, then live lines through a capped drop-oldest queue. Closed
/// (and unsubscribed) when dropped.
#[derive(Debug)]
pub struct TailSession {
    shared: Arc<SessionShared>,
    backlog: VecDeque<Entry>,
}

impl TailSession {
    /// The filter this tail was opened with.
    pub fn filter(&self) -> &TailFilter {
        &self.shared.filter
    }

    /// The next item if one is ready: a backlog line, then the L11 notice if lines were
    /// dropped, then the oldest queued line.
    pub fn try_recv(&mut self) -> Option<TailItem> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e.into());
        }
        lock(&self.shared.queue).take()
    }

    /// The next item, waiting up to `timeout` for one. A closed session first yields what it
    /// had queued, then [`RecvError::Closed`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<TailItem, RecvError> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e.into());
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut q = lock(&self.shared.queue);
        loop {
            if let Some(item) = q.take() {
                return Ok(item);
            }
            if self.shared.is_closed() {
                return Err(RecvError::Closed);
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => w,
                    _ => return Err(RecvError::Timeout),
                },
                None => Duration::from_secs(3600),
            };
            q.waiting = true;
            q = self
                .shared
                .ready
                .wait_timeout(q, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            q.waiting = false;
        }
    }

    /// Moves up to `max` ready items into `out` without waiting; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<TailItem>, max: usize) -> usize {
        let before = out.len();
        while out.len() - before < max {
            match self.backlog.pop_front() {
                Some(e) => out.push(e.into()),
                None => break,
            }
        }
        if out.len() - before < max {
            let mut q = lock(&self.shared.queue);
            while out.len() - before < max {
                match q.take() {
                    Some(item) => out.push(item),
                    None => break,
                }
            }
        }
        out.len() - before
    }

    /// Calls `waker` (outside any lock) whenever the queue goes from empty to non-empty and
    /// when the session is closed: the hook for an async reader.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        lock(&self.shared.queue).waker = Some(Arc::new(waker));
    }

    /// A handle that closes this session from another thread, waking a blocked reader.
    pub fn closer(&self) -> TailCloser {
        TailCloser(self.shared.clone())
    }

    /// Stops delivery to this session; queued items can still be read.
    pub fn close(&self) {
        self.shared.close();
    }

    /// The queue's counters.
    pub fn stats(&self) -> TailStats {
        let q = lock(&self.shared.queue);
        TailStats {
            queued: q.items.len(),
            queued_bytes: q.bytes,
            dropped: q.dropped_total,
        }
    }
}

impl Drop for TailSession {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Closes a [`TailSession`] from elsewhere (client gone, shutdown).
#[derive(Debug, Clone)]
pub struct TailCloser(Arc<SessionShared>);

impl TailCloser {
    /// Closes the session and wakes its reader.
    pub fn close(&self) {
        self.0.close();
    }
}

/// One source's counters, for `/api/sources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStats {
    /// The source.
    pub key: SourceKey,
    /// Lines published.
    pub lines: u64,
    /// Bytes of those lines.
    pub bytes: u64,
    /// Of those lines, how many were rejects.
    pub rejects: u64,
    /// Its lines dropped from full tail queues.
    pub drops: u64,
    /// Lines shed from its recent ring to keep the rings within `max_bytes`.
    pub shed: u64,
    /// The `received_at` of its last line.
    pub last_received: Micros,
    /// Lines in its recent ring.
    pub recent: usize,
    /// Heap bytes its recent ring holds, as counted against `max_bytes`.
    pub recent_bytes: usize,
}

/// The router's counters. Line counters include sources evicted since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterStats {
    /// Sources tracked now.
    pub sources: usize,
    /// Open tail sessions.
    pub sessions: usize,
    /// Lines published.
    pub lines: u64,
    /// Bytes published.
    pub bytes: u64,
    /// Rejected lines published.
    pub rejects: u64,
    /// Lines dropped from full tail queues.
    pub drops: u64,
    /// Sources evicted to stay within `max_sources`.
    pub evictions: u64,
    /// Lines shed from recent rings to stay within `max_bytes`.
    pub shed: u64,
    /// Heap bytes the recent rings hold now, as counted against `max_bytes`.
    pub recent_bytes: usize,
}

#[derive(Debug, Default)]
struct Totals {
    lines: AtomicU64,
    bytes: AtomicU64,
    rejects: AtomicU64,
    drops: AtomicU64,
    evictions: AtomicU64,
    shed: AtomicU64,
}

/// The logplex-style router. Share it behind an `Arc`: every method takes `&self`.
///
/// ```
/// use weir_ingest::router::{LineData, Router, RouterConfig, SourceRef, TailFilter};
///
/// let router = Router::new(RouterConfig::default());
/// let lb1 = SourceRef::new(Some("lb1"), Some("haproxy"), Some("13668"));
/// router.publish(lb1, LineData::new(b"first", 0).into());
/// let mut tail = router.subscribe(TailFilter::default(), 10);
/// router.publish(lb1, LineData::new(b"second", 0).into());
/// assert_eq!(tail.try_recv().unwrap().to_string(), "first");
/// assert_eq!(tail.try_recv().unwrap().to_string(), "second");
/// assert_eq!(router.sources()[0].key.to_string(), "lb1/haproxy");
/// ```
#[derive(Debug)]
pub struct Router {
    recent_lines: AtomicUsize,
    tail_queue: AtomicUsize,
    max_sources: AtomicUsize,
    max_bytes: AtomicUsize,
    tail_queue_bytes: AtomicUsize,
    /// The rings' footprints, summed ([`SourceState::accounted`]).
    recent_bytes: AtomicUsize,
    /// Held by the one publisher that sheds lines at a time; the others go on publishing.
    shedding: Mutex<()>,
    /// Looked up once per routed line: foldhash (randomly seeded per process) rather than
    /// SipHash, which cost more than the rest of the lookup.
    sources: RwLock<HashMap<SourceKey, Arc<Source>, DefaultHashBuilder>>,
    /// Every open session, so that a new source starts with the tails that want it.
    sessions: Mutex<Vec<Arc<SessionShared>>>,
    /// Publish order, also the LRU clock.
    clock: AtomicU64,
    totals: Totals,
}

impl Router {
    /// A router with these limits.
    pub fn new(config: RouterConfig) -> Router {
        Router {
            recent_lines: AtomicUsize::new(config.recent_lines),
            tail_queue: AtomicUsize::new(config.tail_queue.max(1)),
            max_sources: AtomicUsize::new(config.max_sources.max(1)),
            max_bytes: AtomicUsize::new(config.max_bytes),
            tail_queue_bytes: AtomicUsize::new(config.tail_queue_bytes),
            recent_bytes: AtomicUsize::new(0),
            shedding: Mutex::new(()),
            sources: RwLock::new(HashMap::with_hasher(DefaultHashBuilder::default())),
            sessions: Mutex::new(Vec::new()),
            clock: AtomicU64::new(0),
            totals: Totals::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> RouterConfig {
        RouterConfig {
            recent_lines: self.recent_lines.load(Relaxed),
            tail_queue: self.tail_queue.load(Relaxed),
            max_sources: self.max_sources.load(Relaxed),
            max_bytes: self.max_bytes.load(Relaxed),
            tail_queue_bytes: self.tail_queue_bytes.load(Relaxed),
        }
    }

    /// Changes the limits of a running router (a config reload): rings grow or shrink as
    /// their sources next publish, a lower `max_bytes` sheds at the next line, new tails get
    /// the new queue sizes (open ones keep theirs), and a lower source cap evicts as new
    /// sources arrive.
    pub fn set_config(&self, config: RouterConfig) {
        self.recent_lines.store(config.recent_lines, Relaxed);
        self.tail_queue.store(config.tail_queue.max(1), Relaxed);
        self.max_sources.store(config.max_sources.max(1), Relaxed);
        self.max_bytes.store(config.max_bytes, Relaxed);
        self.tail_queue_bytes.store(config.tail_queue_bytes, Relaxed);
    }

    /// Routes one line of `source`: counts it, keeps it in the source's recent ring and queues
    /// it for every matching tail. Never waits on a reader.
    pub fn publish(&self, source: SourceRef<'_>, line: RoutedLine) {
        let (fields, raw) = (line.fields.clone(), line.raw.clone());
        self.route(source, &raw, fields, Some(line));
    }

    /// [`Router::publish`] of a parsed line, read at `received_at`: the line is copied only
    /// into its source's ring, and into one shared allocation when a tail wants it.
    pub fn publish_line(&self, source: SourceRef<'_>, line: &Line<'_>, received_at: Micros) {
        self.route(source, line.raw, LineFields::of(line, received_at), None);
    }

    fn route(&self, source: SourceRef<'_>, raw: &[u8], fields: LineFields, routed: Option<RoutedLine>) {
        let src = self.source(source);
        let meta = &src.meta;
        let bytes = raw.len() as u64;
        meta.lines.fetch_add(1, Relaxed);
        meta.bytes.fetch_add(bytes, Relaxed);
        meta.last_received.store(fields.received_at, Relaxed);
        self.totals.lines.fetch_add(1, Relaxed);
        self.totals.bytes.fetch_add(bytes, Relaxed);
        if fields.rejected {
            meta.rejects.fetch_add(1, Relaxed);
            self.totals.rejects.fetch_add(1, Relaxed);
        }
        let now = fields.received_at;
        let mut st = lock(&src.state);
        // Taken under the source lock, so one source's lines are numbered in ring order.
        let seq = self.clock.fetch_add(1, Relaxed);
        meta.last_tick.store(seq, Relaxed);
        let mut any_closed = false;
        let mut routed = routed;
        for session in &st.sessions {
            if session.is_closed() {
                any_closed = true;
                continue;
            }
            if !session.filter.matches_fields(&fields, raw) {
                continue;
            }
            let line = routed.get_or_insert_with(|| fields.clone().with_raw(raw).into());
            let entry = Entry {
                seq,
                source: meta.clone(),
                line: line.clone(),
            };
            let dropped = session.push(entry, now);
            if dropped > 0 {
                self.totals.drops.fetch_add(dropped, Relaxed);
            }
        }
        if any_closed {
            st.sessions.retain(|s| !s.is_closed());
        }
        if st.evicted {
            return;
        }
        let recent_lines = self.recent_lines.load(Relaxed);
        st.recent.push(seq, raw, fields, recent_lines);
        st.account(&self.recent_bytes);
        drop(st);
        // A publisher that finds another shedding leaves the work to it: the shedder looks
        // again once it is done, so a line that grew a ring meanwhile is not left over budget.
        while self.recent_bytes.load(SeqCst) > self.max_bytes.load(Relaxed) && self.shed() {}
    }

    /// Brings the rings back within `max_bytes`, with room to spare (a sixteenth of it) so
    /// that the next pass is some lines away: the least recently active sources (oldest last
    /// line) lose their oldest lines down to [`BUDGET_FLOOR_LINES`] each, and if that is not
    /// enough, down to none, in the same order. False when another publisher is shedding.
    fn shed(&self) -> bool {
        let Ok(_one_at_a_time) = self.shedding.try_lock() else {
            return false;
        };
        self.shed_pass();
        true
    }

    fn shed_pass(&self) {
        let max = self.max_bytes.load(Relaxed);
        let target = max - max / 16;
        // A snapshot: a source that speaks meanwhile is only shed by what it held then.
        let mut by_activity: Vec<(u64, Arc<Source>)> = read(&self.sources)
            .values()
            .map(|s| (s.meta.last_tick.load(Relaxed), s.clone()))
            .collect();
        by_activity.sort_unstable_by_key(|(tick, _)| *tick);
        let floor = BUDGET_FLOOR_LINES.min(self.recent_lines.load(Relaxed));
        for keep in [floor, 0] {
            for (_, src) in &by_activity {
                if self.recent_bytes.load(SeqCst) <= target {
                    return;
                }
                let mut st = lock(&src.state);
                let shed = st.recent.shed_to(keep);
                st.account(&self.recent_bytes);
                drop(st);
                if shed > 0 {
                    src.meta.shed.fetch_add(shed, Relaxed);
                    self.totals.shed.fetch_add(shed, Relaxed);
                }
            }
        }
    }

    /// Tail sessions open now (closed ones are counted until the next line or subscription
    /// sweeps them).
    pub fn session_count(&self) -> usize {
        let mut registry = lock(&self.sessions);
        registry.retain(|s| !s.is_closed());
        registry.len()
    }

    /// Opens a tail: the last `backlog` matching lines still in the recent rings (oldest
    /// first), then every matching line published from now on.
    pub fn subscribe(&self, filter: TailFilter, backlog: usize) -> TailSession {
        let (lines, bytes) = (self.tail_queue.load(Relaxed), self.tail_queue_bytes.load(Relaxed));
        self.subscribe_capped(filter, backlog, lines, bytes)
    }

    /// [`Router::subscribe`] with a queue of its own size, `capacity` lines and `max_bytes`
    /// (a drain's buffer), rather than `tail_queue` and `tail_queue_bytes`.
    pub fn subscribe_capped(
        &self,
        filter: TailFilter,
        backlog: usize,
        capacity: usize,
        max_bytes: usize,
    ) -> TailSession {
        let shared = Arc::new(SessionShared {
            filter,
            capacity: capacity.max(1),
            max_bytes,
            closed: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        // The newest `backlog` matching entries, as a min-heap on publish order.
        let mut newest: BinaryHeap<std::cmp::Reverse<BySeq>> = BinaryHeap::new();
        {
            // Holding the map's read lock keeps new sources out until the session is registered:
            // a source created later copies it from `self.sessions`.
            let map = read(&self.sources);
            {
                let mut registry = lock(&self.sessions);
                registry.retain(|s| !s.is_closed());
                registry.push(shared.clone());
            }
            for src in map.values() {
                if !shared.filter.matches_source(&src.meta.key) {
                    continue;
                }
                let mut st = lock(&src.state);
                for (l, raw) in st.recent.iter_rev() {
                    if newest.len() == backlog && newest.peek().is_none_or(|m| m.0 .0.seq >= l.seq) {
                        break;
                    }
                    if shared.filter.matches_fields(&l.fields, raw) {
                        newest.push(std::cmp::Reverse(BySeq(Entry {
                            seq: l.seq,
                            source: src.meta.clone(),
                            line: l.fields.clone().with_raw(raw).into(),
                        })));
                        if newest.len() > backlog {
                            newest.pop();
                        }
                    }
                }
                // In the same critical section as the backlog read: no line is missed or doubled.
                st.sessions.push(shared.clone());
            }
        }
        let mut lines: Vec<Entry> = newest.into_iter().map(|r| r.0 .0).collect();
        lines.sort_unstable_by_key(|e| e.seq);
        TailSession {
            shared,
            backlog: lines.into(),
        }
    }

    /// Every tracked source with its counters, sorted by key.
    pub fn sources(&self) -> Vec<SourceStats> {
        let srcs: Vec<Arc<Source>> = read(&self.sources).values().cloned().collect();
        let mut out: Vec<SourceStats> = srcs
            .iter()
            .map(|s| {
                let m = &s.meta;
                let st = lock(&s.state);
                SourceStats {
                    key: (*m.key).clone(),
                    lines: m.lines.load(Relaxed),
                    bytes: m.bytes.load(Relaxed),
                    rejects: m.rejects.load(Relaxed),
                    drops: m.drops.load(Relaxed),
                    shed: m.shed.load(Relaxed),
                    last_received: m.last_received.load(Relaxed),
                    recent: st.recent.len(),
                    recent_bytes: st.accounted,
                }
            })
            .collect();
        out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The router's counters.
    pub fn stats(&self) -> RouterStats {
        let t = &self.totals;
        RouterStats {
            sources: read(&self.sources).len(),
            sessions: lock(&self.sessions).iter().filter(|s| !s.is_closed()).count(),
            lines: t.lines.load(Relaxed),
            bytes: t.bytes.load(Relaxed),
            rejects: t.rejects.load(Relaxed),
            drops: t.drops.load(Relaxed),
            evictions: t.evictions.load(Relaxed),
            shed: t.shed.load(Relaxed),
            recent_bytes: self.recent_bytes.load(Relaxed),
        }
    }

    /// The source for `key`, created (evicting the least recently active one if the table is
    /// full) when it is new.
    fn source(&self, key: SourceRef<'_>) -> Arc<Source> {
        if let Some(s) = read(&self.sources).get(&key) {
            return s.clone();
        }
        let mut map = write(&self.sources);
        if let Some(s) = map.get(&key) {
            return s.clone();
        }
        while map.len() >= self.max_sources.load(Relaxed) {
            // A linear scan, only when a new source arrives at the cap: no per-line LRU upkeep.
            let victim = map
                .iter()
                .min_by_key(|(_, s)| s.meta.last_tick.load(Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(victim) = victim.and_then(|k| map.remove(&k)) {
                // A publisher may still hold it: it then routes to tails but keeps nothing.
                let mut st = lock(&victim.state);
                st.evicted = true;
                st.recent = RecentRing::default();
                st.account(&self.recent_bytes);
                self.totals.evictions.fetch_add(1, Relaxed);
            }
        }
        let owned = key.to_key();
        let sessions: Vec<Arc<SessionShared>> = lock(&self.sessions)
            .iter()
            .filter(|s| !s.is_closed() && s.filter.matches_source(&owned))
            .cloned()
            .collect();
        let src = Arc::new(Source {
            meta: Arc::new(SourceMeta {
                key: Arc::new(owned.clone()),
                lines: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                rejects: AtomicU64::new(0),
                drops: AtomicU64::new(0),
                shed: AtomicU64::new(0),
                last_received: AtomicI64::new(0),
                last_tick: AtomicU64::new(self.clock.load(Relaxed)),
            }),
            state: Mutex::new(SourceState {
                recent: RecentRing::default(),
                sessions,
                accounted: 0,
                evicted: false,
            }),
        });
        map.insert(owned, src.clone());
        src
    }
}

/// An entry ordered by publish order only.
struct BySeq(Entry);

impl PartialEq for BySeq {
    fn eq(&self, other: &Self) -> bool {
        self.0.seq == other.0.seq
    }
}
impl Eq for BySeq {}
impl PartialOrd for BySeq {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for BySeq {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.seq.cmp(&other.0.seq)
    }
}

// A panic while a lock was held cannot leave a ring or queue half-updated in a way that
// matters (each update is one push or pop), so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;
    use std::sync::atomic::AtomicUsize;

    const T0: Micros = 1_795_310_526_958_000; // 2026-11-22T01:22:06.958000Z

    fn src<'a>(host: &'a str, app: &'a str, procid: Option<&'a str>) -> SourceRef<'a> {
        SourceRef::new(Some(host), Some(app), procid)
    }

    fn text(raw: &str, at: Micros) -> RoutedLine {
        LineData::new(raw.as_bytes(), at).into()
    }

    fn http(raw: &str, backend: &str, status: u16, total_ms: i32) -> RoutedLine {
        LineFields {
            received_at: T0,
            status: Some(status),
            total_ms: Some(total_ms),
            rejected: false,
            ..LineFields::default()
        }
        .with_raw(raw.as_bytes())
        .with_backend(backend)
        .into()
    }

    /// Everything ready, rendered.
    fn drain(tail: &mut TailSession) -> Vec<String> {
        let mut items = Vec::new();
        tail.drain_into(&mut items, usize::MAX);
        items.iter().map(ToString::to_string).collect()
    }

    fn config(recent_lines: usize, tail_queue: usize, max_sources: usize) -> RouterConfig {
        RouterConfig {
            recent_lines,
            tail_queue,
            max_sources,
            tail_queue_bytes: usize::MAX,
            ..RouterConfig::default()
        }
    }

    #[test]
    fn router_and_sessions_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Router>();
        send_sync::<TailSession>();
        send_sync::<TailCloser>();
        send_sync::<RoutedLine>();
    }

    #[test]
    fn source_keys_drop_pids_and_keep_dynos() {
        let k = src("lb1", "haproxy", Some("13668"));
        assert_eq!(k.proc_prefix, "");
        assert_eq!(k.to_key().to_string(), "lb1/haproxy");
        let k = src("host", "app", Some("web.1"));
        assert_eq!(k.to_key().to_string(), "host/app/web.1");
        assert_eq!(proc_prefix(Some("13668.2")), "");
        assert_eq!(proc_prefix(Some("-")), "");
        assert_eq!(proc_prefix(Some("router")), "router");
        assert_eq!(SourceRef::new(None, None, None).to_key().to_string(), "-/-");
        let long = "é".repeat(200);
        assert_eq!(SourceRef::new(Some(&long), None, None).host.len(), 254);
        let header = SyslogHeader {
            host: Some("lb1"),
            app: Some("haproxy"),
            procid: Some("7"),
            ..Default::default()
        };
        assert_eq!(SourceRef::from_header(&header), src("lb1", "haproxy", None));
    }

    #[test]
    fn recent_ring_keeps_the_newest_lines_whole_across_wraparound() {
        let mut ring = RecentRing::default();
        let line = |i: u64| format!("line {i} {}", "x".repeat((i * 7 % 13) as usize));
        for i in 0..1000u64 {
            let fields = LineFields {
                received_at: i as Micros,
                ..LineFields::default()
            };
            ring.push(i, line(i).as_bytes(), fields, 7);
            let got: Vec<(u64, Vec<u8>)> = ring
                .iter_rev()
                .map(|(l, raw)| {
                    assert_eq!(l.fields.received_at, l.seq as Micros);
                    (l.seq, raw.to_vec())
                })
                .collect();
            let want: Vec<(u64, Vec<u8>)> = (i.saturating_sub(6)..=i)
                .rev()
                .map(|k| (k, line(k).into_bytes()))
                .collect();
            assert_eq!(got, want, "after line {i}");
        }
        ring.push(1000, b"none kept", LineFields::default(), 0);
        assert_eq!(ring.len(), 0);
    }

    #[test]
    fn publish_line_routes_what_publish_routes() {
        let opts = crate::ParseOptions::default();
        let raw = b"<134>Nov 22 01:22:06 lb1 haproxy[1]: 10.0.0.1:5000 [22/Nov/2026:01:22:06.958] fe be/s1 0/0/1/2/3 503 10 - - ---- 1/1/0/0/0 0/0 \"GET /a HTTP/1.1\"";
        let line = crate::parse_line(raw, &opts);
        let (a, b) = (Router::new(config(10, 10, 10)), Router::new(config(10, 10, 10)));
        let filter = TailFilter {
            backend: Some("be".into()),
            status: Some(StatusFilter::Class(5)),
            ..TailFilter::default()
        };
        let (mut ta, mut tb) = (a.subscribe(filter.clone(), 0), b.subscribe(filter, 0));
        a.publish(
            SourceRef::from_header(&line.header),
            LineData::from_line(&line, T0).into(),
        );
        b.publish_line(SourceRef::from_header(&line.header), &line, T0);
        let (la, lb) = (ta.try_recv(), tb.try_recv());
        assert!(la.is_some());
        assert_eq!(la, lb);
        let backlog = |r: &Router| r.subscribe(TailFilter::default(), 5).try_recv();
        assert_eq!(backlog(&a), backlog(&b));
        assert!(backlog(&a).is_some());
    }

    #[test]
    fn borrowed_and_owned_keys_hash_alike() {
        let state = DefaultHashBuilder::default();
        let r = src("lb1", "haproxy", Some("x.1"));
        assert_eq!(state.hash_one(r), state.hash_one(r.to_key()));
        assert_eq!(r.to_key().as_source_ref(), r);
    }

    #[test]
    fn status_filter_parses_classes_and_codes() {
        assert_eq!("5xx".parse(), Ok(StatusFilter::Class(5)));
        assert_eq!("4XX".parse(), Ok(StatusFilter::Class(4)));
        assert_eq!("503".parse(), Ok(StatusFilter::Code(503)));
        for bad in ["6xx", "50", "5000", "x03", "5x3", "", "-1"] {
            assert_eq!(
                bad.parse::<StatusFilter>(),
                Err(FilterError::BadStatus(bad.to_owned())),
                "{bad}"
            );
        }
        assert!(StatusFilter::Class(5).matches(599) && !StatusFilter::Class(5).matches(600));
        assert!(StatusFilter::Code(503).matches(503) && !StatusFilter::Code(503).matches(502));
    }

    #[test]
    fn filters_match_source_and_line_fields() {
        let web1 = src("h", "app", Some("web.1")).to_key();
        let web12 = src("h", "app", Some("web.12")).to_key();
        let webx = src("h", "app", Some("webx.1")).to_key();
        let ps = |p: &str| TailFilter {
            ps: Some(p.to_owned()),
            ..TailFilter::default()
        };
        assert!(ps("web").matches_source(&web1) && ps("web").matches_source(&web12));
        assert!(!ps("web").matches_source(&webx));
        assert!(ps("web.1").matches_source(&web1) && !ps("web.1").matches_source(&web12));
        let lb = src("lb1", "haproxy", Some("1")).to_key();
        assert!(!ps("web").matches_source(&lb));
        // The other convention: the tag is the process, the procid its pid.
        let tagged = src("app1", "web.1", Some("20117")).to_key();
        let app_ps = |a: &str, p: &str| TailFilter {
            app: Some(a.to_owned()),
            ps: Some(p.to_owned()),
            ..TailFilter::default()
        };
        assert!(
            app_ps("web", "web.1").matches_source(&tagged) && app_ps("web.1", "web").matches_source(&tagged)
        );
        assert!(
            !app_ps("web", "web.2").matches_source(&tagged)
                && !app_ps("worker", "web.1").matches_source(&tagged)
        );
        let heroku = src("host", "shop", Some("web.1")).to_key();
        assert!(
            app_ps("shop", "web").matches_source(&heroku) && !app_ps("web", "web.1").matches_source(&heroku)
        );
        assert!(!ps("1").matches_source(&tagged), "a pid is not a process name");
        let by_host = TailFilter {
            host: Some("lb1".into()),
            app: Some("haproxy".into()),
            ..Default::default()
        };
        assert!(by_host.matches_source(&lb) && !by_host.matches_source(&web1));

        let ok = http("a", "be_app", 200, 12);
        let err = http("b", "be_app", 503, 3000);
        let plain = text("c", T0);
        assert!(TailFilter::default().matches(&lb, &plain));
        let f = TailFilter {
            status: Some(StatusFilter::Class(5)),
            ..Default::default()
        };
        assert!(f.matches_line(&err) && !f.matches_line(&ok) && !f.matches_line(&plain));
        let f = TailFilter {
            slow_ms: Some(1000),
            ..Default::default()
        };
        assert!(f.matches_line(&err) && !f.matches_line(&ok) && !f.matches_line(&plain));
        let f = TailFilter {
            backend: Some("be_app".into()),
            status: Some(StatusFilter::Code(200)),
            ..Default::default()
        };
        assert!(f.matches_line(&ok) && !f.matches_line(&err) && !f.matches_line(&plain));
        let f = TailFilter {
            backend: Some("be_other".into()),
            ..Default::default()
        };
        assert!(!f.matches_line(&ok));
    }

    #[test]
    fn line_data_from_parsed_lines() {
        let opts = crate::ParseOptions::default();
        let raw = b"<134>Nov 22 01:23:07 lb-test haproxy[13668]: 127.0.0.1:59732 [22/Nov/2026:01:23:07.610] \
            fe_http be_nosrv/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 \"GET /down HTTP/1.1\"";
        let line = crate::parse_line(raw, &opts);
        let data = LineData::from_line(&line, T0);
        assert_eq!(&*data.raw, &raw[..]);
        assert_eq!(
            (data.backend(), data.fields.status, data.fields.total_ms),
            (Some("be_nosrv"), Some(503), Some(0))
        );
        assert!(!data.fields.rejected);
        assert_eq!(
            SourceRef::from_header(&line.header).to_key().to_string(),
            "lb-test/haproxy"
        );
        let junk = crate::parse_line(b"\xff\xfe", &opts);
        assert!(LineData::from_line(&junk, T0).fields.rejected);
    }

    #[test]
    fn backlog_is_the_newest_matching_lines_in_publish_order_then_live() {
        let router = Router::new(config(5, 100, 10));
        let (a, b) = (src("h", "a", None), src("h", "b", None));
        for i in 0..8 {
            router.publish(a, text(&format!("a{i}"), T0));
            if i % 2 == 0 {
                router.publish(b, text(&format!("b{i}"), T0));
            }
        }
        // Rings keep 5 lines each: a3..a7, b0..b6.
        let mut all = router.subscribe(TailFilter::default(), 4);
        assert_eq!(drain(&mut all), ["a5", "a6", "b6", "a7"]);
        let mut only_b = router.subscribe(
            TailFilter {
                app: Some("b".into()),
                ..Default::default()
            },
            100,
        );
        assert_eq!(drain(&mut only_b), ["b0", "b2", "b4", "b6"]);
        let mut whole = router.subscribe(TailFilter::default(), 100);
        assert_eq!(
            drain(&mut whole),
            ["b0", "b2", "a3", "a4", "b4", "a5", "a6", "b6", "a7"]
        );
        let mut none = router.subscribe(TailFilter::default(), 0);
        assert_eq!(drain(&mut none), Vec::<String>::new());

        router.publish(b, text("b-live", T0));
        router.publish(a, text("a-live", T0));
        assert_eq!(drain(&mut all), ["b-live", "a-live"]);
        assert_eq!(drain(&mut only_b), ["b-live"]);
        assert_eq!(drain(&mut none), ["b-live", "a-live"]);
        let stats = router.sources();
        assert_eq!(
            stats.iter().map(|s| (s.lines, s.recent)).collect::<Vec<_>>(),
            [(9, 5), (5, 5)]
        );
    }

    #[test]
    fn backlog_applies_line_filters() {
        let router = Router::new(RouterConfig::default());
        let lb = src("lb1", "haproxy", Some("1"));
        for (i, status) in [200, 503, 200, 502, 404, 500].into_iter().enumerate() {
            router.publish(lb, http(&format!("r{i} {status}"), "be", status, 10));
        }
        let f = TailFilter {
            status: Some("5xx".parse().expect("5xx")),
            ..Default::default()
        };
        let mut tail = router.subscribe(f, 2);
        assert_eq!(drain(&mut tail), ["r3 502", "r5 500"]);
        router.publish(lb, http("r6 200", "be", 200, 10));
        router.publish(lb, http("r7 504", "be", 504, 10));
        assert_eq!(drain(&mut tail), ["r7 504"]);
    }

    #[test]
    fn levels_by_name_or_number_keep_lines_as_severe_or_more() {
        assert_eq!(parse_level("warn"), Ok(4));
        assert_eq!(parse_level("WARNING"), Ok(4));
        assert_eq!(parse_level("err"), Ok(3));
        assert_eq!(parse_level("7"), Ok(7));
        assert_eq!(parse_level("8"), Err(FilterError::BadLevel("8".into())));
        assert_eq!(parse_level("loud"), Err(FilterError::BadLevel("loud".into())));
        let warn = TailFilter {
            level: Some(4),
            ..Default::default()
        };
        let at = |severity| LineFields {
            severity,
            ..LineFields::default()
        };
        assert!(warn.matches_fields(&at(Some(3)), b"") && warn.matches_fields(&at(Some(4)), b""));
        assert!(!warn.matches_fields(&at(Some(6)), b"") && !warn.matches_fields(&at(None), b""));
    }

    #[test]
    fn full_queue_drops_oldest_and_says_l11_first() {
        let router = Router::new(config(0, 3, 10));
        let lb = src("lb1", "haproxy", None);
        let mut tail = router.subscribe(TailFilter::default(), 0);
        for i in 0..5 {
            router.publish(lb, text(&format!("l{i}"), T0 + i * 1_000_000));
        }
        assert_eq!((tail.stats().queued, tail.stats().dropped), (3, 2));
        assert_eq!(
            tail.try_recv().map(|i| i.to_string()).as_deref(),
            Some("Error L11 (tail buffer overflow): 2 messages dropped since 2026-11-22T01:22:09.958000Z")
        );
        assert_eq!(drain(&mut tail), ["l2", "l3", "l4"]);
        assert_eq!(tail.try_recv(), None);
        router.publish(lb, text("l5", T0));
        assert_eq!(drain(&mut tail), ["l5"], "no notice without a new drop");
        for i in 6..10 {
            router.publish(lb, text(&format!("l{i}"), T0 + 100_000_000));
        }
        let items = drain(&mut tail);
        assert_eq!(
            items[0],
            "Error L11 (tail buffer overflow): 1 messages dropped since 2026-11-22T01:23:46.958000Z"
        );
        assert_eq!(items[1..], ["l7", "l8", "l9"]);
        assert_eq!(tail.stats().dropped, 3);
        assert_eq!(router.sources()[0].drops, 3);
        assert_eq!(router.stats().drops, 3);
    }

    #[test]
    fn overflow_notice_is_an_item_of_its_own() {
        let o = TailItem::Overflow(Overflow {
            dropped: 1,
            since: T0,
        });
        assert_eq!(
            o.to_string(),
            "Error L11 (tail buffer overflow): 1 messages dropped since 2026-11-22T01:22:06.958000Z"
        );
    }

    #[test]
    fn noisy_source_does_not_starve_a_quiet_one() {
        const FLOOD: u64 = 1_000_000;
        const QUIET: u64 = 100;
        let router = Router::new(RouterConfig::default());
        let (flood, quiet) = (src("lb1", "haproxy", None), src("app1", "web", Some("web.1")));
        let mut flood_tail = router.subscribe(
            TailFilter {
                app: Some("haproxy".into()),
                ..Default::default()
            },
            0,
        );
        let mut quiet_tail = router.subscribe(
            TailFilter {
                ps: Some("web".into()),
                ..Default::default()
            },
            0,
        );
        let quiet_lines = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..FLOOD {
                    router.publish(flood, text(&format!("flood {i}"), T0 + i as Micros));
                }
            });
            s.spawn(|| {
                for i in 0..QUIET {
                    router.publish(quiet, text(&format!("quiet {i}"), T0 + i as Micros));
                }
            });
            // The quiet tail's reader runs alongside both publishers.
            let reader = s.spawn(|| {
                let mut got = Vec::new();
                while got.len() < QUIET as usize {
                    match quiet_tail.recv_timeout(Duration::from_secs(60)) {
                        Ok(item) => got.push(item.to_string()),
                        Err(e) => panic!("quiet tail: {e} after {} lines", got.len()),
                    }
                }
                got
            });
            reader.join().expect("reader")
        });
        assert_eq!(
            quiet_lines,
            (0..QUIET).map(|i| format!("quiet {i}")).collect::<Vec<_>>()
        );
        assert_eq!(quiet_tail.stats().dropped, 0);

        let cap = RouterConfig::default().tail_queue as u64;
        let first = flood_tail.try_recv().expect("an item").to_string();
        assert_eq!(
            first,
            format!(
                "Error L11 (tail buffer overflow): {} messages dropped since {}",
                FLOOD - cap,
                format_rfc3339(T0 + cap as Micros)
            )
        );
        let rest = drain(&mut flood_tail);
        assert_eq!(rest.len() as u64, cap);
        assert_eq!(rest[0], format!("flood {}", FLOOD - cap));
        assert_eq!(rest[rest.len() - 1], format!("flood {}", FLOOD - 1));

        let stats = router.sources();
        let by_key = |k: &str| stats.iter().find(|s| s.key.to_string() == k).expect(k).clone();
        let (f, q) = (by_key("lb1/haproxy"), by_key("app1/web/web.1"));
        assert_eq!((f.lines, f.drops, f.recent), (FLOOD, FLOOD - cap, 1500));
        assert_eq!((q.lines, q.drops, q.recent), (QUIET, 0, QUIET as usize));
        let totals = router.stats();
        assert_eq!(
            (totals.lines, totals.drops, totals.sources, totals.sessions),
            (FLOOD + QUIET, FLOOD - cap, 2, 2)
        );
    }

    #[test]
    fn least_recently_active_source_is_evicted() {
        let router = Router::new(config(10, 10, 3));
        let mut tail = router.subscribe(
            TailFilter {
                host: Some("b".into()),
                ..Default::default()
            },
            0,
        );
        for h in ["a", "b", "c", "a"] {
            router.publish(src(h, "x", None), text(h, T0));
        }
        router.publish(src("d", "x", None), text("d", T0));
        let hosts = |r: &Router| r.sources().iter().map(|s| s.key.host.clone()).collect::<Vec<_>>();
        assert_eq!(hosts(&router), ["a", "c", "d"]);
        assert_eq!(router.stats().evictions, 1);
        // A returning source starts afresh, and the tails that want it still get its lines.
        router.publish(src("b", "x", None), text("b again", T0));
        assert_eq!(hosts(&router), ["a", "b", "d"]);
        assert_eq!(router.stats().evictions, 2);
        assert_eq!(router.sources()[1].lines, 1);
        assert_eq!(drain(&mut tail), ["b", "b again"]);
        assert_eq!(router.stats().lines, 6);
    }

    #[test]
    fn rejects_and_bytes_are_counted() {
        let router = Router::new(RouterConfig::default());
        let s = src("h", "a", None);
        router.publish(s, text("12345", T0));
        router.publish(
            s,
            LineFields {
                rejected: true,
                ..Default::default()
            }
            .with_raw(b"\xff\xfe")
            .into(),
        );
        let st = &router.sources()[0];
        assert_eq!((st.lines, st.bytes, st.rejects, st.last_received), (2, 7, 1, 0));
        let t = router.stats();
        assert_eq!((t.lines, t.bytes, t.rejects), (2, 7, 1));
    }

    #[test]
    fn recv_timeout_times_out_and_close_wakes_a_blocked_reader() {
        let router = Router::new(RouterConfig::default());
        let mut tail = router.subscribe(TailFilter::default(), 0);
        assert_eq!(tail.recv_timeout(Duration::ZERO), Err(RecvError::Timeout));
        router.publish(src("h", "a", None), text("x", T0));
        assert_eq!(
            tail.recv_timeout(Duration::ZERO).map(|i| i.to_string()),
            Ok("x".to_owned())
        );

        let closer = tail.closer();
        let blocked = std::thread::spawn(move || {
            let r = tail.recv_timeout(Duration::from_secs(600));
            (r, tail)
        });
        closer.close();
        let (r, tail) = blocked.join().expect("reader");
        assert_eq!(r, Err(RecvError::Closed));
        router.publish(src("h", "a", None), text("after close", T0));
        assert_eq!(tail.stats().queued, 0);
        drop(tail);
        assert_eq!(router.stats().sessions, 0);
    }

    #[test]
    fn closed_session_keeps_what_it_had_queued() {
        let router = Router::new(RouterConfig::default());
        let mut tail = router.subscribe(TailFilter::default(), 0);
        router.publish(src("h", "a", None), text("queued", T0));
        tail.close();
        assert_eq!(
            tail.recv_timeout(Duration::from_secs(600)).map(|i| i.to_string()),
            Ok("queued".into())
        );
        assert_eq!(
            tail.recv_timeout(Duration::from_secs(600)),
            Err(RecvError::Closed)
        );
    }

    #[test]
    fn waker_fires_when_the_queue_becomes_non_empty() {
        let router = Router::new(RouterConfig::default());
        let mut tail = router.subscribe(TailFilter::default(), 0);
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        tail.set_waker(move || {
            w.fetch_add(1, Relaxed);
        });
        let s = src("h", "a", None);
        router.publish(s, text("1", T0));
        router.publish(s, text("2", T0));
        assert_eq!(wakes.load(Relaxed), 1);
        assert_eq!(drain(&mut tail).len(), 2);
        router.publish(s, text("3", T0));
        assert_eq!(wakes.load(Relaxed), 2);
        tail.close();
        assert_eq!(wakes.load(Relaxed), 3);
    }

    #[test]
    fn dropped_sessions_are_unsubscribed() {
        let router = Router::new(RouterConfig::default());
        let s = src("h", "a", None);
        router.publish(s, text("0", T0));
        let tail = router.subscribe(TailFilter::default(), 0);
        assert_eq!(router.stats().sessions, 1);
        drop(tail);
        assert_eq!(router.stats().sessions, 0);
        router.publish(s, text("1", T0));
        let src_state = read(&router.sources).get(&s).expect("source").clone();
        assert!(
            lock(&src_state.state).sessions.is_empty(),
            "pruned on the next publish"
        );
    }

    #[test]
    fn subscribing_while_publishing_misses_and_doubles_nothing() {
        let router = Router::new(config(100_000, 100_000, 10));
        let s = src("h", "a", None);
        let n = 20_000;
        let tails = std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..n {
                    router.publish(s, text(&i.to_string(), T0));
                }
            });
            (0..20)
                .map(|_| router.subscribe(TailFilter::default(), usize::MAX))
                .collect::<Vec<_>>()
        });
        for mut t in tails {
            let got: Vec<u64> = drain(&mut t)
                .iter()
                .map(|l| l.parse().expect("a number"))
                .collect();
            assert_eq!(got, (0..n).collect::<Vec<_>>());
        }
    }

    fn budget(recent_lines: usize, max_bytes: usize) -> RouterConfig {
        RouterConfig {
            recent_lines,
            max_bytes,
            ..RouterConfig::default()
        }
    }

    /// What each source's ring holds now, oldest first, by source key.
    fn rings(router: &Router) -> Vec<(String, Vec<String>)> {
        let map = read(&router.sources);
        let mut out: Vec<(String, Vec<String>)> = map
            .iter()
            .map(|(k, s)| {
                let mut st = lock(&s.state);
                let mut lines: Vec<String> = st
                    .recent
                    .iter_rev()
                    .map(|(_, raw)| String::from_utf8_lossy(raw).into_owned())
                    .collect();
                lines.reverse();
                (k.to_string(), lines)
            })
            .collect();
        out.sort();
        out
    }

    /// The router's total is the sum of the rings' footprints, each what its buffers hold.
    fn assert_accounted(router: &Router) {
        let map = read(&router.sources);
        let mut sum = 0;
        for s in map.values() {
            let st = lock(&s.state);
            assert_eq!(st.accounted, st.recent.footprint());
            let payload: usize = st.recent.lines.iter().map(|l| l.len as usize).sum();
            assert!(st.recent.bytes.capacity() >= payload);
            sum += st.accounted;
        }
        assert_eq!(router.recent_bytes.load(Relaxed), sum);
    }

    #[test]
    fn ring_footprint_is_what_its_buffers_hold_and_grows_by_quarters() {
        let mut ring = RecentRing::default();
        assert_eq!(ring.footprint(), 0);
        let line = [b'x'; 200];
        for i in 0..1000 {
            ring.push(i, &line, LineFields::default(), usize::MAX);
        }
        let payload = 200 * 1000;
        let held = ring.bytes.capacity();
        assert!(held >= payload && held <= payload + payload / 4 + 512, "{held}");
        assert_eq!(
            ring.footprint(),
            held + ring.lines.capacity() * std::mem::size_of::<RecentLine>() + 2 * ALLOC_OVERHEAD
        );
        assert_eq!(ring.shed_to(10), 990);
        assert!(
            ring.bytes.capacity() <= 200 * 10 + 200 * 10 / 4 + 256,
            "spare room given back"
        );
        assert_eq!(ring.len(), 10);
        assert_eq!(ring.iter_rev().next().map(|(l, _)| l.seq), Some(999));
        ring.shed_to(0);
        assert_eq!(ring.footprint(), 0);
        // Backend names of their own are counted, and given back with their line.
        let named = LineFields {
            backend: BackendName::Owned("be_app".into()),
            ..LineFields::default()
        };
        ring.push(0, b"a", named, 1);
        assert!(ring.outside > 6);
        ring.push(1, b"b", LineFields::default(), 1);
        assert_eq!(ring.outside, 0);
    }

    #[test]
    fn over_budget_the_least_recently_active_sources_lose_their_oldest_lines_first() {
        let line = |s: &str, i: usize| format!("{s} {i:04} {}", "x".repeat(190));
        // Room for about 100 lines in all.
        let router = Router::new(budget(1500, 100 * 230));
        let (quiet, a, b) = (src("quiet", "x", None), src("a", "x", None), src("b", "x", None));
        for i in 0..30 {
            router.publish(quiet, text(&line("quiet", i), T0));
        }
        for i in 0..400 {
            router.publish(a, text(&line("a", i), T0));
            router.publish(b, text(&line("b", i), T0));
            assert!(router.recent_bytes.load(Relaxed) <= 100 * 230);
            assert_accounted(&router);
        }
        let r = rings(&router);
        let (quiet_ring, a_ring, b_ring) = (&r[2].1, &r[0].1, &r[1].1);
        // The quiet source spoke first, so it went down to its floor first, and kept its newest.
        assert_eq!(
            quiet_ring,
            &(20..30).map(|i| line("quiet", i)).collect::<Vec<_>>()
        );
        // The busy ones share the rest, each keeping its newest lines.
        for (name, ring) in [("a", a_ring), ("b", b_ring)] {
            assert!(ring.len() > BUDGET_FLOOR_LINES, "{name}: {}", ring.len());
            let want: Vec<String> = (400 - ring.len()..400).map(|i| line(name, i)).collect();
            assert_eq!(ring, &want, "{name}");
        }
        let stats = router.sources();
        for s in &stats {
            assert_eq!(s.lines, s.recent as u64 + s.shed, "{}", s.key);
        }
        assert_eq!(router.stats().shed, stats.iter().map(|s| s.shed).sum::<u64>());
        assert_eq!(stats[2].shed, 20);
        // A tail's backlog is what the rings kept.
        let mut tail = router.subscribe(
            TailFilter {
                host: Some("quiet".into()),
                ..TailFilter::default()
            },
            5,
        );
        assert_eq!(
            drain(&mut tail),
            (25..30).map(|i| line("quiet", i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn when_the_floors_do_not_fit_the_least_recently_active_go_below_them() {
        let router = Router::new(budget(1500, 20_000));
        let line = |i: usize| format!("{i:06} {}", "y".repeat(200));
        // 100 sources of 10 lines each: the floors alone are over the budget.
        for i in 0..1000 {
            router.publish(src(&format!("h{:03}", i % 100), "x", None), text(&line(i), T0));
            assert!(router.recent_bytes.load(Relaxed) <= 20_000);
        }
        assert_accounted(&router);
        let r = rings(&router);
        // The most recently active sources keep lines; the least recently active have none.
        let kept: Vec<usize> = r.iter().map(|(_, lines)| lines.len()).collect();
        assert!(kept[99] > 0 && kept[0] == 0, "{kept:?}");
        let first_kept = kept.iter().position(|n| *n > 0).expect("some source keeps lines");
        assert!(kept[first_kept..].iter().all(|n| *n > 0), "{kept:?}");
        assert_eq!(
            router.stats().shed + r.iter().map(|(_, l)| l.len() as u64).sum::<u64>(),
            1000
        );
    }

    #[test]
    fn evicted_sources_and_lower_budgets_give_their_bytes_back() {
        let router = Router::new(config(100, 10, 2));
        for h in ["a", "b", "c"] {
            for i in 0..50 {
                router.publish(
                    src(h, "x", None),
                    text(&format!("{h}{i} {}", "z".repeat(100)), T0),
                );
            }
        }
        assert_eq!(router.stats().evictions, 1);
        assert_accounted(&router);
        let before = router.stats().recent_bytes;
        assert!(before > 2 * 50 * 100);
        router.set_config(RouterConfig {
            max_bytes: before / 4,
            ..router.config()
        });
        router.publish(src("c", "x", None), text("one more", T0));
        assert!(router.stats().recent_bytes <= before / 4);
        assert!(router.stats().shed > 0);
        assert_accounted(&router);
    }

    #[test]
    fn a_tail_queue_over_its_bytes_drops_its_oldest_and_says_l11() {
        let router = Router::new(RouterConfig {
            tail_queue: 1000,
            tail_queue_bytes: 4096,
            ..RouterConfig::default()
        });
        let mut tail = router.subscribe(TailFilter::default(), 0);
        let lb = src("lb1", "haproxy", None);
        let long = |i: usize| format!("{i} {}", "w".repeat(1000));
        for i in 0..10 {
            router.publish(lb, text(&long(i), T0));
        }
        let stats = tail.stats();
        assert!(stats.queued_bytes <= 4096, "{stats:?}");
        assert_eq!(stats.queued as u64 + stats.dropped, 10);
        assert!(stats.queued >= 2, "{stats:?}");
        let items = drain(&mut tail);
        assert!(items[0].starts_with(&format!(
            "Error L11 (tail buffer overflow): {} messages",
            stats.dropped
        )));
        assert_eq!(items[1..], (10 - stats.queued..10).map(long).collect::<Vec<_>>());
        assert_eq!(tail.stats().queued_bytes, 0);
        // A line heavier than the whole queue still gets through, alone.
        router.publish(lb, text(&"v".repeat(10_000), T0));
        assert_eq!(tail.stats().queued, 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any mix of sources, line lengths and limits: the total is the rings' footprints and
        /// stays within the budget, every ring holds its source's newest lines in order, and
        /// every line published is kept, shed, or past `recent_lines`.
        #[test]
        fn rings_stay_within_the_budget_and_keep_each_sources_newest_lines(
            lines in proptest::collection::vec((0usize..12, 0usize..600), 1..600),
            recent_lines in 1usize..40,
            max_bytes in 0usize..40_000,
        ) {
            let router = Router::new(budget(recent_lines, max_bytes));
            let mut sent: Vec<Vec<String>> = vec![Vec::new(); 12];
            for (n, (source, len)) in lines.iter().enumerate() {
                let raw = format!("{n} {}", "q".repeat(*len));
                router.publish(src(&format!("s{source:02}"), "x", None), text(&raw, T0));
                sent[*source].push(raw);
                proptest::prop_assert!(router.recent_bytes.load(Relaxed) <= max_bytes);
            }
            assert_accounted(&router);
            let stats = router.sources();
            for ((key, ring), st) in rings(&router).iter().zip(&stats) {
                let all = &sent[key[1..3].parse::<usize>().unwrap()];
                proptest::prop_assert!(all.ends_with(ring), "{key}");
                proptest::prop_assert!(ring.len() <= recent_lines);
                let past_cap = (all.len() - ring.len()) as u64 - st.shed;
                proptest::prop_assert!(past_cap <= all.len().saturating_sub(recent_lines) as u64);
            }
        }
    }

    #[test]
    fn set_config_applies_to_rings_and_new_tails() {
        let router = Router::new(config(10, 100, 10));
        let src = SourceRef::new(Some("h"), Some("a"), None);
        for i in 0..10 {
            router.publish(
                src,
                LineData {
                    raw: format!("l{i}").into_bytes().into(),
                    ..Default::default()
                }
                .into(),
            );
        }
        router.set_config(config(3, 2, 10));
        assert_eq!(router.config(), config(3, 2, 10));
        router.publish(
            src,
            LineData {
                raw: b"l10".as_slice().into(),
                ..Default::default()
            }
            .into(),
        );
        let mut tail = router.subscribe(TailFilter::default(), 100);
        let backlog: Vec<String> = std::iter::from_fn(|| tail.try_recv())
            .map(|i| i.to_string())
            .collect();
        assert_eq!(backlog, vec!["l8", "l9", "l10"]);
        for i in 11..16 {
            router.publish(
                src,
                LineData {
                    raw: format!("l{i}").into_bytes().into(),
                    ..Default::default()
                }
                .into(),
            );
        }
        assert_eq!(tail.stats().queued, 2);
    }
}
