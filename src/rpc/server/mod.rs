//! `RpcServer`: receives every stream the connection manager accepts, routes
//! the call to its handler, and owns the handler tasks: bounded in number,
//! cancelled with their caller, their deadline, or the node's shutdown.

mod call;

pub(crate) use call::{UnaryCall, response_frames};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Router, RpcConfig};
use crate::connection::{IncomingStream, StreamHandler};
use crate::metrics::CallStats;

#[derive(Clone)]
pub struct RpcServer {
    shared: Arc<Shared>,
}

struct Shared {
    router: Router,
    calls: Arc<CallStats>,
    config: RpcConfig,
    handler_slots: Arc<Semaphore>,
    draining: AtomicBool,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl RpcServer {
    /// Cancelling `cancel` cancels every running handler.
    pub fn new(router: Router, config: RpcConfig, cancel: CancellationToken) -> Self {
        let handler_slots = Arc::new(Semaphore::new(config.max_handlers));
        Self {
            shared: Arc::new(Shared {
                calls: Arc::new(CallStats::server(router.method_names())),
                router,
                config,
                handler_slots,
                draining: AtomicBool::new(false),
                cancel,
                tasks: TaskTracker::new(),
            }),
        }
    }

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
        // Boxed first, so spawning moves a pointer, not the whole call future.
        let call = Box::pin(call::serve(self.shared.clone(), stream));
        self.shared.tasks.spawn(call);
    }
}
