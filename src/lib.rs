//! peerd: a peer-to-peer node daemon. Nodes with Ed25519 identities connect
//! over QUIC with mutual TLS and call each other's RPC methods over whichever
//! connection exists between them.

pub mod connection;
pub mod identity;
pub mod node;
pub mod rpc;
pub mod service;
pub mod tls;

pub use identity::{Identity, NodeId};
pub use node::{Node, NodeBuilder};
pub use rpc::{CallContext, CallOptions, Code, Service, Status};
