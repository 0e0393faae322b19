//! A page's call to a node: the page frames it as a caller does (§4), with
//! the target in `peerd-node`; the daemon makes it as a bidirectional call
//! carrying the page's proof, so the callee sees the page as the caller,
//! and passes the messages and the status back.

use std::sync::Arc;
use std::time::Duration;

use peerd::identity::hosted;
use peerd::rpc::wire::codec::{Frame, FrameType};
use peerd::rpc::wire::proto::RequestHeader;
use peerd::rpc::{CallOptions, Encoded, Status, StreamingCall};
use peerd::{NodeId, rpc};
use prost::Message;
use tokio::time::Instant;
use web_transport_quinn::{RecvStream, SendStream};

use super::Shared;
use super::frames::{FrameStream, message_frame, status_frame, unexpected, write};
use super::metrics::Direction;
use super::pages::Page;
use crate::gateway::NODE;

/// Serves one call stream the page opened, to its status.
pub async fn forward(shared: Arc<Shared>, page: Arc<Page>, mut send: SendStream, recv: RecvStream) {
    let mut frames = FrameStream::new(recv, shared.rpc.max_message_size);
    let status = match open(&shared, &page, &mut frames).await {
        Ok((call, deadline)) => pump(call, &mut frames, &mut send, deadline).await,
        Err(status) => status,
    };
    shared.metrics.call(Direction::FromPage, status.is_ok());
    if write(&mut send, status_frame(&status)).await.is_ok() {
        let _ = send.finish();
    }
}

async fn open(
    shared: &Shared,
    page: &Page,
    frames: &mut FrameStream,
) -> Result<(StreamingCall<Encoded, Encoded>, Instant), Status> {
    let header = tokio::time::timeout(shared.rpc.header_timeout, frames.next())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "no request header within {:?}",
                shared.rpc.header_timeout
            ))
        })??;
    let header = match header {
        Some(Frame {
            kind: FrameType::Header,
            payload,
        }) => RequestHeader::decode(payload)
            .map_err(|e| Status::invalid_argument(format!("the request header: {e}")))?,
        other => return Err(unexpected("a Header", other.as_ref())),
    };
    let (target, options) = options(shared, page, header.metadata, header.timeout_micros)?;
    let deadline = Instant::now() + options.timeout.unwrap_or(shared.rpc.default_deadline);
    let call = shared
        .node
        .client()
        .bidi_streaming_encoded(target, &header.method, &options)
        .await?;
    Ok((call, deadline))
}

/// The call's target, and its options: the page's metadata with its proof,
/// its timeout cut to `rpc.max_call_deadline`.
fn options(
    shared: &Shared,
    page: &Page,
    mut metadata: std::collections::HashMap<String, String>,
    timeout_micros: u64,
) -> Result<(NodeId, CallOptions), Status> {
    let target = metadata.remove(NODE).ok_or_else(|| {
        Status::invalid_argument(format!(
            "no target: set metadata {NODE}: <node-id> in the request header"
        ))
    })?;
    let target: NodeId = target
        .parse()
        .map_err(|e| Status::invalid_argument(format!("{NODE}: {e}")))?;
    if target == shared.node.id() {
        return Err(Status::invalid_argument(format!(
            "{NODE} names this daemon, the page's host; a page calls other nodes through it, and the host's own services are not forwarded"
        )));
    }
    metadata.insert(hosted::METADATA_KEY.to_owned(), page.proof.to_metadata());
    let timeout = match timeout_micros {
        0 => shared.rpc.default_deadline,
        micros => Duration::from_micros(micros),
    };
    let options = CallOptions {
        timeout: Some(timeout.min(shared.rpc.max_call_deadline)),
        metadata,
        ..CallOptions::default()
    };
    Ok((target, options))
}

/// Moves messages both ways until the call ends, the page cancels it or
/// goes away, or the deadline passes; returns the status for the page. Dropping the call on
/// the way out cancels it at the callee.
async fn pump(
    mut call: StreamingCall<Encoded, Encoded>,
    frames: &mut FrameStream,
    send: &mut SendStream,
    deadline: Instant,
) -> Status {
    let mut sending = true;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                return Status::deadline_exceeded("the call's deadline passed");
            }
            // Its requests all sent, a page cancels by stopping our side.
            _ = send.stopped() => return Status::cancelled("the page cancelled the call"),
            frame = frames.next(), if sending => match frame {
                Ok(Some(Frame { kind: FrameType::Message, payload })) => {
                    // A failed send ends the sending only: the answer tells why.
                    sending = call.send_encoded(&payload).await.is_ok();
                }
                Ok(None) => {
                    sending = false;
                    let _ = call.close_send();
                }
                Ok(Some(other)) => return unexpected("a Message", Some(&other)),
                Err(status) => {
                    frames.stop();
                    return status;
                }
            },
            response = call.message_encoded() => match response {
                Ok(Some(message)) => {
                    if let Err(status) = write(send, message_frame(&message)).await {
                        return status;
                    }
                }
                Ok(None) => return final_status(&call),
                Err(status) => return status,
            },
        }
    }
}

/// OK with the callee's trailers, if it sent any.
fn final_status(call: &StreamingCall<Encoded, Encoded>) -> Status {
    call.final_status().cloned().unwrap_or_else(rpc::Status::ok)
}
