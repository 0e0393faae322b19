//! End-to-end tests of the `peerd` binary: real daemon processes on
//! loopback, driven through the CLI as an operator would.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::{CallOptions, Code, NodeId};
use support::daemon::{Daemon, http_get, peerd, wait_for};
use support::node::bind_node;
use support::{free_udp_port, may_act_as_other_users};

fn peers_json(daemon: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&daemon.cli_ok(&["peers", "--json"])).unwrap()
}

#[test]
fn two_daemons_connect_and_ping_each_other_over_one_connection() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);

    let connected = a.cli_ok(&["connect", &b.peer_addr()]);
    assert!(connected.contains(&b.id.to_string()), "{connected}");
    assert!(
        a.cli_ok(&["ping", &b.id.to_string()])
            .starts_with("pong from")
    );
    assert!(
        b.cli_ok(&["ping", &a.id.to_string()])
            .starts_with("pong from"),
        "B reaches A over A's connection"
    );

    let (peers_a, peers_b) = (peers_json(&a), peers_json(&b));
    assert_eq!(peers_a.len(), 1, "{peers_a:?}");
    assert_eq!(peers_b.len(), 1, "{peers_b:?}");
    assert_eq!(peers_a[0]["node_id"], b.id.to_string());
    assert_eq!(peers_a[0]["direction"], "outbound");
    assert_eq!(peers_b[0]["node_id"], a.id.to_string());
    assert_eq!(peers_b[0]["direction"], "inbound");

    let info = b.cli_ok(&["call", &a.id.to_string(), "Info"]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["node_id"], a.id.to_string());
    // EchoRequest { payload: "hi" } as protobuf, answered with the same bytes.
    let echo = b.cli_ok(&[
        "call",
        &a.id.to_string(),
        "peerd.node.v1.Node/Echo",
        "--hex",
        "0a026869",
    ]);
    let echo: serde_json::Value = serde_json::from_str(&echo).unwrap();
    assert_eq!(echo["hex"], "0a026869");
    let missing = b.cli(&[
        "call",
        &a.id.to_string(),
        "nope.v1.Nope/Nothing",
        "--hex",
        "",
    ]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("UNIMPLEMENTED"),
        "{missing:?}"
    );
    let status: serde_json::Value = serde_json::from_str(&a.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(
        (
            status["connections_outbound"].as_u64(),
            status["ready"].as_bool()
        ),
        (Some(1), Some(true))
    );
}

#[test]
fn client_commands_say_clearly_when_no_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = peerd(dir.path())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "exit code 3: no daemon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no daemon is listening") && stderr.contains("admin.sock"),
        "{stderr}"
    );
    let health = peerd(dir.path())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("health")
        .status()
        .unwrap();
    assert_eq!(health.code(), Some(1));
}

fn config_check(home: &Path, file: &Path, env: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut command = peerd(home);
    command
        .args(["config", "check", "--print", "--config"])
        .arg(file)
        .args(flags);
    command.envs(env.iter().copied());
    command.output().unwrap()
}

