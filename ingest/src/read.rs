//! Inputs to lines: opens files, `-` (stdin), gzip and zstd (detected by their magic bytes),
//! and cuts the stream into line-aligned chunks that worker threads process in parallel.
//!
//! [`for_each_chunk`] is the engine under `weir import` and `weir report`: one thread reads
//! (and decompresses) large blocks, cuts each at its last newline, and hands it to `threads`
//! workers over a bounded channel; buffers go back to the reader for reuse, so steady state
//! allocates nothing. Each worker owns a state `S` (an accumulator, a spool writer) and the
//! states are returned for the caller to merge: no locks on the per-line path.
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

use std::sync::Arc;

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
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            bytes: DEFAULT_CHUNK_BYTES,
            map_files: true,
            window_bytes: 8 << 20,
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
    /// Reading or decompressing failed part way.
    #[error("cannot read {input}")]
    Read {
        /// The input's name.
        input: String,
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

/// Wraps a reader in the decoder its first bytes call for.
fn decompressed(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut buf = BufReader::with_capacity(1 << 16, raw);
    let head = buf.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(buf)?))
    } else {
        Ok(Box::new(buf))
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

/// Cuts a file of `len` bytes into chunks ([`cuts`]) and hands each to `send` as
/// `(window, start, end, offset in the file)`. The file is mapped one window of about
/// `window_bytes` at a time, each ending after a newline (a line longer than a window gets a
/// larger one); a window is unmapped when the last chunk cut from it is dropped, so that the
/// process's resident memory stays a few windows, whatever the file's size.
fn map_windows(
    file: &File,
    len: u64,
    chunk_bytes: usize,
    window_bytes: usize,
    mut send: impl FnMut(&Arc<Mmap>, usize, usize, u64),
) -> io::Result<()> {
    let mut pos: u64 = 0;
    while pos < len {
        let base = pos - pos % WINDOW_ALIGN;
        let from = (pos - base) as usize;
        let mut size = window_bytes.max(from + chunk_bytes) as u64;
        let (map, end) = loop {
            let size_now = size.min(len - base);
            let map = map_range(file, base, size_now as usize)?;
            if base + size_now == len {
                let end = map.len();
                break (map, end);
            }
            match memchr::memrchr(b'\n', &map[from..]) {
                Some(i) => break (map, from + i + 1),
                None => size *= 2,
            }
        };
        let map = Arc::new(map);
        for (start, stop) in cuts(&map[from..end], chunk_bytes) {
            send(&map, from + start, from + stop, pos + start as u64);
        }
        pos = base + end as u64;
    }
    Ok(())
}

/// Whether a file starting with `head` is one that [`decompressed`] would decode.
fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC) || head.starts_with(&ZSTD_MAGIC)
}

/// A block of whole lines from one input.
#[derive(Debug)]
pub struct Chunk {
    bytes: Bytes,
    /// Index of the input in the slice given to [`for_each_chunk`].
    pub input: usize,
    /// Byte offset of the data in the (decompressed) input.
    pub offset: u64,
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
/// with the number of input bytes consumed since its last call. Returns the workers' states.
///
/// An input that fails stops the run with the error; the states are dropped.
pub fn for_each_chunk<S, I, W, P>(
    inputs: &[Input],
    threads: usize,
    how: Chunking,
    init: I,
    work: W,
    progress: P,
) -> Result<Vec<S>, ReadError>
where
    S: Send,
    I: Fn(usize) -> S + Sync,
    W: Fn(&mut S, &Chunk) + Sync,
    P: Fn(u64),
{
    let threads = threads.max(1);
    let chunk_bytes = how.bytes.max(4096);
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
                if how.map_files {
                    if let Some((file, len)) = input.mappable()? {
                        map_windows(
                            &file,
                            len,
                            chunk_bytes,
                            how.window_bytes,
                            |map, start, end, offset| {
                                progress((end - start) as u64);
                                let _ = full_tx.send(Chunk {
                                    bytes: Bytes::Mapped {
                                        map: map.clone(),
                                        start,
                                        end,
                                    },
                                    input: idx,
                                    offset,
                                });
                            },
                        )
                        .map_err(|source| ReadError::Read {
                            input: input.name(),
                            source,
                        })?;
                        continue;
                    }
                }
                let mut reader = CountingReader {
                    inner: input.open()?,
                    count: 0,
                };
                let mut offset = 0u64;
                let mut carry: Vec<u8> = Vec::new();
                loop {
                    let mut buf = empty_rx.try_recv().unwrap_or_default();
                    if buf.len() < chunk_bytes + carry.len() {
                        buf.resize(chunk_bytes + carry.len(), 0);
                    }
                    buf[..carry.len()].copy_from_slice(&carry);
                    let (mut len, eof) =
                        fill(&mut reader, &mut buf, carry.len()).map_err(|source| ReadError::Read {
                            input: input.name(),
                            source,
                        })?;
                    carry.clear();
                    progress(std::mem::take(&mut reader.count));
                    if !eof {
                        match memchr::memrchr(b'\n', &buf[..len]) {
                            Some(i) => {
                                carry.extend_from_slice(&buf[i + 1..len]);
                                len = i + 1;
                            }
                            // A line longer than a chunk: keep reading until it ends.
                            None => {
                                carry.extend_from_slice(&buf[..len]);
                                let _ = empty_tx_reader.try_send(buf);
                                continue;
                            }
                        }
                    }
                    if len > 0 {
                        // The workers only stop when this function drops `full_tx`.
                        let _ = full_tx.send(Chunk {
                            bytes: Bytes::Read { buf, len },
                            input: idx,
                            offset,
                        });
                    }
                    offset += len as u64;
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
        read_result.map(|()| states)
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
/// `buf` and whether the input ended.
fn fill(r: &mut dyn Read, buf: &mut [u8], start: usize) -> io::Result<(usize, bool)> {
    let mut len = start;
    while len < buf.len() {
        match r.read(&mut buf[len..]) {
            Ok(0) => return Ok((len, true)),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((len, false))
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    count: u64,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
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
            },
            |_| Vec::new(),
            |s: &mut Vec<(usize, u64, Vec<Vec<u8>>)>, c| {
                s.push((c.input, c.offset, c.lines().map(<[u8]>::to_vec).collect()))
            },
            |_| {},
        )
        .unwrap();
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
        let (data, _) = text(1000);
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
                },
                |_| (),
                |_, _| {},
                |n| {
                    seen.fetch_add(n, Ordering::Relaxed);
                },
            )
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
            vec![Vec::new(), Vec::new()]
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
        .unwrap_err();
        assert_eq!(err.to_string(), "cannot open /nonexistent/weir.log");
    }
}
