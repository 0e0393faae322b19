//! Calls an agent makes through the gateway: any `/pkg.Svc/Method` with
//! `peerd-node` (or `peerd-service`) metadata is forwarded to that node
//! over its peerd connection, messages as bytes, as a bidirectional call
//! (every gRPC pattern is one on the wire), and the answer streamed back.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use super::metadata::{NODE, SERVICE, Target, grpc_timeout, parse_target, to_peerd};
use super::metrics::{Direction, GatewayMetrics};
use super::status::{ok_with_trailers, to_grpc};
use super::{Answer, Shared};
use peerd::rpc::{CallOptions, Code, Encoded, Status, StreamingCall};

/// Opens the call to the target node and starts forwarding both ways.
pub async fn forward(
    shared: Arc<Shared>,
    calls: Arc<Semaphore>,
    method: String,
    request: tonic::Request<Streaming<Bytes>>,
) -> Result<tonic::Response<Answer>, tonic::Status> {
    let service = method.split('/').next().unwrap_or("").to_owned();
    let opened = open(&shared, calls, &method, request.metadata().as_ref()).await;
    let (call, permit, deadline) = match opened {
        Ok(opened) => opened,
        Err(status) => {
            shared
                .metrics
                .record_code(Direction::Outbound, &service, status.code());
            return Err(to_grpc(&status));
        }
    };
    let (sender, answer) = mpsc::channel(shared.limits.stream_buffer);
    let cancel = shared.cancel.child_token();
    let metrics = shared.metrics.clone();
    shared.tasks.spawn(async move {
        let pipe = Pipe {
            answer: sender,
            deadline,
            metrics,
        };
        let code = pump(call, request.into_inner(), &pipe, cancel).await;
        pipe.metrics
            .record_code(Direction::Outbound, &service, code);
        drop(permit);
    });
    Ok(tonic::Response::new(Answer::counted(
        answer,
        shared.metrics.clone(),
    )))
}

async fn open(
    shared: &Shared,
    calls: Arc<Semaphore>,
    method: &str,
    headers: &HeaderMap,
) -> Result<
    (
        StreamingCall<Encoded, Encoded>,
        OwnedSemaphorePermit,
        Instant,
    ),
    Status,
> {
    let permit = calls.try_acquire_owned().map_err(|_| {
        Status::resource_exhausted(format!(
            "this gateway connection already has {} calls in progress (gateway.max_calls_per_connection); open another connection or wait",
            shared.limits.max_calls_per_connection
        ))
    })?;
    let target = target_of(shared, headers).await?;
    let timeout = grpc_timeout(headers).unwrap_or(shared.limits.default_deadline);
    let options = CallOptions {
        timeout: Some(timeout),
        metadata: to_peerd(headers),
        addrs: target.addrs.clone(),
        ..CallOptions::default()
    };
    let deadline = Instant::now() + timeout;
    let call = shared
        .node
        .client()
        .bidi_streaming_encoded(target.node, method, &options)
        .await
        .map_err(|status| explain_unreachable(shared, &target, status))?;
    Ok((call, permit, deadline))
}

/// The node named by `peerd-node`, or a provider of `peerd-service`.
async fn target_of(shared: &Shared, headers: &HeaderMap) -> Result<Target, Status> {
    let text = |key| headers.get(key).and_then(|v| v.to_str().ok());
    if let Some(node) = text(NODE) {
        return parse_target(node).map_err(Status::invalid_argument);
    }
    let Some(service) = text(SERVICE) else {
        return Err(Status::invalid_argument(format!(
            "no target: set metadata {NODE}: <node-id> (or <node-id>@<host>:<port>), or {SERVICE}: <name>"
        )));
    };
    let providers = shared.node.discovery().find_service(service).await;
    let provider = providers.into_iter().next().ok_or_else(|| {
        Status::unavailable(format!(
            "no provider of service {service:?} was found through discovery; is it announced (services = [...]) by a node this one can reach?"
        ))
    })?;
    let node = provider
        .node_id
        .parse()
        .map_err(|e| Status::internal(format!("discovery gave a bad node id: {e}")))?;
    Ok(Target {
        node,
        addrs: provider.addrs,
    })
}

