//! `RpcClient`: calls methods on other nodes by `NodeId`, over whatever
//! connection the manager has to them (dialing if there is none).

mod active;
mod streaming;
mod waiting;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use tokio::time::Instant;
use tokio_util::sync::DropGuard;

use super::context::deadline_after;
use super::status::CallError;
use super::wire::borrowed::RequestHeaderRef;
use super::wire::codec::FrameType;
use super::wire::outgoing::{Encode, OutFrames};
use super::{Code, RpcConfig, Status};
use crate::addressing::AddressBook;
use crate::connection::{ConnectError, NodeConnection, NodeConnectionManager};
use crate::identity::NodeId;
use crate::rpc::stats::CallStats;
use active::ActiveCall;
pub use streaming::{Encoded, RequestSender, StreamingCall};
use waiting::WaitingCalls;

/// Finds addresses of nodes the address book does not know (discovery's
/// iterative lookup, for a `Node`).
pub trait AddressResolver: Send + Sync + 'static {
    /// Addresses to dial `node` at, best first; empty if none are found.
    /// Asked only when a call has neither a connection nor an address for the
    /// node; the call's deadline bounds the wait.
    fn resolve(&self, node: NodeId) -> Pin<Box<dyn Future<Output = Vec<SocketAddr>> + Send>>;
}

/// Opens paths to nodes through relays, for a `Node`: its
/// [`crate::relay::Relays`].
pub trait Relayer: Send + Sync + 'static {
    /// A path to `node` through one of the relays it holds a reservation
    /// on, dialed instead of its addresses; `None` if it lists no relay or
    /// none opened a circuit.
    fn open(&self, node: NodeId) -> Pin<Box<dyn Future<Output = Option<RelayedPath>> + Send + '_>>;
}

/// A virtual address that reaches a node through a relay's circuit.
#[derive(Debug)]
pub struct RelayedPath {
    /// What to dial.
    pub addr: SocketAddr,
    /// Closes the circuit when dropped, unless disarmed: a dial that
    /// connected elsewhere leaves no circuit behind.
    pub hold: DropGuard,
}

/// Per-call settings.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// How long to wait for the whole call; the client's default if `None`.
    pub timeout: Option<Duration>,
    /// Key/value pairs for the handler.
    pub metadata: HashMap<String, String>,
    /// QUIC stream priority: higher goes first when the connection is busy.
    pub priority: i32,
    /// Where to dial if there is no connection; the address book otherwise.
    pub addrs: Vec<SocketAddr>,
    /// If the node cannot be reached, wait (until the deadline) for it to
    /// become reachable instead of failing at once with UNAVAILABLE.
    pub wait_for_ready: bool,
}

impl CallOptions {
    /// Sets [`CallOptions::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds one metadata pair, sent in the request header.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets [`CallOptions::priority`].
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Adds an address to [`CallOptions::addrs`].
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// Makes the call one for `agent`, an agent the called node hosts (a web
    /// page connected to it): the called node forwards it to the agent.
    pub fn for_hosted(self, agent: NodeId) -> Self {
        self.with_metadata(super::CALLEE, agent.to_string())
    }

    /// Sets [`CallOptions::wait_for_ready`].
    pub fn with_wait_for_ready(mut self) -> Self {
        self.wait_for_ready = true;
        self
    }
}

/// How often a waiting call retries the dial, at most: the node may also
/// come back by dialing us, which wakes the call at once.
const READY_RETRY_MAX: Duration = Duration::from_secs(2);

/// Calls methods of other nodes by [`NodeId`]: reuses the live connection to
/// the node, whoever dialled it, or dials one of its addresses. A cheap,
/// clonable handle; clones share the counters and the waiting calls.
#[derive(Clone)]
pub struct RpcClient {
    manager: NodeConnectionManager,
    addresses: AddressBook,
    config: RpcConfig,
    resolver: Option<Arc<dyn AddressResolver>>,
    relayer: Option<Arc<dyn Relayer>>,
    waiting: WaitingCalls,
    calls: Arc<CallStats>,
}

