//! The relay, `peerd.relay.v1.Relay`: a node behind NAT holds a reservation
//! over the connection it keeps to a relay, and a node that cannot reach it
//! asks that relay for a circuit. A circuit carries the packets of the two
//! nodes' own QUIC session, so their handshake, identity checks and calls
//! run end to end and the relay forwards ciphertext only (docs/nat.md).
//!
//! - `ledger`: the pure admission: reservations and circuits, with limits.
//! - `server`: the relay's side: reservations, offers, the splice.
//! - `circuit`: one end of a circuit: packets between a split call and
//!   the socket's virtual path.
//! - `client`: the nodes' side: holding reservations, and dialing a node
//!   through one of its relays.

mod circuit;
mod client;
mod ledger;
mod server;

use std::time::Duration;

pub use client::Relays;
pub use ledger::Refusal;
pub use server::{RelayServer, RelayStats};

/// The generated messages of `proto/peerd/relay/v1/relay.proto`.
// Generated code; the .proto file documents the messages.
#[allow(missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.relay.v1.rs"));
}

/// The service's full name.
pub const SERVICE: &str = "peerd.relay.v1.Relay";
/// Hold a reservation and hear of circuits offered.
pub const RESERVE: &str = "peerd.relay.v1.Relay/Reserve";
/// The caller's leg of a circuit.
pub const CONNECT: &str = "peerd.relay.v1.Relay/Connect";
/// The target's leg of a circuit.
pub const ACCEPT: &str = "peerd.relay.v1.Relay/Accept";
/// The metadata key naming `Connect`'s target.
pub const TARGET_KEY: &str = "peerd-relay-target";
/// The metadata key naming `Accept`'s circuit.
pub const CIRCUIT_KEY: &str = "peerd-relay-circuit";

/// The limits of a relay; each one is what a node would meet at the
/// relay of a busy public network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Reservations held at once. Default 128.
    pub max_reservations: usize,
    /// Circuits running at once. Default 64.
    pub max_circuits: usize,
    /// Circuits one node may be an end of at once, as caller or target:
    /// its share, so one node's calls cannot take every circuit. Default 4.
    pub max_circuits_per_node: usize,
    /// Bytes one circuit may carry, both ways together. Default 64 MiB.
    pub circuit_bytes: u64,
    /// How long one circuit may last. Default 5 min, which the RPC
    /// server's `max_call_deadline` also bounds.
    pub circuit_duration: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_circuits: 64,
            max_circuits_per_node: 4,
            circuit_bytes: 64 << 20,
            circuit_duration: Duration::from_secs(300),
        }
    }
}
