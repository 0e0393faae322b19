//! Connection slots of the daemon's local listeners (the admin socket and
//! the metrics HTTP listener). A new connection always gets one: when all
//! are taken, the oldest connection that is waiting on its client (for a
//! request, or to take an answer) loses its slot. A prober sends its request
//! at once, so idle connections cannot keep it out however many they are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

#[derive(Debug, Clone)]
pub struct Slots {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug)]
struct Table {
    capacity: usize,
    /// Most slots doing work at once; the rest can always be reclaimed.
    max_working: usize,
    next: u64,
    /// By admission order, so the first waiting entry is the oldest.
    slots: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    evict: CancellationToken,
    working: bool,
}

/// One connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    evict: CancellationToken,
    table: Arc<Mutex<Table>>,
}

/// The slot is at work for its client until this is dropped.
#[derive(Debug)]
pub struct Working<'a>(&'a Slot);

/// Every slot that may work is working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy(pub usize);

impl Slots {
    /// `capacity` connections at once, at most `max_working` of them (fewer
    /// than `capacity`) doing work rather than waiting on their client.
    pub fn new(capacity: usize, max_working: usize) -> Self {
        let table = Table {
            capacity: capacity.max(1),
            max_working: max_working.min(capacity.saturating_sub(1)),
            next: 0,
            slots: BTreeMap::new(),
        };
        Self {
            table: Arc::new(Mutex::new(table)),
        }
    }

    /// A slot for a new connection, evicting the oldest waiting one if all
    /// are taken.
    pub fn admit(&self) -> Slot {
        let mut table = lock(&self.table);
        if table.slots.len() >= table.capacity {
            let oldest = table
                .slots
                .iter()
                .find(|(_, entry)| !entry.working)
                .map(|(id, _)| *id);
            if let Some(entry) = oldest.and_then(|id| table.slots.remove(&id)) {
                entry.evict.cancel();
            }
        }
        let id = table.next;
        table.next += 1;
        let evict = CancellationToken::new();
        let entry = Entry {
            evict: evict.clone(),
            working: false,
        };
        table.slots.insert(id, entry);
        Slot {
            id,
            evict,
            table: self.table.clone(),
        }
    }

    /// Connections holding a slot now.
    pub fn len(&self) -> usize {
        lock(&self.table).slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Slot {
    /// Completes when the slot was given to a newer connection.
    pub fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.evict.cancelled()
    }

    /// Marks the slot as working for its client, so it is not evicted, or
    /// says that too many are.
    pub fn work(&self) -> Result<Working<'_>, Busy> {
        let mut table = lock(&self.table);
        let max = table.max_working;
        if table.slots.values().filter(|e| e.working).count() >= max {
            return Err(Busy(max));
        }
        if let Some(entry) = table.slots.get_mut(&self.id) {
            entry.working = true;
        }
        Ok(Working(self))
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        if let Some(entry) = lock(&self.0.table).slots.get_mut(&self.0.id) {
            entry.working = false;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.table).slots.remove(&self.id);
    }
}

/// The table stays consistent whatever a panicking holder did: every
/// change is one map operation.
fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_waiting_slot() {
        let slots = Slots::new(3, 1);
        let (first, second, third) = (slots.admit(), slots.admit(), slots.admit());
        let _working = first.work().unwrap();
        let fourth = slots.admit();
        assert!(!first.evict.is_cancelled(), "working slots are kept");
        assert!(second.evict.is_cancelled(), "the oldest waiting one goes");
        assert!(!third.evict.is_cancelled() && !fourth.evict.is_cancelled());
        assert_eq!(slots.len(), 3);
        drop(second);
        assert_eq!(slots.len(), 3, "an evicted slot was already freed");
    }

    #[test]
    fn work_is_limited_so_that_a_slot_can_always_be_reclaimed() {
        let slots = Slots::new(4, 8);
        let held: Vec<Slot> = (0..4).map(|_| slots.admit()).collect();
        let working: Vec<_> = held.iter().take(3).map(|s| s.work().unwrap()).collect();
        assert_eq!(held[3].work().unwrap_err(), Busy(3));
        drop(working);
        assert!(held[3].work().is_ok());
    }
}
