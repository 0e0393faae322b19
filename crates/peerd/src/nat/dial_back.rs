//! Serving `DialBack`: dial the caller at the address its call came from,
//! from a fresh UDP port and a throwaway identity, so that the handshake
//! gets through only where the caller's NAT or firewall admits traffic it
//! did not ask for. Bounded: a few at once for the whole node, one per
//! caller, each within a few seconds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{SERVICE, proto};
use crate::connection::{
    IncomingStream, NodeConnectionManager, StreamHandler, TransportConfig, wildcard_for,
};
use crate::identity::{Identity, NodeId};
use crate::paths::is_virtual;
use crate::rpc::{CallContext, Handlers, Status};

/// Dial backs running at once, for all callers together.
const CONCURRENT: usize = 4;
/// How long a dial back may take: a NAT that drops the handshake costs
/// this, one that rejects it (ICMP) about 0.2 s.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// The serving side of `peerd.nat.v1.Reachability`. Cheap to clone.
#[derive(Clone)]
pub struct DialBackServer {
    permits: Arc<Semaphore>,
    callers: Arc<Mutex<HashSet<NodeId>>>,
}

impl Default for DialBackServer {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(CONCURRENT)),
            callers: Arc::default(),
        }
    }
}

impl DialBackServer {
    /// The service's handlers.
    pub fn handlers(&self) -> Handlers {
        let server = self.clone();
        Handlers::new(SERVICE).unary(
            "DialBack",
            move |context: CallContext, _: proto::DialBackRequest| {
                let server = server.clone();
                async move { server.serve(context.peer(), context.caller_address()).await }
            },
        )
    }

    async fn serve(
        &self,
        caller: NodeId,
        observed: SocketAddr,
    ) -> Result<proto::DialBackResponse, Status> {
        if is_virtual(observed) {
            return Err(Status::invalid_argument(
                "a dial back is asked over a direct connection, not a relayed one",
            ));
        }
        let _permit = self.permits.try_acquire().map_err(|_| {
            Status::resource_exhausted(format!("{CONCURRENT} dial backs are running; try again"))
        })?;
        let _turn = Turn::take(&self.callers, caller)
            .ok_or_else(|| Status::resource_exhausted("a dial back to you is running already"))?;
        let outcome = dial(caller, observed).await;
        Ok(proto::DialBackResponse {
            observed_addr: observed.to_string(),
            reached: outcome.is_ok(),
            error: outcome.err().unwrap_or_default(),
        })
    }
}

/// A caller's one dial back; the caller is free again when it drops.
struct Turn<'a> {
    callers: &'a Mutex<HashSet<NodeId>>,
    caller: NodeId,
}

impl<'a> Turn<'a> {
    fn take(callers: &'a Mutex<HashSet<NodeId>>, caller: NodeId) -> Option<Self> {
        let mut running = callers.lock().unwrap_or_else(|e| e.into_inner());
        // Lazily: a refused turn must never exist, as its drop frees the caller.
        running.insert(caller).then(|| Self { callers, caller })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut running = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&self.caller);
    }
}

/// One handshake with `caller`'s key at `addr`, from an endpoint of its
/// own that serves nothing, closed at once.
async fn dial(caller: NodeId, addr: SocketAddr) -> Result<(), String> {
    let config = TransportConfig {
        handshake_timeout: DIAL_TIMEOUT,
        max_connections: 1,
        ..TransportConfig::default()
    };
    let manager = NodeConnectionManager::bind(
        &Identity::generate(),
        wildcard_for(addr),
        config,
        Arc::new(ServesNothing),
        CancellationToken::new(),
    )
    .map_err(|e| e.to_string())?;
    let outcome = manager.get_or_connect(caller, &[addr]).await;
    manager.shutdown(Duration::ZERO).await;
    outcome.map(drop).map_err(|e| e.to_string())
}

/// The dial back's endpoint answers no stream: dropping one resets it.
struct ServesNothing;

impl StreamHandler for ServesNothing {
    fn handle_stream(&self, stream: IncomingStream) {
        drop(stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_has_one_turn_at_a_time() {
        let callers = Mutex::new(HashSet::new());
        let caller = NodeId::from_bytes([7; 32]);
        let first = Turn::take(&callers, caller).expect("a first turn");
        assert!(Turn::take(&callers, caller).is_none(), "no second at once");
        assert!(Turn::take(&callers, NodeId::from_bytes([8; 32])).is_some());
        drop(first);
        assert!(Turn::take(&callers, caller).is_some(), "free again");
    }
}
