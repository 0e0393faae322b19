//! What an operator meets, through the `peerd` binary: a peer book they can
//! list and mend, dials that fail fast and say where, exit codes scripts can
//! branch on, the config `init` writes, and gauges that match `peers`.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerd::Identity;
use serde_json::Value;
use support::daemon::{Daemon, http_get, peerd, wait_for};
use support::free_udp_port;

fn json_of(daemon: &Daemon, args: &[&str]) -> Vec<Value> {
    serde_json::from_str(&daemon.cli_ok(args)).unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The nodes in the peer book file the daemon keeps in `dir`.
fn saved_book(dir: &Path) -> Vec<String> {
    let book: Value =
        serde_json::from_slice(&std::fs::read(dir.join("peers.json")).unwrap()).unwrap();
    book["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| peer["node_id"].as_str().unwrap().to_owned())
        .collect()
}

/// `<new node id>@127.0.0.1:<port where nothing listens>`.
fn dead_peer() -> String {
    format!(
        "{}@127.0.0.1:{}",
        Identity::generate().node_id(),
        free_udp_port()
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_peer_book_lists_offline_peers_and_forgets_them() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let mut b = Daemon::start(dir_b.path(), &[]);
    a.cli_ok(&["ping", &b.peer_addr()]);
    b.terminate();
    b.wait_exit(Duration::from_secs(15));

    let offline = || json_of(&a, &["book", "--json"])[0]["state"] == "offline";
    assert!(
        wait_for(Duration::from_secs(10), offline),
        "b shows as offline"
    );
    let book = json_of(&a, &["book", "--json"]);
    assert_eq!(book.len(), 1, "{book:?}");
    let entry = &book[0];
    assert_eq!(entry["node_id"], b.id.to_string());
    assert_eq!(entry["source"], "manual", "pinged by the operator");
    assert_eq!(entry["addrs"], serde_json::json!([b.addr.to_string()]));
    let seen = entry["last_seen_unix"].as_u64().unwrap();
    assert!(unix_now().abs_diff(seen) < 60, "last seen {seen}");
    let table = a.cli_ok(&["book"]);
    for column in [&b.id.to_string(), "offline", "manual", " s ago"] {
        assert!(table.contains(column), "{column:?} in:\n{table}");
    }

    let prefix = &b.id.to_string()[..10];
    let forgot = a.cli_ok(&["forget", prefix]);
    assert_eq!(forgot.trim(), format!("forgot node {}", b.id));
    assert!(json_of(&a, &["book", "--json"]).is_empty());
    assert_eq!(a.cli_ok(&["book"]).trim(), "the peer book is empty");
    assert!(
        saved_book(dir_a.path()).is_empty(),
        "saved at once, not at the next save"
    );
    let again = a.cli_ok(&["forget", &b.id.to_string()]);
    assert_eq!(
        again.trim(),
        format!("node {} was not in the peer book", b.id)
    );
    let ping = a.cli(&["ping", &b.id.to_string(), "--timeout", "2s"]);
    assert_eq!(ping.status.code(), Some(4), "{}", stderr_of(&ping));
}

#[test]
fn bench_identities_are_not_saved_in_the_peer_book() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let bench = peerd(dir.path())
        .args(["bench", &daemon.peer_addr(), "--calls", "300"])
        .args(["--warmup", "0s", "--connections", "3", "--json"])
        .output()
        .unwrap();
    assert!(bench.status.success(), "{}", stderr_of(&bench));
    let connected = || daemon.status()["connections_inbound"] == 0;
    assert!(
        wait_for(Duration::from_secs(10), connected),
        "bench nodes gone"
    );
    assert!(json_of(&daemon, &["book", "--json"]).is_empty());
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)).code(), Some(0));
    assert!(saved_book(dir.path()).is_empty());
}

#[test]
fn a_dead_address_fails_fast_with_unavailable_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    for command in ["ping", "call", "connect"] {
        let dead = dead_peer();
        let addr = dead.split_once('@').unwrap().1.to_owned();
        let mut args = vec![command, &dead];
        if command == "call" {
            args.push("Info");
        }
        let started = Instant::now();
        let output = daemon.cli(&args);
        let took = started.elapsed();
        let stderr = stderr_of(&output);
        assert!(took < Duration::from_secs(3), "{command} took {took:?}");
        assert_eq!(output.status.code(), Some(4), "{command}: {stderr}");
        assert!(stderr.contains(&addr), "{command} names {addr}: {stderr}");
        assert!(stderr.contains("nothing listens there"), "{stderr}");
        if command != "connect" {
            assert!(stderr.contains("UNAVAILABLE"), "{stderr}");
        }
    }
}

