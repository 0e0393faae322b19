//! The load itself: `concurrency` workers, each making one `Echo` call after
//! another on its connection until the phase's budget is spent, recording
//! each outcome; and the progress they make, reported about once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report::Recorder;
use super::{BenchError, Stop};
use peerd::Node;
use peerd::identity::NodeId;
use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::{CallOptions, Code, RpcClient};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Calls that are not counted.
    WarmUp,
    Measure,
}

/// How a phase is going, so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub phase: Phase,
    /// Since the phase started.
    pub elapsed: Duration,
    /// Calls finished in this phase, answered or failed.
    pub calls: u64,
    pub errors: u64,
}

impl Progress {
    pub fn calls_per_sec(&self) -> f64 {
        match self.elapsed.as_secs_f64() {
            seconds if seconds > 0.0 => self.calls as f64 / seconds,
            _ => 0.0,
        }
    }
}

/// When workers stop starting calls.
#[derive(Debug)]
pub(crate) enum Budget {
    Until(Instant),
    Calls(AtomicU64),
}

impl Budget {
    pub fn for_stop(stop: Stop, start: Instant) -> Self {
        match stop {
            Stop::Duration(duration) => Self::Until(start + duration),
            Stop::Calls(calls) => Self::Calls(AtomicU64::new(calls)),
        }
    }

    /// Whether one more call may start; if so, it is counted as started.
    pub fn take(&self) -> bool {
        match self {
            Self::Until(deadline) => Instant::now() < *deadline,
            Self::Calls(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// The call every worker repeats, and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub target: NodeId,
    pub request: EchoRequest,
    pub options: CallOptions,
    pub concurrency: usize,
}

/// Runs one phase to the end of its budget and returns what it recorded.
pub(crate) async fn run_phase(
    load: &Load,
    nodes: &[Node],
    phase: Phase,
    budget: Budget,
    progress: &mut impl FnMut(&Progress),
) -> Result<Recorder, BenchError> {
    let budget = Arc::new(budget);
    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for i in 0..load.concurrency {
        let client = nodes[i % nodes.len()].client().clone();
        workers.spawn(worker(
            client,
            load.clone(),
            budget.clone(),
            recorder.clone(),
        ));
    }
    let mut ticks = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => result?,
                None => break,
            },
            _ = ticks.tick() => progress(&snapshot(&recorder, phase, start)),
        }
    }
    let recorded = lock(&recorder).clone();
    Ok(recorded)
}

async fn worker(
    client: RpcClient,
    load: Load,
    budget: Arc<Budget>,
    recorder: Arc<Mutex<Recorder>>,
) {
    while budget.take() {
        let start = Instant::now();
        let outcome = echo(&client, &load).await;
        let latency = start.elapsed();
        let mut recorder = lock(&recorder);
        match outcome {
            Ok(()) => recorder.answered(latency),
            Err(code) => recorder.failed(code),
        }
    }
}

async fn echo(client: &RpcClient, load: &Load) -> Result<(), Code> {
    let response: EchoResponse = client
        .unary(load.target, ECHO, &load.request, &load.options)
        .await
        .map_err(|status| status.code())?;
    // An echo that comes back different is corrupt, whatever its status said.
    if response.payload == load.request.payload {
        Ok(())
    } else {
        Err(Code::DataLoss)
    }
}

fn snapshot(recorder: &Mutex<Recorder>, phase: Phase, start: Instant) -> Progress {
    let recorder = lock(recorder);
    let errors = recorder.failed_calls();
    Progress {
        phase,
        elapsed: start.elapsed(),
        calls: recorder.answered_calls() + errors,
        errors,
    }
}

/// A worker cannot panic while holding the lock, so a poisoned one is whole.
fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_budget_lets_exactly_that_many_calls_start() {
        let budget = Budget::for_stop(Stop::Calls(3), Instant::now());
        let started = std::iter::repeat_with(|| budget.take())
            .take(10)
            .filter(|&t| t)
            .count();
        assert_eq!(started, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_time_budget_lets_calls_start_until_its_deadline() {
        let budget = Budget::for_stop(Stop::Duration(Duration::from_secs(2)), Instant::now());
        assert!(budget.take());
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert!(budget.take());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!budget.take());
    }

    #[test]
    fn progress_rates_are_zero_before_any_time_passed() {
        let progress = |elapsed| Progress {
            phase: Phase::Measure,
            elapsed,
            calls: 50,
            errors: 0,
        };
        assert_eq!(progress(Duration::ZERO).calls_per_sec(), 0.0);
        assert_eq!(progress(Duration::from_millis(500)).calls_per_sec(), 100.0);
    }
}
