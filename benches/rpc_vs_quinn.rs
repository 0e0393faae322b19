//! peerd's RPC path and raw quinn streams doing the same work, side by side in
//! one run. Each group ends with a table of both throughputs and their ratio
//! (peerd / quinn), and the CPU time (both threads) one iteration cost each;
//! docs/performance.md records runs and what limits them.
//!
//! `cargo bench --bench rpc_vs_quinn` measures; `cargo test --benches` runs
//! every bench once as a smoke test.

mod support;

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use peerd::node_service::proto::EchoRequest;
use support::cpu::CpuClock;
use support::fixture::Fixture;
use support::tally::{Side, Tally, Unit};
use support::{Tickets, payload, raw, rpc, time_workers};

/// Samples per bench where an iteration is one call: enough for criterion's
/// statistics within the measurement time even at a few thousand calls/s.
const CALL_SAMPLES: usize = 30;
/// Samples per bulk bench: an iteration moves `BULK_COUNT * BULK_SIZE` bytes.
const BULK_SAMPLES: usize = 10;
const BULK_SIZE: u32 = 64 * 1024;
const BULK_COUNT: u32 = 128;
/// The payload of "small" calls: the dial bench and the connections bench.
const SMALL: usize = 64;
const IN_FLIGHT: usize = 64;

/// Unary echo calls, `in_flight` at a time, spread over `connections`.
struct EchoWork<'a> {
    name: &'a str,
    payload: usize,
    in_flight: usize,
    connections: usize,
}

fn unary_echo(c: &mut Criterion) {
    let fixture = Fixture::start(1);
    let works = [
        ("1KiB_x1", 1024, 1),
        ("1KiB_x64", 1024, IN_FLIGHT),
        ("64KiB_x64", 64 * 1024, IN_FLIGHT),
    ];
    let tally = Tally::new("unary_echo", Unit::Calls, CALL_SAMPLES);
    let mut group = calls_group(c, "unary_echo");
    for (name, payload, in_flight) in works {
        let work = EchoWork {
            name,
            payload,
            in_flight,
            connections: 1,
        };
        bench_echo(&mut group, &tally, &fixture, &work);
    }
    group.finish();
    tally.print();
}

fn connections(c: &mut Criterion) {
    let fixture = Fixture::start(16);
    let tally = Tally::new("connections", Unit::Calls, CALL_SAMPLES);
    let mut group = calls_group(c, "connections");
    for (name, connections) in [("1_conn", 1), ("4_conns", 4), ("16_conns", 16)] {
        let work = EchoWork {
            name,
            payload: SMALL,
            in_flight: IN_FLIGHT,
            connections,
        };
        bench_echo(&mut group, &tally, &fixture, &work);
    }
    group.finish();
    tally.print();
}

fn calls_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(CALL_SAMPLES)
        .throughput(Throughput::Elements(1));
    group
}

fn bench_echo(
    group: &mut BenchmarkGroup<'_, WallTime>,
    tally: &Tally,
    fixture: &Fixture,
    work: &EchoWork<'_>,
) {
    let payload = payload(work.payload);
    let target = fixture.server.node;
    let quinn = |calls| {
        let tickets = Tickets::new(calls);
        let workers = (0..work.in_flight).map(|i| {
            let connection = fixture.raw_echo[i % work.connections].clone();
            raw::echo_worker(connection, payload.clone(), tickets.clone())
        });
        fixture.block_on(time_workers(workers))
    };
    let peerd = |calls| {
        let tickets = Tickets::new(calls);
        let workers = (0..work.in_flight).map(|i| {
            let client = fixture.nodes[i % work.connections].client().clone();
            rpc::echo_worker(client, target, payload.clone(), tickets.clone())
        });
        fixture.block_on(time_workers(workers))
    };
    measure_pair(group, tally, work.name, &quinn, &peerd);
}

