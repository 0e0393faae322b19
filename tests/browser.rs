//! Browser agents in a real headless Chromium (docs/browser.md): the page
//! (browser/demo, built by scripts/browser-setup.sh, which .ci/run runs)
//! connects to a real daemon over WebTransport with pinned certificate
//! hashes, proves its key, and calls, and is called by, a native node
//! through the daemon; it also exchanges datagrams with it.
//!
//! Each test runs `node tests/browser/run.mjs`, which serves browser/ on
//! loopback, drives /usr/bin/chromium with playwright-core, prints the
//! page's result and saves a screenshot under target/browser/.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use peerd::rpc::{CallContext, Code, RequestStream, ResponseSink};
use peerd::{CallOptions, Handlers, Identity, Node, NodeId, Status};
use serde_json::Value;
use support::daemon::{Daemon, http_get};
use support::localhost;

#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    value: String,
}

fn text(value: impl Into<String>) -> Text {
    Text {
        value: value.into(),
    }
}

/// Who called the native node's methods: `(caller, host)`.
type Callers = Arc<Mutex<Vec<(NodeId, Option<NodeId>)>>>;

/// `Stall` handlers that ended because their call was cancelled.
static STALLS_CANCELLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a `Stall` handler dropped before it answered.
struct Stalled;

impl Drop for Stalled {
    fn drop(&mut self) {
        STALLS_CANCELLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The native node's service: `Say` answers with the caller's id, `Count`
/// streams 1..=n, `CallMeBack` calls the page's `demo.Page/Greet` through
/// the daemon hosting it.
fn native_service(node: Arc<std::sync::OnceLock<Node>>, callers: Callers) -> Handlers {
    let record = move |context: &CallContext| {
        let mut callers = callers.lock().unwrap();
        callers.push((context.caller(), context.host()));
    };
    let (record_say, record_back) = (record.clone(), record.clone());
    Handlers::new("test.Native")
        .unary("Say", move |context: CallContext, request: Text| {
            record_say(&context);
            async move { Ok(text(format!("{} to {}", request.value, context.caller()))) }
        })
        .server_streaming(
            "Count",
            |_: CallContext, request: Text, mut sink: ResponseSink<Text>| async move {
                let n: u32 = request
                    .value
                    .parse()
                    .map_err(|_| Status::invalid_argument("n"))?;
                for i in 1..=n {
                    sink.send(&text(i.to_string())).await?;
                }
                Ok(())
            },
        )
        .client_streaming(
            "Join",
            |_: CallContext, mut requests: RequestStream<Text>| async move {
                let mut joined = String::new();
                while let Some(part) = requests.message().await? {
                    joined.push_str(&part.value);
                }
                Ok(text(joined))
            },
        )
        .bidi_streaming(
            "Shout",
            |_: CallContext, mut requests: RequestStream<Text>, mut sink: ResponseSink<Text>| async move {
                while let Some(said) = requests.message().await? {
                    sink.send(&text(said.value.to_uppercase())).await?;
                }
                Ok(())
            },
        )
        .unary("Stall", |_: CallContext, _: Text| async {
            let _stalled = Stalled;
            std::future::pending::<Result<Text, Status>>().await
        })
        .unary("StallsEnded", |_: CallContext, _: Text| async {
            // The handlers' futures are dropped on their cancel: give the
            // drops a moment to land.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(text(STALLS_CANCELLED.load(std::sync::atomic::Ordering::SeqCst).to_string()))
        })
        .unary("CallMeBack", move |context: CallContext, request: Text| {
            record_back(&context);
            let node = node.clone();
            async move {
                let host = context
                    .host()
                    .ok_or_else(|| Status::invalid_argument("not hosted"))?;
                let options = CallOptions::default().for_hosted(context.caller());
                let node = node.get().expect("bound");
                node.client()
                    .unary::<_, Text>(host, "demo.Page/Greet", &request, &options)
                    .await
            }
        })
}

struct Native {
    node: Node,
    callers: Callers,
}

/// A native node serving `test.Native`, connected to `daemon` so the
/// daemon reaches it over that connection.
async fn native(daemon: &Daemon) -> Native {
    let callers = Callers::default();
    let cell = Arc::new(std::sync::OnceLock::new());
    let node = Node::builder(Identity::generate())
        .listen(localhost(1))
        .serve(native_service(cell.clone(), callers.clone()))
        .bind()
        .unwrap();
    let _ = cell.set(node.clone());
    let options = CallOptions::default().with_addr(daemon.addr);
    let ping = peerd::node_service::proto::PingRequest { nonce: 1 };
    node.client()
        .unary::<_, peerd::node_service::proto::PingResponse>(
            daemon.id,
            "peerd.node.v1.Node/Ping",
            &ping,
            &options,
        )
        .await
        .expect("the native node reaches the daemon");
    Native { node, callers }
}

fn start_daemon(dir: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "--set",
        "browser.enabled=true",
        "--set",
        "browser.listen=127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Daemon::start(dir, &args)
}

fn info_url(daemon: &Daemon) -> String {
    format!(
        "http://{}/browser",
        daemon.metrics.expect("a metrics listener")
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the screenshots go: kept by CI as artefacts.
fn screenshot(name: &str) -> PathBuf {
    let dir = repo().join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

/// Runs one scenario of the demo page in Chromium; its result.
fn run_page(daemon: &Daemon, scenario: &str, target: NodeId, params: &[&str]) -> Value {
    run_page_at(&info_url(daemon), scenario, &target.to_string(), params)
}

fn run_page_at(info: &str, scenario: &str, target: &str, params: &[&str]) -> Value {
    assert!(
        repo().join("browser/dist/demo/demo.js").exists(),
        "the page is not built: run scripts/browser-setup.sh first"
    );
    let mut command = Command::new("node");
    command
        .current_dir(repo())
        .arg("tests/browser/run.mjs")
        .args(["--info", info, "--scenario", scenario])
        .args(["--target", target])
        .arg("--screenshot")
        .arg(screenshot(scenario));
    for param in params {
        command.args(["--param", param]);
    }
    let output = command.output().expect("run node tests/browser/run.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the runner failed: {stderr}");
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line: {stdout}\n{stderr}"));
    let result: Value = serde_json::from_str(line).unwrap();
    eprintln!("{scenario}: {result}");
    result
}

fn page_id(result: &Value) -> NodeId {
    result["id"]
        .as_str()
        .expect("the page's id")
        .parse()
        .unwrap()
}

/// The native node's runtime: its worker threads serve while the test
/// thread waits for the browser.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_page_calls_a_native_node_and_serves_its_call_back_as_its_own_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let runtime = runtime();
    let native = runtime.block_on(native(&daemon));

    let result = run_page(&daemon, "calls", native.node.id(), &[]);

    assert_eq!(result["ok"], true, "{result}");
    let page = page_id(&result);
    assert_eq!(result["host"], daemon.id.to_string());
    assert_eq!(result["say"], format!("ping to {page}"));
    assert_eq!(
        result["count"],
        serde_json::json!(["1", "2", "3", "4", "5"])
    );
    assert_eq!(result["callback"], "hello page from the page");
    assert_eq!(result["sum"], "abc", "client streaming");
    assert_eq!(
        result["chat"],
        serde_json::json!(["X", "Y"]),
        "bidi streaming"
    );
    assert_eq!(
        result["deadline"]["code"],
        Code::DeadlineExceeded as u32,
        "{result}"
    );
    assert!(
        result["deadline"]["ms"].as_u64().unwrap() < 2_000,
        "{result}"
    );
    assert_eq!(
        result["cancelled"]["code"],
        Code::Cancelled as u32,
        "{result}"
    );
    assert_eq!(
        result["missing"]["code"],
        Code::Unimplemented as u32,
        "{result}"
    );
    assert_eq!(
        result["stallsEnded"], "2",
        "the deadline and the cancel reached the native handler while the page was there"
    );
    let callers = native.callers.lock().unwrap().clone();
    assert_eq!(
        callers,
        [(page, Some(daemon.id)); 2],
        "the callee saw the page"
    );
    let status = daemon.status();
    assert_eq!(status["browser"]["pages"], 0, "the page has left: {status}");
    let shown = daemon.cli_ok(&["status"]);
    let line = "browser:     0 pages connected, WebTransport on 127.0.0.1:";
    assert!(shown.contains(line), "{shown}");
    let metrics = http_get(daemon.metrics.unwrap(), "/metrics");
    let calls = |direction: &str, outcome: &str| {
        let name =
            format!("peerd_browser_calls_total{{direction=\"{direction}\",outcome=\"{outcome}\"}}");
        counter(&metrics, &name)
    };
    assert_eq!(calls("from_page", "ok"), 6, "{metrics}");
    assert_eq!(
        calls("from_page", "error"),
        3,
        "the deadline, the cancel, the unknown method"
    );
    assert_eq!(calls("to_page", "ok"), 1, "{metrics}");

    // The page has gone: a call for it is refused by its daemon.
    let status = runtime
        .block_on(greet(&native.node, daemon.id, page))
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(
        status.message().contains("no page with node id"),
        "{status}"
    );
}

async fn greet(node: &Node, host: NodeId, page: NodeId) -> Result<Text, Status> {
    let options = CallOptions::default()
        .for_hosted(page)
        .with_timeout(Duration::from_secs(5));
    node.client()
        .unary(host, "demo.Page/Greet", &text("anyone"), &options)
        .await
}

#[test]
fn a_page_whose_proof_names_another_key_is_refused_and_no_handler_runs() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let runtime = runtime();
    let native = runtime.block_on(native(&daemon));

    let result = run_page(&daemon, "forged", native.node.id(), &[]);

    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(
        result["stage"], "connect",
        "refused before any call: {result}"
    );
    assert_eq!(result["code"], Code::Unauthenticated as u32, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("does not verify under node"), "{error}");
    assert!(native.callers.lock().unwrap().is_empty(), "no handler ran");
    let metrics = http_get(daemon.metrics.unwrap(), "/metrics");
    assert!(
        metrics.contains("peerd_browser_sessions_refused_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("calls_total{direction=\"from_page\",outcome=\"ok\"} 0\n"));
}

#[test]
fn with_two_second_certificates_a_page_keeps_connecting_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &["--set", "browser.certificate_validity=2s"]);
    let runtime = runtime();
    let native = runtime.block_on(native(&daemon));
    let before = http_get(daemon.metrics.unwrap(), "/browser");

    let result = run_page(&daemon, "rotation", native.node.id(), &["seconds=6"]);

    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["failures"], 0, "{result}");
    let connects = result["connects"].as_u64().unwrap();
    assert!(connects >= 10, "{result}");
    let hashes = result["hashes"].as_array().unwrap();
    assert!(
        hashes.len() >= 4,
        "a new certificate every second: {result}"
    );
    let after = http_get(daemon.metrics.unwrap(), "/browser");
    assert_ne!(body(&before), body(&after), "the published hashes moved on");
    let published: Value = serde_json::from_str(body(&after)).unwrap();
    assert_eq!(published["node_id"], daemon.id.to_string());
    let status = daemon.status();
    let in_status = status["browser"]["certificate_hashes"].as_array().unwrap();
    assert_eq!(in_status.len(), 2, "the current and the next: {status}");
    assert!(
        before.contains("Access-Control-Allow-Origin: *"),
        "{before}"
    );
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Echoes every datagram for `test.Native.Datagrams` back to its sender
/// (the daemon, which passes it to the page) for `demo.Page.Datagrams`.
fn echo_datagrams(runtime: &tokio::runtime::Runtime, node: &Node) {
    let mut queue = node
        .manager()
        .subscribe_datagrams("test.Native.Datagrams", 4096)
        .unwrap();
    let manager = node.manager().clone();
    runtime.spawn(async move {
        while let Some(datagram) = queue.recv().await {
            let _ = manager.send_datagram(datagram.from, "demo.Page.Datagrams", &datagram.payload);
        }
    });
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[test]
fn ten_thousand_datagrams_between_a_page_and_a_native_node_are_delivered_or_counted() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let runtime = runtime();
    let native = runtime.block_on(native(&daemon));
    echo_datagrams(&runtime, &native.node);

    let result = run_page(&daemon, "datagrams", native.node.id(), &["count=10000"]);

    assert_eq!(result["ok"], true, "{result}");
    let sent = result["sent"].as_u64().unwrap();
    let received = result["received"].as_u64().unwrap();
    assert_eq!(
        sent + result["localDropped"].as_u64().unwrap(),
        10_000,
        "{result}"
    );
    assert_eq!(
        received + result["dropped"].as_u64().unwrap(),
        sent,
        "{result}"
    );
    assert!(received > 0, "{result}");
    let oversize = result["oversize"].as_str().unwrap();
    assert!(oversize.contains("over this session's limit"), "{oversize}");
    assert!(oversize.contains("nothing was sent"), "{oversize}");

    let metrics = http_get(daemon.metrics.unwrap(), "/metrics");
    let datagrams = |labels: &str| {
        counter(
            &metrics,
            &format!("peerd_browser_datagrams_total{{{labels}}}"),
        )
    };
    let from_page = datagrams("direction=\"from_page\",outcome=\"forwarded\"");
    let to_page = datagrams("direction=\"to_page\",outcome=\"forwarded\"");
    let stats = native.node.manager().datagram_stats();
    eprintln!(
        "page sent {sent}, daemon forwarded {from_page} to the node, node took {} and dropped {}, \
         daemon forwarded {to_page} back, page got {received}",
        stats.received, stats.dropped
    );
    assert!(
        from_page <= sent && stats.received <= from_page,
        "{metrics}"
    );
    assert!(
        received <= to_page && to_page <= stats.received,
        "{metrics}"
    );
}

#[test]
fn a_page_flooding_datagrams_fills_only_the_bounded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let runtime = runtime();
    let native = runtime.block_on(native(&daemon));
    // Subscribed and never read: a queue of 64 fills, the rest is dropped.
    let _unread = native
        .node
        .manager()
        .subscribe_datagrams("test.Native.Flood", 64)
        .unwrap();
    let daemon_before = daemon.rss_bytes();
    let native_before = support::node::rss_bytes();

    let result = run_page(&daemon, "flood", native.node.id(), &["seconds=3"]);

    assert_eq!(result["ok"], true, "{result}");
    let sent = result["sent"].as_u64().unwrap();
    let stats = native.node.manager().datagram_stats();
    let daemon_grew = daemon.rss_bytes().saturating_sub(daemon_before);
    let native_grew = support::node::rss_bytes().saturating_sub(native_before);
    eprintln!(
        "flood: page sent {sent}, node queued {} and dropped {}; RSS grew {daemon_grew} B (daemon), {native_grew} B (node)",
        stats.received, stats.dropped
    );
    assert!(sent > 1_000, "a flood: {result}");
    assert_eq!(stats.received, 64, "only the queue's 64 were taken");
    assert!(stats.dropped > 0);
    assert!(
        daemon_grew < 16 << 20,
        "daemon RSS grew {daemon_grew} bytes"
    );
    assert!(native_grew < 16 << 20, "node RSS grew {native_grew} bytes");
}

/// The README's "Browser agents" block, its build line left to `cargo test`
/// and `scripts/test-deps.sh`, with the binary under test.
fn readme_demo() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("## Browser agents")
        .nth(1)
        .expect("a Browser agents section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut lines = block.lines();
    assert_eq!(
        lines.next(),
        Some("cargo build --release && scripts/browser-setup.sh")
    );
    let peerd = env!("CARGO_BIN_EXE_peerd");
    lines
        .map(|line| line.replace("./target/release/peerd", peerd))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readmes_browser_demo_runs_as_written() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut demo = Command::new("bash")
        .args(["-e", "-c", &format!("{}\nwait", readme_demo())])
        .current_dir(repo())
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(demo.stdout.take().unwrap());
    let _stop = StopGroup(demo);
    let url = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("open ").map(str::to_owned))
        .expect("the block printed the page's address");
    let param = |name: &str| {
        let query = url.split_once('?').unwrap().1;
        let value = query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")));
        value.unwrap().to_owned()
    };

    let result = run_page_at(&param("info"), &param("scenario"), &param("target"), &[]);

    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["echo"], "hello from a page", "{result}");
}

/// Stops the demo's daemons and page server, however the test ends.
struct StopGroup(std::process::Child);

impl Drop for StopGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test spawned.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        let _ = self.0.wait();
    }
}
