//! A streaming call in progress, on the caller's side.

use std::marker::PhantomData;

use bytes::BytesMut;
use tokio::time::Instant;

use super::active::{ActiveCall, Incoming};
use crate::rpc::Status;
use crate::rpc::codec::{FrameType, put_message_frame};
use crate::rpc::status::CallError;

/// Send requests of type `Req` and read responses of type `Resp`. Every
/// operation is bounded by the call's deadline; dropping the call cancels it.
#[derive(Debug)]
pub struct StreamingCall<Req, Resp> {
    call: ActiveCall,
    deadline: Instant,
    finished: bool,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> StreamingCall<Req, Resp> {
    pub(super) fn new(call: ActiveCall, deadline: Instant) -> Self {
        Self {
            call,
            deadline,
            finished: false,
            _types: PhantomData,
        }
    }
}

impl<Req: prost::Message, Resp: prost::Message + Default> StreamingCall<Req, Resp> {
    pub async fn send(&mut self, message: &Req) -> Result<(), Status> {
        let mut frame = BytesMut::new();
        put_message_frame(&mut frame, FrameType::Message, message);
        bounded(self.deadline, self.call.send(frame.freeze())).await
    }

    /// Tells the callee no more requests follow.
    pub fn close_send(&mut self) -> Result<(), Status> {
        Ok(self.call.finish_sending()?)
    }

    /// The next response, `None` once the call ended with OK, or the error status.
    pub async fn message(&mut self) -> Result<Option<Resp>, Status> {
        if self.finished {
            return Ok(None);
        }
        match bounded(self.deadline, self.call.receive()).await? {
            Incoming::Message(payload) => {
                Ok(Some(Resp::decode(payload).map_err(CallError::BadResponse)?))
            }
            Incoming::Status(status) => {
                self.finished = true;
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