#[test]
fn timeout_bounds_a_dial_to_an_address_that_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    // Takes every datagram and answers none: no refusal, no handshake.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!(
        "{}@{}",
        Identity::generate().node_id(),
        silent.local_addr().unwrap()
    );
    for command in ["ping", "call", "connect"] {
        let mut args = vec![command, &target, "--timeout", "800ms"];
        if command == "call" {
            args.insert(2, "Info");
        }
        let started = Instant::now();
        let output = daemon.cli(&args);
        let took = started.elapsed();
        let stderr = stderr_of(&output);
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(3),
            "{command} took {took:?}: {stderr}"
        );
        assert_eq!(output.status.code(), Some(4), "{command}: {stderr}");
        assert!(
            stderr.contains("800ms"),
            "{command} names its timeout: {stderr}"
        );
    }
}

#[test]
fn exit_codes_tell_failures_apart() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let not_running = peerd(dir_a.path())
        .arg("--data-dir")
        .arg(dir_a.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(not_running.status.code(), Some(3), "no daemon");
    let config = peerd(dir_a.path())
        .args(["--set", "transport.max_connections=ten", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(config.status.code(), Some(78), "invalid configuration");

    let a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);
    let b_id = b.id.to_string();
    let code = |args: &[&str]| a.cli(args).status.code();
    assert_eq!(code(&["ping", &b.peer_addr()]), Some(0));
    for usage in [
        vec!["ping", "zzz"],
        vec!["ping", &b_id, "--count", "0"],
        vec!["call", &b_id, "Echo", "not json"],
        vec!["call", &b_id, "Echo", r#"{"paylod": "typo"}"#],
        vec!["call", &b_id, "Nope", "{}"],
    ] {
        let output = a.cli(&usage);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{usage:?}: {}",
            stderr_of(&output)
        );
    }
    assert_eq!(code(&["ping", &dead_peer()]), Some(4), "unreachable");
    let remote = a.cli(&["call", &b_id, "nope.v1.Svc/Do", "--hex", ""]);
    assert_eq!(remote.status.code(), Some(5), "{}", stderr_of(&remote));
    assert!(stderr_of(&remote).contains("UNIMPLEMENTED"));

    let help = peerd(dir_a.path()).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for line in [
        "Exit codes:",
        "3   no daemon",
        "4   the node could not be reached",
    ] {
        assert!(help.contains(line), "{line:?} in --help:\n{help}");
    }
}

#[test]
fn ping_reports_each_loss_and_ends_with_a_summary() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);
    let out = a.cli_ok(&["ping", &b.peer_addr(), "--count", "3", "--interval", "10ms"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[..3].iter().all(|l| l.starts_with("pong from ")),
        "{out}"
    );
    assert!(
        lines[3].starts_with("3 sent, 3 received, 0% loss; rtt min/avg/max = "),
        "{out}"
    );
    let dead = dead_peer();
    let lost = a.cli(&["ping", &dead, "--count", "2", "--interval", "10ms"]);
    let out = String::from_utf8(lost.stdout).unwrap();
    assert_eq!(lost.status.code(), Some(4), "no pong at all fails");
    assert!(out.contains("no pong from"), "{out}");
    assert!(out.ends_with("2 sent, 0 received, 100% loss\n"), "{out}");
}

#[test]
fn init_says_how_to_start_with_the_config_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let init = peerd(dir.path())
        .arg("--data-dir")
        .arg(&data)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr_of(&init));
    let out = String::from_utf8(init.stdout).unwrap();
    let node_id = out
        .lines()
        .find_map(|l| l.strip_prefix("node id: "))
        .expect("init prints the node id");
    let start = out
        .lines()
        .find_map(|l| l.strip_prefix("start:   "))
        .expect("init says how to start");
    let config = data.join("peerd.toml");
    assert_eq!(start, format!("peerd --config {} run", config.display()));

    // What that command reads: the data dir and identity init made.
    let check = peerd(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["config", "check", "--print"])
        .output()
        .unwrap();
    let printed = String::from_utf8(check.stdout).unwrap();
    assert!(
        printed.contains(&format!("data_dir = {:?}", data.display().to_string())),
        "{printed}"
    );
    let id = peerd(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["id", "--json"])
        .output()
        .unwrap();
    let id: Value = serde_json::from_slice(&id.stdout).unwrap();
    assert_eq!(id["node_id"], node_id);
}

