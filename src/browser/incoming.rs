//! A node's call to a page: the RPC server's hosted handler takes every
//! call whose `peerd-callee` names an agent, opens a stream to that page's
//! session and frames the call on it as a caller does, with the caller's
//! node id in `peerd-caller`; the page answers as a callee does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use peerd::NodeId;
use peerd::identity::hosted;
use peerd::rpc::wire::codec::{Frame, FrameType};
use peerd::rpc::wire::proto::RequestHeader;
use peerd::rpc::{CALLEE, CallContext, Code, RawRequests, RawResponses, Status};
use prost::Message;
use tokio::time::Instant;
use web_transport_quinn::SendStream;

use super::frames::{FrameStream, frame, message_frame, unexpected, write};
use super::metrics::{BrowserMetrics, Direction};
use super::pages::{Page, Pages};
use crate::gateway::CALLER;

/// The hosted handler's state.
#[derive(Clone)]
pub struct Incoming {
    pub(super) pages: Pages,
    pub(super) metrics: Arc<BrowserMetrics>,
    pub(super) max_message: u32,
}

type Serving = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

impl Incoming {
    /// The handler for `NodeBuilder::hosted`.
    pub fn handler(
        self,
    ) -> impl Fn(CallContext, RawRequests, RawResponses) -> Serving + Send + Sync {
        move |context, requests, responses| {
            let incoming = self.clone();
            Box::pin(async move {
                let result = incoming.serve(context, requests, responses).await;
                incoming.metrics.call(Direction::ToPage, result.is_ok());
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
        let id = context
            .metadata()
            .get(CALLEE)
            .map(|id| id.parse::<NodeId>())
            .ok_or_else(|| Status::invalid_argument(format!("no {CALLEE} in the call")))?
            .map_err(|e| Status::invalid_argument(format!("{CALLEE}: {e}")))?;
        let page = self.pages.get(id).ok_or_else(|| {
            Status::not_found(format!(
                "no page with node id {id} is connected to this node"
            ))
        })?;
        let Ok(_permit) = page.calls.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(format!(
                "page {id} already serves as many calls from nodes as browser.max_calls_per_session allows"
            )));
        };
        forward(&page, &context, requests, responses, self.max_message).await
    }
}

/// The page's side of one call; dropped before the status came (the
/// caller left, the deadline passed), it resets both directions so the page
/// stops serving it.
struct PageCall {
    send: SendStream,
    frames: FrameStream,
    answered: bool,
}

impl Drop for PageCall {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.send.reset(Code::Cancelled as u32);
            self.frames.stop();
        }
    }
}

async fn forward(
    page: &Page,
    context: &CallContext,
    mut requests: RawRequests,
    mut responses: RawResponses,
    max_message: u32,
) -> Result<(), Status> {
    let (send, recv) =
        page.session.open_bi().await.map_err(|e| {
            Status::unavailable(format!("page {} cannot take a call: {e}", page.id()))
        })?;
    let mut call = PageCall {
        send,
        frames: FrameStream::new(recv, max_message),
        answered: false,
    };
    write(&mut call.send, frame(FrameType::Header, &header(context))).await?;
    let mut sending = true;
    loop {
        tokio::select! {
            request = requests.message(), if sending => match request? {
                Some(message) => write(&mut call.send, message_frame(&message)).await?,
                None => {
                    sending = false;
                    let _ = call.send.finish();
                }
            },
            answer = call.frames.next() => match answer? {
                Some(Frame { kind: FrameType::Message, payload }) => responses.send(&payload).await?,
                Some(Frame { kind: FrameType::Status, payload }) => {
                    call.answered = true;
                    return ended(payload);
                }
                other => return Err(unexpected("a Message or Status", other.as_ref())),
            },
        }
    }
}

/// The call as the page sees it: the caller's metadata without the keys
/// that routed it here, the caller's id, the time left.
fn header(context: &CallContext) -> RequestHeader {
    let mut metadata = context.metadata().clone();
    metadata.remove(CALLEE);
    metadata.remove(hosted::METADATA_KEY);
    metadata.insert(CALLER.to_owned(), context.caller().to_string());
    let left = context.deadline().saturating_duration_since(Instant::now());
    RequestHeader {
        method: context.method().to_owned(),
        timeout_micros: u64::try_from(left.as_micros()).unwrap_or(u64::MAX).max(1),
        metadata,
    }
}

/// The page's status: OK ends the call; OK with trailers, or an error, is
/// returned as the status the server sends.
fn ended(payload: bytes::Bytes) -> Result<(), Status> {
    let status = peerd::rpc::wire::proto::Status::decode(payload)
        .map(Status::from_proto)
        .map_err(|e| Status::internal(format!("the page's status does not decode: {e}")))?;
    match status.is_ok() && status.metadata().is_empty() {
        true => Ok(()),
        false => Err(status),
    }
}
