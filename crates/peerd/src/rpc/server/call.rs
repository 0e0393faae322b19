//! Serving one call on one stream: header, routing, deadline, handler, status.

use std::borrow::Cow;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BufMut;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::either::Either;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::Shared;
use super::poll_once::poll_once;
use crate::connection::{IncomingStream, NodeConnection};
use crate::identity::NodeId;
use crate::identity::hosted::{self, HostedProof};
use crate::rpc::cancel::CallCancel;
use crate::rpc::context::deadline_after;
use crate::rpc::io::{FrameReader, write_and_finish, write_frames};
use crate::rpc::router::{BoxFuture, Method, Route, StreamingFn};
use crate::rpc::slots::{handler_slot, until_revoked};
use crate::rpc::status::CallError;
use crate::rpc::unary::UnaryCall;
use crate::rpc::wire::borrowed::{HeaderError, ReceivedHeader};
use crate::rpc::wire::codec::FrameType;
use crate::rpc::wire::outgoing::{OK_STATUS_FRAME, OutFrames};
use crate::rpc::{CallContext, Code, RpcConfig, Status};

/// Response frames a streaming handler may queue ahead of the stream.
const RESPONSE_QUEUE: usize = 16;

enum Ending {
    /// The handler wrote its answer and status.
    Answered,
    /// Send this status.
    Status(Status),
    /// The caller stopped reading: nobody to answer.
    CallerGone,
}

impl From<Result<(), Status>> for Ending {
    fn from(result: Result<(), Status>) -> Self {
        match result {
            Ok(()) => Ending::Answered,
            Err(status) => Ending::Status(status),
        }
    }
}

// Every call's future is allocated, so its size is kept down: functions that
// take large values return an `async move` block (an `async fn` keeps a
// second copy of each argument in its future), and waits that are seldom
// needed are boxed apart.

#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments"
)]
pub(super) fn serve(
    shared: Arc<Shared>,
    mut stream: IncomingStream,
    accepted: Instant,
) -> impl Future<Output = ()> {
    // The stream's parts are used where they were captured: moved into
    // locals, they would take room in the future a second time.
    async move {
        // Named, so the future captures the guard (it captures only the
        // fields it uses) and the stream counts as busy until the call ends.
        let _busy = &stream.guard;
        let mut record = shared.calls.start_server_call(accepted);
        let peer = stream.connection.remote_node_id();
        let send = &mut stream.send;
        let cancelled = CallCancel::default();
        let ending = {
            let mut reader = FrameReader::new(stream.recv, shared.config.max_message_size);
            let admitted = read_header(&shared, &mut reader, accepted)
                .await
                .and_then(|header| Ok((admit(&shared, &header, peer)?, header)));
            let ((route, caller), header) = match admitted {
                Ok(admitted) => admitted,
                Err(status) => return record.end(finish_with(send, &status, peer).await),
            };
            record.route(route.index);
            let caller_stopped = send.stopped();
            let deadline = deadline_after(accepted, call_timeout(&shared.config, &header));
            let route = &*route;
            let context = call_context(
                caller,
                &stream.connection,
                route,
                header,
                deadline,
                &cancelled,
            );
            // Boxed by the method: held in the call's future, its storage
            // would be kept through the header's wait too, adding hundreds of
            // bytes to every call's future.
            let handler = match &route.method {
                Method::Unary(method) => method.serve(UnaryCall {
                    slots: &shared.handler_slots,
                    context,
                    reader,
                    send,
                    request_by: deadline_after(accepted, shared.config.header_timeout),
                }),
                Method::Streaming(method) => {
                    Box::pin(serve_streaming(&shared, &**method, context, reader, send))
                }
            };
            let mut handler = traced(handler, caller.id, route);
            until_ended(&shared, Pin::new(&mut handler), caller_stopped, deadline).await
        };
        cancelled.cancel();
        let code = match ending {
            Ending::Answered => Code::Ok,
            Ending::Status(status) => finish_with(send, &status, peer).await,
            Ending::CallerGone => caller_gone(peer),
        };
        record.end(code);
    }
}

/// The route to the header's method and who calls, unless the call is
/// refused.
fn admit<'s>(
    shared: &'s Shared,
    header: &ReceivedHeader,
    peer: NodeId,
) -> Result<(Cow<'s, Route>, Caller), Status> {
    let Some(route) = super::route_for(&shared.router, header)? else {
        return Err(match header.method() {
            Ok(method) => Status::unimplemented(format!("unknown method {method:?}")),
            Err(e) => CallError::protocol(format!("malformed request header: {e}")).into(),
        });
    };
    let caller = Caller::of(header, peer)?;
    match shared.draining.load(Ordering::Acquire) {
        true => Err(Status::unavailable("the node is shutting down")),
        false => Ok((route, caller)),
    }
}

