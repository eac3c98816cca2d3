//! The write-ahead log: batches of received lines in, checksummed frames in append-only
//! segment files out, and back again at recovery.
//!
//! `serve` appends every batch it accepts to its worker's [`WalWriter`] before it parses or
//! counts a line of it, so a crash loses nothing that reached the log (and a power cut at most
//! [`WalOptions::fsync_interval`]). A segment is `<node>-<yyyymmdd>-<boot>-<seq>.wal` in
//! `<spool>/wal/`: an 8-byte magic, the stream label (which worker of which start wrote it),
//! then frames of `[len u32][crc32 u32][payload]`, one frame per batch. Each line has a
//! position, `seq << 32 | line number in its segment`, which grows along a stream; the spool
//! writer records in every Parquet file the ranges of positions its rows hold, per stream
//! ([`crate::SpoolWriter::set_wal_position`]; a file may hold rows of several streams), so
//! replay skips exactly what was already published ([`published_ranges`]) and a segment can be
//! deleted once every file it fed is published ([`WalWriter::release`]).
//!
//! With a non-zero `fsync_interval`, the fdatasyncs (and the folder syncs that make a new or
//! deleted segment's name durable) run on a thread of the writer's own, so that a disk slow to
//! flush (a sync of a second's frames can take over a second on a busy disk) never stalls the
//! thread that appends: a periodic sync is skipped while the previous one is still running (the
//! next covers its frames), a closed segment is always synced, a failed sync is returned by
//! the writer's next call, and [`WalWriter::finish`] waits for them all.
//!
//! [`read_segment`] returns every whole frame and stops at the first torn or corrupt one (a
//! short header, a short payload, a bad checksum), reporting how many bytes it skipped.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir_ingest::listen::{Batch, EntryKind};
use weir_model::time::civil_from_micros;

use crate::error::StoreError;
use crate::file::sync_dir;

/// The first bytes of every segment (the last digit is the frame format's version).
const MAGIC: &[u8; 8] = b"WEIRWAL1";

/// Bytes before each frame's payload: its length and its CRC-32.
const FRAME_HEADER: usize = 8;

/// A frame longer than this is corrupt (a batch holds at most a few MiB).
const MAX_FRAME: u32 = 1 << 30;

/// The frame buffer a writer keeps between appends; the buffer of a larger frame (a batch
/// of long UDP datagrams) is freed once written, so a writer holds at most this much.
pub const FRAME_BUFFER_KEPT: usize = 1 << 20;

/// The Parquet key-value metadata naming the WAL stream a file's rows came from, in files of
/// earlier versions (one stream a file).
pub const META_STREAM: &str = "weir.wal_stream";
/// The Parquet key-value metadata holding the highest WAL position of a file's rows, in files of
/// earlier versions: every line of the stream and the partition up to it is published.
pub const META_POSITION: &str = "weir.wal_position";
/// The prefix of the Parquet key-value metadata listing, for one WAL stream (the rest of the
/// key), the positions a file's rows hold: `first-last` ranges, comma-separated. Every line of
/// the stream and the partition in a range is in the file.
pub const META_RANGES_PREFIX: &str = "weir.wal_ranges.";

/// Where and how a [`WalWriter`] writes.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// The segments' folder, `<spool>/wal`; created when missing.
    pub dir: PathBuf,
    /// The node id, first part of every segment name.
    pub node: String,
    /// The start (`b3`), third part of every segment name.
    pub boot: String,
    /// Which writer of this start, written in each segment's header: positions are ordered
    /// within one stream only.
    pub stream: String,
    /// The segment sequence, shared by the writers of one start so that names never collide.
    pub sequence: Arc<AtomicU64>,
    /// A segment is closed and a new one opened past this size.
    pub segment_bytes: u64,
    /// Appended frames reach the disk (fdatasync) at most this long after they were written;
    /// zero syncs every batch.
    pub fsync_interval: Duration,
    /// Bound on this writer's segments on disk; past it the oldest closed segment is deleted
    /// (shed) though its rows are not yet published.
    pub max_bytes: u64,
}

/// What a [`WalWriter`] did; counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Frames (batches) appended.
    pub frames: u64,
    /// Bytes appended, frame headers and segment headers included.
    pub bytes: u64,
    /// fdatasync calls.
    pub syncs: u64,
    /// Segments deleted because every row in them was published.
    pub released: u64,
    /// Segments deleted over `max_bytes` before their rows were published.
    pub shed_segments: u64,
    /// Lines in the shed segments.
    pub shed_lines: u64,
    /// Bytes of the shed segments.
    pub shed_bytes: u64,
}

#[derive(Debug)]
struct SegmentFile {
    path: PathBuf,
    seq: u64,
    bytes: u64,
    lines: u64,
}

/// What the sync thread is asked to make durable.
enum SyncJob {
    /// A segment's frames.
    Data(Arc<File>, PathBuf),
    /// A folder's entries (a segment created or deleted).
    Dir(PathBuf),
}

/// What the sync thread reports.
#[derive(Debug, Default)]
struct SyncState {
    in_flight: AtomicUsize,
    synced: AtomicU64,
    failed: Mutex<Option<StoreError>>,
}

/// The thread that syncs a writer's segments and folder; see the module docs.
#[derive(Debug)]
struct Syncer {
    jobs: mpsc::Sender<SyncJob>,
    thread: JoinHandle<()>,
    state: Arc<SyncState>,
}