#[test]
fn config_check_names_the_bad_key_and_layers_file_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peerd.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7001\"\n\n[transport]\nmax_connections = \"ten\"\n",
    )
    .unwrap();
    let bad = config_check(dir.path(), &file, &[], &[]);
    assert_eq!(bad.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("transport.max_connections") && stderr.contains("peerd.toml:4:"),
        "{stderr}"
    );

    std::fs::write(&file, "listen = \"127.0.0.1:7001\"\nlisten_port = 3\n").unwrap();
    let unknown = config_check(dir.path(), &file, &[], &[]);
    assert_eq!(unknown.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("listen_port") && stderr.contains("peerd.toml:2:"),
        "{stderr}"
    );

    std::fs::write(&file, "listen = \"127.0.0.1:7001\"\n").unwrap();
    let listen_of = |output: Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = String::from_utf8(output.stdout).unwrap();
        printed
            .lines()
            .find(|l| l.starts_with("listen ="))
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        listen_of(config_check(dir.path(), &file, &[], &[])),
        "listen = \"127.0.0.1:7001\""
    );
    let env = [("PEERD_LISTEN", "127.0.0.1:7002")];
    assert_eq!(
        listen_of(config_check(dir.path(), &file, &env, &[])),
        "listen = \"127.0.0.1:7002\""
    );
    let flag = ["--listen", "127.0.0.1:7003"];
    assert_eq!(
        listen_of(config_check(dir.path(), &file, &env, &flag)),
        "listen = \"127.0.0.1:7003\""
    );

    let bad_env = config_check(
        dir.path(),
        &file,
        &[("PEERD_RPC_DEFAULT_DEADLINE", "soon")],
        &[],
    );
    assert_eq!(bad_env.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("PEERD_RPC_DEFAULT_DEADLINE"));

    let missing = config_check(dir.path(), &dir.path().join("nope.toml"), &[], &[]);
    assert_eq!(missing.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_in_flight_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon =
        tokio::task::block_in_place(|| Daemon::start(dir.path(), &["--set", "shutdown_grace=8s"]));
    let client = bind_node();
    client.addresses().add(daemon.id, daemon.addr);
    let slow = EchoRequest {
        payload: "slow".into(),
        delay_millis: 1500,
    };
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, target, request) = (client.client().clone(), daemon.id, slow.clone());
            tokio::spawn(async move {
                client
                    .unary::<_, EchoResponse>(target, ECHO, &request, &CallOptions::default())
                    .await
            })
        })
        .collect();
    let connection = loop {
        if let Some(c) = client
            .manager()
            .connection(daemon.id)
            .filter(|c| c.active_streams() == 20)
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // all 20 are in their handlers

    daemon.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = client
        .client()
        .unary::<_, EchoResponse>(
            daemon.id,
            ECHO,
            &EchoRequest::default(),
            &CallOptions::default(),
        )
        .await;
    assert_eq!(
        refused.unwrap_err().code(),
        Code::Unavailable,
        "new calls are refused while draining"
    );
    for call in calls {
        let answer = call
            .await
            .unwrap()
            .expect("calls in flight complete within the grace period");
        assert_eq!(answer.payload, "slow");
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), connection.quic().closed())
        .await
        .unwrap();
    assert_eq!(
        peerd::connection::CloseCode::of(&closed),
        Some(peerd::connection::CloseCode::ShuttingDown),
        "{closed}"
    );
    let status = tokio::task::block_in_place(|| daemon.wait_exit(Duration::from_secs(10)));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_admin_socket_refuses_other_users() {
    if !may_act_as_other_users() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let socket = dir.path().join("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner-only socket file");
    let as_nobody = || {
        peerd(Path::new("/"))
            .args(["status", "--admin-socket"])
            .arg(&socket)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let denied_by_mode = as_nobody();
    assert_eq!(denied_by_mode.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied_by_mode.stderr).contains("permission denied"));

    // With the file permissions opened up, the credential check still refuses.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let denied_by_uid = as_nobody();
    assert_eq!(denied_by_uid.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&denied_by_uid.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(
        daemon.logs_within(Duration::from_secs(5), |l| l.contains("65534")),
        "the daemon logged the refusal"
    );
    assert!(
        daemon.cli_ok(&["status"]).contains("ready:       true"),
        "its own user still may"
    );
}

/// Issue 24, point 8: members of `admin.group` may administer the daemon
/// (socket file 0660 in that group, and the credential check admits them);
/// other users still may not.
#[test]
fn the_admin_socket_admits_members_of_the_operator_group() {
    if !may_act_as_other_users() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let public = tempfile::tempdir().unwrap();
    std::fs::set_permissions(public.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = public.path().join("admin.sock");
    let socket_arg = format!("--admin-socket={}", socket.display());
    let daemon = Daemon::start(dir.path(), &[&socket_arg, "--set", "admin.group=4242"]);
    let file = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        (
            file.permissions().mode() & 0o777,
            std::os::unix::fs::MetadataExt::gid(&file)
        ),
        (0o660, 4242)
    );
    let status_as = |gid: u32| {
        peerd(Path::new("/"))
            .args(["status", "--admin-socket"])
            .arg(&socket)
            .uid(65534)
            .gid(gid)
            .output()
            .unwrap()
    };
    let operator = status_as(4242);
    assert!(
        String::from_utf8_lossy(&operator.stdout).contains("ready:       true"),
        "a member of admin.group: {operator:?}"
    );
    let other = status_as(65534);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("permission denied"));

    // With the file opened to all by mistake, the credential check still refuses.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = status_as(65534);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("member of its admin.group"), "{stderr}");
    assert!(
        daemon.logs_within(Duration::from_secs(5), |line| line
            .contains("admin request refused")
            && line.contains("65534")),
        "the daemon refused uid 65534 by its credentials"
    );
    assert!(
        daemon
            .cli_ok(&[&socket_arg, "status"])
            .contains("ready:       true")
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--log-format", "json"]);
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(0));
    std::thread::sleep(Duration::from_millis(100));
    let lines = daemon.stderr_lines();
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.is_object() && value["level"].is_string(), "{line}");
    }
}

