//! `peerd_daemon::bench` against an in-process node over real QUIC on loopback: the
//! report of a short run is consistent, a call budget is exact, and a wrong
//! target fails with the handshake's reason.

mod support;

use std::time::Duration;

use peerd::connection::ConnectError;
use peerd::{Identity, Node};
use peerd_daemon::bench::{self, BenchConfig, BenchError, Phase, Report, Stop};
use support::node::bind_node;

fn config_for(node: &Node) -> BenchConfig {
    BenchConfig {
        concurrency: 8,
        connections: 2,
        payload_size: 1024,
        warmup: Duration::from_millis(200),
        ..BenchConfig::new(node.id(), node.local_addr())
    }
}

fn assert_consistent(report: &Report) {
    assert!(report.calls > 0, "{report:#?}");
    assert!(report.errors.is_empty(), "{report:#?}");
    let latency = report.latency;
    assert!(latency.p50_us > 0);
    assert!(latency.p50_us <= latency.p90_us, "{latency:?}");
    assert!(latency.p90_us <= latency.p99_us, "{latency:?}");
    assert!(latency.p99_us <= latency.max_us, "{latency:?}");
    let rate = report.calls as f64 / report.elapsed.as_secs_f64();
    assert!((report.calls_per_sec - rate).abs() < 1e-6 * rate);
    let payload_rate = rate * 1024.0 * 2.0 / 1e6;
    assert!((report.mb_per_sec - payload_rate).abs() < 1e-6 * payload_rate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_bench_reports_consistent_figures() {
    let target = bind_node();
    let config = BenchConfig {
        stop: Stop::Duration(Duration::from_secs(1)),
        ..config_for(&target)
    };
    let mut phases = Vec::new();
    let report = bench::run(config, |progress| phases.push(progress.phase))
        .await
        .expect("the bench runs");

    assert_consistent(&report);
    assert!(report.elapsed >= Duration::from_secs(1));
    assert!(
        report.elapsed < Duration::from_secs(3),
        "{:?}",
        report.elapsed
    );
    assert!(
        phases.iter().all(|&phase| phase == Phase::Measure),
        "no warm-up progress in 200 ms"
    );
    assert_eq!(
        target.manager().stats().accepted,
        2,
        "one connection per --connections"
    );
    target.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_budget_makes_exactly_that_many_calls_after_the_warm_up() {
    let target = bind_node();
    let config = BenchConfig {
        stop: Stop::Calls(500),
        ..config_for(&target)
    };
    let report = bench::run(config, |_| {}).await.expect("the bench runs");

    assert_eq!(report.calls, 500);
    assert_consistent(&report);
    target.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_the_address_with_another_key_is_refused_in_the_handshake() {
    let target = bind_node();
    let impostor = Identity::generate().node_id();
    let config = BenchConfig::new(impostor, target.local_addr());
    let err = bench::run(config, |_| {}).await.unwrap_err();

    assert!(
        matches!(err, BenchError::Connect(ConnectError::WrongNode { expected, .. }) if expected == impostor),
        "{err}"
    );
    target.shutdown(Duration::from_secs(1)).await;
}
