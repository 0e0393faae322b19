//! `<node-id>@<host>:<port>`: how a node is named together with where to dial it.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::identity::{NodeId, ParseNodeIdError};

/// A node and one address to reach it at. The host may be a DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The node; the handshake fails unless the peer at the address proves
    /// this key.
    pub node: NodeId,
    /// `host:port`, resolved when dialing.
    pub host_port: String,
}

/// Why a text is not a `<node-id>@<host>:<port>` peer address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePeerAddrError {
    /// There is no `@` between a node id and an address (the text carried).
    #[error("{0:?} is not <node-id>@<host>:<port>")]
    Shape(String),
    /// The part before `@` is not a node id.
    #[error(transparent)]
    NodeId(#[from] ParseNodeIdError),
    /// The part after `@` is not `host:port` with a non-empty host and a port
    /// in 0..=65535 (the text carried).
    #[error("{0:?} has no valid port after the host")]
    Port(String),
}

impl FromStr for PeerAddr {
    type Err = ParsePeerAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, host_port) = text
            .trim()
            .split_once('@')
            .ok_or_else(|| ParsePeerAddrError::Shape(text.to_owned()))?;
        let node = id.parse()?;
        let port_ok = host_port
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(ParsePeerAddrError::Port(text.to_owned()));
        }
        Ok(Self {
            node,
            host_port: host_port.to_owned(),
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node, self.host_port)
    }
}

impl PeerAddr {
    /// The address of `node` at the socket address `addr`.
    pub fn new(node: NodeId, addr: SocketAddr) -> Self {
        Self {
            node,
            host_port: addr.to_string(),
        }
    }

    /// Resolves the host (a DNS lookup for names).
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host(&self.host_port).await?.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> NodeId {
        NodeId::from_bytes([5; 32])
    }

    #[test]
    fn parses_ip_v6_and_dns_forms() {
        for host in ["127.0.0.1:7733", "[::1]:7733", "node1:7733"] {
            let text = format!("{}@{host}", id());
            let parsed: PeerAddr = text.parse().unwrap();
            assert_eq!((parsed.node, parsed.host_port.as_str()), (id(), host));
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn refuses_malformed_input() {
        assert!(matches!(
            "nothing".parse::<PeerAddr>(),
            Err(ParsePeerAddrError::Shape(_))
        ));
        assert!(matches!(
            "abc@1.2.3.4:5".parse::<PeerAddr>(),
            Err(ParsePeerAddrError::NodeId(_))
        ));
        let no_port = format!("{}@1.2.3.4", id());
        assert!(matches!(
            no_port.parse::<PeerAddr>(),
            Err(ParsePeerAddrError::Port(_))
        ));
    }
}
