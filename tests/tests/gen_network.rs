//! `weir gen` as a network sender, black box: the real binary sends `--kind mix` to a UDP
//! socket and to a TCP listener (LF-terminated and RFC 6587 octet-counted), and the test
//! receives every message, counts them, and parses each with `weir_ingest::parse_line`: each
//! is an HAProxy HTTP/TCP log or an application line, under the PRI its kind is sent with
//! (HAProxy `local0.info`, applications `local7`).
//!
//! Every wait is bounded by a socket time-out; nothing sleeps. Nothing races either: the UDP
//! test sends no more datagrams than the receiving socket's buffer holds unread, so not one is
//! lost however late the receiving thread runs.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use weir_e2e::weir_bin as weir;

use weir_ingest::ParseOptions;
use weir_model::Record;

/// Lines each test sends.
const COUNT: usize = 5000;

/// How long any single wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The most a datagram of `weir gen` (a few hundred bytes) costs in a receive buffer: the
/// kernel charges its `truesize`, 1,280 bytes for 300 bytes of payload, 2,304 up to 1,500.
const DATAGRAM_COST: usize = 4096;

/// Starts `weir gen --kind mix --count count` with `extra` arguments.
fn spawn_gen(count: usize, extra: &[&str]) -> Child {
    let count = count.to_string();
    Command::new(weir())
        .args(["gen", "--kind", "mix", "--seed", "5", "--count", &count])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting weir gen")
}

/// Waits for the sender and checks its closing line on stderr (the sender's own `--count`
/// bounds it; the sockets' time-outs bound the receivers).
fn finish(child: Child, count: usize) -> String {
    let Output { status, stderr, .. } = child.wait_with_output().expect("waiting for weir gen");
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(status.success(), "weir gen failed: {stderr}");
    assert!(
        stderr.contains(&format!("weir gen: {count} lines in ")) && stderr.contains(" lines/s"),
        "{stderr}"
    );
    stderr
}

/// What the messages were, by kind; panics on a message that does not parse as expected.
#[derive(Debug, Default, PartialEq, Eq)]
struct Kinds {
    http: usize,
    tcp: usize,
    app: usize,
}

impl Kinds {
    fn total(&self) -> usize {
        self.http + self.tcp + self.app
    }

    /// Checks one received message (a full syslog message, PRI first).
    fn check(&mut self, msg: &[u8]) {
        let shown = String::from_utf8_lossy(msg);
        assert!(msg.starts_with(b"<"), "no PRI: {shown}");
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        let line = weir_ingest::parse_line(msg, &opts);
        let h = line.header;
        assert!(h.timestamp.is_some() && h.host.is_some(), "{shown}");
        match line.record {
            Record::Http(_) | Record::Tcp(_) => {
                assert_eq!((h.facility, h.severity), (Some(16), Some(6)), "{shown}");
                assert_eq!(h.app, Some("haproxy"), "{shown}");
                if matches!(line.record, Record::Http(_)) {
                    self.http += 1;
                } else {
                    self.tcp += 1;
                }
            }
            Record::App(_) => {
                assert_eq!(h.facility, Some(23), "{shown}");
                let dyno = h.app.unwrap_or("");
                assert!(
                    ["web.1", "web.2", "worker.1"].contains(&dyno) && h.procid.is_some(),
                    "{shown}"
                );
                self.app += 1;
            }
            Record::Reject(r) => panic!("{r:?}: {shown}"),
        }
    }

    /// The mix has all three kinds, applications about one line in five.
    fn assert_mixed(&self, count: usize) {
        assert_eq!(self.total(), count, "{self:?}");
        assert!(self.http > 0 && self.tcp > 0, "{self:?}");
        assert!((count / 10..count * 3 / 10).contains(&self.app), "{self:?}");
    }
}

#[test]
fn udp_sends_one_datagram_per_line() {
    let rx = weir_ingest::listen::udp::bind("127.0.0.1:0".parse().unwrap(), 8 << 20, false)
        .expect("binding a UDP receiver");
    rx.set_read_timeout(Some(DEADLINE)).unwrap();
    let granted = weir_ingest::listen::udp::recv_buffer_size(&rx).expect("SO_RCVBUF");
    // As many datagrams as the buffer holds if nobody read them: none can be dropped.
    let count = COUNT.min(granted / DATAGRAM_COST);
    assert!(
        count >= 100,
        "the kernel granted a {granted}-byte UDP receive buffer: too small to hold 100 \
         datagrams; raise net.core.rmem_max (sysctl) to 4 MiB or more"
    );
    let to = format!("udp://{}", rx.local_addr().unwrap());
    let child = spawn_gen(count, &["--to", &to]);
    let receiver = std::thread::spawn(move || receive_datagrams(&rx, count));
    let stderr = finish(child, count);
    assert!(stderr.contains(" sends retried"), "{stderr}");
    let kinds = receiver.join().expect("the receiver thread");
    kinds.assert_mixed(count);
}

fn receive_datagrams(rx: &UdpSocket, n: usize) -> Kinds {
    let mut kinds = Kinds::default();
    let mut buf = vec![0u8; 65536];
    for i in 0..n {
        let len = rx
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of {n}: {e}"));
        let msg = &buf[..len];
        assert!(!msg.ends_with(b"\n"), "a datagram carries no terminator");
        kinds.check(msg);
    }
    kinds
}

/// Starts `weir gen` toward a fresh listener with `extra` arguments, and returns everything it
/// sent. The listener reads on its own thread, so a sender that fails is reported as such.
fn send_over_tcp(extra: &[&str]) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("tcp://{}", listener.local_addr().unwrap());
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accepting weir's connection");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut data = Vec::new();
        stream.read_to_end(&mut data).expect("reading the stream");
        data
    });
    let mut args = vec!["--to", to.as_str()];
    args.extend_from_slice(extra);
    finish(spawn_gen(COUNT, &args), COUNT);
    reader.join().expect("the reader thread")
}

#[test]
fn tcp_sends_lf_terminated_messages() {
    let data = send_over_tcp(&[]);
    assert!(data.ends_with(b"\n"));
    let mut kinds = Kinds::default();
    for line in BufReader::new(&data[..]).split(b'\n') {
        kinds.check(&line.unwrap());
    }
    kinds.assert_mixed(COUNT);
}

#[test]
fn tcp_sends_octet_counted_frames() {
    let data = send_over_tcp(&["--framing", "octet"]);
    let mut kinds = Kinds::default();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .expect("a frame opens with `LEN `");
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad frame length {:?}", String::from_utf8_lossy(&rest[..sp])));
        let frame = &rest[sp + 1..sp + 1 + len];
        assert!(!frame.contains(&b'\n'), "an octet-counted frame has no LF");
        kinds.check(frame);
        rest = &rest[sp + 1 + len..];
    }
    kinds.assert_mixed(COUNT);
}
