//! A unary call as the server hands it to its method: routed and admitted,
//! its request not yet read. The method answers it whole, in one future.

use std::future::Future;

use bytes::{BufMut, Bytes};
use tokio::sync::Semaphore;

use super::io::{FrameReader, write_and_finish};
use super::slots::handler_slot;
use super::wire::outgoing::{OK_STATUS_FRAME, OutFrames};
use super::{CallContext, Status};

/// A unary call, routed and admitted, for its method to answer.
pub(crate) struct UnaryCall<'a> {
    pub(crate) slots: &'a Semaphore,
    pub(crate) context: CallContext,
    pub(crate) reader: FrameReader,
    pub(crate) send: &'a mut quinn::SendStream,
}

impl UnaryCall<'_> {
    /// Waits for a handler slot, reads the request, and writes the response
    /// frames `respond` makes of it, then the OK status.
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
            let _slot = handler_slot(self.slots).await?;
            let request = self.reader.single_message().await?;
            let mut answer = respond(self.context, request).await?;
            answer.put_slice(&OK_STATUS_FRAME);
            write_and_finish(self.send, answer).await
        }
    }
}
