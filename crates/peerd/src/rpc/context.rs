//! What a handler knows about the call it serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::cancel::CallCancel;
use crate::identity::NodeId;

/// `timeout` after `now`, saturating far in the future: a timeout comes from
/// a peer or a user and must never overflow the clock.
pub(crate) fn deadline_after(now: Instant, timeout: std::time::Duration) -> Instant {
    const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(timeout).unwrap_or(now + FAR_FUTURE)
}

/// What a handler is told about the call it serves: who called, which
/// method, until when, and with what metadata.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub(crate) caller: NodeId,
    pub(crate) host: Option<NodeId>,
    pub(crate) caller_address: SocketAddr,
    pub(crate) method: Arc<str>,
    pub(crate) deadline: Instant,
    pub(crate) metadata: HashMap<String, String>,
    pub(crate) cancelled: CallCancel,
}

impl CallContext {
    /// The authenticated node that made the call: the connection's node,
    /// or the agent it hosts whose proof came with the call
    /// ([`CallContext::host`]).
    pub fn caller(&self) -> NodeId {
        self.caller
    }

    /// The node that made the call for the agent it hosts, if the caller is
    /// a hosted agent (a web page, docs/protocol.md §11).
    pub fn host(&self) -> Option<NodeId> {
        self.host
    }

    /// The node at the other end of the connection: the caller, or its
    /// host. Services that act on the connection (dial backs, relays,
    /// address records) use this one.
    pub fn peer(&self) -> NodeId {
        self.host.unwrap_or(self.caller)
    }

    /// The caller's address as this node sees it.
    pub fn caller_address(&self) -> SocketAddr {
        self.caller_address
    }

    /// `package.Service/Method`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// When the call's time is up; the handler is cancelled then.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The key/value pairs the caller sent in the request header
    /// (`CallOptions::metadata`).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Resolves when the call is cancelled: the caller went away, the deadline
    /// passed, or the node is shutting down. The handler future itself is
    /// dropped right after; this is for work it spawned elsewhere.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await
    }

    /// True once the call is cancelled (see [`CallContext::cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn huge_timeouts_saturate_instead_of_panicking() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let far = deadline_after(Instant::now(), Duration::from_micros(u64::MAX));
        assert!(far > Instant::now() + Duration::from_secs(86_400 * 365));
        let near = deadline_after(Instant::now(), Duration::from_secs(1));
        assert!(near <= Instant::now() + Duration::from_secs(1));
    }
}
