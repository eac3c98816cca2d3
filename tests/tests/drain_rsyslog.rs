//! A drain against a real syslog server: rsyslog (Debian's, started by the test on loopback
//! with its own config, `imtcp` taking octet-counted frames) receives exactly the lines of the
//! drained app, as RFC 5424. With rsyslog stopped mid-run, the drain keeps only its buffer's
//! newest lines and drops the oldest; when rsyslog is back, `Error L10 (output buffer overflow):
//! N messages dropped since T` arrives first, then the newest lines, and the count adds up. The
//! other app's tail gets every one of its lines throughout.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{TailChild, WeirServe};
use support::{find_program, skip_unless_ci};

const BUFFER: usize = 50;

/// A port free on loopback now (rsyslog binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rsyslogd writing `%app-name%|%procid%|%msg%` lines of what it receives over TCP to `out`.
struct Rsyslog {
    child: Option<Child>,
}

impl Rsyslog {
    fn start(bin: &Path, dir: &Path, port: u16, out: &Path) -> Rsyslog {
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="t" type="string" string="%app-name%|%procid%|%msg%\n")
action(type="omfile" file="{out}" template="t" flushInterval="1" asyncWriting="off")
"#,
                work = work.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        Rsyslog { child: Some(child) }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The lines rsyslog wrote so far, `app|procid|message` (the message without the space
/// rsyslog keeps before it).
fn received(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let (app, procid, msg) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            format!("{app}|{procid}|{}", msg.trim_start())
        })
        .collect()
}

fn wait_for(deadline: Instant, what: &str, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rsyslogd() -> Option<PathBuf> {
    find_program("rsyslogd").or_else(|| {
        let p = PathBuf::from("/usr/sbin/rsyslogd");
        p.is_file().then_some(p)
    })
}

#[test]
fn a_drain_forwards_its_app_keeps_its_newest_lines_while_down_and_says_l10() {
    let Some(bin) = rsyslogd() else {
        skip_unless_ci("rsyslogd (rsyslog)");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("drained.log");
    let mut rsyslog = Rsyslog::start(&bin, dir.path(), port, &out);
    let config =
        format!("[[drain]]\napp = \"web\"\nurl = \"syslog+tcp://127.0.0.1:{port}\"\nbuffer = {BUFFER}\n");
    let mut weir = WeirServe::start(dir.path(), &config);
    let other_tail = TailChild::spawn(dir.path(), "other", &weir.url(), &["--app", "other"]);
    // The drain is a session of the router too.
    weir.wait_tail_sessions(2, deadline);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |app: &str, i: usize| {
        let line = format!("<134>Nov 30 12:00:00 host1 {app}[7]: {app} line {i}");
        sock.send_to(line.as_bytes(), weir.udp).unwrap();
    };

    // 1. Up: exactly the web lines reach rsyslog, in order, as RFC 5424 fields.
    for i in 1..=20 {
        send("web", i);
        send("other", i);
    }
    wait_for(deadline, "20 drained lines", || received(&out).len() >= 20);
    let want: Vec<String> = (1..=20).map(|i| format!("web|7|web line {i}")).collect();
    assert_eq!(received(&out), want);

    // 2. rsyslog down: 200 more web lines; the drain notices and keeps its newest BUFFER.
    rsyslog.stop();
    for i in 21..=220 {
        send("web", i);
        send("other", i);
    }
    weir.wait_metrics(deadline, "every line accepted and the drain down", |m| {
        m.sum_where("weir_accepted_total", &["table=\"app\""]) >= 440
            && m.sum("weir_drain_connected") == 0
            && m.sum("weir_drain_sent_total") >= 20
    });
    assert!(
        other_tail.wait_until(deadline, |l| l.len() >= 220),
        "the other app's tail got {} lines",
        other_tail.lines().len()
    );

    // 3. rsyslog back on the same port: the L10 notice first, then the newest lines.
    let before = received(&out).len();
    let mut rsyslog = Rsyslog::start(&bin, dir.path(), port, &out);
    wait_for(deadline, "the newest web line after the outage", || {
        received(&out).last().is_some_and(|l| l.ends_with("web line 220"))
    });
    let after: Vec<String> = received(&out).split_off(before);
    let notices: Vec<usize> = (0..after.len())
        .filter(|&i| after[i].starts_with("weir|drain|Error L10 (output buffer overflow): "))
        .collect();
    assert!(!notices.is_empty(), "no L10 notice in {after:?}");
    let dropped: usize = notices
        .iter()
        .map(|&i| {
            after[i]
                .split(": ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap()
        })
        .sum();
    let last_notice = *notices.last().unwrap();
    let newest: Vec<usize> = after[last_notice + 1..]
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    // The buffer's newest lines come after the notice, in order. A batch the drain had read
    // when its write failed is kept and sent first: when the notice opened that batch (the
    // drain woke only after the buffer had overflowed), its lines come after the notice too,
    // just before the buffer's.
    assert!(
        newest.len() >= BUFFER,
        "at least the buffer's lines after the notice: {after:?}"
    );
    assert_eq!(
        newest,
        (221 - newest.len()..=220).collect::<Vec<_>>(),
        "the newest lines, in order, after the notice: {after:?}"
    );
    // Every line of the outage is delivered or counted as dropped.
    let delivered = after.len() - notices.len();
    assert_eq!(delivered + dropped, 200, "{after:?}");
    let m = weir.metrics();
    assert_eq!(m.sum("weir_drain_dropped_total"), dropped as u64);
    assert!(after.iter().all(|l| !l.starts_with("other|")), "{after:?}");
    assert_eq!(other_tail.lines().len(), 220, "the other app's tail is untouched");
    let (_, sources) = weir.get("/api/sources");
    assert!(
        sources.contains(&format!("\"drain\":\"syslog+tcp://127.0.0.1:{port}\"")),
        "{sources}"
    );
    weir.stop(deadline);
    rsyslog.stop();
}
