//! Polling a future once in the current task, so the waits around it (timers,
//! selects) are armed only when it does not finish at once.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// The output if `future` is ready on its first poll; otherwise `None`, and
/// `future` has registered this task's waker as any poll does.
/// (Not an async fn: that would keep room for the output in every caller's
/// future.)
pub(crate) fn poll_once<F: Future>(
    mut future: Pin<&mut F>,
) -> impl Future<Output = Option<F::Output>> + '_ {
    poll_fn(move |context| match future.as_mut().poll(context) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[tokio::test]
    async fn a_ready_future_gives_its_output_and_a_waiting_one_can_still_be_awaited() {
        assert_eq!(poll_once(pin!(async { 7 })).await, Some(7));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut waiting = pin!(receiver);
        assert!(poll_once(waiting.as_mut()).await.is_none());
        sender.send(8).unwrap();
        assert_eq!(waiting.await, Ok(8));
    }
}
