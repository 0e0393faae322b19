//! Shared helpers for integration tests: real nodes on 127.0.0.1 port 0.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peerd::connection::{IncomingStream, NodeConnectionManager, StreamHandler, TransportConfig};
use peerd::identity::{Identity, NodeId};
use tokio_util::sync::CancellationToken;

pub const LOCALHOST: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Echoes every stream back and counts how many it served.
#[derive(Debug, Default)]
pub struct EchoHandler {
    pub streams: AtomicUsize,
}

impl StreamHandler for EchoHandler {
    fn handle_stream(&self, stream: IncomingStream) {
        self.streams.fetch_add(1, Ordering::SeqCst);
        answer_stream(stream, |request| request);
    }
}

/// Reads the stream to its end and sends back, in a task of its own, what
/// `answer` makes of what it read.
pub fn answer_stream(
    stream: IncomingStream,
    answer: impl FnOnce(Vec<u8>) -> Vec<u8> + Send + 'static,
) {
    tokio::spawn(async move {
        let IncomingStream {
            mut send,
            mut recv,
            guard,
            ..
        } = stream;
        if let Ok(request) = recv.read_to_end(1 << 20).await {
            let _ = send.write_all(&answer(request)).await;
            let _ = send.finish();
            let _ = send.stopped().await;
        }
        drop(guard);
    });
}

/// A connection manager on 127.0.0.1 whose peers' streams go to `handler`.
pub struct TestNode<H = EchoHandler> {
    pub identity: Identity,
    pub manager: NodeConnectionManager,
    pub handler: Arc<H>,
    pub addr: SocketAddr,
    pub cancel: CancellationToken,
}

impl TestNode {
    pub fn start(config: TransportConfig) -> Self {
        Self::start_with(Identity::generate(), config)
    }

    pub fn start_with(identity: Identity, config: TransportConfig) -> Self {
        TestNode::bind(identity, config, EchoHandler::default())
    }

    pub fn streams_served(&self) -> usize {
        self.handler.streams.load(Ordering::SeqCst)
    }
}

impl<H: StreamHandler> TestNode<H> {
    /// A node with default settings whose streams go to `handler`.
    pub fn serving(handler: H) -> Self {
        Self::bind(Identity::generate(), TransportConfig::default(), handler)
    }

    fn bind(identity: Identity, config: TransportConfig, handler: H) -> Self {
        let handler = Arc::new(handler);
        let cancel = CancellationToken::new();
        let manager = NodeConnectionManager::bind(
            &identity,
            LOCALHOST,
            config,
            handler.clone(),
            cancel.clone(),
        )
        .expect("bind");
        let addr = manager.local_addr().expect("local addr");
        Self {
            identity,
            manager,
            handler,
            addr,
            cancel,
        }
    }

    pub fn id(&self) -> NodeId {
        self.identity.node_id()
    }
}

/// Sends `payload` on a new stream of `manager`'s connection to `peer` and
/// returns what came back.
pub async fn echo(
    manager: &NodeConnectionManager,
    peer: &TestNode,
    payload: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let conn = manager.get_or_connect(peer.id(), &[peer.addr]).await?;
    let (mut send, mut recv, _guard) = conn.open_stream().await?;
    send.write_all(payload).await?;
    send.finish()?;
    Ok(recv.read_to_end(1 << 20).await?)
}

/// Polls `condition` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, work).await.expect("timed out")
}
