//! One dial at a time per node, and its failure shared: a caller that waited
//! while a dial ran takes that dial's error instead of dialing again, so N
//! concurrent callers to a dead node wait one handshake timeout, not N.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

use super::ConnectError;

#[derive(Debug, Default)]
pub(crate) struct DialFlight {
    /// How the last dial that ran to its end failed (`None`: it connected).
    last_failure: Mutex<Option<ConnectError>>,
    /// Dials that ran to their end; a dial dropped halfway does not count.
    ended: AtomicU64,
}

/// The right to dial, held until the dial ends.
pub(crate) struct DialTurn<'a> {
    flight: &'a DialFlight,
    last_failure: MutexGuard<'a, Option<ConnectError>>,
    waited_on_failure: Option<ConnectError>,
}

impl DialFlight {
    /// Waits until no dial to the node runs.
    pub async fn join(&self) -> DialTurn<'_> {
        let seen = self.ended.load(Ordering::Acquire);
        let last_failure = self.last_failure.lock().await;
        let waited_on_failure = match self.ended.load(Ordering::Acquire) == seen {
            true => None,
            false => last_failure.clone(),
        };
        DialTurn {
            flight: self,
            last_failure,
            waited_on_failure,
        }
    }
}

impl DialTurn<'_> {
    /// The error of a dial that ended while this caller waited for its turn.
    pub fn failure_waited_on(&mut self) -> Option<ConnectError> {
        self.waited_on_failure.take()
    }

    /// Records how the dial ended, for the callers waiting on it.
    pub fn end(mut self, failure: Option<ConnectError>) {
        *self.last_failure = failure;
        self.flight.ended.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn failure() -> ConnectError {
        ConnectError::ConnectionLimit(7)
    }

    #[tokio::test]
    async fn a_caller_alone_dials() {
        let flight = DialFlight::default();
        flight.join().await.end(Some(failure()));

        let mut turn = flight.join().await;
        assert!(
            turn.failure_waited_on().is_none(),
            "an old failure is not shared"
        );
    }

    #[tokio::test]
    async fn callers_that_waited_share_the_failure() {
        let flight = Arc::new(DialFlight::default());
        let turn = flight.join().await;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let flight = flight.clone();
                tokio::spawn(async move { flight.join().await.failure_waited_on() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        turn.end(Some(failure()));

        for waiter in waiters {
            let shared = waiter.await.unwrap();
            assert!(matches!(shared, Some(ConnectError::ConnectionLimit(7))));
        }
    }

    #[tokio::test]
    async fn a_dial_dropped_halfway_leaves_the_next_caller_to_dial() {
        let flight = Arc::new(DialFlight::default());
        flight.join().await.end(Some(failure()));
        let turn = flight.join().await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.join().await.failure_waited_on() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(turn);

        assert!(waiter.await.unwrap().is_none());
    }

    #[tokio::test]
    async fn after_a_dial_that_connected_the_next_caller_dials() {
        let flight = Arc::new(DialFlight::default());
        let turn = flight.join().await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.join().await.failure_waited_on() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        turn.end(None);

        assert!(waiter.await.unwrap().is_none());
    }
}