/// The authenticated caller: the connection's node, or the agent it hosts
/// whose proof its header carries (docs/protocol.md §11).
#[derive(Clone, Copy)]
struct Caller {
    id: NodeId,
    host: Option<NodeId>,
}

impl Caller {
    fn of(header: &ReceivedHeader, peer: NodeId) -> Result<Self, Status> {
        let Some(text) = header.metadata.get(hosted::METADATA_KEY) else {
            return Ok(Self {
                id: peer,
                host: None,
            });
        };
        let proof = HostedProof::from_metadata(text)
            .and_then(|proof| proof.verify(peer).map(|()| proof))?;
        Ok(Self {
            id: proof.agent,
            host: Some(peer),
        })
    }
}

fn call_context(
    caller: Caller,
    connection: &NodeConnection,
    route: &Route,
    header: ReceivedHeader,
    deadline: Instant,
    cancelled: &CallCancel,
) -> CallContext {
    CallContext {
        caller: caller.id,
        host: caller.host,
        caller_address: connection.remote_address(),
        deadline,
        method: route.name.clone(),
        metadata: header.metadata,
        // Not tied to the server's token: `until_ended` turns shutdown into
        // this cancel.
        cancelled: cancelled.clone(),
    }
}

/// `handler` in the call's span, if anything subscribes at debug level: if
/// not, entering a disabled span on every poll would only cost time.
fn traced<F: Future>(handler: F, caller: NodeId, route: &Route) -> Either<F, Instrumented<F>> {
    match tracing::enabled!(tracing::Level::DEBUG) {
        true => Either::Right(handler.instrument(call_span(caller, route))),
        false => Either::Left(handler),
    }
}

// Apart from the call's path, like `caller_gone`: inlined, a span's or an
// event's code sits among the instructions every call runs, and takes room
// in the instruction cache that they need.
#[inline(never)]
fn call_span(caller: NodeId, route: &Route) -> tracing::Span {
    // `?` formats the id lazily (its Debug is the short form).
    tracing::debug_span!("call", caller = ?caller, method = &*route.name)
}

#[cold]
fn caller_gone(caller: NodeId) -> Code {
    tracing::debug!(caller = ?caller, "caller cancelled the call");
    Code::Cancelled
}

/// Runs the handler until it answers, the caller leaves, the deadline
/// passes, or the node shuts down.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments"
)]
fn until_ended<'a>(
    shared: &'a Shared,
    mut handler: Pin<&'a mut impl Future<Output = Result<(), Status>>>,
    caller_stopped: impl Future<Output = Result<Option<quinn::VarInt>, quinn::StoppedError>> + 'a,
    deadline: Instant,
) -> impl Future<Output = Ending> + 'a {
    async move {
        // A handler that answers at once never needs the other waits (each
        // a lock, an allocation or a timer entry): they are armed, in their
        // own box so they do not grow every call's future, only if it waits.
        match poll_once(handler.as_mut()).await {
            Some(result) => Ending::from(result),
            None => Box::pin(wait_for_ending(shared, handler, caller_stopped, deadline)).await,
        }
    }
}

async fn wait_for_ending(
    shared: &Shared,
    handler: Pin<&mut impl Future<Output = Result<(), Status>>>,
    caller_stopped: impl Future<Output = Result<Option<quinn::VarInt>, quinn::StoppedError>>,
    deadline: Instant,
) -> Ending {
    tokio::select! {
        biased;
        result = handler => Ending::from(result),
        stopped = caller_stopped => match stopped {
            Ok(Some(_)) | Err(_) => Ending::CallerGone,
            Ok(None) => Ending::Answered,
        },
        () = tokio::time::sleep_until(deadline) => Ending::Status(
            Status::deadline_exceeded("the call's deadline passed in the handler"),
        ),
        () = shared.cancel.cancelled() => {
            Ending::Status(Status::unavailable("the node is shutting down"))
        }
    }
}

