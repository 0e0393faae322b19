//! `NodeConnectionManager`: owns the endpoint and the connection map, and
//! answers `get_or_connect` by reusing any live connection before dialing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::datagrams::{self, Datagram, DatagramError, DatagramRouter, DatagramStats};
use super::pending::PendingHandshakes;
use super::slot::PeerSlot;
use super::tally::{ConnectionTally, Traffic};
use super::{
    BindError, CloseCode, ConnectError, ConnectionEvent, Direction, EventKind, NodeConnection,
    StreamGuard, TransportConfig,
};
use crate::identity::{Identity, NodeId};
use crate::tls::TlsConfigs;

mod accept;
mod dial;
mod driver;
mod endpoint;

pub(crate) use endpoint::wildcard_for;
pub use endpoint::{bind_std, bind_udp, set_buffers, wrap_udp};

/// Receives every bidirectional stream a peer opens, on any connection. It
/// must not block: it takes ownership of the stream and spawns its own work.
pub trait StreamHandler: Send + Sync + 'static {
    /// Takes one stream; called on the connection's driver task, so it
    /// must return at once.
    fn handle_stream(&self, stream: IncomingStream);
}

/// A stream the peer opened, with the authenticated connection it came on.
#[derive(Debug)]
pub struct IncomingStream {
    /// The connection the stream came on; its remote node is the caller.
    pub connection: NodeConnection,
    /// Our half of the stream, towards the peer.
    pub send: quinn::SendStream,
    /// The peer's half, from the peer.
    pub recv: quinn::RecvStream,
    /// Keeps the connection counted as busy while the stream is served.
    pub guard: StreamGuard,
}

/// Counters for tests and status output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManagerStats {
    /// Outbound handshakes that completed.
    pub dials: u64,
    /// Inbound handshakes that completed.
    pub accepted: u64,
    /// Inbound connection attempts refused or asked to retry.
    pub refused: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// Inbound handshakes in progress now.
    pub pending_handshakes: usize,
}

/// The SNI sent on dials. Never checked: the certificate key is the identity.
const SERVER_NAME: &str = "peerd";

/// Owner of the node's QUIC endpoint and of its connections, at most one
/// primary per node. A cheap, clonable handle: clones share one endpoint;
/// `shutdown` closes it for all.
#[derive(Clone)]
pub struct NodeConnectionManager {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    endpoint: quinn::Endpoint,
    local: NodeId,
    tls: TlsConfigs,
    transport: Arc<quinn::TransportConfig>,
    config: TransportConfig,
    peers: DashMap<NodeId, Arc<PeerSlot>>,
    /// Nodes whose connections the idle TTL never closes.
    pinned: dashmap::DashSet<NodeId>,
    handler: Arc<dyn StreamHandler>,
    events: broadcast::Sender<ConnectionEvent>,
    pending: Arc<PendingHandshakes>,
    open: AtomicUsize,
    sequence: AtomicU64,
    dials: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    tally: ConnectionTally,
    datagrams: Arc<DatagramRouter>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl NodeConnectionManager {
    /// Binds the node's one UDP socket and starts accepting connections.
    /// Cancelling `cancel` stops everything the manager runs.
    pub fn bind(
        identity: &Identity,
        listen: SocketAddr,
        config: TransportConfig,
        handler: Arc<dyn StreamHandler>,
        cancel: CancellationToken,
    ) -> Result<Self, BindError> {
        let socket = bind_udp(listen, &config)?;
        Self::with_abstract_socket(identity, socket, config, handler, cancel)
    }

    /// Like `bind`, on any socket quinn can drive: one with its own I/O, such
    /// as a socket that injects network faults (`test_utils::FaultySocket`).
    pub fn with_abstract_socket(
        identity: &Identity,
        socket: Arc<dyn quinn::AsyncUdpSocket>,
        config: TransportConfig,
        handler: Arc<dyn StreamHandler>,
        cancel: CancellationToken,
    ) -> Result<Self, BindError> {
        let tls = TlsConfigs::new(identity)?;
        let transport = config.quinn();
        let endpoint = endpoint::new(identity, socket, &tls, &transport, &config)?;
        let shared = Arc::new(Shared {
            endpoint,
            local: identity.node_id(),
            tls,
            transport,
            config,
            peers: DashMap::new(),
            pinned: dashmap::DashSet::new(),
            handler,
            events: broadcast::channel(1024).0,
            pending: Arc::default(),
            open: AtomicUsize::new(0),
            sequence: AtomicU64::new(0),
            dials: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            tally: ConnectionTally::default(),
            datagrams: Arc::default(),
            cancel,
            tasks: TaskTracker::new(),
        });
        let span = tracing::info_span!("accept", node = %shared.local.short());
        shared
            .tasks
            .spawn(accept::accept_loop(shared.clone()).instrument(span));
        Ok(Self { shared })
    }

    /// This node's id, the key its certificate carries.
    pub fn node_id(&self) -> NodeId {
        self.shared.local
    }

    /// The UDP address the endpoint is bound to (the port chosen, when bound
    /// to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.shared.endpoint.local_addr()
    }

