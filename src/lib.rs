//! peerd: a peer-to-peer node daemon. Nodes with Ed25519 identities connect
//! over QUIC with mutual TLS and call each other's RPC methods over whichever
//! connection exists between them.

pub mod connection;
pub mod identity;
pub mod tls;
