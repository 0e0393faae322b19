//! `peerd.node.v1.Node`, the service every node offers: its schema, method
//! names and handlers (Ping, Info, Echo here; FindNode, Announce and
//! FindService answered by a [`Directory`], discovery's routing table and
//! provider store), and typed helpers to call it (`calls`).

mod calls;

pub use calls::{info, ping};

use crate::addressing::RelayList;
use crate::paths::is_virtual;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::identity::NodeId;
use crate::rpc::{CallContext, Handlers, Status};

/// The generated messages of `proto/peerd/node/v1/node.proto`.
// Generated code; the .proto files document the messages.
#[allow(missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.node.v1.rs"));
}

/// The service's full name, as routers and `Info` list it.
pub const SERVICE: &str = "peerd.node.v1.Node";
/// Liveness and round trip: echoes a nonce with the callee's clock.
pub const PING: &str = "peerd.node.v1.Node/Ping";
/// Who the callee is: id, version, listen addresses, services, and the
/// address it sees the caller at.
pub const INFO: &str = "peerd.node.v1.Node/Info";
/// Returns the payload unchanged, after an optional delay; for
/// benchmarks and load generators.
pub const ECHO: &str = "peerd.node.v1.Node/Echo";
/// Discovery: the nodes the callee knows closest to a key (Kademlia
/// FIND_NODE).
pub const FIND_NODE: &str = "peerd.node.v1.Node/FindNode";
/// Discovery: stores the caller as a provider of a named service for a
/// TTL (at most one hour).
pub const ANNOUNCE: &str = "peerd.node.v1.Node/Announce";
/// Discovery: the providers of a named service the callee has stored.
pub const FIND_SERVICE: &str = "peerd.node.v1.Node/FindService";

/// What `Info` reports about this node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// This node's id.
    pub node_id: NodeId,
    /// Where this node listens; sent as `host:port` strings.
    pub listen_addrs: Vec<SocketAddr>,
    /// Names of the services this node serves, `peerd.node.v1.Node`
    /// included.
    pub services: Vec<String>,
    /// The relays this node keeps a reservation on.
    pub relays: RelayList,
}

/// The serving side of discovery's three methods, so that the whole service
/// is assembled here while the routing table and the provider store stay in
/// `discovery`.
pub trait Directory: Send + Sync + 'static {
    /// The contacts closest to the request's target.
    fn find_node(
        &self,
        request: &proto::FindNodeRequest,
    ) -> Result<proto::FindNodeResponse, Status>;
    /// Stores the caller's announcement of a service.
    fn announce(
        &self,
        context: &CallContext,
        request: proto::AnnounceRequest,
    ) -> Result<proto::AnnounceResponse, Status>;
    /// The providers of the requested service.
    fn find_service(&self, request: &proto::FindServiceRequest) -> proto::FindServiceResponse;
}

/// Every method of `peerd.node.v1.Node`.
pub fn handlers(info: NodeInfo, directory: Arc<dyn Directory>) -> Handlers {
    let (announce, find_service) = (directory.clone(), directory.clone());
    Handlers::new(SERVICE)
        .unary("Ping", |_, request: proto::PingRequest| async move {
            Ok(proto::PingResponse {
                nonce: request.nonce,
                unix_micros: unix_micros(),
            })
        })
        .unary(
            "Info",
            move |context: CallContext, _: proto::InfoRequest| {
                let info = info.clone();
                async move { Ok(info_response(&info, context.caller_address())) }
            },
        )
        .unary(
            "Echo",
            |context: CallContext, request: proto::EchoRequest| async move {
                if request.delay_millis > 0 {
                    let delay = Duration::from_millis(request.delay_millis.into());
                    echo_delay(delay, context.deadline()).await?;
                }
                Ok(proto::EchoResponse {
                    payload: request.payload,
                })
            },
        )
        .unary("FindNode", move |_, request: proto::FindNodeRequest| {
            let directory = directory.clone();
            async move { directory.find_node(&request) }
        })
        .unary(
            "Announce",
            move |context, request: proto::AnnounceRequest| {
                let directory = announce.clone();
                async move { directory.announce(&context, request) }
            },
        )
        .unary(
            "FindService",
            move |_, request: proto::FindServiceRequest| {
                let directory = find_service.clone();
                async move { Ok(directory.find_service(&request)) }
            },
        )
}

/// Waits out an Echo's delay, unless it outlasts the call's deadline (which
/// the server caps at `max_call_deadline`): then the call fails at once,
/// rather than hold a handler slot for an answer nobody can get.
async fn echo_delay(delay: Duration, deadline: Instant) -> Result<(), Status> {
    let left = deadline.saturating_duration_since(Instant::now());
    if delay > left {
        return Err(Status::deadline_exceeded(format!(
            "delay_millis {} outlasts the call's deadline ({} ms left)",
            delay.as_millis(),
            left.as_millis()
        )));
    }
    tokio::time::sleep(delay).await;
    Ok(())
}

fn info_response(info: &NodeInfo, observed: SocketAddr) -> proto::InfoResponse {
    proto::InfoResponse {
        node_id: info.node_id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
        observed_addr: match is_virtual(observed) {
            true => String::new(),
            false => observed.to_string(),
        },
        services: info.services.clone(),
        relays: info.relays.list().iter().map(ToString::to_string).collect(),
    }
}

pub(crate) fn unix_micros() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_echo_delay_past_the_deadline_fails_at_once() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let refused = echo_delay(Duration::from_millis(u32::MAX.into()), deadline).await;
        assert_eq!(
            refused.unwrap_err().code(),
            crate::rpc::Code::DeadlineExceeded
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
        echo_delay(Duration::from_secs(10), deadline).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
