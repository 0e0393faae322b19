//! Typed calls to another node's `peerd.node.v1.Node`.

use std::time::Duration;

use tokio::time::Instant;

use super::{INFO, PING, proto, unix_micros};
use crate::identity::NodeId;
use crate::rpc::{CallOptions, RpcClient, Status};

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

/// Asks `node` who it is: its id, version, listen addresses, services, and
/// the address it sees this node at.
pub async fn info(
    client: &RpcClient,
    node: NodeId,
    options: &CallOptions,
) -> Result<proto::InfoResponse, Status> {
    client
        .unary(node, INFO, &proto::InfoRequest {}, options)
        .await
}
