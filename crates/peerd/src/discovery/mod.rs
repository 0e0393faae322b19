//! Finding and keeping peers: a Kademlia routing table filled from every
//! connection, iterative lookups (`FindNode`) that resolve a bare `NodeId`
//! to addresses, service announcements with a TTL (`Announce`,
//! `FindService`), pinned peers kept connected with backoff, and the peer
//! book that survives restarts. Every lookup is bounded (docs/discovery.md,
//! "Hostile peers"): in questions, in time, in turns and in dials.

mod backoff;
mod config;
mod dial_budget;
mod distance;
mod fresh_answers;
mod handlers;
mod learner;
mod lookup;
pub mod peer_book;
mod pinned;
mod providers;
mod routing_table;
mod services;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use backoff::Backoff;
pub(crate) use backoff::random_unit;
pub use config::DiscoveryConfig;
use dial_budget::DialBudget;
pub use handlers::DiscoveryState;
pub use pinned::PinState;
use routing_table::Insert;
pub use routing_table::{Contact, K};
pub use services::{ServiceRecord, service_key};

use crate::addressing::{AddressBook, AddressSource, PeerAddr};
use crate::connection::{ConnectError, NodeConnection, NodeConnectionManager};
use crate::identity::NodeId;
use crate::node_service;
use crate::rpc::{AddressResolver, CallOptions, RpcClient};