impl Syncer {
    fn start(stream: &str) -> Result<Syncer, StoreError> {
        let (jobs, rx) = mpsc::channel::<SyncJob>();
        let state = Arc::new(SyncState::default());
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("weir-wal-sync-{stream}"))
            .spawn(move || {
                for job in rx {
                    let done = match &job {
                        SyncJob::Data(file, path) => file.sync_data().map_err(StoreError::io("fsync", path)),
                        SyncJob::Dir(dir) => sync_dir(dir),
                    };
                    match done {
                        Ok(()) => {
                            if matches!(job, SyncJob::Data(..)) {
                                shared.synced.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            let mut failed = shared.failed.lock().unwrap_or_else(|p| p.into_inner());
                            failed.get_or_insert(e);
                        }
                    }
                    shared.in_flight.fetch_sub(1, Ordering::Release);
                }
            })
            .map_err(|e| StoreError::Io {
                op: "spawn",
                path: PathBuf::from(stream),
                source: e,
            })?;
        Ok(Syncer { jobs, thread, state })
    }

    fn send(&self, job: SyncJob) {
        self.state.in_flight.fetch_add(1, Ordering::Acquire);
        if self.jobs.send(job).is_err() {
            self.state.in_flight.fetch_sub(1, Ordering::Release);
        }
    }

    fn busy(&self) -> bool {
        self.state.in_flight.load(Ordering::Acquire) > 0
    }

    /// The first failure since the last call.
    fn failure(&self) -> Result<(), StoreError> {
        let mut failed = self.state.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.take().map_or(Ok(()), Err)
    }

    /// Waits for every job sent; the first failure.
    fn finish(self) -> Result<u64, StoreError> {
        let Syncer { jobs, thread, state } = self;
        drop(jobs);
        let _ = thread.join();
        let mut failed = state.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed
            .take()
            .map_or(Ok(state.synced.load(Ordering::Relaxed)), Err)
    }
}

/// Appends batches to the segments of one stream. One per pipeline worker; see the module docs.
#[derive(Debug)]
pub struct WalWriter {
    opts: WalOptions,
    current: Option<(Arc<File>, SegmentFile)>,
    closed: VecDeque<SegmentFile>,
    buf: Vec<u8>,
    last_sync: Instant,
    unsynced: bool,
    stats: WalStats,
    /// `None` with a zero `fsync_interval` (every batch synced before `append` returns), and
    /// once finished.
    syncer: Option<Syncer>,
}

impl WalWriter {
    /// A writer of stream `opts.stream`; the first segment is created with the first batch.
    pub fn create(opts: WalOptions) -> Result<WalWriter, StoreError> {
        std::fs::create_dir_all(&opts.dir).map_err(StoreError::io("create", &opts.dir))?;
        let syncer = if opts.fsync_interval.is_zero() {
            None
        } else {
            Some(Syncer::start(&opts.stream)?)
        };
        Ok(WalWriter {
            syncer,
            opts,
            current: None,
            closed: VecDeque::new(),
            buf: Vec::new(),
            last_sync: Instant::now(),
            unsynced: false,
            stats: WalStats::default(),
        })
    }

