//! A streaming call in progress, on the caller's side.

use std::marker::PhantomData;

use tokio::time::Instant;

use super::active::{ActiveCall, Incoming};
use crate::rpc::stats::CallRecord;
use crate::rpc::status::CallError;
use crate::rpc::wire::codec::FrameType;
use crate::rpc::wire::outgoing::OutFrames;
use crate::rpc::{Code, Status};

/// Send requests of type `Req` and read responses of type `Resp`. Every
/// operation is bounded by the call's deadline; dropping the call cancels it.
#[derive(Debug)]
pub struct StreamingCall<Req, Resp> {
    call: ActiveCall,
    deadline: Instant,
    /// How the call ended, once it has: the callee's OK, or the first error
    /// in reading its answer, which every later read returns again.
    ended: Option<Result<(), Status>>,
    /// Taken when the call ends: its final status or its first error.
    /// Dropped with the call before that, it counts as cancelled.
    record: Option<CallRecord>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> StreamingCall<Req, Resp> {
    pub(super) fn new(call: ActiveCall, deadline: Instant, record: CallRecord) -> Self {
        Self {
            call,
            deadline,
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
}

impl<Req: prost::Message, Resp: prost::Message + Default> StreamingCall<Req, Resp> {
    /// Sends one request message, waiting while the stream's flow control
    /// holds it back, at most until the call's deadline. An error ends the
    /// call.
    pub async fn send(&mut self, message: &Req) -> Result<(), Status> {
        let mut frame = OutFrames::new();
        frame.put_message(FrameType::Message, message);
        let sent = bounded(self.deadline, self.call.send(frame)).await;
        self.settle(sent)
    }

    /// Tells the callee no more requests follow.
    pub fn close_send(&mut self) -> Result<(), Status> {
        let closed = self.call.finish_sending().map_err(Status::from);
        self.settle(closed)
    }

    /// The next response, `None` once the call ended with OK, or the error
    /// status. After an error the call is over: it is cancelled on the wire,
    /// and every later read returns the same error.
    pub async fn message(&mut self) -> Result<Option<Resp>, Status> {
        if let Some(ended) = &self.ended {
            return ended.clone().map(|()| None);
        }
        let read = self.read_message().await;
        let ending = match &read {
            Ok(Some(_)) => return read,
            Ok(None) => Ok(()),
            Err(status) => Err(status.clone()),
        };
        self.conclude(ending.as_ref().map_or_else(Status::code, |()| Code::Ok));
        if ending.is_err() {
            self.call.cancel();
        }
        self.ended = Some(ending);
        read
    }

    async fn read_message(&mut self) -> Result<Option<Resp>, Status> {
        match bounded(self.deadline, self.call.receive()).await? {
            Incoming::Message(payload) => Resp::decode(payload)
                .map(Some)
                .map_err(|e| CallError::BadResponse(e).into()),
            Incoming::Status(status) if status.is_ok() => Ok(None),
            Incoming::Status(status) => Err(status),
        }
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

async fn bounded<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, CallError>>,
) -> Result<T, Status> {
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Status::deadline_exceeded("the call's deadline passed")),
    }
}
