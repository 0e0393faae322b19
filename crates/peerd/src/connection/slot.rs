//! One node's entry in the connection map: its primary connection, the
//! duplicates being drained, and the lock that makes dials single-flight.

use std::sync::Mutex;

use super::NodeConnection;
use super::primary::{Candidate, Keep, keep};
use super::single_flight::DialFlight;
use crate::identity::NodeId;

#[derive(Debug, Default)]
pub(crate) struct PeerSlot {
    /// Every dial to the node takes a turn here, so concurrent dials to it
    /// make one handshake while dials to other nodes never wait on it.
    pub dial: DialFlight,
    connections: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    primary: Option<NodeConnection>,
    draining: Vec<NodeConnection>,
}

fn candidate(conn: &NodeConnection) -> Candidate {
    Candidate {
        direction: conn.direction(),
        sequence: conn.sequence(),
    }
}

impl PeerSlot {
    /// The connection to use for new streams, if it is open.
    pub(crate) fn primary(&self) -> Option<NodeConnection> {
        let connections = self.lock();
        connections
            .primary
            .as_ref()
            .filter(|c| !c.is_closed())
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<NodeConnection> {
        let connections = self.lock();
        connections
            .primary
            .iter()
            .chain(&connections.draining)
            .cloned()
            .collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        let connections = self.lock();
        connections.primary.is_none() && connections.draining.is_empty()
    }

    /// Adds a new connection and returns the primary after the decision.
    pub(crate) fn insert(&self, local: NodeId, conn: NodeConnection) -> NodeConnection {
        let mut connections = self.lock();
        let current = match connections.primary.take() {
            Some(current) if !current.is_closed() => current,
            _ => {
                connections.primary = Some(conn.clone());
                return conn;
            }
        };
        let remote = conn.remote_node_id();
        let (primary, loser) = match keep(local, remote, candidate(&current), candidate(&conn)) {
            Keep::Current => (current, conn),
            Keep::New => (conn, current),
        };
        loser.set_draining(true);
        connections.draining.push(loser);
        connections.primary = Some(primary.clone());
        primary
    }

    /// Forgets a closed connection. If it was the primary, the best open
    /// drained one (by the same rule) takes its place.
    pub(crate) fn remove(&self, local: NodeId, conn: &NodeConnection) {
        let mut connections = self.lock();
        connections.draining.retain(|c| !c.same_as(conn));
        if !connections
            .primary
            .as_ref()
            .is_some_and(|p| p.same_as(conn))
        {
            return;
        }
        connections.primary = None;
        let open = connections
            .draining
            .iter()
            .filter(|c| !c.is_closed())
            .cloned();
        let best = open.reduce(|a, b| {
            match keep(local, a.remote_node_id(), candidate(&a), candidate(&b)) {
                Keep::Current => a,
                Keep::New => b,
            }
        });
        if let Some(best) = best {
            connections.draining.retain(|c| !c.same_as(&best));
            best.set_draining(false);
            connections.primary = Some(best);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .expect("connection slot lock poisoned")
    }
}
