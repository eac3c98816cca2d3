//! Network receivers: sockets in, [`Batch`]es of messages out.
//!
//! A receiver never parses and never waits on what comes after it: it reads as many messages
//! as one system call gives ([`udp`] uses `recvmmsg`), copies them compactly into a [`Batch`],
//! and hands the batch to the pipeline with a non-blocking send. When the pipeline is full the
//! batch is dropped and counted ([`ReceiverCounters::dropped_queue_full`]); over TCP ([`tcp`])
//! the connection waits instead, which pushes back on the sender through TCP itself.
//!
//! Oversized and broken frames travel in the batch too ([`EntryKind`]), so that the pipeline
//! stores their bytes in the rejects table and every message is counted exactly once.
//!
//! The queues are bounded in memory as well as in batches: [`QueueBytes`] weighs each batch
//! as its buffers' capacity ([`Batch::weight`]) from the send until the pipeline releases it.
//! A batch that would pass the bound is "full" to UDP (dropped, counted) and waited out by TCP.

pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use weir_model::{Micros, RejectReason};

/// Where receivers put batches: one queue ("lane") per pipeline worker, and a way back for
/// spent batches. A sender (peer address) always maps to the same lane, so one sender's
/// messages are processed by one worker, in the order they arrived.
#[derive(Debug, Clone)]
pub struct BatchSink {
    lanes: Vec<flume::Sender<Batch>>,
    recycled: flume::Receiver<Batch>,
    queued: Arc<QueueBytes>,
}

/// The memory of the batches sent and not yet released by the pipeline, and its bound.
#[derive(Debug)]
pub struct QueueBytes {
    held: AtomicUsize,
    max: usize,
    room: tokio::sync::Notify,
}

impl QueueBytes {
    /// A bound of `max` bytes.
    pub fn new(max: usize) -> Arc<QueueBytes> {
        Arc::new(QueueBytes {
            held: AtomicUsize::new(0),
            max,
            room: tokio::sync::Notify::new(),
        })
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes if they fit (or nothing is held, so that one batch larger than
    /// the bound still goes through, alone).
    fn try_charge(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(n) <= self.max).then(|| held + n)
            })
            .is_ok()
    }

    /// Gives back what a batch was charged ([`Batch::weight`], unchanged since it was sent)
    /// once the pipeline is done with it.
    pub fn release(&self, batch: &Batch) {
        self.held.fetch_sub(batch.weight(), Ordering::AcqRel);
        self.room.notify_waiters();
    }
}

impl BatchSink {
    /// A sink over these lanes (at least one), bounded in batches only.
    pub fn new(lanes: Vec<flume::Sender<Batch>>, recycled: flume::Receiver<Batch>) -> BatchSink {
        assert!(!lanes.is_empty(), "a BatchSink needs at least one lane");
        BatchSink {
            lanes,
            recycled,
            queued: QueueBytes::new(usize::MAX),
        }
    }

    /// The same sink, bounded in memory by `queued` as well; the pipeline releases every batch
    /// it receives with [`QueueBytes::release`].
    pub fn with_bound(self, queued: Arc<QueueBytes>) -> BatchSink {
        BatchSink { queued, ..self }
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The lane of a sender.
    #[inline]
    pub fn lane(&self, peer: &SocketAddr) -> usize {
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => u32::from(v4) as u64,
            std::net::IpAddr::V6(v6) => {
                let b = u128::from(v6);
                (b as u64) ^ ((b >> 64) as u64)
            }
        };
        let h = (ip ^ ((peer.port() as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 32) % self.lanes.len() as u64) as usize
    }

    /// An empty batch, reused when one is available.
    pub fn fresh(&self) -> Batch {
        let mut b = self.recycled.try_recv().unwrap_or_default();
        b.clear();
        b
    }

    /// Hands a batch to a lane without waiting; `Full` when the lane or the memory bound is.
    pub fn try_send(&self, lane: usize, batch: Batch) -> Result<(), flume::TrySendError<Batch>> {
        let weight = batch.weight();
        if !self.queued.try_charge(weight) {
            return Err(flume::TrySendError::Full(batch));
        }
        self.lanes[lane].try_send(batch).inspect_err(|_| {
            self.queued.held.fetch_sub(weight, Ordering::AcqRel);
        })
    }

    /// Hands a batch to a lane, waiting for room in the lane and within the memory bound.
    pub async fn send_async(&self, lane: usize, batch: Batch) -> Result<(), flume::SendError<Batch>> {
        let weight = batch.weight();
        loop {
            let room = self.queued.room.notified();
            let mut room = std::pin::pin!(room);
            // Registered before the check, so a release in between is not missed.
            room.as_mut().enable();
            if self.queued.try_charge(weight) {
                break;
            }
            room.await;
        }
        self.lanes[lane].send_async(batch).await.inspect_err(|_| {
            self.queued.held.fetch_sub(weight, Ordering::AcqRel);
        })
    }
}

/// Messages from one receive call (UDP) or one read (TCP), stored back to back in `data`.
#[derive(Debug, Default)]
pub struct Batch {
    /// The messages' bytes.
    pub data: Vec<u8>,
    /// Where each message is in `data`, who sent it, and what it is.
    pub entries: Vec<Entry>,
    /// When the batch was received.
    pub received_at: Micros,
}

impl Batch {
    /// The bytes of one entry.
    #[inline]
    pub fn bytes(&self, e: &Entry) -> &[u8] {
        &self.data[e.start as usize..e.end as usize]
    }

