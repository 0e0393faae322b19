//! The serving side of discovery: FindNode, Announce and FindService answer
//! from the routing table and the provider store (`node_service` wires them
//! into `peerd.node.v1.Node`). A record points at the address its announcer
//! called from, never at one it names.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::providers::{MAX_TTL, Provider, ProviderStore};
use super::routing_table::{K, RoutingTable};
use super::wire::to_node_address;
use crate::addressing::AddressBook;
use crate::identity::NodeId;
use crate::node_service::{Directory, proto};
use crate::rpc::{CallContext, Status};

/// What discovery knows, shared by the handlers and the active side.
#[derive(Debug)]
pub struct DiscoveryState {
    /// This node's id, the routing table's centre.
    pub local: NodeId,
    /// Known nodes by XOR distance to `local` (Kademlia k-buckets).
    pub table: Mutex<RoutingTable>,
    /// Service announcements other nodes stored here, bounded and
    /// expiring.
    pub providers: Mutex<ProviderStore>,
    /// The node's address book, whose relays FindNode answers list.
    pub addresses: AddressBook,
}

impl DiscoveryState {
    /// Empty state for the node `local`, whose address book is
    /// `addresses`.
    pub fn new(local: NodeId, addresses: AddressBook) -> Arc<Self> {
        Arc::new(Self {
            local,
            table: Mutex::new(RoutingTable::new(local)),
            providers: Mutex::default(),
            addresses,
        })
    }

    /// Locks the routing table. Panics if a holder of the lock panicked.
    pub fn table(&self) -> std::sync::MutexGuard<'_, RoutingTable> {
        self.table.lock().expect("routing table lock poisoned")
    }

    /// Locks the provider store. Panics if a holder of the lock panicked.
    pub fn providers(&self) -> std::sync::MutexGuard<'_, ProviderStore> {
        self.providers.lock().expect("provider store lock poisoned")
    }
}

impl Directory for DiscoveryState {
    fn find_node(
        &self,
        request: &proto::FindNodeRequest,
    ) -> Result<proto::FindNodeResponse, Status> {
        find_node(self, request)
    }

    fn announce(
        &self,
        context: &CallContext,
        request: proto::AnnounceRequest,
    ) -> Result<proto::AnnounceResponse, Status> {
        store_announcement(self, context, request)
    }

    fn find_service(&self, request: &proto::FindServiceRequest) -> proto::FindServiceResponse {
        providers_of(self, &request.name)
    }
}

fn find_node(
    state: &DiscoveryState,
    request: &proto::FindNodeRequest,
) -> Result<proto::FindNodeResponse, Status> {
    let target: NodeId = request
        .target
        .parse()
        .map_err(|e| Status::invalid_argument(format!("target: {e}")))?;
    let mut closest = state.table().closest(&target, K);
    // The book is where relays are kept: a node's own Info, or its
    // reservation on this node, put them there.
    for contact in &mut closest {
        contact.relays = state.addresses.relays(contact.node);
    }
    Ok(proto::FindNodeResponse {
        nodes: closest.iter().map(to_node_address).collect(),
    })
}

fn store_announcement(
    state: &DiscoveryState,
    context: &CallContext,
    request: proto::AnnounceRequest,
) -> Result<proto::AnnounceResponse, Status> {
    if request.name.is_empty() || request.name.len() > 128 {
        return Err(Status::invalid_argument(
            "a service name has 1 to 128 bytes",
        ));
    }
    let ttl = Duration::from_secs(request.ttl_secs.into()).min(MAX_TTL);
    let now = Instant::now();
    let known_since = state.table().member_since(&context.peer()).unwrap_or(now);
    let provider = Provider {
        node: context.peer(),
        version: request.version.chars().take(64).collect(),
        // One UDP socket per node: where it called from is where it
        // listens, unless it called through a relay (a lookup of its id
        // finds the relay then).
        addrs: Some(context.caller_address())
            .filter(|addr| !crate::paths::is_virtual(*addr))
            .into_iter()
            .collect(),
        expires: now + ttl,
        known_since,
    };
    state
        .providers()
        .announce(&request.name, provider, now)
        .map_err(|e| Status::resource_exhausted(e.to_string()))?;
    Ok(proto::AnnounceResponse {})
}

pub(crate) fn providers_of(state: &DiscoveryState, name: &str) -> proto::FindServiceResponse {
    let now = Instant::now();
    let providers = state.providers().find(name, now);
    proto::FindServiceResponse {
        providers: providers
            .iter()
            .map(|p| proto::ServiceProvider {
                node: Some(proto::NodeAddress {
                    node_id: p.node.to_string(),
                    addrs: p.addrs.iter().map(ToString::to_string).collect(),
                    relays: Vec::new(),
                }),
                version: p.version.clone(),
                ttl_remaining_secs: p.expires.saturating_duration_since(now).as_secs() as u32,
            })
            .collect(),
    }
}