/// Why a peer given as `id@host:port` could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// The host part could not be resolved (e.g. an unknown name or no
    /// DNS server).
    #[error("cannot resolve {host_port}: {source}")]
    Resolve {
        /// The `host:port` that was looked up.
        host_port: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The host resolved, but no connection to the node could be made there.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

/// The active side of discovery for one node. Cheap to clone.
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<DiscoveryState>,
    client: RpcClient,
    manager: NodeConnectionManager,
    addresses: AddressBook,
    pinned: DashMap<NodeId, PinState>,
    announced: DashMap<String, String>,
    backoff: Backoff,
    config: DiscoveryConfig,
    /// Turns for lookups: `config.max_lookups` at once.
    lookups: Semaphore,
    /// Dials to addresses learned from answers.
    dials: DialBudget,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Discovery {
    pub(crate) fn start(
        state: Arc<DiscoveryState>,
        client: RpcClient,
        manager: NodeConnectionManager,
        addresses: AddressBook,
        config: DiscoveryConfig,
        cancel: CancellationToken,
    ) -> Self {
        let discovery = Self {
            inner: Arc::new(Inner {
                state,
                client,
                manager,
                addresses,
                pinned: DashMap::new(),
                announced: DashMap::new(),
                backoff: Backoff::default(),
                lookups: Semaphore::new(config.max_lookups.max(1)),
                dials: DialBudget::new(config.learned_dials_per_second),
                config,
                cancel,
                tasks: TaskTracker::new(),
            }),
        };
        discovery.spawn(learner::learn_from_connections(discovery.clone()));
        discovery
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let cancel = self.inner.cancel.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.inner.state.local
    }

    /// Contacts in the routing table.
    pub fn known_nodes(&self) -> usize {
        self.inner.state.table().len()
    }

    /// Finds `target`'s addresses by asking the closest known nodes, and the
    /// closest they know, until it is found, nobody closer is left, or the
    /// lookup's deadline passes.
    pub async fn find_node(&self, target: NodeId) -> Option<Vec<SocketAddr>> {
        if let Some(contact) = self.inner.state.table().get(&target) {
            return Some(contact.addrs.clone());
        }
        let done = self.lookup(target, true, self.deadline()).await;
        let found = done.found()?.clone();
        let addresses = &self.inner.addresses;
        addresses.learn(target, &found.addrs, AddressSource::Lookup);
        if !found.relays.is_empty() {
            addresses.set_relays(target, &found.relays);
        }
        Some(found.addrs)
    }

    /// When an operation starting now must be over.
    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.config.lookup_timeout
    }

    /// Runs a lookup once it has a turn; one that gets none before
    /// `deadline` ends without asking anybody.
    async fn lookup(
        &self,
        target: NodeId,
        stop_when_found: bool,
        deadline: Instant,
    ) -> lookup::Lookup {
        let seeds = self.inner.state.table().closest(&target, K);
        let max_queries = self.inner.config.max_queries_per_lookup;
        let start = lookup::Lookup::new(
            self.local_id(),
            target,
            K,
            seeds,
            stop_when_found,
            max_queries,
        );
        let turn = tokio::time::timeout_at(deadline, self.inner.lookups.acquire()).await;
        let Ok(Ok(_turn)) = turn else {
            return start;
        };
        let discovery = self.clone();
        lookup::run(start, deadline, move |contact| {
            let discovery = discovery.clone();
            async move { discovery.ask_find_node(contact, target, deadline).await }
        })
        .await
    }

    /// Records `contact` as live in the routing table. A full bucket with
    /// a member not connected checks that member with a Ping first, in the
    /// background (at most one check per bucket at a time). Virtual
    /// addresses are left out: they mean nothing to other nodes.
    fn saw(&self, mut contact: Contact) {
        contact
            .addrs
            .retain(|addr| !crate::paths::is_virtual(*addr));
        if contact.addrs.is_empty() && contact.relays.is_empty() {
            return;
        }
        let manager = self.inner.manager.clone();
        let inserted = self
            .inner
            .state
            .table()
            .insert(contact, |old| manager.connection(*old).is_some());
        if let Insert::Check { oldest } = inserted {
            let discovery = self.clone();
            self.spawn(async move {
                let options = CallOptions {
                    addrs: oldest.addrs.clone(),
                    ..CallOptions::default()
                }
                .with_timeout(discovery.inner.config.liveness_timeout);
                let client = &discovery.inner.client;
                let alive = node_service::ping(client, oldest.node, &options)
                    .await
                    .is_ok();
                discovery.inner.state.table().checked(&oldest.node, alive);
            });
        }
    }

    /// Dials each of `peers` once and remembers them (configuration's
    /// `bootstrap`), in the routing table before this returns, so a join or
    /// an announcement that follows reaches them. Failures are logged: other
    /// peers may still answer.
    pub async fn bootstrap(&self, peers: &[PeerAddr]) {
        for peer in peers {
            if let Err(error) = self.connect(peer, AddressSource::Config).await.map(|_| ()) {
                tracing::warn!(peer = %peer, %error, "bootstrap peer unreachable");
            }
        }
    }

    /// Looks up our own id: fills the routing table with our neighbourhood
    /// and makes us known to it (Kademlia's join).
    pub async fn join(&self) {
        let _ = self.lookup(self.local_id(), false, self.deadline()).await;
    }

    /// Resolves `peer`, remembers its addresses (learned from `source`:
    /// a `Config` address at once, any other once the dial worked) and
    /// returns a connection to it, dialing if there is none. The peer is in
    /// the routing table when this returns.
    pub async fn connect(
        &self,
        peer: &PeerAddr,
        source: AddressSource,
    ) -> Result<NodeConnection, ReachError> {
        let addrs = peer.resolve().await.map_err(|source| ReachError::Resolve {
            host_port: peer.host_port.clone(),
            source,
        })?;
        // A configured address is kept while it is down, as the
        // configuration says; any other only once the dial worked, so a
        // mistyped or dead one given by a command is not.
        if source == AddressSource::Config {
            self.inner.addresses.learn(peer.node, &addrs, source);
        }
        let connection = self.inner.manager.get_or_connect(peer.node, &addrs).await?;
        self.inner.addresses.learn(peer.node, &addrs, source);
        self.saw(Contact {
            node: peer.node,
            addrs: vec![connection.remote_address()],
            relays: Vec::new(),
        });
        Ok(connection)
    }

    /// Keeps `peer` connected, reconnecting with backoff after each loss, and
    /// exempts its connection from the idle TTL.
    pub fn pin(&self, peer: PeerAddr) {
        let node = peer.node;
        self.inner.manager.pin(node);
        self.inner
            .pinned
            .insert(node, PinState::Connecting { attempt: 0 });
        self.spawn(pinned_supervisor(self.clone(), peer));
    }

    /// Pinned peers and what their supervisors are doing.
    pub fn pinned(&self) -> Vec<(NodeId, PinState)> {
        self.inner
            .pinned
            .iter()
            .map(|e| (*e.key(), e.value().clone()))
            .collect()
    }

    /// Forgets `node`: its addresses and its place in the routing table.
    /// A live connection stays up, and a node that connects again is
    /// learned again. False if nothing was known of it.
    pub fn forget(&self, node: NodeId) -> bool {
        let listed = self.inner.state.table().remove(&node);
        self.inner.addresses.forget(node) || listed
    }

    /// Stops the background work (learner, pinned peers, announcements).
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

async fn pinned_supervisor(discovery: Discovery, peer: PeerAddr) {
    let inner = discovery.inner.clone();
    let connect = || {
        let (discovery, peer) = (discovery.clone(), peer.clone());
        async move {
            discovery.connect(&peer, AddressSource::Config).await?;
            let manager = discovery.inner.manager.clone();
            Ok::<_, ReachError>(Box::pin(async move {
                // The primary may be replaced (a drained duplicate); lost
                // means no connection at all.
                while let Some(connection) = manager.connection(peer.node) {
                    connection.quic().closed().await;
                }
            }) as pinned::Lost)
        }
    };
    let report = |state| {
        log_pin_state(&peer, &state);
        inner.pinned.insert(peer.node, state);
    };
    pinned::supervise(
        connect,
        &inner.backoff,
        backoff::random_unit,
        report,
        inner.cancel.clone(),
    )
    .await;
}

/// A pinned peer's trouble at info level, as an operator wants to see it:
/// each failure while they are few, then at attempts 4, 8, 16, … so a peer
/// down for days costs a line per doubling of the wait.
fn log_pin_state(peer: &PeerAddr, state: &PinState) {
    match state {
        PinState::Reconnecting {
            attempt,
            next_retry_millis,
            last_error,
        } if *attempt <= 2 || attempt.is_power_of_two() => tracing::info!(
            %peer,
            attempt,
            retry_in_ms = next_retry_millis,
            error = %last_error,
            "pinned peer unreachable; retrying"
        ),
        PinState::Connected => tracing::info!(%peer, "pinned peer connected"),
        PinState::Reconnecting { .. } | PinState::Connecting { .. } => {}
    }
}

impl AddressResolver for Discovery {
    fn resolve(&self, node: NodeId) -> Pin<Box<dyn Future<Output = Vec<SocketAddr>> + Send>> {
        let discovery = self.clone();
        Box::pin(async move { discovery.find_node(node).await.unwrap_or_default() })
    }
}
