//! Criterion keeps its estimates to itself, so the benches note the wall time
//! of every sample they measure and, at the end of each group, print the
//! throughput of both sides of each pair and their ratio, from the samples of
//! the measurement phase and by criterion's own slope estimate, with the CPU
//! time (all threads) one iteration cost each side.

use std::cell::RefCell;
use std::time::Duration;

use super::cpu::CpuClock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Quinn,
    Peerd,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Quinn => "quinn",
            Side::Peerd => "peerd",
        }
    }
}

/// What one iteration is worth.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Calls,
    /// Bytes moved by one iteration, shown as MB/s (10^6 bytes).
    Bytes(u64),
}

struct Sample {
    work: String,
    side: Side,
    iterations: u64,
    elapsed: Duration,
    cpu: Duration,
}

pub struct Tally {
    group: String,
    unit: Unit,
    /// Criterion's measurement phase is its last `sample_size` calls of a
    /// bench's routine; the warm-up calls before them are left out.
    sample_size: usize,
    samples: RefCell<Vec<Sample>>,
}

impl Tally {
    pub fn new(group: &str, unit: Unit, sample_size: usize) -> Self {
        Self {
            group: group.to_owned(),
            unit,
            sample_size,
            samples: RefCell::new(Vec::new()),
        }
    }

    /// Notes one sample (its wall time and the process's CPU time over it)
    /// and hands its wall time back to criterion.
    pub fn note(
        &self,
        work: &str,
        side: Side,
        iterations: u64,
        elapsed: Duration,
        cpu: CpuClock,
    ) -> Duration {
        self.samples.borrow_mut().push(Sample {
            work: work.to_owned(),
            side,
            iterations,
            elapsed,
            cpu: cpu.elapsed(),
        });
        elapsed
    }

    /// Per second, in the group's unit, and CPU µs per iteration; `None`
    /// unless a whole measurement phase was seen (not in `cargo test` mode,
    /// nor for filtered benches).
    fn figures(&self, work: &str, side: Side) -> Option<(f64, f64)> {
        let samples = self.samples.borrow();
        let measured: Vec<_> = samples
            .iter()
            .filter(|s| s.work == work && s.side == side)
            .collect();
        let phase = measured.get(measured.len().checked_sub(self.sample_size)?..)?;
        let iterations: u64 = phase.iter().map(|s| s.iterations).sum();
        let cpu: Duration = phase.iter().map(|s| s.cpu).sum();
        let cpu_micros = cpu.as_secs_f64() * 1e6 / iterations as f64;
        Some((self.throughput(phase), cpu_micros))
    }

    fn throughput(&self, phase: &[&Sample]) -> f64 {
        // Criterion's slope: least squares of time = slope x iterations.
        let iterations = |s: &&Sample| s.iterations as f64;
        let xy: f64 = phase
            .iter()
            .map(|s| iterations(s) * s.elapsed.as_secs_f64())
            .sum();
        let xx: f64 = phase.iter().map(|s| iterations(s).powi(2)).sum();
        let per_second = xx / xy;
        match self.unit {
            Unit::Calls => per_second,
            Unit::Bytes(bytes) => per_second * bytes as f64 / 1e6,
        }
    }

    fn works(&self) -> Vec<String> {
        let mut works: Vec<String> = Vec::new();
        for sample in self.samples.borrow().iter() {
            if !works.contains(&sample.work) {
                works.push(sample.work.clone());
            }
        }
        works
    }

    /// The table of the group, on stderr like criterion's own progress.
    pub fn print(&self) {
        let unit = match self.unit {
            Unit::Calls => "calls/s",
            Unit::Bytes(_) => "MB/s",
        };
        let rows: Vec<_> = self
            .works()
            .into_iter()
            .filter_map(|work| {
                let quinn = self.figures(&work, Side::Quinn)?;
                let peerd = self.figures(&work, Side::Peerd)?;
                Some((work, quinn, peerd))
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        eprintln!("\n{}: peerd / quinn ({unit})", self.group);
        eprintln!(
            "  {:<16} {:>10} {:>10} {:>6}   {:>10} {:>10} {:>6}",
            "work", "quinn", "peerd", "ratio", "quinn CPU", "peerd CPU", "ratio"
        );
        for (work, (quinn, quinn_cpu), (peerd, peerd_cpu)) in rows {
            eprintln!(
                "  {work:<16} {quinn:>10.1} {peerd:>10.1} {:>6.3}   {quinn_cpu:>8.2}µs {peerd_cpu:>8.2}µs {:>6.3}",
                peerd / quinn,
                peerd_cpu / quinn_cpu,
            );
        }
        eprintln!();
    }
}
