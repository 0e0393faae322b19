//! Criterion keeps its estimates to itself, so the benches note the wall time
//! of every sample they measure and, at the end of each group, print the
//! throughput of both sides of each pair and their ratio, from the samples of
//! the measurement phase and by criterion's own slope estimate, with the CPU
//! time (all threads) one iteration cost each side.
//!
//! Criterion measures one side after the other, and this VM's speed can
//! change by half within minutes, so the tally then runs both sides again in
//! short alternating slots and prints the median ratio of neighbouring slots:
//! the figure that drift does not move.

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
    run: Run,
}

/// One run of a side: its iterations, wall time and CPU time.
#[derive(Clone, Copy)]
struct Run {
    iterations: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// Rounds of interleaved slots per work, each slot one side's run. Many
/// short ones: this VM's speed also swings within a second (a fixed loop
/// takes 190 to 670 ms), and the closer the two slots of a round, the more
/// of a swing they share.
const ROUNDS: usize = 30;
/// About how long one slot runs.
const SLOT: Duration = Duration::from_millis(100);

/// The peerd / quinn throughput ratio of each round of interleaved slots,
/// sorted.
struct Interleaved {
    work: String,
    ratios: Vec<f64>,
}

impl Interleaved {
    fn median(&self) -> f64 {
        let middle = self.ratios.len() / 2;
        (self.ratios[middle - 1] + self.ratios[middle]) / 2.0
    }
}

pub struct Tally {
    group: String,
    unit: Unit,
    /// Criterion's measurement phase is its last `sample_size` calls of a
    /// bench's routine; the warm-up calls before them are left out.
    sample_size: usize,
    samples: RefCell<Vec<Sample>>,
    interleaved: RefCell<Vec<Interleaved>>,
}

impl Tally {
    pub fn new(group: &str, unit: Unit, sample_size: usize) -> Self {
        Self {
            group: group.to_owned(),
            unit,
            sample_size,
            samples: RefCell::new(Vec::new()),
            interleaved: RefCell::new(Vec::new()),
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
            run: Run {
                iterations,
                elapsed,
                cpu: cpu.elapsed(),
            },
        });
        elapsed
    }

    /// Runs `quinn` and `peerd` (each given its number of iterations returns
    /// their wall time) in alternating slots, `ROUNDS` each, the side going
    /// first taking turns; only once criterion has measured both sides.
    pub fn interleave(
        &self,
        work: &str,
        quinn: &dyn Fn(u64) -> Duration,
        peerd: &dyn Fn(u64) -> Duration,
    ) {
        let (Some(quinn_phase), Some(_)) =
            (self.phase(work, Side::Quinn), self.phase(work, Side::Peerd))
        else {
            return;
        };
        let per_second = iterations_per_second(&quinn_phase);
        let iterations = ((per_second * SLOT.as_secs_f64()) as u64).max(1);
        let mut ratios: Vec<f64> = (0..ROUNDS)
            .map(|round| {
                let (quinn, peerd) = match round % 2 {
                    0 => (quinn(iterations), peerd(iterations)),
                    _ => {
                        let peerd = peerd(iterations);
                        (quinn(iterations), peerd)
                    }
                };
                quinn.as_secs_f64() / peerd.as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        self.interleaved.borrow_mut().push(Interleaved {
            work: work.to_owned(),
            ratios,
        });
    }

    /// The samples of criterion's measurement phase of one side of `work`;
    /// `None` unless a whole phase was seen (not in `cargo test` mode, nor
    /// for filtered benches).
    fn phase(&self, work: &str, side: Side) -> Option<Vec<Run>> {
        let samples = self.samples.borrow();
        let measured: Vec<Run> = samples
            .iter()
            .filter(|s| s.work == work && s.side == side)
            .map(|s| s.run)
            .collect();
        let start = measured.len().checked_sub(self.sample_size)?;
        Some(measured[start..].to_vec())
    }

    /// Per second, in the group's unit, and CPU µs per iteration.
    fn figures(&self, work: &str, side: Side) -> Option<(f64, f64)> {
        let phase = self.phase(work, side)?;
        let iterations: u64 = phase.iter().map(|run| run.iterations).sum();
        let cpu: Duration = phase.iter().map(|run| run.cpu).sum();
        let cpu_micros = cpu.as_secs_f64() * 1e6 / iterations as f64;
        let per_second = iterations_per_second(&phase);
        let throughput = match self.unit {
            Unit::Calls => per_second,
            Unit::Bytes(bytes) => per_second * bytes as f64 / 1e6,
        };
        Some((throughput, cpu_micros))
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
            "  {:<16} {:>10} {:>10} {:>6}   {:>19}   {:>10} {:>10} {:>6}",
            "work",
            "quinn",
            "peerd",
            "ratio",
            "interleaved (range)",
            "quinn CPU",
            "peerd CPU",
            "ratio"
        );
        let interleaved = self.interleaved.borrow();
        for (work, (quinn, quinn_cpu), (peerd, peerd_cpu)) in rows {
            let paired = match interleaved.iter().find(|i| i.work == work) {
                Some(i) => format!(
                    "{:.3} ({:.2}-{:.2})",
                    i.median(),
                    i.ratios[0],
                    i.ratios[i.ratios.len() - 1]
                ),
                None => "-".into(),
            };
            eprintln!(
                "  {work:<16} {quinn:>10.1} {peerd:>10.1} {:>6.3}   {paired:>19}   {quinn_cpu:>8.2}µs {peerd_cpu:>8.2}µs {:>6.3}",
                peerd / quinn,
                peerd_cpu / quinn_cpu,
            );
        }
        eprintln!();
    }
}

/// Criterion's slope: least squares of time = slope x iterations.
fn iterations_per_second(phase: &[Run]) -> f64 {
    let xy: f64 = phase
        .iter()
        .map(|run| run.iterations as f64 * run.elapsed.as_secs_f64())
        .sum();
    let xx: f64 = phase
        .iter()
        .map(|run| (run.iterations as f64).powi(2))
        .sum();
    xx / xy
}