    /// Appends one batch as one frame; returns the position of its first line (the others
    /// follow it one by one). The frame is in the kernel's hands when this returns, so it
    /// survives the process; it is on disk within `fsync_interval`.
    pub fn append(&mut self, batch: &Batch) -> Result<u64, StoreError> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        encode_batch(batch, &mut self.buf);
        let len = (self.buf.len() - FRAME_HEADER) as u32;
        let crc = crc32fast::hash(&self.buf[FRAME_HEADER..]);
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let frame = self.buf.len() as u64;
        if self
            .current
            .as_ref()
            .is_some_and(|(_, s)| s.lines > 0 && s.bytes + frame > self.opts.segment_bytes)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            self.open_segment()?;
        }
        let Some((file, seg)) = self.current.as_mut() else {
            unreachable!("a segment was just opened");
        };
        if let Err(e) = (&**file).write_all(&self.buf) {
            // A short write (ENOSPC) would leave a torn frame that ends the segment for replay
            // and hides every frame after it: cut it off, or start a new segment.
            let error = StoreError::io("write", &seg.path)(e);
            if file.set_len(seg.bytes).is_err() {
                self.close_current()?;
            }
            return Err(error);
        }
        let position = (seg.seq << 32) | seg.lines;
        if self.buf.capacity() > FRAME_BUFFER_KEPT {
            self.buf = Vec::new();
        }
        seg.lines += batch.len() as u64;
        seg.bytes += frame;
        self.stats.frames += 1;
        self.stats.bytes += frame;
        self.unsynced = true;
        self.sync_due()?;
        self.shed_over_budget();
        Ok(position)
    }

    /// Syncs the current segment if `fsync_interval` has passed since the last sync and
    /// something was written since (on the sync thread: see the module docs); a server calls
    /// this from a timer too, so that a quiet stream still reaches the disk. Returns a failure
    /// of the sync thread since the last call.
    pub fn sync_due(&mut self) -> Result<(), StoreError> {
        if let Some(s) = &self.syncer {
            s.failure()?;
        }
        if self.unsynced && self.last_sync.elapsed() >= self.opts.fsync_interval {
            self.sync()?;
        }
        Ok(())
    }

    /// When [`WalWriter::sync_due`] will next have work: `fsync_interval` after the last sync,
    /// if anything was written since; `None` when everything written is synced.
    pub fn sync_deadline(&self) -> Option<Instant> {
        self.unsynced.then(|| self.last_sync + self.opts.fsync_interval)
    }

    /// Deletes the closed segments whose rows are all published: those older than the segment
    /// of `oldest_unpublished` (the spool writer's
    /// [`crate::SpoolWriter::oldest_unpublished_wal_position`]), or every closed segment when
    /// nothing is unpublished. Returns how many were deleted.
    pub fn release(&mut self, oldest_unpublished: Option<u64>) -> Result<usize, StoreError> {
        let keep_from = oldest_unpublished.map_or(u64::MAX, |p| p >> 32);
        let mut released = 0;
        while self.closed.front().is_some_and(|s| s.seq < keep_from) {
            let Some(seg) = self.closed.pop_front() else { break };
            remove(&seg.path)?;
            released += 1;
        }
        if released > 0 {
            self.sync_folder()?;
            self.stats.released += released as u64;
        }
        Ok(released as usize)
    }

    /// At a clean stop: syncs and closes the current segment and deletes every segment whose
    /// rows are all published, as [`WalWriter::release`] does (all of them when
    /// `oldest_unpublished` is `None`); the others stay for the next start to replay.
    pub fn finish(mut self, oldest_unpublished: Option<u64>) -> Result<WalStats, StoreError> {
        self.close_current()?;
        if let Some(s) = self.syncer.take() {
            self.stats.syncs += s.finish()?;
        }
        self.release(oldest_unpublished)?;
        Ok(self.stats)
    }

    /// What was written so far (syncs: those done).
    pub fn stats(&self) -> WalStats {
        let synced = self
            .syncer
            .as_ref()
            .map_or(0, |s| s.state.synced.load(Ordering::Relaxed));
        WalStats {
            syncs: self.stats.syncs + synced,
            ..self.stats
        }
    }

    /// The stream this writer appends to.
    pub fn stream(&self) -> &str {
        &self.opts.stream
    }

    /// Bytes of this stream's segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.closed.iter().map(|s| s.bytes).sum::<u64>() + self.current.as_ref().map_or(0, |(_, s)| s.bytes)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.last_sync = Instant::now();
        if let Some((file, seg)) = &self.current {
            match &self.syncer {
                // The sync still running covers these frames only in part: the next one will.
                Some(s) if s.busy() => return Ok(()),
                Some(s) => s.send(SyncJob::Data(file.clone(), seg.path.clone())),
                None => {
                    file.sync_data().map_err(StoreError::io("fsync", &seg.path))?;
                    self.stats.syncs += 1;
                }
            }
        }
        self.unsynced = false;
        Ok(())
    }

    /// Makes the segments' folder entries durable, on the sync thread when there is one.
    fn sync_folder(&self) -> Result<(), StoreError> {
        match &self.syncer {
            Some(s) => s.send(SyncJob::Dir(self.opts.dir.clone())),
            None => sync_dir(&self.opts.dir)?,
        }
        Ok(())
    }

    fn open_segment(&mut self) -> Result<(), StoreError> {
        let seq = self.opts.sequence.fetch_add(1, Ordering::Relaxed);
        let name = segment_name(&self.opts.node, now_micros(), &self.opts.boot, seq);
        let path = self.opts.dir.join(name);
        let file = File::options()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(StoreError::io("create", &path))?;
        let mut head = Vec::with_capacity(MAGIC.len() + 2 + self.opts.stream.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(self.opts.stream.len() as u16).to_le_bytes());
        head.extend_from_slice(self.opts.stream.as_bytes());
        if let Err(e) = (&file).write_all(&head) {
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::io("write", &path)(e));
        }
        // The new name must survive a power cut as surely as the frames synced into it.
        self.sync_folder()?;
        self.stats.bytes += head.len() as u64;
        self.current = Some((
            Arc::new(file),
            SegmentFile {
                path,
                seq,
                bytes: head.len() as u64,
                lines: 0,
            },
        ));
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), StoreError> {
        let Some((file, seg)) = &self.current else {
            return Ok(());
        };
        // A closed segment is always synced, on the sync thread even while it is busy.
        match &self.syncer {
            Some(s) => s.send(SyncJob::Data(file.clone(), seg.path.clone())),
            None => {
                file.sync_data().map_err(StoreError::io("fsync", &seg.path))?;
                self.stats.syncs += 1;
            }
        }
        let Some((_, seg)) = self.current.take() else {
            return Ok(());
        };
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.closed.push_back(seg);
        Ok(())
    }

    /// Over `max_bytes`, deletes the oldest closed segments, counting what they held.
    fn shed_over_budget(&mut self) {
        while self.disk_bytes() > self.opts.max_bytes {
            let Some(seg) = self.closed.pop_front() else { break };
            if remove(&seg.path).is_err() {
                self.closed.push_front(seg);
                break;
            }
            self.stats.shed_segments += 1;
            self.stats.shed_lines += seg.lines;
            self.stats.shed_bytes += seg.bytes;
        }
    }
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
            op: "remove",
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `<node>-<yyyymmdd>-<boot>-<seq>.wal`, the day in UTC.
pub fn segment_name(node: &str, now: i64, boot: &str, seq: u64) -> String {
    let (y, m, d, ..) = civil_from_micros(now);
    format!("{node}-{y:04}{m:02}{d:02}-{boot}-{seq:06}.wal")
}