    /// Appends a message.
    pub fn push(&mut self, bytes: &[u8], peer: SocketAddr, kind: EntryKind) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.entries.push(Entry {
            start,
            end: self.data.len() as u32,
            peer,
            kind,
        });
    }

    /// The heap memory the batch holds: its buffers' capacity.
    pub fn weight(&self) -> usize {
        self.data.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No messages.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One message of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Start offset in [`Batch::data`].
    pub start: u32,
    /// End offset (exclusive).
    pub end: u32,
    /// The sender.
    pub peer: SocketAddr,
    /// A message, or what was wrong with the frame.
    pub kind: EntryKind,
}

/// What a [`Entry`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole message, to be parsed.
    Message,
    /// A message longer than `max_line`: only its first bytes are kept.
    TooLong {
        /// The message's full length, when known.
        len: u64,
    },
    /// A frame that could not be delimited (bad octet count, stream cut mid-frame): its bytes.
    BadFrame,
}

impl EntryKind {
    /// The reject reason of a frame that is not a message.
    pub fn reject_reason(self) -> Option<RejectReason> {
        match self {
            EntryKind::Message => None,
            EntryKind::TooLong { .. } => Some(RejectReason::TooLong),
            EntryKind::BadFrame => Some(RejectReason::BadFraming),
        }
    }
}

/// Counters shared by the receivers, read by `/metrics`.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    /// UDP datagrams received.
    pub udp_datagrams: AtomicU64,
    /// UDP bytes received.
    pub udp_bytes: AtomicU64,
    /// `recvmmsg` calls that returned data (datagrams / calls = batching).
    pub udp_batches: AtomicU64,
    /// TCP frames received (messages and bad frames).
    pub tcp_frames: AtomicU64,
    /// TCP bytes received.
    pub tcp_bytes: AtomicU64,
    /// TCP connections accepted.
    pub tcp_connections: AtomicU64,
    /// TCP connections open now.
    pub tcp_open: AtomicU64,
    /// TCP connections closed at once because `max_connections` were open.
    pub tcp_refused: AtomicU64,
    /// TCP connections closed after sending nothing for `idle_timeout`.
    pub tcp_timed_out: AtomicU64,
    /// Messages dropped because the pipeline queue was full (UDP only).
    pub dropped_queue_full: AtomicU64,
    /// Receive errors other than time-outs.
    pub receive_errors: AtomicU64,
}

impl ReceiverCounters {
    #[inline]
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Reads the kernel's UDP counters from `/proc/net/snmp` (`InErrors`, `RcvbufErrors`), so that a
/// loss before weir is visible as well as weir's own. `None` where the file is not there.
pub fn kernel_udp_drops() -> Option<KernelUdpDrops> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    parse_snmp(&text)
}

/// The kernel's UDP error counters (all sockets of the machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelUdpDrops {
    /// Datagrams received.
    pub in_datagrams: u64,
    /// Datagrams that could not be delivered (includes receive-buffer overflows).
    pub in_errors: u64,
    /// Datagrams dropped because a socket's receive buffer was full.
    pub rcvbuf_errors: u64,
}

fn parse_snmp(text: &str) -> Option<KernelUdpDrops> {
    let mut lines = text.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .and_then(|i| values.get(i)?.parse().ok())
    };
    Some(KernelUdpDrops {
        in_datagrams: get("InDatagrams")?,
        in_errors: get("InErrors")?,
        rcvbuf_errors: get("RcvbufErrors")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_udp_counters() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 2107 4 17 2180 11 0 0 0 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(
            parse_snmp(text),
            Some(KernelUdpDrops {
                in_datagrams: 2107,
                in_errors: 17,
                rcvbuf_errors: 11
            })
        );
        assert_eq!(parse_snmp("Ip: a\nIp: 1\n"), None);
    }

    #[test]
    fn a_sender_keeps_its_lane_and_senders_spread() {
        let lanes: Vec<_> = (0..4).map(|_| flume::bounded(1).0).collect();
        let sink = BatchSink::new(lanes, flume::bounded(1).1);
        let mut used = [0; 4];
        for port in 1000..1400u16 {
            let peer = SocketAddr::from(([127, 0, 0, 1], port));
            let lane = sink.lane(&peer);
            assert_eq!(lane, sink.lane(&peer));
            used[lane] += 1;
        }
        assert!(used.iter().all(|n| *n > 50), "{used:?}");
    }

    #[test]
    fn batch_keeps_entries_apart() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut b = Batch::default();
        b.push(b"one", peer, EntryKind::Message);
        b.push(b"two!", peer, EntryKind::TooLong { len: 70000 });
        let got: Vec<&[u8]> = b.entries.iter().map(|e| b.bytes(e)).collect();
        assert_eq!(got, vec![&b"one"[..], b"two!"]);
        assert_eq!(b.entries[1].kind.reject_reason(), Some(RejectReason::TooLong));
        b.clear();
        assert!(b.is_empty());
    }
}
