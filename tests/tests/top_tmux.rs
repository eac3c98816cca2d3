//! `weir top` in a real terminal: tmux runs it against `weir serve --demo`, the test reads the
//! screen with `capture-pane` until the backends show with their numbers, expands one into its
//! servers, and quits with `q`, which must exit 0. A 40-column terminal shows fewer columns
//! and still the backends. Skipped without tmux unless `CI` is set.

#[allow(dead_code)]
#[path = "../haproxy/support.rs"]
mod support;

#[path = "../haproxy/serve_support.rs"]
mod serve_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serve_support::{weir_bin, WeirServe};
use support::{find_program, skip_unless_ci};

/// A tmux server of the test's own (`-L`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a detached session of `width` x `height`.
    fn start(&self, name: &str, width: u16, height: u16, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
    }

    fn screen(&self, name: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", name])
    }

    /// Waits until the screen satisfies `done`; panics with the screen at the deadline.
    fn wait_screen(&self, name: &str, deadline: Instant, done: impl Fn(&str) -> bool) -> String {
        loop {
            let s = self.screen(name);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed what was expected:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The lines of a screen that show a backend with its req/s.
fn backend_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|b| b.starts_with("be_"))
                && w.next().is_some_and(|r| r.parse::<f64>().is_ok())
        })
        .collect()
}

fn exit_code(path: &Path, deadline: Instant) -> String {
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "weir top did not exit after q");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn top_shows_backends_expands_servers_and_quits_on_q() {
    if find_program("tmux").is_none() {
        skip_unless_ci("tmux");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let dir = tempfile::tempdir().unwrap();
    let weir = WeirServe::start_with(dir.path(), "", &["--demo", "--demo-rate", "400"]);
    let tmux = Tmux {
        socket: format!("weir-top-{}", std::process::id()),
    };
    let exit = dir.path().join("top.exit");
    let command = format!(
        "{} top --server {} --span 30s; echo $? > {}; sleep 30",
        weir_bin().display(),
        weir.url(),
        exit.display()
    );
    tmux.start("wide", 120, 30, &command);
    let screen = tmux.wait_screen("wide", deadline, |s| backend_lines(s).len() >= 3);
    assert!(screen.contains("req/s") && screen.contains("apdex"), "{screen}");
    assert!(screen.contains("lines/s"), "weir's own health shows: {screen}");
    let first = backend_lines(&screen)[0]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // Enter on the first backend lists its servers under it.
    tmux.run(&["send-keys", "-t", "wide", "Enter"]);
    tmux.wait_screen("wide", deadline, |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines
            .iter()
            .position(|l| l.starts_with(&first))
            .and_then(|i| lines.get(i + 1))
            .is_some_and(|next| next.starts_with("  ") && !next.trim().is_empty())
    });

    tmux.run(&["send-keys", "-t", "wide", "q"]);
    assert_eq!(exit_code(&exit, deadline), "0");

    // A narrow terminal: fewer columns, the backends still there.
    let narrow_exit = dir.path().join("narrow.exit");
    let command = format!(
        "{} top --server {}; echo $? > {}; sleep 30",
        weir_bin().display(),
        weir.url(),
        narrow_exit.display()
    );
    tmux.start("narrow", 40, 20, &command);
    let screen = tmux.wait_screen("narrow", deadline, |s| backend_lines(s).len() >= 3);
    assert!(!screen.contains("apdex"), "{screen}");
    tmux.run(&["send-keys", "-t", "narrow", "q"]);
    assert_eq!(exit_code(&narrow_exit, deadline), "0");
}
