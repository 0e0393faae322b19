//! Limits and timers of the RPC layer, as a plain struct with documented defaults.

use std::time::Duration;

/// Settings of the RPC server and client: message size, deadlines,
/// handler and waiting-call limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Largest request or response message, in bytes. Default 4 MiB.
    pub max_message_size: u32,
    /// Deadline of calls whose caller gives none. Default 30 s.
    pub default_deadline: Duration,
    /// A caller must send its request header within this. Default 10 s.
    pub header_timeout: Duration,
    /// Handlers running at once on this node, all connections together.
    /// Calls over the limit wait for a slot until their deadline. Per
    /// connection, handlers are bounded by the transport's
    /// `max_concurrent_streams`: a connection's next stream is not accepted
    /// while that many are being served. Default 4096.
    pub max_handlers: usize,
    /// Calls with `wait_for_ready` waiting for one unreachable node at once;
    /// more fail with RESOURCE_EXHAUSTED. Default 64.
    pub max_waiting_calls_per_node: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_message_size: 4 * 1024 * 1024,
            default_deadline: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_handlers: 4096,
            max_waiting_calls_per_node: 64,
        }
    }
}
