//! Behind NAT: `peerd.nat.v1.Reachability`, whose `DialBack` asks a peer to
//! dial this node back from a fresh port, the netcheck that asks a few
//! peers and classifies the answers, and the hole punch (docs/nat.md).
//!
//! - `reachability`: the pure core: observations in, a [`NatReport`] out.
//! - `dial_back`: the serving side, bounded node-wide and per caller.
//! - `netcheck`: the asking side.
//! - `punch`: `peerd.nat.v1.HolePunch`, moving a relayed connection to a
//!   direct path.

mod dial_back;
mod netcheck;
mod punch;
mod reachability;

pub use dial_back::DialBackServer;
pub use netcheck::{choose_peers, netcheck};
pub use punch::{PUNCH_SERVICE, PUNCH_START, PunchStats, Puncher};
pub use reachability::{Mapping, NatReport, Observation, Reachability, classify};

/// The generated messages of `proto/peerd/nat/v1/nat.proto`.
// Generated code; the .proto file documents the messages.
#[allow(missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.nat.v1.rs"));
}

/// The service's full name.
pub const SERVICE: &str = "peerd.nat.v1.Reachability";
/// Dial the caller back at its observed address from a fresh port.
pub const DIAL_BACK: &str = "peerd.nat.v1.Reachability/DialBack";