/// A segment found on disk, by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    /// The start that wrote it (`3` of `b3`).
    pub boot: u64,
    /// Its sequence number within that start.
    pub seq: u64,
    /// Its path.
    pub path: PathBuf,
}

/// The segments of `node` in `dir`, oldest first (by start, then sequence). Other files are
/// left alone.
pub fn list_segments(dir: &Path, node: &str) -> Result<Vec<SegmentName>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(node))
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.strip_suffix(".wal"))
        else {
            continue;
        };
        // <yyyymmdd>-b<boot>-<seq>
        let parts: Vec<&str> = rest.split('-').collect();
        let [day, boot, seq] = parts[..] else { continue };
        let (Some(boot), Ok(seq)) = (boot.strip_prefix('b').and_then(|b| b.parse().ok()), seq.parse()) else {
            continue;
        };
        if day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()) {
            out.push(SegmentName {
                boot,
                seq,
                path: entry.path(),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes replayed segments (their rows are published), durably.
pub fn remove_segments(dir: &Path, segments: &[SegmentName]) -> Result<(), StoreError> {
    for seg in segments {
        remove(&seg.path)?;
    }
    sync_dir(dir)
}

/// Where a segment stops being readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// Offset of the first byte not recovered.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
}

/// A segment read back: its stream, its sequence and every whole frame.
#[derive(Debug, Default)]
pub struct SegmentContents {
    /// The stream label of its header (empty when the header itself is torn).
    pub stream: String,
    /// The batches, each with the position of its first line.
    pub batches: Vec<(u64, Batch)>,
    /// Lines in the batches.
    pub lines: u64,
    /// The torn or corrupt tail, if any.
    pub torn: Option<Torn>,
}

/// The stream label in a segment's header, `None` when the header is torn.
pub fn read_stream(path: &Path) -> Result<Option<String>, StoreError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(MAGIC.len() + 2 + u16::MAX as usize);
    File::open(path)
        .and_then(|f| f.take(head.capacity() as u64).read_to_end(&mut head))
        .map_err(StoreError::io("read", path))?;
    Ok(read_header(&head))
}

/// Reads a segment whose sequence number is `seq`, stopping at the first torn or corrupt frame.
pub fn read_segment(path: &Path, seq: u64) -> Result<SegmentContents, StoreError> {
    let bytes = std::fs::read(path).map_err(StoreError::io("read", path))?;
    Ok(decode_segment(&bytes, seq))
}

/// [`read_segment`] on bytes.
pub fn decode_segment(bytes: &[u8], seq: u64) -> SegmentContents {
    let mut out = SegmentContents::default();
    let torn_at = |offset: usize| {
        Some(Torn {
            offset: offset as u64,
            bytes: (bytes.len() - offset) as u64,
        })
    };
    let Some(stream) = read_header(bytes) else {
        // A segment killed between its creation and its header holds nothing.
        out.torn = if bytes.is_empty() { None } else { torn_at(0) };
        return out;
    };
    out.stream = stream;
    let mut at = MAGIC.len() + 2 + out.stream.len();
    while at < bytes.len() {
        let Some(batch) = read_frame(&bytes[at..]) else {
            out.torn = torn_at(at);
            break;
        };
        let (len, batch) = batch;
        let position = (seq << 32) | out.lines;
        out.lines += batch.len() as u64;
        out.batches.push((position, batch));
        at += len;
    }
    out
}

fn read_header(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let label = rest.get(2..2 + len)?;
    String::from_utf8(label.to_vec()).ok()
}

/// One frame at the start of `bytes`: its length and its batch, or `None` when it is torn or
/// corrupt.
fn read_frame(bytes: &[u8]) -> Option<(usize, Batch)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len > MAX_FRAME {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let batch = decode_batch(payload)?;
    Some((FRAME_HEADER + len as usize, batch))
}

/// The payload of a frame: `received_at i64`, `entries u32`, then per entry its kind (`0`
/// message, `1` too long with its `u64` length, `2` bad frame), the sender (`4` or `6`, the
/// address, the port) and the bytes (`u32` length first). Little-endian throughout.
fn encode_batch(batch: &Batch, out: &mut Vec<u8>) {
    out.extend_from_slice(&batch.received_at.to_le_bytes());
    out.extend_from_slice(&(batch.entries.len() as u32).to_le_bytes());
    for e in &batch.entries {
        match e.kind {
            EntryKind::Message => out.push(0),
            EntryKind::TooLong { len } => {
                out.push(1);
                out.extend_from_slice(&len.to_le_bytes());
            }
            EntryKind::BadFrame => out.push(2),
        }
        match e.peer.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&e.peer.port().to_le_bytes());
        let bytes = batch.bytes(e);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
}

/// A cursor over a payload; every read is `None` past the end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

fn decode_batch(payload: &[u8]) -> Option<Batch> {
    let mut c = Cursor(payload);
    let mut batch = Batch {
        received_at: i64::from_le_bytes(c.array()?),
        ..Batch::default()
    };
    let n = u32::from_le_bytes(c.array()?);
    for _ in 0..n {
        let kind = match c.array::<1>()?[0] {
            0 => EntryKind::Message,
            1 => EntryKind::TooLong {
                len: u64::from_le_bytes(c.array()?),
            },
            2 => EntryKind::BadFrame,
            _ => return None,
        };
        let ip = match c.array::<1>()?[0] {
            4 => IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)),
            _ => return None,
        };
        let peer = SocketAddr::new(ip, u16::from_le_bytes(c.array()?));
        let len = u32::from_le_bytes(c.array()?) as usize;
        batch.push(c.take(len)?, peer, kind);
    }
    c.0.is_empty().then_some(batch)
}