    /// The transport settings the manager was made with.
    pub fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    /// The open primary connection to `node`, if there is one.
    pub fn connection(&self, node: NodeId) -> Option<NodeConnection> {
        self.shared.peers.get(&node)?.primary()
    }

    /// Every connection in the map, primaries and draining duplicates.
    pub fn connections(&self) -> Vec<NodeConnection> {
        self.shared
            .peers
            .iter()
            .flat_map(|slot| slot.all())
            .collect()
    }

    /// Handshake counts and durations, and the traffic of closed connections.
    pub fn tally(&self) -> &ConnectionTally {
        &self.shared.tally
    }

    /// The counters now; each field is read on its own, so they are not one
    /// atomic snapshot.
    pub fn stats(&self) -> ManagerStats {
        let shared = &self.shared;
        ManagerStats {
            dials: shared.dials.load(Ordering::Relaxed),
            accepted: shared.accepted.load(Ordering::Relaxed),
            refused: shared.refused.load(Ordering::Relaxed),
            open_connections: shared.open.load(Ordering::Relaxed),
            pending_handshakes: shared.pending.total(),
        }
    }

    /// Nodes being dialed that have no connection yet.
    pub fn dialing(&self) -> usize {
        self.shared
            .peers
            .iter()
            .filter(|slot| slot.is_empty())
            .count()
    }

    /// Events from now on for every connection registered or closed. The
    /// channel holds 1024 events: a subscriber that falls further behind
    /// receives `Lagged` and misses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.shared.events.subscribe()
    }

    /// Returns the live connection to `node`, whoever dialed it, or dials one
    /// of `addrs`. Concurrent calls for one node share one handshake.
    pub async fn get_or_connect(
        &self,
        node: NodeId,
        addrs: &[SocketAddr],
    ) -> Result<NodeConnection, ConnectError> {
        if let Some(conn) = self.connection(node) {
            return Ok(conn);
        }
        if node == self.shared.local {
            return Err(ConnectError::DialSelf(node));
        }
        let slot = self.shared.slot(node);
        let result = self.connect_under_lock(&slot, node, addrs).await;
        drop(slot);
        self.shared.forget_if_empty(node);
        result
    }

    async fn connect_under_lock(
        &self,
        slot: &PeerSlot,
        node: NodeId,
        addrs: &[SocketAddr],
    ) -> Result<NodeConnection, ConnectError> {
        let turn = slot.dial.join().await;
        if let Some(conn) = slot.primary() {
            return Ok(conn);
        }
        if let Some(failure) = turn.failure_waited_on(addrs) {
            return Err(failure);
        }
        let result = self.await_inbound_or_dial(slot, node, addrs).await;
        turn.end(addrs, result.as_ref().err());
        result
    }

    async fn await_inbound_or_dial(
        &self,
        slot: &PeerSlot,
        node: NodeId,
        addrs: &[SocketAddr],
    ) -> Result<NodeConnection, ConnectError> {
        // The node may be dialing us right now from one of these addresses;
        // its connection will do, and a second one would only be drained.
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        self.shared.pending.wait_for(addrs, deadline).await;
        if let Some(conn) = slot.primary() {
            return Ok(conn);
        }
        self.shared.dial_any(node, addrs).await
    }

    /// Sends `payload` as one unreliable datagram to `service` on `node`
    /// over the connection this node has to it; none is dialed. It may be
    /// lost, reordered or dropped by a full queue, without notice.
    pub fn send_datagram(
        &self,
        node: NodeId,
        service: &str,
        payload: &[u8],
    ) -> Result<(), DatagramError> {
        let connection = self
            .connection(node)
            .ok_or(DatagramError::NotConnected(node))?;
        datagrams::send(
            connection.quic(),
            node,
            service,
            payload,
            &self.shared.datagrams,
        )
    }

    /// Receives the datagrams other nodes send to `service`, up to
    /// `capacity` waiting; more are dropped and counted. One subscriber
    /// per service, until its receiver is dropped.
    pub fn subscribe_datagrams(
        &self,
        service: &str,
        capacity: usize,
    ) -> Result<tokio::sync::mpsc::Receiver<Datagram>, DatagramError> {
        self.shared.datagrams.subscribe(service, capacity)
    }

    /// Datagrams sent, received and dropped since the start.
    pub fn datagram_stats(&self) -> DatagramStats {
        self.shared.datagrams.stats()
    }

    /// Exempts `node`'s connections from the idle TTL.
    pub fn pin(&self, node: NodeId) {
        self.shared.pinned.insert(node);
    }

    /// Closes every connection to `node`. Returns whether there was one.
    pub fn disconnect(&self, node: NodeId) -> bool {
        let Some(slot) = self.shared.peers.get(&node).map(|s| s.clone()) else {
            return false;
        };
        let connections = slot.all();
        connections.iter().for_each(|c| c.close(CloseCode::Normal));
        !connections.is_empty()
    }

    /// Stops accepting new connections; existing ones keep working.
    pub fn stop_accepting(&self) {
        self.shared.endpoint.set_server_config(None);
    }

    /// Closes every connection with `ShuttingDown`, stops all tasks, and waits
    /// (at most `flush`) for the close to reach the peers.
    pub async fn shutdown(&self, flush: Duration) {
        self.stop_accepting();
        // Closing discards stream data quinn has not sent yet: give answers
        // written just now time to leave, with one loss recovery's margin.
        tokio::time::sleep(self.delivery_margin().min(flush)).await;
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        self.shared.endpoint.close(
            CloseCode::ShuttingDown.var_int(),
            CloseCode::ShuttingDown.reason(),
        );
        let _ = tokio::time::timeout(flush, self.shared.endpoint.wait_idle()).await;
    }
}

