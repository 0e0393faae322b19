//! Metrics as an operator sees them: scrapes of /metrics after a known set of
//! calls, the probes through a SIGTERM drain, the rates of `peerd status`,
//! and promtool's verdict on the exposition.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use peerd::node_service::proto::{EchoRequest, EchoResponse, PingRequest, PingResponse};
use peerd::node_service::{ECHO, PING};
use peerd::{CallOptions, Code, Node, NodeId};
use peerd_daemon::metrics::{Metrics, MetricsServer, Readiness};
use support::daemon::Daemon;
use support::node::bind_node;
use support::{SECOND, eventually, localhost, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const MISSING: &str = "peerd.node.v1.Node/Missing";
const REQUESTS: &str = "peerd_rpc_requests_total";
const IN_FLIGHT: &str = "peerd_rpc_in_flight_requests";

/// The text of one scrape, with lookups by name and labels.
struct Scrape(String);

impl Scrape {
    /// `(name, labels, value)` of every sample.
    fn samples(&self) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f64)> {
        self.0.lines().filter(|l| !l.starts_with('#')).map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels
                .trim_end_matches('}')
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").expect("a label");
                    (key, value.trim_end_matches('"'))
                })
                .collect();
            (name, labels, value.parse().expect("a number"))
        })
    }

    /// The sample with exactly these labels, in any order.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut wanted = labels.to_vec();
        wanted.sort();
        self.samples()
            .find(|(n, l, _)| *n == name && sorted(l) == wanted)
            .map(|(_, _, value)| value)
    }

    /// The sum of the samples that carry at least these labels.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples()
            .filter(|(n, l, _)| *n == name && labels.iter().all(|p| l.contains(p)))
            .map(|(_, _, value)| value)
            .sum()
    }
}

fn sorted<'a>(labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = labels.to_vec();
    labels.sort();
    labels
}

/// GET `path` with a fresh connection: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = within(5 * SECOND, exchange).await?;
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    Ok((status.expect("a status code"), body.to_owned()))
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics").await.expect("scrape");
    assert_eq!(status, 200);
    Scrape(body)
}

/// A node's metrics listener on 127.0.0.1, always ready.
struct Listener {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start(node: &Node) -> Self {
        let server = MetricsServer::bind(localhost(1))
            .await
            .expect("bind metrics");
        let addr = server.local_addr();
        let cancel = CancellationToken::new();
        let ready: Readiness = Arc::new(|| true);
        let task = tokio::spawn(server.serve(Metrics::of(node), ready, cancel.clone()));
        Self { addr, cancel, task }
    }

    async fn stop(self) {
        self.cancel.cancel();
        within(SECOND, self.task).await.expect("listener task");
    }
}

/// The built-in `Echo` RPC of `request`, under the default deadline.
async fn echo_of(
    client: &Node,
    to: NodeId,
    request: &EchoRequest,
) -> Result<EchoResponse, peerd::Status> {
    client
        .client()
        .unary(to, ECHO, request, &CallOptions::default())
        .await
}

async fn call_missing(client: &Node, to: NodeId) {
    let answer = client
        .client()
        .unary::<_, EchoResponse>(
            to,
            MISSING,
            &EchoRequest::default(),
            &CallOptions::default(),
        )
        .await;
    assert_eq!(answer.unwrap_err().code(), Code::Unimplemented);
}

