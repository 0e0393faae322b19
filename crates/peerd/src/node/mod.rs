//! `Node`: the library's front door. It binds the connection manager on a
//! socket with virtual paths, plugs the RPC server into it as the stream
//! handler, and gives out a client that dials through relays when it must;
//! one cancellation tree owns everything it starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::addressing::{AddressBook, RelayAddr, RelayList};
use crate::connection::{BindError, NodeConnectionManager, TransportConfig};
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryState};
use crate::identity::{Identity, NodeId};
use crate::nat::{self, DialBackServer, NatReport, PunchStats, Puncher};
use crate::node_service::{self, NodeInfo};
use crate::paths::{PathStats, Paths};
use crate::relay::{self, RelayConfig, RelayServer, Relays};
use crate::rpc::{Handlers, Router, RpcClient, RpcConfig, RpcServer};

/// How long shutdown waits for close frames to reach peers.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// A running node.
#[derive(Clone)]
pub struct Node {
    id: NodeId,
    local_addr: SocketAddr,
    manager: NodeConnectionManager,
    server: RpcServer,
    client: RpcClient,
    addresses: AddressBook,
    discovery: Discovery,
    paths: Paths,
    relays: Relays,
    puncher: Puncher,
    relay_server: Option<RelayServer>,
    cancel: CancellationToken,
    /// Shared by every clone: the last one dropped stops the node.
    _stop_on_drop: Arc<DropGuard>,
}

/// How a connection's packets reach its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Plain UDP to the connection's remote address.
    Udp,
    /// Through a relay's circuit.
    Relayed,
    /// To the peer's own address, found by a hole punch.
    Punched(SocketAddr),
}

impl std::fmt::Display for PathKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Udp => f.write_str("udp"),
            Self::Relayed => f.write_str("relayed"),
            Self::Punched(direct) => write!(f, "punched to {direct}"),
        }
    }
}

/// A socket given to the builder instead of `listen`.
enum Socket {
    /// Bound by the caller, as `connection::bind_std` binds: the node keeps
    /// a duplicate of its descriptor for hole-punching openers.
    Bound(std::net::UdpSocket),
    /// Any socket quinn can drive; hole punches send no openers on it.
    Abstract(Arc<dyn quinn::AsyncUdpSocket>),
}

/// Settings and services of a node before it binds.
pub struct NodeBuilder {
    identity: Identity,
    listen: SocketAddr,
    socket: Option<Socket>,
    transport: TransportConfig,
    rpc: RpcConfig,
    discovery: DiscoveryConfig,
    router: Router,
    relay: Option<RelayConfig>,
    cancel: CancellationToken,
    client_only: bool,
}

impl NodeBuilder {
    /// Default `0.0.0.0:0`: all interfaces, a port the OS picks.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serves on `socket` instead of binding `listen`: any socket quinn can
    /// drive, such as `test_utils::FaultySocket`, which injects network faults.
    pub fn socket(mut self, socket: Arc<dyn quinn::AsyncUdpSocket>) -> Self {
        self.socket = Some(Socket::Abstract(socket));
        self
    }

    /// Serves on a UDP socket bound already (by `connection::bind_std`, say,
    /// to learn that the port is free before anything else is done).
    pub fn bound(mut self, socket: std::net::UdpSocket) -> Self {
        self.socket = Some(Socket::Bound(socket));
        self
    }

