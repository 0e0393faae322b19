//! Measurement primitives that the connection and RPC layers record into:
//! a latency histogram with fixed memory. Aggregating them and exposing them
//! to Prometheus is the daemon's work.

mod histogram;

pub use histogram::{Histogram, HistogramSnapshot};
