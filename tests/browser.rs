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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerd::rpc::{CallContext, ResponseSink};
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
    assert!(
        repo().join("browser/dist/demo/demo.js").exists(),
        "the page is not built: run scripts/browser-setup.sh first"
    );
    let mut command = Command::new("node");
    command
        .current_dir(repo())
        .arg("tests/browser/run.mjs")
        .args(["--info", &info_url(daemon), "--scenario", scenario])
        .args(["--target", &target.to_string()])
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
    let callers = native.callers.lock().unwrap().clone();
    assert_eq!(
        callers,
        [(page, Some(daemon.id)); 2],
        "the callee saw the page"
    );
    let metrics = http_get(daemon.metrics.unwrap(), "/metrics");
    assert!(
        metrics.contains("peerd_browser_calls_total{direction=\"from_page\",outcome=\"ok\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("peerd_browser_calls_total{direction=\"to_page\",outcome=\"ok\"} 1"));
}
