//! The daemon's background netcheck: once the node has a connection, and
//! every ten minutes after, so that `peerd status` says whether the node is
//! reachable without anyone asking.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::admin::AdminContext;

/// How often the node checks again: NAT mappings and routes change slowly.
const EVERY: Duration = Duration::from_secs(600);
/// How often a node without a connection looks again for a peer to ask.
const WAIT_FOR_PEERS: Duration = Duration::from_secs(2);

pub async fn run(context: AdminContext, cancel: CancellationToken) {
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
            tokio::time::sleep(EVERY).await;
        }
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        () = check => {}
    }
}
