//! The rate at which lookups may dial addresses that other nodes told us: a
//! token bucket shared by every lookup, so no answer, however long, makes
//! this node dial in bulk.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(super) struct DialBudget {
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl DialBudget {
    /// `per_second` dials a second, in bursts of as many (at least one).
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            state: Mutex::new(Bucket {
                tokens: per_second,
                updated: Instant::now(),
            }),
        }
    }

    /// Waits for a dial's turn; false if it would come after `deadline`.
    pub(crate) async fn take(&self, deadline: Instant) -> bool {
        let wait = {
            let mut bucket = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let earned = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + earned * self.per_second).min(self.per_second);
            bucket.updated = now;
            // Taken now, even if owed: waiters queue behind each other.
            bucket.tokens -= 1.0;
            match bucket.tokens >= 0.0 {
                true => Duration::ZERO,
                false => Duration::from_secs_f64(-bucket.tokens / self.per_second),
            }
        };
        let turn = Instant::now() + wait;
        if turn > deadline {
            self.give_back();
            return false;
        }
        tokio::time::sleep_until(turn).await;
        true
    }

    fn give_back(&self) {
        let mut bucket = self.state.lock().unwrap_or_else(|e| e.into_inner());
        bucket.tokens = (bucket.tokens + 1.0).min(self.per_second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let budget = DialBudget::new(10);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(budget.take(far).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..20 {
            assert!(budget.take(far).await);
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1999) && took <= Duration::from_millis(2001),
            "20 more at 10/s took {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_after_the_deadline_is_refused_at_once() {
        let budget = DialBudget::new(1);
        let start = Instant::now();
        assert!(budget.take(start + Duration::from_secs(5)).await);
        assert!(!budget.take(start + Duration::from_millis(500)).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(
            budget.take(start + Duration::from_secs(5)).await,
            "the refused turn was given back"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
