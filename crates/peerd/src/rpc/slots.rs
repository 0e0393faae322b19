//! Handler slots: the node-wide bound on handlers running at once, taken by
//! every call before its handler runs and held until the call ends.

use tokio::sync::{Semaphore, SemaphorePermit};

use super::Status;

/// A slot among the node's `max_handlers`, first come first served.
pub(crate) async fn handler_slot(slots: &Semaphore) -> Result<SemaphorePermit<'_>, Status> {
    // Free slots mean nobody waits (released slots go to waiters first), so
    // taking one directly keeps the order and skips the queue's future.
    if let Ok(slot) = slots.try_acquire() {
        return Ok(slot);
    }
    slots
        .acquire()
        .await
        .map_err(|_| Status::unavailable("the node is shutting down"))
}
