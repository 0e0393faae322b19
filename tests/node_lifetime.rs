//! A `Node`'s lifetime follows its handles: dropping the last one stops it
//! as `shutdown()` would, without the grace period.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use peerd::{Identity, Node};
use support::node::echo_call;
use support::{SECOND, eventually, localhost};

#[tokio::test]
async fn dropping_a_node_without_shutdown_frees_its_udp_port_within_a_second() {
    let node = Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .expect("bind");
    let peer = Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .expect("bind");
    // A live connection and a served call: the endpoint has work to keep it.
    node.addresses().add(peer.id(), peer.local_addr());
    echo_call(&node, peer.id(), 5 * SECOND).await.expect("echo");
    let addr = node.local_addr();
    let clone = node.clone();
    drop(node);
    assert!(
        UdpSocket::bind(addr).is_err(),
        "a clone still holds the node, so its port must stay taken"
    );
    let dropped = tokio::time::Instant::now();
    drop(clone);
    let freed = eventually(SECOND, || UdpSocket::bind(addr).is_ok()).await;
    assert!(
        freed,
        "{addr} still bound {:?} after the last handle was dropped",
        dropped.elapsed()
    );
    let lost = eventually(5 * SECOND, || peer.manager().connections().is_empty()).await;
    assert!(lost, "the peer still has a connection to the dropped node");
    peer.shutdown(Duration::from_secs(1)).await;
}
