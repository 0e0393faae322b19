//! Relayed and direct unary calls between two homes behind NAT, side by
//! side in one run: 1 KiB Echo calls from home 1 to home 2, through the
//! relay (home 2 behind MASQUERADE --random-fully, where no punch works)
//! and on the direct path a punch found (both homes behind port-preserving
//! MASQUERADE). Each is measured one call at a time and 16 at a time.
//! Needs root (network namespaces); docs/performance.md records runs.
//!
//! `cargo bench --bench relay` measures; under `cargo test` each
//! measurement runs briefly, as a smoke test.

// The integration tests' harness: its namespaces and their runtimes.
#[path = "../tests/support/mod.rs"]
mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::daemon::wait_for;
use harness::netns::{NatKind, NsRuntime, PUBLIC_IP, Topology};
use peerd::addressing::RelayAddr;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::paths::PathStats;
use peerd::relay::RelayConfig;
use peerd::{CallOptions, Identity, Node, NodeId};

const ECHO: &str = "peerd.node.v1.Node/Echo";
const PAYLOAD: usize = 1024;

/// What one load measured.
struct Figures {
    calls_per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    if !Topology::available() {
        return;
    }
    let (warm, each) = match measuring {
        true => (Duration::from_secs(1), Duration::from_secs(5)),
        false => (Duration::ZERO, Duration::from_millis(300)),
    };
    let mut rows = Vec::new();
    for (path, nat2) in [
        ("relayed", NatKind::RandomPerDestination),
        ("direct", NatKind::PortPreserving),
    ] {
        for in_flight in [1, 16] {
            let figures = measure(path, nat2, in_flight, warm, each);
            rows.push((path, in_flight, figures));
        }
    }
    println!("| path | in flight | calls/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (path, in_flight, f) in &rows {
        println!(
            "| {path} | {in_flight} | {:.0} | {:.0} µs | {:.0} µs |",
            f.calls_per_second,
            f.p50.as_secs_f64() * 1e6,
            f.p99.as_secs_f64() * 1e6
        );
    }
    let rate = |path: &str, in_flight: usize| {
        rows.iter()
            .find(|(p, n, _)| *p == path && *n == in_flight)
            .map_or(0.0, |(_, _, f)| f.calls_per_second)
    };
    for in_flight in [1, 16] {
        println!(
            "relayed / direct, {in_flight} in flight: {:.2}",
            rate("relayed", in_flight) / rate("direct", in_flight)
        );
    }
}

/// Builds the topology, connects home 1 to home 2 by id through the
/// relay, checks the path is the one named, and loads it.
fn measure(path: &str, nat2: NatKind, in_flight: usize, warm: Duration, each: Duration) -> Figures {
    let net = Topology::two_homes(
        &format!("b{}{in_flight}", &path[..1]),
        NatKind::PortPreserving,
        nat2,
    );
    let public = NsRuntime::enter(&net.ns("pub"));
    let homes = [
        NsRuntime::enter(&net.ns("home1")),
        NsRuntime::enter(&net.ns("home2")),
    ];
    let relay_addr: SocketAddr = format!("{PUBLIC_IP}:7733").parse().unwrap();
    // The default 64 MiB a circuit may carry would end a relayed load of
    // a few seconds.
    let config = RelayConfig {
        circuit_bytes: u64::MAX,
        ..RelayConfig::default()
    };
    let relay = public.run(async move {
        let builder = Node::builder(Identity::generate()).listen(relay_addr);
        builder.relay(config).bind().unwrap()
    });
    let node = |home: u8| {
        let listen: SocketAddr = format!("{}:7733", Topology::home_ip(home)).parse().unwrap();
        homes[usize::from(home) - 1].run(async move {
            Node::builder(Identity::generate())
                .listen(listen)
                .bind()
                .unwrap()
        })
    };
    let (a, b) = (node(1), node(2));
    b.reserve_on(RelayAddr {
        relay: relay.id(),
        addr: relay_addr,
    });
    let server = relay.relay_server().unwrap().clone();
    wait_until(|| server.stats().reservations == 1, "B's reservation");
    let (client, relay_id) = (a.client().clone(), relay.id());
    homes[0].run(async move {
        let options = CallOptions::default().with_addr(relay_addr);
        peerd::node_service::ping(&client, relay_id, &options)
            .await
            .unwrap();
    });
    let target = b.id();
    let caller = a.clone();
    homes[0].run(async move { load(&caller, target, 1, Duration::ZERO).await });
    let on_path = |stats: PathStats| match path {
        "relayed" => a.punches().failed == 1 && stats.relayed == 1,
        _ => stats.direct == 1,
    };
    wait_until(|| on_path(a.paths()), path);
    let caller = a.clone();
    homes[0].run(async move {
        load(&caller, target, in_flight, warm).await;
        load(&caller, target, in_flight, each).await
    })
}

/// `in_flight` callers each making 1 KiB Echo calls back to back for
/// `during`.
async fn load(a: &Node, b: NodeId, in_flight: usize, during: Duration) -> Figures {
    let start = Instant::now();
    let callers = (0..in_flight).map(|_| {
        let client = a.client().clone();
        tokio::spawn(async move {
            let request = EchoRequest {
                payload: Bytes::from(vec![7; PAYLOAD]),
                delay_millis: 0,
            };
            let options = CallOptions::default().with_timeout(Duration::from_secs(10));
            let mut took = Vec::new();
            loop {
                let call = Instant::now();
                let _: EchoResponse = client.unary(b, ECHO, &request, &options).await.unwrap();
                took.push(call.elapsed());
                if start.elapsed() >= during {
                    return took;
                }
            }
        })
    });
    let mut took = Vec::new();
    for caller in callers.collect::<Vec<_>>() {
        took.extend(caller.await.unwrap());
    }
    let elapsed = start.elapsed();
    took.sort();
    let at = |share: f64| took[((took.len() - 1) as f64 * share) as usize];
    Figures {
        calls_per_second: took.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn wait_until(condition: impl FnMut() -> bool, what: &str) {
    assert!(
        wait_for(Duration::from_secs(15), condition),
        "{what} did not come"
    );
}
