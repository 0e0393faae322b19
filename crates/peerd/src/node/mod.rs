//! `Node`: the library's front door. It binds the connection manager, plugs
//! the RPC server into it as the stream handler, and gives out a client; one
//! cancellation tree owns everything it starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::addressing::AddressBook;
use crate::connection::{BindError, NodeConnectionManager, TransportConfig};
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryState};
use crate::identity::{Identity, NodeId};
use crate::nat::{self, DialBackServer, NatReport};
use crate::node_service::{self, NodeInfo};
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
    cancel: CancellationToken,
    /// Shared by every clone: the last one dropped stops the node.
    _stop_on_drop: Arc<DropGuard>,
}

/// Settings and services of a node before it binds.
pub struct NodeBuilder {
    identity: Identity,
    listen: SocketAddr,
    socket: Option<Arc<dyn quinn::AsyncUdpSocket>>,
    transport: TransportConfig,
    rpc: RpcConfig,
    discovery: DiscoveryConfig,
    router: Router,
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
        self.socket = Some(socket);
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

    /// A node that only makes calls, such as a load generator's throwaway
    /// identity: its `Info` lists no listen address, so the nodes it
    /// connects to keep it out of their address books and routing tables
    /// (they still answer and call it over its connection).
    pub fn client_only(mut self) -> Self {
        self.client_only = true;
        self
    }

    /// The node's tasks stop when `cancel` (or a parent) is cancelled.
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Binds the UDP socket and starts serving. Needs a tokio runtime.
    pub fn bind(mut self) -> Result<Node, BindError> {
        let socket = match self.socket.take() {
            Some(socket) => socket,
            None => crate::connection::bind_udp(self.listen, &self.transport)?,
        };
        let local_addr = socket.local_addr().map_err(|source| BindError::Socket {
            addr: self.listen,
            source,
        })?;
        let info = NodeInfo {
            node_id: self.identity.node_id(),
            listen_addrs: if self.client_only {
                Vec::new()
            } else {
                vec![local_addr]
            },
            services: [
                self.router.services(),
                &[node_service::SERVICE.to_owned(), nat::SERVICE.to_owned()],
            ]
            .concat(),
        };
        let discovery_state = DiscoveryState::new(self.identity.node_id());
        let router = self
            .router
            .with_handlers(node_service::handlers(info, discovery_state.clone()))
            .with_handlers(DialBackServer::default().handlers());
        let server = RpcServer::new(router, self.rpc.clone(), self.cancel.child_token());
        let manager = NodeConnectionManager::with_abstract_socket(
            &self.identity,
            socket,
            self.transport,
            Arc::new(server.clone()),
            self.cancel.child_token(),
        )?;
        let addresses = AddressBook::default();
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
        let client = direct.with_resolver(Arc::new(discovery.clone()));
        Ok(Node {
            _stop_on_drop: Arc::new(self.cancel.clone().drop_guard()),
            discovery,
            id: self.identity.node_id(),
            local_addr,
            manager,
            server,
            client,
            addresses,
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

    /// Asks up to three peers at different addresses, connected ones first,
    /// then ones the address book knows, to dial this node back, and
    /// reports whether it is reachable and through what kind of NAT.
    pub async fn netcheck(&self) -> NatReport {
        let connected = self
            .manager
            .connections()
            .into_iter()
            .map(|c| (c.remote_node_id(), c.remote_address()));
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
    }
}
