//! Connection-manager level: a `NodeConnectionManager` on loopback whose
//! peers' streams go to a raw stream handler (no RPC), and raw-stream
//! round trips to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use peerd::connection::{IncomingStream, NodeConnectionManager, StreamHandler, TransportConfig};
use peerd::identity::{Identity, NodeId};
use tokio_util::sync::CancellationToken;

use super::localhost;

/// Echoes every raw stream back byte for byte and counts how many it served.
#[derive(Debug, Default)]
pub struct RawEcho {
    pub streams: AtomicUsize,
}

impl StreamHandler for RawEcho {
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
pub struct ManagerNode<H = RawEcho> {
    pub identity: Identity,
    pub manager: NodeConnectionManager,
    pub handler: Arc<H>,
    pub addr: SocketAddr,
    pub cancel: CancellationToken,
}

impl ManagerNode {
    /// A node with `config` that echoes raw streams.
    pub fn start(config: TransportConfig) -> Self {
        Self::bind(config, RawEcho::default())
    }

    /// How many raw streams its `RawEcho` served.
    pub fn streams_served(&self) -> usize {
        self.handler.streams.load(Ordering::SeqCst)
    }
}

impl<H: StreamHandler> ManagerNode<H> {
    /// A node with default settings whose streams go to `handler`.
    pub fn serving(handler: H) -> Self {
        Self::bind(TransportConfig::default(), handler)
    }

    fn bind(config: TransportConfig, handler: H) -> Self {
        let identity = Identity::generate();
        let handler = Arc::new(handler);
        let cancel = CancellationToken::new();
        let manager = NodeConnectionManager::bind(
            &identity,
            localhost(1),
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

/// Sends `payload` on a new raw stream of `manager`'s connection to `peer`
/// and returns what came back.
pub async fn raw_echo(
    manager: &NodeConnectionManager,
    peer: &ManagerNode,
    payload: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let conn = manager.get_or_connect(peer.id(), &[peer.addr]).await?;
    let (mut send, mut recv, _guard) = conn.open_stream().await?;
    send.write_all(payload).await?;
    send.finish()?;
    Ok(recv.read_to_end(1 << 20).await?)
}
