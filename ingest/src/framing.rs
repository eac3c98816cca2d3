//! TCP syslog framing: a byte stream in, frames out, sans I/O. [`FrameDecoder`] is fed whatever
//! `read` returned and yields one [`Frame`] per message, detecting per frame (as rsyslog does)
//! RFC 6587 octet counting (`LEN SP MSG`, HAProxy's rings with `log-proto octet-count`) or
//! LF/NUL-terminated lines (HAProxy's `log tcp@`). What a frame *says* is the `syslog` module's job.
//!
//! # Rules
//!
//! - A frame that starts with a digit run followed by a space is octet-counted. A valid count
//!   has no leading zero and at most [`MAX_COUNT_DIGITS`] digits; anything else followed by a
//!   space (`0 `, `012 `, `99999999999 `) is a [`Frame::BadCount`]: the decoder resynchronises
//!   by treating the frame as a line and skipping to the next terminator.
//! - Any other frame is a line ended by `\n` or NUL; one `\r` before the terminator is stripped.
//!   A digit run followed by something other than a space (`127.0.0.1:5973 [...`,
//!   `2026-11-22T01:22:06...`) is the start of such a line: HAProxy's `raw` and `iso` formats
//!   begin that way, so (like rsyslog's fallback to octet stuffing) it is not a framing error;
//!   the parser judges its content.
//! - A message longer than `max_line` is a [`Frame::TooLong`] carrying its first `max_line`
//!   bytes; the rest is skipped (exactly `LEN` bytes when counted, else up to the next
//!   terminator) without being buffered, and decoding resumes with the next frame.
//! - Empty messages (a bare `\n`, `\r\n`, a counted frame holding only a newline) are not frames.
//! - At end of stream, [`FrameDecoder::finish`] reports the incomplete trailing frame, if any,
//!   as a [`Frame::Partial`] with its bytes as received.
//!
//! Every frame is reported once, as exactly one variant, and the sequence of frames depends only
//! on the bytes, never on how they were split into reads (a property test holds it to that).
//! The decoder reuses one buffer: after warm-up it does not allocate, and it holds at most
//! `max_line + 1` bytes of an unfinished frame plus the last chunk given to
//! [`FrameDecoder::extend`].

use memchr::memchr2;
use std::ops::Range;
use weir_model::RejectReason;

/// The default longest message, in bytes (the config's `ingest.max_line`).
pub const DEFAULT_MAX_LINE: usize = 65_536;

/// The longest octet count accepted, in digits: 999,999,999 bytes. A longer count is not a
/// length any syslog sender means; it is reported as [`Frame::BadCount`].
pub const MAX_COUNT_DIGITS: usize = 9;

/// One event of a TCP syslog stream. Borrowed slices are valid until the decoder is used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete message, without its count prefix or terminator.
    Line(&'a [u8]),
    /// A message longer than `max_line`: `len` is its length in bytes as received (the count,
    /// for an octet-counted frame that arrived whole) and `head` its first `max_line` bytes.
    TooLong {
        /// The message's length in bytes.
        len: usize,
        /// Its first `max_line` bytes, for the rejects table.
        head: &'a [u8],
    },
    /// A frame whose octet count was not a valid length, up to the next terminator (at most its
    /// first `max_line` bytes), count included.
    BadCount(&'a [u8]),
    /// The trailing bytes of a stream that ended in the middle of a frame, as received.
    Partial(&'a [u8]),
}

impl<'a> Frame<'a> {
    /// The bytes this frame carries: the message, or what is kept of a rejected frame.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Frame::Line(b) | Frame::BadCount(b) | Frame::Partial(b) => b,
            Frame::TooLong { head, .. } => head,
        }
    }

    /// Why the frame must be rejected, or `None` for a [`Frame::Line`] to parse.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Frame::Line(_) => None,
            Frame::TooLong { .. } => Some(RejectReason::TooLong),
            Frame::BadCount(_) | Frame::Partial(_) => Some(RejectReason::BadFraming),
        }
    }
}

