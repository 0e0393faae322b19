//! Service announcements this node stores for others: who offers which named
//! service, until the announcement's TTL runs out. Bounded in total and per node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::identity::NodeId;

/// Records kept at most, all services together.
pub(crate) const MAX_RECORDS: usize = 10_000;
/// Services one node may have announced here at once.
pub(crate) const MAX_PER_NODE: usize = 64;
/// Longer TTLs are cut to this, so a vanished node is forgotten within it.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub node: NodeId,
    pub version: String,
    pub addrs: Vec<SocketAddr>,
    pub expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("this node stores at most {MAX_RECORDS} service announcements")]
    Full,
    #[error("a node may announce at most {MAX_PER_NODE} services here")]
    TooManyFromNode,
}

#[derive(Debug, Default)]
pub struct ProviderStore {
    services: HashMap<String, Vec<Provider>>,
}

impl ProviderStore {
    /// Adds or refreshes `node`'s announcement of `name`.
    pub fn announce(
        &mut self,
        name: &str,
        provider: Provider,
        now: Instant,
    ) -> Result<(), StoreError> {
        self.prune(now);
        let refresh = self
            .services
            .get(name)
            .is_some_and(|p| p.iter().any(|known| known.node == provider.node));
        if !refresh {
            if self.len() >= MAX_RECORDS {
                return Err(StoreError::Full);
            }
            if self.count_from(&provider.node) >= MAX_PER_NODE {
                return Err(StoreError::TooManyFromNode);
            }
        }
        let providers = self.services.entry(name.to_owned()).or_default();
        providers.retain(|known| known.node != provider.node);
        providers.push(provider);
        Ok(())
    }

    pub fn find(&mut self, name: &str, now: Instant) -> Vec<Provider> {
        self.prune(now);
        self.services.get(name).cloned().unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.services.values().map(Vec::len).sum()
    }

    fn count_from(&self, node: &NodeId) -> usize {
        self.services
            .values()
            .flatten()
            .filter(|p| p.node == *node)
            .count()
    }

    fn prune(&mut self, now: Instant) {
        self.services.retain(|_, providers| {
            providers.retain(|p| p.expires > now);
            !providers.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(n: u8, expires: Instant) -> Provider {
        Provider {
            node: NodeId::from_bytes([n; 32]),
            version: "1".into(),
            addrs: vec![],
            expires,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn announcements_expire_with_their_ttl() {
        let mut store = ProviderStore::default();
        let now = Instant::now();
        store
            .announce("chat", provider(1, now + Duration::from_secs(10)), now)
            .unwrap();
        assert_eq!(store.find("chat", now).len(), 1);
        assert_eq!(store.find("chat", now + Duration::from_secs(10)).len(), 0);
        assert_eq!(store.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_replaces_the_old_record() {
        let mut store = ProviderStore::default();
        let now = Instant::now();
        store
            .announce("chat", provider(1, now + Duration::from_secs(1)), now)
            .unwrap();
        store
            .announce("chat", provider(1, now + Duration::from_secs(9)), now)
            .unwrap();
        let found = store.find("chat", now + Duration::from_secs(5));
        assert_eq!(found.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn one_node_cannot_fill_the_store() {
        let mut store = ProviderStore::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for i in 0..MAX_PER_NODE {
            store
                .announce(&format!("s{i}"), provider(1, later), now)
                .unwrap();
        }
        assert_eq!(
            store.announce("one-more", provider(1, later), now),
            Err(StoreError::TooManyFromNode)
        );
        assert!(
            store.announce("one-more", provider(2, later), now).is_ok(),
            "others still may"
        );
    }
}
