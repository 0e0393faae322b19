//! The Kademlia routing table: 256 k-buckets of known nodes by XOR distance
//! from the local id, each bucket ordered least- to most-recently seen. A
//! full bucket keeps its members while they live: a newcomer only takes the
//! place of one that failed a liveness check (Kademlia's rule), so nodes
//! that connect and leave cannot push live ones out.

use std::net::SocketAddr;

use tokio::time::Instant;

use super::distance::{Distance, closer_to};
use crate::addressing::RelayAddr;
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
    /// Relays that hold a reservation for it, as it last listed them.
    pub relays: Vec<RelayAddr>,
}

/// What `RoutingTable::insert` did with a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// New in the table, or already in and now the most recently seen.
    In,
    /// Not in: the local id, or a full bucket whose members are live or
    /// already being checked.
    Out,
    /// The bucket is full and `oldest` is not known to be live: check it
    /// and report with `RoutingTable::checked`. The newcomer waits.
    Check { oldest: Contact },
}

#[derive(Debug, Clone)]
struct Member {
    contact: Contact,
    /// When it entered the table: the older, the more it is trusted.
    since: Instant,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    members: Vec<Member>,
    /// The newest contact waiting for the check of the oldest member.
    waiting: Option<Contact>,
    checking: bool,
}

#[derive(Debug)]
pub struct RoutingTable {
    local: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    pub fn new(local: NodeId) -> Self {
        Self {
            local,
            buckets: vec![Bucket::default(); 256],
        }
    }

    /// Records `contact` as just seen. In a full bucket, a least recently
    /// seen member that `connected` says is connected is live and stays;
    /// one that is not must be checked before the newcomer may replace it.
    pub fn insert(&mut self, contact: Contact, connected: impl Fn(&NodeId) -> bool) -> Insert {
        let Some(index) = self.bucket_of(&contact.node) else {
            return Insert::Out;
        };
        let bucket = &mut self.buckets[index];
        if let Some(position) = bucket
            .members
            .iter()
            .position(|m| m.contact.node == contact.node)
        {
            let mut known = bucket.members.remove(position);
            merge_addrs(&mut known.contact.addrs, &contact.addrs);
            // Only a node's own Info lists relays; other sightings say
            // nothing of them.
            if !contact.relays.is_empty() {
                known.contact.relays = contact.relays;
            }
            bucket.members.push(known);
            return Insert::In;
        }
        if bucket.members.len() < K {
            bucket.members.push(Member {
                contact,
                since: Instant::now(),
            });
            return Insert::In;
        }
        if bucket.checking {
            bucket.waiting = Some(contact);
            return Insert::Out;
        }
        let oldest = &bucket.members[0].contact;
        if connected(&oldest.node) {
            return Insert::Out;
        }
        let oldest = oldest.clone();
        bucket.checking = true;
        bucket.waiting = Some(contact);
        Insert::Check { oldest }
    }

    /// The outcome of the check `insert` asked for: a live member becomes
    /// the most recently seen and the newcomer is dropped; a dead one makes
    /// room for the newcomer.
    pub fn checked(&mut self, oldest: &NodeId, alive: bool) {
        let Some(index) = self.bucket_of(oldest) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        bucket.checking = false;
        let waiting = bucket.waiting.take();
        let Some(position) = bucket
            .members
            .iter()
            .position(|m| m.contact.node == *oldest)
        else {
            return;
        };
        let member = bucket.members.remove(position);
        if alive {
            bucket.members.push(member);
        } else if let Some(contact) = waiting {
            bucket.members.push(Member {
                contact,
                since: Instant::now(),
            });
        }
    }

    /// Takes `node` out of its bucket; false if it was not there.
    pub fn remove(&mut self, node: &NodeId) -> bool {
        let Some(index) = self.bucket_of(node) else {
            return false;
        };
        let members = &mut self.buckets[index].members;
        let before = members.len();
        members.retain(|m| m.contact.node != *node);
        members.len() < before
    }

    pub fn get(&self, node: &NodeId) -> Option<&Contact> {
        let index = self.bucket_of(node)?;
        self.buckets[index]
            .members
            .iter()
            .map(|m| &m.contact)
            .find(|c| c.node == *node)
    }