/// Where the decoder stands in the stream. Offsets are relative to `FrameDecoder::start`, the
/// first byte not yet consumed, which is always the start of the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary; the first `digits` bytes are known to be ASCII digits.
    Start { digits: usize },
    /// An octet-counted frame: `prefix` bytes (`LEN SP`), then a body of `len` bytes.
    Counted { prefix: usize, len: usize },
    /// A terminated line; its first `scanned` bytes hold no terminator.
    Line { scanned: usize, bad_count: bool },
    /// An oversize line being skipped: its head is in `FrameDecoder::head`, `len` bytes of it have
    /// gone by (a final `\r` included, `cr` says so).
    SkipLine { len: usize, cr: bool, bad_count: bool },
    /// An oversize counted frame of `len` bytes being skipped, `remaining` still to come.
    SkipCounted { len: usize, remaining: usize },
}

/// Where the bytes of a frame found by [`FrameDecoder::step`] lie.
#[derive(Debug, Clone)]
enum Found {
    Line(Range<usize>),
    TooLong { len: usize, head: Head },
    BadCount(Head),
    Partial(Range<usize>),
}

/// A rejected frame's kept bytes: still in the stream buffer, or copied aside while skipping.
#[derive(Debug, Clone)]
enum Head {
    Buf(Range<usize>),
    Saved,
}

/// A sans-I/O decoder of a TCP syslog byte stream with per-frame framing detection.
///
/// ```
/// use weir_ingest::framing::{Frame, FrameDecoder};
///
/// let mut dec = FrameDecoder::new(1024);
/// dec.extend(b"<134>one\n8 <134>two<13");
/// assert_eq!(dec.next_frame(), Some(Frame::Line(b"<134>one")));
/// assert_eq!(dec.next_frame(), Some(Frame::Line(b"<134>two")));
/// assert_eq!(dec.next_frame(), None);
/// assert_eq!(dec.finish(), Some(Frame::Partial(b"<13")));
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    head: Vec<u8>,
    max_line: usize,
    state: State,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_LINE)
    }
}

