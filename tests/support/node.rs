//! Library level: `Node`s on loopback serving the probe service, which
//! reports what its handlers do, and the calls and dials the hardening
//! tests make to them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerd::connection::TransportConfig;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::{ResponseSink, RpcConfig};
use peerd::test_utils::{Faults, FaultySocket};
use peerd::{CallOptions, Handlers, Identity, Node, NodeId, Status};
use tokio::sync::watch;

use super::localhost;

/// A node with default settings on 127.0.0.1, serving only the built-in
/// node service.
pub fn bind_node() -> Node {
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .expect("bind")
}

/// What the probe service's handlers report.
#[derive(Debug)]
pub struct Probe {
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    per_caller: Mutex<HashMap<NodeId, (usize, usize)>>,
    release: watch::Sender<bool>,
    /// Bytes `Flood` handlers managed to queue.
    pub flooded: AtomicU64,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            per_caller: Mutex::default(),
            release: watch::channel(false).0,
            flooded: AtomicU64::new(0),
        }
    }
}

impl Probe {
    /// Lets every `Hold` handler, running or to come, finish.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most `Hold` handlers one caller ever had running at once.
    pub fn max_running_per_caller(&self) -> usize {
        let per_caller = self.per_caller.lock().unwrap();
        per_caller.values().map(|(_, max)| *max).max().unwrap_or(0)
    }

    /// `Hold` handlers running now, per caller.
    pub fn running_per_caller(&self) -> HashMap<NodeId, usize> {
        let per_caller = self.per_caller.lock().unwrap();
        per_caller
            .iter()
            .map(|(id, (now, _))| (*id, *now))
            .collect()
    }

    fn enter(&self, caller: NodeId) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let mut per_caller = self.per_caller.lock().unwrap();
        let (running, max) = per_caller.entry(caller).or_default();
        *running += 1;
        *max = (*max).max(*running);
    }

    fn leave(&self, caller: NodeId) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.per_caller.lock().unwrap().get_mut(&caller).unwrap().0 -= 1;
    }
}

/// Counts a running handler until dropped, however the handler ends.
struct Running(Arc<Probe>, NodeId);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.leave(self.1);
    }
}

/// `test.v1.Probe`: `Hold` runs until the probe releases it; `Flood` streams
/// 16 KiB messages for as long as the caller takes them.
pub fn probe_service(probe: Arc<Probe>) -> Handlers {
    let (hold, flood) = (probe.clone(), probe);
    Handlers::new("test.v1.Probe")
        .unary(
            "Hold",
            move |context: peerd::CallContext, _: EchoRequest| {
                let probe = hold.clone();
                async move {
                    probe.enter(context.caller());
                    let _running = Running(probe.clone(), context.caller());
                    let mut released = probe.release.subscribe();
                    let _ = released.wait_for(|r| *r).await;
                    Ok(EchoResponse::default())
                }
            },
        )
        .server_streaming(
            "Flood",
            move |_, _: EchoRequest, mut sink: ResponseSink<EchoResponse>| {
                let probe = flood.clone();
                async move {
                    let message = EchoResponse {
                        payload: vec![7; 16 * 1024].into(),
                    };
                    loop {
                        sink.send(&message).await?;
                        probe.flooded.fetch_add(16 * 1024, Ordering::SeqCst);
                    }
                }
            },
        )
}

/// A node on `addr` serving the probe service beside the built-in one.
pub fn node_on(
    addr: SocketAddr,
    transport: TransportConfig,
    rpc: RpcConfig,
    probe: Arc<Probe>,
) -> Node {
    Node::builder(Identity::generate())
        .listen(addr)
        .transport(transport)
        .rpc(rpc)
        .serve(probe_service(probe))
        .bind()
        .expect("bind")
}

/// The built-in `Echo` RPC with a 64-byte payload from `from` to `to`,
/// within `timeout`: a legitimate peer's call.
pub async fn echo_call(from: &Node, to: NodeId, timeout: Duration) -> Result<EchoResponse, Status> {
    let request = EchoRequest {
        payload: vec![1; 64].into(),
        ..Default::default()
    };
    let options = CallOptions::default().with_timeout(timeout);
    from.client()
        .unary(to, peerd::node_service::ECHO, &request, &options)
        .await
}

/// Resident memory of this process.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Starts a dial from `from` whose socket hears nothing back: its handshake
/// stays pending on `to` until the handshake timeout, like one from a
/// spoofed address.
pub fn stalled_dial(from: SocketAddr, to: &Node) -> tokio::task::JoinHandle<()> {
    stalled_dial_to(from, to.id(), to.local_addr())
}

/// `stalled_dial` towards node `id` at `addr` (a daemon, say).
pub fn stalled_dial_to(
    from: SocketAddr,
    id: NodeId,
    addr: SocketAddr,
) -> tokio::task::JoinHandle<()> {
    let deaf = Faults {
        loss: 1.0,
        ..Faults::default()
    };
    let socket = FaultySocket::bind(from, deaf, 1).expect("bind");
    let client = Node::builder(Identity::generate())
        .socket(socket)
        .bind()
        .expect("bind");
    tokio::spawn(async move {
        let _ = client.manager().get_or_connect(id, &[addr]).await;
    })
}