#[test]
fn run_with_no_arguments_creates_an_identity_and_prints_how_to_reach_it() {
    let home = tempfile::tempdir().unwrap();
    let mut command = peerd(home.path());
    command
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut daemon = Daemon::spawn(command, home.path());
    let key = home.path().join(".local/share/peerd/node.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        daemon.addr.port() == 7733,
        "the default port: {}",
        daemon.addr
    );
    let id = peerd(home.path()).arg("id").output().unwrap();
    assert!(String::from_utf8_lossy(&id.stdout).contains(&daemon.peer_addr()));
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

fn pinned_state(daemon: &Daemon, node: NodeId) -> Option<String> {
    let peers = peers_json(daemon);
    let peer = peers.iter().find(|p| p["node_id"] == node.to_string())?;
    assert_eq!(peer["pinned"], true);
    Some(peer["state"].as_str()?.to_owned())
}

#[test]
fn pinned_peers_reconnect_and_the_peer_book_survives_restarts() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b_listen = format!("127.0.0.1:{}", free_udp_port());
    let mut b = Daemon::start_at(dir_b.path(), &b_listen, &[]);
    let b_id = b.id;
    let mut a = Daemon::start(dir_a.path(), &["--peer", &b.peer_addr()]);
    // Generous: after a loss the next retry may be up to 8 s × 1.2 away.
    let connected = || {
        wait_for(Duration::from_secs(30), || {
            pinned_state(&a, b_id).as_deref() == Some("connected")
        })
    };
    assert!(connected(), "A connects to its pinned peer");

    b.terminate();
    assert_eq!(b.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let reconnecting = wait_for(Duration::from_secs(10), || {
        pinned_state(&a, b_id).as_deref() == Some("reconnecting")
    });
    assert!(reconnecting, "{:?}", peers_json(&a));
    let _b = Daemon::start_at(dir_b.path(), &b_listen, &[]);
    assert!(connected(), "A reconnects once B is back");

    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let book = std::fs::read_to_string(dir_a.path().join("peers.json")).unwrap();
    assert!(book.contains(&b_id.to_string()), "{book}");
    let mut a = Daemon::start(dir_a.path(), &[]);
    let pong = a.cli_ok(&["ping", &b_id.to_string()]);
    assert!(
        pong.starts_with("pong from"),
        "dialed from the peer book after a restart: {pong}"
    );

    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let a = Daemon::start(dir_a.path(), &["--peer", &format!("{b_id}@{b_listen}")]);
    let again = wait_for(Duration::from_secs(10), || {
        pinned_state(&a, b_id).as_deref() == Some("connected")
    });
    assert!(again, "the pinning side restarted and reconnected");
}

#[test]
fn a_service_announced_by_one_daemon_is_found_by_another_until_it_stops() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Daemon::start(
        dir_a.path(),
        &["--set", "services=chat@1.0", "--set", "service_ttl=2s"],
    );
    let b = Daemon::start(dir_b.path(), &["--bootstrap", &a.peer_addr()]);
    assert_eq!(a.cli_ok(&["services"]).trim(), "chat@1.0");
    let found = wait_for(Duration::from_secs(10), || {
        b.cli_ok(&["find", "chat"]).contains(&a.id.to_string())
    });
    assert!(found, "{}", b.cli_ok(&["find", "chat"]));
    let providers: Vec<serde_json::Value> =
        serde_json::from_str(&b.cli_ok(&["find", "chat", "--json"])).unwrap();
    assert_eq!(providers[0]["version"], "1.0");

    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let gone = wait_for(Duration::from_secs(6), || {
        b.cli_ok(&["find", "chat"]).contains("no provider found")
    });
    assert!(gone, "the announcement expired with its TTL");
}

#[test]
fn peerd_bench_loads_a_daemon_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let output = peerd(dir.path())
        .args([
            "bench",
            &daemon.peer_addr(),
            "--calls",
            "50",
            "--warmup",
            "0s",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["calls"], 50);
    assert_eq!(report["errors"], serde_json::json!({}));
    let latency = &report["latency"];
    assert!(latency["p50_us"].as_u64() <= latency["p99_us"].as_u64());
    assert!(latency["p99_us"].as_u64() <= latency["max_us"].as_u64());
}

/// Two daemons with the default metrics setting on one host both start: the
/// second finds 127.0.0.1:9733 taken and serves on a free port instead.
#[test]
fn two_daemons_with_default_metrics_settings_both_start_and_serve_probes() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |dir: &Path| {
        let mut command = peerd(dir);
        command
            .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir);
        Daemon::spawn(command, dir)
    };
    let a = start(a_dir.path());
    let b = start(b_dir.path());
    let (a_metrics, b_metrics) = (
        a.metrics.expect("a serves metrics"),
        b.metrics.expect("b serves metrics"),
    );
    assert_ne!(
        a_metrics, b_metrics,
        "both daemons report one metrics address"
    );
    for addr in [a_metrics, b_metrics] {
        assert!(addr.ip().is_loopback(), "metrics on {addr}, not loopback");
        let answer = http_get(addr, "/livez");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "/livez on {addr}: {answer:?}"
        );
    }
}

