//! What a node can tell about its own reachability from what peers saw:
//! the address each saw it at, and whether each could dial it back from a
//! port it had never sent to. Pure: no sockets, unit-tested.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::NodeId;

/// One peer's answer to `DialBack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The peer that answered.
    pub peer: NodeId,
    /// Where this node reached the peer.
    pub peer_addr: SocketAddr,
    /// This node's address on that connection, as this node sees it.
    pub local_addr: SocketAddr,
    /// This node's address as the peer saw it.
    pub observed: SocketAddr,
    /// Whether the peer's dial back from a fresh port completed.
    pub reached: bool,
}

/// Whether nodes this node has not dialed can reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// No peer answered.
    Unknown,
    /// A peer's dial back from a port this node never sent to completed.
    Public,
    /// Every dial back failed: only nodes this node dialed can reach it.
    Private,
}

/// How a NAT in front of this node maps its address, from the addresses
/// different peers saw (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// Fewer than two peers at different addresses answered.
    Unknown,
    /// Every peer saw this node at the address it has itself: no NAT.
    None,
    /// Peers at different addresses saw one translated address: hole
    /// punching can work.
    EndpointIndependent,
    /// Peers at different addresses saw different translated addresses
    /// (a "symmetric" NAT): punching to a third node's observation fails.
    EndpointDependent,
}

/// What a netcheck found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatReport {
    /// Whether nodes this node has not dialed can reach it.
    pub reachability: Reachability,
    /// Whether some peer saw another address than this node's own.
    pub behind_nat: bool,
    /// How the NAT, if any, maps this node's address.
    pub mapping: Mapping,
    /// The addresses peers saw this node at, without repeats.
    pub observed: Vec<SocketAddr>,
    /// Peers asked.
    pub asked: usize,
    /// Peers that answered.
    pub answered: usize,
}

/// Classifies the answers of `asked` peers.
pub fn classify(asked: usize, observations: &[Observation]) -> NatReport {
    let mut observed: Vec<SocketAddr> = Vec::new();
    for o in observations {
        if !observed.contains(&o.observed) {
            observed.push(o.observed);
        }
    }
    let behind_nat = observations.iter().any(|o| o.observed != o.local_addr);
    let reachability = match (
        observations.is_empty(),
        observations.iter().any(|o| o.reached),
    ) {
        (true, _) => Reachability::Unknown,
        (false, true) => Reachability::Public,
        (false, false) => Reachability::Private,
    };
    NatReport {
        reachability,
        behind_nat,
        mapping: mapping(observations, behind_nat, observed.len()),
        observed,
        asked,
        answered: observations.len(),
    }
}

fn mapping(observations: &[Observation], behind_nat: bool, distinct_observed: usize) -> Mapping {
    let mut peers: Vec<SocketAddr> = observations.iter().map(|o| o.peer_addr).collect();
    peers.sort();
    peers.dedup();
    match (peers.len() >= 2, behind_nat, distinct_observed) {
        (false, _, _) => Mapping::Unknown,
        (true, false, _) => Mapping::None,
        (true, true, 1) => Mapping::EndpointIndependent,
        (true, true, _) => Mapping::EndpointDependent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(peer: u8, local: &str, observed: &str, reached: bool) -> Observation {
        Observation {
            peer: NodeId::from_bytes([peer; 32]),
            peer_addr: format!("203.0.113.1:77{peer:02}").parse().unwrap(),
            local_addr: local.parse().unwrap(),
            observed: observed.parse().unwrap(),
            reached,
        }
    }

    #[test]
    fn a_node_seen_at_its_own_address_and_dialed_back_is_public_without_nat() {
        let report = classify(
            2,
            &[
                seen(1, "203.0.113.9:7733", "203.0.113.9:7733", true),
                seen(2, "203.0.113.9:7733", "203.0.113.9:7733", true),
            ],
        );
        assert_eq!(report.reachability, Reachability::Public);
        assert!(!report.behind_nat);
        assert_eq!(report.mapping, Mapping::None);
        assert_eq!(report.answered, 2);
    }

    #[test]
    fn one_translated_address_for_two_peers_is_endpoint_independent() {
        let report = classify(
            3,
            &[
                seen(1, "10.0.1.2:7733", "198.51.100.2:7733", false),
                seen(2, "10.0.1.2:7733", "198.51.100.2:7733", false),
            ],
        );
        assert_eq!(report.reachability, Reachability::Private);
        assert!(report.behind_nat);
        assert_eq!(report.mapping, Mapping::EndpointIndependent);
        assert_eq!(report.observed, ["198.51.100.2:7733".parse().unwrap()]);
        assert_eq!((report.asked, report.answered), (3, 2));
    }

    #[test]
    fn a_new_port_per_peer_is_endpoint_dependent() {
        let report = classify(
            2,
            &[
                seen(1, "10.0.1.2:7733", "198.51.100.2:40001", false),
                seen(2, "10.0.1.2:7733", "198.51.100.2:51234", false),
            ],
        );
        assert_eq!(report.mapping, Mapping::EndpointDependent);
        assert_eq!(report.observed.len(), 2);
    }

    #[test]
    fn one_peer_tells_reachability_but_not_the_mapping_and_none_tells_nothing() {
        let one = classify(1, &[seen(1, "10.0.1.2:7733", "198.51.100.2:7733", false)]);
        assert_eq!(one.mapping, Mapping::Unknown);
        assert!(one.behind_nat);
        let none = classify(2, &[]);
        assert_eq!(none.reachability, Reachability::Unknown);
        assert_eq!(none.mapping, Mapping::Unknown);
        assert!(!none.behind_nat);
    }
}
