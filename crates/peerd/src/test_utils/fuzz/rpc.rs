//! The stateful RPC target: a caller runs a program of frame, finish, reset
//! and stop operations on raw streams of a live connection to a callee node.
//! Whatever the program does, afterwards every handler has ended, the
//! connection is the same one, and a normal call succeeds.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use prost::Message;

use super::ops::{self, METHODS, Op, STREAMS, StreamOp};
use crate::connection::{NodeConnection, TransportConfig};
use crate::node_service::proto::{PingRequest, PingResponse};
use crate::rpc::wire::codec::{FrameType, put_frame, put_message_frame};
use crate::rpc::wire::proto::RequestHeader;
use crate::rpc::{Handlers, RequestStream, ResponseSink, RpcConfig};
use crate::{Identity, Node};

/// How long a read operation waits for the callee.
const READ_WAIT: Duration = Duration::from_millis(2);
/// How long opening a stream may wait for the callee's stream credit.
const OPEN_WAIT: Duration = Duration::from_millis(5);

type Streams = Vec<Option<(quinn::SendStream, quinn::RecvStream)>>;

/// Two nodes on loopback, kept across inputs: a fuzz run makes one.
pub struct RpcRig {
    runtime: tokio::runtime::Runtime,
    caller: Node,
    callee: Node,
}

impl Default for RpcRig {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcRig {
    /// Binds both nodes on 127.0.0.1 on a runtime of its own (one worker
    /// thread). Panics if they cannot bind: the rig cannot run without them.
    pub fn new() -> Self {
        let runtime = super::rig_runtime();
        let (caller, callee) = runtime.block_on(async {
            let caller = node(Handlers::new("fuzz.v1.Caller"));
            let callee = node(patterns());
            caller.addresses().add(callee.id(), callee.local_addr());
            (caller, callee)
        });
        Self {
            runtime,
            caller,
            callee,
        }
    }

    /// Runs the program in `data`, then checks the callee recovered.
    pub fn run(&self, data: &[u8]) {
        let program = ops::parse(data);
        self.runtime.block_on(async {
            let connection = self.connection().await;
            let mut streams: Streams = (0..STREAMS).map(|_| None).collect();
            for op in program {
                apply(op, &connection, &mut streams).await;
            }
            drop(streams);
            self.check_recovered(&connection).await;
        });
    }

    async fn connection(&self) -> NodeConnection {
        super::connect(&self.caller, self.callee.id(), self.callee.local_addr()).await
    }

    async fn check_recovered(&self, connection: &NodeConnection) {
        let server = self.callee.server();
        if !super::settles(|| server.in_flight() == 0).await {
            panic!("{} handlers still running", server.in_flight());
        }
        super::check_serves_again(&self.caller, self.callee.id(), connection).await;
    }
}

fn node(service: Handlers) -> Node {
    let transport = TransportConfig {
        max_concurrent_streams: STREAMS as u32,
        ..TransportConfig::default()
    };
    let rpc = RpcConfig {
        max_message_size: 1024,
        header_timeout: Duration::from_millis(100),
        default_deadline: Duration::from_millis(500),
        max_handlers: 2,
        ..RpcConfig::default()
    };
    Node::builder(Identity::generate())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .transport(transport)
        .rpc(rpc)
        .serve(service)
        .bind()
        .expect("bind on loopback")
}

/// One method of each streaming pattern.
fn patterns() -> Handlers {
    Handlers::new("fuzz.v1.Patterns")
        .server_streaming(
            "Count",
            |_, request: PingRequest, mut sink: ResponseSink<PingResponse>| async move {
                for nonce in 0..request.nonce.min(64) {
                    sink.send(&PingResponse {
                        nonce,
                        unix_micros: 0,
                    })
                    .await?;
                }
                Ok(())
            },
        )
        .client_streaming(
            "Sum",
            |_, mut requests: RequestStream<PingRequest>| async move {
                let mut nonce = 0u64;
                while let Some(request) = requests.message().await? {
                    nonce = nonce.wrapping_add(request.nonce);
                }
                Ok(PingResponse {
                    nonce,
                    unix_micros: 0,
                })
            },
        )
        .bidi_streaming(
            "Double",
            |_, mut requests: RequestStream<PingRequest>, mut sink: ResponseSink<PingResponse>| async move {
                while let Some(request) = requests.message().await? {
                    let nonce = request.nonce.wrapping_mul(2);
                    sink.send(&PingResponse { nonce, unix_micros: 0 }).await?;
                }
                Ok(())
            },
        )
}

async fn apply(op: Op, connection: &NodeConnection, streams: &mut Streams) {
    let (slot, op) = match op {
        Op::Open => return open(connection, streams).await,
        Op::On(slot, op) => (slot, op),
    };
    let Some((send, recv)) = streams[slot].as_mut() else {
        return;
    };
    // Errors are expected: the callee may have answered, stopped or reset.
    match op {
        StreamOp::Header { method, timeout_ms } => {
            let _ = send.write_all(&header(METHODS[method], timeout_ms)).await;
        }
        StreamOp::Message { nonce } => {
            let _ = send.write_all(&message(nonce)).await;
        }
        StreamOp::Raw(bytes) => {
            let _ = send.write_all(&bytes).await;
        }
        StreamOp::Finish => {
            let _ = send.finish();
        }
        StreamOp::Reset(code) => {
            let _ = send.reset(code.into());
        }
        StreamOp::Stop(code) => {
            let _ = recv.stop(code.into());
        }
        StreamOp::Read => {
            let _ = tokio::time::timeout(READ_WAIT, recv.read_chunk(4096, true)).await;
        }
    }
}

async fn open(connection: &NodeConnection, streams: &mut Streams) {
    let Some(free) = streams.iter_mut().find(|s| s.is_none()) else {
        return;
    };
    if let Ok(Ok(pair)) = tokio::time::timeout(OPEN_WAIT, connection.quic().open_bi()).await {
        *free = Some(pair);
    }
}

fn header(method: &str, timeout_ms: u8) -> BytesMut {
    let header = RequestHeader {
        method: method.into(),
        timeout_micros: u64::from(timeout_ms) * 1000,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, &header);
    out
}

fn message(nonce: u8) -> BytesMut {
    let request = PingRequest {
        nonce: nonce.into(),
    };
    let mut out = BytesMut::new();
    put_frame(&mut out, FrameType::Message, &request.encode_to_vec());
    out
}
