//! A page's calls through its host beside a native node's direct calls, in
//! one run: 1 KiB `Echo` calls, one at a time, to a native node on
//! loopback, from another native node over its own peerd connection, from
//! a page played in Rust (tests/support/page.rs) through a daemon
//! (WebTransport, then the daemon's peerd connection), and from a headless
//! Chromium page the same way. The Rust page separates the daemon's
//! forwarding from the browser's own costs. docs/performance.md records
//! runs.
//!
//! `cargo bench --bench browser` measures for 5 s each; under `cargo test`
//! each runs for 300 ms, as a smoke test. Needs what tests/browser.rs
//! needs (scripts/browser-setup.sh).

#[path = "../tests/support/mod.rs"]
mod harness;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::daemon::Daemon;
use harness::localhost;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::{CallOptions, Identity, Node, NodeId};
use prost::Message;

const ECHO: &str = "peerd.node.v1.Node/Echo";

struct Figures {
    calls_per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let seconds = if measuring { 5.0 } else { 0.3 };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &[
            "--set",
            "browser.enabled=true",
            "--set",
            "browser.listen=127.0.0.1:0",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (target, caller) = runtime.block_on(async {
        let target = bind();
        let caller = bind();
        // The daemon reaches the target over the connection it dialed.
        echo(&target, daemon.id, Some(daemon.addr)).await;
        (target, caller)
    });
    let native = runtime.block_on(native_calls(&caller, &target, seconds));
    let rust_page = runtime.block_on(rust_page_calls(&daemon, target.id(), seconds));
    let page = page_calls(repo, &daemon, target.id(), seconds);
    println!("1 KiB unary Echo, one call at a time, to a native node on loopback:");
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "caller", "calls/s", "p50", "p99"
    );
    let rows = [
        ("native node, direct", &native),
        ("Rust page, through its host", &rust_page),
        ("Chromium page, through its host", &page),
    ];
    for (name, figures) in rows {
        println!(
            "{name:<32} {:>10.0} {:>10.1?} {:>10.1?}",
            figures.calls_per_second, figures.p50, figures.p99
        );
    }
    println!(
        "calls/s against the native node's: Rust page {:.2}, Chromium page {:.2}",
        rust_page.calls_per_second / native.calls_per_second,
        page.calls_per_second / native.calls_per_second
    );
}

fn bind() -> Node {
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .unwrap()
}

async fn echo(from: &Node, to: NodeId, addr: Option<std::net::SocketAddr>) -> Duration {
    let request = EchoRequest {
        payload: vec![b'x'; 1024].into(),
        ..Default::default()
    };
    let options = addr.map_or_else(CallOptions::default, |addr| {
        CallOptions::default().with_addr(addr)
    });
    let started = Instant::now();
    from.client()
        .unary::<_, EchoResponse>(to, ECHO, &request, &options)
        .await
        .unwrap();
    started.elapsed()
}

async fn native_calls(caller: &Node, target: &Node, seconds: f64) -> Figures {
    echo(caller, target.id(), Some(target.local_addr())).await;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut times = Vec::new();
    while Instant::now() < end {
        times.push(echo(caller, target.id(), None).await);
    }
    figures(times)
}

async fn rust_page_calls(daemon: &Daemon, target: NodeId, seconds: f64) -> Figures {
    let page = harness::page::accepted(daemon).await;
    let request = EchoRequest {
        payload: vec![b'x'; 1024].into(),
        ..Default::default()
    }
    .encode_to_vec();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut times = Vec::new();
    while Instant::now() < end {
        let started = Instant::now();
        let (_, status) = harness::page::unary(&page, target, ECHO, &request).await;
        assert_eq!(status.code, 0, "{status:?}");
        times.push(started.elapsed());
    }
    figures(times)
}

fn figures(mut times: Vec<Duration>) -> Figures {
    times.sort();
    let total: Duration = times.iter().sum();
    Figures {
        calls_per_second: times.len() as f64 / total.as_secs_f64(),
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
    }
}

fn page_calls(repo: &Path, daemon: &Daemon, target: NodeId, seconds: f64) -> Figures {
    let info = format!("http://{}/browser", daemon.metrics.unwrap());
    let output = Command::new("node")
        .current_dir(repo)
        .arg("tests/browser/run.mjs")
        .args(["--info", &info, "--scenario", "bench"])
        .args(["--target", &target.to_string()])
        .args(["--param", &format!("seconds={seconds}")])
        .output()
        .expect("node tests/browser/run.mjs (run scripts/browser-setup.sh first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result: {}", String::from_utf8_lossy(&output.stderr)));
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    let ms = |key: &str| Duration::from_secs_f64(result[key].as_f64().unwrap() / 1000.0);
    Figures {
        calls_per_second: result["callsPerSecond"].as_f64().unwrap(),
        p50: ms("p50Ms"),
        p99: ms("p99Ms"),
    }
}
