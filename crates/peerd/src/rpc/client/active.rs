//! One call's stream on the caller's side. Dropping it before the call has
//! ended cancels the call on the wire, so the callee's handler stops too.

use std::future::{Future, poll_fn};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;

use crate::connection::StreamGuard;
use crate::rpc::io::{Chunks, FrameReader, write_frames};
use crate::rpc::status::CallError;
use crate::rpc::wire::codec::FrameType;
use crate::rpc::wire::outgoing::OutFrames;
use crate::rpc::wire::proto;
use crate::rpc::{Status, StreamCode};

#[derive(Debug)]
pub(super) struct ActiveCall {
    /// `None` once split off to a [`super::RequestSender`].
    send: Option<quinn::SendStream>,
    answer: Answer,
    _busy: StreamGuard,
}

/// The callee's side of the stream.
#[derive(Debug)]
struct Answer {
    reader: FrameReader,
    ended: bool,
}

/// What the callee sent next.
pub(super) enum Incoming {
    Message(Bytes),
    Status(Status),
}

impl ActiveCall {
    pub(crate) fn new(
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        busy: StreamGuard,
        max_message: u32,
    ) -> Self {
        Self {
            send: Some(send),
            answer: Answer {
                reader: FrameReader::new(recv, max_message),
                ended: false,
            },
            _busy: busy,
        }
    }

    pub(crate) async fn send(&mut self, frames: OutFrames) -> Result<(), CallError> {
        Ok(write_frames(self.sending()?, frames).await?)
    }

    /// The sending half, for a split call; the call keeps reading.
    pub(crate) fn take_send(&mut self) -> Option<quinn::SendStream> {
        self.send.take()
    }

    fn sending(&mut self) -> Result<&mut quinn::SendStream, CallError> {
        self.send
            .as_mut()
            .ok_or_else(|| CallError::protocol("the call's sending half was split off"))
    }

    /// Sends the last frames and the end of the request in one write.
    pub(crate) async fn send_final(&mut self, frames: OutFrames) -> Result<(), CallError> {
        self.send(frames).await?;
        self.finish_sending()
    }

    pub(crate) fn finish_sending(&mut self) -> Result<(), CallError> {
        Ok(self.sending()?.finish()?)
    }

    /// Cancels the call on the wire, unless the callee has ended it, so
    /// its handler stops.
    pub(crate) fn cancel(&mut self) {
        if !self.answer.ended {
            self.answer.ended = true;
            if let Some(send) = &mut self.send {
                let _ = send.reset(StreamCode::Cancelled.var_int());
            }
            self.answer.reader.stop(StreamCode::Cancelled);
        }
    }

    /// The next message or the final status.
    pub(crate) async fn receive(&mut self) -> Result<Incoming, CallError> {
        poll_fn(|cx| self.answer.poll_receive(cx)).await
    }

    /// A unary call: sends `frames` and the end of the request, then reads
    /// the answer, one message then OK, or a non-OK status. A stateless
    /// reset (the callee restarted) before the callee acknowledged the whole
    /// request is `CallError::Undelivered`.
    ///
    /// One poll function, not nested async ones: each layer would move the
    /// answer and keep its own state on every call's path.
    pub(crate) fn unary(
        &mut self,
        frames: OutFrames,
    ) -> impl Future<Output = Result<Result<Bytes, Status>, CallError>> + '_ {
        let mut request = Some(Chunks::from(frames));
        let mut message = None;
        poll_fn(move |cx| {
            if let Some(unwritten) = &mut request {
                let send = self.sending()?;
                ready!(unwritten.poll_write(send, cx))?;
                send.finish()?;
                request = None;
            }
            Poll::Ready(match ready!(self.answer.poll_unary(cx, &mut message)) {
                Err(e) if e.is_stateless_reset() && !self.request_acknowledged() => {
                    Err(CallError::Undelivered(quinn::ConnectionError::Reset))
                }
                other => other,
            })
        })
    }

    /// Whether the callee acknowledged all of the request or stopped it,
    /// asked once the connection has failed. Not waited for on the call path:
    /// that would register a wait per call, and an acknowledgement can lag
    /// the answer by QUIC's delayed-ACK time.
    fn request_acknowledged(&self) -> bool {
        let Some(send) = &self.send else {
            return false;
        };
        let stopped = std::pin::pin!(send.stopped());
        let mut context = Context::from_waker(Waker::noop());
        // quinn forgets a stream once its data is all acknowledged (`Ok`);
        // on a failed connection an unacknowledged one reports the failure.
        matches!(stopped.poll(&mut context), Poll::Ready(Ok(_)))
    }
}

impl Answer {
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, CallError>> {
        let frame = ready!(self.reader.poll_next(cx))?.ok_or(CallError::NoStatus)?;
        Poll::Ready(match frame.kind {
            FrameType::Message => Ok(Incoming::Message(frame.payload)),
            FrameType::Status => {
                self.ended = true;
                decode_status(frame.payload).map(Incoming::Status)
            }
            FrameType::Header => Err(CallError::protocol("a callee sent a request header")),
        })
    }

    /// A unary answer; `message` holds the response until the status.
    fn poll_unary(
        &mut self,
        cx: &mut Context<'_>,
        message: &mut Option<Bytes>,
    ) -> Poll<Result<Result<Bytes, Status>, CallError>> {
        loop {
            let incoming = ready!(self.poll_receive(cx))?;
            return Poll::Ready(match (message.take(), incoming) {
                (None, Incoming::Message(response)) => {
                    *message = Some(response);
                    continue;
                }
                (None, Incoming::Status(status)) if status.is_ok() => {
                    Err(CallError::protocol("OK status without a response message"))
                }
                (Some(response), Incoming::Status(status)) if status.is_ok() => Ok(Ok(response)),
                (_, Incoming::Status(status)) => Ok(Err(status)),
                (Some(_), Incoming::Message(_)) => {
                    Err(CallError::protocol("a unary call answered twice"))
                }
            });
        }
    }
}

/// A status frame's payload. Nearly every call ends with OK, which encodes
/// to no bytes: that needs no decoder (nor the map it would make).
fn decode_status(payload: Bytes) -> Result<Status, CallError> {
    if payload.is_empty() {
        return Ok(Status::ok());
    }
    match <proto::Status as prost::Message>::decode(payload) {
        Ok(status) => Ok(Status::from_proto(status)),
        Err(e) => Err(CallError::protocol(format!("malformed status: {e}"))),
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Code;

    #[test]
    fn an_empty_status_payload_reads_as_prost_decodes_it() {
        let decoded = <proto::Status as prost::Message>::decode(Bytes::new()).unwrap();
        let status = decode_status(Bytes::new()).unwrap();
        assert_eq!(status, Status::from_proto(decoded));
        assert!(status.is_ok());
    }

    #[test]
    fn a_status_payload_is_decoded_and_a_malformed_one_refused() {
        let sent = proto::Status {
            code: Code::NotFound as u32,
            message: "gone".into(),
            ..Default::default()
        };
        let payload = Bytes::from(prost::Message::encode_to_vec(&sent));
        assert_eq!(decode_status(payload).unwrap(), Status::not_found("gone"));
        let malformed = decode_status(Bytes::from_static(&[0x12, 0x05, b'g']));
        assert!(matches!(malformed, Err(CallError::Protocol(_))));
    }
}
