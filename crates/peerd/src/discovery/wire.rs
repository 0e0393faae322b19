//! Discovery messages to and from their protobuf form. Entries from peers
//! that do not parse are dropped, never trusted.

use std::net::{Ipv4Addr, SocketAddr};

use super::routing_table::Contact;
use crate::addressing::RelayAddr;
use crate::node_service::proto::NodeAddress;
use crate::paths::is_virtual;

pub(crate) fn to_node_address(contact: &Contact) -> NodeAddress {
    NodeAddress {
        node_id: contact.node.to_string(),
        addrs: contact.addrs.iter().map(ToString::to_string).collect(),
        relays: contact.relays.iter().map(ToString::to_string).collect(),
    }
}

/// Addresses kept per contact from another node's answer: each is a dial.
pub(crate) const MAX_ADDRS_PER_CONTACT: usize = 4;

/// The contact in `address`, with at most `MAX_ADDRS_PER_CONTACT` distinct
/// addresses that parse and could be dialed. `None` without any: a contact
/// that cannot be dialed would need a lookup of its own, and answers full
/// of them would make lookups recurse.
pub(crate) fn from_node_address(address: &NodeAddress) -> Option<Contact> {
    let node = address.node_id.parse().ok()?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in address.addrs.iter().filter_map(|a| a.parse().ok()) {
        if dialable(&addr) && !addrs.contains(&addr) {
            addrs.push(addr);
        }
        if addrs.len() == MAX_ADDRS_PER_CONTACT {
            break;
        }
    }
    let relays = parse_relays(&address.relays);
    (!addrs.is_empty()).then_some(Contact {
        node,
        addrs,
        relays,
    })
}

/// The relays listed that parse and are not virtual, at most 4.
pub(crate) fn parse_relays(relays: &[String]) -> Vec<RelayAddr> {
    relays
        .iter()
        .filter_map(|r| r.parse::<RelayAddr>().ok())
        .filter(|r| dialable(&r.addr))
        .take(4)
        .collect()
}

fn dialable(addr: &SocketAddr) -> bool {
    let ip = addr.ip();
    !is_virtual(*addr)
        && addr.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && ip != Ipv4Addr::BROADCAST
}

pub(crate) fn parse_addrs(addrs: &[String]) -> Vec<SocketAddr> {
    addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .take(8)
        .collect()
}

/// A node listening on 0.0.0.0 is reachable at the IP we see it at,
/// unless we see it through a relay, at a virtual address: then such an
/// address says nothing, and is dropped.
pub(crate) fn fill_unspecified(addrs: Vec<SocketAddr>, seen_at: SocketAddr) -> Vec<SocketAddr> {
    let relayed = is_virtual(seen_at);
    addrs
        .into_iter()
        .filter(|a| !(relayed && a.ip().is_unspecified()))
        .map(|a| {
            if a.ip().is_unspecified() {
                SocketAddr::new(seen_at.ip(), a.port())
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;

    #[test]
    fn round_trips_and_drops_garbage() {
        let contact = Contact {
            node: NodeId::from_bytes([9; 32]),
            addrs: vec!["127.0.0.1:7".parse().unwrap()],
            relays: Vec::new(),
        };
        let mut wire = to_node_address(&contact);
        assert_eq!(from_node_address(&wire), Some(contact.clone()));
        wire.addrs.push("not an address".into());
        assert_eq!(from_node_address(&wire), Some(contact));
        wire.node_id = "short".into();
        assert_eq!(from_node_address(&wire), None);
    }

    #[test]
    fn contacts_keep_a_few_dialable_addresses_or_are_dropped() {
        let node = NodeId::from_bytes([9; 32]);
        let mut wire = NodeAddress {
            node_id: node.to_string(),
            addrs: vec![
                "0.0.0.0:1".into(),
                "127.0.0.1:0".into(),
                "224.0.0.1:5".into(),
                "240.0.0.1:5".into(),
            ],
            relays: Vec::new(),
        };
        assert_eq!(from_node_address(&wire), None, "nothing to dial");
        // docs/protocol.md §2: IPv6 needs brackets, a zone is numeric, and
        // entries that do not parse (DNS names too) are dropped.
        wire.addrs = [
            "[::1]:7001",
            "::1:7002",
            "localhost:7003",
            "[fe80::1%2]:7004",
        ]
        .map(String::from)
        .to_vec();
        let parsed: Vec<String> = from_node_address(&wire)
            .unwrap()
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(parsed, ["[::1]:7001", "[fe80::1%2]:7004"]);
        wire.addrs = (1..=20)
            .map(|p| format!("127.0.0.1:{}", p % 6 + 1))
            .collect();
        let contact = from_node_address(&wire).unwrap();
        assert_eq!(contact.addrs.len(), MAX_ADDRS_PER_CONTACT);
        let mut distinct = contact.addrs.clone();
        distinct.dedup();
        assert_eq!(distinct, contact.addrs);
    }

    #[test]
    fn unspecified_ips_become_the_observed_one_unless_seen_through_a_relay() {
        let seen: SocketAddr = "10.1.2.3:40000".parse().unwrap();
        let addrs: Vec<SocketAddr> = vec![
            "0.0.0.0:7733".parse().unwrap(),
            "192.0.2.1:1".parse().unwrap(),
        ];
        let filled = fill_unspecified(addrs.clone(), seen);
        assert_eq!(
            filled,
            [
                "10.1.2.3:7733".parse().unwrap(),
                "192.0.2.1:1".parse().unwrap()
            ]
        );
        let relayed = fill_unspecified(addrs, "240.0.0.1:1".parse().unwrap());
        assert_eq!(relayed, ["192.0.2.1:1".parse().unwrap()]);
    }
}
