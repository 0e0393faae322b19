//! Connections between nodes. The `NodeConnectionManager` owns the one QUIC
//! endpoint, keeps inbound and outbound connections in one map keyed by
//! `NodeId`, reuses any live connection, and hands every stream the peer opens
//! to one `StreamHandler`.
//!
//! # Map
//! Who owns what: the manager's `Shared` (manager.rs) owns the quinn
//! `Endpoint`, the map `NodeId → PeerSlot` and a `TaskTracker` under the
//! manager's cancellation token; every task below is in that tracker.
//!
//! **Dial** (`get_or_connect`, manager.rs): a live primary in the map is
//! returned at once → else the node's `PeerSlot` (slot.rs) is taken from the
//! map → its `DialFlight` (single_flight.rs) lets one caller dial while the
//! others wait and share that dial's failure → the dialer first waits, up to
//! the handshake timeout, for an inbound handshake already under way from one
//! of the addresses (`PendingHandshakes::wait_for`, pending.rs) → then
//! `dial_any` (manager/dial.rs) races the addresses 250 ms apart, each `dial`
//! running staggered handshake attempts → `register` (manager.rs) claims a
//! connection under `max_connections`, inserts it in the slot, where the
//! duplicate rule (primary.rs) picks the primary both sides agree on, and
//! spawns the connection's driver.
//!
//! **Accept** (manager/accept.rs): the accept loop asks `admission.rs`
//! whether to accept, retry (address validation) or refuse each `Incoming`,
//! given the pending handshakes per source (pending.rs) → each accepted
//! handshake runs in its own task, bounded by the handshake timeout → the
//! peer's `NodeId` comes from its verified certificate → `register`, as for a
//! dial.
//!
//! **Serve** (manager/driver.rs): the driver owns one `NodeConnection`
//! (node_connection.rs) for its whole life: it takes served-stream slots
//! (served_streams.rs), hands each peer-opened stream to the `StreamHandler`,
//! counts activity for the idle TTL (activity.rs), and takes the connection
//! out of the map the moment it closes, with an event (events.rs) and the
//! tally (tally.rs) updated.

mod activity;
mod admission;
mod close_code;
mod config;
mod datagrams;
mod error;
mod events;
mod manager;
mod node_connection;
mod pending;
mod primary;
mod served_streams;
mod single_flight;
mod slot;
mod tally;

pub use activity::StreamGuard;
pub use close_code::CloseCode;
pub use config::TransportConfig;
pub use datagrams::{Datagram, DatagramError, DatagramStats, MAX_SERVICE_NAME};
pub use error::{BindError, ConnectError};
pub use events::{ConnectionEvent, EventKind};
pub(crate) use manager::wildcard_for;
pub use manager::{
    IncomingStream, ManagerStats, NodeConnectionManager, StreamHandler, bind_std, bind_udp,
    set_buffers, wrap_udp,
};
pub use node_connection::{Direction, NodeConnection};
pub(crate) use pending::source_of;
pub use tally::{ConnectionTally, HandshakeOutcome, Traffic};
