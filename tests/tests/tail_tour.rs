//! The README tour's `weir tail` commands against `weir serve --demo`: each one shows lines,
//! and the lines are the ones it asked for (the app and process in either naming convention,
//! which the demo both sends; the severity; the backend, status and total time).

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::time::{Duration, Instant};

use serve_support::{TailChild, WeirServe};

/// The `<PRI>` of a line as `weir tail` prints it.
fn severity(line: &str) -> u8 {
    let pri: u8 = line
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or_else(|| panic!("no PRI: {line}"));
    pri % 8
}

/// The syslog tag (`web.1` of `web.1[20117]:`) of an RFC 3164 line.
fn tag(line: &str) -> &str {
    let tag = line.split_whitespace().nth(4).unwrap_or_default();
    tag.split(['[', ':']).next().unwrap_or_default()
}

#[test]
fn every_tail_command_of_the_tour_shows_its_lines_on_the_demo() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let dir = tempfile::tempdir().unwrap();
    let weir = WeirServe::start_with(dir.path(), "", &["--demo", "--demo-rate", "2000"]);
    type Check = fn(&str) -> bool;
    let tour: [(&str, &[&str], usize, Check); 4] = [
        ("all", &["-n", "50"], 50, |_| true),
        ("app_ps", &["--app", "web", "--ps", "web.1"], 20, |l| {
            tag(l) == "web.1"
        }),
        ("level", &["--app", "web", "--level", "warn"], 5, |l| {
            tag(l).starts_with("web.") && severity(l) <= 4
        }),
        (
            "slow_5xx",
            &["--backend", "be_app", "--status", "5xx", "--slow", "500"],
            1,
            |l| {
                let timers = l
                    .split_whitespace()
                    .find(|f| f.matches('/').count() == 4)
                    .unwrap_or("");
                let total: i64 = timers
                    .rsplit('/')
                    .next()
                    .and_then(|t| t.trim_start_matches('+').parse().ok())
                    .unwrap_or(0);
                l.contains(" be_app/")
                    && l.split_whitespace().any(|f| f.len() == 3 && f.starts_with('5'))
                    && total >= 500
            },
        ),
    ];
    for (name, args, want, check) in tour {
        let tail = TailChild::spawn(dir.path(), name, &weir.url(), args);
        let shown = tail.wait_until(deadline, |lines| lines.len() >= want);
        let lines = tail.lines();
        assert!(
            shown,
            "weir tail {args:?} showed {} lines: {lines:?} {}",
            lines.len(),
            tail.stderr_text()
        );
        for l in &lines {
            assert!(check(l), "weir tail {args:?} showed {l}");
        }
    }
}
