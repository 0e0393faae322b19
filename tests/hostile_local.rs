//! Hostile neighbours of a real `peerd run` process (issue 21, attacks 6-8
//! and 10): planted or foreign-owned paths, clients that stall shutdown,
//! idle-connection floods against the local probes, a damaged peer book.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::{Handlers, Identity, Node};
use support::SECOND;
use support::daemon::{Daemon, peerd};

/// A uid no test process runs as.
const NOBODY: u32 = 65534;
/// The shutdown bound the daemon documents: `shutdown_grace` plus this.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// Every entry under `dir`: its kind, mode, owner and contents, to show
/// that a refused start changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let contents = if kind.is_file() && meta.len() < 1 << 20 {
            format!("{:?}", std::fs::read(&path).unwrap())
        } else if kind.is_symlink() {
            format!("-> {:?}", std::fs::read_link(&path).unwrap())
        } else {
            format!("{} bytes", meta.len())
        };
        let line = format!("{kind:?} {:o} {} {contents}", meta.mode(), meta.uid());
        entries.insert(path.clone(), line);
        if kind.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    entries
}

/// A `peerd run` that is expected to refuse to start: its exit status (None
/// if it was still running after `within`, then killed), its stderr, and how
/// long it took.
fn run_refused(
    dir: &Path,
    extra: &[&str],
    within: Duration,
) -> (Option<ExitStatus>, String, Duration) {
    let mut child = peerd(dir)
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--set", "metrics.listen=off"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > within {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr, took)
}

/// Asserts a refusal: a failed exit within 5 s whose message names `path`
/// and contains each of `words` (what the path is, the fix).
fn assert_refused(dir: &Path, extra: &[&str], path: &Path, words: &[&str]) {
    let (status, stderr, took) = run_refused(dir, extra, 5 * SECOND);
    println!("refused in {took:?} with {status:?}: {stderr}");
    let status = status.unwrap_or_else(|| panic!("still running after {took:?}: {stderr}"));
    assert!(
        !status.success(),
        "started (exit {status}) in {took:?}: {stderr}"
    );
    assert!(
        stderr.contains(&path.display().to_string()) && words.iter().all(|w| stderr.contains(w)),
        "the message names {} and says {words:?} (exit {status} after {took:?}): {stderr}",
        path.display()
    );
}

/// Whether the test may chown to [`NOBODY`]; without root the tests that
/// need another user's files say so and pass without checking.
fn can_chown() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&id.stdout).trim() == "0";
    if !root {
        eprintln!("skipped: making another user's files needs root");
    }
    root
}

fn make_key(dir: &Path) -> PathBuf {
    let key = dir.join("node.key");
    peerd::identity::write_new_key(&key, &Identity::generate()).unwrap();
    key
}

#[test]
fn an_admin_socket_path_at_an_existing_file_is_refused_and_the_file_kept() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path());
    let before = snapshot(dir.path());
    let socket = key.to_str().unwrap();
    assert_refused(
        dir.path(),
        &["--admin-socket", socket],
        &key,
        &["admin socket path", "not a socket"],
    );
    assert_eq!(snapshot(dir.path()), before, "the key file is untouched");
}

