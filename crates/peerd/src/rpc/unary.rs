//! A unary call as the server hands it to its method: routed and admitted,
//! its request not yet read. The method answers it whole, in one future.

use std::future::Future;

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use bytes::{BufMut, Bytes};
use tokio::time::Instant;

use super::io::{FrameReader, write_and_finish};
use super::slots::{HandlerSlots, handler_slot, until_revoked};
use super::wire::outgoing::{OK_STATUS_FRAME, OutFrames};
use super::{CallContext, Status};

/// A unary call, routed and admitted, for its method to answer.
pub(crate) struct UnaryCall<'a> {
    pub(crate) slots: &'a HandlerSlots,
    pub(crate) context: CallContext,
    pub(crate) reader: FrameReader,
    pub(crate) send: &'a mut quinn::SendStream,
    /// The request must have arrived by then: it is read holding a slot.
    pub(crate) request_by: Instant,
}

impl UnaryCall<'_> {
    /// Waits for a handler slot, reads the request (by `request_by`), and
    /// writes the response frames `respond` makes of it, then the OK
    /// status. The request is read holding the slot, so that the bytes
    /// read into memory are bounded by the slots, and for a bounded time.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn keeps a second copy of its arguments"
    )]
    pub(crate) fn answer(
        mut self,
        respond: impl AsyncFnOnce(CallContext, Bytes) -> Result<OutFrames, Status>,
    ) -> impl Future<Output = Result<(), Status>> {
        // The call's parts are used where they were captured: moved into
        // locals, they would take room in the future a second time.
        async move {
            let slot = handler_slot(self.slots, &self.context).await?;
            let answering = async {
                let request = read_request(&mut self.reader, self.request_by).await?;
                let mut answer = respond(self.context, request).await?;
                answer.put_slice(&OK_STATUS_FRAME);
                write_and_finish(self.send, answer).await
            };
            until_revoked(&slot, answering).await
        }
    }
}

/// The request message, once it has all arrived; no timer is armed if it
/// came with the stream.
async fn read_request(reader: &mut FrameReader, by: Instant) -> Result<Bytes, Status> {
    let mut read = pin!(reader.single_message());
    // One poll first, in this task: most requests came with the stream.
    if let Poll::Ready(request) = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
        return Ok(request?);
    }
    match tokio::time::timeout_at(by, read).await {
        Ok(request) => Ok(request?),
        Err(_) => Err(Status::deadline_exceeded(
            "the request did not arrive within the header timeout",
        )),
    }
}
