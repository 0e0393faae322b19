//! Service announcements this node stores for others: who offers which named
//! service, until the announcement's TTL runs out. Bounded in total and per
//! node; when full, a record goes only to make room for an announcer with a
//! better claim (fewer records, or as many and known longer), so fresh
//! identities cannot push established announcers out, nor keep them out.

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
    /// Since when this node has known the announcer (its routing-table
    /// entry; the announcement's arrival for a node not in the table).
    pub known_since: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(
        "this node's {MAX_RECORDS} service records are held by announcers with fewer records or known longer"
    )]
    Full,
    #[error("a node may announce at most {MAX_PER_NODE} services here")]
    TooManyFromNode,
}

/// How an announcer stands: fewer records first, then known longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Claim {
    records: usize,
    known_since: Instant,
}

#[derive(Debug, Default)]
pub struct ProviderStore {
    services: HashMap<String, Vec<Provider>>,
    /// Records per announcer, and since when it was known.
    announcers: HashMap<NodeId, (usize, Instant)>,
    len: usize,
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
        if refresh {
            self.remove(name, &provider.node);
        } else {
            let held = self.announcers.get(&provider.node).map_or(0, |a| a.0);
            if held >= MAX_PER_NODE {
                return Err(StoreError::TooManyFromNode);
            }
            if self.len >= MAX_RECORDS {
                let newcomer = Claim {
                    records: held + 1,
                    known_since: provider.known_since,
                };
                self.make_room_for(newcomer)?;
            }
        }
        self.insert(name, provider);
        Ok(())
    }

    pub fn find(&mut self, name: &str, now: Instant) -> Vec<Provider> {
        self.prune(now);
        self.services.get(name).cloned().unwrap_or_default()
    }

    /// Drops one record of the announcer with the weakest claim, if the
    /// newcomer's is stronger.
    fn make_room_for(&mut self, newcomer: Claim) -> Result<(), StoreError> {
        let weakest = self
            .announcers
            .iter()
            .map(|(node, &(records, known_since))| {
                (
                    Claim {
                        records,
                        known_since,
                    },
                    *node,
                )
            })
            .max()
            .ok_or(StoreError::Full)?;
        if newcomer >= weakest.0 {
            return Err(StoreError::Full);
        }
        let name = self
            .services
            .iter()
            .flat_map(|(name, providers)| providers.iter().map(move |p| (p.expires, name, p.node)))
            .filter(|(_, _, node)| *node == weakest.1)
            .min()
            .map(|(_, name, _)| name.clone())
            .ok_or(StoreError::Full)?;
        self.remove(&name, &weakest.1);
        Ok(())
    }

    fn insert(&mut self, name: &str, provider: Provider) {
        let entry = self
            .announcers
            .entry(provider.node)
            .or_insert((0, provider.known_since));
        entry.0 += 1;
        entry.1 = entry.1.min(provider.known_since);
        self.services
            .entry(name.to_owned())
            .or_default()
            .push(provider);
        self.len += 1;
    }

    fn remove(&mut self, name: &str, node: &NodeId) {
        let Some(providers) = self.services.get_mut(name) else {
            return;
        };
        let before = providers.len();
        providers.retain(|p| p.node != *node);
        let removed = before - providers.len();
        if providers.is_empty() {
            self.services.remove(name);
        }
        self.forget(node, removed);
    }

    fn forget(&mut self, node: &NodeId, removed: usize) {
        self.len -= removed;
        if let Some(entry) = self.announcers.get_mut(node) {
            entry.0 = entry.0.saturating_sub(removed);
            if entry.0 == 0 {
                self.announcers.remove(node);
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.services.retain(|_, providers| {
            providers.retain(|p| {
                let live = p.expires > now;
                if !live {
                    expired.push(p.node);
                }
                live
            });
            !providers.is_empty()
        });
        for node in expired {
            self.forget(&node, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(n: u8, expires: Instant) -> Provider {
        known_since(u16::from(n), expires, Instant::now())
    }

    fn known_since(n: u16, expires: Instant, since: Instant) -> Provider {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&n.to_be_bytes());
        id[31] = 1;
        Provider {
            node: NodeId::from_bytes(id),
            version: "1".into(),
            addrs: vec![],
            expires,
            known_since: since,
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
        assert_eq!(store.len, 0);
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

    #[tokio::test(start_paused = true)]
    async fn a_full_store_makes_room_for_a_better_claim_only() {
        let mut store = ProviderStore::default();
        let established = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        // 160 fresh announcers try 64 each: 10 240 > 10 000.
        for n in 0..160u16 {
            for i in 0..MAX_PER_NODE {
                let fresh = known_since(100 + n, later, now);
                let _ = store.announce(&format!("f{n}-{i}"), fresh, now);
            }
        }
        assert_eq!(store.len, MAX_RECORDS);
        let most = store.announcers.values().map(|a| a.0).max().unwrap();
        let least = store.announcers.values().map(|a| a.0).min().unwrap();
        assert!(
            most - least <= 1,
            "shared out evenly: {least} to {most} each"
        );
        let old = known_since(1, later, established);
        assert!(
            store.announce("mine", old.clone(), now).is_ok(),
            "the established one gets in"
        );
        assert_eq!(store.len, MAX_RECORDS);
        // Nobody fresh can push it out again, however many records they hold.
        for n in 0..50u16 {
            let fresh = known_since(1000 + n, later, now);
            let _ = store.announce(&format!("g{n}"), fresh, now);
        }
        assert_eq!(store.find("mine", now), [old]);
    }
}
