//! The reconnection schedule of pinned peers: exponential backoff with jitter.

use std::time::Duration;

/// Attempt n waits `min(base × factor^n, cap)`, scaled by a random factor in
/// `[1 − jitter, 1 + jitter]` so that many nodes restarting together do not
/// reconnect in lockstep. After a connection that stayed up for
/// `reset_after`, the next loss starts again from attempt 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The wait before attempt 0. Default 0.5 s.
    pub base: Duration,
    /// Each further attempt waits this many times longer. Default 2.
    pub factor: u32,
    /// No wait is longer than this (before jitter). Default 60 s.
    pub cap: Duration,
    /// The relative spread, from 0.0 to 1.0. Default 0.2 (±20 %).
    pub jitter: f64,
    /// A connection up this long counts as healthy. Default 30 s.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// 0.5 s, doubling, at most 60 s, ±20 %, reset after 30 s of health.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            factor: 2,
            cap: Duration::from_secs(60),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// `unit` is uniform in [0, 1]: 0.5 gives the schedule without jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let growth = self.factor.checked_pow(attempt).unwrap_or(u32::MAX);
        let plain = self.base.saturating_mul(growth).min(self.cap);
        let scale = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
        plain.mul_f64(scale)
    }
}

/// A uniform random number in [0, 1] from the system's secure generator.
pub(crate) fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let backoff = Backoff::default();
        let schedule: Vec<u64> = (0..10)
            .map(|n| backoff.delay(n, 0.5).as_millis() as u64)
            .collect();
        assert_eq!(
            schedule,
            [
                500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000
            ]
        );
        assert_eq!(
            backoff.delay(1000, 0.5),
            backoff.cap,
            "no overflow for huge attempts"
        );
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(2, 0.0), Duration::from_millis(1600));
        assert_eq!(backoff.delay(2, 1.0), Duration::from_millis(2400));
        for _ in 0..100 {
            let delay = backoff.delay(2, random_unit());
            assert!(delay >= Duration::from_millis(1600) && delay <= Duration::from_millis(2400));
        }
    }
}
