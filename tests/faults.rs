//! Calls and handshakes across a faulty network: nodes on `FaultySocket`s
//! that lose, reorder and blackhole datagrams (seeded, in-process, no root).

mod support;

use std::sync::Arc;
use std::time::Duration;

use peerd::connection::TransportConfig;
use peerd::rpc::RpcConfig;
use peerd::test_utils::{Faults, FaultySocket};
use peerd::{Identity, Node};
use support::node::echo_call;
use support::{SECOND, localhost};
use tokio::time::Instant;

fn lossy_node(
    addr: std::net::SocketAddr,
    faults: Faults,
    seed: u64,
    transport: TransportConfig,
) -> (Node, Arc<FaultySocket>) {
    let socket = FaultySocket::bind(addr, faults, seed).expect("bind");
    let node = Node::builder(Identity::generate())
        .socket(socket.clone())
        .transport(transport)
        .rpc(RpcConfig::default())
        .bind()
        .expect("bind");
    (node, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_10_percent_loss_each_way_and_reordering_1000_calls_succeed() {
    const WORKERS: usize = 20;
    const CALLS_EACH: usize = 50;
    let faults = Faults {
        loss: 0.10,
        delay: Duration::from_millis(1),
        jitter: Duration::from_millis(4),
        ..Faults::default()
    };
    let config = TransportConfig::default;
    let (a, a_socket) = lossy_node(localhost(1), faults, 1, config());
    let (b, b_socket) = lossy_node(localhost(1), faults, 2, config());
    a.addresses().add(b.id(), b.local_addr());
    let start = Instant::now();
    let workers = (0..WORKERS).map(|_| {
        let (a, target) = (a.clone(), b.id());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..CALLS_EACH {
                if let Err(e) = echo_call(&a, target, 30 * SECOND).await {
                    failures.push(e.to_string());
                }
            }
            failures
        })
    });
    let mut failures = Vec::new();
    for worker in workers.collect::<Vec<_>>() {
        failures.extend(worker.await.unwrap());
    }
    let (to_a, to_b) = (a_socket.stats(), b_socket.stats());
    let lost = a
        .manager()
        .connection(b.id())
        .unwrap()
        .stats()
        .path
        .lost_packets;
    println!(
        "{} calls in {:?}: {} failed; dropped {} of {} datagrams to A and {} of {} to B, {} reordered; A declared {lost} packets lost",
        WORKERS * CALLS_EACH,
        start.elapsed(),
        failures.len(),
        to_a.dropped,
        to_a.received,
        to_b.dropped,
        to_b.received,
        to_a.reordered + to_b.reordered,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(to_a.dropped > 0 && to_b.dropped > 0 && to_a.reordered + to_b.reordered > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_30_percent_loss_each_way_50_of_50_handshakes_complete() {
    const CLIENTS: u8 = 50;
    let faults = Faults {
        loss: 0.30,
        ..Faults::default()
    };
    let patient = || TransportConfig {
        handshake_timeout: 30 * SECOND,
        ..TransportConfig::default()
    };
    let (server, server_socket) = lossy_node(localhost(1), faults, 99, patient());
    // Each client from its own loopback address, as 50 different hosts.
    let dials = (0..CLIENTS).map(|i| {
        let addr = std::net::SocketAddr::from(([127, 0, 1, i + 1], 0));
        let (client, _) = lossy_node(addr, faults, u64::from(i), patient());
        let (id, to) = (server.id(), server.local_addr());
        tokio::spawn(async move {
            let start = Instant::now();
            let result = client.manager().get_or_connect(id, &[to]).await;
            (result.map(drop), start.elapsed(), client)
        })
    });
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for dial in dials.collect::<Vec<_>>() {
        let (result, took, _client) = dial.await.unwrap();
        match result {
            Ok(()) => times.push(took),
            Err(e) => failures.push(e.to_string()),
        }
    }
    times.sort();
    let stats = server_socket.stats();
    println!(
        "{} of {CLIENTS} handshakes completed; median {:?}, slowest {:?}; the server dropped {} of {} datagrams",
        times.len(),
        times.get(times.len() / 2),
        times.last(),
        stats.dropped,
        stats.received,
    );
    assert!(failures.is_empty(), "{failures:?}");
}

/// quinn alone would probe at 1 s, 3 s and next at 7 s, past the 6.5 s
/// timeout; the dial's second attempt, started at 2 s, probes afresh at 3 s
/// and 5 s, a second after the blackhole lifts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_across_a_4_second_blackhole_completes_on_a_fresh_attempt() {
    let dark = Faults {
        blackhole: true,
        ..Faults::default()
    };
    let config = || TransportConfig {
        handshake_timeout: Duration::from_millis(6500),
        ..TransportConfig::default()
    };
    let (server, server_socket) = lossy_node(localhost(1), dark, 1, config());
    let (client, _) = lossy_node(localhost(1), Faults::default(), 2, config());
    let start = Instant::now();
    let dial = {
        let (client, id, to) = (client.clone(), server.id(), server.local_addr());
        tokio::spawn(async move { client.manager().get_or_connect(id, &[to]).await })
    };
    tokio::time::sleep(4 * SECOND).await;
    server_socket.set_faults(Faults::default());
    dial.await.unwrap().expect("a fresh attempt got through");
    println!("connected {:?} after the dial began", start.elapsed());
    assert_eq!(client.manager().stats().dials, 1);
    assert!(client.manager().tally().handshake_restarts() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_whose_deadline_outlasts_a_2_second_blackhole_succeed() {
    let clear = Faults::default();
    let (a, a_socket) = lossy_node(localhost(1), clear, 1, TransportConfig::default());
    let (b, b_socket) = lossy_node(localhost(1), clear, 2, TransportConfig::default());
    a.addresses().add(b.id(), b.local_addr());
    echo_call(&a, b.id(), 5 * SECOND).await.expect("connected");
    let dark = Faults {
        blackhole: true,
        ..clear
    };
    a_socket.set_faults(dark);
    b_socket.set_faults(dark);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (a, target) = (a.clone(), b.id());
            tokio::spawn(async move {
                let result = echo_call(&a, target, 10 * SECOND).await;
                (result, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(2 * SECOND).await;
    a_socket.set_faults(clear);
    b_socket.set_faults(clear);
    let lifted = Instant::now();
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (result, done) = call.await.unwrap();
        result.expect("the call outlives the blackhole");
        slowest = slowest.max(done.saturating_duration_since(lifted));
    }
    println!("10 calls across a 2 s blackhole all succeeded, the last {slowest:?} after it lifted");
    assert!(
        a.manager().connection(b.id()).is_some(),
        "the connection survived"
    );
}
