//! One dial at a time per node, and its failure shared: a caller that waited
//! while a dial ran takes that dial's error instead of dialing the same
//! addresses again, so N concurrent callers to a dead node wait one
//! handshake timeout, not N.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

use super::ConnectError;

#[derive(Debug, Default)]
pub(crate) struct DialFlight {
    /// How the last dial that ran to its end failed (`None`: it connected).
    last_failure: Mutex<Option<FailedDial>>,
    /// Dials that ran to their end; a dial dropped halfway does not count.
    ended: AtomicU64,
}

#[derive(Debug)]
struct FailedDial {
    addrs: Vec<SocketAddr>,
    error: ConnectError,
}

/// The right to dial, held until the dial ends.
pub(crate) struct DialTurn<'a> {
    flight: &'a DialFlight,
    last_failure: MutexGuard<'a, Option<FailedDial>>,
    /// A dial ended while this caller waited for its turn.
    waited: bool,
}

impl DialFlight {
    /// Waits until no dial to the node runs.
    pub(crate) async fn join(&self) -> DialTurn<'_> {
        let seen = self.ended.load(Ordering::Acquire);
        let last_failure = self.last_failure.lock().await;
        DialTurn {
            flight: self,
            last_failure,
            waited: self.ended.load(Ordering::Acquire) != seen,
        }
    }
}

impl DialTurn<'_> {
    /// The error of a dial that ended while this caller waited for its turn,
    /// if it tried every one of `addrs`.
    pub(crate) fn failure_waited_on(&self, addrs: &[SocketAddr]) -> Option<ConnectError> {
        let failed = self.last_failure.as_ref().filter(|_| self.waited)?;
        let tried_all = addrs.iter().all(|addr| failed.addrs.contains(addr));
        tried_all.then(|| failed.error.clone())
    }

    /// Records how the dial of `addrs` ended (`None`: it connected), for the
    /// callers waiting on it.
    pub(crate) fn end(mut self, addrs: &[SocketAddr], failure: Option<&ConnectError>) {
        *self.last_failure = failure.map(|error| FailedDial {
            addrs: addrs.to_vec(),
            error: error.clone(),
        });
        self.flight.ended.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn failure() -> Option<&'static ConnectError> {
        static FAILURE: ConnectError = ConnectError::ConnectionLimit(7);
        Some(&FAILURE)
    }

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|&port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect()
    }

    /// A caller that queues for its turn, then asks for the failure it
    /// waited on, for `wanted` addresses.
    fn waiter(
        flight: &Arc<DialFlight>,
        wanted: Vec<SocketAddr>,
    ) -> tokio::task::JoinHandle<Option<ConnectError>> {
        let flight = flight.clone();
        tokio::spawn(async move { flight.join().await.failure_waited_on(&wanted) })
    }

    async fn let_waiters_queue() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_caller_alone_dials() {
        let flight = DialFlight::default();
        flight.join().await.end(&addrs(&[1]), failure());

        let turn = flight.join().await;
        assert!(
            turn.failure_waited_on(&addrs(&[1])).is_none(),
            "an old failure is not shared"
        );
    }

    #[tokio::test]
    async fn callers_that_waited_share_the_failure() {
        let flight = Arc::new(DialFlight::default());
        let turn = flight.join().await;
        let waiters: Vec<_> = (0..3).map(|_| waiter(&flight, addrs(&[1]))).collect();
        let_waiters_queue().await;
        turn.end(&addrs(&[1, 2]), failure());

        for waiter in waiters {
            let shared = waiter.await.unwrap();
            assert!(matches!(shared, Some(ConnectError::ConnectionLimit(7))));
        }
    }

    #[tokio::test]
    async fn a_caller_with_an_address_the_dial_did_not_try_dials() {
        let flight = Arc::new(DialFlight::default());
        let turn = flight.join().await;
        let other = waiter(&flight, addrs(&[1, 3]));
        let_waiters_queue().await;
        turn.end(&addrs(&[1, 2]), failure());

        assert!(other.await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_dial_dropped_halfway_leaves_the_next_caller_to_dial() {
        let flight = Arc::new(DialFlight::default());
        flight.join().await.end(&addrs(&[1]), failure());
        let turn = flight.join().await;
        let next = waiter(&flight, addrs(&[1]));
        let_waiters_queue().await;
        drop(turn);

        assert!(next.await.unwrap().is_none());
    }

    #[tokio::test]
    async fn after_a_dial_that_connected_the_next_caller_dials() {
        let flight = Arc::new(DialFlight::default());
        let turn = flight.join().await;
        let next = waiter(&flight, addrs(&[1]));
        let_waiters_queue().await;
        turn.end(&addrs(&[1]), None);

        assert!(next.await.unwrap().is_none());
    }
}
