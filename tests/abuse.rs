//! Hostile peers: handshake floods, stream floods, a trickled request
//! header, garbage datagrams. Each time a legitimate peer keeps being served.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use peerd::connection::TransportConfig;
use peerd::rpc::RpcConfig;
use peerd::rpc::wire::codec::{FrameType, put_frame};
use peerd::test_utils::SplitMix64;
use peerd::{Code, Node};
use support::frames::{header_frame, status_of};
use support::node::{Probe, echo_call, node_on, rss_bytes, stalled_dial};
use support::{SECOND, localhost, within};
use tokio::time::Instant;

fn plain_node(last: u8) -> Node {
    node_on(
        localhost(last),
        TransportConfig::default(),
        RpcConfig::default(),
        Arc::default(),
    )
}

/// Calls `to` every 20 ms until `stop`; returns (calls, failures).
fn legitimate_calls(
    from: Node,
    to: peerd::NodeId,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let (mut calls, mut failures) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            calls += 1;
            if let Err(e) = echo_call(&from, to, 5 * SECOND).await {
                failures.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (calls, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_leaves_connected_and_new_peers_served() {
    const MAX_PENDING: usize = 16;
    let b = node_on(
        localhost(1),
        TransportConfig {
            max_pending_handshakes: MAX_PENDING,
            max_pending_handshakes_per_ip: 4,
            handshake_timeout: 3 * SECOND,
            ..TransportConfig::default()
        },
        RpcConfig::default(),
        Arc::default(),
    );
    let a = plain_node(2);
    a.addresses().add(b.id(), b.local_addr());
    echo_call(&a, b.id(), 5 * SECOND)
        .await
        .expect("connected before the flood");
    let stop = Arc::new(AtomicBool::new(false));
    let legit = legitimate_calls(a.clone(), b.id(), stop.clone());

    // 200 handshakes from 50 addresses that never answer, as spoofed ones.
    let flood: Vec<_> = (0..200u16)
        .map(|i| {
            let from = std::net::SocketAddr::from(([127, 0, 2, (i % 50 + 1) as u8], 0));
            stalled_dial(from, &b)
        })
        .collect();
    let mut most_pending = 0;
    let sampling = async {
        for _ in 0..100 {
            most_pending = most_pending.max(b.manager().stats().pending_handshakes);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let newcomer = async {
        tokio::time::sleep(SECOND).await;
        let c = plain_node(3);
        c.addresses().add(b.id(), b.local_addr());
        let start = Instant::now();
        let result = echo_call(&c, b.id(), 10 * SECOND).await;
        (result, start.elapsed())
    };
    let ((newcomer_result, newcomer_took), ()) = tokio::join!(newcomer, sampling);
    stop.store(true, Ordering::SeqCst);
    let (calls, failures) = legit.await.unwrap();
    flood.iter().for_each(|dial| dial.abort());
    let refused = b.manager().stats().refused;
    println!(
        "200 stalled handshakes: at most {most_pending} pending (limit {MAX_PENDING}), {refused} refused or sent a Retry; \
         connected peer: {calls} calls, {} failed; a new peer connected and called in {newcomer_took:?}",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    newcomer_result.expect("a new peer gets through the flood");
    assert!(most_pending <= MAX_PENDING, "{most_pending}");
    assert!(refused > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_stays_within_the_handler_limit_and_memory_stays_flat() {
    const LIMIT: u32 = 16;
    const FLOOD: Duration = Duration::from_secs(10);
    let probe = Arc::new(Probe::default());
    let transport = TransportConfig {
        max_concurrent_streams: LIMIT,
        ..TransportConfig::default()
    };
    let b = node_on(localhost(1), transport, RpcConfig::default(), probe.clone());
    let (attacker, legit_peer) = (plain_node(2), plain_node(3));
    legit_peer.addresses().add(b.id(), b.local_addr());
    echo_call(&legit_peer, b.id(), 5 * SECOND).await.unwrap();
    let connection = attacker
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let legit = legitimate_calls(legit_peer.clone(), b.id(), stop.clone());
    let mut request = header_frame("test.v1.Probe/Hold");
    put_frame(&mut request, FrameType::Message, &[]);
    // Twice as many openers as the limit, so the peer always waits at it;
    // half the calls are reset at once, half once their handler may run.
    let openers: Vec<_> = (0..2 * LIMIT)
        .map(|i| {
            let (connection, request) = (connection.clone(), request.clone());
            tokio::spawn(async move {
                let (start, mut opened) = (Instant::now(), 0u64);
                while start.elapsed() < FLOOD {
                    let Ok((mut send, mut recv, _guard)) = connection.open_stream().await else {
                        break;
                    };
                    let _ = send.write_all(&request).await;
                    let _ = send.finish();
                    if i % 2 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let _ = send.reset(1u32.into());
                    let _ = recv.stop(1u32.into());
                    opened += 1;
                }
                opened
            })
        })
        .collect();
    let (mut most_in_flight, mut rss_early) = (0, 0);
    let start = Instant::now();
    while !openers.iter().all(|o| o.is_finished()) {
        most_in_flight = most_in_flight.max(b.server().in_flight());
        if rss_early == 0 && start.elapsed() >= 2 * SECOND {
            rss_early = rss_bytes();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rss_late = rss_bytes();
    let mut opened = 0;
    for opener in openers {
        opened += opener.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let (calls, failures) = legit.await.unwrap();
    let growth = rss_late.saturating_sub(rss_early);
    println!(
        "{opened} streams opened and reset in {FLOOD:?}: at most {} Hold handlers and {most_in_flight} calls in flight (limit {LIMIT} per connection); \
         RSS {} MiB at 2 s, {} MiB at 10 s; legitimate peer: {calls} calls, {} failed",
        probe.max_running.load(Ordering::SeqCst),
        rss_early >> 20,
        rss_late >> 20,
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(probe.max_running.load(Ordering::SeqCst) <= LIMIT as usize);
    // The attacker's connection has its limit; the legitimate peer's one call.
    assert!(most_in_flight <= LIMIT as usize + 1, "{most_in_flight}");
    assert!(growth < 32 << 20, "RSS grew by {} MiB", growth >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_header_trickled_one_byte_a_second_is_cut_by_the_header_timeout() {
    let header_timeout = 2 * SECOND;
    let rpc = RpcConfig {
        header_timeout,
        ..RpcConfig::default()
    };
    let b = node_on(
        localhost(1),
        TransportConfig::default(),
        rpc,
        Arc::default(),
    );
    let a = plain_node(2);
    let connection = a
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap();
    let (mut send, mut recv, _guard) = connection.open_stream().await.unwrap();
    let header = header_frame("peerd.node.v1.Node/Ping");
    let start = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in header.iter() {
            if send.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(SECOND).await;
        }
    });
    let answer = within(10 * SECOND, recv.read_to_end(1 << 16))
        .await
        .expect("the callee answers");
    let took = start.elapsed();
    trickle.abort();
    let status = status_of(&answer).expect("a status frame");
    println!(
        "a header trickled at 1 byte/s: {status} after {took:?} (header timeout {header_timeout:?})"
    );
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        took >= header_timeout && took < header_timeout + SECOND,
        "{took:?}"
    );
}

/// A datagram that is not QUIC, or looks like a QUIC packet and is not one.
fn garbage(rng: &mut SplitMix64) -> Vec<u8> {
    let len = 1 + (rng.next_u64() % 1400) as usize;
    let mut datagram: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    match rng.next_u64() % 3 {
        // A long header claiming QUIC v1, padded like an Initial.
        0 if len >= 5 => {
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
            datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            datagram.resize(1200, 0);
        }
        // A short header, as on an established connection.
        1 => datagram[0] = 0x40 | (datagram[0] & 0x3f),
        _ => {}
    }
    datagram
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_ignored_and_the_node_keeps_serving() {
    const DATAGRAMS: usize = 20_000;
    let b = plain_node(1);
    let a = plain_node(2);
    a.addresses().add(b.id(), b.local_addr());
    echo_call(&a, b.id(), 5 * SECOND).await.unwrap();
    let sender = tokio::net::UdpSocket::bind(localhost(5)).await.unwrap();
    let mut rng = SplitMix64::new(5);
    let mut calls = 0;
    for i in 0..DATAGRAMS {
        let _ = sender.send_to(&garbage(&mut rng), b.local_addr()).await;
        if i % 1000 == 0 {
            echo_call(&a, b.id(), 5 * SECOND)
                .await
                .expect("served during the garbage");
            calls += 1;
        }
    }
    let newcomer = plain_node(3);
    newcomer.addresses().add(b.id(), b.local_addr());
    echo_call(&newcomer, b.id(), 5 * SECOND)
        .await
        .expect("a new peer connects after the garbage");
    let stats = b.manager().stats();
    println!(
        "{DATAGRAMS} garbage datagrams: {calls} calls during them succeeded, a new peer connected; the node accepted {} connections",
        stats.accepted
    );
    assert_eq!(stats.accepted, 2, "only the two real peers");
}
