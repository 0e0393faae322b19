//! Connection events for subscribers (the daemon's logs, peer book, metrics).

use std::net::SocketAddr;

use super::Direction;
use crate::identity::NodeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEvent {
    pub node: NodeId,
    pub direction: Direction,
    pub remote_address: SocketAddr,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Connected,
    /// With the reason quinn gave, as text.
    Disconnected {
        reason: String,
    },
}