/// Scrapes until `done` holds; the server counts a call just after its
/// answer leaves, so the caller can be a moment ahead.
async fn scrape_when(addr: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
    for _ in 0..200 {
        let scrape = scrape(addr).await;
        if done(&scrape) {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics never settled:\n{}", scrape(addr).await.0);
}

#[tokio::test]
async fn a_scrape_shows_exactly_the_calls_made_with_their_codes() {
    const OK_CALLS: usize = 5;
    const FAILED_CALLS: usize = 3;
    let (alice, bob) = (bind_node(), bind_node());
    bob.addresses().add(alice.id(), alice.local_addr());
    let listener = Listener::start(&alice).await;
    for _ in 0..OK_CALLS {
        echo_of(&bob, alice.id(), &EchoRequest::default())
            .await
            .unwrap();
    }
    for _ in 0..FAILED_CALLS {
        call_missing(&bob, alice.id()).await;
    }

    // Besides these calls, the nodes' discovery exchanges Info calls.
    let echo_ok = [("method", ECHO), ("role", "server"), ("code", "OK")];
    let unknown = [
        ("method", "unknown"),
        ("role", "server"),
        ("code", "UNIMPLEMENTED"),
    ];
    let server = [("role", "server")];
    let all_calls = (OK_CALLS + FAILED_CALLS) as f64;
    let served = scrape_when(listener.addr, |s| {
        let counted = s.sum(REQUESTS, &echo_ok) + s.sum(REQUESTS, &unknown);
        counted == all_calls && s.value(IN_FLIGHT, &server) == Some(0.0)
    })
    .await;
    assert_eq!(served.value(REQUESTS, &echo_ok), Some(OK_CALLS as f64));
    assert_eq!(served.value(REQUESTS, &unknown), Some(FAILED_CALLS as f64));
    let durations = "peerd_rpc_duration_seconds_count";
    let echo_server = [("method", ECHO), ("role", "server")];
    assert_eq!(served.value(durations, &echo_server), Some(OK_CALLS as f64));
    let unknown_server = [("method", "unknown"), ("role", "server")];
    assert_eq!(
        served.value(durations, &unknown_server),
        Some(FAILED_CALLS as f64)
    );
    let inf = [("method", ECHO), ("role", "server"), ("le", "+Inf")];
    assert_eq!(
        served.value("peerd_rpc_duration_seconds_bucket", &inf),
        Some(OK_CALLS as f64)
    );
    let open = "peerd_connections_open";
    assert_eq!(served.value(open, &[("direction", "inbound")]), Some(1.0));
    assert_eq!(served.value(open, &[("direction", "outbound")]), Some(0.0));
    let accepted = [("direction", "inbound"), ("result", "ok")];
    assert_eq!(
        served.value("peerd_connections_total", &accepted),
        Some(1.0)
    );
    let handshakes = "peerd_handshake_duration_seconds_count";
    assert_eq!(
        served.value(handshakes, &[("direction", "inbound")]),
        Some(1.0)
    );
    assert!(served.value("peerd_quic_received_bytes_total", &[]) > Some(0.0));

    // The caller's side, as a library user reads it.
    let made = Scrape(Metrics::of(&bob).render());
    let client_ok = [("method", ECHO), ("role", "client"), ("code", "OK")];
    assert_eq!(made.value(REQUESTS, &client_ok), Some(OK_CALLS as f64));
    let client_missing = [
        ("method", MISSING),
        ("role", "client"),
        ("code", "UNIMPLEMENTED"),
    ];
    assert_eq!(
        made.value(REQUESTS, &client_missing),
        Some(FAILED_CALLS as f64)
    );
    let served_echo = [("method", ECHO), ("role", "server")];
    assert_eq!(made.sum(REQUESTS, &served_echo), 0.0);
    assert_eq!(made.value(open, &[("direction", "outbound")]), Some(1.0));
    let dialed = [("direction", "outbound"), ("result", "ok")];
    assert_eq!(made.value("peerd_connections_total", &dialed), Some(1.0));
    assert_eq!(made.value("peerd_handshake_restarts_total", &[]), Some(0.0));
    assert_eq!(
        made.value("peerd_peers", &[("state", "connected")]),
        Some(1.0)
    );
    listener.stop().await;
}

#[tokio::test]
async fn traffic_counters_keep_their_value_after_the_connection_closes() {
    let (alice, bob) = (bind_node(), bind_node());
    bob.addresses().add(alice.id(), alice.local_addr());
    let request = EchoRequest {
        payload: vec![7u8; 64 * 1024].into(),
        delay_millis: 0,
    };
    echo_of(&bob, alice.id(), &request).await.unwrap();
    let metrics = Metrics::of(&bob);
    let sent = |metrics: &Metrics| {
        Scrape(metrics.render())
            .value("peerd_quic_sent_bytes_total", &[])
            .unwrap()
    };
    let before = sent(&metrics);
    assert!(before > 64.0 * 1024.0, "{before}");
    assert!(bob.manager().disconnect(alice.id()));
    assert!(eventually(5 * SECOND, || bob.manager().connections().is_empty()).await);
    let after = Scrape(metrics.render());
    assert!(after.value("peerd_quic_sent_bytes_total", &[]).unwrap() >= before);
    assert_eq!(
        after.value("peerd_connections_open", &[("direction", "outbound")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_listener_answers_only_what_it_serves() {
    let node = bind_node();
    let listener = Listener::start(&node).await;
    assert_eq!(
        get(listener.addr, "/livez").await.unwrap(),
        (200, "alive\n".into())
    );
    assert_eq!(get(listener.addr, "/readyz").await.unwrap().0, 200);
    assert_eq!(get(listener.addr, "/nope").await.unwrap().0, 404);
    let mut stream = tokio::net::TcpStream::connect(listener.addr).await.unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "x".repeat(16 * 1024)
    );
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut response = String::new();
    let _ = within(5 * SECOND, stream.read_to_string(&mut response)).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    // A client that never sends does not hold up the listener's stop.
    let _silent = tokio::net::TcpStream::connect(listener.addr).await.unwrap();
    listener.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_nothing_gets_408_and_is_let_go() {
    let node = bind_node();
    let listener = Listener::start(&node).await;
    let mut stream = tokio::net::TcpStream::connect(listener.addr).await.unwrap();
    let mut response = String::new();
    within(60 * SECOND, stream.read_to_string(&mut response))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    listener.stop().await;
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let (alice, bob) = (bind_node(), bind_node());
    bob.addresses().add(alice.id(), alice.local_addr());
    echo_of(&bob, alice.id(), &EchoRequest::default())
        .await
        .unwrap();
    call_missing(&bob, alice.id()).await;
    let options = CallOptions::default();
    let _: PingResponse = bob
        .client()
        .unary(alice.id(), PING, &PingRequest::default(), &options)
        .await
        .unwrap();
    for node in [&alice, &bob] {
        let text = Metrics::of(node).render();
        let Some(verdict) = promtool_check(&text) else {
            eprintln!("skipped: promtool is not on PATH (Debian: apt-get install prometheus)");
            return;
        };
        let output = verdict.expect("run promtool");
        assert!(
            output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `promtool check metrics` on `text`, or `None` if promtool is not installed.
fn promtool_check(text: &str) -> Option<std::io::Result<std::process::Output>> {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e)),
        Ok(child) => child,
    };
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes());
    Some(written.and_then(|()| child.wait_with_output()))
}

fn metrics_of(daemon: &Daemon) -> SocketAddr {
    daemon
        .metrics
        .expect("the daemon printed its metrics address")
}

fn client_of(daemon: &Daemon) -> Node {
    let client = bind_node();
    client.addresses().add(daemon.id, daemon.addr);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_call_rate_and_error_rate_since_start() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &[]));
    let client = client_of(&daemon);
    for _ in 0..3 {
        echo_of(&client, daemon.id, &EchoRequest::default())
            .await
            .unwrap();
    }
    call_missing(&client, daemon.id).await;
    let served_echo = [("method", ECHO), ("role", "server")];
    let unknown = [("method", "unknown"), ("role", "server")];
    scrape_when(metrics_of(&daemon), |s| {
        s.sum(REQUESTS, &served_echo) + s.sum(REQUESTS, &unknown) == 4.0
    })
    .await;
    let status = tokio::task::block_in_place(|| daemon.status());
    // Discovery's Info calls add to the total; only the one failure fails.
    let calls = status["calls_total"].as_f64().unwrap();
    assert!(calls >= 4.0, "{status}");
    let error_rate = status["error_rate"].as_f64().unwrap();
    assert_eq!((error_rate * calls).round(), 1.0, "{status}");
    assert!(
        status["calls_per_second"].as_f64().unwrap() > 0.0,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_draining_and_livez_stays_200_until_exit() {
    const SLOW_CALLS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let grace = ["--set", "shutdown_grace=8s"];
    let mut daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &grace));
    assert_eq!(get(metrics_of(&daemon), "/readyz").await.unwrap().0, 200);
    let client = client_of(&daemon);
    let slow = EchoRequest {
        payload: "slow".into(),
        delay_millis: 2000,
    };
    let calls: Vec<_> = (0..SLOW_CALLS)
        .map(|_| {
            let (client, target, request) = (client.clone(), daemon.id, slow.clone());
            tokio::spawn(async move { echo_of(&client, target, &request).await })
        })
        .collect();
    let server = [("role", "server")];
    scrape_when(metrics_of(&daemon), |s| {
        s.value(IN_FLIGHT, &server) == Some(SLOW_CALLS as f64)
    })
    .await;

    daemon.terminate();
    let mut during_drain = None;
    for _ in 0..200 {
        if get(metrics_of(&daemon), "/readyz").await.unwrap().0 == 503 {
            let livez = get(metrics_of(&daemon), "/livez").await.unwrap().0;
            during_drain = Some((livez, scrape(metrics_of(&daemon)).await));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (livez, draining) = during_drain.expect("/readyz turned 503 after SIGTERM");
    assert_eq!(livez, 200, "/livez stays 200 while draining");
    assert_eq!(
        draining.value(IN_FLIGHT, &server),
        Some(SLOW_CALLS as f64),
        "the slow calls were still running"
    );
    for call in calls {
        let answer = call
            .await
            .unwrap()
            .expect("calls finish within the grace period");
        assert_eq!(answer.payload, "slow");
    }
    let status = tokio::task::block_in_place(|| daemon.wait_exit(10 * SECOND));
    assert_eq!(status.code(), Some(0));
    assert!(
        get(metrics_of(&daemon), "/livez").await.is_err(),
        "the listener is gone"
    );
}
