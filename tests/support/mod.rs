//! The integration tests' one harness, a submodule per level: `manager`
//! (connection managers with raw stream handlers), `node` (library `Node`s
//! and the probe service), `daemon` (the `peerd` binary), `frames` (raw RPC
//! frames), `attack` (hostile peers' building blocks), `page` (a browser
//! page played in Rust over WebTransport). Here: loopback addresses and the one way to wait.
// Each test binary uses a part of the harness.
#![allow(dead_code)]

pub mod attack;
pub mod daemon;
pub mod frames;
pub mod manager;
pub mod netns;
pub mod node;
pub mod page;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

pub const SECOND: Duration = Duration::from_secs(1);

/// 127.0.0.`last`, any port: distinct `last`s are distinct source IPs.
pub fn localhost(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 0))
}

/// Whether this test may act as other users (it runs as root). If not, the
/// caller skips, said on stderr; under CI=true, which runs as root, it fails.
pub fn may_act_as_other_users() -> bool {
    runs_as_root("acting as other users")
}

/// Whether this test runs as root, which `needs_root_for` needs. If not, the
/// caller skips, said on stderr; under CI=true, which runs as root, it fails.
pub fn runs_as_root(needs_root_for: &str) -> bool {
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    present_or_skipped(root, &format!("{needs_root_for} needs root"))
}

/// `present`, and if not, says the test is skipped because of `why`; under
/// CI=true, whose .ci/run provides root and every tool, it fails instead.
pub fn present_or_skipped(present: bool, why: &str) -> bool {
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "under CI: {why}"
        );
        eprintln!("skipped: {why}");
    }
    present
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind(localhost(1))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `condition` every 5 ms until it holds or `within` passes; whether
/// it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// `work`'s output; panics if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, work).await.expect("timed out")
}
