//! Errors of binding the endpoint and of connecting to a node.

use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::NodeId;
use crate::tls::TlsError;

/// Why a node could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The UDP socket could not be created, configured or bound to `addr`
    /// (e.g. the port is taken, or the address is not local).
    #[error("cannot bind UDP {addr}: {source}")]
    Socket {
        /// The address the node was to listen on.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TLS configurations could not be built from the node's identity.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why no connection to a node could be had. [`Self::is_transient`] tells
/// the failures worth trying again later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The node to dial is this node itself.
    #[error("refusing to dial ourselves (node {0})")]
    DialSelf(NodeId),
    /// The address book holds no address for the node (and discovery, if
    /// running, found none).
    #[error("no address is known for node {0}")]
    NoAddress(NodeId),
    /// The handshake at `addr` proved a key other than the one dialled: the
    /// address is stale or the peer there is an impostor.
    #[error("expected node {expected} at {addr}, but the peer there is node {actual}")]
    WrongNode {
        /// The node that was dialled.
        expected: NodeId,
        /// The node whose key the peer at `addr` holds.
        actual: NodeId,
        /// The address dialled.
        addr: SocketAddr,
    },
    /// No handshake at `addr` finished within
    /// `TransportConfig::handshake_timeout`.
    #[error(
        "could not reach node {node} at {addr}: no handshake within {timeout:?} (is it running, and is that its address?)"
    )]
    HandshakeTimeout {
        /// The node that was dialled.
        node: NodeId,
        /// The address dialled.
        addr: SocketAddr,
        /// The handshake timeout that ran out.
        timeout: Duration,
    },
    /// Nothing listens at `addr`: it answered the handshake with ICMP port
    /// unreachable (the node is not running there, or a firewall rejects).
    #[error(
        "could not reach node {node} at {addr}: nothing listens there (port unreachable; is it running, and is that its address?)"
    )]
    Refused {
        /// The node that was dialled.
        node: NodeId,
        /// The address dialled.
        addr: SocketAddr,
    },
    /// Every one of the node's addresses failed; each failure is listed.
    #[error("could not reach node {node} at any of its {} addresses: {}", .failures.len(), list(*.node, .failures))]
    AllAddressesFailed {
        /// The node that was dialled.
        node: NodeId,
        /// How each address failed, in the order they failed.
        failures: Vec<ConnectError>,
    },
    /// The QUIC or TLS handshake at `addr` failed, e.g. the peer refused
    /// it (over its connection limits) or is not a node.
    #[error("connecting to node {node} at {addr} failed: {source}")]
    Handshake {
        /// The node that was dialled.
        node: NodeId,
        /// The address dialled.
        addr: SocketAddr,
        /// How quinn saw the handshake end.
        source: quinn::ConnectionError,
    },
    /// No handshake could be started to `addr` (e.g. an unspecified or
    /// unroutable address, or an address family the socket lacks).
    #[error("cannot dial {addr}: {source}")]
    Dial {
        /// The address that could not be dialled.
        addr: SocketAddr,
        /// quinn's reason.
        source: quinn::ConnectError,
    },
    /// This node already holds `TransportConfig::max_connections` live
    /// connections (the number carried); no new one is made until one closes.
    #[error("the connection limit ({0}) is reached")]
    ConnectionLimit(usize),
    /// The node is shutting down and makes no new connections.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The client TLS configuration for the dial could not be built.
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
                | Self::Refused { .. }
                | Self::AllAddressesFailed { .. }
                | Self::Handshake { .. }
                | Self::Dial { .. }
                | Self::ConnectionLimit(_)
        )
    }
}

/// Each failure, without the "could not reach node N at " it would repeat.
fn list(node: NodeId, failures: &[ConnectError]) -> String {
    let repeated = format!("could not reach node {node} at ");
    let each: Vec<String> = failures
        .iter()
        .map(|failure| {
            let text = failure.to_string();
            text.strip_prefix(&repeated)
                .map_or(text.clone(), str::to_owned)
        })
        .collect();
    each.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failed_address_is_listed_once_without_the_repeated_preamble() {
        let node = NodeId::from_bytes([9; 32]);
        let error = ConnectError::AllAddressesFailed {
            node,
            failures: vec![
                ConnectError::Refused {
                    node,
                    addr: "127.0.0.1:1".parse().unwrap(),
                },
                ConnectError::HandshakeTimeout {
                    node,
                    addr: "127.0.0.1:2".parse().unwrap(),
                    timeout: Duration::from_secs(1),
                },
            ],
        };
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "could not reach node {node} at any of its 2 addresses: 127.0.0.1:1: nothing listens there"
            )),
            "{text}"
        );
        assert!(
            text.contains("; 127.0.0.1:2: no handshake within 1s"),
            "{text}"
        );
        assert_eq!(text.matches(&node.to_string()).count(), 1, "{text}");
    }
}