    /// Transport limits and timers. Default [`TransportConfig::default`].
    pub fn transport(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// RPC limits and timers, for the server and the client. Default
    /// [`RpcConfig::default`].
    pub fn rpc(mut self, config: RpcConfig) -> Self {
        self.rpc = config;
        self
    }

    /// Limits of lookups and of the dials they make.
    pub fn discovery(mut self, config: DiscoveryConfig) -> Self {
        self.discovery = config;
        self
    }

    /// Offers `handlers`' service to other nodes.
    pub fn serve(mut self, handlers: Handlers) -> Self {
        self.router = self.router.with_handlers(handlers);
        self
    }

    /// Serves every method no service routes (see `Router::with_fallback`).
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(crate::rpc::CallContext, crate::rpc::RawRequests, crate::rpc::RawResponses) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = Result<(), crate::rpc::Status>> + Send + 'static,
    {
        self.router = self.router.with_fallback(handler);
        self
    }

    /// Serves the calls for agents this node hosts (see
    /// `Router::with_hosted`).
    pub fn hosted<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(crate::rpc::CallContext, crate::rpc::RawRequests, crate::rpc::RawResponses) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: std::future::Future<Output = Result<(), crate::rpc::Status>> + Send + 'static,
    {
        self.router = self.router.with_hosted(handler);
        self
    }

    /// A node that only makes calls, such as a load generator's throwaway
    /// identity: its `Info` lists no listen address, so the nodes it
    /// connects to keep it out of their address books and routing tables
    /// (they still answer and call it over its connection).
    pub fn client_only(mut self) -> Self {
        self.client_only = true;
        self
    }

    /// Serves `peerd.relay.v1.Relay` with `config`'s limits: nodes behind
    /// NAT may hold reservations here, and others reach them through it.
    pub fn relay(mut self, config: RelayConfig) -> Self {
        self.relay = Some(config);
        self
    }

    /// The node's tasks stop when `cancel` (or a parent) is cancelled.
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Binds the UDP socket and starts serving. Needs a tokio runtime.
    pub fn bind(mut self) -> Result<Node, BindError> {
        let bound = match self.socket.take() {
            Some(Socket::Abstract(socket)) => Err(socket),
            Some(Socket::Bound(socket)) => Ok(socket),
            None => Ok(crate::connection::bind_std(self.listen, &self.transport)?),
        };
        let (socket, opener) = match bound {
            Ok(socket) => {
                let opener = socket.try_clone().ok();
                (crate::connection::wrap_udp(socket)?, opener)
            }
            Err(socket) => (socket, None),
        };
        let local_addr = socket.local_addr().map_err(|source| BindError::Socket {
            addr: self.listen,
            source,
        })?;
        let (socket, paths, probes) = Paths::wrap(socket, opener);
        let held = RelayList::default();
        let addresses = AddressBook::default();
        let local = self.identity.node_id();
        // A circuit is a call: its deadline would end it first, before
        // the caller renews it at 4/5 of the duration it was told.
        let longest_call = self.rpc.max_call_deadline;
        let relay_server = self.relay.take().map(|mut config| {
            config.circuit_duration = config.circuit_duration.min(longest_call);
            RelayServer::new(config, local, addresses.clone())
        });
        let puncher = Puncher::new(paths.clone(), self.cancel.child_token());
        let info = NodeInfo {
            node_id: self.identity.node_id(),
            listen_addrs: if self.client_only {
                Vec::new()
            } else {
                vec![local_addr]
            },
            services: [
                self.router.services(),
                &[
                    node_service::SERVICE.to_owned(),
                    nat::SERVICE.to_owned(),
                    nat::PUNCH_SERVICE.to_owned(),
                ],
                &relay_server
                    .as_ref()
                    .map(|_| relay::SERVICE.to_owned())
                    .into_iter()
                    .collect::<Vec<_>>(),
            ]
            .concat(),
            relays: held.clone(),
        };
        let discovery_state = DiscoveryState::new(local, addresses.clone());
        let router = self
            .router
            .with_handlers(node_service::handlers(info, discovery_state.clone()))
            .with_handlers(DialBackServer::default().handlers())
            .with_handlers(puncher.handlers());
        let router = match &relay_server {
            Some(relay) => router.with_handlers(relay.handlers()),
            None => router,
        };
        let server = RpcServer::new(router, self.rpc.clone(), self.cancel.child_token());
        let manager = NodeConnectionManager::with_abstract_socket(
            &self.identity,
            socket,
            self.transport,
            Arc::new(server.clone()),
            self.cancel.child_token(),
        )?;
        // Discovery's own calls go to contacts it has addresses for; the
        // node's client asks discovery for the rest.
        let direct = RpcClient::new(manager.clone(), addresses.clone(), self.rpc);
        let discovery = Discovery::start(
            discovery_state,
            direct.clone(),
            manager.clone(),
            addresses.clone(),
            self.discovery,
            self.cancel.child_token(),
        );
        let relays = Relays::new(
            direct.clone(),
            manager.clone(),
            paths.clone(),
            addresses.clone(),
            held,
            manager.config().idle_timeout,
            self.cancel.child_token(),
        );
        puncher.start(probes, direct.clone(), manager.clone());
        let client = direct
            .with_resolver(Arc::new(discovery.clone()))
            .with_relayer(Arc::new(relays.clone()));
        Ok(Node {
            _stop_on_drop: Arc::new(self.cancel.clone().drop_guard()),
            discovery,
            id: self.identity.node_id(),
            local_addr,
            manager,
            server,
            client,
            addresses,
            paths,
            relays,
            puncher,
            relay_server,
            cancel: self.cancel,
        })
    }
}

impl Node {
    /// A builder for a node with `identity`'s key and id; nothing is bound
    /// until [`NodeBuilder::bind`].
    pub fn builder(identity: Identity) -> NodeBuilder {
        NodeBuilder {
            identity,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            socket: None,
            transport: TransportConfig::default(),
            rpc: RpcConfig::default(),
            discovery: DiscoveryConfig::default(),
            router: Router::new(),
            relay: None,
            cancel: CancellationToken::new(),
            client_only: false,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The UDP address the node is bound to (with the port the OS picked, if
    /// bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The RPC client: calls other nodes by id, over a live connection or a
    /// dial to an address the address book or discovery has for them.
    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// The connection manager: the node's endpoint and connections, their
    /// counters and events.
    pub fn manager(&self) -> &NodeConnectionManager {
        &self.manager
    }

    /// The RPC server that serves this node's handlers, with its call
    /// counters.
    pub fn server(&self) -> &RpcServer {
        &self.server
    }

    /// Lookups, service announcements, pinned peers.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Where to dial nodes that have no connection.
    pub fn addresses(&self) -> &AddressBook {
        &self.addresses
    }

    /// Holds a reservation on `relay` until shutdown, renewed whenever it
    /// ends, and lists it in `Info`, so nodes that cannot reach this one
    /// come through the relay. False if one is kept there already.
    pub fn reserve_on(&self, relay: RelayAddr) -> bool {
        self.relays.reserve_on(relay)
    }

    /// The relays holding a reservation for this node now.
    pub fn relays_held(&self) -> Vec<RelayAddr> {
        self.relays.held()
    }

    /// How `remote` (a connection's remote address) is reached: as itself,
    /// through a relay, or punched to the peer's own address.
    pub fn path_of(&self, remote: SocketAddr) -> PathKind {
        match (
            crate::paths::is_virtual(remote),
            self.paths.direct_of(remote),
        ) {
            (false, _) => PathKind::Udp,
            (true, None) => PathKind::Relayed,
            (true, Some(direct)) => PathKind::Punched(direct),
        }
    }

    /// The virtual paths: relayed, moved direct, packets dropped.
    pub fn paths(&self) -> PathStats {
        self.paths.stats()
    }

    /// Hole punches this node asked for, and how they ended.
    pub fn punches(&self) -> PunchStats {
        self.puncher.stats()
    }

    /// The relay this node serves, if it serves one.
    pub fn relay_server(&self) -> Option<&RelayServer> {
        self.relay_server.as_ref()
    }

    /// Asks up to three peers at different addresses, connected ones first,
    /// then ones the address book knows, to dial this node back, and
    /// reports whether it is reachable and through what kind of NAT.
    pub async fn netcheck(&self) -> NatReport {
        let connected = self
            .manager
            .connections()
            .into_iter()
            .map(|c| (c.remote_node_id(), c.remote_address()))
            .filter(|(_, addr)| !crate::paths::is_virtual(*addr));
        let mut known = self.addresses.entries();
        known.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.last_seen_unix));
        let known = known
            .into_iter()
            .filter_map(|(node, entry)| Some((node, *entry.addrs.first()?)));
        let chosen = nat::choose_peers(self.id, connected.chain(known));
        nat::netcheck(&self.client, &self.manager, &chosen).await
    }

    /// Stops accepting connections and calls, lets calls in flight finish for
    /// up to `grace`, then closes every connection with `ShuttingDown`.
    pub async fn shutdown(&self, grace: Duration) {
        self.discovery.shutdown().await;
        self.manager.stop_accepting();
        let cancelled = self.server.shutdown(grace).await;
        if cancelled > 0 {
            tracing::warn!(
                cancelled,
                "calls still running after the grace period were cancelled"
            );
        }
        self.manager.shutdown(CLOSE_FLUSH).await;
        self.cancel.cancel();
        self.relays.shutdown().await;
        self.puncher.shutdown().await;
    }
}
