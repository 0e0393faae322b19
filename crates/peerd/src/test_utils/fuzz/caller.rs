//! The caller-side RPC target: a node's `RpcClient` makes one call of any
//! pattern to a callee that answers by a script of frames, finishes, resets
//! and stops. Whatever the script, the call ends by its deadline, the
//! caller's stream accounting settles, the connection is the same one, and a
//! normal call succeeds afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::RECOVERY;
use super::callee::ScriptedCallee;
use super::script::{self, Pattern};
use crate::connection::{NodeConnection, NodeConnectionManager, TransportConfig};
use crate::node_service::proto::{PingRequest, PingResponse};
use crate::rpc::{RpcClient, RpcConfig, StreamingCall};
use crate::{CallOptions, Identity, Node, NodeId, Status};

/// The deadline of the scripted call.
const CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// A call still running this long after its deadline hangs.
const HANG_MARGIN: Duration = Duration::from_secs(1);
/// The caller's message limit: a script's raw bytes can exceed it.
const MAX_MESSAGE: u32 = 64;
/// Streams the callee lets the caller have open at once: streams the
/// caller's side never let go of would soon leave the normal call none.
const CALLEE_STREAMS: u32 = 4;

type Call = StreamingCall<PingRequest, PingResponse>;

/// A caller node and a scripted callee on loopback, kept across inputs: a
/// fuzz run makes one.
pub struct CallerRig {
    runtime: tokio::runtime::Runtime,
    caller: Node,
    callee: Arc<ScriptedCallee>,
    callee_manager: NodeConnectionManager,
}

impl Default for CallerRig {
    fn default() -> Self {
        Self::new()
    }
}

impl CallerRig {
    /// Binds the caller and the callee on 127.0.0.1 on a runtime of its own
    /// (one worker thread). Panics if they cannot bind: the rig cannot run
    /// without them.
    pub fn new() -> Self {
        let runtime = super::rig_runtime();
        let callee = Arc::new(ScriptedCallee::default());
        let (caller, callee_manager) = runtime.block_on(async {
            let callee_manager = bind_callee(callee.clone());
            let caller = bind_caller();
            let callee_addr = callee_manager.local_addr().expect("the callee's address");
            caller
                .addresses()
                .add(callee_manager.node_id(), callee_addr);
            (caller, callee_manager)
        });
        Self {
            runtime,
            caller,
            callee,
            callee_manager,
        }
    }

    /// Makes the call in `data` against the answer in it, then checks the
    /// caller recovered.
    pub fn run(&self, data: &[u8]) {
        let script = script::parse(data);
        self.runtime.block_on(async {
            let connection = self.connection().await;
            self.callee.install(Some(script.answer.into()));
            let within = CALL_TIMEOUT + HANG_MARGIN;
            let called = make_call(
                self.caller.client(),
                self.callee_id(),
                script.pattern,
                script.requests,
            );
            // Any outcome is fine; only hanging (or panicking) is not.
            if tokio::time::timeout(within, called).await.is_err() {
                panic!("a {:?} call still runs after {within:?}", script.pattern);
            }
            self.callee.install(None);
            self.check_settled(&connection).await;
            self.check_recovered(&connection).await;
        });
    }

    fn callee_id(&self) -> NodeId {
        self.callee_manager.node_id()
    }

    async fn connection(&self) -> NodeConnection {
        let addr = self
            .callee_manager
            .local_addr()
            .expect("the callee's address");
        super::connect(&self.caller, self.callee_id(), addr).await
    }

    /// Waits for the callee's handlers, so inputs do not overlap; then the
    /// caller must count no stream of `connection` as busy and no call as in
    /// flight.
    async fn check_settled(&self, connection: &NodeConnection) {
        if tokio::time::timeout(RECOVERY, self.callee.idle())
            .await
            .is_err()
        {
            panic!("the callee's handlers still run after {RECOVERY:?}");
        }
        let calls = self.caller.client().call_stats();
        if !super::settles(|| connection.active_streams() == 0 && calls.in_flight() == 0).await {
            panic!(
                "{} streams still busy, {} calls in flight",
                connection.active_streams(),
                calls.in_flight()
            );
        }
    }

    /// A normal call gets the right answer, over the same connection.
    async fn check_recovered(&self, connection: &NodeConnection) {
        super::check_serves_again(&self.caller, self.callee_id(), connection).await;
    }
}

fn bind_callee(callee: Arc<ScriptedCallee>) -> NodeConnectionManager {
    let transport = TransportConfig {
        max_concurrent_streams: CALLEE_STREAMS,
        ..TransportConfig::default()
    };
    NodeConnectionManager::bind(
        &Identity::generate(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        transport,
        callee,
        CancellationToken::new(),
    )
    .expect("bind the callee on loopback")
}

fn bind_caller() -> Node {
    let rpc = RpcConfig {
        max_message_size: MAX_MESSAGE,
        ..RpcConfig::default()
    };
    Node::builder(Identity::generate())
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .rpc(rpc)
        .bind()
        .expect("bind the caller on loopback")
}

/// One call of `pattern`, to its end however it ends.
async fn make_call(
    client: &RpcClient,
    node: NodeId,
    pattern: Pattern,
    requests: u8,
) -> Result<(), Status> {
    let options = CallOptions::default().with_timeout(CALL_TIMEOUT);
    let method = pattern.method();
    let request = PingRequest { nonce: 1 };
    match pattern {
        Pattern::Unary => client
            .unary::<_, PingResponse>(node, method, &request, &options)
            .await
            .map(drop),
        Pattern::ServerStreaming => {
            let mut call: Call = client
                .server_streaming(node, method, &request, &options)
                .await?;
            read_to_end(&mut call).await
        }
        Pattern::ClientStreaming => {
            let mut call: Call = client.client_streaming(node, method, &options).await?;
            send_requests(&mut call, requests).await?;
            call.response().await.map(drop)
        }
        Pattern::Bidi => {
            let mut call: Call = client.bidi_streaming(node, method, &options).await?;
            converse(&mut call, requests).await
        }
    }
}

async fn send_requests(call: &mut Call, requests: u8) -> Result<(), Status> {
    for nonce in 0..requests {
        call.send(&PingRequest {
            nonce: nonce.into(),
        })
        .await?;
    }
    Ok(())
}

async fn read_to_end(call: &mut Call) -> Result<(), Status> {
    while call.message().await?.is_some() {}
    Ok(())
}

/// Sends each request once the previous one was answered, then the end of
/// the requests, and reads the rest of the answer.
async fn converse(call: &mut Call, requests: u8) -> Result<(), Status> {
    for nonce in 0..requests {
        call.send(&PingRequest {
            nonce: nonce.into(),
        })
        .await?;
        if call.message().await?.is_none() {
            return Ok(());
        }
    }
    call.close_send()?;
    read_to_end(call).await
}
