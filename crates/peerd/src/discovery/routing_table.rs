//! The Kademlia routing table: 256 k-buckets of known nodes by XOR distance
//! from the local id, each bucket ordered least- to most-recently seen.

use std::net::SocketAddr;

use super::distance::{Distance, closer_to};
use crate::identity::NodeId;

/// Bucket size (Kademlia's k).
pub const K: usize = 20;

/// A node in the routing table, or in a `FindNode` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The node's id, which is also its position in the key space.
    pub node: NodeId,
    /// Where to dial it, best first.
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug)]
pub struct RoutingTable {
    local: NodeId,
    buckets: Vec<Vec<Contact>>,
}

impl RoutingTable {
    pub fn new(local: NodeId) -> Self {
        Self {
            local,
            buckets: vec![Vec::new(); 256],
        }
    }

    /// Records `contact` as just seen. A full bucket keeps its old members
    /// (long-lived nodes tend to stay; Kademlia's bias) unless `evictable`
    /// says its least-recently-seen one may go. Returns whether it is in.
    pub fn insert(&mut self, contact: Contact, evictable: impl Fn(&NodeId) -> bool) -> bool {
        let Some(index) = Distance::between(&self.local, &contact.node).bucket() else {
            return false;
        };
        let bucket = &mut self.buckets[index];
        if let Some(position) = bucket.iter().position(|c| c.node == contact.node) {
            let mut known = bucket.remove(position);
            merge_addrs(&mut known.addrs, &contact.addrs);
            bucket.push(known);
            return true;
        }
        if bucket.len() >= K {
            if !evictable(&bucket[0].node) {
                return false;
            }
            bucket.remove(0);
        }
        bucket.push(contact);
        true
    }

    pub fn get(&self, node: &NodeId) -> Option<&Contact> {
        let index = Distance::between(&self.local, node).bucket()?;
        self.buckets[index].iter().find(|c| c.node == *node)
    }

    /// Up to `count` known contacts closest to `target`.
    pub fn closest(&self, target: &NodeId, count: usize) -> Vec<Contact> {
        let mut all: Vec<&Contact> = self.buckets.iter().flatten().collect();
        all.sort_by(|a, b| closer_to(target, &a.node, &b.node));
        all.into_iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

/// Newest first, no duplicates, a handful at most.
pub(crate) fn merge_addrs(known: &mut Vec<SocketAddr>, fresh: &[SocketAddr]) {
    for addr in fresh.iter().rev() {
        known.retain(|a| a != addr);
        known.insert(0, *addr);
    }
    known.truncate(8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(first: u8, last: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[31] = last;
        NodeId::from_bytes(bytes)
    }

    fn contact(node: NodeId) -> Contact {
        Contact {
            node,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 1))],
        }
    }

    #[test]
    fn closest_sorts_by_xor_distance_and_skips_the_local_id() {
        let local = node(0, 0);
        let mut table = RoutingTable::new(local);
        assert!(!table.insert(contact(local), |_| true));
        for last in 1..=10 {
            table.insert(contact(node(0, last)), |_| true);
        }
        let target = node(0, 8);
        let closest: Vec<u8> = table
            .closest(&target, 3)
            .iter()
            .map(|c| c.node.as_bytes()[31])
            .collect();
        assert_eq!(closest, [8, 9, 10]);
    }

    #[test]
    fn a_full_bucket_keeps_live_old_members_and_evicts_dead_ones() {
        let mut table = RoutingTable::new(node(0, 0));
        // Every id with the top bit set lands in bucket 255.
        for i in 0..K as u8 {
            assert!(table.insert(contact(node(0x80, i)), |_| true));
        }
        assert!(
            !table.insert(contact(node(0x80, 200)), |_| false),
            "old members stay"
        );
        assert_eq!(table.len(), K);
        assert!(
            table.insert(contact(node(0x80, 201)), |_| true),
            "a dead old member goes"
        );
        assert!(table.get(&node(0x80, 0)).is_none());
        assert!(table.get(&node(0x80, 201)).is_some());
    }

    #[test]
    fn seeing_a_node_again_refreshes_it_and_merges_addresses() {
        let mut table = RoutingTable::new(node(0, 0));
        table.insert(contact(node(0, 1)), |_| true);
        let newer = Contact {
            node: node(0, 1),
            addrs: vec![SocketAddr::from(([10, 0, 0, 1], 2))],
        };
        table.insert(newer, |_| true);
        let known = table.get(&node(0, 1)).unwrap();
        assert_eq!(known.addrs.len(), 2);
        assert_eq!(known.addrs[0], SocketAddr::from(([10, 0, 0, 1], 2)));
    }
}
