//! A streaming call in progress, on the caller's side.

use std::marker::PhantomData;

use bytes::Bytes;
use tokio::time::Instant;

use super::active::{ActiveCall, Incoming};
use super::{EncodedRef, check_size};
use crate::rpc::io::write_frames;
use crate::rpc::stats::CallRecord;
use crate::rpc::status::CallError;
use crate::rpc::wire::codec::FrameType;
use crate::rpc::wire::outgoing::{Encode, OutFrames};
use crate::rpc::{Code, Status};

/// Marks a streaming call whose messages pass as encoded protobuf bytes,
/// sent and read with `send_encoded` and `message_encoded`: for gateways
/// and tools that do not have the method's types.
#[derive(Debug)]
pub enum Encoded {}

/// Send requests of type `Req` and read responses of type `Resp`. Every
/// operation is bounded by the call's deadline; dropping the call cancels it.
#[derive(Debug)]
pub struct StreamingCall<Req, Resp> {
    call: ActiveCall,
    deadline: Instant,
    /// `RpcConfig::max_message_size`: no request message is sent above it.
    max_message: u32,
    /// How the call ended, once it has: the callee's OK status (with its
    /// trailers), or the first error in reading its answer, which every
    /// later read returns again.
    ended: Option<Result<Status, Status>>,
    /// Taken when the call ends: its final status or its first error.
    /// Dropped with the call before that, it counts as cancelled.
    record: Option<CallRecord>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> StreamingCall<Req, Resp> {
    pub(super) fn new(
        call: ActiveCall,
        deadline: Instant,
        max_message: u32,
        record: CallRecord,
    ) -> Self {
        Self {
            call,
            deadline,
            max_message,
            ended: None,
            record: Some(record),
            _types: PhantomData,
        }
    }

    fn conclude(&mut self, code: Code) {
        if let Some(record) = self.record.take() {
            record.end(code);
        }
    }

    /// Passes `result` on, concluding the call if it is an error.
    fn settle<T>(&mut self, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(status) = &result {
            self.conclude(status.code());
        }
        result
    }

    /// Tells the callee no more requests follow.
    pub fn close_send(&mut self) -> Result<(), Status> {
        let closed = self.call.finish_sending().map_err(Status::from);
        self.settle(closed)
    }

    /// Splits off the sending half, so that one task can send while
    /// another reads: a relay's packets flow both ways at once, and neither
    /// way may wait for the other. The call keeps the reading half (and
    /// its sending methods fail from now on). Dropping the sender ends the
    /// requests, as `close_send` does.
    pub fn split(mut self) -> (RequestSender<Req>, Self) {
        let send = self.call.take_send();
        let sender = RequestSender {
            send,
            deadline: self.deadline,
            max_message: self.max_message,
            _types: PhantomData,
        };
        (sender, self)
    }

    /// The callee's OK status, with its trailers, once the call has ended
    /// with it; `None` before that or after an error.
    pub fn final_status(&self) -> Option<&Status> {
        self.ended.as_ref().and_then(|ended| ended.as_ref().ok())
    }

    async fn send_frame(&mut self, frame: OutFrames) -> Result<(), Status> {
        let sent = bounded(self.deadline, self.call.send(frame)).await;
        self.settle(sent)
    }

    /// The next response decoded by `decode`, `None` once the call ended
    /// with OK, or the error status. After an error the call is over: it is
    /// cancelled on the wire, and every later read returns the same error.
    async fn next<T>(
        &mut self,
        decode: impl FnOnce(Bytes) -> Result<T, Status>,
    ) -> Result<Option<T>, Status> {
        if let Some(ended) = &self.ended {
            return ended.clone().map(|_| None);
        }
        let ending = match bounded(self.deadline, self.call.receive()).await {
            Ok(Incoming::Message(payload)) => match decode(payload) {
                Ok(message) => return Ok(Some(message)),
                Err(status) => Err(status),
            },
            Ok(Incoming::Status(status)) if status.is_ok() => Ok(status),
            Ok(Incoming::Status(status)) | Err(status) => Err(status),
        };
        self.conclude(ending.as_ref().map_or_else(Status::code, |_| Code::Ok));
        if ending.is_err() {
            self.call.cancel();
        }
        self.ended = Some(ending.clone());
        ending.map(|_| None)
    }
}

impl StreamingCall<Encoded, Encoded> {
    /// Sends one request message, already encoded.
    pub async fn send_encoded(&mut self, message: &[u8]) -> Result<(), Status> {
        let frame = message_frame(&EncodedRef(message), self.max_message)?;
        self.send_frame(frame).await
    }

