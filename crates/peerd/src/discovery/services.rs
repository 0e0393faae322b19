//! Service discovery: announcing named services to the nodes closest to the
//! name's key, refreshed at 80 % of the TTL, and finding their providers.
//! Each announcement or search is over by the lookup deadline: the holders
//! are asked all at once, and those still silent at the deadline are dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Discovery;
use super::handlers::providers_of;
use super::routing_table::{Contact, K};
use super::wire::{from_node_address, parse_addrs};
use crate::identity::NodeId;
use crate::node_service::{self, proto};
use crate::rpc::{CallOptions, Status};

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A node offering a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRecord {
    /// The provider's node id in its base32 text form, as the answering node
    /// sent it (not checked to parse).
    pub node_id: String,
    /// The version the provider announced, free-form (e.g. `1.2.0`).
    pub version: String,
    /// Where to dial the provider, best first, at most 8; entries that do not
    /// parse as socket addresses are left out.
    pub addrs: Vec<SocketAddr>,
    /// Seconds until the record expires unless the provider announces again,
    /// as the answering node counted when it answered.
    pub ttl_remaining_secs: u32,
}

/// The key a service name is stored under: SHA-256 of a label and the name.
pub fn service_key(name: &str) -> NodeId {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"peerd service v1\0");
    context.update(name.as_bytes());
    let digest: [u8; 32] = context
        .finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes");
    NodeId::from_bytes(digest)
}

impl Discovery {
    /// Announces `name` (at `version`) for `ttl`, refreshed at 80 % of it
    /// until shutdown.
    pub fn announce(&self, name: &str, version: &str, ttl: Duration) {
        self.inner
            .announced
            .insert(name.to_owned(), version.to_owned());
        let (discovery, name, version) = (self.clone(), name.to_owned(), version.to_owned());
        self.spawn(async move {
            loop {
                discovery.announce_once(&name, &version, ttl).await;
                tokio::time::sleep(ttl.mul_f64(0.8)).await;
            }
        });
    }

    /// Services this node announces: name → version.
    pub fn announced(&self) -> Vec<(String, String)> {
        self.inner
            .announced
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    async fn announce_once(&self, name: &str, version: &str, ttl: Duration) {
        let request = proto::AnnounceRequest {
            name: name.to_owned(),
            version: version.to_owned(),
            ttl_secs: ttl.as_secs().try_into().unwrap_or(u32::MAX),
            addrs: vec![
                self.inner
                    .manager
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            ],
        };
        // Our own store answers too, so a lone node finds its own services.
        self.store_own(&request);
        let deadline = self.deadline();
        let holders = self
            .lookup(service_key(name), false, deadline)
            .await
            .closest_answered();
        let answers = self.ask_all(holders, deadline, move |discovery, holder| {
            let request = request.clone();
            async move {
                let options = holder_options(&holder, deadline);
                let client = &discovery.inner.client;
                client
                    .unary::<_, proto::AnnounceResponse>(
                        holder.node,
                        node_service::ANNOUNCE,
                        &request,
                        &options,
                    )
                    .await
            }
        });
        for (holder, status) in answers
            .await
            .into_iter()
            .filter_map(|(h, r)| Some((h, r.err()?)))
        {
            tracing::debug!(holder = %holder.short(), %status, service = name, "announcement not stored");
        }
    }

    /// Asks every holder at once with `ask`; the answers in by `deadline`.
    async fn ask_all<T, F>(
        &self,
        holders: Vec<Contact>,
        deadline: Instant,
        ask: impl Fn(Discovery, Contact) -> F,
    ) -> Vec<(NodeId, Result<T, Status>)>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, Status>> + Send + 'static,
    {
        let mut asking = JoinSet::new();
        for holder in holders {
            let node = holder.node;
            let answer = ask(self.clone(), holder);
            asking.spawn(async move { (node, answer.await) });
        }
        let mut answers = Vec::new();
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, asking.join_next()).await {
            if let Ok(answer) = joined {
                answers.push(answer);
            }
        }
        answers
    }

    fn store_own(&self, request: &proto::AnnounceRequest) {
        let now = tokio::time::Instant::now();
        let provider = super::providers::Provider {
            node: self.local_id(),
            version: request.version.clone(),
            addrs: parse_addrs(&request.addrs),
            expires: now
                + Duration::from_secs(request.ttl_secs.into()).min(super::providers::MAX_TTL),
            known_since: now,
        };
        let _ = self
            .inner
            .state
            .providers()
            .announce(&request.name, provider, now);
    }

