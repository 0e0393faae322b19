//! A lock-free histogram of durations with fixed buckets, in seconds as
//! Prometheus expects: observing is one bucket increment and one add.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, as nanoseconds and as the `le` label.
/// From 100 µs (a call on loopback) to 30 s (the default call deadline).
const BOUNDS: [(u64, &str); 17] = [
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
    (30_000_000_000, "30"),
];

/// Counts per bucket (not cumulative; the last is +Inf) and the sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram's values at one moment, cumulative as exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(le, observations <= le)`, ending with `("+Inf", count)`.
    pub buckets: Vec<(&'static str, u64)>,
    /// Observations in all.
    pub count: u64,
    /// The sum of all observations, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// Adds one observation; durations beyond `u64` nanoseconds (584 years)
    /// saturate.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS.partition_point(|&(bound, _)| bound < nanos);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now, made cumulative. Buckets are read one by one while
    /// observations may continue, so `count` is their sum, not a snapshot of
    /// one instant.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let labels = BOUNDS.iter().map(|&(_, le)| le).chain(["+Inf"]);
        let mut count = 0;
        let buckets = labels
            .zip(&self.buckets)
            .map(|(le, bucket)| {
                count += bucket.load(Ordering::Relaxed);
                (le, count)
            })
            .collect();
        let sum_nanos = self.sum_nanos.load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: sum_nanos as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cumulative(snapshot: &HistogramSnapshot, le: &str) -> u64 {
        snapshot.buckets.iter().find(|(l, _)| *l == le).unwrap().1
    }

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(100));
        histogram.observe(Duration::from_micros(101));
        histogram.observe(Duration::from_secs(31));
        let snapshot = histogram.snapshot();
        assert_eq!(cumulative(&snapshot, "0.0001"), 1, "le is inclusive");
        assert_eq!(cumulative(&snapshot, "0.00025"), 2);
        assert_eq!(cumulative(&snapshot, "30"), 2);
        assert_eq!(cumulative(&snapshot, "+Inf"), 3);
        assert_eq!(snapshot.count, 3);
        assert!((snapshot.sum_seconds - 31.000201).abs() < 1e-9);
    }

    #[test]
    fn bounds_rise_and_their_labels_match_them() {
        for pair in BOUNDS.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        for (nanos, le) in BOUNDS {
            assert_eq!(le.parse::<f64>().unwrap(), nanos as f64 / 1e9);
        }
    }
}
