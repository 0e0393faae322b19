//! Opens N connections to one node, each from its own ephemeral node, makes
//! one call on each, then holds them idle until killed. Used by
//! scripts/scale.sh to measure the target's memory per idle connection.
//!
//! Usage: hold_connections <node-id>@<host>:<port> <count>

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use peerd::addressing::PeerAddr;
use peerd::node_service::ping;
use peerd::{CallOptions, Identity, Node};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Handshakes in flight; the target admits 16 pending per source IP.
const DIALING: usize = 64;
/// Source addresses 127.0.x.y the clients are spread over.
const SOURCE_IPS: usize = 250;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hold_connections <node-id>@<host>:<port> <count>";
    let target: PeerAddr = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().ok_or(usage)?.parse()?;
    let addr = *target
        .resolve()
        .await?
        .first()
        .ok_or("the target has no address")?;
    let nodes = connect_all(target, addr, count).await?;
    println!("held {}", nodes.len());
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    Ok(())
}

async fn connect_all(
    target: PeerAddr,
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<Node>, Box<dyn std::error::Error>> {
    let dialing = Arc::new(Semaphore::new(DIALING));
    let mut clients = JoinSet::new();
    for i in 0..count {
        let dialing = dialing.clone();
        clients.spawn(async move {
            let _turn = dialing.acquire_owned().await.expect("never closed");
            let source = Ipv4Addr::new(
                127,
                0,
                (i / SOURCE_IPS % 250) as u8 + 1,
                (i % SOURCE_IPS) as u8 + 1,
            );
            let node = Node::builder(Identity::generate())
                .listen(SocketAddr::from((source, 0)))
                .bind()?;
            let options = CallOptions::default()
                .with_addr(addr)
                .with_timeout(Duration::from_secs(60));
            ping(node.client(), target.node, &options).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(node)
        });
    }
    let mut nodes = Vec::with_capacity(count);
    while let Some(joined) = clients.join_next().await {
        nodes.push(joined?.map_err(|e| e.to_string())?);
    }
    Ok(nodes)
}