/// `peerd_peers{state=…}` as the daemon's /metrics shows them.
fn peer_gauges(daemon: &Daemon) -> (u64, u64) {
    let scrape = http_get(daemon.metrics.expect("metrics address"), "/metrics");
    let gauge = |state: &str| {
        let prefix = format!("peerd_peers{{state=\"{state}\"}} ");
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .expect("the gauge is exposed")
    };
    (gauge("connected"), gauge("connecting"))
}

#[test]
fn the_peers_gauges_match_peers_after_churn() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let [a, b, c] = [0, 1, 2].map(|i| Daemon::start(dirs[i].path(), &[]));
    let id = |d: &Daemon| d.id.to_string();
    for _ in 0..3 {
        a.cli_ok(&["connect", &b.peer_addr()]);
        a.cli_ok(&["connect", &c.peer_addr()]);
        let _ = a.cli(&["ping", &dead_peer()]);
        let _ = a.cli(&["connect", &dead_peer(), "--timeout", "300ms"]);
        a.cli_ok(&["disconnect", &id(&b)]);
        a.cli_ok(&["disconnect", &id(&c)]);
    }
    a.cli_ok(&["connect", &c.peer_addr()]);
    let connected = |d: &Daemon| -> u64 {
        let peers = json_of(d, &["peers", "--json"]);
        peers.iter().filter(|p| p["state"] == "connected").count() as u64
    };
    let settled = || peer_gauges(&a) == (connected(&a), 0);
    assert!(
        wait_for(Duration::from_secs(5), settled),
        "gauges {:?}, peers --json {} connected",
        peer_gauges(&a),
        connected(&a)
    );
    // c stays connected. b may be too: a netcheck (a's or b's, which
    // start once a node has a connection) dials the other for a dial back
    // (docs/nat.md). The gauges matched whatever is connected, above.
    let peers = json_of(&a, &["peers", "--json"]);
    let live: Vec<_> = peers
        .iter()
        .filter(|p| p["state"] == "connected")
        .map(|p| p["node_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(live.contains(&id(&c)), "c stays connected: {peers:?}");
    assert!(
        live.iter().all(|node| *node == id(&b) || *node == id(&c)),
        "{peers:?}"
    );
}

#[test]
fn connect_and_disconnect_take_an_id_prefix_the_book_knows() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let b = Daemon::start(dir_b.path(), &[]);
    a.cli_ok(&["ping", &b.peer_addr()]);
    let prefix = &b.id.to_string()[..10];
    let closed = a.cli_ok(&["disconnect", prefix]);
    assert_eq!(closed.trim(), format!("disconnected from {}", b.id));
    let none = a.cli_ok(&["disconnect", prefix]);
    assert_eq!(none.trim(), format!("no connection to {} was open", b.id));
    let connected = a.cli_ok(&["connect", prefix]);
    assert_eq!(
        connected.trim(),
        format!("connected to {} at {} (Outbound)", b.id, b.addr)
    );
}

#[test]
fn a_pinned_peer_that_keeps_failing_is_logged_at_info() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_peer();
    let daemon = Daemon::start(dir.path(), &["--peer", &dead]);
    let logged = daemon.logs_within(Duration::from_secs(10), |line| {
        line.contains("pinned peer unreachable") && line.contains("nothing listens there")
    });
    assert!(logged, "{:?}", daemon.stderr_lines());
}

#[test]
fn a_port_in_use_is_said_plainly_and_leaves_no_new_identity() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Daemon::start(dir_a.path(), &[]);
    let second = peerd(dir_b.path())
        .args(["run", "--listen", &a.addr.to_string(), "--data-dir"])
        .arg(dir_b.path())
        .args(["--set", "metrics.listen=off"])
        .output()
        .unwrap();
    let stderr = stderr_of(&second);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    let expected = format!("peerd: cannot listen on UDP {}: it is in use", a.addr);
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(
        stderr.matches("os error").count(),
        0,
        "no OS error repeated: {stderr}"
    );
    assert!(!dir_b.path().join("node.key").exists(), "no identity made");
}
