//! Whether to accept an inbound handshake, given the load: a pure decision
//! so the policy is tested without sockets. Unvalidated clients prove their
//! address first (a QUIC Retry) once half the pending slots are taken; when
//! all are, a validated client takes one from the source holding the most
//! (if that holds more than its own source, less one), else the oldest
//! handshake once it has stalled for a quarter of the handshake timeout. A
//! source that only stalls so loses its slots to sources that complete.

use std::time::Duration;

use super::TransportConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    pub connections: usize,
    pub pending: usize,
    /// Pending from the client's source: its IPv4 address or IPv6 /64.
    pub pending_from_source: usize,
    /// Pending from the source with the most.
    pub heaviest_source: usize,
    /// How long the oldest pending handshake has been going.
    pub oldest: Duration,
}

/// The pending handshake a newcomer takes the slot of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Victim {
    /// The oldest of the source with the most pending.
    HeaviestSource,
    /// The oldest of all.
    Oldest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Accept,
    /// Accept, ending a pending handshake to make room.
    Evict(Victim),
    /// Ask the client to prove its address first (a QUIC Retry): spoofed
    /// floods cannot complete it, and it costs us no connection state.
    Retry,
    /// Refused with QUIC's CONNECTION_REFUSED.
    Refuse,
}

pub(crate) fn admit(load: Load, address_validated: bool, config: &TransportConfig) -> Admission {
    if load.connections + load.pending >= config.max_connections
        || load.pending_from_source >= config.max_pending_handshakes_per_ip
    {
        Admission::Refuse
    } else if !address_validated && load.pending >= config.max_pending_handshakes / 2 {
        Admission::Retry
    } else if load.pending < config.max_pending_handshakes {
        Admission::Accept
    } else if load.heaviest_source > load.pending_from_source + 1 {
        Admission::Evict(Victim::HeaviestSource)
    } else if load.oldest >= stalled_after(config) {
        Admission::Evict(Victim::Oldest)
    } else {
        Admission::Refuse
    }
}

/// A handshake pending this long may give its slot to a newcomer.
pub(crate) fn stalled_after(config: &TransportConfig) -> Duration {
    config.handshake_timeout / 4
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

    fn load(connections: usize, pending: usize, pending_from_source: usize) -> Load {
        Load {
            connections,
            pending,
            pending_from_source,
            heaviest_source: pending_from_source,
            oldest: Duration::ZERO,
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
            "pending, spread evenly and fresh"
        );
        assert_eq!(
            admit(load(0, 2, 2), true, &config()),
            Admission::Refuse,
            "per source"
        );
    }

    #[test]
    fn unvalidated_clients_are_asked_to_retry_even_when_all_slots_are_taken() {
        let full = Load {
            heaviest_source: 2,
            ..load(0, 4, 0)
        };
        assert_eq!(admit(full, false, &config()), Admission::Retry);
    }

    #[test]
    fn when_full_a_validated_client_takes_a_slot_of_the_heaviest_source() {
        let full = Load {
            heaviest_source: 2,
            ..load(0, 4, 0)
        };
        let evict = Admission::Evict(Victim::HeaviestSource);
        assert_eq!(admit(full, true, &config()), evict);
        let one_apart = Load {
            pending_from_source: 1,
            ..full
        };
        assert_eq!(admit(one_apart, true, &config()), Admission::Refuse);
    }

    #[test]
    fn when_full_and_even_a_stalled_handshake_gives_way() {
        let config = config();
        let full = Load {
            heaviest_source: 1,
            oldest: stalled_after(&config),
            ..load(0, 4, 1)
        };
        assert_eq!(admit(full, true, &config), Admission::Evict(Victim::Oldest));
        let young = Load {
            oldest: stalled_after(&config) / 2,
            ..full
        };
        assert_eq!(admit(young, true, &config), Admission::Refuse);
    }
}
