//! Where nodes can be dialed: addresses learned from configuration, the
//! command line, or other nodes.

use std::net::SocketAddr;
use std::sync::Arc;

use dashmap::DashMap;

use crate::identity::NodeId;

/// Addresses per node, most recently added first. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    entries: Arc<DashMap<NodeId, Vec<SocketAddr>>>,
}

/// Addresses remembered per node; older ones beyond this are forgotten.
const MAX_ADDRESSES_PER_NODE: usize = 8;

impl AddressBook {
    pub fn add(&self, node: NodeId, addr: SocketAddr) {
        let mut addrs = self.entries.entry(node).or_default();
        addrs.retain(|known| *known != addr);
        addrs.insert(0, addr);
        addrs.truncate(MAX_ADDRESSES_PER_NODE);
    }

    pub fn get(&self, node: NodeId) -> Vec<SocketAddr> {
        self.entries
            .get(&node)
            .map(|a| a.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_address_first_without_duplicates_and_bounded() {
        let book = AddressBook::default();
        let node = NodeId::from_bytes([3; 32]);
        for port in 1..=10 {
            book.add(node, SocketAddr::from(([127, 0, 0, 1], port)));
        }
        book.add(node, SocketAddr::from(([127, 0, 0, 1], 5)));
        let addrs = book.get(node);
        assert_eq!(addrs.len(), MAX_ADDRESSES_PER_NODE);
        assert_eq!(addrs[0].port(), 5);
        assert_eq!(addrs.iter().filter(|a| a.port() == 5).count(), 1);
    }
}
