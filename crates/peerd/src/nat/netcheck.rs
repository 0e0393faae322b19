//! Asking peers: each is asked for a dial back at once, and the answers are
//! classified by `reachability`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;

use super::reachability::{NatReport, Observation, classify};
use super::{DIAL_BACK, proto};
use crate::connection::NodeConnectionManager;
use crate::identity::NodeId;
use crate::rpc::{CallOptions, RpcClient};

/// Each peer's answer must come within this: its dial back takes at most
/// 3 s, the call itself may need a dial.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks each of `peers` to dial this node back and classifies what they saw.
pub async fn netcheck(
    client: &RpcClient,
    manager: &NodeConnectionManager,
    peers: &[NodeId],
) -> NatReport {
    let mut asking = JoinSet::new();
    for &peer in peers {
        asking.spawn(ask(client.clone(), manager.clone(), peer));
    }
    let mut observations = Vec::new();
    while let Some(answer) = asking.join_next().await {
        if let Ok(Some(observation)) = answer {
            observations.push(observation);
        }
    }
    classify(peers.len(), &observations)
}

async fn ask(
    client: RpcClient,
    manager: NodeConnectionManager,
    peer: NodeId,
) -> Option<Observation> {
    let options = CallOptions::default().with_timeout(ASK_TIMEOUT);
    let request = proto::DialBackRequest {};
    let answer: proto::DialBackResponse =
        match client.unary(peer, DIAL_BACK, &request, &options).await {
            Ok(answer) => answer,
            Err(status) => {
                tracing::debug!(peer = %peer.short(), %status, "no dial back");
                return None;
            }
        };
    let connection = manager.connection(peer)?;
    let bound = manager.local_addr().ok()?;
    let local_ip = connection.quic().local_ip().unwrap_or(bound.ip());
    Some(Observation {
        peer,
        peer_addr: connection.remote_address(),
        local_addr: SocketAddr::new(local_ip, bound.port()),
        observed: answer.observed_addr.parse().ok()?,
        reached: answer.reached,
    })
}
