//! Connection events for subscribers (the daemon's logs, peer book, metrics).

use std::net::SocketAddr;

use super::Direction;
use crate::identity::NodeId;

/// Something that happened to one connection (see
/// `NodeConnectionManager::subscribe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEvent {
    /// The node at the other end.
    pub node: NodeId,
    /// Which side dialled.
    pub direction: Direction,
    /// The peer's UDP address when the event was made.
    pub remote_address: SocketAddr,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The handshake completed and the connection is in the map; sent for
    /// duplicates too, which may be drained at once.
    Connected,
    /// The connection closed and left the map.
    Disconnected {
        /// Why, as text: quinn's reason, or the local close (e.g. `idle`,
        /// `superseded`, `shutting down`).
        reason: String,
    },
}