/// The WAL positions published, per stream and partition folder, read from the footers of
/// the Parquet files under a spool ([`published_ranges`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedRanges {
    /// Sorted, disjoint, merged `(first, last)` ranges per stream and partition folder.
    ranges: HashMap<String, HashMap<PathBuf, Vec<(u64, u64)>>>,
}

impl PublishedRanges {
    fn add(&mut self, stream: String, dir: PathBuf, first: u64, last: u64) {
        self.ranges
            .entry(stream)
            .or_default()
            .entry(dir)
            .or_default()
            .push((first, last));
    }

    fn merge(&mut self) {
        for v in self.ranges.values_mut().flat_map(|d| d.values_mut()) {
            v.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
            for &(first, last) in v.iter() {
                match merged.last_mut() {
                    Some(m) if first <= m.1.saturating_add(1) => m.1 = m.1.max(last),
                    _ => merged.push((first, last)),
                }
            }
            *v = merged;
        }
    }

    /// Whether a published file of the partition folder `dir` holds the line of `stream` at
    /// `position`.
    pub fn contains(&self, stream: &str, dir: &Path, position: u64) -> bool {
        let v = self.ranges(stream, dir);
        let i = v.partition_point(|&(first, _)| first <= position);
        i > 0 && v[i - 1].1 >= position
    }

    /// The ranges of `stream` in `dir`, sorted and merged.
    pub fn ranges(&self, stream: &str, dir: &Path) -> &[(u64, u64)] {
        self.ranges
            .get(stream)
            .and_then(|d| d.get(dir))
            .map_or(&[], Vec::as_slice)
    }

    /// How many streams have published ranges.
    pub fn streams(&self) -> usize {
        self.ranges.len()
    }

    /// Whether no published file records a WAL position.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// The WAL positions published per (stream, partition folder), read from the footers of the
/// Parquet files under `spool` whose rows were first published by `node` in start `min_boot`
/// or later (only those can hold rows of the segments left from that start on): a writer's file
/// tells by its name, a compacted file by the records it keeps of its inputs
/// ([`crate::compact::wal_records`]), which are read like those inputs' own footers. Files of
/// earlier versions, which record a stream's highest position, count as a range from 0.
pub fn published_ranges(spool: &Path, node: &str, min_boot: u64) -> Result<PublishedRanges, StoreError> {
    let wanted = |name: &str| {
        name.strip_prefix(node)
            .and_then(|n| n.strip_prefix("-b"))
            .and_then(|n| n.split('-').next())
            .and_then(|b| b.parse::<u64>().ok())
            .is_some_and(|b| b >= min_boot)
    };
    let mut out = PublishedRanges::default();
    for table in crate::Table::ALL {
        for path in crate::table_files(spool, table)? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !crate::compact::is_compacted(&path) && !wanted(name) {
                continue;
            }
            let Some(dir) = path.parent() else { continue };
            let kv = crate::compact::footer(&path)?;
            for record in crate::compact::wal_records(name, &kv) {
                if !wanted(&record.source) {
                    continue;
                }
                out.add(record.stream, dir.to_owned(), record.first, record.last);
            }
        }
    }
    out.merge();
    Ok(out)
}

