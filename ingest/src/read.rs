//! Inputs to lines: opens files, `-` (stdin), gzip and zstd (detected by their magic bytes),
//! and cuts the stream into line-aligned chunks that worker threads process in parallel.
//!
//! [`for_each_chunk`] is the engine under `weir import` and `weir report`: one thread reads
//! (and decompresses) large blocks, cuts each at its last newline, and hands it to `threads`
//! workers over a bounded channel; buffers go back to the reader for reuse, so steady state
//! allocates nothing per line. Each worker owns a state `S` (an accumulator, a spool writer) and
//! the states are returned for the caller to merge: no locks on the per-line path.
//!
//! Memory is bounded whatever the input: a line longer than [`Chunking::max_line`] becomes a
//! chunk of its head alone ([`Chunk::too_long`]) and the rest of it is read past, not kept. A
//! gzip or zstd stream that breaks part way ends the run with [`ReadError::Read`] (the input
//! and the decompressed offset) after its whole lines were handed on. A chunk may hand one
//! value to the next chunk of its input ([`Chunk::hand_on`], [`Chunk::handed_in`]): the state
//! of a stream that a line depends on (the wall clock's repeated hour) crosses chunk
//! boundaries without serializing the workers that do not need it.
//!
//! A plain (uncompressed) regular file is memory-mapped instead of read ([`Chunking::map_files`]):
//! its chunks are slices of the mapping, and the reading thread only finds the newlines to cut
//! at. It is mapped a window of 8 MiB at a time, so that resident memory does not grow with
//! the file. Copying a file out of the page cache with `read(2)` costs the kernel about as much CPU
//! as a tenth of the parse; mapping it costs a page-table entry per page. The price is the one
//! every mapping reader pays: if another process truncates the file while it is mapped, reading
//! the lost pages ends the process with `SIGBUS` (`--no-mmap` reads it instead).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::bounded;
use memmap2::Mmap;

/// Bytes read per chunk.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// How [`for_each_chunk`] cuts its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    /// Bytes per chunk (a line longer than this makes a longer chunk).
    pub bytes: usize,
    /// Memory-map plain regular files instead of reading them (see the module notes).
    pub map_files: bool,
    /// Bytes of a mapped file mapped at a time.
    pub window_bytes: usize,
    /// The longest line kept, in bytes. A longer line is handed on as one chunk of its first
    /// `max_line` bytes, marked with its length ([`Chunk::too_long`]); the rest of it is read
    /// and dropped without being kept, so memory stays flat whatever the input.
    pub max_line: usize,
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            bytes: DEFAULT_CHUNK_BYTES,
            map_files: true,
            window_bytes: 8 << 20,
            max_line: crate::framing::DEFAULT_MAX_LINE,
        }
    }
}

