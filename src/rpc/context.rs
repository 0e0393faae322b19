//! What a handler knows about the call it serves.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::identity::NodeId;

#[derive(Debug, Clone)]
pub struct CallContext {
    pub(crate) caller: NodeId,
    pub(crate) caller_address: SocketAddr,
    pub(crate) method: String,
    pub(crate) deadline: Instant,
    pub(crate) metadata: HashMap<String, String>,
    pub(crate) cancelled: CancellationToken,
}

impl CallContext {
    /// The authenticated node that made the call.
    pub fn caller(&self) -> NodeId {
        self.caller
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

    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Resolves when the call is cancelled: the caller went away, the deadline
    /// passed, or the node is shutting down. The handler future itself is
    /// dropped right after; this is for work it spawned elsewhere.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }
}
