//! A streaming call in progress, on the caller's side.

use std::marker::PhantomData;

use tokio::time::Instant;

use super::active::{ActiveCall, Incoming};
use crate::metrics::CallRecord;
use crate::rpc::codec::FrameType;
use crate::rpc::outgoing::OutFrames;
use crate::rpc::status::CallError;
use crate::rpc::{Code, Status};

/// Send requests of type `Req` and read responses of type `Resp`. Every
/// operation is bounded by the call's deadline; dropping the call cancels it.
#[derive(Debug)]
pub struct StreamingCall<Req, Resp> {
    call: ActiveCall,
    deadline: Instant,
    finished: bool,
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
            finished: false,
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

    /// The next response, `None` once the call ended with OK, or the error status.
    pub async fn message(&mut self) -> Result<Option<Resp>, Status> {
        if self.finished {
            return Ok(None);
        }
        let received = bounded(self.deadline, self.call.receive()).await;
        match self.settle(received)? {
            Incoming::Message(payload) => {
                let decoded = Resp::decode(payload).map_err(|e| CallError::BadResponse(e).into());
                self.settle(decoded).map(Some)
            }
            Incoming::Status(status) => {
                self.finished = true;
                self.conclude(status.code());
                if status.is_ok() {
                    Ok(None)
                } else {
                    Err(status)
                }
            }
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