impl FrameDecoder {
    /// A decoder that accepts messages of up to `max_line` bytes (at least 1).
    pub fn new(max_line: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            head: Vec::new(),
            max_line: max_line.max(1),
            state: State::Start { digits: 0 },
        }
    }

    /// The longest message accepted, in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Bytes buffered and not yet returned as a frame (skipped bytes are not kept).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends bytes read from the stream. Call [`FrameDecoder::next_frame`] until it returns
    /// `None` before the next `extend`, so that the buffer stays bounded.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            // Compaction: moves at most one unfinished frame, never reallocates.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let found = self.step()?;
        Some(self.resolve(found))
    }

    /// At end of stream: the remaining complete frames, one per call, then the unfinished one
    /// (a [`Frame::Partial`], or the [`Frame::TooLong`] / [`Frame::BadCount`] being skipped),
    /// then `None`. The decoder is then ready for a new stream.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        if let Some(found) = self.step() {
            return Some(self.resolve(found));
        }
        let rest = self.start..self.buf.len();
        let found = match self.state {
            State::Start { .. } | State::Counted { .. } | State::Line { bad_count: false, .. } => {
                (!rest.is_empty()).then_some(Found::Partial(rest.clone()))
            }
            State::Line { bad_count: true, .. } => Some(Found::BadCount(Head::Buf(
                rest.start..rest.end.min(rest.start + self.max_line),
            ))),
            State::SkipLine { bad_count, len, .. } => Some(if bad_count {
                Found::BadCount(Head::Saved)
            } else {
                Found::TooLong {
                    len,
                    head: Head::Saved,
                }
            }),
            State::SkipCounted { len, remaining } => Some(Found::TooLong {
                len: len - remaining,
                head: Head::Saved,
            }),
        };
        self.state = State::Start { digits: 0 };
        self.start = self.buf.len();
        found.map(|f| self.resolve(f))
    }

    fn resolve(&self, found: Found) -> Frame<'_> {
        let head = |h: Head| match h {
            Head::Buf(r) => &self.buf[r],
            Head::Saved => &self.head[..],
        };
        match found {
            Found::Line(r) => Frame::Line(&self.buf[r]),
            Found::Partial(r) => Frame::Partial(&self.buf[r]),
            Found::BadCount(h) => Frame::BadCount(head(h)),
            Found::TooLong { len, head: h } => Frame::TooLong { len, head: head(h) },
        }
    }

    /// Advances the state machine over the buffered bytes until a frame is complete.
    fn step(&mut self) -> Option<Found> {
        let max = self.max_line;
        loop {
            let s = self.start;
            let avail = self.buf.len() - s;
            match self.state {
                State::Start { digits } => {
                    if avail == 0 {
                        return None;
                    }
                    let b = &self.buf[s..];
                    let limit = avail.min(max + 2);
                    let mut n = digits;
                    while n < limit && b[n].is_ascii_digit() {
                        n += 1;
                    }
                    if n > max + 1 {
                        // A digit run longer than any message: a (too long) line, whatever follows.
                        self.state = State::Line {
                            scanned: n,
                            bad_count: false,
                        };
                    } else if n == avail {
                        self.state = State::Start { digits: n };
                        return None;
                    } else if n == 0 || b[n] != b' ' {
                        self.state = State::Line {
                            scanned: n,
                            bad_count: false,
                        };
                    } else if b[0] == b'0' || n > MAX_COUNT_DIGITS {
                        self.state = State::Line {
                            scanned: n + 1,
                            bad_count: true,
                        };
                    } else {
                        let len = b[..n]
                            .iter()
                            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
                        if len > max {
                            self.start += n + 1;
                            self.head.clear();
                            self.state = State::SkipCounted { len, remaining: len };
                        } else {
                            self.state = State::Counted { prefix: n + 1, len };
                        }
                    }
                }
                State::Counted { prefix, len } => {
                    if avail < prefix + len {
                        return None;
                    }
                    let body = s + prefix..s + prefix + len;
                    self.start += prefix + len;
                    self.state = State::Start { digits: 0 };
                    let body = strip_newline(&self.buf, body);
                    if !body.is_empty() {
                        return Some(Found::Line(body));
                    }
                }
                State::Line { scanned, bad_count } => match memchr2(b'\n', 0, &self.buf[s + scanned..]) {
                    Some(p) => {
                        let end = s + scanned + p;
                        self.start = end + 1;
                        self.state = State::Start { digits: 0 };
                        let content = strip_cr(&self.buf, s..end);
                        if content.len() > max {
                            let head = Head::Buf(content.start..content.start + max);
                            return Some(if bad_count {
                                Found::BadCount(head)
                            } else {
                                Found::TooLong {
                                    len: content.len(),
                                    head,
                                }
                            });
                        }
                        if bad_count {
                            return Some(Found::BadCount(Head::Buf(content)));
                        }
                        if !content.is_empty() {
                            return Some(Found::Line(content));
                        }
                    }
                    None if avail > max + 1 => {
                        self.head.clear();
                        self.head.extend_from_slice(&self.buf[s..s + max]);
                        let cr = self.buf[self.buf.len() - 1] == b'\r';
                        self.start = self.buf.len();
                        self.state = State::SkipLine {
                            len: avail,
                            cr,
                            bad_count,
                        };
                        return None;
                    }
                    None => {
                        self.state = State::Line {
                            scanned: avail,
                            bad_count,
                        };
                        return None;
                    }
                },
                State::SkipLine { len, cr, bad_count } => {
                    if avail == 0 {
                        return None;
                    }
                    match memchr2(b'\n', 0, &self.buf[s..]) {
                        Some(p) => {
                            let cr = if p > 0 { self.buf[s + p - 1] == b'\r' } else { cr };
                            let len = len + p - usize::from(cr);
                            self.start = s + p + 1;
                            self.state = State::Start { digits: 0 };
                            return Some(if bad_count {
                                Found::BadCount(Head::Saved)
                            } else {
                                Found::TooLong {
                                    len,
                                    head: Head::Saved,
                                }
                            });
                        }
                        None => {
                            let cr = self.buf[self.buf.len() - 1] == b'\r';
                            self.start = self.buf.len();
                            self.state = State::SkipLine {
                                len: len + avail,
                                cr,
                                bad_count,
                            };
                            return None;
                        }
                    }
                }
                State::SkipCounted { len, remaining } => {
                    let take = remaining.min(avail);
                    if self.head.len() < max {
                        let keep = (max - self.head.len()).min(take);
                        self.head.extend_from_slice(&self.buf[s..s + keep]);
                    }
                    self.start += take;
                    if take < remaining {
                        self.state = State::SkipCounted {
                            len,
                            remaining: remaining - take,
                        };
                        return None;
                    }
                    self.state = State::Start { digits: 0 };
                    return Some(Found::TooLong {
                        len,
                        head: Head::Saved,
                    });
                }
            }
        }
    }
}

