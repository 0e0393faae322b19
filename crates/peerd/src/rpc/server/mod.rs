//! `RpcServer`: receives every stream the connection manager accepts, routes
//! the call to its handler, and owns the handler tasks: bounded in number,
//! cancelled with their caller, their deadline, or the node's shutdown.

mod call;
mod inline;
mod poll_once;

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::router::{Method, Route};
use super::slots::HandlerSlots;
use super::wire::borrowed::ReceivedHeader;
use super::{CALLEE, Status};
use super::{Router, RpcConfig};
use crate::connection::{IncomingStream, StreamHandler};
use crate::rpc::stats::CallStats;
use inline::InlinePolls;

/// Serves calls: the connection manager's stream handler, which runs each
/// stream's call through the router under the configured limits. A cheap,
/// clonable handle; clones share handlers, counters and shutdown.
#[derive(Clone)]
pub struct RpcServer {
    shared: Arc<Shared>,
}

struct Shared {
    router: Router,
    calls: Arc<CallStats>,
    config: RpcConfig,
    handler_slots: HandlerSlots,
    draining: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
    inline: InlinePolls,
}

impl RpcServer {
    /// Cancelling `cancel` cancels every running handler.
    pub fn new(router: Router, config: RpcConfig, cancel: CancellationToken) -> Self {
        let handler_slots = HandlerSlots::new(config.max_handlers);
        Self {
            shared: Arc::new(Shared {
                calls: Arc::new(CallStats::server(router.method_names())),
                router,
                config,
                handler_slots,
                draining: AtomicBool::new(false),
                cancel,
                tasks: TaskTracker::new(),
                inline: InlinePolls::new(),
            }),
        }
    }

    /// The handlers this server routes calls to.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }

    /// Counts and durations of the calls served, per method.
    pub fn call_stats(&self) -> &Arc<CallStats> {
        &self.shared.calls
    }

    /// Calls being served now.
    pub fn in_flight(&self) -> usize {
        self.shared.tasks.len()
    }

    /// Handler slots taken now, of `max_handlers`.
    pub fn handlers_busy(&self) -> usize {
        self.shared.handler_slots.in_use()
    }

    /// Refuses new calls with UNAVAILABLE, lets running ones finish for up to
    /// `grace`, then cancels the rest. Returns how many had to be cancelled.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let cancelled = self.in_flight();
        self.shared.cancel.cancel();
        self.shared.tasks.wait().await;
        cancelled
    }
}

impl StreamHandler for RpcServer {
    fn handle_stream(&self, stream: IncomingStream) {
        let accepted = Instant::now();
        // Boxed first, so a call that waits moves into its task as a pointer.
        let mut call = Box::pin(call::serve(self.shared.clone(), stream, accepted));
        // Most calls end in their first poll (the request came with the
        // stream, the handler answers at once): polled here, on the
        // connection's task, they need no task of their own, which costs an
        // aligned allocation, the task list's lock, a schedule and a poll.
        let inline = &self.shared.inline;
        if inline.allowed(accepted) {
            let polled = poll_inline(call.as_mut());
            inline.ran(accepted, accepted.elapsed());
            if polled.is_ready() {
                return;
            }
        }
        self.shared.tasks.spawn(call);
    }
}

/// Polls a call once on the current task. Its waker does nothing: a call
/// that waits is spawned, and a new task is polled at once, which registers
/// the task's own waker wherever the call waits. A handler that panics ends
/// its call, as it would in a task of its own.
fn poll_inline(call: Pin<&mut (impl Future<Output = ()> + ?Sized)>) -> Poll<()> {
    let mut context = Context::from_waker(Waker::noop());
    std::panic::catch_unwind(AssertUnwindSafe(|| call.poll(&mut context)))
        .unwrap_or(Poll::Ready(()))
}

/// The route to `header`'s method: its own, or else the router's fallback,
/// named after the method called (and counted with unknown methods).
/// The route for the header: a call for a hosted agent goes to the router's
/// hosted handler whatever its method, any other to its method's handler
/// or the fallback. `Ok(None)`: no route for the method.
fn route_for<'r>(
    router: &'r Router,
    header: &ReceivedHeader,
) -> Result<Option<Cow<'r, Route>>, Status> {
    if header.metadata.contains_key(CALLEE) {
        let Some(method) = router.hosted() else {
            return Err(Status::not_found("this node hosts no agents"));
        };
        return Ok(raw_route(method, header));
    }
    if let Some(route) = router.route(header.method_bytes()) {
        return Ok(Some(Cow::Borrowed(route)));
    }
    Ok(router
        .fallback()
        .and_then(|method| raw_route(method, header)))
}

fn raw_route<'r>(method: &Method, header: &ReceivedHeader) -> Option<Cow<'r, Route>> {
    Some(Cow::Owned(Route {
        index: usize::MAX,
        name: header.method().ok()?.into(),
        method: method.clone(),
    }))
}
