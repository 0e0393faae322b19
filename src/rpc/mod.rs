//! RPC over QUIC streams: one bidirectional stream per call, length-prefixed
//! protobuf frames (`codec`), a router of `package.Service/Method` handlers
//! (`server`), typed calls to other nodes (`client`), and gRPC-numbered
//! statuses (`status`). docs/protocol.md is the wire contract.

mod borrowed;
mod cancel;
mod client;
pub mod codec;
mod config;
mod context;
mod io;
mod outgoing;
mod poll_once;
mod server;
pub(crate) mod service;
mod status;
mod streams;

pub use client::{AddressResolver, CallOptions, RpcClient, StreamingCall};
pub use config::RpcConfig;
pub use context::CallContext;
pub use server::RpcServer;
pub use service::{Router, Service};
pub use status::{Code, Status};
pub use streams::{RequestStream, ResponseSink};

/// The generated messages of `proto/peerd/rpc/v1/rpc.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.rpc.v1.rs"));
}

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
    pub fn var_int(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self as u32)
    }

    pub fn from_var_int(code: quinn::VarInt) -> Option<Self> {
        match code.into_inner() {
            0 => Some(Self::Done),
            1 => Some(Self::Cancelled),
            _ => None,
        }
    }
}