/// One input: a file path or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file; gzip or zstd content is decompressed.
    Path(PathBuf),
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input could not be opened.
    #[error("cannot open {input}")]
    Open {
        /// The input's name.
        input: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading or decompressing failed part way (a corrupt or truncated gzip or zstd file):
    /// the lines before `offset` were handed on, the rest of the input is not read.
    #[error("cannot read {input} past {unit} {offset}")]
    Read {
        /// The input's name.
        input: String,
        /// What `offset` counts: `byte`, or `decompressed byte` for gzip and zstd.
        unit: &'static str,
        /// The bytes read (decompressed, for gzip and zstd) before the failure.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl Input {
    /// `-` is standard input; anything else is a path.
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }

    /// The name to show in messages.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::Path(p) => p.display().to_string(),
        }
    }

    /// The size on disk, when known (for progress bars).
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    /// The open file and its length when the input is to be memory-mapped: a non-empty regular
    /// file, not gzip or zstd, that the system agrees to map. `None`: read it as a stream.
    fn mappable(&self) -> Result<Option<(File, u64)>, ReadError> {
        use std::os::unix::fs::FileExt;
        let Input::Path(p) = self else { return Ok(None) };
        let open_err = |source| ReadError::Open {
            input: self.name(),
            source,
        };
        let file = File::open(p).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if !meta.is_file() || meta.len() == 0 {
            return Ok(None);
        }
        let mut head = [0u8; 4];
        let n = file.read_at(&mut head, 0).map_err(open_err)?;
        if is_compressed(&head[..n]) {
            return Ok(None);
        }
        // Some files cannot be mapped (a few special file systems): read those.
        if map_range(&file, 0, meta.len().min(WINDOW_ALIGN) as usize).is_err() {
            return Ok(None);
        }
        Ok(Some((file, meta.len())))
    }

    /// Opens the input, decompressing gzip and zstd transparently.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ReadError> {
        self.open_decoded().map(|(r, _)| r)
    }

    /// [`Input::open`], and whether the input was gzip or zstd.
    fn open_decoded(&self) -> Result<(Box<dyn Read + Send>, bool), ReadError> {
        let open_err = |source| ReadError::Open {
            input: self.name(),
            source,
        };
        let raw: Box<dyn Read + Send> = match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(p) => Box::new(File::open(p).map_err(open_err)?),
        };
        decompressed(raw).map_err(|source| ReadError::Open {
            input: self.name(),
            source,
        })
    }
}

/// Wraps a reader in the decoder its first bytes call for; says whether it decodes.
fn decompressed(raw: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut buf = BufReader::with_capacity(1 << 16, raw);
    let head = buf.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(buf)), true))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Ok((Box::new(zstd::stream::read::Decoder::with_buffer(buf)?), true))
    } else {
        Ok((Box::new(buf), false))
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Mapping windows start at multiples of this (a multiple of every page size in use).
const WINDOW_ALIGN: u64 = 1 << 16;

/// Maps `len` bytes of `file` from `offset` (a multiple of [`WINDOW_ALIGN`]), read-only.
#[allow(unsafe_code)]
fn map_range(file: &File, offset: u64, len: usize) -> io::Result<Mmap> {
    // SAFETY: the mapping is private and read-only, and lives in an `Arc` that every chunk cut
    // from it holds. Log files are appended to, which leaves the mapped bytes as they are;
    // truncation by another process while mapped is the documented `SIGBUS` case.
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}

/// A piece of input for a worker: a range of a mapped window, or the head of a line longer
/// than `max_line` with the line's length and the bytes it took (its newline included).
enum Piece<'m> {
    Mapped(&'m Arc<Mmap>, usize, usize),
    TooLong(Vec<u8>, u64, u64),
}

/// Cuts a file of `len` bytes into chunks ([`cuts`]) and hands each to `send` with its offset
/// in the file. The file is mapped one window of about `window_bytes` at a time, each ending
/// after a newline; a window is unmapped when the last chunk cut from it is dropped, so that
/// the process's resident memory stays a few windows, whatever the file's size. A line longer
/// than `max_line` that does not fit a window is handed on as its head ([`Piece::TooLong`])
/// and the rest of it is scanned a window at a time, not kept. An error comes with the offset
/// it happened at.
fn map_windows(
    file: &File,
    len: u64,
    how: Chunking,
    mut send: impl FnMut(Piece<'_>, u64),
) -> Result<(), (u64, io::Error)> {
    let chunk_bytes = how.bytes.max(4096);
    let mut pos: u64 = 0;
    while pos < len {
        let base = pos - pos % WINDOW_ALIGN;
        let from = (pos - base) as usize;
        let mut size = how.window_bytes.max(from + chunk_bytes) as u64;
        let (map, end) = loop {
            let size_now = size.min(len - base);
            let map = map_range(file, base, size_now as usize).map_err(|e| (pos, e))?;
            if base + size_now == len {
                let end = map.len();
                break (map, end);
            }
            match memchr::memrchr(b'\n', &map[from..]) {
                Some(i) => break (map, from + i + 1),
                None if map.len() - from > how.max_line => {
                    // One line fills the window and is longer than any line kept.
                    let head = map[from..from + how.max_line].to_vec();
                    let (line_len, next) = skip_line(file, len, pos, how.window_bytes)?;
                    send(Piece::TooLong(head, line_len, next - pos), pos);
                    pos = next;
                    break (map, usize::MAX);
                }
                None => size *= 2,
            }
        };
        if end == usize::MAX {
            continue;
        }
        let map = Arc::new(map);
        for (start, stop) in cuts(&map[from..end], chunk_bytes) {
            send(Piece::Mapped(&map, from + start, from + stop), pos + start as u64);
        }
        pos = base + end as u64;
    }
    Ok(())
}

/// The length of the line that starts at `start` (without its newline) and the offset after
/// it, found by mapping one window at a time.
fn skip_line(file: &File, len: u64, start: u64, window_bytes: usize) -> Result<(u64, u64), (u64, io::Error)> {
    let mut at = start;
    while at < len {
        let base = at - at % WINDOW_ALIGN;
        let size = (at - base + window_bytes as u64).min(len - base);
        let map = map_range(file, base, size as usize).map_err(|e| (at, e))?;
        let from = (at - base) as usize;
        if let Some(i) = memchr::memchr(b'\n', &map[from..]) {
            let nl = at + i as u64;
            return Ok((nl - start, nl + 1));
        }
        at = base + size;
    }
    Ok((len - start, len))
}

/// Whether a file starting with `head` is one that [`decompressed`] would decode.
fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC) || head.starts_with(&ZSTD_MAGIC)
}

