//! [`OpenFiles`]: the Parquet files a spool's writers are filling, at most a few per partition,
//! shared by every [`crate::SpoolWriter`] made from clones of one [`crate::SpoolOptions`]
//! (import's workers, serve's pipeline workers).
//!
//! A writer checks a partition's file out, adds a row group to it with no lock held, and checks
//! it back in; a file is only ever in one writer's hands, and a second file of the same
//! partition is opened only when two writers flush that partition at the same moment. So
//! however the lines of a log are spread over writers and hours, a partition's rows end up in
//! about one file. The files holding a file descriptor (those whose Parquet file is open; a file
//! that only spilled rows holds none) are bounded (`max_open_files`): past it, the one used least
//! recently is handed back to be published.
//!
//! Since a file holds rows of several writers, the pool also keeps what each writer must know
//! of the rows it handed over until their file is published: the WAL positions they pin per
//! stream (a segment is deleted only once every file made from it is published), the rows and
//! bytes kept in memory for each writer (held rows, the retry bound), and the retry budget of
//! the writers sharing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::file::{OpenFile, Released, WalRange};
use crate::partition::Partition;
use crate::schema::Table;

/// A table and hour.
pub(crate) type Key = (Table, Partition);

/// A file waiting for its next row group.
#[derive(Debug)]
struct Idle {
    file: OpenFile,
    /// When the oldest row in the file arrived (for `rotate_age`).
    since: Instant,
    /// The pool's clock when it was checked in (for least recently used).
    used: u64,
}

#[derive(Debug, Default)]
struct State {
    idle: HashMap<Key, Vec<Idle>>,
    /// Files checked out (or being created, or taken to be published), per partition.
    busy: HashMap<Key, usize>,
    /// Idle files holding a file descriptor.
    descriptors: usize,
    clock: u64,
    /// Writers sharing the pool that have not finished, and the ids handed out.
    writers: usize,
    next_writer: u64,
    /// The sum of the writers' retry bounds.
    retry_budget: usize,
    /// First WAL positions of the ranges in unpublished files, per stream (a multiset).
    pins: HashMap<Arc<str>, BTreeMap<u64, usize>>,
    /// Rows in memory in the files (pending or copies) and their weight, per writer.
    held: HashMap<u64, (u64, usize)>,
}

/// The files being filled in one spool; see the module docs.
#[derive(Debug, Default)]
pub struct OpenFiles {
    state: Mutex<State>,
}

/// A file checked out of the pool, with when its oldest row arrived.
pub(crate) struct CheckedOut {
    pub(crate) file: OpenFile,
    pub(crate) since: Instant,
}

/// What [`OpenFiles::check_out`] found for a partition.
pub(crate) enum Slot {
    /// An idle file, now the caller's (boxed: a file's writer state is large).
    Idle(Box<CheckedOut>),
    /// Every file of the partition is in another writer's hands.
    Busy,
    /// The partition has no file.
    Free,
}

impl State {
    fn busy_done(&mut self, key: Key) {
        if let Some(n) = self.busy.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(&key);
            }
        }
    }

    fn release(&mut self, released: &[Released]) {
        for r in released {
            if let Some((rows, bytes)) = self.held.get_mut(&r.writer) {
                *rows = rows.saturating_sub(r.rows);
                *bytes = bytes.saturating_sub(r.weight);
            }
        }
    }

    /// The weight of the files' rows in memory, every writer's.
    fn held_bytes(&self) -> usize {
        self.held.values().map(|h| h.1).sum()
    }

    fn unpin(&mut self, ranges: &[WalRange]) {
        for r in ranges {
            if let Some(pins) = self.pins.get_mut(&r.stream) {
                if let Some(n) = pins.get_mut(&r.first) {
                    *n -= 1;
                    if *n == 0 {
                        pins.remove(&r.first);
                    }
                }
            }
        }
    }
}

