//! Fuzzes the TCP syslog frame decoder: any bytes, split into reads anywhere, never a panic;
//! the frames depend only on the bytes, not on how they were split; no frame carries more
//! than `max_line` bytes, the frames together never more than the stream, and the decoder
//! never buffers more than `max_line + 1` bytes beyond the last read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::framing::{Frame, FrameDecoder};

/// An owned copy of a frame, to compare two decodings.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    TooLong(usize, Vec<u8>),
    BadCount(Vec<u8>),
    Partial(Vec<u8>),
}

fn owned(f: Frame<'_>, max_line: usize) -> Owned {
    match f {
        Frame::Line(b) => {
            assert!(b.len() <= max_line && !b.is_empty());
            Owned::Line(b.to_vec())
        }
        Frame::TooLong { len, head } => {
            assert!(head.len() <= max_line && len >= head.len());
            Owned::TooLong(len, head.to_vec())
        }
        Frame::BadCount(b) => {
            assert!(b.len() <= max_line);
            Owned::BadCount(b.to_vec())
        }
        Frame::Partial(b) => Owned::Partial(b.to_vec()),
    }
}

fn decode<'a>(max_line: usize, reads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Owned> {
    let mut dec = FrameDecoder::new(max_line);
    let mut out = Vec::new();
    for r in reads {
        dec.extend(r);
        while let Some(f) = dec.next_frame() {
            out.push(owned(f, max_line));
        }
        assert!(dec.buffered() <= max_line + 1 + r.len());
    }
    while let Some(f) = dec.finish() {
        out.push(owned(f, max_line));
    }
    assert!(dec.finish().is_none());
    out
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: the longest message (1..=64, small enough to reach every `TooLong` path);
    // byte 1: the size of every read but the last (1..=16); the rest is the stream.
    let (max_line, read_size, stream) = match data {
        [m, r, rest @ ..] => (1 + (*m as usize % 64), 1 + (*r as usize % 16), rest),
        _ => return,
    };
    let whole = decode(max_line, [stream]);
    let split = decode(max_line, stream.chunks(read_size));
    assert_eq!(whole, split);
    let bytes: usize = whole
        .iter()
        .map(|f| match f {
            Owned::Line(b) | Owned::BadCount(b) | Owned::Partial(b) => b.len(),
            Owned::TooLong(_, head) => head.len(),
        })
        .sum();
    assert!(bytes <= stream.len());
});
