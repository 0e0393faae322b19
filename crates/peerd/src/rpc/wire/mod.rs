//! The bytes of a call, without sockets: the frame codec (a pure state
//! machine, fuzzed), the generated messages of rpc.proto, frames encoded for
//! sending, and headers encoded from and decoded into borrowed fields.

pub(crate) mod borrowed;
pub mod codec;
pub(crate) mod outgoing;

/// The generated messages of `proto/peerd/rpc/v1/rpc.proto`.
// Generated code; the .proto files document the messages.
#[allow(missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.rpc.v1.rs"));
}
