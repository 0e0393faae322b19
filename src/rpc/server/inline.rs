//! Whether a call may take its first poll on its connection's task. Such a
//! poll holds back the connection's next streams, so a call that runs long
//! in it gives every call of the node a task of its own for a while: tasks
//! a multi-thread runtime can run side by side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Longest first poll that keeps calls on their connection's task.
const BUDGET: Duration = Duration::from_micros(200);
/// How long calls get their own tasks after a first poll over the budget.
const PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct InlinePolls {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which calls are spawned.
    paused_until: AtomicU64,
}

impl InlinePolls {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
        }
    }

    pub fn allowed(&self, now: Instant) -> bool {
        self.nanos(now) >= self.paused_until.load(Ordering::Relaxed)
    }

    /// Notes a first poll that began at `started` and lasted `took`.
    pub fn ran(&self, started: Instant, took: Duration) {
        if took > BUDGET {
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

    #[test]
    fn short_polls_keep_calls_inline_and_a_long_one_pauses_them_for_a_while() {
        let polls = InlinePolls::new();
        let start = polls.epoch + Duration::from_secs(10);
        assert!(polls.allowed(start));
        polls.ran(start, BUDGET);
        assert!(polls.allowed(start + BUDGET));
        let took = BUDGET * 10;
        polls.ran(start, took);
        let ended = start + took;
        assert!(!polls.allowed(ended));
        assert!(!polls.allowed(ended + PAUSE - Duration::from_millis(1)));
        assert!(polls.allowed(ended + PAUSE));
    }

    #[test]
    fn an_earlier_long_poll_does_not_shorten_a_later_pause() {
        let polls = InlinePolls::new();
        let start = polls.epoch + Duration::from_secs(10);
        polls.ran(start + Duration::from_secs(5), BUDGET * 2);
        polls.ran(start, BUDGET * 2);
        assert!(!polls.allowed(start + Duration::from_secs(5) + PAUSE));
    }
}
