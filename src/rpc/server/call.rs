//! Serving one call on one stream: header, routing, deadline, handler, status.

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::Shared;
use crate::connection::IncomingStream;
use crate::identity::NodeId;
use crate::metrics::CallRecord;
use crate::rpc::cancel::CallCancel;
use crate::rpc::codec::FrameType;
use crate::rpc::context::deadline_after;
use crate::rpc::io::{FrameReader, write_frames};
use crate::rpc::outgoing::OutFrames;
use crate::rpc::poll_once::poll_once;
use crate::rpc::proto::RequestHeader;
use crate::rpc::service::Method;
use crate::rpc::status::CallError;
use crate::rpc::{CallContext, Code, Status};

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

pub(super) async fn serve(shared: Arc<Shared>, stream: IncomingStream) {
    let accepted = Instant::now();
    let mut record = shared.calls.start_server_call(accepted);
    let code = answer(&shared, stream, accepted, &mut record).await;
    record.end(code);
}

/// Serves the call and returns the code it ended with.
async fn answer(
    shared: &Shared,
    stream: IncomingStream,
    accepted: Instant,
    record: &mut CallRecord,
) -> Code {
    let IncomingStream {
        connection,
        mut send,
        recv,
        guard: _busy,
    } = stream;
    let caller = connection.remote_node_id();
    let mut reader = FrameReader::new(recv, shared.config.max_message_size);
    let header = match read_header(shared, &mut reader, accepted).await {
        Ok(header) => header,
        Err(status) => return finish_with(&mut send, &status, caller).await,
    };
    let Some(route) = shared.router.route(&header.method) else {
        let status = Status::unimplemented(format!("unknown method {:?}", header.method));
        return finish_with(&mut send, &status, caller).await;
    };
    record.route(route.index);
    if shared.draining.load(Ordering::Acquire) {
        let status = Status::unavailable("the node is shutting down");
        return finish_with(&mut send, &status, caller).await;
    }
    // Made once the method is known: recording a field later costs more.
    // `?` formats the id lazily (its Debug is the short form).
    let span = tracing::debug_span!("call", caller = ?caller, method = header.method.as_str());
    let context = CallContext {
        caller,
        caller_address: connection.remote_address(),
        deadline: deadline_after(accepted, call_timeout(shared, &header)),
        method: header.method,
        metadata: header.metadata,
        // Not tied to the server's token: the select below turns shutdown
        // into this cancel.
        cancelled: CallCancel::default(),
    };
    let method = route.method.clone();
    let served = async {
        match run_until_ended(shared, method, context, reader, &mut send).await {
            Ending::Answered => Code::Ok,
            Ending::Status(status) => finish_with(&mut send, &status, caller).await,
            Ending::CallerGone => {
                tracing::debug!("caller cancelled the call");
                Code::Cancelled
            }
        }
    };
    // A disabled span (nothing subscribes at debug level) would only cost
    // an enter and an exit on every poll.
    match span.is_disabled() {
        true => served.await,
        false => served.instrument(span).await,
    }
}

/// Runs the handler until it answers, the caller leaves, the deadline
/// passes, or the node shuts down.
async fn run_until_ended(
    shared: &Shared,
    method: Method,
    context: CallContext,
    reader: FrameReader,
    send: &mut quinn::SendStream,
) -> Ending {
    let cancelled = context.cancelled.clone();
    let deadline = context.deadline;
    let caller_stopped = send.stopped();
    let mut handler = pin!(run(shared, method, context, reader, send));
    // A handler that answers at once never needs the other waits (each a
    // lock, an allocation or a timer entry): they are armed only if it waits.
    let ending = match poll_once(handler.as_mut()).await {
        Some(result) => Ending::from(result),
        None => tokio::select! {
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
        },
    };
    cancelled.cancel();
    ending
}

async fn read_header(
    shared: &Shared,
    reader: &mut FrameReader,
    accepted: Instant,
) -> Result<RequestHeader, Status> {
    let limit = shared.config.header_timeout;
    let mut read = pin!(reader.next_of(FrameType::Header));
    // The header usually arrived with the stream: then no timer is armed.
    let payload = match poll_once(read.as_mut()).await {
        Some(payload) => payload,
        None => tokio::time::timeout_at(deadline_after(accepted, limit), read)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!("no request header within {limit:?}"))
            })?,
    }?
    .ok_or_else(|| CallError::Protocol("the stream ended before the request header".into()))?;
    let header = <RequestHeader as prost::Message>::decode(payload)
        .map_err(|e| CallError::Protocol(format!("malformed request header: {e}")))?;
    Ok(header)
}

fn call_timeout(shared: &Shared, header: &RequestHeader) -> Duration {
    match header.timeout_micros {
        0 => shared.config.default_deadline,
        micros => Duration::from_micros(micros),
    }
}

/// Waits for a handler slot, runs the handler, and writes its answer.
async fn run(
    shared: &Shared,
    method: Method,
    context: CallContext,
    mut reader: FrameReader,
    send: &mut quinn::SendStream,
) -> Result<(), Status> {
    let _slot = shared
        .handler_slots
        .acquire()
        .await
        .map_err(|_| Status::unavailable("the node is shutting down"))?;
    match method {
        Method::Unary(handler) => {
            let request = read_single(&mut reader).await?;
            let mut answer = handler(context, request).await?;
            answer.put_message(FrameType::Status, ok_status());
            write_and_finish(send, answer).await
        }
        Method::Streaming(handler) => {
            let (frames, queue) = mpsc::channel(RESPONSE_QUEUE);
            let (result, written) =
                tokio::join!(handler(context, reader, frames), forward(queue, send));
            written?;
            result?;
            write_and_finish(send, status_frame(ok_status())).await
        }
    }
}

async fn read_single(reader: &mut FrameReader) -> Result<Bytes, Status> {
    let request = reader
        .next_of(FrameType::Message)
        .await?
        .ok_or_else(|| CallError::Protocol("the request has no message".into()))?;
    match reader.next().await? {
        None => Ok(request),
        Some(_) => Err(CallError::Protocol(
            "a unary call carries exactly one request message".into(),
        )
        .into()),
    }
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

async fn write_and_finish(send: &mut quinn::SendStream, frames: OutFrames) -> Result<(), Status> {
    write_frames(send, frames).await.map_err(CallError::from)?;
    send.finish().map_err(CallError::from)?;
    Ok(())
}

fn status_frame(status: &Status) -> OutFrames {
    let mut frame = OutFrames::new();
    frame.put_message(FrameType::Status, status);
    frame
}

/// The status of every call that succeeds, made once: a `Status` holds a
/// map, whose making reads a thread-local.
fn ok_status() -> &'static Status {
    static OK: LazyLock<Status> = LazyLock::new(Status::ok);
    &OK
}

/// Ends the call with `status` and returns its code. Failure to send means
/// the caller is gone: nothing to do.
async fn finish_with(send: &mut quinn::SendStream, status: &Status, caller: NodeId) -> Code {
    if !status.is_ok() {
        tracing::debug!(%status, caller = ?caller, "call failed");
    }
    let _ = write_and_finish(send, status_frame(status)).await;
    status.code()
}
