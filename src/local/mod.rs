//! What the daemon's local surface shares: connection slots that idle
//! clients cannot exhaust (the admin socket, the metrics listener), who may
//! use a local socket, and the user the daemon runs as (whose files it
//! trusts, with root's).

mod permissions;
mod slots;

pub use permissions::{PeerIdentity, Permitted, peer_identity, restrict_socket, system_group};
pub use slots::{Busy, Slot, Slots, Working};

/// The user the daemon runs as.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a local client running as `uid` is the daemon's own user or root
/// (which could read the key file anyway): the rule of the admin socket, and
/// the base of the gateway's.
pub fn is_daemon_user_or_root(uid: u32, daemon_uid: u32) -> bool {
    uid == daemon_uid || uid == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_user_or_root() {
        assert!(is_daemon_user_or_root(1000, 1000));
        assert!(is_daemon_user_or_root(0, 1000));
        assert!(is_daemon_user_or_root(0, 0));
        assert!(!is_daemon_user_or_root(1001, 1000));
        assert!(!is_daemon_user_or_root(65534, 0));
    }
}