/// A block of whole lines from one input, or the kept head of one line too long to keep.
#[derive(Debug)]
pub struct Chunk {
    bytes: Bytes,
    /// Index of the input in the slice given to [`for_each_chunk`].
    pub input: usize,
    /// Byte offset of the data in the (decompressed) input.
    pub offset: u64,
    too_long: Option<u64>,
    handed_in: Option<Arc<Handoff>>,
    hand_on: HandOn,
}

/// What the worker of one chunk hands to the worker of the next chunk of the same input: set
/// once, waited for by the next.
#[derive(Debug, Default)]
struct Handoff {
    value: Mutex<Option<Option<i64>>>,
    ready: Condvar,
}

impl Handoff {
    fn put(&self, v: Option<i64>) {
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(v);
            self.ready.notify_all();
        }
    }

    fn wait(&self) -> Option<i64> {
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = *g {
                return v;
            }
            g = self.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A chunk's own [`Handoff`]: a chunk dropped without handing anything on (its worker did
/// not care, or panicked) hands on `None`, so the next never waits forever.
#[derive(Debug, Default)]
struct HandOn(Arc<Handoff>);

impl Drop for HandOn {
    fn drop(&mut self) {
        self.0.put(None);
    }
}

/// Links each chunk of an input to the one before it.
#[derive(Default)]
struct Chain {
    last: Option<Arc<Handoff>>,
}

impl Chain {
    /// The links of the next chunk.
    fn next(&mut self) -> (Option<Arc<Handoff>>, HandOn) {
        let own = HandOn::default();
        (self.last.replace(own.0.clone()), own)
    }
}

/// Where a chunk's bytes are.
#[derive(Debug)]
enum Bytes {
    /// The first `len` bytes of a buffer that was read into. The buffer keeps its full length
    /// between uses so that refilling it never zeroes memory.
    Read { buf: Vec<u8>, len: usize },
    /// A range of a mapped file.
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        end: usize,
    },
}

impl Chunk {
    /// `Some(len)` when this chunk is one line longer than [`Chunking::max_line`]: [`Chunk::data`]
    /// is its first `max_line` bytes and `len` its length in bytes.
    pub fn too_long(&self) -> Option<u64> {
        self.too_long
    }