/// Removes the hidden `*.tmp` and `*.spill` files that the writers of `node` leave under `dir`
/// when killed (a Parquet file being written and its spilled rows, `FORMAT` or a boot counter
/// being replaced); returns their paths.
/// Other nodes' temporaries (a spool may be shared) and every other file are left alone.
pub fn sweep_temporaries(dir: &Path, node: &str) -> Result<Vec<PathBuf>, StoreError> {
    let ours = |name: &str| {
        let Some(inner) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp").or_else(|| n.strip_suffix(".spill")))
        else {
            return false;
        };
        let inner = inner
            .strip_prefix("FORMAT.")
            .or_else(|| inner.strip_prefix("boot-"))
            .unwrap_or(inner);
        inner
            .strip_prefix(node)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']))
    };
    let mut removed = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("list", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(StoreError::io("stat", &path))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                pending.push(path);
            } else if ours(&name) {
                remove(&path)?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(received_at: i64, lines: &[&[u8]]) -> Batch {
        let mut b = Batch {
            received_at,
            ..Batch::default()
        };
        let v4: SocketAddr = "10.0.0.7:514".parse().unwrap();
        let v6: SocketAddr = "[::1]:40000".parse().unwrap();
        for (i, l) in lines.iter().enumerate() {
            let (peer, kind) = match i % 3 {
                0 => (v4, EntryKind::Message),
                1 => (v6, EntryKind::TooLong { len: 70_000 }),
                _ => (v4, EntryKind::BadFrame),
            };
            b.push(l, peer, kind);
        }
        b
    }

    fn opts(dir: &Path) -> WalOptions {
        WalOptions {
            dir: dir.join("wal"),
            node: "n1".into(),
            boot: "b7".into(),
            stream: "b7.w0".into(),
            sequence: Arc::new(AtomicU64::new(0)),
            segment_bytes: 1 << 20,
            fsync_interval: Duration::from_secs(1),
            max_bytes: 1 << 30,
        }
    }

    fn same(a: &Batch, b: &Batch) -> bool {
        a.received_at == b.received_at
            && a.entries.len() == b.entries.len()
            && a.entries
                .iter()
                .zip(&b.entries)
                .all(|(x, y)| x.peer == y.peer && x.kind == y.kind && a.bytes(x) == b.bytes(y))
    }

    #[test]
    fn batches_round_trip_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(opts(dir.path())).unwrap();
        let (a, b) = (batch(5, &[b"one", b"two", b""]), batch(-9, &[b"four"]));
        assert_eq!(w.append(&a).unwrap(), 0);
        assert_eq!(w.append(&b).unwrap(), 3);
        let segs = list_segments(&dir.path().join("wal"), "n1").unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].boot, segs[0].seq), (7, 0));
        let name = segs[0].path.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("n1-") && name.ends_with("-b7-000000.wal"),
            "{name}"
        );
        let got = read_segment(&segs[0].path, 0).unwrap();
        assert_eq!(got.stream, "b7.w0");
        assert_eq!(got.torn, None);
        assert_eq!(got.lines, 4);
        assert_eq!(got.batches.len(), 2);
        assert_eq!((got.batches[0].0, got.batches[1].0), (0, 3));
        assert!(same(&got.batches[0].1, &a) && same(&got.batches[1].1, &b));
    }

    #[test]
    fn frames_are_synced_by_fsync_interval() {
        let dir = tempfile::tempdir().unwrap();
        let every = |fsync_interval| WalOptions {
            fsync_interval,
            ..opts(dir.path())
        };
        let mut each_batch = WalWriter::create(every(Duration::ZERO)).unwrap();
        let mut hourly = WalWriter::create(WalOptions {
            boot: "b8".into(),
            ..every(Duration::from_secs(3600))
        })
        .unwrap();
        for _ in 0..3 {
            each_batch.append(&batch(1, &[b"a"])).unwrap();
            hourly.append(&batch(1, &[b"a"])).unwrap();
            hourly.sync_due().unwrap();
        }
        assert_eq!(each_batch.stats().syncs, 3);
        assert_eq!(each_batch.sync_deadline(), None, "nothing left to sync");
        assert_eq!(hourly.stats().syncs, 0);
        let due = hourly.sync_deadline().expect("unsynced frames");
        assert!(due > Instant::now() + Duration::from_secs(3000));
        // Closing a segment always syncs it.
        assert_eq!(hourly.finish(None).unwrap().syncs, 1);
    }

    #[test]
    fn the_sync_thread_syncs_every_closed_segment_before_finish_returns() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(WalOptions {
            segment_bytes: 100,
            fsync_interval: Duration::from_secs(3600),
            ..opts(dir.path())
        })
        .unwrap();
        assert!(w.syncer.is_some(), "a non-zero interval syncs on a thread");
        let line = [b'x'; 60];
        for _ in 0..5 {
            w.append(&batch(1, &[&line])).unwrap();
        }
        w.sync_due().unwrap();
        // Four segments were closed as the next frame did not fit; finish closes the fifth.
        let stats = w.finish(Some(0)).unwrap();
        assert_eq!(
            stats.syncs, 5,
            "one sync per segment, none periodic within the hour"
        );
        let segments = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
        assert_eq!(segments, 5, "position 0 is unpublished: every segment is kept");
    }

    #[test]
    fn segments_rotate_and_are_released_once_published() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(WalOptions {
            segment_bytes: 100,
            ..opts(dir.path())
        })
        .unwrap();
        let line = [b'x'; 60];
        let positions: Vec<u64> = (0..4).map(|_| w.append(&batch(1, &[&line])).unwrap()).collect();
        // Each frame fills a segment: one line per segment.
        assert_eq!(positions, vec![0, 1 << 32, 2 << 32, 3 << 32]);
        let wal = dir.path().join("wal");
        assert_eq!(list_segments(&wal, "n1").unwrap().len(), 4);
        // Rows of segment 2 are unpublished: 0 and 1 go, 2 stays, 3 is still open.
        assert_eq!(w.release(Some(2 << 32)).unwrap(), 2);
        let left: Vec<u64> = list_segments(&wal, "n1").unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(left, vec![2, 3]);
        assert_eq!(w.release(None).unwrap(), 1);
        assert_eq!(
            list_segments(&wal, "n1").unwrap().len(),
            1,
            "the open segment stays"
        );
        let stats = w.finish(None).unwrap();
        assert_eq!(stats.released, 4);
        assert!(list_segments(&wal, "n1").unwrap().is_empty());
    }

    #[test]
    fn the_oldest_segment_is_shed_over_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(WalOptions {
            segment_bytes: 100,
            max_bytes: 300,
            ..opts(dir.path())
        })
        .unwrap();
        let line = [b'x'; 60];
        for _ in 0..4 {
            w.append(&batch(1, &[&line, b"y"])).unwrap();
        }
        let stats = w.stats();
        assert_eq!((stats.shed_segments, stats.shed_lines), (2, 4), "{stats:?}");
        assert!(w.disk_bytes() <= 300);
        let left: Vec<u64> = list_segments(&dir.path().join("wal"), "n1")
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(left, vec![2, 3]);
    }

    #[test]
    fn a_corrupt_frame_ends_the_segment_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(opts(dir.path())).unwrap();
        w.append(&batch(1, &[b"kept"])).unwrap();
        w.append(&batch(2, &[b"flipped"])).unwrap();
        let path = list_segments(&dir.path().join("wal"), "n1").unwrap()[0]
            .path
            .clone();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let got = decode_segment(&bytes, 0);
        assert_eq!(got.batches.len(), 1);
        let torn = got.torn.unwrap();
        assert_eq!(torn.offset + torn.bytes, bytes.len() as u64);
        assert_eq!(got.batches[0].1.bytes(&got.batches[0].1.entries[0]), b"kept");
    }

    #[test]
    fn a_segment_killed_in_its_header_is_torn_and_an_empty_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(opts(dir.path())).unwrap();
        w.append(&batch(1, &[b"x"])).unwrap();
        let path = list_segments(&dir.path().join("wal"), "n1").unwrap()[0]
            .path
            .clone();
        let bytes = std::fs::read(&path).unwrap();
        let torn = decode_segment(&bytes[..5], 0);
        assert_eq!(torn.torn, Some(Torn { offset: 0, bytes: 5 }));
        assert!(torn.batches.is_empty());
        assert_eq!(decode_segment(&[], 0).torn, None);
    }

    #[test]
    fn temporaries_are_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("requests/date=2026-11-22/hour=01");
        std::fs::create_dir_all(&part).unwrap();
        let names = [
            ".n1-b2-000001.parquet.tmp",
            ".n1-b2-000002.parquet.spill",
            ".n12-b2-000001.parquet.tmp",
            "n1-b2-3.parquet",
            "c.tmp",
        ];
        for name in names {
            std::fs::write(part.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(".boot-n1.tmp"), b"3").unwrap();
        std::fs::write(dir.path().join(".FORMAT.n1-b2-0.tmp"), b"2").unwrap();
        let mut removed = sweep_temporaries(dir.path(), "n1").unwrap();
        removed.sort();
        let mut want = vec![
            dir.path().join(".FORMAT.n1-b2-0.tmp"),
            dir.path().join(".boot-n1.tmp"),
            part.join(".n1-b2-000001.parquet.tmp"),
            part.join(".n1-b2-000002.parquet.spill"),
        ];
        want.sort();
        assert_eq!(removed, want);
        for kept in &names[2..] {
            assert!(part.join(kept).exists(), "{kept}");
        }
    }

    #[test]
    fn published_files_carry_the_ranges_of_their_rows() {
        use crate::testutil::{at, http, line};
        use crate::{RecordMeta, SpoolOptions, SpoolWriter};
        use weir_model::Record;

        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(SpoolOptions {
            fsync: false,
            row_group_rows: 2,
            rotate_rows: 2,
            ..SpoolOptions::new(dir.path(), "n1", "b4")
        })
        .unwrap();
        w.set_wal_stream("b3.w1");
        let hour = 3_600_000;
        let meta = RecordMeta::default();
        // Two rows fill a file of the first hour, which is published; the row of the next hour
        // (position 5) and the third row of the first hour (position 7) are not.
        for (position, ms) in [(3, 0), (4, 1), (5, hour), (7, 2)] {
            w.set_wal_position(position);
            w.append(&line(Record::Http(http(at(ms))), b"x"), &meta).unwrap();
        }
        assert_eq!(w.stats().files.len(), 1);
        assert_eq!(w.oldest_unpublished_wal_position(), Some(5));
        let first_hour = w.stats().files[0].path.parent().unwrap().to_owned();
        let published = published_ranges(dir.path(), "n1", 4).unwrap();
        assert_eq!(published.ranges("b3.w1", &first_hour), [(3, 4)]);
        assert!(published.contains("b3.w1", &first_hour, 4));
        assert!(!published.contains("b3.w1", &first_hour, 7));
        // Files of older starts are not read.
        assert!(published_ranges(dir.path(), "n1", 5).unwrap().is_empty());
        w.publish_all().unwrap();
        assert_eq!(w.oldest_unpublished_wal_position(), None);
        let published = published_ranges(dir.path(), "n1", 1).unwrap();
        assert_eq!(published.ranges("b3.w1", &first_hour), [(3, 4), (7, 7)]);
        let second_hour = dir
            .path()
            .join("requests")
            .join(crate::partition::Partition::of(at(hour)).dir());
        assert_eq!(published.ranges("b3.w1", &second_hour), [(5, 5)]);
    }

    /// A file of an earlier version names one stream and its highest position: every line of
    /// the stream and the partition up to it is published.
    #[test]
    fn a_footer_of_an_earlier_version_reads_as_a_range_from_zero() {
        use crate::schema::TableSchema;
        use parquet::file::properties::WriterProperties;

        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("tcp/date=2026-11-22/hour=01");
        std::fs::create_dir_all(&part).unwrap();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![
                parquet::file::metadata::KeyValue::new(META_STREAM.to_owned(), "b2.w0".to_owned()),
                parquet::file::metadata::KeyValue::new(META_POSITION.to_owned(), "42".to_owned()),
            ]))
            .build();
        let file = File::create(part.join("n1-b2-000001.parquet")).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, crate::Table::Tcp.schema(), Some(props)).unwrap();
        w.write(&arrow_array::RecordBatch::new_empty(crate::Table::Tcp.schema()))
            .unwrap();
        w.close().unwrap();
        let published = published_ranges(dir.path(), "n1", 2).unwrap();
        assert_eq!(published.ranges("b2.w0", &part), [(0, 42)]);
        assert!(published.contains("b2.w0", &part, 0) && !published.contains("b2.w0", &part, 43));
    }

    /// Two writers of two streams fill one file of a partition between them: the file lists
    /// both streams' ranges, each stream's segments stay pinned until it is published, and a
    /// replay would skip exactly the lines it holds.
    #[test]
    fn a_file_filled_by_two_writers_records_both_streams() {
        use crate::testutil::{at, http, line};
        use crate::{RecordMeta, SpoolOptions, SpoolWriter};
        use weir_model::Record;

        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            fsync: false,
            row_group_rows: 2,
            ..SpoolOptions::new(dir.path(), "n1", "b4")
        };
        let mut a = SpoolWriter::create(opts.clone()).unwrap();
        let mut b = SpoolWriter::create(opts).unwrap();
        a.set_wal_stream("b4.w0");
        b.set_wal_stream("b4.w1");
        let hour = 3_600_000;
        let meta = RecordMeta::default();
        // Stream w0: 10 and 11 in the first hour (a row group), 12 in the second, 13 in the
        // first again (buffered). Stream w1: 20 and 21 in the first hour (a row group).
        for (position, ms) in [(10, 0), (11, 1), (12, hour), (13, 2)] {
            a.set_wal_position(position);
            a.append(&line(Record::Http(http(at(ms))), b"x"), &meta).unwrap();
        }
        for (position, ms) in [(20, 3), (21, 4)] {
            b.set_wal_position(position);
            b.append(&line(Record::Http(http(at(ms))), b"x"), &meta).unwrap();
        }
        assert_eq!(a.oldest_unpublished_wal_position(), Some(10));
        assert_eq!(b.oldest_unpublished_wal_position(), Some(20));
        // b publishes every idle file, a's rows with its own: a's first-hour row group is
        // published, its buffered rows (12, 13) are not.
        b.publish_all().unwrap();
        assert_eq!(b.oldest_unpublished_wal_position(), None);
        assert_eq!(a.oldest_unpublished_wal_position(), Some(12));
        assert_eq!(b.stats().files.len(), 1);
        let first_hour = b.stats().files[0].path.parent().unwrap().to_owned();
        let published = published_ranges(dir.path(), "n1", 4).unwrap();
        assert_eq!(published.ranges("b4.w0", &first_hour), [(10, 11)]);
        assert_eq!(published.ranges("b4.w1", &first_hour), [(20, 21)]);
        assert!(!published.contains("b4.w0", &first_hour, 13));
        let sa = a.finish().unwrap();
        let sb = b.finish().unwrap();
        assert_eq!(sa.files.len() + sb.files.len(), 3);
        let published = published_ranges(dir.path(), "n1", 4).unwrap();
        assert_eq!(published.ranges("b4.w0", &first_hour), [(10, 11), (13, 13)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A segment cut anywhere gives back every frame that ends before the cut, and reports
        /// the rest as torn.
        #[test]
        fn a_segment_truncated_anywhere_recovers_every_whole_frame(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..40),
            per_batch in 1usize..5,
            cut in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = WalWriter::create(opts(dir.path())).unwrap();
            let mut ends = Vec::new();
            let mut batches = Vec::new();
            for (i, chunk) in lines.chunks(per_batch).enumerate() {
                let refs: Vec<&[u8]> = chunk.iter().map(|l| l.as_slice()).collect();
                let b = batch(i as i64, &refs);
                w.append(&b).unwrap();
                ends.push(w.disk_bytes());
                batches.push(b);
            }
            let path = list_segments(&dir.path().join("wal"), "n1").unwrap()[0].path.clone();
            let bytes = std::fs::read(&path).unwrap();
            let cut = cut.index(bytes.len() + 1);
            let got = decode_segment(&bytes[..cut], 0);
            let whole = ends.iter().filter(|&&e| e as usize <= cut).count();
            prop_assert_eq!(got.batches.len(), whole);
            for ((_, g), want) in got.batches.iter().zip(&batches) {
                prop_assert!(same(g, want));
            }
            let header = MAGIC.len() + 2 + "b7.w0".len();
            if cut < header {
                let want = (cut > 0).then_some(Torn { offset: 0, bytes: cut as u64 });
                prop_assert_eq!(got.torn, want);
            } else {
                let recovered = if whole == 0 { header } else { ends[whole - 1] as usize };
                let want = (cut > recovered).then_some(Torn {
                    offset: recovered as u64,
                    bytes: (cut - recovered) as u64,
                });
                prop_assert_eq!(got.torn, want);
            }
        }
    }
}
