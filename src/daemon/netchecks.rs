//! The daemon's background netcheck: once the node has a connection, and
//! every ten minutes after, so that `peerd status` says whether the node is
//! reachable without anyone asking. A node found unreachable then holds a
//! reservation on each pinned peer that serves a relay (`nat.use_relays`).

use std::time::Duration;

use peerd::addressing::RelayAddr;
use peerd::nat::Reachability;
use peerd::paths::is_virtual;
use peerd::{CallOptions, Node, node_service, relay};
use tokio_util::sync::CancellationToken;

use crate::admin::AdminContext;

/// How often the node checks again: NAT mappings and routes change slowly.
const EVERY: Duration = Duration::from_secs(600);
/// How often a node without a connection looks again for a peer to ask.
const WAIT_FOR_PEERS: Duration = Duration::from_secs(2);
/// How long a pinned peer may take to say which services it serves.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(context: AdminContext, use_relays: bool, cancel: CancellationToken) {
    let check = async {
        loop {
            while context.node.manager().connections().is_empty() {
                tokio::time::sleep(WAIT_FOR_PEERS).await;
            }
            let report = context.netcheck().await;
            tracing::info!(
                reachability = ?report.reachability,
                behind_nat = report.behind_nat,
                mapping = ?report.mapping,
                observed = ?report.observed,
                "netcheck"
            );
            if use_relays && report.reachability == Reachability::Private {
                reserve_on_relays(&context.node).await;
            }
            tokio::time::sleep(EVERY).await;
        }
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        () = check => {}
    }
}

/// Starts holding a reservation on each connected pinned peer that serves
/// a relay, unless one is held there already.
async fn reserve_on_relays(node: &Node) {
    let options = CallOptions::default().with_timeout(INFO_TIMEOUT);
    for (peer, _) in node.discovery().pinned() {
        let Some(connection) = node.manager().connection(peer) else {
            continue;
        };
        let addr = connection.remote_address();
        if is_virtual(addr) {
            continue;
        }
        match node_service::info(node.client(), peer, &options).await {
            Ok(info) if info.services.iter().any(|s| s == relay::SERVICE) => {
                if node.reserve_on(RelayAddr { relay: peer, addr }) {
                    tracing::info!(relay = %peer.short(), %addr, "unreachable: reserving on a relay");
                }
            }
            Ok(_) => {}
            Err(status) => {
                tracing::debug!(peer = %peer.short(), %status, "no Info from a pinned peer")
            }
        }
    }
}
