//! peerd: a peer-to-peer node daemon. Nodes with Ed25519 identities connect
//! over QUIC with mutual TLS and call each other's RPC methods over whichever
//! connection exists between them.
//!
//! The library is the daemon without its shell: bind a [`Node`], offer
//! [`Service`]s, and call other nodes by [`NodeId`].
//!
//! ```
//! use std::time::Duration;
//! use peerd::{CallContext, CallOptions, Identity, Node, Service};
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
//! let greeter = Service::new("example.v1.Greeter").unary(
//!     "Hello",
//!     |context: CallContext, request: HelloRequest| async move {
//!         // The caller is authenticated by its key during the handshake.
//!         let greeting = format!("hello {} (node {})", request.name, context.caller().short());
//!         Ok(HelloReply { greeting })
//!     },
//! );
//! let alice = Node::builder(Identity::generate())
//!     .listen("127.0.0.1:0".parse()?)
//!     .service(greeter)
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

pub mod admin;
pub mod bench;
pub mod config;
pub mod connection;
pub mod daemon;
pub mod discovery;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod rpc;
pub mod service;
#[cfg(feature = "test-utils")]
pub mod test_utils;
pub mod tls;

pub use identity::{Identity, NodeId};
pub use node::{Node, NodeBuilder};
pub use rpc::{CallContext, CallOptions, Code, Service, Status};
