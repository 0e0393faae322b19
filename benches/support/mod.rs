//! What the side-by-side benches share: the server thread, the client
//! fixture, both ways of doing each work (peerd RPC and raw quinn), and the
//! tally that prints the peerd / quinn ratio of each pair.

pub mod cpu;
pub mod fixture;
pub mod raw;
pub mod rpc;
pub mod tally;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// 127.0.0.1, a port the OS picks: every socket of the benches is on loopback.
pub const LOCALHOST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Largest echo either side accepts: bigger than any payload the benches send.
pub const MAX_ECHO: usize = 1 << 20;

/// How many calls are left to make, shared by the workers of one sample so
/// that `in_flight` workers make exactly the calls criterion asked for.
pub struct Tickets(AtomicU64);

impl Tickets {
    pub fn new(calls: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(calls)))
    }

    /// Takes one call; false once none is left.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

/// Runs the workers as tasks of the current runtime and returns the wall
/// time until the last one is done.
pub async fn time_workers<W>(workers: impl IntoIterator<Item = W>) -> Duration
where
    W: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let mut running = JoinSet::new();
    for worker in workers {
        running.spawn(worker);
    }
    while let Some(done) = running.join_next().await {
        done.expect("a bench worker panicked");
    }
    start.elapsed()
}

/// A one-thread runtime: the setup of the reference figures runs the server
/// and the client each on one of these, on separate OS threads.
pub fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Bytes of `len`, the same for both sides. QUIC does not compress, so the
/// content does not matter.
pub fn payload(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![0x5a; len])
}