    /// What the worker of the previous chunk of the same input handed on ([`Chunk::hand_on`]),
    /// once that chunk is done (this waits for it); `None` for an input's first chunk.
    ///
    /// A worker that needs to know how the input read up to its chunk (the wall-clock state of
    /// a stream) asks for it; chunks are taken in input order, so the wait always ends.
    pub fn handed_in(&self) -> Option<i64> {
        self.handed_in.as_ref().and_then(|h| h.wait())
    }

    /// Hands `value` to the worker of the next chunk of the same input. Only the first call
    /// counts; a chunk dropped without one hands on `None`.
    pub fn hand_on(&self, value: Option<i64>) {
        self.hand_on.0.put(value);
    }

    /// The bytes: whole lines, the last one possibly without its terminator (end of input).
    pub fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Read { buf, len } => &buf[..*len],
            Bytes::Mapped { map, start, end } => &map[*start..*end],
        }
    }

    /// The lines, without `\n` or `\r\n`. A final empty line after the last `\n` is not one.
    pub fn lines(&self) -> Lines<'_> {
        Lines { rest: self.data() }
    }
}

/// Iterator over the lines of a byte slice; see [`Chunk::lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// Lines of any byte slice.
    pub fn new(data: &'a [u8]) -> Self {
        Lines { rest: data }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// [`Lines`] of text known to be UTF-8, as `&str`: the same lines, cut at the same places.
#[derive(Debug, Clone)]
pub struct StrLines<'a> {
    rest: &'a str,
}

impl<'a> StrLines<'a> {
    /// Lines of `text`.
    pub fn new(text: &'a str) -> Self {
        StrLines { rest: text }
    }
}