/// `peerd call` carries a deadline and metadata: the callee sees both, and
/// a deadline shorter than the handler ends the call in DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread")]
async fn peerd_call_sends_its_timeout_and_metadata() {
    use peerd::{Handlers, Identity, Node};
    let echo_metadata = Handlers::new("test.v1.Meta").unary(
        "Get",
        |context: peerd::CallContext, request: EchoRequest| async move {
            tokio::time::sleep(Duration::from_millis(request.delay_millis.into())).await;
            let value = context
                .metadata()
                .get("tenant")
                .cloned()
                .unwrap_or_default();
            Ok(EchoResponse {
                payload: value.into_bytes().into(),
            })
        },
    );
    let callee = Node::builder(Identity::generate())
        .listen(support::localhost(1))
        .serve(echo_metadata)
        .bind()
        .expect("bind");
    let target = format!("{}@{}", callee.id(), callee.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let call = move |args: Vec<String>| {
        let daemon = &daemon;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon.cli(&args)
    };
    let args = |hex: &str, timeout: &str| {
        let base = [
            "call",
            &target,
            "test.v1.Meta/Get",
            "--hex",
            hex,
            "--timeout",
            timeout,
        ];
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        args.extend(["--metadata".into(), "tenant=a=b".into()]);
        args
    };
    // EchoRequest {} answered with EchoResponse { payload: "a=b" }.
    let (fast, slow) = (args("", "5s"), args("10e807", "300ms")); // delay_millis 1000
    let (answered, late) = tokio::task::spawn_blocking(move || {
        let answered = call(fast);
        let started = std::time::Instant::now();
        (answered, (call(slow), started.elapsed()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&answered.stdout);
    assert!(answered.status.success(), "{answered:?}");
    assert!(
        stdout.contains("0a03613d62"),
        "the callee saw no tenant=a=b: {stdout}"
    );
    let (late, took) = late;
    assert!(!late.status.success());
    let stderr = String::from_utf8_lossy(&late.stderr);
    assert!(stderr.contains("DEADLINE_EXCEEDED"), "{stderr}");
    assert!(
        took < Duration::from_millis(900),
        "a 300 ms deadline took {took:?}"
    );
    callee.shutdown(Duration::from_secs(1)).await;
}

/// Issue 23, point 7: `peerd call` carries requests up to
/// `rpc.max_message_size` (read from stdin, past the kernel's 128 KiB cap
/// on one argument), and one over it gets a clear refusal.
#[test]
fn call_carries_a_request_up_to_the_message_size_from_stdin() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);
    let call_echo = |payload: usize| {
        let request = EchoRequest {
            payload: vec![0x5a; payload].into(),
            delay_millis: 0,
        };
        let hex = hex_of(&request);
        let mut child = peerd(&a.dir)
            .arg("--data-dir")
            .arg(&a.dir)
            .args([
                "call",
                &b.peer_addr(),
                "peerd.node.v1.Node/Echo",
                "--hex",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let written = hex.clone();
        let writer = std::thread::spawn(move || {
            std::io::Write::write_all(&mut stdin, written.as_bytes()).unwrap();
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (hex, output)
    };

    let (sent, output) = call_echo(3 * 1024 * 1024);
    assert!(output.status.success(), "{output:?}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["hex"].as_str().map(str::len), Some(sent.len()));
    assert!(answer["hex"] == sent, "the echo came back changed");

    let (_, output) = call_echo(4 * 1024 * 1024);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("RESOURCE_EXHAUSTED") && stderr.contains("4194304"),
        "refused, naming the limit: {stderr}"
    );
}

fn hex_of(request: &EchoRequest) -> String {
    peerd::identity::to_hex(&prost::Message::encode_to_vec(request))
}

/// Issue 24, point 2: a dial that fails (a dead address, a typo, this node's
/// own id) leaves nothing in the peer book; a dial that works is kept.
#[test]
fn failed_dials_are_not_saved_in_the_peer_book() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);
    let dead = format!("{}@127.0.0.1:9", peerd::Identity::generate().node_id());
    let dead_call = format!("{}@127.0.0.1:9", peerd::Identity::generate().node_id());
    let own = format!("{}@127.0.0.1:9", a.id);
    for args in [
        vec!["connect", &dead, "--timeout", "500ms"],
        vec!["ping", &dead, "--timeout", "500ms"],
        vec!["call", &dead_call, "Info", "--timeout", "500ms"],
        vec!["ping", &own],
    ] {
        assert!(!a.cli(&args).status.success(), "{args:?} failed");
    }
    a.cli_ok(&["ping", &b.peer_addr()]);
    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir_a.path().join("peers.json")).unwrap()).unwrap();
    let saved: Vec<&str> = book["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| peer["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(saved, vec![b.id.to_string()], "{book}");
}
