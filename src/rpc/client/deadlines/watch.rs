//! The pure core of the deadline watch: calls' deadlines in a heap, their
//! wakers in slots, no clock and no locks of its own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;

/// Heap entries of ended calls kept, beyond two per live call, before they
/// are swept out.
const STALE_SLACK: usize = 64;

/// A watched call's place: its slot and the slot's generation, so an entry
/// left in the heap by an ended call is told apart from its slot's next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Nanoseconds since the watch's epoch.
    at: u64,
    key: Key,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    waker: Option<Waker>,
}

/// Deadlines of the calls in flight. A call that ends leaves its heap entry
/// behind (taking it out of the middle of a heap is linear): the entry is
/// skipped when it comes to the top, and swept out once ended calls'
/// entries outnumber live ones, so the heap stays within twice the calls in
/// flight.
#[derive(Debug, Default)]
pub struct Watch {
    due: BinaryHeap<Reverse<Entry>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// When the watcher looks next; `None` while it waits to be told.
    next_look: Option<u64>,
}

impl Watch {
    /// Watches a call due at `at` with `waker`. Also says whether the
    /// watcher must look sooner than it planned to.
    pub fn insert(&mut self, at: u64, waker: Waker) -> (Key, bool) {
        let index = self.free.pop().unwrap_or_else(|| self.new_slot());
        let slot = &mut self.slots[index as usize];
        slot.waker = Some(waker);
        let key = Key {
            index,
            generation: slot.generation,
        };
        if self.due.len() >= 2 * self.live + STALE_SLACK {
            self.sweep_ended();
        }
        self.due.push(Reverse(Entry { at, key }));
        self.live += 1;
        let sooner = self.next_look.is_none_or(|next| at < next);
        if sooner {
            self.next_look = Some(at);
        }
        (key, sooner)
    }

    /// Wakes the call with `waker` from now on, if it is a different task.
    pub fn set_waker(&mut self, key: Key, waker: &Waker) {
        let slot = &mut self.slots[key.index as usize];
        if slot.generation != key.generation {
            return;
        }
        match &mut slot.waker {
            Some(current) if current.will_wake(waker) => {}
            other => *other = Some(waker.clone()),
        }
    }

    /// Stops watching a call; its waker is returned to be dropped outside
    /// the lock.
    pub fn remove(&mut self, key: Key) -> Option<Waker> {
        let slot = &mut self.slots[key.index as usize];
        if slot.generation != key.generation {
            return None;
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.live -= 1;
        slot.waker.take()
    }

    /// Moves the wakers of the live calls due by `now` to `expired`, and
    /// returns when to look next (`None`: when told).
    pub fn expire(&mut self, now: u64, expired: &mut Vec<Waker>) -> Option<u64> {
        while let Some(Reverse(entry)) = self.due.peek().copied() {
            if entry.at > now {
                break;
            }
            self.due.pop();
            let slot = &mut self.slots[entry.key.index as usize];
            if slot.generation == entry.key.generation {
                expired.extend(slot.waker.take());
            }
        }
        self.next_look = self.due.peek().map(|Reverse(entry)| entry.at);
        self.next_look
    }

    /// Calls being watched.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.live
    }

    fn new_slot(&mut self) -> u32 {
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 calls in flight");
        self.slots.push(Slot::default());
        index
    }

    fn sweep_ended(&mut self) {
        let slots = &self.slots;
        self.due.retain(|Reverse(entry)| {
            slots[entry.key.index as usize].generation == entry.key.generation
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        (counter.clone(), Waker::from(counter))
    }

    fn wake_all(expired: &mut Vec<Waker>) -> usize {
        let woken = expired.len();
        expired.drain(..).for_each(Waker::wake);
        woken
    }

    #[test]
    fn calls_are_woken_when_due_and_in_deadline_order() {
        let mut watch = Watch::default();
        let (late, late_waker) = waker();
        let (early, early_waker) = waker();
        watch.insert(200, late_waker);
        watch.insert(100, early_waker);
        let mut expired = Vec::new();

        assert_eq!(watch.expire(99, &mut expired), Some(100));
        assert_eq!(wake_all(&mut expired), 0);
        assert_eq!(watch.expire(150, &mut expired), Some(200));
        assert_eq!(wake_all(&mut expired), 1);
        assert_eq!(early.0.load(Ordering::SeqCst), 1);
        assert_eq!(watch.expire(200, &mut expired), None);
        assert_eq!(wake_all(&mut expired), 1);
        assert_eq!(late.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_ended_call_is_not_woken_and_its_slot_serves_the_next() {
        let mut watch = Watch::default();
        let (ended, ended_waker) = waker();
        let (key, _) = watch.insert(100, ended_waker);
        assert!(watch.remove(key).is_some());
        assert!(watch.remove(key).is_none(), "a second removal is a no-op");
        let (next, next_waker) = waker();
        let (next_key, _) = watch.insert(300, next_waker);
        assert_ne!(key, next_key);

        let mut expired = Vec::new();
        assert_eq!(watch.expire(250, &mut expired), Some(300));
        assert!(expired.is_empty());
        assert_eq!(watch.live(), 1);
        watch.expire(300, &mut expired);
        assert_eq!(wake_all(&mut expired), 1);
        assert_eq!(ended.0.load(Ordering::SeqCst), 0);
        assert_eq!(next.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_watcher_is_told_only_of_a_deadline_before_its_next_look() {
        let mut watch = Watch::default();
        let (_, first) = waker();
        assert!(watch.insert(1_000, first).1, "an idle watcher must look");
        let (_, later) = waker();
        assert!(!watch.insert(2_000, later).1);
        let (_, sooner) = waker();
        assert!(watch.insert(500, sooner).1);
        let mut expired = Vec::new();
        assert_eq!(watch.expire(0, &mut expired), Some(500));
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let mut watch = Watch::default();
        let (old, old_waker) = waker();
        let (new, new_waker) = waker();
        let (key, _) = watch.insert(10, old_waker);
        watch.set_waker(key, &new_waker);
        let mut expired = Vec::new();
        watch.expire(10, &mut expired);
        wake_all(&mut expired);
        assert_eq!(old.0.load(Ordering::SeqCst), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn entries_of_ended_calls_behind_a_long_call_are_swept_out() {
        let mut watch = Watch::default();
        let (_, long) = waker();
        watch.insert(u64::MAX, long);
        for at in 0..100_000 {
            let (_, short) = waker();
            let (key, _) = watch.insert(at, short);
            watch.remove(key);
        }
        assert_eq!(watch.live(), 1);
        assert!(
            watch.due.len() <= 2 + STALE_SLACK,
            "{} entries",
            watch.due.len()
        );
        assert_eq!(watch.slots.len(), 2, "slots are reused");
    }
}
