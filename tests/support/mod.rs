//! Helpers of the hardening tests (limits, faults, abuse): nodes with a
//! probe service that reports what its handlers do, and raw-stream calls.
#![allow(dead_code)]

pub mod daemon;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use peerd::connection::TransportConfig;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::wire::codec::{FrameDecoder, FrameType, Unframed, put_message_frame};
use peerd::rpc::wire::proto::RequestHeader;
use peerd::rpc::{ResponseSink, RpcConfig};
use peerd::test_utils::{Faults, FaultySocket};
use peerd::{CallOptions, Code, Handlers, Identity, Node, NodeId, Status};
use tokio::sync::watch;

pub const SECOND: Duration = Duration::from_secs(1);

pub fn localhost(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 0))
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

pub async fn echo(from: &Node, to: NodeId, timeout: Duration) -> Result<EchoResponse, Status> {
    let request = EchoRequest {
        payload: vec![1; 64].into(),
        ..Default::default()
    };
    let options = CallOptions::default().with_timeout(timeout);
    from.client()
        .unary(to, peerd::node_service::ECHO, &request, &options)
        .await
}

pub fn header(method: &str) -> BytesMut {
    let header = RequestHeader {
        method: method.into(),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, &header);
    out
}

/// The status frame in a callee's answer.
pub fn status_of(answer: &[u8]) -> Option<Status> {
    let mut buffer = Unframed::default();
    buffer.push(Bytes::copy_from_slice(answer));
    let decoder = FrameDecoder::new(1 << 20);
    while let Ok(Some(frame)) = decoder.decode(&mut buffer) {
        if frame.kind == FrameType::Status {
            let status: peerd::rpc::wire::proto::Status =
                prost::Message::decode(frame.payload).ok()?;
            return Some(Status::new(Code::from_u32(status.code), status.message));
        }
    }
    None
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

/// Polls `condition` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// Starts a dial from `from` whose socket hears nothing back: its handshake
/// stays pending on `to` until the handshake timeout, like one from a
/// spoofed address.
pub fn stalled_dial(from: SocketAddr, to: &Node) -> tokio::task::JoinHandle<()> {
    let deaf = Faults {
        loss: 1.0,
        ..Faults::default()
    };
    let socket = FaultySocket::bind(from, deaf, 1).expect("bind");
    let client = Node::builder(Identity::generate())
        .socket(socket)
        .bind()
        .expect("bind");
    let (id, addr) = (to.id(), to.local_addr());
    tokio::spawn(async move {
        let _ = client.manager().get_or_connect(id, &[addr]).await;
    })
}

pub async fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, work).await.expect("timed out")
}
