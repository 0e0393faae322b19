//! Node metrics for Prometheus. Counters live where things happen in the
//! library (RPC calls, handshakes); what is open now (connections, streams,
//! traffic) is read when scraped. `http` serves them with the liveness and
//! readiness probes.

mod exposition;
mod http;
mod nat;
mod process;
mod render;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use exposition::CONTENT_TYPE;
pub use http::{BrowserInfo, MetricsServer, MetricsServerError, Readiness};

use peerd::Node;
use peerd::connection::Traffic;

/// One node's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    node: Node,
    traffic: MonotonicTraffic,
    /// Metrics of the daemon's other parts (the agent gateway), appended.
    extra: std::sync::OnceLock<Box<dyn Fn() -> String + Send + Sync>>,
}

/// Finished calls of both roles, for `peerd status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTotals {
    pub served: u64,
    pub served_errors: u64,
    pub made: u64,
    pub made_errors: u64,
}

impl Metrics {
    /// The metrics of `node`: its connections, the calls its server and
    /// client record, its relayed paths and its relay.
    pub fn of(node: &Node) -> Self {
        Self {
            inner: Arc::new(Inner {
                node: node.clone(),
                traffic: MonotonicTraffic::default(),
                extra: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Every metric in the Prometheus text format (`CONTENT_TYPE`).
    pub fn render(&self) -> String {
        let inner = &self.inner;
        let node = &inner.node;
        let mut text = render::render(&render::Sources {
            node,
            calls: [node.server().call_stats(), node.client().call_stats()],
            traffic: &inner.traffic,
        });
        if let Some(extra) = inner.extra.get() {
            text.push_str(&extra());
        }
        text
    }

    /// Appends `render`'s text (whole metric families) to every scrape;
    /// set once.
    pub fn append(&self, render: impl Fn() -> String + Send + Sync + 'static) {
        let _ = self.inner.extra.set(Box::new(render));
    }

    pub fn call_totals(&self) -> CallTotals {
        let node = &self.inner.node;
        let (served, served_errors) = node.server().call_stats().totals();
        let (made, made_errors) = node.client().call_stats().totals();
        CallTotals {
            served,
            served_errors,
            made,
            made_errors,
        }
    }
}

/// Traffic counters that never go down. A connection's bytes move from the
/// open sum to the closed total when it closes; a scrape in between can miss
/// them for a moment, and Prometheus would read the dip as a counter reset.
#[derive(Debug, Default)]
struct MonotonicTraffic {
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
    lost_packets: AtomicU64,
}

impl MonotonicTraffic {
    /// The larger of `now` and what was reported before, per counter.
    fn report(&self, now: Traffic) -> Traffic {
        let at_least = |reported: &AtomicU64, value: u64| {
            reported.fetch_max(value, Ordering::Relaxed).max(value)
        };
        Traffic {
            sent_bytes: at_least(&self.sent_bytes, now.sent_bytes),
            received_bytes: at_least(&self.received_bytes, now.received_bytes),
            lost_packets: at_least(&self.lost_packets, now.lost_packets),
        }
    }
}
