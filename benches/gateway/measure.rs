//! The three paths' calls, timed slots of them, and the report: calls/s per
//! path and concurrency, the per-round ratios' median and range, and p50
//! latency at one call in flight.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::uri::PathAndQuery;
use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::{CallOptions, Identity, Node, NodeId};
use peerd_daemon::gateway::{NODE, RawCodec};
use tokio::task::JoinSet;
use tonic::client::Grpc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::agent;
use crate::cpu::CpuClock;
use crate::topology::Topology;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// Agent A → gateway A → QUIC → gateway B → agent B.
    Gateway,
    /// A library node → QUIC → daemon B's node, its built-in Echo.
    Library,
    /// Agent A → agent B over tonic/TCP.
    Direct,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::Gateway, Path::Library, Path::Direct];

    /// All paths, starting at a different one each round.
    pub fn rotated(round: usize) -> impl Iterator<Item = Path> {
        (0..Self::ALL.len()).map(move |i| Self::ALL[(round + i) % Self::ALL.len()])
    }

    fn name(self) -> &'static str {
        match self {
            Path::Gateway => "gateway",
            Path::Library => "library",
            Path::Direct => "direct tonic",
        }
    }
}

/// Agent A's channels and the library node, all connected.
#[derive(Clone)]
pub struct Caller {
    gateway: Grpc<Channel>,
    direct: Grpc<Channel>,
    target: AsciiMetadataValue,
    node: Node,
    node_b: NodeId,
    payload: Bytes,
}

impl Caller {
    pub async fn connect(topology: &Topology, payload: usize) -> Self {
        let node = Node::builder(Identity::generate())
            .listen("127.0.0.1:0".parse().unwrap())
            .bind()
            .expect("a node");
        node.addresses().add(topology.node_b, topology.node_b_addr);
        let caller = Self {
            gateway: Grpc::new(agent::unix_channel(topology.gateway_a.clone()).await),
            direct: Grpc::new(agent::tcp_channel(topology.agent_b).await),
            target: topology
                .node_b
                .to_string()
                .parse()
                .expect("an ASCII node id"),
            node,
            node_b: topology.node_b,
            payload: Bytes::from(vec![0x5a; payload]),
        };
        for path in Path::ALL {
            caller.check(path).await;
        }
        caller
    }

    /// One call on `path`, its answer checked.
    pub async fn check(&self, path: Path) {
        let answer = self.clone().call(path).await;
        assert_eq!(
            answer,
            self.payload,
            "{} echoed something else",
            path.name()
        );
    }

    /// One call on `path`; a worker's own `Caller` makes all of its calls,
    /// so the timed path clones nothing but the payload's `Bytes`.
    async fn call(&mut self, path: Path) -> Bytes {
        match path {
            Path::Gateway => {
                let mut request = tonic::Request::new(self.payload.clone());
                request.metadata_mut().insert(NODE, self.target.clone());
                grpc_echo(&mut self.gateway, request).await
            }
            Path::Direct => {
                let request = tonic::Request::new(self.payload.clone());
                grpc_echo(&mut self.direct, request).await
            }
            Path::Library => {
                let request = EchoRequest {
                    payload: self.payload.clone(),
                    delay_millis: 0,
                };
                let options = CallOptions::default();
                let response: EchoResponse = self
                    .node
                    .client()
                    .unary(self.node_b, ECHO, &request, &options)
                    .await
                    .expect("a library echo");
                response.payload
            }
        }
    }

    pub async fn close(self) {
        self.node.shutdown(Duration::ZERO).await;
    }
}

async fn grpc_echo(grpc: &mut Grpc<Channel>, request: tonic::Request<Bytes>) -> Bytes {
    grpc.ready().await.expect("a ready channel");
    let method = PathAndQuery::from_static(agent::METHOD);
    grpc.unary(request, method, RawCodec)
        .await
        .expect("a gRPC echo")
        .into_inner()
}