impl<'a> Iterator for StrLines<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        // `\n` is ASCII: the cuts are character boundaries.
        let (line, rest) = match memchr::memchr(b'\n', self.rest.as_bytes()) {
            Some(i) => (self.rest.get(..i)?, self.rest.get(i + 1..)?),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

/// Reads `inputs` in order and runs `work` on every chunk, on `threads` worker threads, each
/// with its own state from `init(worker_index)`. `progress` is called on the reading thread
/// with the number of input bytes consumed since its last call. Returns the workers' states,
/// and how the reading ended.
///
/// An input that cannot be opened stops the run there. One that fails part way (a corrupt or
/// truncated gzip or zstd file) stops it too, after every whole line read before the failure
/// was handed to the workers (the bytes of a line cut by the failure are not a line). Either
/// way the states hold the work done on the chunks read before.
pub fn for_each_chunk<S, I, W, P>(
    inputs: &[Input],
    threads: usize,
    how: Chunking,
    init: I,
    work: W,
    progress: P,
) -> (Vec<S>, Result<(), ReadError>)
where
    S: Send,
    I: Fn(usize) -> S + Sync,
    W: Fn(&mut S, &Chunk) + Sync,
    P: Fn(u64),
{
    let threads = threads.max(1);
    let chunk_bytes = how.bytes.max(4096);
    let max_line = how.max_line.max(1);
    let (full_tx, full_rx) = bounded::<Chunk>(threads * 2);
    let (empty_tx, empty_rx) = bounded::<Vec<u8>>(threads * 2 + 2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let full_rx = full_rx.clone();
                let empty_tx = empty_tx.clone();
                let (init, work) = (&init, &work);
                scope.spawn(move || {
                    let mut state = init(i);
                    for chunk in full_rx {
                        work(&mut state, &chunk);
                        if let Bytes::Read { buf, .. } = chunk.bytes {
                            let _ = empty_tx.try_send(buf);
                        }
                    }
                    state
                })
            })
            .collect();
        drop(full_rx);
        let empty_tx_reader = empty_tx.clone();
        drop(empty_tx);
        let read_result = (|| {
            for (idx, input) in inputs.iter().enumerate() {
                let mut chain = Chain::default();
                // The workers only stop when this function drops `full_tx`.
                let mut send = |bytes: Bytes, offset: u64, too_long: Option<u64>| {
                    let (handed_in, hand_on) = chain.next();
                    let _ = full_tx.send(Chunk {
                        bytes,
                        input: idx,
                        offset,
                        too_long,
                        handed_in,
                        hand_on,
                    });
                };
                if how.map_files {
                    if let Some((file, len)) = input.mappable()? {
                        map_windows(&file, len, how, |piece, offset| match piece {
                            Piece::Mapped(map, start, end) => {
                                progress((end - start) as u64);
                                let map = map.clone();
                                send(Bytes::Mapped { map, start, end }, offset, None);
                            }
                            Piece::TooLong(head, line_len, took) => {
                                progress(took);
                                let len = head.len();
                                send(Bytes::Read { buf: head, len }, offset, Some(line_len));
                            }
                        })
                        .map_err(|(offset, source)| ReadError::Read {
                            input: input.name(),
                            unit: "byte",
                            offset,
                            source,
                        })?;
                        continue;
                    }
                }
                let (inner, compressed) = input.open_decoded()?;
                let mut reader = CountingReader {
                    inner,
                    count: 0,
                    total: 0,
                };
                // Offset in the (decompressed) input of `buf[0]`.
                let mut base = 0u64;
                // The start of an unfinished line, at most `max_line` bytes.
                let mut carry: Vec<u8> = Vec::new();
                // A line longer than `max_line` being read past: its head, length so far, offset.
                let mut skipping: Option<(Vec<u8>, u64, u64)> = None;
                loop {
                    let mut buf = empty_rx.try_recv().unwrap_or_default();
                    if buf.len() < chunk_bytes + carry.len() {
                        buf.resize(chunk_bytes + carry.len(), 0);
                    }
                    buf[..carry.len()].copy_from_slice(&carry);
                    let (len, status) = fill(&mut reader, &mut buf, carry.len());
                    carry.clear();
                    progress(std::mem::take(&mut reader.count));
                    let (eof, failure) = match status {
                        Ok(eof) => (eof, None),
                        Err(e) => (true, Some(e)),
                    };
                    let mut from = 0;
                    if let Some((_, line_len, _)) = skipping.as_mut() {
                        let nl = memchr::memchr(b'\n', &buf[..len]);
                        *line_len += nl.unwrap_or(len) as u64;
                        if nl.is_some() || (eof && failure.is_none()) {
                            if let Some((head, line_len, at)) = skipping.take() {
                                let n = head.len();
                                send(Bytes::Read { buf: head, len: n }, at, Some(line_len));
                            }
                        }
                        match nl {
                            Some(i) => from = i + 1,
                            None => from = len,
                        }
                    }
                    let mut end = len;
                    if !eof || failure.is_some() {
                        end = memchr::memrchr(b'\n', &buf[from..len]).map_or(from, |i| from + i + 1);
                    }
                    if !eof {
                        let tail = &buf[end..len];
                        if tail.len() > max_line {
                            skipping =
                                Some((tail[..max_line].to_vec(), tail.len() as u64, base + end as u64));
                        } else {
                            carry.extend_from_slice(tail);
                        }
                    }
                    if end > from {
                        if from > 0 {
                            buf.copy_within(from..end, 0);
                        }
                        send(Bytes::Read { buf, len: end - from }, base + from as u64, None);
                    } else {
                        let _ = empty_tx_reader.try_send(buf);
                    }
                    base += (len - carry.len()) as u64;
                    if let Some(source) = failure {
                        return Err(ReadError::Read {
                            input: input.name(),
                            unit: if compressed { "decompressed byte" } else { "byte" },
                            offset: reader.total,
                            source,
                        });
                    }
                    if eof {
                        break;
                    }
                }
            }
            Ok(())
        })();
        drop(full_tx);
        let states = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread panicked"))
            .collect();
        (states, read_result)
    })
}

