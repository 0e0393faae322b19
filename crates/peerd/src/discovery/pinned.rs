//! Pinned peers are kept connected: a supervisor per peer reconnects after
//! every loss on the `Backoff` schedule and publishes its state.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;

/// Resolves when the connection is lost.
pub(crate) type Lost = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a pinned peer's supervisor is doing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PinState {
    /// Dialling the peer.
    Connecting {
        /// Dials that failed or whose connection was lost since the last
        /// connection that lasted the backoff's `reset_after`; 0 at first.
        attempt: u32,
    },
    /// Connected; the supervisor waits for the connection to be lost.
    Connected,
    /// Waiting out the backoff before the next dial.
    Reconnecting {
        /// The next dial's `attempt`, counted as in `Connecting`.
        attempt: u32,
        /// The wait before it, in milliseconds, jitter included.
        next_retry_millis: u64,
        /// Why the last attempt failed, or `connection lost`.
        last_error: String,
    },
}

/// Connects with `connect` and reconnects after each loss until `cancel`.
/// `random` gives the jitter (uniform in [0, 1]); `report` sees every state.
pub(crate) async fn supervise<C, F, E>(
    mut connect: C,
    backoff: &Backoff,
    mut random: impl FnMut() -> f64,
    mut report: impl FnMut(PinState),
    cancel: CancellationToken,
) where
    C: FnMut() -> F,
    F: Future<Output = Result<Lost, E>>,
    E: std::fmt::Display,
{
    let mut attempt = 0;
    loop {
        report(PinState::Connecting { attempt });
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = connect() => outcome,
        };
        let last_error = match outcome {
            Ok(lost) => {
                report(PinState::Connected);
                let up_since = Instant::now();
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = lost => {}
                }
                if up_since.elapsed() >= backoff.reset_after {
                    attempt = 0;
                }
                "connection lost".to_owned()
            }
            Err(error) => error.to_string(),
        };
        let delay = backoff.delay(attempt, random());
        attempt += 1;
        report(PinState::Reconnecting {
            attempt,
            next_retry_millis: delay.as_millis() as u64,
            last_error,
        });
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Runs a supervisor whose connects fail `failures` times, then succeed
    /// with a connection lost after `up_for`, then fail forever. Returns the
    /// instants of the connect attempts, relative to the start.
    async fn attempts(failures: usize, up_for: Duration, count: usize) -> Vec<Duration> {
        let start = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let (log, stop) = (seen.clone(), cancel.clone());
        let connect = move || {
            let mut seen = log.lock().unwrap();
            seen.push(start.elapsed());
            let n = seen.len();
            if n >= count {
                stop.cancel();
            }
            async move {
                if n == failures.saturating_add(1) {
                    Ok(Box::pin(tokio::time::sleep(up_for)) as Lost)
                } else {
                    Err("refused".to_owned())
                }
            }
        };
        supervise(connect, &Backoff::default(), || 0.5, |_| {}, cancel).await;
        seen.lock().unwrap().clone()
    }

    fn secs(values: &[f64]) -> Vec<Duration> {
        values.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn failed_connects_back_off_exponentially() {
        let times = attempts(usize::MAX, Duration::ZERO, 6).await;
        assert_eq!(times, secs(&[0.0, 0.5, 1.5, 3.5, 7.5, 15.5]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_connection_resets_the_schedule() {
        // Fails twice (0.5 s, 1 s), is up 40 s (> 30 s reset), then backs off from 0.5 s again.
        let times = attempts(2, Duration::from_secs(40), 6).await;
        assert_eq!(times, secs(&[0.0, 0.5, 1.5, 42.0, 43.0, 45.0]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_lived_connection_keeps_backing_off() {
        let times = attempts(2, Duration::from_secs(1), 5).await;
        // Up at 1.5 s for 1 s; lost at 2.5 s; attempt 2 waits 2 s, then 4 s.
        assert_eq!(times, secs(&[0.0, 0.5, 1.5, 4.5, 8.5]));
    }

    #[tokio::test(start_paused = true)]
    async fn states_are_reported() {
        let states = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let (log, stop) = (states.clone(), cancel.clone());
        let connect = || async { Err::<Lost, _>("refused".to_owned()) };
        let report = move |state| {
            log.lock().unwrap().push(state);
            if log.lock().unwrap().len() >= 2 {
                stop.cancel();
            }
        };
        supervise(connect, &Backoff::default(), || 0.5, report, cancel).await;
        let states = states.lock().unwrap().clone();
        assert_eq!(states[0], PinState::Connecting { attempt: 0 });
        assert_eq!(
            states[1],
            PinState::Reconnecting {
                attempt: 1,
                next_retry_millis: 500,
                last_error: "refused".into()
            }
        );
    }
}
