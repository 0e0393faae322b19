//! Who may use the admin socket: a pure rule, enforced on every connection
//! from the socket peer's credentials (on top of the socket file's 0600 mode).

/// The daemon's own user, and root (which could read the key file anyway).
pub fn may_administer(peer_uid: u32, daemon_uid: u32) -> bool {
    peer_uid == daemon_uid || peer_uid == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_user_or_root() {
        assert!(may_administer(1000, 1000));
        assert!(may_administer(0, 1000));
        assert!(may_administer(0, 0));
        assert!(!may_administer(1001, 1000));
        assert!(!may_administer(65534, 0));
    }
}
