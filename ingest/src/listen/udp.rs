//! The UDP receiver: one thread per socket, `recvmmsg` into a scratch area, messages copied back
//! to back into a [`Batch`](super::Batch) and sent on without blocking.
//!
//! The socket gets a large `SO_RCVBUF` and may share its address with others (`SO_REUSEPORT`,
//! the kernel spreads senders over them). A read time-out lets the loop notice shutdown; at
//! shutdown what the kernel already holds is drained before the thread ends, so a clean stop
//! loses nothing that reached the socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrLike, SockaddrStorage};
use socket2::{Domain, Protocol, Socket, Type};

use super::{BatchSink, EntryKind, ReceiverCounters};

/// How a UDP receiver reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpOptions {
    /// Longest message kept whole; a longer datagram becomes a `TooLong` entry.
    pub max_line: usize,
    /// Datagrams asked for per `recvmmsg` call.
    pub batch: usize,
    /// How often the loop looks at the shutdown flag when no data arrives.
    pub poll: Duration,
    /// After a short batch, how long to let datagrams gather before the next receive.
    pub gather: Duration,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            max_line: 65536,
            batch: 128,
            poll: Duration::from_millis(50),
            gather: Duration::from_millis(10),
        }
    }
}

/// Binds a UDP socket with a receive buffer of `rcvbuf` bytes and, when `reuse_port`,
/// `SO_REUSEPORT`. The buffer is asked for with `SO_RCVBUFFORCE` first, which a privileged
/// process may use past `net.core.rmem_max` (as rsyslog's imudp does), then with `SO_RCVBUF`,
/// which the kernel caps at `rmem_max`; [`recv_buffer_size`] tells what was granted.
pub fn bind(addr: SocketAddr, rcvbuf: usize, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &rcvbuf).is_err() {
        // Best effort: an unprivileged process gets at most rmem_max.
        let _ = socket.set_recv_buffer_size(rcvbuf);
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The receive buffer the kernel actually granted.
pub fn recv_buffer_size(socket: &UdpSocket) -> io::Result<usize> {
    socket2::SockRef::from(socket).recv_buffer_size()
}

/// Reads `socket` until `shutdown` is set, then drains what the kernel holds and returns.
pub fn run(
    socket: UdpSocket,
    opts: UdpOptions,
    sink: BatchSink,
    counters: Arc<ReceiverCounters>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<()> {
    socket.set_read_timeout(Some(opts.poll))?;
    let slot = opts.max_line + 1;
    let n = opts.batch.max(1);
    let mut scratch = vec![0u8; slot * n];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
    let mut meta: Vec<(usize, Option<SocketAddr>, bool)> = Vec::with_capacity(n);
    let fd = socket.as_raw_fd();
    let mut draining = false;
    loop {
        if !draining && shutdown.load(Ordering::Relaxed) {
            draining = true;
        }
        // MSG_TRUNC makes Linux report an oversized datagram's real length.
        let wait = if draining {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::MSG_WAITFORONE
        };
        let flags = wait | MsgFlags::MSG_TRUNC;
        meta.clear();
        {
            let mut iovs: Vec<[io::IoSliceMut<'_>; 1]> = scratch
                .chunks_mut(slot)
                .map(|c| [io::IoSliceMut::new(c)])
                .collect();
            match recvmmsg(fd, &mut headers, iovs.iter_mut(), flags, None) {
                Ok(results) => {
                    for r in results {
                        let truncated = r.flags.contains(MsgFlags::MSG_TRUNC);
                        meta.push((r.bytes, r.address.and_then(to_socket_addr), truncated));
                    }
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                    if draining {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => {
                    ReceiverCounters::add(&counters.receive_errors, 1);
                    if draining {
                        return Ok(());
                    }
                    tracing::warn!(error = %e, "UDP receive failed");
                    continue;
                }
            }
        }
        if meta.is_empty() {
            if draining {
                return Ok(());
            }
            continue;
        }
        // A short batch means the socket is nearly empty: rather than wake up for every few
        // datagrams, let them gather in the kernel's buffer for a moment. At high rates this
        // turns thousands of wake-ups a second into hundreds of full batches; the cost is at
        // most `gather` of extra latency.
        let short = meta.len() < n && !draining;
        // One batch per lane: a sender's messages always go to the same pipeline worker, so
        // they stay in the order they arrived in.
        let mut batches: Vec<_> = (0..sink.lanes()).map(|_| None).collect();
        let received_at = weir_model::time::now_micros();
        let mut bytes = 0u64;
        for (i, &(len, peer, truncated)) in meta.iter().enumerate() {
            let data = &scratch[i * slot..i * slot + len.min(slot)];
            let peer = peer.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            bytes += len as u64;
            let batch = batches[sink.lane(&peer)].get_or_insert_with(|| {
                let mut b = sink.fresh();
                b.received_at = received_at;
                b
            });
            if truncated || len > opts.max_line {
                batch.push(
                    &data[..opts.max_line.min(data.len())],
                    peer,
                    EntryKind::TooLong { len: len as u64 },
                );
            } else {
                batch.push(data, peer, EntryKind::Message);
            }
        }
        ReceiverCounters::add(&counters.udp_datagrams, meta.len() as u64);
        ReceiverCounters::add(&counters.udp_bytes, bytes);
        ReceiverCounters::add(&counters.udp_batches, 1);
        for (lane, batch) in batches.into_iter().enumerate() {
            let Some(batch) = batch else { continue };
            let count = batch.len() as u64;
            match sink.try_send(lane, batch) {
                Ok(()) => {}
                Err(flume::TrySendError::Full(_)) => {
                    ReceiverCounters::add(&counters.dropped_queue_full, count)
                }
                Err(flume::TrySendError::Disconnected(_)) => return Ok(()),
            }
        }
        if short && !opts.gather.is_zero() {
            std::thread::sleep(opts.gather);
        }
    }
}

fn to_socket_addr(s: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = s.as_sockaddr_in6() {
        return Some(SocketAddr::V6((*v6).into()));
    }
    let _ = s.family();
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::Batch;

    fn sink(cap: usize) -> (BatchSink, flume::Receiver<Batch>) {
        let (tx, rx) = flume::bounded(cap);
        let (_rtx, recycled) = flume::bounded(1);
        (BatchSink::new(vec![tx], recycled), rx)
    }

    /// Runs the receiver on a thread until `done(counters)` holds, then shuts it down and
    /// waits for it to return. Datagrams take their time through the kernel (loopback
    /// delivery may be deferred under load), so the test waits for what it sent to be counted,
    /// with a deadline, instead of assuming it arrived when `send_to` returned.
    fn receive_until(
        socket: UdpSocket,
        opts: UdpOptions,
        sink: BatchSink,
        done: impl Fn(&ReceiverCounters) -> bool,
        send: impl FnOnce(),
    ) -> Arc<ReceiverCounters> {
        let counters = Arc::new(ReceiverCounters::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let receiver = {
            let (counters, shutdown) = (counters.clone(), shutdown.clone());
            std::thread::spawn(move || run(socket, opts, sink, counters, shutdown))
        };
        send();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done(&counters) {
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver counted {} datagrams in 30 s",
                counters.udp_datagrams.load(Ordering::Relaxed)
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        shutdown.store(true, Ordering::Relaxed);
        receiver.join().expect("receiver thread").expect("receiver");
        counters
    }

    #[test]
    fn receives_batches_until_shutdown() {
        let socket = bind("127.0.0.1:0".parse().unwrap(), 1 << 20, false).unwrap();
        let addr = socket.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let big = vec![b'x'; 3000];
        let (sink, rx) = sink(1000);
        let opts = UdpOptions {
            max_line: 1000,
            ..UdpOptions::default()
        };
        let counters = receive_until(
            socket,
            opts,
            sink,
            |c| c.udp_datagrams.load(Ordering::Relaxed) == 101,
            || {
                for i in 0..100 {
                    sender.send_to(format!("<13>line {i}").as_bytes(), addr).unwrap();
                }
                sender.send_to(&big, addr).unwrap();
            },
        );
        let mut got = Vec::new();
        for b in rx.try_iter() {
            for e in &b.entries {
                got.push((b.bytes(e).to_vec(), e.kind, e.peer));
            }
        }
        assert_eq!(got.len(), 101);
        assert_eq!(got[7].0, b"<13>line 7");
        assert_eq!(got[7].2, sender.local_addr().unwrap());
        assert_eq!(got[100].1, EntryKind::TooLong { len: 3000 });
        assert_eq!(got[100].0.len(), 1000);
        assert_eq!(counters.udp_datagrams.load(Ordering::Relaxed), 101);
    }

    #[test]
    fn a_full_pipeline_drops_and_counts_without_blocking() {
        let socket = bind("127.0.0.1:0".parse().unwrap(), 1 << 20, false).unwrap();
        let addr = socket.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Nobody reads the pipeline's one-batch queue: the first batch fills it, and the
        // receiver must drop and count the rest rather than wait.
        let (sink, rx) = sink(1);
        let opts = UdpOptions {
            batch: 10,
            ..UdpOptions::default()
        };
        let counters = receive_until(
            socket,
            opts,
            sink,
            |c| c.udp_datagrams.load(Ordering::Relaxed) == 50,
            || {
                for i in 0..50 {
                    sender.send_to(format!("m{i}").as_bytes(), addr).unwrap();
                }
            },
        );
        let kept: u64 = rx.try_iter().map(|b| b.len() as u64).sum();
        let dropped = counters.dropped_queue_full.load(Ordering::Relaxed);
        assert_eq!(kept + dropped, 50);
        assert!(dropped > 0);
    }

    #[test]
    fn ipv6_loopback() {
        let socket = match bind("[::1]:0".parse().unwrap(), 1 << 20, false) {
            Ok(s) => s,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "no IPv6 loopback under CI: {e}");
                eprintln!("skipped: no IPv6 loopback here ({e})");
                return;
            }
        };
        let addr = socket.local_addr().unwrap();
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        let (sink, rx) = sink(10);
        receive_until(
            socket,
            UdpOptions::default(),
            sink,
            |c| c.udp_datagrams.load(Ordering::Relaxed) == 1,
            || {
                sender.send_to(b"<13>over v6", addr).unwrap();
            },
        );
        let b = rx.try_recv().unwrap();
        assert_eq!(b.bytes(&b.entries[0]), b"<13>over v6");
        assert_eq!(b.entries[0].peer, sender.local_addr().unwrap());
    }
}