async fn read_header(
    shared: &Shared,
    reader: &mut FrameReader,
    accepted: Instant,
) -> Result<ReceivedHeader, Status> {
    let limit = shared.config.header_timeout;
    let mut read = pin!(reader.next_of(FrameType::Header));
    // The header usually arrived with the stream: then no timer is armed.
    // (`if let`, not `match`: the first poll's result is gone before the
    // wait, so the future holds no room for it.)
    let frame = if let Some(frame) = poll_once(read.as_mut()).await {
        frame
    } else {
        Box::pin(tokio::time::timeout_at(
            deadline_after(accepted, limit),
            read,
        ))
        .await
        .map_err(|_| Status::deadline_exceeded(format!("no request header within {limit:?}")))?
    };
    let payload =
        frame?.ok_or_else(|| CallError::protocol("the stream ended before the request header"))?;
    ReceivedHeader::decode(payload, shared.config.metadata_limits()).map_err(header_error)
}

#[cold]
fn header_error(error: HeaderError) -> Status {
    match error {
        HeaderError::TooMuchMetadata(_) => CallError::TooMuchMetadata(error.to_string()),
        _ => CallError::protocol(format!("malformed request header: {error}")),
    }
    .into()
}

/// The caller's timeout, or the default, cut to `max_call_deadline`.
fn call_timeout(config: &RpcConfig, header: &ReceivedHeader) -> Duration {
    let asked = match header.timeout_micros {
        0 => config.default_deadline,
        micros => Duration::from_micros(micros),
    };
    asked.min(config.max_call_deadline)
}

/// Waits for a handler slot, then runs a streaming handler.
async fn serve_streaming(
    shared: &Shared,
    method: &StreamingFn,
    context: CallContext,
    reader: FrameReader,
    send: &mut quinn::SendStream,
) -> Result<(), Status> {
    let slot = handler_slot(&shared.handler_slots, &context).await?;
    let (frames, queue) = mpsc::channel(RESPONSE_QUEUE);
    until_revoked(&slot, stream(method(context, reader, frames), queue, send)).await
}

/// Runs a streaming handler, forwarding what it queues as it goes.
async fn stream(
    handling: BoxFuture<'_, Result<(), Status>>,
    queue: mpsc::Receiver<OutFrames>,
    send: &mut quinn::SendStream,
) -> Result<(), Status> {
    let (result, written) = tokio::join!(handling, forward(queue, send));
    written?;
    result?;
    let mut ok = OutFrames::with_capacity(OK_STATUS_FRAME.len());
    ok.put_slice(&OK_STATUS_FRAME);
    write_and_finish(send, ok).await
}

async fn forward(
    mut queue: mpsc::Receiver<OutFrames>,
    send: &mut quinn::SendStream,
) -> Result<(), Status> {
    while let Some(frames) = queue.recv().await {
        write_frames(send, frames).await.map_err(CallError::from)?;
    }
    Ok(())
}

fn status_frame(status: &Status) -> OutFrames {
    let mut frame = OutFrames::with_capacity(OutFrames::room_for(status));
    frame.put_message(FrameType::Status, status);
    frame
}

/// Ends the call with `status` and returns its code. Failure to send means
/// the caller is gone: nothing to do.
async fn finish_with(send: &mut quinn::SendStream, status: &Status, caller: NodeId) -> Code {
    if !status.is_ok() {
        tracing::debug!(%status, caller = ?caller, "call failed");
    }
    // Boxed: calls that fail are few, and the write's future would make
    // every call's future larger.
    let _ = Box::pin(write_and_finish(send, status_frame(status))).await;
    status.code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::wire::outgoing::response_frames;

    fn future_size<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The largest request glibc serves from its small bins: larger ones,
    /// when its per-thread cache has no block of the size (at 64 calls in
    /// flight it often has none, docs/performance.md), first consolidate
    /// its fast bins. Every call allocates its future.
    const GLIBC_SMALL_REQUEST_MAX: usize = 1000;

    #[test]
    fn a_unary_answer_and_its_ok_status_fill_one_allocation_exactly() {
        use crate::node_service::proto::EchoResponse;
        use crate::rpc::wire::outgoing::BY_REFERENCE_MIN;
        for len in [0, 10, 1024, BY_REFERENCE_MIN - 100] {
            let response = EchoResponse {
                payload: vec![7; len].into(),
            };
            let mut frames = response_frames(&response);
            frames.put_slice(&OK_STATUS_FRAME);
            assert_eq!(frames.spare_room(), 0, "{len} B");
        }
    }

    #[test]
    fn the_ok_status_frame_is_the_ok_status_encoded() {
        let encoded = status_frame(&Status::ok()).into_chunks().concat();
        assert_eq!(encoded, OK_STATUS_FRAME);
    }

    #[test]
    fn a_calls_future_is_a_small_allocation_for_glibc() {
        let size = future_size(serve);
        assert!(
            size <= GLIBC_SMALL_REQUEST_MAX,
            "serve's future is {size} bytes"
        );
    }
}