    /// Since when `node` has been in the table, if it is.
    pub fn member_since(&self, node: &NodeId) -> Option<Instant> {
        let index = self.bucket_of(node)?;
        self.buckets[index]
            .members
            .iter()
            .find(|m| m.contact.node == *node)
            .map(|m| m.since)
    }

    /// Up to `count` known contacts closest to `target`.
    pub fn closest(&self, target: &NodeId, count: usize) -> Vec<Contact> {
        let mut all: Vec<&Contact> = self.contacts().collect();
        all.sort_by(|a, b| closer_to(target, &a.node, &b.node));
        all.into_iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.members.len()).sum()
    }

    fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.buckets
            .iter()
            .flat_map(|b| b.members.iter().map(|m| &m.contact))
    }

    fn bucket_of(&self, node: &NodeId) -> Option<usize> {
        Distance::between(&self.local, node).bucket()
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
            relays: Vec::new(),
        }
    }

    /// A table whose bucket 255 (ids with the top bit set) is full.
    fn full_bucket() -> RoutingTable {
        let mut table = RoutingTable::new(node(0, 0));
        for i in 0..K as u8 {
            assert_eq!(table.insert(contact(node(0x80, i)), |_| false), Insert::In);
        }
        table
    }

    #[tokio::test]
    async fn closest_sorts_by_xor_distance_and_skips_the_local_id() {
        let local = node(0, 0);
        let mut table = RoutingTable::new(local);
        assert_eq!(table.insert(contact(local), |_| true), Insert::Out);
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

    #[tokio::test]
    async fn a_full_bucket_keeps_connected_members() {
        let mut table = full_bucket();
        assert_eq!(
            table.insert(contact(node(0x80, 200)), |_| true),
            Insert::Out
        );
        assert_eq!(table.len(), K);
        assert!(table.get(&node(0x80, 200)).is_none());
    }

    #[tokio::test]
    async fn a_newcomer_replaces_only_a_member_that_failed_its_check() {
        let mut table = full_bucket();
        let oldest = contact(node(0x80, 0));
        assert_eq!(
            table.insert(contact(node(0x80, 200)), |_| false),
            Insert::Check {
                oldest: oldest.clone()
            }
        );
        assert_eq!(
            table.insert(contact(node(0x80, 201)), |_| false),
            Insert::Out,
            "one check per bucket at a time; the newest newcomer waits"
        );
        table.checked(&oldest.node, true);
        assert!(table.get(&oldest.node).is_some(), "a live member stays");
        assert!(table.get(&node(0x80, 201)).is_none());

        let next = contact(node(0x80, 1));
        assert_eq!(
            table.insert(contact(node(0x80, 202)), |_| false),
            Insert::Check {
                oldest: next.clone()
            }
        );
        table.checked(&next.node, false);
        assert!(table.get(&next.node).is_none(), "a dead member goes");
        assert!(table.get(&node(0x80, 202)).is_some());
        assert_eq!(table.len(), K);
    }

    #[tokio::test(start_paused = true)]
    async fn members_keep_the_time_they_entered() {
        let mut table = RoutingTable::new(node(0, 0));
        table.insert(contact(node(0, 1)), |_| true);
        let entered = Instant::now();
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        table.insert(contact(node(0, 1)), |_| true);
        assert_eq!(table.member_since(&node(0, 1)), Some(entered));
        assert_eq!(table.member_since(&node(0, 2)), None);
    }

    #[tokio::test]
    async fn seeing_a_node_again_refreshes_it_and_merges_addresses() {
        let mut table = RoutingTable::new(node(0, 0));
        table.insert(contact(node(0, 1)), |_| true);
        let newer = Contact {
            node: node(0, 1),
            addrs: vec![SocketAddr::from(([10, 0, 0, 1], 2))],
            relays: Vec::new(),
        };
        table.insert(newer, |_| true);
        let known = table.get(&node(0, 1)).unwrap();
        assert_eq!(known.addrs.len(), 2);
        assert_eq!(known.addrs[0], SocketAddr::from(([10, 0, 0, 1], 2)));
    }
}
