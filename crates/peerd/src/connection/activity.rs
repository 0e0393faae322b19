//! Stream activity of one connection: how many streams are open, since when
//! it has been idle, and the wait that ends when the idle TTL has passed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::served_streams::ServedStream;

#[derive(Debug)]
pub(crate) struct Activity {
    active: AtomicUsize,
    /// When a stream last started or ended, in nanoseconds after `epoch`:
    /// an atomic, so streams never take a lock.
    last_used: AtomicU64,
    epoch: Instant,
    draining: AtomicBool,
    /// Wakes the idle wait when draining starts or the wait is restarted.
    /// Streams do not wake it (that would cost a wake-up per call when calls
    /// come one at a time): it looks again when its sleep ends.
    changed: Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            active: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
            epoch: Instant::now(),
            draining: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    /// Counts a stream as active until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> StreamGuard {
        if self.active.fetch_add(1, Ordering::AcqRel) == 0 {
            self.mark_used();
        }
        StreamGuard {
            activity: self.clone(),
            _slot: None,
        }
    }

    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn last_used(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_used.load(Ordering::Acquire))
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Release);
        self.changed.notify_one();
    }

    /// Starts the idle wait over, as if a stream had just ended.
    pub(crate) fn restart_idle(&self) {
        self.mark_used();
        self.changed.notify_one();
    }

    fn mark_used(&self) {
        // u64 nanoseconds last 584 years.
        let since_epoch = self.epoch.elapsed().as_nanos() as u64;
        self.last_used.store(since_epoch, Ordering::Release);
    }

    /// Returns once no stream has been active for `ttl` (or `linger` while
    /// draining). Streams that open in the meantime restart the wait.
    pub(crate) async fn idle_expired(&self, ttl: Duration, linger: Duration) {
        loop {
            let changed = self.changed.notified();
            let limit = if self.is_draining() { linger } else { ttl };
            // While streams are open, look again in `limit`: the last one
            // to end can expire the connection no sooner than that.
            let expires = match self.active() {
                0 => self.last_used() + limit,
                _ => Instant::now() + limit,
            };
            tokio::select! {
                () = tokio::time::sleep_until(expires) => {
                    if self.active() == 0 && self.last_used() + limit <= Instant::now() {
                        return;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// Keeps its connection counted as busy; dropping it ends the stream's
/// activity and frees the slot a stream the peer opened was served in.
#[derive(Debug)]
pub struct StreamGuard {
    activity: Arc<Activity>,
    _slot: Option<ServedStream>,
}

impl StreamGuard {
    pub(crate) fn holding(mut self, slot: ServedStream) -> Self {
        self._slot = Some(slot);
        self
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.activity.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.activity.mark_used();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);
    const LINGER: Duration = Duration::from_secs(2);

    async fn expires_within(activity: &Activity, within: Duration) -> bool {
        tokio::time::timeout(within, activity.idle_expired(TTL, LINGER))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_ttl_and_not_before() {
        let activity = Activity::new();
        assert!(!expires_within(&activity, TTL - Duration::from_millis(1)).await);
        let activity = Activity::new();
        let start = Instant::now();
        activity.idle_expired(TTL, LINGER).await;
        assert_eq!(start.elapsed(), TTL);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_keeps_it_alive() {
        let activity = Activity::new();
        let guard = activity.begin();
        assert!(!expires_within(&activity, TTL * 10).await);
        drop(guard);
        let start = Instant::now();
        activity.idle_expired(TTL, LINGER).await;
        assert_eq!(
            start.elapsed(),
            TTL,
            "the TTL counts from the last stream's end"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_during_the_wait_restarts_it() {
        let activity = Activity::new();
        let waiter = activity.clone();
        let start = Instant::now();
        let wait = tokio::spawn(async move { waiter.idle_expired(TTL, LINGER).await });
        tokio::time::sleep(TTL / 2).await;
        drop(activity.begin());
        wait.await.unwrap();
        assert_eq!(start.elapsed(), TTL / 2 + TTL);
    }

    #[tokio::test(start_paused = true)]
    async fn draining_uses_the_short_linger() {
        let activity = Activity::new();
        let waiter = activity.clone();
        let start = Instant::now();
        let wait = tokio::spawn(async move { waiter.idle_expired(TTL, LINGER).await });
        tokio::task::yield_now().await;
        activity.set_draining(true);
        wait.await.unwrap();
        assert_eq!(start.elapsed(), LINGER);
    }

    #[test]
    fn guards_count_streams() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let activity = Activity::new();
        let a = activity.begin();
        let b = activity.begin();
        assert_eq!(activity.active(), 2);
        drop(a);
        drop(b);
        assert_eq!(activity.active(), 0);
    }
}
