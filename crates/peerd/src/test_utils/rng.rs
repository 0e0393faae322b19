//! A tiny seeded random generator, so a fault pattern can be replayed from
//! its seed without a dependency.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, well mixed, not cryptographic.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next number, uniform over all of `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }

    #[test]
    fn fractions_are_in_the_unit_interval_and_spread() {
        let mut rng = SplitMix64::new(1);
        let samples: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let below_tenth = samples.iter().filter(|x| **x < 0.1).count();
        assert!((800..1200).contains(&below_tenth), "{below_tenth}");
    }
}