impl RpcClient {
    /// A client making its connections through `manager`, dialling addresses
    /// from `addresses`, with no resolver.
    pub fn new(manager: NodeConnectionManager, addresses: AddressBook, config: RpcConfig) -> Self {
        Self {
            manager,
            addresses,
            config,
            calls: Arc::new(CallStats::client()),
            resolver: None,
            relayer: None,
            waiting: WaitingCalls::default(),
        }
    }

    /// This client, asking `resolver` for the addresses of nodes the
    /// address book does not know.
    pub fn with_resolver(mut self, resolver: Arc<dyn AddressResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// This client, dialing nodes through `relayer`'s circuits too.
    pub fn with_relayer(mut self, relayer: Arc<dyn Relayer>) -> Self {
        self.relayer = Some(relayer);
        self
    }

    /// Counts and durations of the calls made, per method.
    pub fn call_stats(&self) -> &Arc<CallStats> {
        &self.calls
    }

    /// Calls a unary method: one request, one response.
    pub fn unary<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> impl Future<Output = Result<Resp, Status>> + Send
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        // Not an async fn: one layer fewer on every call's path.
        self.unary_then(node, method, request, options, |payload| {
            Resp::decode(payload).map_err(|e| Status::from(CallError::BadResponse(e)))
        })
    }

    /// Calls a unary method with a request already encoded as protobuf, and
    /// returns the response's bytes as they came: for gateways and tools
    /// that do not have the method's types.
    pub async fn unary_encoded(
        &self,
        node: NodeId,
        method: &str,
        request: &[u8],
        options: &CallOptions,
    ) -> Result<Bytes, Status> {
        self.unary_then(node, method, &EncodedRef(request), options, Ok)
            .await
    }

    async fn unary_then<T>(
        &self,
        node: NodeId,
        method: &str,
        request: &impl Encode,
        options: &CallOptions,
        answer: impl FnOnce(Bytes) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let record = self.calls.start_client_call(method, started);
        let timeout = self.timeout(options);
        let deadline = deadline_after(started, timeout);
        let call = async {
            let payload = self
                .unary_bytes(node, method, request, options, deadline, timeout)
                .await?;
            answer(payload)
        };
        let result = match tokio::time::timeout_at(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(deadline_exceeded(method, timeout)),
        };
        record.end(result.as_ref().map_or_else(Status::code, |_| Code::Ok));
        result
    }

    async fn unary_bytes(
        &self,
        node: NodeId,
        method: &str,
        request: &impl Encode,
        options: &CallOptions,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Bytes, Status> {
        let mut retried = false;
        let mut time_left = timeout;
        loop {
            let limit = self.config.max_message_size;
            let frames = request_frames(method, options, time_left, request, limit)?;
            // Not an async fn of its own: one layer fewer on every call's path.
            let answer = match self.open(node, options).await {
                Ok(mut call) => call.unary(frames).await,
                Err(e) => Err(e),
            };
            match answer {
                // The callee never saw the call: a drained duplicate closed, or
                // the callee restarted. A fresh or primary connection carries it.
                Err(e) if e.is_unseen() && !retried => {
                    retried = true;
                    time_left = deadline.saturating_duration_since(Instant::now());
                }
                Err(e) => return Err(e.into()),
                Ok(answer) => return answer,
            }
        }
    }

    /// Calls a server-streaming method: one request, then read responses with
    /// `StreamingCall::message`.
    pub async fn server_streaming<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> Result<StreamingCall<Req, Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.open_with_request(node, method, request, options).await
    }

