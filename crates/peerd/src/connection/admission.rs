//! Whether to accept an inbound handshake, given the load: a pure decision
//! so the policy is tested without sockets.

use super::TransportConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    pub connections: usize,
    pub pending: usize,
    pub pending_from_ip: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Accept,
    /// Ask the client to prove its address first (a QUIC Retry): spoofed
    /// floods cannot complete it, and it costs us no connection state.
    Retry,
    /// Refused with QUIC's CONNECTION_REFUSED.
    Refuse,
}

pub(crate) fn admit(load: Load, address_validated: bool, config: &TransportConfig) -> Admission {
    if load.connections + load.pending >= config.max_connections
        || load.pending >= config.max_pending_handshakes
        || load.pending_from_ip >= config.max_pending_handshakes_per_ip
    {
        Admission::Refuse
    } else if !address_validated && load.pending >= config.max_pending_handshakes / 2 {
        Admission::Retry
    } else {
        Admission::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TransportConfig {
        TransportConfig {
            max_connections: 10,
            max_pending_handshakes: 4,
            max_pending_handshakes_per_ip: 2,
            ..TransportConfig::default()
        }
    }

    fn load(connections: usize, pending: usize, pending_from_ip: usize) -> Load {
        Load {
            connections,
            pending,
            pending_from_ip,
        }
    }

    #[test]
    fn accepts_under_the_limits() {
        assert_eq!(admit(load(0, 0, 0), false, &config()), Admission::Accept);
        assert_eq!(admit(load(8, 1, 1), false, &config()), Admission::Accept);
    }

    #[test]
    fn asks_unvalidated_clients_to_retry_under_load() {
        assert_eq!(admit(load(0, 2, 0), false, &config()), Admission::Retry);
        assert_eq!(admit(load(0, 2, 0), true, &config()), Admission::Accept);
    }

    #[test]
    fn refuses_at_each_limit() {
        assert_eq!(
            admit(load(10, 0, 0), true, &config()),
            Admission::Refuse,
            "connections"
        );
        assert_eq!(
            admit(load(9, 1, 0), true, &config()),
            Admission::Refuse,
            "connections + pending"
        );
        assert_eq!(
            admit(load(0, 4, 0), true, &config()),
            Admission::Refuse,
            "pending"
        );
        assert_eq!(
            admit(load(0, 2, 2), true, &config()),
            Admission::Refuse,
            "per ip"
        );
    }
}
