//! Call deadlines on the caller's side, all watched by one task: a call
//! puts its deadline and waker in a shared heap instead of arming a tokio
//! timer of its own, whose wheel entry, registered and removed on every
//! call, was the largest single cost the RPC layer added to a small call
//! (docs/performance.md, item 39).

mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use watch::{Key, Watch};

/// The deadlines of one client's calls in flight.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    watch: Mutex<Watch>,
    /// Deadlines are kept as nanoseconds since this instant.
    epoch: Instant,
    /// Every deadline up to this many nanoseconds has been acted on: a
    /// woken call reads this instead of the clock.
    passed: AtomicU64,
    /// Tells the watcher of a deadline before its next look.
    sooner: Notify,
}

/// The work being bounded outlived its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadlinePassed;

impl Deadlines {
    /// Starts the watcher on the current runtime; it stops with `cancel`.
    pub fn start(cancel: CancellationToken) -> Self {
        let shared = Arc::new(Shared {
            watch: Mutex::default(),
            epoch: Instant::now(),
            passed: AtomicU64::new(0),
            sooner: Notify::new(),
        });
        tokio::spawn(watcher(shared.clone(), cancel));
        Self { shared }
    }

    /// A deadline at `at`, watched from the first time it is polled.
    pub fn deadline(&self, at: Instant) -> Deadline {
        let nanos = at.saturating_duration_since(self.shared.epoch).as_nanos();
        Deadline {
            shared: self.shared.clone(),
            at: u64::try_from(nanos).unwrap_or(u64::MAX),
            key: None,
        }
    }
}

/// One call's deadline. Dropping it stops the watch.
#[derive(Debug)]
pub(crate) struct Deadline {
    shared: Arc<Shared>,
    at: u64,
    key: Option<Key>,
}

impl Deadline {
    /// Polls `work`, and if it is not done, whether the deadline passed
    /// (the task is woken when it does).
    pub fn poll_within<F: Future>(
        &mut self,
        work: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<F::Output, DeadlinePassed>> {
        if let Poll::Ready(output) = work.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        self.poll_passed(cx).map(Err)
    }

    fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<DeadlinePassed> {
        if self.shared.passed.load(Ordering::Acquire) >= self.at {
            return Poll::Ready(DeadlinePassed);
        }
        match self.key {
            Some(key) => self.shared.lock().set_waker(key, cx.waker()),
            None => {
                let (key, sooner) = self.shared.lock().insert(self.at, cx.waker().clone());
                self.key = Some(key);
                if sooner {
                    self.shared.sooner.notify_one();
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let waker = self.shared.lock().remove(key);
            drop(waker);
        }
    }
}

impl Shared {
    /// A panic elsewhere while holding the lock leaves the watch consistent:
    /// every change to it is made whole before anything can panic.
    fn lock(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nanos_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Wakes each call whose deadline passed, then sleeps until the next one or
/// until a call brings a sooner one.
async fn watcher(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut expired = Vec::new();
    loop {
        let now = shared.nanos_since_epoch();
        let next_look = shared.lock().expire(now, &mut expired);
        shared.passed.store(now, Ordering::Release);
        expired.drain(..).for_each(|waker| waker.wake());
        let next_deadline = async {
            let at = next_look.and_then(|at| shared.epoch.checked_add(Duration::from_nanos(at)));
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = shared.sooner.notified() => {}
            () = next_deadline => {}
        }
    }
}
