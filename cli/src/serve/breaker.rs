//! The disk circuit breaker that `serve`'s pipeline workers share: a failed write to the spool
//! or the WAL (a full disk, an unwritable folder) opens it; while it is open no worker writes
//! (rows are held in memory, lines are not logged), and one worker at a time probes the disk
//! when the backoff has passed; a probe that works closes it. Each open and each close is one
//! [`Change`], logged once by whoever caused it, however many workers and lines are involved.
//!
//! The state machine takes the time as an argument, so that tests drive it without a clock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use weir_store::StoreError;

use super::metrics::Metrics;

/// What a worker may do with the disk now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The breaker is closed: write.
    Write,
    /// The breaker is open and the backoff has passed: this worker (alone) tries the disk.
    Probe,
    /// The breaker is open: hold rows in memory, do not log lines.
    Hold,
}

/// A change of state, to be logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Writes started failing.
    Opened,
    /// A probe worked: writes resume.
    Closed,
}

#[derive(Debug)]
struct State {
    open: bool,
    probing: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    closed_at: Option<Instant>,
}

/// The breaker; see the module docs.
#[derive(Debug)]
pub struct DiskBreaker {
    state: Mutex<State>,
    first: Duration,
    max: Duration,
}

impl DiskBreaker {
    /// A closed breaker whose first retry comes `first` after it opens; the wait doubles after
    /// each failed probe, up to `max`. A breaker that opens again within `max` of closing
    /// resumes from its last wait, so a disk that keeps refilling cannot make it flap (and
    /// log) faster than that.
    pub fn new(first: Duration, max: Duration) -> DiskBreaker {
        DiskBreaker {
            state: Mutex::new(State {
                open: false,
                probing: false,
                retry_at: None,
                backoff: first,
                closed_at: None,
            }),
            first,
            max,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether writes may go to disk, without claiming the probe: for a writer whose success
    /// says too little about the disk to close the breaker (the `windows` table's).
    pub fn is_closed(&self) -> bool {
        !self.state().open
    }

    /// Tells the breaker how an attempt made with `access` went, and logs a change of state:
    /// one line when it opens, one when it closes, whoever and however many failed.
    pub fn settle(&self, access: Access, failure: Option<&StoreError>, now: Instant, metrics: &Metrics) {
        let probe = access == Access::Probe;
        let change = match failure {
            Some(_) => self.failed(probe, now),
            None if access != Access::Hold => self.succeeded(probe, now),
            None => None,
        };
        match change {
            Some(Change::Opened) => {
                metrics.disk_breaker_open.set(1);
                metrics.disk_breaker_opened.inc();
                let error = failure.map(ToString::to_string).unwrap_or_default();
                tracing::error!(%error, "spool disk writes failed: rows are held in memory and lines are not logged to the WAL until a retry works (tails, windows and /metrics go on)");
            }
            Some(Change::Closed) => {
                metrics.disk_breaker_open.set(0);
                tracing::warn!("spool disk writes work again: the rows held in memory are being written");
            }
            None => {}
        }
    }

    /// What the caller may do at `now`; [`Access::Probe`] goes to one caller per backoff.
    pub fn access(&self, now: Instant) -> Access {
        let mut s = self.state();
        if !s.open {
            return Access::Write;
        }
        if !s.probing && s.retry_at.is_none_or(|at| now >= at) {
            s.probing = true;
            return Access::Probe;
        }
        Access::Hold
    }

    /// A write failed at `now` (`probe`: it was the probe's).
    pub fn failed(&self, probe: bool, now: Instant) -> Option<Change> {
        let mut s = self.state();
        if !s.open {
            s.backoff = match s.closed_at {
                Some(at) if now.saturating_duration_since(at) < self.max => (s.backoff * 2).min(self.max),
                _ => self.first,
            };
            s.open = true;
            s.probing = false;
            s.retry_at = Some(now + s.backoff);
            return Some(Change::Opened);
        }
        if probe {
            s.backoff = (s.backoff * 2).min(self.max);
            s.probing = false;
            s.retry_at = Some(now + s.backoff);
        }
        None
    }

    /// A write worked at `now`; only the probe's success closes an open breaker (a write
    /// begun before it opened proves nothing about the disk now).
    pub fn succeeded(&self, probe: bool, now: Instant) -> Option<Change> {
        let mut s = self.state();
        if s.open && probe {
            s.open = false;
            s.probing = false;
            s.closed_at = Some(now);
            return Some(Change::Closed);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn a_failure_opens_once_and_holds_until_the_backoff_passes() {
        let b = DiskBreaker::new(FIRST, MAX);
        let t0 = Instant::now();
        assert_eq!(b.access(t0), Access::Write);
        assert_eq!(b.failed(false, t0), Some(Change::Opened));
        // Other workers' failures in flight change nothing and log nothing.
        assert_eq!(b.failed(false, t0), None);
        assert_eq!(b.access(t0 + FIRST / 2), Access::Hold);
        assert_eq!(b.access(t0 + FIRST), Access::Probe);
        // One prober at a time.
        assert_eq!(b.access(t0 + FIRST), Access::Hold);
    }

    #[test]
    fn failed_probes_double_the_wait_up_to_the_cap() {
        let b = DiskBreaker::new(FIRST, MAX);
        let mut now = Instant::now();
        b.failed(false, now);
        let mut waits = Vec::new();
        for _ in 0..7 {
            let mut wait = Duration::ZERO;
            while b.access(now + wait) != Access::Probe {
                wait += Duration::from_millis(500);
            }
            now += wait;
            waits.push(wait.as_secs_f64());
            assert_eq!(b.failed(true, now), None);
        }
        assert_eq!(waits, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
    }

    #[test]
    fn only_a_probe_closes_it_and_a_quick_reopening_backs_off() {
        let b = DiskBreaker::new(FIRST, MAX);
        let t0 = Instant::now();
        b.failed(false, t0);
        assert_eq!(b.succeeded(false, t0), None, "a write begun before the failure");
        let t1 = t0 + FIRST;
        assert_eq!(b.access(t1), Access::Probe);
        assert_eq!(b.succeeded(true, t1), Some(Change::Closed));
        assert_eq!(b.access(t1), Access::Write);
        assert_eq!(b.succeeded(false, t1), None);
        // Full again at once: the next retry waits twice as long.
        assert_eq!(b.failed(false, t1), Some(Change::Opened));
        assert_eq!(b.access(t1 + FIRST), Access::Hold);
        assert_eq!(b.access(t1 + 2 * FIRST), Access::Probe);
        b.succeeded(true, t1 + 2 * FIRST);
        // Long after: the first wait again.
        let later = t1 + 2 * FIRST + MAX;
        assert_eq!(b.failed(false, later), Some(Change::Opened));
        assert_eq!(b.access(later + FIRST), Access::Probe);
    }

    #[test]
    fn settling_counts_each_change_once_however_many_fail() {
        let (b, m) = (DiskBreaker::new(FIRST, MAX), Metrics::new());
        let t0 = Instant::now();
        let full = StoreError::Io {
            op: "write",
            path: "spool/wal/x.wal".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        for _ in 0..100 {
            let access = b.access(t0);
            b.settle(access, Some(&full), t0, &m);
        }
        assert_eq!((m.disk_breaker_open.get(), m.disk_breaker_opened.get()), (1, 1));
        // Holding workers that wrote nothing do not close it; the probe does.
        b.settle(Access::Hold, None, t0, &m);
        assert_eq!(m.disk_breaker_open.get(), 1);
        let access = b.access(t0 + FIRST);
        assert_eq!(access, Access::Probe);
        b.settle(access, None, t0 + FIRST, &m);
        assert_eq!((m.disk_breaker_open.get(), m.disk_breaker_opened.get()), (0, 1));
    }
}
