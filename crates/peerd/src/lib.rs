//! peerd: peer-to-peer RPC. Nodes with Ed25519 identities connect over QUIC
//! with mutual TLS and call each other's RPC methods over whichever
//! connection exists between them.
//!
//! This crate is the library an embedder uses: bind a [`Node`], offer
//! [`Handlers`] for your services, and call other nodes by [`NodeId`]. The
//! daemon (`peerd` binary, configuration, admin socket, metrics server) is
//! the `peerd-daemon` crate built on it.
//!
//! # Layout
//! Modules in layer order, lowest first; each uses only those above it in
//! this list:
//! - [`identity`]: Ed25519 keys and `NodeId`s, the key file, hosted
//!   agents' proofs.
//! - [`tls`]: certificates whose key is the node's key, and the verifiers
//!   that check it inside the handshake.
//! - [`metrics`]: measurement primitives (a histogram).
//! - [`paths`]: the endpoint's socket, which carries connections over relay
//!   circuits and moves them to punched direct paths.
//! - [`connection`]: the `NodeConnectionManager`, owner of the one QUIC
//!   endpoint and of the connection map.
//! - [`addressing`]: `id@host:port` addresses, relay addresses and the
//!   address book.
//! - [`rpc`]: the call protocol: wire codec, server, client, status.
//! - [`node_service`]: `peerd.node.v1.Node`, the service every node offers.
//! - [`discovery`]: the routing table, lookups, service records, pinned
//!   peers and the peer book.
//! - [`nat`]: reachability: dial backs and the netcheck that classifies
//!   what peers saw; hole punching.
//! - [`relay`]: `peerd.relay.v1.Relay`: reservations and circuits for
//!   nodes behind NAT, and the client that uses them.
//! - [`node`]: [`Node`], which assembles all of the above.
//! - `test_utils` (feature `test-utils`): a fault-injecting socket and the
//!   fuzz targets' bodies.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use peerd::{CallContext, CallOptions, Handlers, Identity, Node};
//!
//! // Messages are ordinary prost types; they could come from .proto files too.
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct HelloRequest {
//!     #[prost(string, tag = "1")]
//!     name: String,
//! }
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct HelloReply {
//!     #[prost(string, tag = "1")]
//!     greeting: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let greeter = Handlers::new("example.v1.Greeter").unary(
//!     "Hello",
//!     |context: CallContext, request: HelloRequest| async move {
//!         // The caller is authenticated by its key during the handshake.
//!         let greeting = format!("hello {} (node {})", request.name, context.caller().short());
//!         Ok(HelloReply { greeting })
//!     },
//! );
//! let alice = Node::builder(Identity::generate())
//!     .listen("127.0.0.1:0".parse()?)
//!     .serve(greeter)
//!     .bind()?;
//! let bob = Node::builder(Identity::generate())
//!     .listen("127.0.0.1:0".parse()?)
//!     .bind()?;
//!
//! // Bob knows where Alice is; the first call dials her, later ones reuse the connection.
//! bob.addresses().add(alice.id(), alice.local_addr());
//! let request = HelloRequest { name: "bob".into() };
//! let reply: HelloReply = bob
//!     .client()
//!     .unary(alice.id(), "example.v1.Greeter/Hello", &request, &CallOptions::default())
//!     .await?;
//! assert_eq!(reply.greeting, format!("hello bob (node {})", bob.id().short()));
//!
//! bob.shutdown(Duration::from_secs(1)).await;
//! alice.shutdown(Duration::from_secs(1)).await;
//! # Ok(())
//! # }
//! ```

pub mod addressing;
pub mod connection;
pub mod discovery;
pub mod identity;
pub mod metrics;
pub mod nat;
pub mod node;
pub mod node_service;
pub mod paths;
pub mod relay;
pub mod rpc;
#[cfg(feature = "test-utils")]
pub mod test_utils;
pub mod tls;

pub use identity::{Identity, NodeId};
pub use node::{Node, NodeBuilder};
pub use rpc::{CallContext, CallOptions, Code, Handlers, Status};
