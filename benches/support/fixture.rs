//! The setup of the reference figures: the server on its own OS thread with a
//! one-thread runtime, the client on criterion's thread with another; both
//! sides of each pair talk over loopback to the same server thread.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use peerd::{Identity, Node, NodeId};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::raw::{self, Dialer, Work};
use super::{LOCALHOST, one_thread_runtime, rpc};

/// Where the server thread's endpoints listen.
#[derive(Debug, Clone, Copy)]
pub struct ServerAddrs {
    pub node: NodeId,
    pub node_addr: SocketAddr,
    /// The raw endpoints' identity.
    pub raw: NodeId,
    pub raw_echo: SocketAddr,
    pub raw_bulk: SocketAddr,
}

/// A peerd node (built-in `Echo` plus the bench service) and two raw quinn
/// endpoints (echo, bulk), all served by one thread.
struct ServerThread {
    addrs: ServerAddrs,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    fn start() -> Self {
        let (ready, addrs) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || one_thread_runtime().block_on(serve_until(stopped, ready)))
            .unwrap();
        Self {
            addrs: addrs.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

async fn serve_until(stopped: oneshot::Receiver<()>, ready: std::sync::mpsc::Sender<ServerAddrs>) {
    let node = Node::builder(Identity::generate())
        .listen(LOCALHOST)
        .serve(rpc::bench_service())
        .bind()
        .unwrap();
    let raw_identity = Identity::generate();
    let raw_echo = raw::serve(&raw_identity, Work::Echo);
    let raw_bulk = raw::serve(&raw_identity, Work::Bulk);
    ready
        .send(ServerAddrs {
            node: node.id(),
            node_addr: node.local_addr(),
            raw: raw_identity.node_id(),
            raw_echo: raw_echo.local_addr().unwrap(),
            raw_bulk: raw_bulk.local_addr().unwrap(),
        })
        .unwrap();
    let _ = stopped.await;
    node.shutdown(Duration::ZERO).await;
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// The client side: `connections` peerd nodes and as many raw quinn
/// connections, each on its own UDP socket, all already connected.
pub struct Fixture {
    pub server: ServerAddrs,
    pub nodes: Vec<Node>,
    pub dialers: Vec<Dialer>,
    pub raw_echo: Vec<quinn::Connection>,
    _server_thread: ServerThread,
    // Last: the endpoints above are dropped while their runtime still exists.
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn start(connections: usize) -> Self {
        let server_thread = ServerThread::start();
        let server = server_thread.addrs;
        let runtime = one_thread_runtime();
        let (nodes, dialers, raw_echo) = runtime.block_on(async {
            let nodes: Vec<_> = (0..connections).map(|_| client_node(&server)).collect();
            let dialers: Vec<_> = (0..connections).map(|_| Dialer::new()).collect();
            let mut raw_echo = Vec::new();
            for (node, dialer) in nodes.iter().zip(&dialers) {
                // The first call dials; the benches measure warm connections.
                rpc::echo(node.client(), server.node, &Default::default()).await;
                raw_echo.push(dialer.connect(server.raw, server.raw_echo).await);
            }
            (nodes, dialers, raw_echo)
        });
        Self {
            server,
            nodes,
            dialers,
            raw_echo,
            _server_thread: server_thread,
            runtime,
        }
    }

    /// Runs `work` on the client's runtime, on the calling thread.
    pub fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }
}

fn client_node(server: &ServerAddrs) -> Node {
    // One identity per node: connections from one NodeId would be merged.
    let node = Node::builder(Identity::generate())
        .listen(LOCALHOST)
        .bind()
        .unwrap();
    node.addresses().add(server.node, server.node_addr);
    node
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.dialers.iter().for_each(Dialer::close);
        let nodes: Vec<_> = self.nodes.drain(..).collect();
        self.runtime.block_on(async move {
            let mut shutdowns = JoinSet::new();
            for node in nodes {
                shutdowns.spawn(async move { node.shutdown(Duration::ZERO).await });
            }
            shutdowns.join_all().await
        });
    }
}