/// The chunks of `data` as `(start, end)` ranges: about `size` bytes each, every one ending
/// after a newline (the last at the end of `data`); a line longer than `size` stays whole.
fn cuts(data: &[u8], size: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= data.len() {
            return None;
        }
        let limit = (start + size).min(data.len());
        let end = if limit == data.len() {
            limit
        } else {
            match memchr::memrchr(b'\n', &data[start..limit]) {
                Some(i) => start + i + 1,
                None => memchr::memchr(b'\n', &data[limit..]).map_or(data.len(), |i| limit + i + 1),
            }
        };
        let cut = (start, end);
        start = end;
        Some(cut)
    })
}

/// Fills `buf` from `start` to its end, or until the input ends; returns the bytes now in
/// `buf` (those read before a failure too) and whether the input ended, or the failure.
fn fill(r: &mut dyn Read, buf: &mut [u8], start: usize) -> (usize, io::Result<bool>) {
    let mut len = start;
    while len < buf.len() {
        match r.read(&mut buf[len..]) {
            Ok(0) => return (len, Ok(true)),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (len, Err(e)),
        }
    }
    (len, Ok(false))
}

/// A reader that counts its bytes: since the last progress report, and in all.
struct CountingReader {
    inner: Box<dyn Read + Send>,
    count: u64,
    total: u64,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.total += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Every line of `inputs`, in order, read with chunks of `chunk` bytes, once mapping plain
    /// files and once reading them; both ways must give the same lines.
    fn collect(inputs: &[Input], threads: usize, chunk: usize) -> Vec<Vec<u8>> {
        let mapped = collect_as(inputs, threads, chunk, true);
        assert_eq!(
            mapped,
            collect_as(inputs, threads, chunk, false),
            "mapped vs read"
        );
        mapped
    }

    fn collect_as(inputs: &[Input], threads: usize, chunk: usize, map_files: bool) -> Vec<Vec<u8>> {
        let states = for_each_chunk(
            inputs,
            threads,
            Chunking {
                bytes: chunk,
                map_files,
                // Small windows: many of them, overlapping at their aligned starts.
                window_bytes: 3 * chunk,
                max_line: usize::MAX / 2,
            },
            |_| Vec::new(),
            |s: &mut Vec<(usize, u64, Vec<Vec<u8>>)>, c| {
                s.push((c.input, c.offset, c.lines().map(<[u8]>::to_vec).collect()))
            },
            |_| {},
        );
        states.1.unwrap();
        let states = states.0;
        let mut all: Vec<_> = states.into_iter().flatten().collect();
        all.sort_by_key(|(i, o, _)| (*i, *o));
        all.into_iter().flat_map(|(_, _, l)| l).collect()
    }

