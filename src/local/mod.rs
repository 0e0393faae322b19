//! What the daemon's local surface shares: connection slots that idle
//! clients cannot exhaust (the admin socket, the metrics listener), and the
//! user the daemon runs as (whose files it trusts, with root's).

mod slots;

pub use slots::{Busy, Slot, Slots, Working};

/// The user the daemon runs as.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
