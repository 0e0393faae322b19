//! CPU time of this whole process (every thread: the server's and the
//! client's), read from `/proc`. Wall-clock throughput on a shared VM swings
//! with the neighbours; the CPU one unit of work costs moves far less.

use std::time::Duration;

/// The CPU time all live threads of this process have used so far; zero
/// where `/proc` is not there.
pub fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// Measures the CPU time used from its creation on.
pub struct CpuClock(Duration);

impl CpuClock {
    pub fn start() -> Self {
        Self(process_cpu())
    }

    pub fn elapsed(&self) -> Duration {
        process_cpu().saturating_sub(self.0)
    }
}