    /// Nodes offering `name`, from the nodes closest to its key and our own
    /// store, as far as they answered by the lookup deadline.
    pub async fn find_service(&self, name: &str) -> Vec<ServiceRecord> {
        let deadline = self.deadline();
        let holders = self
            .lookup(service_key(name), false, deadline)
            .await
            .closest_answered();
        let request = proto::FindServiceRequest {
            name: name.to_owned(),
        };
        let asked = self.ask_all(holders, deadline, move |discovery, holder| {
            let request = request.clone();
            async move {
                let options = holder_options(&holder, deadline);
                let client = &discovery.inner.client;
                client
                    .unary::<_, proto::FindServiceResponse>(
                        holder.node,
                        node_service::FIND_SERVICE,
                        &request,
                        &options,
                    )
                    .await
            }
        });
        let mut answers = vec![providers_of(&self.inner.state, name)];
        answers.extend(asked.await.into_iter().filter_map(|(_, r)| r.ok()));
        merge(answers)
    }

    /// Asks `contact` for the nodes it knows closest to `target`. A contact
    /// that is not connected costs a dial from the shared budget, and is
    /// only ever dialed at the addresses it came with.
    pub(super) async fn ask_find_node(
        &self,
        contact: Contact,
        target: NodeId,
        deadline: Instant,
    ) -> Result<Vec<Contact>, Status> {
        if self.inner.manager.connection(contact.node).is_none() {
            if contact.addrs.is_empty() {
                return Err(Status::unavailable(
                    "a contact without addresses is not dialed",
                ));
            }
            if !self.inner.dials.take(deadline).await {
                return Err(Status::unavailable(
                    "no dial left before the lookup's deadline",
                ));
            }
        }
        let options = holder_options(&contact, deadline);
        let request = proto::FindNodeRequest {
            target: target.to_string(),
        };
        let answer: proto::FindNodeResponse = self
            .inner
            .client
            .unary(contact.node, node_service::FIND_NODE, &request, &options)
            .await?;
        self.saw(contact);
        Ok(answer
            .nodes
            .iter()
            .take(K)
            .filter_map(from_node_address)
            .collect())
    }
}

/// Calls to `holder` at its own addresses, within a question's time and the
/// operation's deadline.
fn holder_options(holder: &Contact, deadline: Instant) -> CallOptions {
    let left = deadline.saturating_duration_since(Instant::now());
    CallOptions {
        addrs: holder.addrs.clone(),
        ..CallOptions::default()
    }
    .with_timeout(QUERY_TIMEOUT.min(left).max(Duration::from_millis(1)))
}

/// One record per node: the one with the most time left.
fn merge(answers: Vec<proto::FindServiceResponse>) -> Vec<ServiceRecord> {
    let mut best: HashMap<String, ServiceRecord> = HashMap::new();
    for provider in answers.into_iter().flat_map(|a| a.providers) {
        let Some(node) = provider.node else { continue };
        if node.node_id.parse::<NodeId>().is_err() {
            continue;
        }
        let record = ServiceRecord {
            node_id: node.node_id.clone(),
            version: provider.version,
            addrs: parse_addrs(&node.addrs),
            ttl_remaining_secs: provider.ttl_remaining_secs,
        };
        let keep = best
            .get(&record.node_id)
            .is_none_or(|known| known.ttl_remaining_secs < record.ttl_remaining_secs);
        if keep {
            best.insert(record.node_id.clone(), record);
        }
    }
    let mut records: Vec<_> = best.into_values().collect();
    records.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_are_stable_and_distinct() {
        assert_eq!(service_key("chat"), service_key("chat"));
        assert_ne!(service_key("chat"), service_key("chat2"));
    }

    #[test]
    fn merging_keeps_one_record_per_node_with_the_most_time_left() {
        let node = NodeId::from_bytes([3; 32]).to_string();
        let answer = |ttl| proto::FindServiceResponse {
            providers: vec![proto::ServiceProvider {
                node: Some(proto::NodeAddress {
                    node_id: node.clone(),
                    addrs: vec![],
                    relays: vec![],
                }),
                version: "1".into(),
                ttl_remaining_secs: ttl,
            }],
        };
        let merged = merge(vec![answer(5), answer(50), answer(20)]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].ttl_remaining_secs, 50);
    }
}