/// Drops one `\r` at the end of `r`.
fn strip_cr(buf: &[u8], r: Range<usize>) -> Range<usize> {
    if r.end > r.start && buf[r.end - 1] == b'\r' {
        r.start..r.end - 1
    } else {
        r
    }
}

/// Drops one trailing `\n` or `\r\n` (some senders count the newline in the frame).
fn strip_newline(buf: &[u8], r: Range<usize>) -> Range<usize> {
    if r.end > r.start && buf[r.end - 1] == b'\n' {
        strip_cr(buf, r.start..r.end - 1)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of a frame, to compare sequences.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Line(Vec<u8>),
        TooLong(usize, Vec<u8>),
        BadCount(Vec<u8>),
        Partial(Vec<u8>),
    }

    impl From<Frame<'_>> for Owned {
        fn from(f: Frame<'_>) -> Owned {
            match f {
                Frame::Line(b) => Owned::Line(b.to_vec()),
                Frame::TooLong { len, head } => Owned::TooLong(len, head.to_vec()),
                Frame::BadCount(b) => Owned::BadCount(b.to_vec()),
                Frame::Partial(b) => Owned::Partial(b.to_vec()),
            }
        }
    }

    fn line(b: &[u8]) -> Owned {
        Owned::Line(b.to_vec())
    }

    /// Decodes `chunks` as one stream, `finish` included.
    fn decode_chunks<'c>(max_line: usize, chunks: impl IntoIterator<Item = &'c [u8]>) -> Vec<Owned> {
        let mut dec = FrameDecoder::new(max_line);
        let mut out = Vec::new();
        for c in chunks {
            dec.extend(c);
            while let Some(f) = dec.next_frame() {
                out.push(f.into());
            }
        }
        while let Some(f) = dec.finish() {
            out.push(f.into());
        }
        out
    }

    fn decode(max_line: usize, bytes: &[u8]) -> Vec<Owned> {
        decode_chunks(max_line, [bytes])
    }

    fn decode_bytewise(max_line: usize, bytes: &[u8]) -> Vec<Owned> {
        decode_chunks(max_line, bytes.chunks(1))
    }

    fn decode_split(max_line: usize, bytes: &[u8], cuts: &[usize]) -> Vec<Owned> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            chunks.push(&bytes[at..c]);
            at = c;
        }
        chunks.push(&bytes[at..]);
        decode_chunks(max_line, chunks)
    }

    /// Decodes the `b'...'` Python literal of the corpus file (it only uses `\n` and `\\`).
    fn py_bytes(lit: &str) -> Vec<u8> {
        let inner = lit
            .strip_prefix("b'")
            .and_then(|s| s.strip_suffix('\''))
            .expect("a b'' literal");
        let mut out = Vec::new();
        let mut chars = inner.bytes();
        while let Some(c) = chars.next() {
            if c != b'\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b'r') => out.push(b'\r'),
                Some(b't') => out.push(b'\t'),
                Some(b'\\') => out.push(b'\\'),
                Some(b'\'') => out.push(b'\''),
                other => panic!("escape {other:?} not handled"),
            }
        }
        out
    }

    /// The two live HAProxy streams of the corpus: (LF-framed chunks, octet-counted chunks).
    fn corpus_streams() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/corpus/haproxy/haproxy26-live-tcp-framing.txt"
        );
        let text = std::fs::read_to_string(path).expect("corpus file");
        let (mut lf, mut counted) = (Vec::new(), Vec::new());
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (port, lit) = l.split_once(' ').expect("port and literal");
            match port {
                "15530" => lf.push(py_bytes(lit)),
                "15531" => counted.push(py_bytes(lit)),
                other => panic!("unknown port {other}"),
            }
        }
        (lf, counted)
    }

    #[test]
    fn haproxy_lf_stream_as_received() {
        let (lf, _) = corpus_streams();
        assert_eq!(lf.len(), 8);
        let frames = decode_chunks(DEFAULT_MAX_LINE, lf.iter().map(Vec::as_slice));
        assert_eq!(frames.len(), 9, "the first recv() held two lines");
        for f in &frames {
            let Owned::Line(b) = f else {
                panic!("not a line: {f:?}")
            };
            assert!(
                b.starts_with(b"<12") || b.starts_with(b"<13"),
                "{}",
                String::from_utf8_lossy(b)
            );
            assert!(!b.contains(&b'\n'));
        }
        assert_eq!(
            frames[1],
            line(b"<128>Nov 22 01:23:05 lb-test haproxy[13668]: backend be_nosrv has no server available!")
        );
        let all: Vec<u8> = lf.concat();
        assert_eq!(decode_bytewise(DEFAULT_MAX_LINE, &all), frames);
    }

    #[test]
    fn haproxy_octet_counted_stream_as_received() {
        let (_, counted) = corpus_streams();
        assert_eq!(counted.len(), 8);
        let frames = decode_chunks(DEFAULT_MAX_LINE, counted.iter().map(Vec::as_slice));
        assert_eq!(frames.len(), 9);
        assert_eq!(
            frames[1],
            line(
                b"<128>1 2026-11-22T01:23:05.617420+00:00 lb-test haproxy 13668 - - \
                  backend be_nosrv has no server available!"
            )
        );
        for f in &frames {
            let Owned::Line(b) = f else {
                panic!("not a line: {f:?}")
            };
            assert!(
                b.starts_with(b"<12") || b.starts_with(b"<13"),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
        let Owned::Line(first) = &frames[0] else {
            unreachable!()
        };
        assert_eq!(first.len(), 269);
        assert!(first.ends_with(b"0 remaining in queue."));
        let all: Vec<u8> = counted.concat();
        assert_eq!(decode_bytewise(DEFAULT_MAX_LINE, &all), frames);
        // The same messages as the LF stream, one per request, in the same order.
        let (lf, _) = corpus_streams();
        let lf_frames = decode(DEFAULT_MAX_LINE, &lf.concat());
        let message = |f: &Owned, after: &str| match f {
            Owned::Line(b) => {
                let s = String::from_utf8_lossy(b).into_owned();
                s.split_once(after).map(|(_, m)| m.to_owned()).expect("a message")
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            frames.iter().map(|f| message(f, " - - ")).collect::<Vec<_>>(),
            lf_frames.iter().map(|f| message(f, "]: ")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn terminators_crlf_and_nul_are_stripped() {
        assert_eq!(
            decode(64, b"<1>a\r\n<1>b\0<1>c\n"),
            vec![line(b"<1>a"), line(b"<1>b"), line(b"<1>c")]
        );
        // Only one CR is a terminator's; a CR inside the line stays.
        assert_eq!(decode(64, b"<1>a\rb\r\r\n"), vec![line(b"<1>a\rb\r")]);
    }

    #[test]
    fn empty_messages_are_not_frames() {
        assert_eq!(decode(64, b"\n\r\n\0<1>x\n\n1 \n2 \r\n"), vec![line(b"<1>x")]);
    }

    #[test]
    fn octet_count_keeps_embedded_newlines_and_strips_a_final_one() {
        assert_eq!(
            decode(64, b"7 <1>a\nb\n6 <1>c\r\n\n"),
            vec![line(b"<1>a\nb"), line(b"<1>c")]
        );
        // Frames follow each other with no separator, or with a newline between them.
        assert_eq!(
            decode(64, b"4 <1>a4 <1>b\n4 <1>c"),
            vec![line(b"<1>a"), line(b"<1>b"), line(b"<1>c")]
        );
    }

    #[test]
    fn framing_is_detected_per_frame() {
        let stream = b"<1>lf\n5 <1>oc<1>lf again\n127.0.0.1:5973 [22/Nov/2026] x\n2026-11-22T01:22:06Z y\n";
        assert_eq!(
            decode(64, stream),
            vec![
                line(b"<1>lf"),
                line(b"<1>oc"),
                line(b"<1>lf again"),
                line(b"127.0.0.1:5973 [22/Nov/2026] x"),
                line(b"2026-11-22T01:22:06Z y"),
            ]
        );
        // `2 raw` reads as a count of 2: ambiguous input is octet-counted, as in rsyslog.
        assert_eq!(
            decode(64, b"2 raw\n<1>x\n"),
            vec![line(b"ra"), line(b"w"), line(b"<1>x")]
        );
    }

    #[test]
    fn oversize_lf_line_is_skipped_to_its_end_then_decoding_resumes() {
        let mut stream = b"<1>".to_vec();
        stream.extend(std::iter::repeat_n(b'x', 100));
        stream.extend(b"\r\n<1>good\n");
        let expected = vec![Owned::TooLong(103, stream[..16].to_vec()), line(b"<1>good")];
        assert_eq!(decode(16, &stream), expected);
        assert_eq!(decode_bytewise(16, &stream), expected);
        for cut in 0..stream.len() {
            assert_eq!(decode_split(16, &stream, &[cut]), expected, "cut at {cut}");
        }
    }

    #[test]
    fn line_of_exactly_max_line_is_accepted() {
        assert_eq!(
            decode(8, b"<1>45678\r\n<1>456789\n"),
            vec![line(b"<1>45678"), Owned::TooLong(9, b"<1>45678".to_vec())]
        );
        assert_eq!(decode_bytewise(8, b"<1>45678\r\n"), vec![line(b"<1>45678")]);
        assert_eq!(decode(8, b"8 <1>45678"), vec![line(b"<1>45678")]);
    }

    #[test]
    fn oversize_counted_frame_skips_exactly_len_bytes() {
        // The body holds a newline and something that looks like a frame: both are skipped.
        let body = b"<1>aaaa\n5 <1>b\nzzzzzzzzzz";
        let mut stream = format!("{} ", body.len()).into_bytes();
        stream.extend(body);
        stream.extend(b"5 <1>ok");
        let expected = vec![Owned::TooLong(body.len(), body[..8].to_vec()), line(b"<1>ok")];
        assert_eq!(decode(8, &stream), expected);
        assert_eq!(decode_bytewise(8, &stream), expected);
    }

    #[test]
    fn one_megabyte_frames_in_both_framings() {
        let big = vec![b'y'; 1 << 20];
        let mut counted = format!("{} ", big.len()).into_bytes();
        counted.extend(&big);
        counted.extend(b"5 <1>ok");
        let mut dec = FrameDecoder::default();
        let mut frames = Vec::new();
        for chunk in counted.chunks(65_536) {
            dec.extend(chunk);
            while let Some(f) = dec.next_frame() {
                frames.push(Owned::from(f));
            }
            assert!(
                dec.buffered() <= DEFAULT_MAX_LINE + 1,
                "skipped bytes are not kept"
            );
        }
        assert_eq!(
            frames,
            vec![
                Owned::TooLong(1 << 20, vec![b'y'; DEFAULT_MAX_LINE]),
                line(b"<1>ok")
            ]
        );

        let mut lf = big.clone();
        lf.extend(b"\n<1>ok\n");
        let frames = decode_chunks(DEFAULT_MAX_LINE, lf.chunks(4096));
        assert_eq!(
            frames,
            vec![
                Owned::TooLong(1 << 20, vec![b'y'; DEFAULT_MAX_LINE]),
                line(b"<1>ok")
            ]
        );
    }

    #[test]
    fn bogus_counts_resynchronise_at_the_next_newline() {
        assert_eq!(
            decode(64, b"99999999999 <1>x\n<1>ok\n"),
            vec![Owned::BadCount(b"99999999999 <1>x".to_vec()), line(b"<1>ok")]
        );
        assert_eq!(
            decode(64, b"0 \n012 <1>x\n3 <1>"),
            vec![
                Owned::BadCount(b"0 ".to_vec()),
                Owned::BadCount(b"012 <1>x".to_vec()),
                line(b"<1>")
            ]
        );
        // The largest valid count has nine digits: a frame that long is too long, not bogus.
        let mut dec = FrameDecoder::new(10);
        dec.extend(b"999999999 abcdefghijkl");
        assert_eq!(dec.next_frame(), None);
        assert_eq!(
            dec.finish(),
            Some(Frame::TooLong {
                len: 12,
                head: b"abcdefghij"
            })
        );
    }

    #[test]
    fn count_without_space_is_a_line() {
        // `12x` cannot be a count: like rsyslog, the frame is a plain line; the parser rejects it.
        assert_eq!(
            decode(64, b"12x <1>y\n<1>ok\n"),
            vec![line(b"12x <1>y"), line(b"<1>ok")]
        );
    }

    #[test]
    fn oversize_bad_count_line_keeps_its_head() {
        let mut stream = b"0000000000000 ".to_vec();
        stream.extend([b'q'; 50]);
        stream.extend(b"\n<1>ok\n");
        let expected = vec![Owned::BadCount(stream[..20].to_vec()), line(b"<1>ok")];
        assert_eq!(decode(20, &stream), expected);
        assert_eq!(decode_bytewise(20, &stream), expected);
    }

    #[test]
    fn finish_reports_half_frames() {
        assert_eq!(
            decode(64, b"<1>ok\n<1>half"),
            vec![line(b"<1>ok"), Owned::Partial(b"<1>half".to_vec())]
        );
        assert_eq!(
            decode(64, b"10 <1>half"),
            vec![Owned::Partial(b"10 <1>half".to_vec())]
        );
        assert_eq!(decode(64, b"123"), vec![Owned::Partial(b"123".to_vec())]);
        assert_eq!(decode(64, b"12 "), vec![Owned::Partial(b"12 ".to_vec())]);
        assert_eq!(decode(64, b"012 x"), vec![Owned::BadCount(b"012 x".to_vec())]);
        assert_eq!(
            decode(4, b"<1>abcdefgh"),
            vec![Owned::TooLong(11, b"<1>a".to_vec())]
        );
        assert_eq!(
            decode(4, b"20 abcdefgh"),
            vec![Owned::TooLong(8, b"abcd".to_vec())]
        );
        assert_eq!(decode(64, b""), vec![]);
    }

    #[test]
    fn decoder_is_reusable_after_finish() {
        let mut dec = FrameDecoder::new(64);
        dec.extend(b"5 <1>");
        assert_eq!(dec.finish(), Some(Frame::Partial(b"5 <1>")));
        assert_eq!(dec.finish(), None);
        dec.extend(b"<1>new\n");
        assert_eq!(dec.next_frame(), Some(Frame::Line(b"<1>new")));
    }

    #[test]
    fn steady_state_reuses_its_buffer() {
        let mut dec = FrameDecoder::new(256);
        let chunk = b"<134>Nov 22 01:23:07 lb haproxy[1]: msg\n20 <134>counted message\n<13";
        let mut caps = Vec::new();
        for _ in 0..1000 {
            dec.extend(chunk);
            let mut n = 0;
            while dec.next_frame().is_some() {
                n += 1;
            }
            assert!(n >= 2);
            caps.push(dec.buf.capacity());
        }
        assert_eq!(caps[10], *caps.last().expect("caps"), "no growth after warm-up");
    }

    #[test]
    fn reject_reasons() {
        assert_eq!(Frame::Line(b"x").reject_reason(), None);
        assert_eq!(
            Frame::TooLong { len: 9, head: b"x" }.reject_reason(),
            Some(RejectReason::TooLong)
        );
        assert_eq!(
            Frame::BadCount(b"x").reject_reason(),
            Some(RejectReason::BadFraming)
        );
        assert_eq!(
            Frame::Partial(b"x").reject_reason(),
            Some(RejectReason::BadFraming)
        );
        assert_eq!(Frame::TooLong { len: 9, head: b"ab" }.bytes(), b"ab");
    }

    /// A valid frame for the split property: (octet-counted?, message).
    fn valid_frame() -> impl Strategy<Value = (bool, Vec<u8>)> {
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(counted, mut msg)| {
            if counted {
                // Any bytes, but not ending in a newline (that would be stripped).
                if let Some(l) = msg.last_mut() {
                    if *l == b'\n' {
                        *l = b'.';
                    }
                }
            } else {
                msg.retain(|&b| b != b'\n' && b != 0);
                msg.insert(0, b'<');
                if msg.last() == Some(&b'\r') {
                    msg.push(b'.');
                }
            }
            (counted, msg)
        })
    }

    proptest! {
        #[test]
        fn any_split_of_a_valid_stream_gives_the_same_frames(
            frames in proptest::collection::vec(valid_frame(), 0..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            crlf in any::<bool>(),
        ) {
            let mut stream = Vec::new();
            for (counted, msg) in &frames {
                if *counted {
                    stream.extend(format!("{} ", msg.len()).as_bytes());
                    stream.extend(msg);
                } else {
                    stream.extend(msg);
                    stream.extend(if crlf { &b"\r\n"[..] } else { b"\n" });
                }
            }
            let expected: Vec<Owned> = frames.iter().map(|(_, m)| line(m)).collect();
            prop_assert_eq!(&decode(64, &stream), &expected);
            prop_assert_eq!(&decode_split(64, &stream, &cuts), &expected);
            prop_assert_eq!(&decode_bytewise(64, &stream), &expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_split_does_not_matter(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), Just(b'<'), (b'0'..=b'9')], 0..400),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
            max_line in 1usize..40,
        ) {
            let whole = decode(max_line, &bytes);
            prop_assert_eq!(&decode_split(max_line, &bytes, &cuts), &whole);
            prop_assert_eq!(&decode_bytewise(max_line, &bytes), &whole);
            for f in &whole {
                match f {
                    Owned::Line(b) => prop_assert!(!b.is_empty() && b.len() <= max_line),
                    Owned::TooLong(len, head) => prop_assert!(head.len() <= max_line && head.len() <= *len),
                    Owned::BadCount(b) => prop_assert!(b.len() <= max_line),
                    Owned::Partial(_) => {}
                }
            }
            prop_assert!(whole.iter().filter(|f| matches!(f, Owned::Partial(_))).count() <= 1);
        }
    }
}
