//! Every resource limit (docs/reliability.md, "Limits") holds against real peers: connections
//! (both directions, and under racing dials), pending handshakes per source
//! IP, handlers per connection and per node, and the bytes a peer that stops
//! reading can make us hold.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use peerd::connection::{ConnectError, TransportConfig};
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::RpcConfig;
use peerd::{CallOptions, Code, Node};
use support::frames::header_frame;
use support::node::{Probe, node_on, stalled_dial};
use support::{SECOND, eventually, localhost};

fn node(transport: TransportConfig) -> Node {
    node_on(
        localhost(1),
        transport,
        RpcConfig::default(),
        Arc::default(),
    )
}

#[tokio::test]
async fn racing_dials_never_exceed_the_connection_limit() {
    let limit = TransportConfig {
        max_connections: 2,
        ..TransportConfig::default()
    };
    let a = node(limit);
    let targets: Vec<Node> = (0..5).map(|_| node(TransportConfig::default())).collect();
    let dials = targets.iter().map(|t| {
        let manager = a.manager().clone();
        let (id, addr) = (t.id(), t.local_addr());
        tokio::spawn(async move { manager.get_or_connect(id, &[addr]).await })
    });
    let mut connected = 0;
    for dial in dials.collect::<Vec<_>>() {
        match dial.await.unwrap() {
            Ok(_) => connected += 1,
            Err(ConnectError::ConnectionLimit(2)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    println!("5 racing dials with max_connections = 2: {connected} connected");
    assert_eq!(connected, 2);
    assert_eq!(a.manager().stats().open_connections, 2);
}

#[tokio::test]
async fn inbound_connections_over_the_limit_are_refused() {
    let b = node(TransportConfig {
        max_connections: 2,
        ..TransportConfig::default()
    });
    let callers: Vec<Node> = (0..3).map(|_| node(TransportConfig::default())).collect();
    let options = CallOptions::default()
        .with_timeout(5 * SECOND)
        .with_addr(b.local_addr());
    let mut codes = Vec::new();
    for caller in &callers {
        let ping = peerd::node_service::ping(caller.client(), b.id(), &options).await;
        codes.push(ping.err().map(|e| (e.code(), e.message().to_owned())));
    }
    assert!(codes[0].is_none() && codes[1].is_none(), "{codes:?}");
    let (code, message) = codes[2].clone().expect("the third is refused");
    println!("the third caller: {code:?}: {message}");
    assert_eq!(code, Code::Unavailable);
    assert!(message.contains("refused"), "{message}");
    assert_eq!(b.manager().stats().open_connections, 2);
    assert!(b.manager().stats().refused >= 1);
}

#[tokio::test]
async fn pending_handshakes_per_source_ip_are_limited() {
    let b = node(TransportConfig {
        max_pending_handshakes_per_ip: 2,
        handshake_timeout: 5 * SECOND,
        ..TransportConfig::default()
    });
    let stalled = [
        stalled_dial(localhost(1), &b),
        stalled_dial(localhost(1), &b),
    ];
    assert!(eventually(5 * SECOND, || b.manager().stats().pending_handshakes == 2).await);
    let same_ip = node_on(
        localhost(1),
        TransportConfig::default(),
        RpcConfig::default(),
        Arc::default(),
    );
    let other_ip = node_on(
        localhost(2),
        TransportConfig::default(),
        RpcConfig::default(),
        Arc::default(),
    );
    let refused = same_ip
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap_err();
    println!("a third handshake from 127.0.0.1: {refused}");
    assert!(refused.to_string().contains("refused"), "{refused}");
    other_ip
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .expect("another address is not limited");
    stalled.iter().for_each(|s| s.abort());
}

#[tokio::test]
async fn handlers_are_bounded_per_connection_and_per_node() {
    const PER_CONNECTION: u32 = 4;
    const PER_NODE: usize = 6;
    let probe = Arc::new(Probe::default());
    let transport = TransportConfig {
        max_concurrent_streams: PER_CONNECTION,
        ..TransportConfig::default()
    };
    let rpc = RpcConfig {
        max_handlers: PER_NODE,
        ..RpcConfig::default()
    };
    let b = node_on(localhost(1), transport, rpc, probe.clone());
    let callers: Vec<Node> = (0..2).map(|_| node(TransportConfig::default())).collect();
    let mut calls = Vec::new();
    for caller in &callers {
        caller.addresses().add(b.id(), b.local_addr());
        for _ in 0..10 {
            let client = caller.client().clone();
            let target = b.id();
            calls.push(tokio::spawn(async move {
                let options = CallOptions::default().with_timeout(30 * SECOND);
                client
                    .unary::<_, EchoResponse>(
                        target,
                        "test.v1.Probe/Hold",
                        &EchoRequest::default(),
                        &options,
                    )
                    .await
            }));
        }
    }
    let mut most_in_flight = 0;
    let saturated = eventually(10 * SECOND, || {
        most_in_flight = most_in_flight.max(b.server().in_flight());
        probe.running() == PER_NODE
    })
    .await;
    assert!(saturated, "{} handlers running", probe.running());
    tokio::time::sleep(Duration::from_millis(300)).await;
    most_in_flight = most_in_flight.max(b.server().in_flight());
    probe.release();
    for call in calls {
        call.await
            .unwrap()
            .expect("every call completes once released");
    }
    let (per_node, per_caller) = (
        probe.max_running.load(Ordering::SeqCst),
        probe.max_running_per_caller(),
    );
    println!(
        "20 calls from 2 callers: at most {per_node} handlers ran, {per_caller} per caller, {most_in_flight} calls in flight"
    );
    assert_eq!(per_node, PER_NODE);
    assert!(per_caller <= PER_CONNECTION as usize, "{per_caller}");
    assert_eq!(
        most_in_flight,
        2 * PER_CONNECTION as usize,
        "each connection has its limit of calls in flight, the rest wait in the caller"
    );
}

#[tokio::test]
async fn a_caller_that_stops_reading_makes_us_buffer_only_its_windows() {
    const STREAMS: u64 = 8;
    const MESSAGE: u64 = 16 * 1024;
    let probe = Arc::new(Probe::default());
    let b = node_on(
        localhost(1),
        TransportConfig::default(),
        RpcConfig::default(),
        probe.clone(),
    );
    // The caller's windows are what the callee may send before it must wait.
    let windows = TransportConfig {
        stream_receive_window: 256 * 1024,
        connection_receive_window: 1024 * 1024,
        ..TransportConfig::default()
    };
    let a = node(windows.clone());
    let connection = a
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap();
    let mut stalled = Vec::new();
    for _ in 0..STREAMS {
        let (mut send, recv, guard) = connection.open_stream().await.unwrap();
        let mut request = header_frame("test.v1.Probe/Flood");
        peerd::rpc::wire::codec::put_frame(
            &mut request,
            peerd::rpc::wire::codec::FrameType::Message,
            &[],
        );
        send.write_all(&request).await.unwrap();
        send.finish().unwrap();
        stalled.push((send, recv, guard)); // never read
    }
    tokio::time::sleep(SECOND).await;
    let after_one_second = probe.flooded.load(Ordering::SeqCst);
    tokio::time::sleep(SECOND).await;
    let after_two_seconds = probe.flooded.load(Ordering::SeqCst);
    // The connection window, plus per stream the response queue (16
    // messages) and the message in hand.
    let bound = windows.connection_receive_window + STREAMS * 17 * MESSAGE;
    println!(
        "{STREAMS} unread streaming calls: the callee queued {after_two_seconds} bytes (bound {bound}), {} more in the second second",
        after_two_seconds - after_one_second
    );
    assert!(after_two_seconds <= bound, "{after_two_seconds} > {bound}");
    assert_eq!(
        after_one_second, after_two_seconds,
        "no growth once the windows are full"
    );
    drop(stalled);
}

#[tokio::test]
async fn the_udp_socket_gets_the_configured_kernel_buffer() {
    let socket = std::net::UdpSocket::bind(localhost(1)).unwrap();
    let small = 64 * 1024;
    peerd::connection::set_buffers(&socket, small).unwrap();
    let reported = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
    // Linux reports twice what it grants; a system maximum below 64 KiB is
    // not one a node runs on.
    assert_eq!(reported, 2 * small, "granted {reported} for {small}");
}
