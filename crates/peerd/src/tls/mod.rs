//! TLS 1.3 for QUIC between nodes: both sides present a self-signed certificate
//! carrying their Ed25519 node key, and custom verifiers bind that key to a
//! `NodeId` inside the handshake (see docs/protocol.md, "Identity").

mod certificate;
mod configs;
mod verifier;

pub use certificate::{CertificateError, node_id_from_certificate, node_id_from_peer_identity};
pub use configs::{TlsConfigs, TlsError, crypto_provider};
pub use verifier::ExpectedPeer;

/// The ALPN protocol of peerd's wire protocol, major version 1.
pub const ALPN: &[u8] = b"peerd/1";