/// Has criterion measure both sides of `work` (each run given its number of
/// iterations returns their wall time), then the tally interleave them.
fn measure_pair(
    group: &mut BenchmarkGroup<'_, WallTime>,
    tally: &Tally,
    work: &str,
    quinn: &dyn Fn(u64) -> Duration,
    peerd: &dyn Fn(u64) -> Duration,
) {
    for (side, run) in [(Side::Quinn, quinn), (Side::Peerd, peerd)] {
        group.bench_function(BenchmarkId::new(side.name(), work), |b| {
            b.iter_custom(|iterations| {
                let cpu = CpuClock::start();
                let elapsed = run(iterations);
                tally.note(work, side, iterations, elapsed, cpu)
            })
        });
    }
    tally.interleave(work, quinn, peerd);
}

/// One stream (one server-streaming call for peerd) carrying
/// `BULK_COUNT` messages of `BULK_SIZE` bytes from the server.
fn bulk(c: &mut Criterion) {
    let fixture = Fixture::start(1);
    let server = fixture.server;
    let raw_bulk = fixture.block_on(fixture.dialers[0].connect(server.raw, server.raw_bulk));
    let bytes = u64::from(BULK_COUNT * BULK_SIZE);
    let tally = Tally::new("bulk", Unit::Bytes(bytes), BULK_SAMPLES);
    let mut group = c.benchmark_group("bulk");
    group
        .sample_size(BULK_SAMPLES)
        .throughput(Throughput::BytesDecimal(bytes));
    let client = fixture.nodes[0].client();
    let quinn = |times| {
        fixture.block_on(timed(times, async || {
            raw::bulk(&raw_bulk, BULK_COUNT, BULK_SIZE).await;
        }))
    };
    let peerd = |times| {
        fixture.block_on(timed(times, async || {
            rpc::bulk(client, server.node, BULK_COUNT, BULK_SIZE).await;
        }))
    };
    measure_pair(&mut group, &tally, "64KiB_messages", &quinn, &peerd);
    group.finish();
    tally.print();
}

/// A new connection and one small echo on it: the handshake (mutual TLS with
/// Ed25519 certificates) dominates. Closing the connection is not timed.
fn dial_and_call(c: &mut Criterion) {
    let fixture = Fixture::start(1);
    let server = fixture.server;
    let payload = payload(SMALL);
    let tally = Tally::new("dial_and_call", Unit::Calls, CALL_SAMPLES);
    let mut group = calls_group(c, "dial_and_call");
    let dialer = &fixture.dialers[0];
    let quinn = |dials| {
        fixture.block_on(sum_timed(dials, async || {
            let start = Instant::now();
            let connection = dialer.connect(server.raw, server.raw_echo).await;
            raw::echo(&connection, &payload).await;
            let elapsed = start.elapsed();
            connection.close(0u32.into(), b"");
            elapsed
        }))
    };
    let node = &fixture.nodes[0];
    let request = EchoRequest {
        payload: payload.clone(),
        delay_millis: 0,
    };
    let peerd = |dials| {
        fixture.block_on(sum_timed(dials, async || {
            // The next call finds no connection and dials.
            node.manager().disconnect(server.node);
            let start = Instant::now();
            rpc::echo(node.client(), server.node, &request).await;
            start.elapsed()
        }))
    };
    measure_pair(&mut group, &tally, "64B_echo", &quinn, &peerd);
    group.finish();
    tally.print();
}

/// Wall time of `times` runs of `work`, one after the other.
async fn timed(times: u64, work: impl AsyncFn()) -> Duration {
    let start = Instant::now();
    for _ in 0..times {
        work().await;
    }
    start.elapsed()
}

/// The sum of the times `work` reports for each of `times` runs, for work
/// whose untimed part (a close) must stay out of the figure.
async fn sum_timed(times: u64, work: impl AsyncFn() -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..times {
        total += work().await;
    }
    total
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = unary_echo, bulk, dial_and_call, connections
}
criterion_main!(benches);
