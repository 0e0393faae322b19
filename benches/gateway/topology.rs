//! The bench's parts, each on its own thread: daemon A (node and gateway),
//! daemon B (node and gateway exposing agent B's service), and agent B's
//! plain gRPC server on a Unix socket and loopback TCP.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::Duration;

use peerd::rpc::RpcConfig;
use peerd::{Identity, Node, NodeId};
use peerd_daemon::gateway::{ExposeSettings, Gateway, GatewaySettings};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::agent;

const LOCALHOST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Where the running parts are reached.
pub struct Topology {
    /// Daemon A's gateway socket, which agent A calls.
    pub gateway_a: PathBuf,
    pub node_b: NodeId,
    pub node_b_addr: SocketAddr,
    /// Agent B's TCP listener, for the direct calls.
    pub agent_b: SocketAddr,
    /// Stopped in order: the daemons before the agent they forward to.
    parts: Vec<Part>,
    _dir: tempfile::TempDir,
}

impl Topology {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let agent_socket = dir.path().join("agent-b.sock");
        let (agent_part, agent_b) = Part::spawn("agent-b", {
            let socket = agent_socket.clone();
            move |ready, stop| agent_b(socket, ready, stop)
        });
        let expose = vec![ExposeSettings {
            service: agent::SERVICE.into(),
            target: format!("unix:{}", agent_socket.display()),
            allow: vec!["*".into()],
        }];
        let gateway_b = dir.path().join("gateway-b.sock");
        let (b_part, (node_b, node_b_addr)) = Part::spawn("daemon-b", move |ready, stop| {
            daemon(None, expose, gateway_b, ready, stop)
        });
        let gateway_a = dir.path().join("gateway-a.sock");
        let (a_part, _) = Part::spawn("daemon-a", {
            let socket = gateway_a.clone();
            let known = Some((node_b, node_b_addr));
            move |ready, stop| daemon(known, Vec::new(), socket, ready, stop)
        });
        Self {
            gateway_a,
            node_b,
            node_b_addr,
            agent_b,
            parts: vec![a_part, b_part, agent_part],
            _dir: dir,
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.parts.drain(..).for_each(Part::stop);
    }
}

/// A one-thread runtime, as each part and the caller run on.
pub fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A thread running one part until told to stop.
struct Part {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Part {
    /// Starts `part` on a new thread and waits for what it reports ready.
    fn spawn<T, F, Fut>(name: &str, part: F) -> (Self, T)
    where
        T: Send + 'static,
        F: FnOnce(SyncSender<T>, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || one_thread_runtime().block_on(part(ready, stopped)))
            .expect("a thread");
        let reported = started.recv().expect("the part started");
        (Self { stop, thread }, reported)
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("a part panicked");
    }
}

async fn agent_b(socket: PathBuf, ready: SyncSender<SocketAddr>, stop: oneshot::Receiver<()>) {
    let unix = UnixListener::bind(&socket).expect("agent B's socket");
    let tcp = TcpListener::bind(LOCALHOST).await.expect("agent B's port");
    ready.send(tcp.local_addr().unwrap()).unwrap();
    agent::serve(unix, tcp, stop).await;
}

/// A node and its gateway, wired as `peerd run` wires them; `known` is a
/// peer's address, as a peer book entry would give it.
async fn daemon(
    known: Option<(NodeId, SocketAddr)>,
    expose: Vec<ExposeSettings>,
    socket: PathBuf,
    ready: SyncSender<(NodeId, SocketAddr)>,
    stop: oneshot::Receiver<()>,
) {
    let settings = GatewaySettings {
        expose,
        ..GatewaySettings::default()
    };
    let gateway = Gateway::new(&settings, &RpcConfig::default());
    let node = Node::builder(Identity::generate())
        .listen(LOCALHOST)
        .fallback(gateway.inbound().handler())
        .bind()
        .expect("a node");
    if let Some((id, addr)) = known {
        node.addresses().add(id, addr);
    }
    let cancel = CancellationToken::new();
    let started = gateway
        .start(
            node.clone(),
            &socket,
            vec![node.local_addr()],
            cancel.clone(),
        )
        .await
        .expect("a gateway");
    let serving = tokio::spawn(started.serving);
    ready.send((node.id(), node.local_addr())).unwrap();
    let _ = stop.await;
    cancel.cancel();
    node.shutdown(Duration::ZERO).await;
    serving.await.expect("the gateway stopped");
}
