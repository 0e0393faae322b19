//! The relay's limits, on loopback: over-limit reservations and circuits
//! are refused with RESOURCE_EXHAUSTED (NOT_FOUND for a target without a
//! reservation), a circuit over its byte budget is closed, and a relay
//! daemon's memory stays bounded while it holds 100 reservations.

mod support;

use std::time::Duration;

use bytes::Bytes;
use peerd::addressing::RelayAddr;
use peerd::nat::PUNCH_START;
use peerd::nat::proto::{PunchRequest, PunchResponse};
use peerd::relay::proto::{Packet, ReserveEvent, ReserveRequest};
use peerd::relay::{self, RelayConfig};
use peerd::rpc::{Encoded, StreamingCall};
use peerd::{CallOptions, Code, Identity, Node, NodeId, Status};
use prost::Message;
use support::daemon::{Daemon, wait_for};
use support::{eventually, localhost};

fn node() -> Node {
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .unwrap()
}

fn options(relay: &RelayAddr) -> CallOptions {
    CallOptions::default()
        .with_addr(relay.addr)
        .with_timeout(Duration::from_secs(30))
}

/// The caller's leg of a circuit to `target`, once the relay says the
/// target took it; or the status it was refused with.
async fn circuit(
    caller: &Node,
    relay: &RelayAddr,
    target: NodeId,
) -> Result<StreamingCall<Encoded, Encoded>, Status> {
    let options = options(relay).with_metadata(relay::TARGET_KEY, target.to_string());
    let client = caller.client();
    let mut call = client
        .bidi_streaming_encoded(relay.relay, relay::CONNECT, &options)
        .await?;
    match call.message_encoded().await? {
        Some(_) => Ok(call),
        None => Err(Status::internal("ended without opening")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_limit_reservations_and_circuits_are_refused_and_a_circuit_over_budget_closed() {
    let config = RelayConfig {
        max_reservations: 2,
        max_circuits_per_node: 1,
        circuit_bytes: 64 << 10,
        ..RelayConfig::default()
    };
    let relay_node = Node::builder(Identity::generate())
        .listen(localhost(1))
        .relay(config)
        .bind()
        .unwrap();
    let relay = RelayAddr {
        relay: relay_node.id(),
        addr: relay_node.local_addr(),
    };
    let server = relay_node.relay_server().unwrap().clone();
    let targets = [node(), node()];
    for target in &targets {
        assert!(target.reserve_on(relay));
    }
    assert!(eventually(Duration::from_secs(10), || server.stats().reservations == 2).await);

    let third = node();
    let request = ReserveRequest {
        relay_addr: relay.addr.to_string(),
    };
    let refused = async {
        let client = third.client();
        let mut events = client
            .server_streaming::<_, ReserveEvent>(
                relay.relay,
                relay::RESERVE,
                &request,
                &options(&relay),
            )
            .await?;
        events.message().await
    };
    let refused = refused.await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    assert!(
        refused.message().contains("limit of 2 reservations"),
        "{refused}"
    );

    let caller = node();
    let nobody = Identity::generate().node_id();
    let missing = circuit(&caller, &relay, nobody).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing}");
    let mut open = circuit(&caller, &relay, targets[0].id()).await.unwrap();
    let second = circuit(&caller, &relay, targets[1].id()).await.unwrap_err();
    assert_eq!(second.code(), Code::ResourceExhausted, "{second}");
    assert!(second.message().contains("share of 1 circuits"), "{second}");

    // 1200-byte packets, as QUIC sends them, past the 64 KiB budget.
    let packet = Packet {
        data: Bytes::from(vec![0x5a; 1200]),
        ..Packet::default()
    }
    .encode_to_vec();
    for _ in 0..60 {
        if open.send_encoded(&packet).await.is_err() {
            break;
        }
    }
    let closed = loop {
        match open.message_encoded().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the circuit ended with OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(closed.code(), Code::ResourceExhausted, "{closed}");
    assert!(
        closed.message().contains("budget of 65536 bytes"),
        "{closed}"
    );
    let stats = server.stats();
    assert_eq!(
        (
            stats.refused_reservations,
            stats.refused_circuits,
            stats.over_budget
        ),
        (1, 2, 1),
        "{stats:?}"
    );
    assert!(eventually(Duration::from_secs(5), || server.stats().circuits == 0).await);
    assert!(stats.bytes <= 64 << 10, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_punch_is_refused_over_a_direct_connection() {
    let (a, b) = (node(), node());
    a.addresses().add(b.id(), b.local_addr());
    let request = PunchRequest {
        token: Bytes::from_static(&[1; 16]),
        addrs: vec!["127.0.0.1:9".into()],
    };
    let options = CallOptions::default().with_timeout(Duration::from_secs(5));
    let refused = a
        .client()
        .unary::<_, PunchResponse>(b.id(), PUNCH_START, &request, &options)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    assert!(
        refused.message().contains("relayed connection"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_daemon_holding_100_reservations_stays_small_and_refuses_the_101st() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &[
            "--set",
            "relay.enabled=true",
            "--set",
            "relay.max_reservations=100",
        ],
    );
    let relay = RelayAddr {
        relay: daemon.id,
        addr: daemon.addr,
    };
    let first = node();
    first.reserve_on(relay);
    let held = |count: u64| {
        let status = daemon.status();
        status["relay"]["reservations"].as_u64() == Some(count)
    };
    assert!(wait_for(Duration::from_secs(10), || held(1)));
    let before = daemon.rss_bytes();
    let nodes: Vec<Node> = (0..100).map(|_| node()).collect();
    for node in &nodes {
        node.reserve_on(relay);
    }
    assert!(
        wait_for(Duration::from_secs(30), || held(100)),
        "{}",
        daemon.status()
    );
    let after = daemon.rss_bytes();
    let grown = after.saturating_sub(before);
    eprintln!(
        "relay RSS {} MiB with 1 reservation, {} MiB with 100",
        before >> 20,
        after >> 20
    );
    assert!(
        grown < 24 << 20,
        "RSS grew {} MiB for 99 reservations",
        grown >> 20
    );
    let status = daemon.cli_ok(&["status"]);
    assert!(
        status.contains("relay:       serving 100 reservations"),
        "{status}"
    );
    let refusals = || {
        let metrics = support::daemon::http_get(daemon.metrics.unwrap(), "/metrics");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("peerd_relay_reservations_refused_total "))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The 101st asks last, and again with backoff, refused each time.
    assert!(
        wait_for(Duration::from_secs(10), || refusals() >= 1),
        "the 101st was refused"
    );
    assert!(held(100), "{}", daemon.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_circuit_its_target_never_takes_is_refused_with_unavailable_in_time() {
    let relay_node = Node::builder(Identity::generate())
        .listen(localhost(1))
        .relay(RelayConfig::default())
        .bind()
        .unwrap();
    let relay = RelayAddr {
        relay: relay_node.id(),
        addr: relay_node.local_addr(),
    };
    // A target that holds a reservation and never answers an offer.
    let silent = node();
    let request = ReserveRequest {
        relay_addr: relay.addr.to_string(),
    };
    let client = silent.client();
    let mut reservation = client
        .server_streaming::<_, ReserveEvent>(
            relay.relay,
            relay::RESERVE,
            &request,
            &options(&relay),
        )
        .await
        .unwrap();
    assert!(reservation.message().await.unwrap().is_some(), "reserved");
    let caller = node();
    let asked = std::time::Instant::now();
    let refused = circuit(&caller, &relay, silent.id()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    assert!(
        refused.message().contains("did not take the circuit"),
        "{refused}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}