    fn tmp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-read-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn text(n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let lines: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("line {i} {}", "x".repeat(i % 37)).into_bytes())
            .collect();
        let mut data = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            data.extend_from_slice(l);
            data.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
        }
        (data, lines)
    }

    #[test]
    fn every_line_once_in_order_across_tiny_chunks() {
        let (data, lines) = text(5000);
        let p = tmp_file("plain.log", &data);
        for threads in [1, 2, 3] {
            assert_eq!(collect(&[Input::Path(p.clone())], threads, 4096), lines);
        }
    }

    #[test]
    fn str_lines_cut_where_lines_cut() {
        let (data, _) = text(300);
        let mut data = String::from_utf8(data).unwrap();
        data.push_str("é\r\n\n\rlast\r");
        let bytes: Vec<&[u8]> = Lines::new(data.as_bytes()).collect();
        let strs: Vec<&[u8]> = StrLines::new(&data).map(str::as_bytes).collect();
        assert_eq!(strs, bytes);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        let p = tmp_file("nonl.log", b"a\nb\nc");
        assert_eq!(
            collect(&[Input::Path(p)], 2, 4096),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn line_longer_than_a_chunk_stays_whole() {
        let long = vec![b'y'; 20_000];
        let mut data = b"short\n".to_vec();
        data.extend_from_slice(&long);
        data.extend_from_slice(b"\nend\n");
        let p = tmp_file("long.log", &data);
        assert_eq!(
            collect(&[Input::Path(p)], 2, 4096),
            vec![b"short".to_vec(), long, b"end".to_vec()]
        );
    }

    #[test]
    fn gzip_and_zstd_are_detected_by_magic() {
        let (data, lines) = text(3000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz_path = tmp_file("x.log.gz", &gz.finish().unwrap());
        let zst_path = tmp_file("x.log.zst", &zstd::encode_all(&data[..], 3).unwrap());
        let inputs = [Input::Path(gz_path), Input::Path(zst_path)];
        let got = collect(&inputs, 2, 8192);
        assert_eq!(got.len(), 6000);
        assert_eq!(&got[..3000], &lines[..]);
        assert_eq!(&got[3000..], &lines[..]);
    }

    #[test]
    fn progress_counts_every_byte() {
        let (mut data, _) = text(1000);
        data.extend_from_slice(&[b'z'; 100_000]);
        data.extend_from_slice(b"\nlast\n");
        let p = tmp_file("progress.log", &data);
        for map_files in [true, false] {
            let seen = AtomicU64::new(0);
            for_each_chunk(
                &[Input::Path(p.clone())],
                2,
                Chunking {
                    bytes: 4096,
                    map_files,
                    window_bytes: 8192,
                    max_line: 1000,
                },
                |_| (),
                |_, _| {},
                |n| {
                    seen.fetch_add(n, Ordering::Relaxed);
                },
            )
            .1
            .unwrap();
            assert_eq!(
                seen.load(Ordering::Relaxed),
                data.len() as u64,
                "map_files {map_files}"
            );
        }
    }

    #[test]
    fn empty_file_and_blank_lines() {
        let empty = tmp_file("empty.log", b"");
        let blank = tmp_file("blank.log", b"\n\n");
        assert_eq!(
            collect(&[Input::Path(empty.clone())], 2, 4096),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            collect(&[Input::Path(empty), Input::Path(blank)], 2, 4096),
            vec![Vec::<u8>::new(), Vec::new()]
        );
    }

    proptest::proptest! {
        /// The mapped file's chunks tile it exactly, each ends after a newline (but the last),
        /// and none is longer than asked unless one line is.
        #[test]
        fn cuts_tile_the_file(text in "[ab\n]{0,300}", size in 1usize..40) {
            let data = text.as_bytes();
            let mut at = 0;
            let all: Vec<_> = cuts(data, size).collect();
            for (k, &(start, end)) in all.iter().enumerate() {
                proptest::prop_assert_eq!(start, at);
                proptest::prop_assert!(end > start);
                let chunk = &data[start..end];
                if k + 1 < all.len() {
                    proptest::prop_assert_eq!(chunk.last(), Some(&b'\n'));
                }
                let longest = chunk.split(|&c| c == b'\n').map(|l| l.len() + 1).max().unwrap_or(0);
                proptest::prop_assert!(chunk.len() <= size.max(longest));
                at = end;
            }
            proptest::prop_assert_eq!(at, data.len());
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = for_each_chunk(
            &[Input::from_arg("/nonexistent/weir.log")],
            1,
            Chunking::default(),
            |_| (),
            |_, _| {},
            |_| {},
        )
        .1
        .unwrap_err();
        assert_eq!(err.to_string(), "cannot open /nonexistent/weir.log");
    }

    /// What the workers saw: every chunk's lines, or `(head, len)` of a line too long to keep,
    /// in input order.
    /// A line, or the head of one too long to keep with its length.
    type Piece = (Vec<u8>, Option<u64>);

    fn pieces(input: Input, how: Chunking) -> (Vec<Piece>, Result<(), ReadError>) {
        let (states, result) = for_each_chunk(
            &[input],
            2,
            how,
            |_| Vec::new(),
            |s: &mut Vec<(u64, Vec<Piece>)>, c| {
                let got = match c.too_long() {
                    Some(n) => vec![(c.data().to_vec(), Some(n))],
                    None => c.lines().map(|l| (l.to_vec(), None)).collect(),
                };
                s.push((c.offset, got));
            },
            |_| {},
        );
        let mut all: Vec<_> = states.into_iter().flatten().collect();
        all.sort_by_key(|(o, _)| *o);
        (all.into_iter().flat_map(|(_, p)| p).collect(), result)
    }

    /// A line longer than `max_line` is one piece of its first `max_line` bytes with its length,
    /// read past without being kept, whether read or mapped, at the start, middle or end.
    #[test]
    fn lines_longer_than_max_line_are_cut_to_their_head() {
        let long = |c: u8, n: usize| vec![c; n];
        let mut data = long(b'a', 50_000);
        data.extend_from_slice(b"\nshort\n");
        data.extend_from_slice(&long(b'b', 70_000));
        data.extend_from_slice(b"\nend\n");
        data.extend_from_slice(&long(b'c', 30_000));
        let p = tmp_file("toolong.log", &data);
        for map_files in [false, true] {
            let how = Chunking {
                bytes: 4096,
                map_files,
                window_bytes: 8192,
                max_line: 1000,
            };
            let (got, result) = pieces(Input::Path(p.clone()), how);
            result.unwrap();
            assert_eq!(
                got,
                vec![
                    (long(b'a', 1000), Some(50_000)),
                    (b"short".to_vec(), None),
                    (long(b'b', 1000), Some(70_000)),
                    (b"end".to_vec(), None),
                    (long(b'c', 1000), Some(30_000)),
                ],
                "map_files {map_files}"
            );
        }
    }

    /// A gzip or zstd file cut short is an error naming the file and the decompressed offset,
    /// and every whole line before the cut was handed on.
    #[test]
    fn truncated_compressed_files_keep_the_lines_before_the_damage() {
        let (data, lines) = text(20_000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for (name, bytes) in [("cut.log.gz", gz), ("cut.log.zst", zst)] {
            let cut = tmp_file(name, &bytes[..bytes.len() * 2 / 3]);
            let (got, result) = pieces(Input::Path(cut.clone()), Chunking::default());
            let err = result.unwrap_err();
            let ReadError::Read { offset, unit, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(*unit, "decompressed byte");
            assert!(err
                .to_string()
                .starts_with(&format!("cannot read {}", cut.display())));
            assert!(
                !got.is_empty() && got.len() < lines.len(),
                "{name}: {}",
                got.len()
            );
            let got: Vec<Vec<u8>> = got.into_iter().map(|(l, _)| l).collect();
            assert_eq!(got, lines[..got.len()], "{name}");
            let whole: usize = lines[..got.len()].iter().map(|l| l.len() + 1).sum();
            assert!(*offset as usize >= whole, "{name}: {offset} < {whole}");
        }
    }

    /// Each chunk gets what the worker of the chunk before it handed on, whichever worker ran
    /// it, and the first chunk of each input gets nothing.
    #[test]
    fn each_chunk_gets_what_the_one_before_handed_on() {
        let (data, _) = text(5000);
        let p = tmp_file("handoff.log", &data);
        for map_files in [false, true] {
            let (states, result) = for_each_chunk(
                &[Input::Path(p.clone()), Input::Path(p.clone())],
                3,
                Chunking {
                    bytes: 4096,
                    map_files,
                    ..Chunking::default()
                },
                |_| Vec::new(),
                |s: &mut Vec<(usize, u64, Option<i64>)>, c| {
                    let before = c.handed_in();
                    c.hand_on(Some(before.unwrap_or(0) + 1));
                    s.push((c.input, c.offset, before));
                },
                |_| {},
            );
            result.unwrap();
            let mut all: Vec<_> = states.into_iter().flatten().collect();
            all.sort_by_key(|(i, o, _)| (*i, *o));
            let per_input = all.len() / 2;
            assert!(per_input > 10);
            for (k, (_, _, before)) in all.iter().enumerate() {
                let k = k % per_input;
                assert_eq!(*before, (k > 0).then_some(k as i64), "chunk {k}");
            }
        }
    }
}