impl OpenFiles {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A writer that panicked while holding the lock left the map consistent: every
        // operation below completes its change before it can fail.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more writer shares the pool, adding `retry_bytes` to the retry budget; returns its
    /// id.
    pub(crate) fn join(&self, retry_bytes: usize) -> u64 {
        let mut s = self.lock();
        s.writers += 1;
        s.next_writer += 1;
        s.retry_budget = s.retry_budget.saturating_add(retry_bytes);
        s.next_writer
    }

    /// A writer is done; `true` for the last one, which publishes what the pool still holds.
    pub(crate) fn leave(&self, retry_bytes: usize) -> bool {
        let mut s = self.lock();
        s.writers = s.writers.saturating_sub(1);
        s.retry_budget = s.retry_budget.saturating_sub(retry_bytes);
        s.writers == 0
    }

    /// An idle file of `key` when there is one, else whether the partition's files are all
    /// busy or it has none.
    pub(crate) fn check_out(&self, key: Key) -> Slot {
        let mut s = self.lock();
        let Some(files) = s.idle.get_mut(&key) else {
            return if s.busy.contains_key(&key) {
                Slot::Busy
            } else {
                Slot::Free
            };
        };
        let Some(idle) = files.pop() else {
            return Slot::Free;
        };
        if files.is_empty() {
            s.idle.remove(&key);
        }
        *s.busy.entry(key).or_default() += 1;
        if idle.file.holds_descriptor() {
            s.descriptors -= 1;
        }
        Slot::Idle(Box::new(CheckedOut {
            file: idle.file,
            since: idle.since,
        }))
    }

    /// Marks a new file of `key`, about to be created by the caller, as checked out.
    pub(crate) fn claim(&self, key: Key) {
        *self.lock().busy.entry(key).or_default() += 1;
    }

    /// Records a batch of `rows` (weighing `weight`) that `writer` added to a file, with the
    /// WAL lines it holds.
    pub(crate) fn added(&self, writer: u64, rows: u64, weight: usize, wal: Option<&WalRange>) {
        let mut s = self.lock();
        let held = s.held.entry(writer).or_default();
        held.0 += rows;
        held.1 += weight;
        if let Some(r) = wal {
            *s.pins
                .entry(r.stream.clone())
                .or_default()
                .entry(r.first)
                .or_default() += 1;
        }
    }

    /// Records rows that left the files' memory (written with no copy, dropped, lost).
    pub(crate) fn released(&self, released: &[Released]) {
        if !released.is_empty() {
            self.lock().release(released);
        }
    }

    /// Records a file published: its rows leave memory and its WAL ranges are free.
    pub(crate) fn published(&self, released: &[Released], ranges: &[WalRange]) {
        let mut s = self.lock();
        s.release(released);
        s.unpin(ranges);
    }

    /// Forgets the WAL ranges of a file dropped unpublished with nothing to write again.
    pub(crate) fn unpin(&self, ranges: &[WalRange]) {
        self.lock().unpin(ranges);
    }

    /// The lowest WAL position of `stream` in a file not yet published.
    pub fn oldest_unpublished_wal_position(&self, stream: &str) -> Option<u64> {
        self.lock()
            .pins
            .get(stream)
            .and_then(|p| p.keys().next().copied())
    }

    /// Rows that `writer` added that are in memory in the files (pending or copies).
    pub(crate) fn held_rows(&self, writer: u64) -> u64 {
        self.lock().held.get(&writer).map_or(0, |h| h.0)
    }