    /// Calls a client-streaming method: send requests, then await
    /// `StreamingCall::response`.
    pub async fn client_streaming<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamingCall<Req, Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.bidi_streaming(node, method, options).await
    }

    /// Calls a bidirectional-streaming method: send and read in any order.
    pub async fn bidi_streaming<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamingCall<Req, Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.open_streaming(node, method, options).await
    }

    /// Calls a server-streaming method with a request already encoded;
    /// read the responses' bytes with `StreamingCall::message_encoded`.
    pub async fn server_streaming_encoded(
        &self,
        node: NodeId,
        method: &str,
        request: &[u8],
        options: &CallOptions,
    ) -> Result<StreamingCall<Encoded, Encoded>, Status> {
        self.open_with_request(node, method, &EncodedRef(request), options)
            .await
    }

    /// Calls a client-streaming method with encoded messages: send them
    /// with `StreamingCall::send_encoded`, close, then read the one answer.
    pub async fn client_streaming_encoded(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamingCall<Encoded, Encoded>, Status> {
        self.bidi_streaming_encoded(node, method, options).await
    }

    /// Calls a bidirectional-streaming method with encoded messages either
    /// way. Also serves a caller that does not know the method's pattern:
    /// every pattern is this one on the wire.
    pub async fn bidi_streaming_encoded(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamingCall<Encoded, Encoded>, Status> {
        self.open_streaming(node, method, options).await
    }

    /// A streaming call whose one request goes with its header, ending the
    /// request side.
    async fn open_with_request<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        request: &impl Encode,
        options: &CallOptions,
    ) -> Result<StreamingCall<Req, Resp>, Status> {
        let timeout = self.timeout(options);
        let deadline = deadline_after(Instant::now(), timeout);
        let limit = self.config.max_message_size;
        let frames = request_frames(method, options, timeout, request, limit)?;
        let request_done = true;
        self.start_streaming(node, method, options, deadline, frames, request_done)
            .await
    }

    /// A streaming call whose requests the caller sends after the header.
    async fn open_streaming<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamingCall<Req, Resp>, Status> {
        let timeout = self.timeout(options);
        let deadline = deadline_after(Instant::now(), timeout);
        let header = header_frame(method, options, timeout, 0);
        let request_done = false;
        self.start_streaming(node, method, options, deadline, header, request_done)
            .await
    }

    /// Opens the call's stream and sends its first frames (and the end of
    /// the request, if `request_done`), within the deadline.
    async fn start_streaming<Req, Resp>(
        &self,
        node: NodeId,
        method: &str,
        options: &CallOptions,
        deadline: Instant,
        first_frames: OutFrames,
        request_done: bool,
    ) -> Result<StreamingCall<Req, Resp>, Status> {
        let opening = async {
            let mut call = self.open(node, options).await?;
            match request_done {
                true => call.send_final(first_frames).await?,
                false => call.send(first_frames).await?,
            }
            Ok::<_, CallError>(call)
        };
        let record = self.calls.start_client_call(method, Instant::now());
        let failure = match tokio::time::timeout_at(deadline, opening).await {
            Ok(Ok(call)) => {
                let max_message = self.config.max_message_size;
                return Ok(StreamingCall::new(call, deadline, max_message, record));
            }
            Ok(Err(e)) => Status::from(e),
            Err(_) => deadline_exceeded(method, self.timeout(options)),
        };
        record.end(failure.code());
        Err(failure)
    }

    async fn open(&self, node: NodeId, options: &CallOptions) -> Result<ActiveCall, CallError> {
        // Usually there is a connection: the slow path (dial, wait for the
        // node) is boxed, so every call's future stays small.
        let connection = match self.manager.connection(node) {
            Some(connection) => connection,
            None => Box::pin(self.connection(node, options)).await?,
        };
        let (send, recv, guard) = connection.open_stream().await?;
        // Each setting takes quinn's connection lock; new streams start at 0.
        if options.priority != 0 {
            let _ = send.set_priority(options.priority);
        }
        Ok(ActiveCall::new(
            send,
            recv,
            guard,
            self.config.max_message_size,
        ))
    }

    async fn connection(
        &self,
        node: NodeId,
        options: &CallOptions,
    ) -> Result<NodeConnection, CallError> {
        if !options.wait_for_ready {
            return Ok(self.connect(node, options).await?);
        }
        let limit = self.config.max_waiting_calls_per_node;
        let _place = self
            .waiting
            .enter(node, limit)
            .ok_or(CallError::WaitQueueFull { node, limit })?;
        let mut events = self.manager.subscribe();
        let mut retry = Duration::from_millis(100);
        loop {
            match self.connect(node, options).await {
                Err(e) if e.is_transient() => {}
                result => return Ok(result?),
            }
            let reconnected = async {
                while let Ok(event) = events.recv().await {
                    if event.node == node {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(retry, reconnected).await;
            retry = (retry * 2).min(READY_RETRY_MAX);
        }
    }

    /// The connection a call to `node` would use: the live one, else a dial
    /// to `options.addrs`; else a circuit through a relay the node lists,
    /// or a dial to the address book's addresses, or (none known) the
    /// resolver's. A node that lists relays found itself unreachable, and
    /// a dial to its NAT's address would leave conntrack state there that
    /// spoils the hole punch to come (docs/nat.md).
    pub async fn connect(
        &self,
        node: NodeId,
        options: &CallOptions,
    ) -> Result<NodeConnection, ConnectError> {
        if let Some(connection) = self.manager.connection(node) {
            return Ok(connection);
        }
        if !options.addrs.is_empty() {
            return self.manager.get_or_connect(node, &options.addrs).await;
        }
        let mut addrs = self.addresses.get(node);
        if addrs.is_empty()
            && let Some(resolver) = &self.resolver
        {
            addrs = resolver.resolve(node).await;
        }
        let relayed = match &self.relayer {
            Some(relayer) => relayer.open(node).await,
            None => None,
        };
        if let Some(path) = &relayed {
            addrs = vec![path.addr];
        }
        let connection = self.manager.get_or_connect(node, &addrs).await?;
        if let Some(path) = relayed
            && connection.remote_address() == path.addr
        {
            path.hold.disarm();
        }
        Ok(connection)
    }

    fn timeout(&self, options: &CallOptions) -> Duration {
        options.timeout.unwrap_or(self.config.default_deadline)
    }
}

/// The request header's frame, with room after it for `room` more bytes (the
/// request's frame), so a call's first frames share one allocation.
/// `time_left` is the call's, as the caller read it when the call began (a
/// clock read fewer per call).
fn header_frame(
    method: &str,
    options: &CallOptions,
    time_left: Duration,
    room: usize,
) -> OutFrames {
    let micros = u64::try_from(time_left.as_micros()).unwrap_or(u64::MAX);
    let header = RequestHeaderRef {
        method,
        // At least 1 µs: 0 would mean "no timeout given".
        timeout_micros: micros.max(1),
        metadata: &options.metadata,
    };
    let mut frames = OutFrames::with_capacity(OutFrames::room_for(&header) + room);
    frames.put_message(FrameType::Header, &header);
    frames
}

/// The header and request frames of a call that sends one request; a
/// request over `max_message` is refused unsent.
fn request_frames(
    method: &str,
    options: &CallOptions,
    time_left: Duration,
    request: &impl Encode,
    max_message: u32,
) -> Result<OutFrames, CallError> {
    let len = request.encoded_len();
    check_size(len, max_message)?;
    let mut frames = header_frame(method, options, time_left, OutFrames::room_for_len(len));
    frames.put_message(FrameType::Message, request);
    Ok(frames)
}

/// Refuses a request message of `size` bytes over `limit` before it is
/// sent.
fn check_size(size: usize, limit: u32) -> Result<(), CallError> {
    match size > limit as usize {
        true => Err(CallError::RequestTooLarge { size, limit }),
        false => Ok(()),
    }
}

/// A message already encoded, written as it is.
struct EncodedRef<'a>(&'a [u8]);

impl Encode for EncodedRef<'_> {
    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        out.put_slice(self.0);
    }
}

fn deadline_exceeded(method: &str, timeout: Duration) -> Status {
    CallError::DeadlinePassed(format!("{method} did not complete within {timeout:?}")).into()
}
