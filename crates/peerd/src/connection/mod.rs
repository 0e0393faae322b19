//! Connections between nodes. The `NodeConnectionManager` owns the one QUIC
//! endpoint, keeps inbound and outbound connections in one map keyed by
//! `NodeId`, reuses any live connection, and hands every stream the peer opens
//! to one `StreamHandler`.

mod activity;
mod admission;
mod close_code;
mod config;
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
pub use error::{BindError, ConnectError};
pub use events::{ConnectionEvent, EventKind};
pub use manager::{
    IncomingStream, ManagerStats, NodeConnectionManager, StreamHandler, bind_udp, set_buffers,
};
pub use node_connection::{Direction, NodeConnection};
pub use tally::{ConnectionTally, HandshakeOutcome, Traffic};
