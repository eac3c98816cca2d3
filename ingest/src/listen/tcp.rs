//! The TCP receiver: a tokio task per connection, [`FrameDecoder`] over what each read returns,
//! one [`Batch`] per read. A full pipeline makes the connection wait (TCP pushes back on the
//! sender) instead of dropping; a stream cut mid-frame leaves its bytes as a `BadFrame` entry.
//!
//! A sender cannot exhaust the server ([`TcpLimits`]): past `max_connections` a new connection
//! is closed at once and counted, a connection silent for `idle_timeout` is closed and counted,
//! and failing accepts (out of file descriptors) back off instead of spinning.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Batch, BatchSink, EntryKind, ReceiverCounters};
use crate::framing::{Frame, FrameDecoder};

/// Bytes asked for per read.
const READ_BYTES: usize = 64 * 1024;

/// What TCP senders may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once; more are closed as they come.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 4096,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// The longest pause after failed accepts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until `shutdown` turns true; each connection is read by
/// its own task until it closes, idles past `limits.idle_timeout`, or shutdown.
pub async fn serve(
    listener: TcpListener,
    max_line: usize,
    limits: TcpLimits,
    sink: BatchSink,
    counters: Arc<ReceiverCounters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    if tasks.len() >= limits.max_connections {
                        counters.tcp_refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                    counters.tcp_connections.fetch_add(1, Ordering::Relaxed);
                    let (sink, counters, shutdown) = (sink.clone(), counters.clone(), shutdown.clone());
                    tasks.spawn(connection(stream, peer, max_line, limits.idle_timeout, sink, counters, shutdown));
                }
                Err(e) => {
                    counters.receive_errors.fetch_add(1, Ordering::Relaxed);
                    // Out of descriptors (EMFILE) and the like: retrying at once would spin.
                    if backoff.is_zero() {
                        tracing::warn!(error = %e, "TCP accept failed; backing off");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    max_line: usize,
    idle_timeout: Duration,
    sink: BatchSink,
    counters: Arc<ReceiverCounters>,
    mut shutdown: watch::Receiver<bool>,
) {
    counters.tcp_open.fetch_add(1, Ordering::Relaxed);
    let lane = sink.lane(&peer);
    let mut decoder = FrameDecoder::new(max_line);
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let n = tokio::select! {
            r = tokio::time::timeout(idle_timeout, stream.read(&mut buf)) => match r {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TCP read failed");
                    0
                }
                Err(_) => {
                    counters.tcp_timed_out.fetch_add(1, Ordering::Relaxed);
                    0
                }
            },
            _ = shutdown.changed() => 0,
        };
        let mut batch = sink.fresh();
        batch.received_at = weir_model::time::now_micros();
        if n == 0 {
            if let Some(frame) = decoder.finish() {
                push(&mut batch, frame, peer);
            }
        } else {
            counters.tcp_bytes.fetch_add(n as u64, Ordering::Relaxed);
            decoder.extend(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                push(&mut batch, frame, peer);
            }
        }
        counters
            .tcp_frames
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !batch.is_empty() && sink.send_async(lane, batch).await.is_err() {
            break;
        }
        if n == 0 {
            break;
        }
    }
    counters.tcp_open.fetch_sub(1, Ordering::Relaxed);
}

fn push(batch: &mut Batch, frame: Frame<'_>, peer: SocketAddr) {
    let kind = match frame {
        Frame::Line(_) => EntryKind::Message,
        Frame::TooLong { len, .. } => EntryKind::TooLong { len: len as u64 },
        Frame::BadCount(_) | Frame::Partial(_) => EntryKind::BadFrame,
    };
    batch.push(frame.bytes(), peer, kind);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_from_many_connections_and_a_cut_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = flume::bounded(1000);
        let (_rtx, recycled) = flume::bounded(1);
        let counters = Arc::new(ReceiverCounters::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(
            listener,
            100,
            TcpLimits::default(),
            BatchSink::new(vec![tx], recycled),
            counters.clone(),
            stop_rx,
        ));
        let mut clients = Vec::new();
        for c in 0..4 {
            clients.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                for i in 0..50 {
                    let msg = format!("<13>c{c} m{i}");
                    if i % 2 == 0 {
                        s.write_all(format!("{} {msg}", msg.len()).as_bytes())
                            .await
                            .unwrap();
                    } else {
                        s.write_all(format!("{msg}\n").as_bytes()).await.unwrap();
                    }
                }
                s.write_all(&[b'y'; 300]).await.unwrap();
                s.write_all(b"\n<13>half").await.unwrap();
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let mut messages = 0;
        let mut too_long = 0;
        let mut bad = Vec::new();
        while messages + too_long + bad.len() < 4 * 52 {
            let b = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv_async())
                .await
                .unwrap_or_else(|_| panic!("no batch in 30 s after {messages} messages, {too_long} too long"))
                .unwrap();
            for e in &b.entries {
                match e.kind {
                    EntryKind::Message => messages += 1,
                    EntryKind::TooLong { len } => {
                        assert_eq!((len, b.bytes(e).len()), (300, 100));
                        too_long += 1;
                    }
                    EntryKind::BadFrame => bad.push(b.bytes(e).to_vec()),
                }
            }
        }
        assert_eq!((messages, too_long), (200, 4));
        assert_eq!(bad, vec![b"<13>half".to_vec(); 4]);
        stop_tx.send(true).unwrap();
        server.await.unwrap();
        assert_eq!(counters.tcp_connections.load(Ordering::Relaxed), 4);
        assert_eq!(counters.tcp_open.load(Ordering::Relaxed), 0);
    }

    /// Past `max_connections` a connection is closed at once and counted; a silent one is closed
    /// after `idle_timeout` (paused time: no waiting) and counted.
    #[tokio::test(start_paused = true)]
    async fn excess_connections_are_refused_and_idle_ones_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _rx) = flume::bounded(1000);
        let (_rtx, recycled) = flume::bounded(1);
        let counters = Arc::new(ReceiverCounters::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let limits = TcpLimits {
            max_connections: 3,
            idle_timeout: Duration::from_secs(60),
        };
        let server = tokio::spawn(serve(
            listener,
            100,
            limits,
            BatchSink::new(vec![tx], recycled),
            counters.clone(),
            stop_rx,
        ));
        let mut open = Vec::new();
        for _ in 0..5 {
            open.push(TcpStream::connect(addr).await.unwrap());
        }
        // The two beyond the limit read end of stream at once.
        let mut closed = 0;
        for s in &mut open {
            let mut b = [0u8; 1];
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await {
                closed += 1;
            }
        }
        assert_eq!(closed, 2);
        assert_eq!(counters.tcp_refused.load(Ordering::Relaxed), 2);
        assert_eq!(counters.tcp_connections.load(Ordering::Relaxed), 3);
        // The three kept are closed once silent for a minute.
        tokio::time::sleep(Duration::from_secs(61)).await;
        for s in &mut open {
            let mut b = [0u8; 1];
            assert_eq!(s.read(&mut b).await.unwrap_or(0), 0);
        }
        assert_eq!(counters.tcp_timed_out.load(Ordering::Relaxed), 3);
        stop_tx.send(true).unwrap();
        server.await.unwrap();
    }
}
