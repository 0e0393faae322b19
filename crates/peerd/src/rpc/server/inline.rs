//! Whether a call may take its first poll on its connection's task. Such a
//! poll holds back the connection's next streams, so when most first polls
//! run long, every call of the node gets a task of its own for a while:
//! tasks a multi-thread runtime can run side by side.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Longest first poll counted as short.
const BUDGET: Duration = Duration::from_micros(500);
/// How far long first polls must outnumber short ones, counted as they
/// come, before calls are spawned: one long poll alone is as likely the
/// thread losing its CPU as the handler working.
const LONG_POLLS_AHEAD: u32 = 16;
/// How long calls get their own tasks then.
const PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct InlinePolls {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which calls are spawned.
    paused_until: AtomicU64,
    /// Long polls less short ones, never below zero.
    long_ahead: AtomicU32,
}

impl InlinePolls {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
            long_ahead: AtomicU32::new(0),
        }
    }

    pub(crate) fn allowed(&self, now: Instant) -> bool {
        self.nanos(now) >= self.paused_until.load(Ordering::Relaxed)
    }

    /// Notes a first poll that began at `started` and lasted `took`.
    pub(crate) fn ran(&self, started: Instant, took: Duration) {
        if took <= BUDGET {
            // A load first: the common case writes nothing.
            if self.long_ahead.load(Ordering::Relaxed) > 0 {
                let _ = self
                    .long_ahead
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
            return;
        }
        if self.long_ahead.fetch_add(1, Ordering::Relaxed) + 1 >= LONG_POLLS_AHEAD {
            self.long_ahead.store(0, Ordering::Relaxed);
            let until = self.nanos(started + took + PAUSE);
            self.paused_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        // u64 nanoseconds last 584 years.
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(5);

    fn run(polls: &InlinePolls, at: Instant, took: Duration, times: u32) {
        for _ in 0..times {
            polls.ran(at, took);
        }
    }

    #[test]
    fn mostly_long_first_polls_pause_inline_polls_for_a_while() {
        let polls = InlinePolls::new();
        let start = polls.epoch + Duration::from_secs(10);
        run(&polls, start, LONG, LONG_POLLS_AHEAD - 1);
        assert!(polls.allowed(start + LONG));
        polls.ran(start, LONG);
        let ended = start + LONG;
        assert!(!polls.allowed(ended));
        assert!(!polls.allowed(ended + PAUSE - Duration::from_millis(1)));
        assert!(polls.allowed(ended + PAUSE));
    }

    #[test]
    fn long_polls_among_many_short_ones_do_not_pause_them() {
        let polls = InlinePolls::new();
        let start = polls.epoch + Duration::from_secs(10);
        for _ in 0..1000 {
            polls.ran(start, LONG);
            run(&polls, start, BUDGET, 3);
        }
        assert!(polls.allowed(start + LONG));
    }

    #[test]
    fn an_earlier_pause_does_not_shorten_a_later_one() {
        let polls = InlinePolls::new();
        let start = polls.epoch + Duration::from_secs(10);
        let later = start + Duration::from_secs(5);
        run(&polls, later, LONG, LONG_POLLS_AHEAD);
        run(&polls, start, LONG, LONG_POLLS_AHEAD);
        assert!(!polls.allowed(later + PAUSE));
    }
}
