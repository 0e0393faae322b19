//! The load generator behind `peerd bench`: ephemeral nodes of its own call
//! a target node's built-in `peerd.node.v1.Node/Echo`, `concurrency` calls in
//! flight over `connections` QUIC connections, for a time or a number of
//! calls; the `Report` gives throughput, latency percentiles and failures by
//! status code.
//!
//! Each connection comes from its own node with its own identity: the target
//! keeps one connection per node, so N connections need N nodes.

mod config;
mod error;
mod load;
mod report;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

pub use config::{BenchConfig, Stop};
pub use error::BenchError;
pub use load::{Phase, Progress};
pub use report::{Latency, Report};

use load::{Budget, Load, run_phase};
use peerd::Node;
use peerd::identity::Identity;
use peerd::node_service::proto::EchoRequest;
use peerd::rpc::CallOptions;

/// Connects, warms up, measures, and closes its connections. `progress` is
/// called about once a second, in the warm-up and in the measured phase.
pub async fn run(
    config: BenchConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, BenchError> {
    config.validate()?;
    let nodes = connect(&config).await?;
    let report = measure(&config, &nodes, &mut progress).await;
    shut_down(nodes).await;
    report
}

/// One node per connection, each connected to the target, one after the
/// other: the target limits the handshakes in progress from one address.
async fn connect(config: &BenchConfig) -> Result<Vec<Node>, BenchError> {
    let mut nodes = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let node = Node::builder(Identity::generate())
            .listen(local_addr_for(config.addr))
            .client_only()
            .bind();
        let connected = match node {
            Ok(node) => node
                .manager()
                .get_or_connect(config.target, &[config.addr])
                .await
                .map(|_| node)
                .map_err(BenchError::from),
            Err(e) => Err(e.into()),
        };
        match connected {
            Ok(node) => nodes.push(node),
            Err(e) => {
                shut_down(nodes).await;
                return Err(e);
            }
        }
    }
    Ok(nodes)
}

async fn measure(
    config: &BenchConfig,
    nodes: &[Node],
    progress: &mut impl FnMut(&Progress),
) -> Result<Report, BenchError> {
    let load = Load {
        target: config.target,
        request: EchoRequest {
            payload: payload(config.payload_size),
            delay_millis: config.delay_millis(),
        },
        // The address lets a call redial if its connection is lost.
        options: CallOptions::default()
            .with_timeout(config.timeout)
            .with_addr(config.addr),
        concurrency: config.concurrency,
    };
    if !config.warmup.is_zero() {
        let budget = Budget::for_stop(Stop::Duration(config.warmup), Instant::now());
        run_phase(&load, nodes, Phase::WarmUp, budget, progress).await?;
    }
    let start = Instant::now();
    let budget = Budget::for_stop(config.stop, start);
    let recorder = run_phase(&load, nodes, Phase::Measure, budget, progress).await?;
    Ok(Report::new(&recorder, start.elapsed(), config.payload_size))
}

/// Bytes that differ along the payload, so a reordered echo does not match.
fn payload(size: usize) -> bytes::Bytes {
    (0..size).map(|i| i as u8).collect()
}

/// Loopback targets are called from loopback; others from every interface
/// of the target's address family.
fn local_addr_for(target: SocketAddr) -> SocketAddr {
    let ip = match target {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(v6) if v6.ip().is_loopback() => Ipv6Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

/// Closes every connection at once; the bench's nodes serve nothing that
/// needs a grace period.
async fn shut_down(nodes: Vec<Node>) {
    let mut shutdowns = JoinSet::new();
    for node in nodes {
        shutdowns.spawn(async move { node.shutdown(Duration::ZERO).await });
    }
    shutdowns.join_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_nodes_bind_where_they_can_reach_the_target() {
        let local = |target: &str| local_addr_for(target.parse().unwrap()).to_string();
        assert_eq!(local("127.0.0.1:7733"), "127.0.0.1:0");
        assert_eq!(local("192.0.2.7:7733"), "0.0.0.0:0");
        assert_eq!(local("[::1]:7733"), "[::1]:0");
        assert_eq!(local("[2001:db8::7]:7733"), "[::]:0");
    }

    #[test]
    fn the_payload_has_the_asked_size_and_varies() {
        let payload = payload(300);
        assert_eq!(payload.len(), 300);
        assert_ne!(payload[0], payload[1]);
    }
}
