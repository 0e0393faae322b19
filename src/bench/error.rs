//! Why a bench could not run. Failed calls are not errors of the bench: the
//! report counts them by status code.

use peerd::connection::{BindError, ConnectError};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("concurrency must be at least 1")]
    NoConcurrency,
    #[error("connections must be at least 1")]
    NoConnection,
    #[error(
        "{connections} connections cannot all carry calls with a concurrency of {concurrency}: \
         use at most as many connections as calls in flight"
    )]
    IdleConnections {
        connections: usize,
        concurrency: usize,
    },
    #[error("the bench would make no call: give a positive duration or number of calls")]
    NothingToMeasure,
    #[error(
        "a payload of {size} bytes does not fit in one message; the largest is {largest} bytes"
    )]
    PayloadTooLarge { size: usize, largest: usize },
    #[error("cannot bind a local node: {0}")]
    Bind(#[from] BindError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("a load worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}
