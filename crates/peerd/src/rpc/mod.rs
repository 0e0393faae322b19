//! RPC over QUIC streams: one bidirectional stream per call, carrying
//! length-prefixed protobuf frames. docs/protocol.md is the wire contract.
//!
//! # Map
//! Layers, lowest first; each module uses only those before it:
//! - `wire`: the bytes (frame codec, rpc.proto messages, outgoing frames);
//!   pure, no sockets.
//! - `status` (gRPC codes; `status::mapping` is the one place internal
//!   errors become codes), `stats` (per-method call counters), `config`.
//! - `io`: frames over quinn streams; `cancel`, `context`, `streams`, `raw`
//!   (messages as bytes, for the router's fallback): what a handler and a
//!   caller hold.
//! - `slots`: the node's handler slots, shared fairly between sources and
//!   callers; `unary`: a unary call as the server hands it to its method.
//! - `router`: [`Handlers`] (one proto service's typed handlers), erased to
//!   byte-level methods, and the [`Router`] that finds them by name.
//! - `server`: accepted stream → header → route → admission → handler →
//!   status, in tasks it owns. `client`: node → connection (manager, address
//!   book, resolver) → stream → header + request → answer.

mod cancel;
mod client;
mod config;
mod context;
mod io;
mod raw;
mod router;
mod server;
mod slots;
pub mod stats;
mod status;
mod streams;
mod unary;
pub mod wire;

pub use client::{
    AddressResolver, CallOptions, Encoded, RelayedPath, Relayer, RequestSender, RpcClient,
    StreamingCall,
};
pub use config::RpcConfig;
pub use context::CallContext;
pub use raw::{RawRequests, RawResponses};
pub use router::{Handlers, Router};
pub use server::RpcServer;
pub use status::{Code, Status, StatusOrigin};
pub use streams::{RequestStream, ResponseSink};

/// The request-header metadata key that makes a call one for an agent the
/// callee hosts: its value is the agent's node id (docs/protocol.md §11).
pub const CALLEE: &str = "peerd-callee";

/// Application error codes of RESET_STREAM and STOP_SENDING on call streams
/// (docs/protocol.md, "Cancellation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum StreamCode {
    /// The call is over and the rest of the stream is not needed: sent by a
    /// callee that answered before reading the whole request.
    Done = 0,
    /// The caller abandoned the call (dropped, or its deadline passed).
    Cancelled = 1,
}

impl StreamCode {
    /// The code as QUIC sends it.
    pub fn var_int(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self as u32)
    }

    /// The code with this QUIC value, or `None` for a value no peer of this
    /// protocol sends.
    pub fn from_var_int(code: quinn::VarInt) -> Option<Self> {
        match code.into_inner() {
            0 => Some(Self::Done),
            1 => Some(Self::Cancelled),
            _ => None,
        }
    }
}
