//! Errors of binding the endpoint and of connecting to a node.

use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::NodeId;
use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind UDP {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("refusing to dial ourselves (node {0})")]
    DialSelf(NodeId),
    #[error("no address is known for node {0}")]
    NoAddress(NodeId),
    #[error("expected node {expected} at {addr}, but the peer there is node {actual}")]
    WrongNode {
        expected: NodeId,
        actual: NodeId,
        addr: SocketAddr,
    },
    #[error("handshake with node {node} at {addr} timed out after {timeout:?}")]
    HandshakeTimeout {
        node: NodeId,
        addr: SocketAddr,
        timeout: Duration,
    },
    #[error("connecting to node {node} at {addr} failed: {source}")]
    Handshake {
        node: NodeId,
        addr: SocketAddr,
        source: quinn::ConnectionError,
    },
    #[error("cannot dial {addr}: {source}")]
    Dial {
        addr: SocketAddr,
        source: quinn::ConnectError,
    },
    #[error("the connection limit ({0}) is reached")]
    ConnectionLimit(usize),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl ConnectError {
    /// Failures that may pass if tried again later: the node is down, not yet
    /// known, or unreachable for now.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::NoAddress(_)
                | Self::HandshakeTimeout { .. }
                | Self::Handshake { .. }
                | Self::Dial { .. }
                | Self::ConnectionLimit(_)
        )
    }
}