    /// The next response's bytes as they came, `None` once the call ended
    /// with OK (see `final_status`), or the error status.
    pub async fn message_encoded(&mut self) -> Result<Option<Bytes>, Status> {
        self.next(Ok).await
    }
}

impl<Req: prost::Message, Resp: prost::Message + Default> StreamingCall<Req, Resp> {
    /// Sends one request message, waiting while the stream's flow control
    /// holds it back, at most until the call's deadline. An error ends the
    /// call, except RESOURCE_EXHAUSTED for a message over
    /// `RpcConfig::max_message_size`, which is refused unsent.
    pub async fn send(&mut self, message: &Req) -> Result<(), Status> {
        let frame = message_frame(message, self.max_message)?;
        self.send_frame(frame).await
    }

    /// The next response, `None` once the call ended with OK, or the error
    /// status. After an error the call is over: it is cancelled on the wire,
    /// and every later read returns the same error.
    pub async fn message(&mut self) -> Result<Option<Resp>, Status> {
        self.next(|payload| {
            Resp::decode(payload).map_err(|e| Status::from(CallError::BadResponse(e)))
        })
        .await
    }

    /// Closes the sending side and waits for the one response of a
    /// client-streaming call.
    pub async fn response(mut self) -> Result<Resp, Status> {
        self.close_send()?;
        let response = self
            .message()
            .await?
            .ok_or_else(|| Status::internal("OK status without a response message"))?;
        match self.message().await? {
            None => Ok(response),
            Some(_) => Err(Status::internal("protocol error: more than one response")),
        }
    }
}

/// The sending half of a split [`StreamingCall`]; every send is bounded
/// by the call's deadline.
#[derive(Debug)]
pub struct RequestSender<Req> {
    /// `None` if the call had already been split.
    send: Option<quinn::SendStream>,
    deadline: Instant,
    max_message: u32,
    _types: PhantomData<fn(Req)>,
}

impl<Req> RequestSender<Req> {
    async fn send_frame(&mut self, frame: OutFrames) -> Result<(), Status> {
        let send = self
            .send
            .as_mut()
            .ok_or_else(|| Status::internal("the call was split twice"))?;
        let written = async { Ok::<_, CallError>(write_frames(send, frame).await?) };
        bounded(self.deadline, written).await
    }
}

impl RequestSender<Encoded> {
    /// Sends one request message, already encoded.
    pub async fn send_encoded(&mut self, message: &[u8]) -> Result<(), Status> {
        let frame = message_frame(&EncodedRef(message), self.max_message)?;
        self.send_frame(frame).await
    }
}

impl<Req: prost::Message> RequestSender<Req> {
    /// Sends one request message, as [`StreamingCall::send`] does.
    pub async fn send(&mut self, message: &Req) -> Result<(), Status> {
        let frame = message_frame(message, self.max_message)?;
        self.send_frame(frame).await
    }
}

/// One request message's frame; one over `max_message` is refused unsent.
fn message_frame(message: &impl Encode, max_message: u32) -> Result<OutFrames, CallError> {
    check_size(message.encoded_len(), max_message)?;
    let mut frame = OutFrames::new();
    frame.put_message(FrameType::Message, message);
    Ok(frame)
}

async fn bounded<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, CallError>>,
) -> Result<T, Status> {
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CallError::DeadlinePassed("the call's deadline passed".to_owned()).into()),
    }
}
