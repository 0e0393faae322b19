//! `peerd.node.v1.Node`: Ping, Info and Echo, and typed helpers to call them.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::identity::NodeId;
use crate::rpc::{CallContext, CallOptions, RpcClient, Service, Status};

/// The generated messages of `proto/peerd/node/v1/node.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.node.v1.rs"));
}

pub const SERVICE: &str = "peerd.node.v1.Node";
pub const PING: &str = "peerd.node.v1.Node/Ping";
pub const INFO: &str = "peerd.node.v1.Node/Info";
pub const ECHO: &str = "peerd.node.v1.Node/Echo";
pub const FIND_NODE: &str = "peerd.node.v1.Node/FindNode";
pub const ANNOUNCE: &str = "peerd.node.v1.Node/Announce";
pub const FIND_SERVICE: &str = "peerd.node.v1.Node/FindService";

/// What `Info` reports about this node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub listen_addrs: Vec<SocketAddr>,
    pub services: Vec<String>,
}

pub fn node_service(info: NodeInfo) -> Service {
    Service::new(SERVICE)
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
        .unary("Echo", |_, request: proto::EchoRequest| async move {
            if request.delay_millis > 0 {
                let delay = Duration::from_millis(request.delay_millis.into());
                tokio::time::sleep(delay).await;
            }
            Ok(proto::EchoResponse {
                payload: request.payload,
            })
        })
}

fn info_response(info: &NodeInfo, observed: SocketAddr) -> proto::InfoResponse {
    proto::InfoResponse {
        node_id: info.node_id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
        observed_addr: observed.to_string(),
        services: info.services.clone(),
    }
}

fn unix_micros() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros() as u64
}

/// Pings `node` and returns the round-trip time of the call.
pub async fn ping(
    client: &RpcClient,
    node: NodeId,
    options: &CallOptions,
) -> Result<Duration, Status> {
    let start = Instant::now();
    let nonce = unix_micros();
    let response: proto::PingResponse = client
        .unary(node, PING, &proto::PingRequest { nonce }, options)
        .await?;
    if response.nonce != nonce {
        return Err(Status::internal("the ping answer carries another nonce"));
    }
    Ok(start.elapsed())
}

pub async fn info(
    client: &RpcClient,
    node: NodeId,
    options: &CallOptions,
) -> Result<proto::InfoResponse, Status> {
    client
        .unary(node, INFO, &proto::InfoRequest {}, options)
        .await
}
