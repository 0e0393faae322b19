//! Where nodes can be dialed: addresses learned from configuration, the
//! command line, connections, `Info` answers and lookups. Bounded; the
//! discovery layer persists it as the peer book.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::RelayAddr;
use crate::identity::NodeId;
use crate::paths::is_virtual;

/// Nodes remembered at most; the longest unseen learned one is forgotten
/// first, and one the operator entered never makes room for a learned one.
pub const MAX_NODES: usize = 4096;
/// Addresses remembered per node; older ones beyond this are forgotten.
pub const MAX_ADDRESSES_PER_NODE: usize = 8;
/// Relays remembered per node.
const MAX_RELAYS_PER_NODE: usize = 4;

/// How an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressSource {
    /// The configuration's `peers` or `bootstrap`.
    Config,
    /// A command or API call (`peerd connect`, `AddressBook::add`).
    Manual,
    /// The address a connection with the node came from or went to.
    Connection,
    /// The node's own `Info` answer.
    Info,
    /// Another node's `FindNode` answer.
    Lookup,
}

impl AddressSource {
    /// Entered by the operator (configuration or command), not learned.
    pub fn is_operator(self) -> bool {
        matches!(self, Self::Config | Self::Manual)
    }
}

/// What the book knows of one node; also its record in the peer book file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Most recently learned first.
    pub addrs: Vec<SocketAddr>,
    /// When an address was last learned, in seconds since the Unix epoch.
    pub last_seen_unix: u64,
    /// How the most recent addresses were learned.
    pub source: AddressSource,
    /// Relays holding a reservation for the node, as its `Info` last
    /// listed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayAddr>,
}

/// Addresses per node. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    entries: Arc<DashMap<NodeId, PeerEntry>>,
}

impl AddressBook {
    /// Records `addr` for `node` as a [`AddressSource::Manual`] address, tried
    /// first from now on.
    pub fn add(&self, node: NodeId, addr: SocketAddr) {
        self.learn(node, &[addr], AddressSource::Manual);
    }

    /// Records `addrs` (best first) for `node`, seen now. Virtual addresses
    /// (a relayed or punched path's) are never recorded: they mean nothing
    /// outside this node's socket.
    pub fn learn(&self, node: NodeId, addrs: &[SocketAddr], source: AddressSource) {
        let addrs: Vec<SocketAddr> = addrs.iter().copied().filter(|a| !is_virtual(*a)).collect();
        if addrs.is_empty() {
            return;
        }
        let known = self.entries.contains_key(&node);
        {
            let mut entry = self.entries.entry(node).or_insert_with(|| PeerEntry {
                addrs: Vec::new(),
                last_seen_unix: 0,
                source,
                relays: Vec::new(),
            });
            for addr in addrs.iter().rev() {
                entry.addrs.retain(|a| a != addr);
                entry.addrs.insert(0, *addr);
            }
            entry.addrs.truncate(MAX_ADDRESSES_PER_NODE);
            entry.last_seen_unix = unix_now();
            // What the operator entered stays theirs when the node is seen.
            if !entry.source.is_operator() || source.is_operator() {
                entry.source = source;
            }
        }
        if !known {
            self.evict_beyond(MAX_NODES);
        }
    }

    /// The addresses known for `node`, most recently learned first; empty if
    /// none.
    pub fn get(&self, node: NodeId) -> Vec<SocketAddr> {
        self.entries
            .get(&node)
            .map(|e| e.addrs.clone())
            .unwrap_or_default()
    }

    /// Replaces the relays listed for `node`, seen now: its own list, or
    /// the reservation it holds here, is the truth about its reservations.
    pub fn set_relays(&self, node: NodeId, relays: &[RelayAddr]) {
        let known = self.entries.contains_key(&node);
        {
            let mut entry = self.entries.entry(node).or_insert_with(|| PeerEntry {
                addrs: Vec::new(),
                last_seen_unix: 0,
                source: AddressSource::Connection,
                relays: Vec::new(),
            });
            entry.relays = relays.iter().take(MAX_RELAYS_PER_NODE).copied().collect();
            entry.last_seen_unix = unix_now();
        }
        if !known {
            self.evict_beyond(MAX_NODES);
        }
    }

    /// The relays that hold a reservation for `node`, as last listed.
    pub fn relays(&self, node: NodeId) -> Vec<RelayAddr> {
        self.entries
            .get(&node)
            .map(|e| e.relays.clone())
            .unwrap_or_default()
    }

    /// A copy of every entry, in no particular order (e.g. to save them).
    pub fn entries(&self) -> Vec<(NodeId, PeerEntry)> {
        self.entries
            .iter()
            .map(|e| (*e.key(), e.value().clone()))
            .collect()
    }

