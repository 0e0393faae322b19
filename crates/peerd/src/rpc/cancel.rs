//! A call's cancellation signal: raised once by the server when the call
//! ends, awaited by work its handler spawned. Every call makes one, and most
//! are never awaited, so raising it takes no lock unless somebody waits
//! (a `CancellationToken` locks its tree node on every clone, drop and cancel).

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub(crate) struct CallCancel(Arc<Signal>);

#[derive(Debug, Default)]
struct Signal {
    raised: AtomicBool,
    /// Somebody has waited: raising must wake waiters.
    awaited: AtomicBool,
    notify: Notify,
}

impl CallCancel {
    pub(crate) fn cancel(&self) {
        // SeqCst on both flags, both sides: either the waiter sees `raised`,
        // or `cancel` sees `awaited` and wakes the waiter's `Notified`.
        self.0.raised.store(true, Ordering::SeqCst);
        if self.0.awaited.load(Ordering::SeqCst) {
            self.0.notify.notify_waiters();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }

    pub(crate) async fn cancelled(&self) {
        // Made before the flags are read: `notify_waiters` wakes every
        // `Notified` that exists when it is called, polled yet or not.
        let notified = pin!(self.0.notify.notified());
        self.0.awaited.store(true, Ordering::SeqCst);
        if self.is_cancelled() {
            return;
        }
        notified.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BOUND: Duration = Duration::from_secs(5);

    #[test]
    fn it_is_raised_by_cancel_only() {
        let cancel = CallCancel::default();
        assert!(!cancel.is_cancelled());
        cancel.clone().cancel();
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn waiters_from_before_the_cancel_wake() {
        let cancel = CallCancel::default();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                tokio::spawn({
                    let cancel = cancel.clone();
                    async move { cancel.cancelled().await }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        cancel.cancel();
        for waiter in waiters {
            tokio::time::timeout(BOUND, waiter).await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_wait_after_the_cancel_ends_at_once() {
        let cancel = CallCancel::default();
        cancel.cancel();
        tokio::time::timeout(BOUND, cancel.cancelled())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_racing_the_cancel_never_misses_it() {
        for _ in 0..1000 {
            let cancel = CallCancel::default();
            let waiter = tokio::spawn({
                let cancel = cancel.clone();
                async move { cancel.cancelled().await }
            });
            cancel.cancel();
            tokio::time::timeout(BOUND, waiter).await.unwrap().unwrap();
        }
    }
}