    /// The weight of the files' rows in memory.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.lock().held_bytes()
    }

    /// Whether the files' rows in memory weigh more than the writers' retry budget, or those
    /// `writer` added more than its own share, `retry_bytes`.
    pub(crate) fn over_retry_budget(&self, writer: u64, retry_bytes: usize) -> bool {
        let s = self.lock();
        s.held_bytes() > s.retry_budget || s.held.get(&writer).is_some_and(|h| h.1 > retry_bytes)
    }

    /// Returns a checked-out file to the pool; when more than `max_open` idle files then hold a
    /// file descriptor, returns the one of them used least recently, checked out, for the
    /// caller to publish.
    pub(crate) fn check_in(&self, key: Key, out: CheckedOut, max_open: usize) -> Option<(Key, CheckedOut)> {
        let mut s = self.lock();
        s.busy_done(key);
        s.clock += 1;
        let used = s.clock;
        if out.file.holds_descriptor() {
            s.descriptors += 1;
        }
        s.idle.entry(key).or_default().push(Idle {
            file: out.file,
            since: out.since,
            used,
        });
        if s.descriptors <= max_open {
            return None;
        }
        let (_, key, i) = idle_files(&s)
            .filter(|(.., f)| f.file.holds_descriptor())
            .map(|(k, i, f)| (f.used, k, i))
            .min()?;
        let lru = take(&mut s, key, i)?;
        Some((key, lru))
    }

    /// A checked-out file of `key` was published (or dropped) instead of checked in.
    pub(crate) fn closed(&self, key: Key) {
        self.lock().busy_done(key);
    }

    /// Checks out the idle files whose oldest row is at least `age` old (every idle file for
    /// `Duration::ZERO`), in partition order, for the caller to publish.
    pub(crate) fn take_aged(&self, age: Duration) -> Vec<(Key, CheckedOut)> {
        let now = Instant::now();
        let mut s = self.lock();
        let mut keys: Vec<Key> = s
            .idle
            .iter()
            .filter(|(_, v)| v.iter().any(|i| now.duration_since(i.since) >= age))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        let mut out = Vec::new();
        for key in keys {
            while let Some(i) = s
                .idle
                .get(&key)
                .and_then(|v| v.iter().position(|i| now.duration_since(i.since) >= age))
            {
                if let Some(file) = take(&mut s, key, i) {
                    out.push((key, file));
                }
            }
        }
        out
    }

    /// Checks out the idle file holding the most of `writer`'s rows in memory (then the most
    /// rows), for a writer over the retry budget; with the writers' budget not exceeded
    /// (`writer` over its own share), only a file holding some of its rows.
    pub(crate) fn take_most_held(&self, writer: u64) -> Option<(Key, CheckedOut)> {
        let mut s = self.lock();
        let any = s.held_bytes() > s.retry_budget;
        let (_, _, key, i) = idle_files(&s)
            .map(|(k, i, f)| (f.file.held_bytes_of(writer), f.file.held_bytes(), k, i))
            .filter(|(own, held, ..)| *own > 0 || (any && *held > 0))
            .max()?;
        let file = take(&mut s, key, i)?;
        Some((key, file))
    }

    /// Checks out the idle files with rows waiting to be written.
    pub(crate) fn take_pending(&self) -> Vec<(Key, CheckedOut)> {
        let mut s = self.lock();
        let mut found: Vec<(Key, usize)> = idle_files(&s)
            .filter(|(.., f)| f.file.has_pending())
            .map(|(k, i, _)| (k, i))
            .collect();
        // Taking one shifts the later ones of its partition: take from the back.
        found.sort_unstable();
        found
            .into_iter()
            .rev()
            .filter_map(|(key, i)| take(&mut s, key, i).map(|f| (key, f)))
            .collect()
    }
}

/// Every idle file, with its partition and its index among the partition's.
fn idle_files(s: &State) -> impl Iterator<Item = (Key, usize, &Idle)> {
    s.idle
        .iter()
        .flat_map(|(k, v)| v.iter().enumerate().map(move |(i, f)| (*k, i, f)))
}

