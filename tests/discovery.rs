//! Discovery over real nodes on loopback: lookups along a line of twenty
//! nodes, service announcements that expire, wait-for-ready calls, pinned
//! peers that come back, and the peer book across a restart.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use peerd::addressing::PeerAddr;
use peerd::connection::TransportConfig;
use peerd::discovery::{PinState, peer_book};
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::node_service::{self as node_service, ECHO};
use peerd::rpc::RpcConfig;
use peerd::{CallOptions, Code, Identity, Node};
use support::{SECOND, eventually, free_udp_port, localhost};

fn start(identity: Identity) -> Node {
    Node::builder(identity).listen(localhost(1)).bind().unwrap()
}

/// Binds `identity` on the address a stopped node held, once its socket is free.
async fn restart(identity: Identity, addr: SocketAddr) -> Node {
    for _ in 0..100 {
        if let Ok(node) = Node::builder(identity.clone()).listen(addr).bind() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} stayed in use");
}

/// Dials to a silent port fail by handshake timeout: keep it short here.
fn quick_to_give_up() -> Node {
    let transport = TransportConfig {
        handshake_timeout: SECOND,
        ..TransportConfig::default()
    };
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .transport(transport)
        .bind()
        .unwrap()
}

fn peer_addr(node: &Node) -> PeerAddr {
    PeerAddr::new(node.id(), node.local_addr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_of_twenty_nodes_in_a_line_finds_the_last_by_id_alone() {
    let nodes: Vec<Node> = (0..20).map(|_| start(Identity::generate())).collect();
    for pair in nodes.windows(2) {
        pair[1].discovery().bootstrap(&[peer_addr(&pair[0])]).await;
    }
    // Each node learned its neighbours only (the bootstrap and the inbound side).
    let (first, last) = (&nodes[0], &nodes[19]);
    assert!(
        eventually(5 * SECOND, || nodes
            .iter()
            .all(|n| n.discovery().known_nodes() >= 1))
        .await
    );
    assert!(
        first.addresses().get(last.id()).is_empty(),
        "node 0 does not know node 19's address"
    );

    let rtt = node_service::ping(
        first.client(),
        last.id(),
        &CallOptions::default().with_timeout(10 * SECOND),
    )
    .await
    .expect("found by iterative lookups and called");
    assert!(rtt < 10 * SECOND);
    assert_eq!(first.addresses().get(last.id()), [last.local_addr()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_service_is_found_elsewhere_and_expires_after_its_announcer_stops() {
    let (a, b, c) = (
        start(Identity::generate()),
        start(Identity::generate()),
        start(Identity::generate()),
    );
    b.discovery().bootstrap(&[peer_addr(&a)]).await;
    c.discovery().bootstrap(&[peer_addr(&b)]).await;
    let ttl = Duration::from_secs(2);
    a.discovery().announce("chat", "1.2", ttl);

    let mut providers = Vec::new();
    for _ in 0..50 {
        providers = c.discovery().find_service("chat").await;
        if !providers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(providers.len(), 1, "{providers:?}");
    assert_eq!(providers[0].node_id, a.id().to_string());
    assert_eq!(providers[0].version, "1.2");
    assert_eq!(providers[0].addrs, [a.local_addr()]);
    assert!(c.discovery().find_service("other").await.is_empty());

    a.shutdown(SECOND).await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert!(
        c.discovery().find_service("chat").await.is_empty(),
        "gone once the TTL passed"
    );
}

fn slow_echo() -> EchoRequest {
    EchoRequest {
        payload: "hi".into(),
        delay_millis: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_ready_call_completes_when_the_peer_comes_back() {
    let identity = Identity::generate();
    let b_addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let a = quick_to_give_up();
    a.addresses().add(identity.node_id(), b_addr);

    let fail_fast = a
        .client()
        .unary::<_, EchoResponse>(
            identity.node_id(),
            ECHO,
            &slow_echo(),
            &CallOptions::default().with_timeout(5 * SECOND),
        )
        .await;
    assert_eq!(
        fail_fast.unwrap_err().code(),
        Code::Unavailable,
        "the default fails fast"
    );

    let client = a.client().clone();
    let target = identity.node_id();
    let waiting = tokio::spawn(async move {
        let options = CallOptions::default()
            .with_timeout(10 * SECOND)
            .with_wait_for_ready();
        client
            .unary::<_, EchoResponse>(target, ECHO, &slow_echo(), &options)
            .await
    });
    tokio::time::sleep(SECOND).await;
    assert!(!waiting.is_finished());
    let b = restart(identity, b_addr).await;
    let answer = tokio::time::timeout(10 * SECOND, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.unwrap().payload, "hi");
    b.shutdown(SECOND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_wait_queue_is_resource_exhausted() {
    let a = Node::builder(Identity::generate())
        .listen(localhost(1))
        .rpc(RpcConfig {
            max_waiting_calls_per_node: 2,
            ..RpcConfig::default()
        })
        .bind()
        .unwrap();
    let absent = Identity::generate().node_id();
    let unused = std::net::UdpSocket::bind(localhost(1)).unwrap();
    a.addresses().add(absent, unused.local_addr().unwrap());
    let options = CallOptions::default()
        .with_timeout(3 * SECOND)
        .with_wait_for_ready();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (client, options) = (a.client().clone(), options.clone());
            tokio::spawn(async move {
                client
                    .unary::<_, EchoResponse>(absent, ECHO, &slow_echo(), &options)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = a
        .client()
        .unary::<_, EchoResponse>(absent, ECHO, &slow_echo(), &options)
        .await;
    let status = third.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("2 calls already wait"),
        "{status}"
    );
    for call in waiting {
        assert_eq!(
            call.await.unwrap().unwrap_err().code(),
            Code::DeadlineExceeded
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_peer_reconnects_after_it_restarts() {
    let b_identity = Identity::generate();
    let b = start(b_identity.clone());
    let b_addr = b.local_addr();
    let a = start(Identity::generate());
    a.discovery().pin(peer_addr(&b));
    assert!(eventually(5 * SECOND, || a.manager().connection(b.id()).is_some()).await);
    assert!(
        a.discovery()
            .pinned()
            .iter()
            .any(|(_, state)| *state == PinState::Connected)
    );

    b.shutdown(SECOND).await;
    drop(b);
    assert!(
        eventually(5 * SECOND, || a
            .manager()
            .connection(b_identity.node_id())
            .is_none())
        .await
    );
    assert!(
        eventually(5 * SECOND, || matches!(
            a.discovery().pinned()[0].1,
            PinState::Reconnecting { .. }
        ))
        .await,
        "{:?}",
        a.discovery().pinned()
    );

    let b = restart(b_identity, b_addr).await;
    assert!(
        // The next retry may be up to 8 s × 1.2 away by the time B is back.
        eventually(30 * SECOND, || a.manager().connection(b.id()).is_some()).await,
        "reconnected"
    );
    node_service::ping(a.client(), b.id(), &CallOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_book_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.json");
    let b = start(Identity::generate());
    let a_identity = Identity::generate();
    let a = start(a_identity.clone());
    a.discovery().bootstrap(&[peer_addr(&b)]).await;
    peer_book::save(&path, a.addresses()).unwrap();
    a.shutdown(SECOND).await;

    let a = start(a_identity);
    assert!(a.addresses().get(b.id()).is_empty());
    assert_eq!(peer_book::load(&path, a.addresses()).unwrap(), 1);
    node_service::ping(a.client(), b.id(), &CallOptions::default())
        .await
        .expect("dialed from the peer book");
}