/// An UNAVAILABLE from the dial names the node and the addresses tried.
fn explain_unreachable(shared: &Shared, target: &Target, status: Status) -> Status {
    if status.code() != Code::Unavailable {
        return status;
    }
    let tried = match target.addrs.is_empty() {
        true => shared.node.addresses().get(target.node),
        false => target.addrs.clone(),
    };
    let tried = match tried.is_empty() {
        true => "none known (the address book and discovery have none)".to_owned(),
        false => tried
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    Status::unavailable(format!(
        "node {} is unreachable: {}; addresses tried: {tried}. Check that it runs, or give its address as {NODE}: <node-id>@<host>:<port>",
        target.node,
        status.message()
    ))
}

/// Where a call's answer goes: the agent's queue, until the deadline.
struct Pipe {
    answer: mpsc::Sender<Result<Bytes, tonic::Status>>,
    deadline: Instant,
    metrics: Arc<GatewayMetrics>,
}

impl Pipe {
    /// Queues a response; waits while the agent is not reading
    /// (backpressure), until the deadline.
    async fn message(&self, message: Bytes) -> Result<(), Status> {
        let len = message.len();
        self.metrics.buffer(len);
        let sent = tokio::time::timeout_at(self.deadline, self.answer.send(Ok(message))).await;
        let failure = match sent {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => Status::cancelled("the agent cancelled the call"),
            Err(_) => Status::deadline_exceeded("the call's deadline passed"),
        };
        self.metrics.unbuffer(len);
        Err(failure)
    }

    /// Queues the call's final status (an OK one carries the trailers).
    async fn end(&self, status: tonic::Status) {
        let _ = tokio::time::timeout_at(self.deadline, self.answer.send(Err(status))).await;
    }
}

/// An agent's request stream failed: a message over the size limit is
/// RESOURCE_EXHAUSTED, as from a peerd callee (tonic says OUT_OF_RANGE).
fn request_failed(status: &tonic::Status) -> Status {
    match status.code() == tonic::Code::OutOfRange && status.message().contains("too large") {
        true => Status::resource_exhausted(format!(
            "a request message is over rpc.max_message_size: {}",
            status.message()
        )),
        false => Status::cancelled(format!("the agent's request stream failed: {status}")),
    }
}

/// Moves messages both ways until the call ends, the agent goes away, the
/// deadline passes or the daemon shuts down. Returns the call's code.
async fn pump(
    mut call: StreamingCall<Encoded, Encoded>,
    mut requests: Streaming<Bytes>,
    pipe: &Pipe,
    cancel: CancellationToken,
) -> Code {
    let mut sending = true;
    let ending = loop {
        tokio::select! {
            () = pipe.answer.closed() => break Status::cancelled("the agent cancelled the call"),
            () = cancel.cancelled() => break Status::unavailable("the daemon is shutting down"),
            () = tokio::time::sleep_until(pipe.deadline) => {
                break Status::deadline_exceeded("the call's deadline passed");
            }
            request = requests.message(), if sending => match request {
                Ok(Some(message)) => {
                    // A failed send ends the sending only: the answer tells why.
                    sending = call.send_encoded(&message).await.is_ok();
                }
                Ok(None) => {
                    sending = false;
                    let _ = call.close_send();
                }
                Err(status) => break request_failed(&status),
            },
            response = call.message_encoded() => match response {
                Ok(Some(message)) => {
                    if let Err(status) = pipe.message(message).await {
                        break status;
                    }
                }
                Ok(None) => {
                    pipe.end(ok_with_trailers(call.final_status())).await;
                    return Code::Ok;
                }
                Err(status) => {
                    pipe.end(to_grpc(&status)).await;
                    return status.code();
                }
            },
        }
    };
    // Dropping the call cancels it on the wire: the callee's handler stops.
    // A full queue loses this status; `Answer` then ends the stream with
    // UNAVAILABLE rather than OK.
    let _ = pipe.answer.try_send(Err(to_grpc(&ending)));
    ending.code()
}
