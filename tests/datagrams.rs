//! Unreliable datagrams between two real nodes on loopback: counted as
//! delivered or dropped, refused when over the path's limit, and a flood
//! fills only the receiving service's bounded queue.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use peerd::connection::{DatagramError, DatagramStats};
use peerd::{Identity, Node};
use support::node::{bind_node, rss_bytes};

const SERVICE: &str = "test.v1.Telemetry";

/// Two nodes, `a` connected to `b`.
async fn pair() -> (Node, Node) {
    let (a, b) = (bind_node(), bind_node());
    a.manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap();
    (a, b)
}

/// Waits until `b`'s counters stop moving, then returns them.
async fn settled(node: &Node) -> DatagramStats {
    let mut last = node.manager().datagram_stats();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = node.manager().datagram_stats();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_datagrams_are_each_delivered_once_or_counted_as_dropped() {
    let (a, b) = pair().await;
    let mut inbox = b.manager().subscribe_datagrams(SERVICE, 20_000).unwrap();
    const SENT: u32 = 10_000;
    for n in 0..SENT {
        a.manager()
            .send_datagram(b.id(), SERVICE, &n.to_be_bytes())
            .unwrap();
        if n % 500 == 0 {
            // Paced a little, as a telemetry sender is: QUIC's send buffer
            // drops the oldest datagram of a burst it cannot send yet.
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(a.manager().datagram_stats().sent, u64::from(SENT));
    let stats = settled(&b).await;
    let mut seen = HashSet::new();
    while let Ok(datagram) = inbox.try_recv() {
        assert_eq!(datagram.from, a.id(), "the sender, authenticated");
        let n = u32::from_be_bytes(datagram.payload[..].try_into().unwrap());
        assert!(n < SENT && seen.insert(n), "{n} arrived intact and once");
    }
    let on_wire = |node: &Node, peer| {
        let quic_stats = node.manager().connection(peer).unwrap().stats();
        (quic_stats.frame_tx.datagram, quic_stats.frame_rx.datagram)
    };
    let (left, _) = on_wire(&a, b.id());
    let (_, arrived) = on_wire(&b, a.id());
    eprintln!(
        "of {SENT} datagrams sent: {left} left a's send buffer, {arrived} reached b's \
         connection, {} reached the service, {} were dropped by its queue",
        stats.received, stats.dropped
    );
    assert_eq!(seen.len() as u64, stats.received);
    assert_eq!(stats.dropped, 0, "the queue had room for all");
    assert!(stats.received > u64::from(SENT) / 2, "{stats:?}");
}

#[tokio::test]
async fn a_datagram_over_the_paths_limit_is_refused_and_nothing_is_sent() {
    let (a, b) = pair().await;
    let limit = a
        .manager()
        .connection(b.id())
        .unwrap()
        .quic()
        .max_datagram_size()
        .expect("datagrams are on");
    let fits = vec![7u8; limit - 1 - SERVICE.len()];
    a.manager().send_datagram(b.id(), SERVICE, &fits).unwrap();
    let over = vec![7u8; fits.len() + 1];
    let refused = a.manager().send_datagram(b.id(), SERVICE, &over);
    assert_eq!(
        refused,
        Err(DatagramError::TooLarge {
            size: limit + 1,
            limit
        })
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("nothing was sent")
    );
    assert_eq!(a.manager().datagram_stats().sent, 1);

    let stranger = Identity::generate().node_id();
    assert_eq!(
        a.manager().send_datagram(stranger, SERVICE, b"x"),
        Err(DatagramError::NotConnected(stranger))
    );
    let long_name = "s".repeat(256);
    assert_eq!(
        a.manager().send_datagram(b.id(), &long_name, b"x"),
        Err(DatagramError::BadServiceName(256))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_fills_only_the_bounded_queue() {
    let (a, b) = pair().await;
    let _never_read = b.manager().subscribe_datagrams(SERVICE, 8).unwrap();
    let payload = vec![1u8; 1000];
    let before = rss_bytes();
    // 50 MB in all, many times every buffer on the way.
    for round in 0..50_000 {
        a.manager()
            .send_datagram(b.id(), SERVICE, &payload)
            .unwrap();
        if round % 200 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let stats = settled(&b).await;
    let grown = rss_bytes().saturating_sub(before);
    eprintln!("flood: {stats:?}, RSS grew {grown} bytes");
    assert_eq!(stats.received, 8, "the queue holds 8: {stats:?}");
    assert!(stats.dropped > 1000, "{stats:?}");
    assert!(grown < 32 * 1024 * 1024, "RSS grew {grown} bytes");
    a.manager()
        .send_datagram(b.id(), "nobody.v1.Listens", b"x")
        .unwrap();
    assert_eq!(settled(&b).await.unrouted, 1, "the datagram for no service");
    // The connection still carries calls.
    let rtt = peerd::node_service::ping(a.client(), b.id(), &Default::default()).await;
    assert!(rtt.is_ok(), "{rtt:?}");
}
