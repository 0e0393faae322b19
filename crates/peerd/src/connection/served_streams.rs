//! The limit on peer-opened streams being served on one connection. Only the
//! connection's driver takes slots, so a slot costs two atomic operations and
//! no lock; handlers free them from any task.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Hands out slots; owned by the one task that takes them (not `Clone`).
#[derive(Debug)]
pub(crate) struct ServedStreams {
    shared: Arc<Counter>,
}

#[derive(Debug)]
struct Counter {
    in_use: AtomicUsize,
    limit: usize,
    /// Notified when a slot frees up while all were in use.
    freed: Notify,
}

/// One stream's slot, freed on drop.
#[derive(Debug)]
pub(crate) struct ServedStream {
    counter: Arc<Counter>,
}

impl ServedStreams {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            shared: Arc::new(Counter {
                in_use: AtomicUsize::new(0),
                limit,
                freed: Notify::new(),
            }),
        }
    }

    /// A slot, once one is free. Slots come back only by being dropped, and
    /// `&mut self` makes this the only taker: a count seen below the limit
    /// stays below it until this takes a slot.
    pub(crate) async fn take(&mut self) -> ServedStream {
        let counter = &self.shared;
        loop {
            if counter.in_use.load(Ordering::Acquire) < counter.limit {
                counter.in_use.fetch_add(1, Ordering::AcqRel);
                return ServedStream {
                    counter: counter.clone(),
                };
            }
            // Registered before looking again, so a slot freed in between
            // still wakes this wait.
            let mut freed = pin!(counter.freed.notified());
            freed.as_mut().enable();
            if counter.in_use.load(Ordering::Acquire) < counter.limit {
                continue;
            }
            freed.await;
        }
    }
}

impl Drop for ServedStream {
    fn drop(&mut self) {
        let counter = &self.counter;
        if counter.in_use.fetch_sub(1, Ordering::AcqRel) == counter.limit {
            counter.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOT_YET: Duration = Duration::from_millis(50);
    const SOON: Duration = Duration::from_secs(5);

    async fn take_within(slots: &mut ServedStreams, within: Duration) -> Option<ServedStream> {
        tokio::time::timeout(within, slots.take()).await.ok()
    }

    #[tokio::test]
    async fn slots_up_to_the_limit_are_taken_at_once_and_the_next_waits_for_one_freed() {
        let mut slots = ServedStreams::new(2);
        let first = take_within(&mut slots, SOON).await.unwrap();
        let _second = take_within(&mut slots, SOON).await.unwrap();
        assert!(take_within(&mut slots, NOT_YET).await.is_none());
        drop(first);
        let _third = take_within(&mut slots, SOON).await.unwrap();
        assert!(take_within(&mut slots, NOT_YET).await.is_none());
    }

    #[tokio::test]
    async fn a_slot_freed_on_another_task_wakes_the_waiting_taker() {
        let mut slots = ServedStreams::new(1);
        let held = slots.take().await;
        let release = tokio::spawn(async move {
            tokio::time::sleep(NOT_YET).await;
            drop(held);
        });
        assert!(take_within(&mut slots, SOON).await.is_some());
        release.await.unwrap();
    }

    #[tokio::test]
    async fn slots_freed_below_the_limit_all_come_back() {
        let mut slots = ServedStreams::new(3);
        for _ in 0..10 {
            let mut taken = Vec::new();
            for _ in 0..3 {
                taken.push(take_within(&mut slots, SOON).await.unwrap());
            }
            assert!(take_within(&mut slots, NOT_YET).await.is_none());
        }
    }
}
