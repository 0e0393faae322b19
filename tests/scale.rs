//! Scale: one node holds 1,000 concurrent connections, each from its own
//! node, each making a call, with the default limits.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use peerd::node_service::ping;
use peerd::{CallOptions, Identity, Node};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const CLIENTS: usize = 1000;
/// Handshakes in flight at once; the server admits 16 per source IP, and the
/// clients are spread over 64 loopback addresses.
const DIALING: usize = 32;

fn client_address(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 0, 1, (i % 64) as u8 + 1);
    SocketAddr::from((ip, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_holds_a_thousand_connections_each_making_a_call() {
    let server = Node::builder(Identity::generate())
        .listen("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap();
    let (target, addr) = (server.id(), server.local_addr());
    let dialing = Arc::new(Semaphore::new(DIALING));
    let mut clients = JoinSet::new();
    for i in 0..CLIENTS {
        let dialing = dialing.clone();
        clients.spawn(async move {
            let _turn = dialing.acquire_owned().await.unwrap();
            let client = Node::builder(Identity::generate())
                .listen(client_address(i))
                .bind()
                .unwrap();
            let options = CallOptions::default()
                .with_addr(addr)
                .with_timeout(Duration::from_secs(60));
            ping(client.client(), target, &options)
                .await
                .map(|_| client)
        });
    }
    let mut connected = Vec::with_capacity(CLIENTS);
    while let Some(joined) = clients.join_next().await {
        connected.push(joined.unwrap().expect("every client's call succeeds"));
    }

    assert_eq!(connected.len(), CLIENTS);
    assert_eq!(
        server.manager().stats().open_connections,
        CLIENTS,
        "all held at once"
    );
    assert_eq!(server.manager().connections().len(), CLIENTS);
}
