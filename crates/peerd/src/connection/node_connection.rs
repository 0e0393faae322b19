//! `NodeConnection`: one authenticated QUIC connection to a node, in either
//! direction, with the bookkeeping the manager and the RPC layer need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::CloseCode;
use super::activity::{Activity, StreamGuard};
use crate::identity::NodeId;

/// Who dialed: we did (`Outbound`, a forward connection) or the peer did
/// (`Inbound`, a reverse connection). Both carry streams either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This node dialled the peer.
    Outbound,
    /// The peer dialled this node.
    Inbound,
}

/// A cheap, clonable handle to one connection.
#[derive(Debug, Clone)]
pub struct NodeConnection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quic: quinn::Connection,
    remote: NodeId,
    direction: Direction,
    sequence: u64,
    created: Instant,
    activity: Arc<Activity>,
}

impl NodeConnection {
    pub(crate) fn new(
        quic: quinn::Connection,
        remote: NodeId,
        direction: Direction,
        sequence: u64,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                quic,
                remote,
                direction,
                sequence,
                created: Instant::now(),
                activity: Activity::new(),
            }),
        }
    }

    /// Opens a bidirectional stream. The guard keeps the connection counted
    /// as busy (so the idle TTL does not close it) until dropped.
    pub async fn open_stream(
        &self,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, StreamGuard), quinn::ConnectionError> {
        let guard = self.inner.activity.begin();
        let (send, recv) = self.inner.quic.open_bi().await?;
        Ok((send, recv, guard))
    }

    pub(crate) fn begin_stream(&self) -> StreamGuard {
        self.inner.activity.begin()
    }

    /// The peer's node, proved by its key in the TLS handshake.
    pub fn remote_node_id(&self) -> NodeId {
        self.inner.remote
    }

    /// Which side dialled.
    pub fn direction(&self) -> Direction {
        self.inner.direction
    }

    /// The peer's current UDP address (it may change if the peer migrates).
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.quic.remote_address()
    }

    /// When the handshake completed.
    pub fn created(&self) -> Instant {
        self.inner.created
    }

    /// When the last stream started or ended.
    pub fn last_used(&self) -> Instant {
        self.inner.activity.last_used()
    }

    /// Streams open on this connection now, opened by either side.
    pub fn active_streams(&self) -> usize {
        self.inner.activity.active()
    }

    /// QUIC's current estimate of the round-trip time.
    pub fn rtt(&self) -> Duration {
        self.inner.quic.rtt()
    }

    /// quinn's statistics of this connection so far (datagrams, bytes,
    /// losses, congestion window).
    pub fn stats(&self) -> quinn::ConnectionStats {
        self.inner.quic.stats()
    }

    /// Draining connections take no new outgoing streams and close once idle.
    pub fn is_draining(&self) -> bool {
        self.inner.activity.is_draining()
    }

    /// True once the connection is closed, by either side or by a timeout;
    /// a closed connection never opens again.
    pub fn is_closed(&self) -> bool {
        self.inner.quic.close_reason().is_some()
    }

    /// The underlying quinn connection, for what this type does not wrap.
    pub fn quic(&self) -> &quinn::Connection {
        &self.inner.quic
    }

    /// Closes the connection at once with `code` as its QUIC application
    /// error code; streams still open on it fail. The manager drops it from
    /// its map when its driver sees it close.
    pub fn close(&self, code: CloseCode) {
        self.inner.quic.close(code.var_int(), code.reason());
    }

    /// True when both handles are the same connection (not merely to the
    /// same node).
    pub fn same_as(&self, other: &NodeConnection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn sequence(&self) -> u64 {
        self.inner.sequence
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.inner.activity
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.inner.activity.set_draining(draining);
    }
}
