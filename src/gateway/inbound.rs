//! Calls from other nodes to a service an agent exposes: the RPC server's
//! fallback checks the exposure and its allow list, then forwards the call
//! to the agent's gRPC server as bytes, with the caller's node id in
//! `peerd-caller`, and the agent's answer back.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use http::uri::PathAndQuery;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::Limits;
use super::codec::RawCodec;
use super::exposures::{Exposure, Exposures};
use super::metadata::{CALLER, append_from_peerd};
use super::metrics::{Direction, GatewayMetrics};
use super::status::from_grpc;
use peerd::rpc::{CallContext, RawRequests, RawResponses, Status};

/// One inbound call being served.
pub type Serving = std::pin::Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// The RPC server's fallback: serves the methods of exposed services.
#[derive(Clone)]
pub struct Inbound {
    pub exposures: Exposures,
    pub limits: Limits,
    pub metrics: Arc<GatewayMetrics>,
}

impl Inbound {
    /// The fallback handler for `Router::with_fallback`.
    pub fn handler(
        self,
    ) -> impl Fn(CallContext, RawRequests, RawResponses) -> Serving + Send + Sync + 'static {
        move |context, requests, responses| {
            let inbound = self.clone();
            Box::pin(async move {
                let service = context.method().split('/').next().unwrap_or("").to_owned();
                let result = inbound.serve(context, requests, responses).await;
                inbound
                    .metrics
                    .record(Direction::Inbound, &service, &result);
                result
            })
        }
    }

    async fn serve(
        &self,
        context: CallContext,
        requests: RawRequests,
        responses: RawResponses,
    ) -> Result<(), Status> {
        let (service, _) = context
            .method()
            .split_once('/')
            .unwrap_or((context.method(), ""));
        let Some(exposure) = self.exposures.get(service) else {
            return Err(Status::unimplemented(format!(
                "unknown method {:?}: no agent on this node exposes service {service:?}",
                context.method()
            )));
        };
        if !exposure.allow.permits(context.caller()) {
            return Err(Status::new(
                peerd::rpc::Code::PermissionDenied,
                format!(
                    "node {} may not call service {service}: it is not in the service's allow list here",
                    context.caller()
                ),
            ));
        }
        let Ok(_permit) = exposure.calls.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(format!(
                "service {service} already has {} calls in progress (gateway.max_calls_per_service)",
                self.limits.max_calls_per_service
            )));
        };
        forward(&exposure, &self.limits, context, requests, responses).await
    }
}

/// Forwards one call to the exposure's backend and its answer back.
async fn forward(
    exposure: &Exposure,
    limits: &Limits,
    context: CallContext,
    mut requests: RawRequests,
    mut responses: RawResponses,
) -> Result<(), Status> {
    let down = |e: &dyn std::fmt::Display| backend_down(exposure, e);
    let mut grpc = tonic::client::Grpc::new(exposure.channel.clone())
        .max_decoding_message_size(limits.max_message_size)
        .max_encoding_message_size(limits.max_message_size);
    grpc.ready().await.map_err(|e| down(&e))?;
    let (sender, queue) = mpsc::channel::<Bytes>(limits.stream_buffer);
    let request = backend_request(&context, ReceiverStream::new(queue));
    let path = PathAndQuery::try_from(format!("/{}", context.method()))
        .map_err(|e| Status::invalid_argument(format!("method name: {e}")))?;
    let pump = async move {
        while let Some(message) = requests.message().await? {
            if sender.send(message).await.is_err() {
                break;
            }
        }
        Ok::<_, Status>(())
    };
    let answer = async {
        let response = grpc
            .streaming(request, path, RawCodec)
            .await
            .map_err(|e| backend_status(exposure, &e))?;
        let mut stream = response.into_inner();
        while let Some(message) = stream
            .message()
            .await
            .map_err(|e| backend_status(exposure, &e))?
        {
            responses.send(&message).await?;
        }
        let trailers = stream
            .trailers()
            .await
            .map_err(|e| backend_status(exposure, &e))?;
        Ok::<_, Status>(trailers)
    };
    tokio::pin!(pump, answer);
    let mut pumping = true;
    let trailers = loop {
        tokio::select! {
            pumped = &mut pump, if pumping => {
                pumped?;
                pumping = false;
            }
            answered = &mut answer => break answered?,
        }
    };
    ok_ending(trailers)
}

/// The backend's request: the caller's metadata, its node id, its deadline.
fn backend_request(
    context: &CallContext,
    messages: ReceiverStream<Bytes>,
) -> tonic::Request<ReceiverStream<Bytes>> {
    let mut request = tonic::Request::new(messages);
    let headers = request.metadata_mut().as_mut();
    append_from_peerd(headers, context.metadata());
    if let Ok(caller) = HeaderValue::from_str(&context.caller().to_string()) {
        headers.insert(CALLER, caller);
    }
    request.set_timeout(context.deadline().saturating_duration_since(Instant::now()));
    request
}

/// OK, with the backend's trailers if it sent any: an error status of code
/// OK is how a handler makes the server send trailers with OK.
fn ok_ending(trailers: Option<tonic::metadata::MetadataMap>) -> Result<(), Status> {
    let Some(trailers) = trailers else {
        return Ok(());
    };
    let status = from_grpc(&tonic::Status::with_metadata(tonic::Code::Ok, "", trailers));
    match status.metadata().is_empty() {
        true => Ok(()),
        false => Err(status),
    }
}

/// The backend's own status, unless tonic made it up because the backend
/// could not be reached.
fn backend_status(exposure: &Exposure, status: &tonic::Status) -> Status {
    let transport_failure = std::error::Error::source(status).is_some()
        && status.code() == tonic::Code::Unavailable
        && status.metadata().is_empty();
    match transport_failure {
        true => backend_down(exposure, status),
        false => from_grpc(status),
    }
}

fn backend_down(exposure: &Exposure, error: &dyn std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "service {} is exposed on this node but its agent's server at {} is not answering ({error}); is the agent running?",
        exposure.service, exposure.target
    ))
}