#[test]
fn a_data_dir_owned_by_another_user_is_refused_untouched() {
    if !can_chown() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&data, Some(NOBODY), None).unwrap();
    let before = snapshot(dir.path());
    assert_refused(&data, &[], &data, &["the data directory", "chown"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_data_dir_writable_by_others_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    make_key(&data);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = snapshot(dir.path());
    assert_refused(&data, &[], &data, &["the data directory", "chmod go-w"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn an_admin_socket_dir_owned_by_another_user_is_refused_untouched() {
    if !can_chown() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(NOBODY), None).unwrap();
    let socket = run.join("admin.sock");
    let before = snapshot(dir.path());
    assert_refused(
        &data,
        &["--admin-socket", socket.to_str().unwrap()],
        &run,
        &["admin socket's directory", "chown"],
    );
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_key_file_owned_by_another_user_is_refused_untouched() {
    if !can_chown() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path());
    std::os::unix::fs::chown(&key, Some(NOBODY), None).unwrap();
    let before = snapshot(dir.path());
    assert_refused(dir.path(), &[], &key, &["key file", "chown"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_key_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let made = Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let before = snapshot(dir.path());
    assert_refused(dir.path(), &[], &key, &["key file", "not a regular file"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_huge_key_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_key(dir.path());
    // A valid key followed by 200 MB of zero bytes (sparse: no disk used).
    let file = std::fs::OpenOptions::new().append(true).open(&key).unwrap();
    file.set_len(200_000_000).unwrap();
    let before = snapshot(dir.path());
    assert_refused(dir.path(), &[], &key, &["key file", "larger than"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_symlinked_key_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = make_key(elsewhere.path());
    let key = dir.path().join("node.key");
    std::os::unix::fs::symlink(&target, &key).unwrap();
    let before = snapshot(dir.path());
    assert_refused(dir.path(), &[], &key, &["key file", "symbolic link"]);
    assert_eq!(snapshot(dir.path()), before, "nothing created or changed");
}

#[test]
fn a_second_daemon_on_the_same_data_dir_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(dir.path(), &[]);
    let other = dir.path().join("second.sock");
    let (status, stderr, took) = run_refused(
        dir.path(),
        &["--admin-socket", other.to_str().unwrap()],
        5 * SECOND,
    );
    println!("the second daemon: {status:?} after {took:?}: {stderr}");
    let status =
        status.unwrap_or_else(|| panic!("a second daemon ran for {took:?} on one identity"));
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("another peerd") && stderr.contains(&dir.path().display().to_string()),
        "exit {status} after {took:?}: {stderr}"
    );
    assert!(!other.exists(), "the second daemon bound no socket");
    first.status();
}

/// SIGTERM, and how long until the daemon exited (panics past `limit`).
fn terminate_within(daemon: &mut Daemon, limit: Duration) -> Duration {
    let start = Instant::now();
    daemon.terminate();
    loop {
        if daemon.try_exit().is_some() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "SIGTERM not done after {:?} (bound {limit:?})",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn saved_book(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("peers.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("peers.json {text:?}: {e}"))
}

fn book_has(book: &serde_json::Value, id: &str) -> bool {
    book["peers"]
        .as_array()
        .is_some_and(|peers| peers.iter().any(|p| p["node_id"] == id))
}

#[test]
fn a_planted_peer_book_temp_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("precious");
    std::fs::write(&victim, "root's file\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("peers.json.tmp")).unwrap();
    let peer = Identity::generate().node_id();
    let mut daemon = Daemon::start(dir.path(), &["--peer", &format!("{peer}@127.0.0.1:9")]);
    let took = terminate_within(&mut daemon, 10 * SECOND + SHUTDOWN_MARGIN);
    let content = std::fs::read_to_string(&victim).unwrap();
    println!(
        "stopped in {took:?}; the symlink's target holds {} bytes",
        content.len()
    );
    assert_eq!(
        content,
        "root's file\n",
        "the symlink was followed ({} bytes now)",
        content.len()
    );
    assert!(
        book_has(&saved_book(dir.path()), &peer.to_string()),
        "the book was saved"
    );
}

#[test]
fn a_fifo_at_the_peer_book_temp_does_not_hang_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("peers.json.tmp");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let peer = Identity::generate().node_id();
    let mut daemon = Daemon::start(
        dir.path(),
        &[
            "--peer",
            &format!("{peer}@127.0.0.1:9"),
            "--set",
            "shutdown_grace=1s",
        ],
    );
    let took = terminate_within(&mut daemon, SECOND + SHUTDOWN_MARGIN);
    println!("SIGTERM with a FIFO at peers.json.tmp: stopped in {took:?}");
    assert!(
        book_has(&saved_book(dir.path()), &peer.to_string()),
        "the book was saved"
    );
}

/// A node whose `test.v1.Big/Get` answers with 1 MiB: 2 MiB of hex in an
/// admin answer, far beyond what a Unix socket buffers.
fn big_answer_node() -> Node {
    let service = Handlers::new("test.v1.Big").unary("Get", |_, _: EchoRequest| async {
        Ok(EchoResponse {
            payload: vec![0xab; 1 << 20].into(),
        })
    });
    Node::builder(Identity::generate())
        .listen(support::localhost(1))
        .serve(service)
        .bind()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_with_an_admin_client_that_never_reads() {
    let big = big_answer_node();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--set", "shutdown_grace=1s"]);
    let request = serde_json::json!({
        "request": "call", "node": big.id().to_string(),
        "addr": big.local_addr().to_string(), "method": "test.v1.Big/Get",
        "body": { "hex": "" },
    });
    let mut stalled = UnixStream::connect(dir.path().join("admin.sock")).unwrap();
    writeln!(stalled, "{request}").unwrap();
    // The daemon calls the node and starts writing its 2 MiB answer.
    let called = support::eventually(10 * SECOND, || {
        big.manager().connection(daemon.id).is_some()
    })
    .await;
    assert!(called, "the daemon called the big node");
    tokio::time::sleep(SECOND).await;
    let took =
        tokio::task::block_in_place(|| terminate_within(&mut daemon, SECOND + SHUTDOWN_MARGIN));
    println!("SIGTERM with an admin client that never reads: stopped in {took:?}");
    let book = saved_book(dir.path());
    assert!(
        book_has(&book, &big.id().to_string()),
        "the book was saved: {book}"
    );
    drop(stalled);
}

fn probe_livez(addr: std::net::SocketAddr, within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(within)).unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("{e} after {:?}", start.elapsed()))?;
    match answer.starts_with("HTTP/1.1 200") {
        true => Ok(start.elapsed()),
        false => Err(format!("answer {answer:?}")),
    }
}

#[test]
fn livez_answers_under_an_idle_connection_flood() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let addr = daemon.metrics.unwrap();
    let idle: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(SECOND / 5);
    let probes: Vec<_> = (0..4).map(|_| probe_livez(addr, 2 * SECOND)).collect();
    let answered = probes.iter().filter(|p| p.is_ok()).count();
    println!("{} idle connections: /livez probes {probes:?}", idle.len());
    assert_eq!(
        answered, 4,
        "{answered} of 4 probes answered within 2 s: {probes:?}"
    );
}

#[test]
fn admin_status_answers_under_an_idle_connection_flood() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = Daemon::start(dir.path(), &[]);
    let socket = dir.path().join("admin.sock");
    let idle: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(SECOND / 5);
    let mut answered = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let mut child = peerd(dir.path())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["status", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > 5 * SECOND {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        answered.push((status.is_some_and(|s| s.success()), start.elapsed()));
    }
    println!(
        "{} idle admin connections: `peerd status` {answered:?}",
        idle.len()
    );
    assert!(
        answered.iter().all(|(ok, _)| *ok),
        "`peerd status` under {} idle connections (ok, time): {answered:?}",
        idle.len()
    );
}

#[test]
fn one_bad_peer_book_entry_is_dropped_not_the_book_and_limits_apply_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let (good, many) = (
        Identity::generate().node_id(),
        Identity::generate().node_id(),
    );
    let addrs: Vec<String> = (1..=20).map(|port| format!("127.0.0.1:{port}")).collect();
    let book = serde_json::json!({
        "version": 1,
        "peers": [
            { "node_id": good.to_string(), "addrs": ["127.0.0.1:7"], "last_seen_unix": 100, "source": "manual" },
            { "node_id": "not-a-node-id", "addrs": ["127.0.0.1:8"], "last_seen_unix": 100, "source": "manual" },
            { "node_id": many.to_string(), "addrs": addrs, "last_seen_unix": 90, "source": "lookup" },
        ],
    });
    std::fs::write(dir.path().join("peers.json"), book.to_string()).unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    terminate_within(&mut daemon, 10 * SECOND + SHUTDOWN_MARGIN);
    let saved = saved_book(dir.path());
    let peers = saved["peers"].as_array().cloned().unwrap_or_default();
    println!("saved after loading 3 entries (1 bad, 1 with 20 addresses): {saved}");
    assert!(
        book_has(&saved, &good.to_string()),
        "the good entry was kept: {saved}"
    );
    let kept = peers.iter().find(|p| p["node_id"] == many.to_string());
    let count = kept.and_then(|p| p["addrs"].as_array()).map(Vec::len);
    assert_eq!(count, Some(8), "addresses kept of 20: {count:?}");
    assert_eq!(peers.len(), 2, "{} entries saved: {saved}", peers.len());
}

#[test]
fn livez_answers_while_idle_connections_keep_arriving() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    let addr = daemon.metrics.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Up to 500 held at once, the oldest closed to open the next.
            let mut held = std::collections::VecDeque::new();
            let mut opened = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(stream) = TcpStream::connect(addr) {
                    held.push_back(stream);
                    opened += 1;
                }
                if held.len() > 500 {
                    held.pop_front();
                }
            }
            opened
        })
    };
    std::thread::sleep(SECOND / 2);
    let probes: Vec<_> = (0..10).map(|_| probe_livez(addr, 2 * SECOND)).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.join().unwrap();
    let answered = probes.iter().filter(|p| p.is_ok()).count();
    println!("{opened} idle connections opened meanwhile: /livez probes {probes:?}");
    assert_eq!(
        answered, 10,
        "{answered} of 10 probes answered within 2 s while {opened} connections arrived: {probes:?}"
    );
}
