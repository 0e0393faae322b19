//! Discovery messages to and from their protobuf form. Entries from peers
//! that do not parse are dropped, never trusted.

use std::net::{IpAddr, SocketAddr};

use super::routing_table::Contact;
use crate::node_service::proto::NodeAddress;

pub(crate) fn to_node_address(contact: &Contact) -> NodeAddress {
    NodeAddress {
        node_id: contact.node.to_string(),
        addrs: contact.addrs.iter().map(ToString::to_string).collect(),
    }
}

/// The contact in `address`, with at most 8 addresses that parse.
pub(crate) fn from_node_address(address: &NodeAddress) -> Option<Contact> {
    Some(Contact {
        node: address.node_id.parse().ok()?,
        addrs: parse_addrs(&address.addrs),
    })
}

pub(crate) fn parse_addrs(addrs: &[String]) -> Vec<SocketAddr> {
    addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .take(8)
        .collect()
}

/// A node listening on 0.0.0.0 is reachable at the IP we see it at.
pub(crate) fn fill_unspecified(addrs: Vec<SocketAddr>, seen_at: IpAddr) -> Vec<SocketAddr> {
    addrs
        .into_iter()
        .map(|a| {
            if a.ip().is_unspecified() {
                SocketAddr::new(seen_at, a.port())
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
        };
        let mut wire = to_node_address(&contact);
        assert_eq!(from_node_address(&wire), Some(contact.clone()));
        wire.addrs.push("not an address".into());
        assert_eq!(from_node_address(&wire), Some(contact));
        wire.node_id = "short".into();
        assert_eq!(from_node_address(&wire), None);
    }

    #[test]
    fn unspecified_ips_become_the_observed_one() {
        let seen: IpAddr = "10.1.2.3".parse().unwrap();
        let addrs = vec![
            "0.0.0.0:7733".parse().unwrap(),
            "192.0.2.1:1".parse().unwrap(),
        ];
        let filled = fill_unspecified(addrs, seen);
        assert_eq!(
            filled,
            [
                "10.1.2.3:7733".parse().unwrap(),
                "192.0.2.1:1".parse().unwrap()
            ]
        );
    }
}