/// Checks out the `i`-th idle file of `key`.
fn take(s: &mut State, key: Key, i: usize) -> Option<CheckedOut> {
    let files = s.idle.get_mut(&key)?;
    if i >= files.len() {
        return None;
    }
    let idle = files.swap_remove(i);
    if files.is_empty() {
        s.idle.remove(&key);
    }
    if idle.file.holds_descriptor() {
        s.descriptors -= 1;
    }
    *s.busy.entry(key).or_default() += 1;
    Some(CheckedOut {
        file: idle.file,
        since: idle.since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::Group;
    use crate::schema::TableSchema;
    use arrow_array::RecordBatch;

    fn file(dir: &std::path::Path, name: &str) -> OpenFile {
        let props = parquet::file::properties::WriterProperties::builder().build();
        // Every batch, however small, is a row group of the Parquet file.
        OpenFile::create(dir, dir, name, Table::Tcp.schema(), props, 0, false)
    }

    #[test]
    fn files_go_back_to_their_partition_and_the_least_recent_is_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let pool = OpenFiles::default();
        let key = |hour| (Table::Tcp, Partition { hour });
        let (a, b, c) = (key(1), key(2), key(3));
        assert!(matches!(pool.check_out(a), Slot::Free));
        let since = Instant::now();
        let batch = RecordBatch::new_empty(Table::Tcp.schema());
        for (k, name) in [(a, "a"), (b, "b"), (c, "c")] {
            pool.claim(k);
            assert!(matches!(pool.check_out(k), Slot::Busy));
            let mut file = file(dir.path(), name);
            // A row group opens the Parquet file: the file now holds a descriptor.
            file.write_batch(batch.clone(), false).unwrap();
            assert!(file.holds_descriptor());
            let evicted = pool.check_in(k, CheckedOut { file, since }, 2);
            if k == c {
                // Past two, the least recently used goes: `a`.
                let (k, f) = evicted.expect("a third open file evicts one");
                assert_eq!(k, a);
                assert!(format!("{:?}", f.file).contains(".a.tmp"), "{:?}", f.file);
                pool.closed(k);
            } else {
                assert!(evicted.is_none());
            }
        }
        // A file that wrote nothing holds no descriptor and counts against nothing.
        pool.claim(a);
        assert!(pool
            .check_in(
                a,
                CheckedOut {
                    file: file(dir.path(), "a2"),
                    since
                },
                2
            )
            .is_none());
        let Slot::Idle(out) = pool.check_out(b) else {
            panic!("b is idle");
        };
        assert!(matches!(pool.check_out(b), Slot::Busy));
        pool.closed(b);
        drop(out);
        assert!(matches!(pool.check_out(b), Slot::Free));
        let aged = pool.take_aged(Duration::ZERO);
        assert_eq!(aged.len(), 2);
        assert!(
            matches!(pool.check_out(c), Slot::Busy),
            "taken files are checked out"
        );
        for (k, _) in aged {
            pool.closed(k);
        }
        assert!(matches!(pool.check_out(c), Slot::Free));
    }

    #[test]
    fn the_last_writer_to_leave_is_told() {
        let pool = OpenFiles::default();
        let (a, b) = (pool.join(10), pool.join(10));
        assert_ne!(a, b);
        assert!(!pool.leave(10));
        assert!(pool.leave(10));
    }

    #[test]
    fn wal_positions_stay_pinned_until_their_file_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let pool = OpenFiles::default();
        let writer = pool.join(1 << 20);
        let stream: Arc<str> = Arc::from("b1.w0");
        let range = |first, last| WalRange {
            stream: stream.clone(),
            first,
            last,
        };
        let mut f = file(dir.path(), "f");
        for r in [range(5, 9), range(12, 14)] {
            let group = Group {
                batch: RecordBatch::new_empty(Table::Tcp.schema()),
                weight: 100,
                writer,
            };
            pool.added(writer, group.rows(), group.weight, Some(&r));
            f.add(group, Some(r));
        }
        assert_eq!(pool.oldest_unpublished_wal_position("b1.w0"), Some(5));
        assert_eq!(pool.oldest_unpublished_wal_position("b1.w1"), None);
        assert!(!pool.over_retry_budget(writer, 1 << 20));
        assert!(pool.over_retry_budget(writer, 199));
        let released = f.write_pending(false).unwrap();
        pool.released(&released);
        f.publish(false).unwrap();
        pool.published(&f.release_published(), f.wal_ranges());
        assert_eq!(pool.oldest_unpublished_wal_position("b1.w0"), None);
        assert_eq!(pool.held_rows(writer), 0);
    }
}
