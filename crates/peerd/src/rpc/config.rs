//! Limits and timers of the RPC layer, as a plain struct with documented defaults.

use std::time::Duration;

use super::wire::borrowed::MetadataLimits;

/// Settings of the RPC server and client: message size, deadlines,
/// handler and waiting-call limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Largest request or response message, in bytes. Default 4 MiB.
    pub max_message_size: u32,
    /// Deadline of calls whose caller gives none. Default 30 s.
    pub default_deadline: Duration,
    /// Longest deadline a caller may ask for: a longer one is cut to this,
    /// `default_deadline` too. Default 5 min.
    pub max_call_deadline: Duration,
    /// A caller must send its request header within this, and a unary
    /// call's request within this of the stream's start. Default 10 s.
    pub header_timeout: Duration,
    /// Handlers running at once on this node, all connections together,
    /// shared fairly between sources (IPv4 address, IPv6 /64), then between
    /// the callers of each: when all are taken, a call whose source holds
    /// fewer than the busiest source less one takes the newest slot of that
    /// source's busiest caller (that call fails with RESOURCE_EXHAUSTED),
    /// and a freed slot goes to the waiting caller whose source, then
    /// itself, holds the fewest (`rpc::slots`). Calls wait for a slot until
    /// their deadline. Per connection, handlers are bounded by
    /// the transport's `max_concurrent_streams`: a connection's next stream
    /// is not accepted while that many are being served. Default 4096.
    pub max_handlers: usize,
    /// Entries in one request header's metadata at most. Default 64.
    pub max_metadata_entries: usize,
    /// Memory one request header's metadata may take, each entry counted
    /// as its bytes on the wire plus 128. Default 16 KiB.
    pub max_metadata_bytes: usize,
    /// Calls with `wait_for_ready` waiting for one unreachable node at once;
    /// more fail with RESOURCE_EXHAUSTED. Default 64.
    pub max_waiting_calls_per_node: usize,
}

impl RpcConfig {
    pub(crate) fn metadata_limits(&self) -> MetadataLimits {
        MetadataLimits {
            entries: self.max_metadata_entries,
            bytes: self.max_metadata_bytes,
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_message_size: 4 * 1024 * 1024,
            default_deadline: Duration::from_secs(30),
            max_call_deadline: Duration::from_secs(300),
            header_timeout: Duration::from_secs(10),
            max_handlers: 4096,
            max_metadata_entries: 64,
            max_metadata_bytes: 16 * 1024,
            max_waiting_calls_per_node: 64,
        }
    }
}
