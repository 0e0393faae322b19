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

/// Peers a netcheck asks: two tell the NAT's mapping, a third stands in
/// for one that is down.
const PEERS: usize = 3;

/// The first [`PEERS`] of `candidates` (best first) at distinct addresses,
/// each once, never `local` itself.
pub fn choose_peers(
    local: NodeId,
    candidates: impl IntoIterator<Item = (NodeId, SocketAddr)>,
) -> Vec<NodeId> {
    let mut chosen: Vec<(NodeId, SocketAddr)> = Vec::new();
    for (node, addr) in candidates {
        let taken = chosen.iter().any(|(n, a)| *n == node || *a == addr);
        if node != local && !taken {
            chosen.push((node, addr));
        }
        if chosen.len() == PEERS {
            break;
        }
    }
    chosen.into_iter().map(|(node, _)| node).collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_peers_at_distinct_addresses_are_chosen_best_first() {
        let node = |n: u8| NodeId::from_bytes([n; 32]);
        let at = |port: u16| SocketAddr::from(([203, 0, 113, 1], port));
        let candidates = [
            (node(0), at(1)),
            (node(1), at(1)),
            (node(2), at(1)),
            (node(1), at(2)),
            (node(3), at(3)),
            (node(4), at(4)),
            (node(5), at(5)),
        ];
        assert_eq!(
            choose_peers(node(0), candidates),
            [node(1), node(3), node(4)],
            "not itself, one per node, one per address, three"
        );
    }
}
