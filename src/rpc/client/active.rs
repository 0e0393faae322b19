//! One call's stream on the caller's side. Dropping it before the call has
//! ended cancels the call on the wire, so the callee's handler stops too.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::connection::StreamGuard;
use crate::rpc::codec::FrameType;
use crate::rpc::io::{FrameReader, write_frames};
use crate::rpc::outgoing::OutFrames;
use crate::rpc::proto;
use crate::rpc::status::CallError;
use crate::rpc::{Status, StreamCode};

#[derive(Debug)]
pub(super) struct ActiveCall {
    send: quinn::SendStream,
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
    pub fn new(
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        busy: StreamGuard,
        max_message: u32,
    ) -> Self {
        Self {
            send,
            answer: Answer {
                reader: FrameReader::new(recv, max_message),
                ended: false,
            },
            _busy: busy,
        }
    }

    pub async fn send(&mut self, frames: OutFrames) -> Result<(), CallError> {
        Ok(write_frames(&mut self.send, frames).await?)
    }

    /// Sends the last frames and the end of the request in one write.
    pub async fn send_final(&mut self, frames: OutFrames) -> Result<(), CallError> {
        self.send(frames).await?;
        self.finish_sending()
    }

    pub fn finish_sending(&mut self) -> Result<(), CallError> {
        Ok(self.send.finish()?)
    }

    /// The next message or the final status.
    pub async fn receive(&mut self) -> Result<Incoming, CallError> {
        self.answer.receive().await
    }

    /// A unary answer, once the whole request is sent: one message then OK,
    /// or a non-OK status. A stateless reset (the callee restarted) before
    /// the callee acknowledged the whole request is `CallError::Undelivered`.
    pub async fn read_unary_answer(&mut self) -> Result<Result<Bytes, Status>, CallError> {
        match self.answer.unary().await {
            Err(e) if e.is_stateless_reset() && !self.request_acknowledged() => {
                Err(CallError::Undelivered(quinn::ConnectionError::Reset))
            }
            other => other,
        }
    }

    /// Whether the callee acknowledged all of the request or stopped it,
    /// asked once the connection has failed. Not waited for on the call path:
    /// that would register a wait per call, and an acknowledgement can lag
    /// the answer by QUIC's delayed-ACK time.
    fn request_acknowledged(&self) -> bool {
        let stopped = std::pin::pin!(self.send.stopped());
        let mut context = Context::from_waker(Waker::noop());
        // quinn forgets a stream once its data is all acknowledged (`Ok`);
        // on a failed connection an unacknowledged one reports the failure.
        matches!(stopped.poll(&mut context), Poll::Ready(Ok(_)))
    }
}

impl Answer {
    async fn receive(&mut self) -> Result<Incoming, CallError> {
        let frame = self.reader.next().await?.ok_or(CallError::NoStatus)?;
        match frame.kind {
            FrameType::Message => Ok(Incoming::Message(frame.payload)),
            FrameType::Status => {
                self.ended = true;
                let status = <proto::Status as prost::Message>::decode(frame.payload)
                    .map_err(|e| CallError::Protocol(format!("malformed status: {e}")))?;
                Ok(Incoming::Status(Status::from_proto(status)))
            }
            FrameType::Header => Err(CallError::Protocol("a callee sent a request header".into())),
        }
    }

    async fn unary(&mut self) -> Result<Result<Bytes, Status>, CallError> {
        let message = match self.receive().await? {
            Incoming::Status(status) if status.is_ok() => {
                return Err(CallError::Protocol(
                    "OK status without a response message".into(),
                ));
            }
            Incoming::Status(status) => return Ok(Err(status)),
            Incoming::Message(message) => message,
        };
        match self.receive().await? {
            Incoming::Status(status) if status.is_ok() => Ok(Ok(message)),
            Incoming::Status(status) => Ok(Err(status)),
            Incoming::Message(_) => Err(CallError::Protocol("a unary call answered twice".into())),
        }
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        if !self.answer.ended {
            let _ = self.send.reset(StreamCode::Cancelled.var_int());
            self.answer.reader.stop(StreamCode::Cancelled);
        }
    }
}
