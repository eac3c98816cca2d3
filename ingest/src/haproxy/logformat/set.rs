//! Several frontends with different formats in one stream: [`FormatSet`] picks the format of
//! each line, and [`Formats`] is the handle [`crate::ParseOptions`] carries to it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use weir_model::{HttpLog, Record, RejectReason, SyslogHeader};

use super::parse::to_tcp;
use super::{Builtin, FormatError, Layout, LogFormat};
use crate::haproxy::fields::Text;
use crate::haproxy::{parse_message_into, Message};
use crate::ParseOptions;

/// One format and the frontends it was assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    format: LogFormat,
    frontends: Vec<String>,
    /// The default format (`defaults`, `--log-format`): used for any frontend without one.
    default: bool,
}

/// The formats of a configuration: per frontend, and a default.
///
/// A line is tried against the format that matched last on this thread first, then the
/// frontends' formats, then the default; a format that prints the frontend (`%ft`, `%f`)
/// accepts a line only from a frontend it is assigned to (the default: from any frontend that
/// has no format of its own). Built-in layouts are not tried here: the hand-tuned parser reads
/// them after every custom format declined a line. A line of HAProxy's shape that matches
/// nothing is a reject, [`RejectReason::NoFormatMatch`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormatSet {
    entries: Vec<Entry>,
    /// Every frontend given a format of its own, built-in ones included.
    assigned: Vec<String>,
    /// Tells sets apart in the per-thread "last matched" memory.
    id: usize,
}

/// A process-wide format set, as [`crate::ParseOptions`] carries it: a shared reference that
/// costs no reference counting per line. Two handles are equal when they are the same set.
#[derive(Debug, Clone, Copy)]
pub struct Formats(pub &'static FormatSet);

impl PartialEq for Formats {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Formats {}

thread_local! {
    /// `(set id, entry index)` of the format that matched the previous line on this thread.
    static LAST: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

impl FormatSet {
    /// An empty set: every line goes to the built-in layouts.
    pub fn new() -> FormatSet {
        FormatSet {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ..FormatSet::default()
        }
    }

    /// Sets the default format.
    pub fn set_default(&mut self, format: &str) -> Result<(), FormatError> {
        self.add(format, None)
    }

    /// Assigns `format` to `frontend`.
    pub fn assign(&mut self, frontend: &str, format: &str) -> Result<(), FormatError> {
        self.add(format, Some(frontend))
    }

    fn add(&mut self, format: &str, frontend: Option<&str>) -> Result<(), FormatError> {
        if let Some(fe) = frontend {
            if !self.assigned.iter().any(|a| a == fe) {
                self.assigned.push(fe.to_owned());
            }
        }
        if Builtin::of_format(format).is_some() {
            return Ok(());
        }
        let at = match self.entries.iter().position(|e| e.format.source() == format) {
            Some(at) => at,
            None => {
                self.entries.push(Entry {
                    format: LogFormat::compile(format)?,
                    frontends: Vec::new(),
                    default: false,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[at];
        match frontend {
            Some(fe) => entry.frontends.push(fe.to_owned()),
            None => entry.default = true,
        }
        // The default is the fallback: tried after the frontends' own formats.
        self.entries.sort_by_key(|e| e.default && e.frontends.is_empty());
        Ok(())
    }

    /// No custom format: the set changes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The compiled custom formats, with the frontends each is assigned to (empty for the
    /// default).
    pub fn formats(&self) -> impl Iterator<Item = (&LogFormat, &[String])> {
        self.entries.iter().map(|e| (&e.format, e.frontends.as_slice()))
    }

    /// Whether `entry` may claim a line of `frontend`.
    fn accepts(&self, entry: &Entry, frontend: &str) -> bool {
        !entry.format.names_frontend
            || entry.frontends.iter().any(|f| f == frontend)
            || (entry.default && !self.assigned.iter().any(|f| f == frontend))
    }

    /// [`parse_message_into`] with the custom formats tried first. The syslog `header` gives
    /// the accept date of a format that prints none, and tells HAProxy's own lines (tag
    /// `haproxy`) apart: one that is neither a custom format's, a built-in layout's, nor an
    /// event is a reject rather than an application line.
    #[inline]
    pub(crate) fn parse_into<'a>(
        &'a self,
        msg: &'a [u8],
        opts: &ParseOptions,
        slot: &mut Record<'a>,
        text: Option<Text<'a>>,
        header: &SyslogHeader<'_>,
    ) -> Option<Message<'a>> {
        let fallback_ts = header.timestamp;
        if !self.entries.is_empty() {
            let mut msg = msg;
            while let [rest @ .., b'\n' | b'\r'] = msg {
                msg = rest;
            }
            if let Some(t) = text.or_else(|| Text::new(msg).ok()) {
                let (id, last) = LAST.get();
                let first = if id == self.id { last } else { 0 };
                let n = self.entries.len();
                for k in (0..n).map(|k| {
                    if k == 0 {
                        first
                    } else if k <= first {
                        k - 1
                    } else {
                        k
                    }
                }) {
                    let entry = &self.entries[k];
                    // Filled in place: a record is some 600 bytes. On a mismatch the slot holds a
                    // partial record, which every later outcome replaces.
                    *slot = Record::Http(HttpLog::default());
                    let Record::Http(log) = slot else { continue };
                    if entry
                        .format
                        .parse_into(msg, t, opts.zone, fallback_ts, log)
                        .is_none()
                        || !self.accepts(entry, log.frontend)
                    {
                        continue;
                    }
                    LAST.set((self.id, k));
                    return match entry.format.layout {
                        Layout::Http => None,
                        Layout::Tcp => Some(Message::Tcp(to_tcp(log))),
                    };
                }
            }
        }
        match parse_message_into(msg, opts, slot, text) {
            Some(Message::Reject(_)) if !self.is_empty() => {
                Some(Message::Reject(RejectReason::NoFormatMatch))
            }
            Some(Message::NotHaproxy) if !self.is_empty() && header.app == Some("haproxy") => {
                Some(Message::Reject(RejectReason::NoFormatMatch))
            }
            other => other,
        }
    }
}