    /// Puts back an entry saved earlier, unless a fresher one is known.
    pub fn restore(&self, node: NodeId, saved: PeerEntry) {
        let fresher = self
            .entries
            .get(&node)
            .is_some_and(|e| e.last_seen_unix >= saved.last_seen_unix);
        if !fresher {
            self.entries.insert(node, saved);
            self.evict_beyond(MAX_NODES);
        }
    }

    /// Forgets `node`'s entry; false if there was none.
    pub fn forget(&self, node: NodeId) -> bool {
        self.entries.remove(&node).is_some()
    }

    /// Nodes with an entry (at most 4096).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no node has an entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets the longest unseen learned entries beyond `limit`; operator
    /// entries go only once no learned one is left.
    fn evict_beyond(&self, limit: usize) {
        while self.entries.len() > limit {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|e| (e.source.is_operator(), e.last_seen_unix))
                .map(|e| *e.key());
            match oldest {
                Some(node) => self.entries.remove(&node),
                None => return,
            };
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u16) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        NodeId::from_bytes(bytes)
    }

    #[test]
    fn newest_address_first_without_duplicates_and_bounded() {
        let book = AddressBook::default();
        for port in 1..=10 {
            book.add(node(1), SocketAddr::from(([127, 0, 0, 1], port)));
        }
        book.add(node(1), SocketAddr::from(([127, 0, 0, 1], 5)));
        let addrs = book.get(node(1));
        assert_eq!(addrs.len(), MAX_ADDRESSES_PER_NODE);
        assert_eq!(addrs[0].port(), 5);
        assert_eq!(addrs.iter().filter(|a| a.port() == 5).count(), 1);
    }

    #[test]
    fn the_book_is_bounded_and_forgets_the_longest_unseen() {
        let book = AddressBook::default();
        book.restore(
            node(0),
            PeerEntry {
                addrs: vec![],
                last_seen_unix: 1,
                source: AddressSource::Lookup,
                relays: Vec::new(),
            },
        );
        for n in 1..=MAX_NODES as u16 {
            book.add(node(n), SocketAddr::from(([127, 0, 0, 1], 1)));
        }
        assert_eq!(book.len(), MAX_NODES);
        assert!(book.get(node(0)).is_empty(), "the stalest entry went first");
    }

    #[test]
    fn learned_entries_never_push_operator_entries_out() {
        let book = AddressBook::default();
        let manual = node(u16::MAX);
        book.restore(
            manual,
            PeerEntry {
                addrs: vec![SocketAddr::from(([127, 0, 0, 1], 9))],
                last_seen_unix: 1,
                source: AddressSource::Manual,
                relays: Vec::new(),
            },
        );
        book.learn(
            manual,
            &[SocketAddr::from(([127, 0, 0, 1], 9))],
            AddressSource::Connection,
        );
        for n in 1..=MAX_NODES as u16 + 100 {
            book.learn(
                node(n),
                &[SocketAddr::from(([127, 0, 0, 1], 1))],
                AddressSource::Connection,
            );
        }
        assert_eq!(book.len(), MAX_NODES);
        assert!(!book.get(manual).is_empty(), "the manual entry stayed");
        assert_eq!(
            book.entries.get(&manual).unwrap().source,
            AddressSource::Manual
        );
    }

    #[test]
    fn virtual_addresses_are_never_learned_and_relays_are_replaced_whole() {
        let book = AddressBook::default();
        let relayed: SocketAddr = "240.0.0.1:1".parse().unwrap();
        book.learn(node(1), &[relayed], AddressSource::Connection);
        assert_eq!(book.len(), 0);
        book.learn(
            node(1),
            &[relayed, "127.0.0.1:5".parse().unwrap()],
            AddressSource::Info,
        );
        assert_eq!(book.get(node(1)), ["127.0.0.1:5".parse().unwrap()]);
        let relay = |n| RelayAddr {
            relay: node(n),
            addr: "198.51.100.1:7733".parse().unwrap(),
        };
        book.set_relays(node(1), &[relay(2), relay(3)]);
        book.set_relays(node(1), &[relay(3)]);
        assert_eq!(book.relays(node(1)), [relay(3)]);
        book.set_relays(node(9), &[relay(2)]);
        assert_eq!(book.relays(node(9)), [relay(2)]);
        assert!(book.get(node(9)).is_empty(), "a relay is not an address");
    }

    #[test]
    fn restoring_never_overwrites_fresher_knowledge() {
        let book = AddressBook::default();
        book.add(node(1), SocketAddr::from(([127, 0, 0, 1], 2)));
        let stale = PeerEntry {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 9))],
            last_seen_unix: 1,
            source: AddressSource::Config,
            relays: Vec::new(),
        };
        book.restore(node(1), stale);
        assert_eq!(book.get(node(1))[0].port(), 2);
    }
}