/// What one slot measured.
pub struct Slot {
    calls: u64,
    elapsed: Duration,
    /// CPU time of every part's thread: the whole path's cost.
    cpu: Duration,
    latency: Histogram<u64>,
}

/// Nanoseconds up to a minute, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Runs `in_flight` callers on `path` for `length`.
pub async fn slot(caller: &Caller, path: Path, in_flight: usize, length: Duration) -> Slot {
    let cpu = CpuClock::start();
    let start = Instant::now();
    let deadline = start + length;
    let mut workers = JoinSet::new();
    for _ in 0..in_flight {
        let mut caller = caller.clone();
        workers.spawn(async move {
            let mut latency = histogram();
            while Instant::now() < deadline {
                let sent = Instant::now();
                caller.call(path).await;
                latency.saturating_record(sent.elapsed().as_nanos() as u64);
            }
            latency
        });
    }
    let mut latency = histogram();
    while let Some(worker) = workers.join_next().await {
        latency
            .add(worker.expect("a worker"))
            .expect("same histogram bounds");
    }
    Slot {
        calls: latency.len(),
        elapsed: start.elapsed(),
        cpu: cpu.elapsed(),
        latency,
    }
}

/// Every slot's figures, by concurrency and path.
#[derive(Default)]
pub struct Results(BTreeMap<(usize, Path), Series>);

/// One path's slots at one concurrency.
struct Series {
    /// Calls/s, per slot.
    rates: Vec<f64>,
    /// CPU nanoseconds per call, per slot.
    costs: Vec<f64>,
    latency: Histogram<u64>,
}

impl Results {
    pub fn add(&mut self, path: Path, in_flight: usize, slot: Slot) {
        let series = self.0.entry((in_flight, path)).or_insert_with(|| Series {
            rates: Vec::new(),
            costs: Vec::new(),
            latency: histogram(),
        });
        series
            .rates
            .push(slot.calls as f64 / slot.elapsed.as_secs_f64());
        series
            .costs
            .push(slot.cpu.as_nanos() as f64 / slot.calls.max(1) as f64);
        series
            .latency
            .add(slot.latency)
            .expect("same histogram bounds");
    }

    pub fn print(&self, payload: usize, concurrencies: &[usize]) {
        println!(
            "unary echo, {payload} B: calls/s and CPU per call (medians of rounds), p50 latency"
        );
        for &in_flight in concurrencies {
            for path in Path::ALL {
                let series = &self.0[&(in_flight, path)];
                let (rate, cost) = (median(&series.rates), median(&series.costs));
                let p50 = self.p50(in_flight, path);
                println!(
                    "  x{in_flight:<3} {:<13} {rate:>9.0} calls/s  CPU {:>6.1} µs/call  p50 {:>7.1} µs",
                    path.name(),
                    cost / 1e3,
                    p50.as_nanos() as f64 / 1e3
                );
            }
            for other in [Path::Direct, Path::Library] {
                let (mid, low, high) = self.ratio(in_flight, other);
                println!(
                    "  x{in_flight:<3} gateway / {:<13} {mid:.2} (rounds {low:.2}..{high:.2})",
                    other.name()
                );
            }
        }
        let added = self
            .p50(1, Path::Gateway)
            .saturating_sub(self.p50(1, Path::Library));
        println!(
            "  added p50 per gateway hop at x1: {:.1} µs",
            added.as_nanos() as f64 / 2e3
        );
    }

    fn p50(&self, in_flight: usize, path: Path) -> Duration {
        Duration::from_nanos(self.0[&(in_flight, path)].latency.value_at_quantile(0.5))
    }

    /// The gateway's calls/s over `other`'s, per round: median, min, max.
    fn ratio(&self, in_flight: usize, other: Path) -> (f64, f64, f64) {
        let gateway = &self.0[&(in_flight, Path::Gateway)].rates;
        let other = &self.0[&(in_flight, other)].rates;
        let ratios: Vec<f64> = gateway.iter().zip(other).map(|(g, o)| g / o).collect();
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        (median(&ratios), low, high)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