impl NodeConnectionManager {
    fn delivery_margin(&self) -> Duration {
        let slowest = self.connections().iter().map(NodeConnection::rtt).max();
        slowest.map_or(Duration::ZERO, |rtt| rtt * 3 + MAX_ACK_DELAY)
    }
}

/// QUIC's default max_ack_delay (RFC 9000 §18.2).
const MAX_ACK_DELAY: Duration = Duration::from_millis(25);

impl Shared {
    fn slot(&self, node: NodeId) -> Arc<PeerSlot> {
        self.peers.entry(node).or_default().clone()
    }

    /// Drops an empty slot nobody else holds, so failed dials leave nothing behind.
    fn forget_if_empty(&self, node: NodeId) {
        self.peers.remove_if(&node, |_, slot| {
            slot.is_empty() && Arc::strong_count(slot) == 1
        });
    }

    /// Puts a fresh connection in the map, starts its driver, and returns the
    /// node's primary connection after the duplicate rule. Over the connection
    /// limit, the connection is closed with `ConnectionLimit` instead.
    fn register(
        self: &Arc<Self>,
        quic: quinn::Connection,
        node: NodeId,
        direction: Direction,
    ) -> Result<NodeConnection, ConnectError> {
        if !self.claim_connection() {
            let code = CloseCode::ConnectionLimit;
            quic.close(code.var_int(), code.reason());
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ConnectError::ConnectionLimit(self.config.max_connections));
        }
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let conn = NodeConnection::new(quic, node, direction, sequence);
        let primary = self.slot(node).insert(self.local, conn.clone());
        tracing::debug!(node = %node.short(), ?direction, addr = %conn.remote_address(), "connected");
        let _ = self.events.send(self.event(&conn, EventKind::Connected));
        let span = tracing::info_span!("connection", node = %node.short(), ?direction);
        let datagrams = driver::read_datagrams(self.datagrams.clone(), conn.clone());
        self.tasks.spawn(datagrams.instrument(span.clone()));
        self.tasks
            .spawn(driver::drive(self.clone(), conn).instrument(span));
        Ok(primary)
    }

    /// Counts one more open connection unless the limit is reached. Admission
    /// and the pre-dial check only estimate; handshakes that raced past them
    /// (concurrent dials, or dials racing inbound handshakes) stop here.
    fn claim_connection(&self) -> bool {
        let limit = self.config.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .is_ok()
    }

    fn unregister(&self, conn: &NodeConnection, reason: String) {
        let node = conn.remote_node_id();
        if let Some(slot) = self.peers.get(&node).map(|s| s.clone()) {
            slot.remove(self.local, conn);
        }
        self.forget_if_empty(node);
        // Only after it left the map, so that a scrape summing open
        // connections and closed totals never counts it twice.
        self.tally.closed(Traffic::of(&conn.stats()));
        self.open.fetch_sub(1, Ordering::AcqRel);
        tracing::debug!(node = %node.short(), %reason, "disconnected");
        let _ = self
            .events
            .send(self.event(conn, EventKind::Disconnected { reason }));
    }

    fn event(&self, conn: &NodeConnection, kind: EventKind) -> ConnectionEvent {
        ConnectionEvent {
            node: conn.remote_node_id(),
            direction: conn.direction(),
            remote_address: conn.remote_address(),
            kind,
        }
    }
}
