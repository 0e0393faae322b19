//! The soak (issue 21): every hostile-peer and hostile-neighbour attack at
//! once, for `SOAK_SECS` (default 300), against one `peerd run`, while a
//! legitimate peer pings it every 100 ms. Ignored by `cargo test`; run by
//! `scripts/soak.sh`. Reports the legitimate calls and the daemon's RSS over
//! time, and holds them to behavioural bounds.

mod support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerd::node_service::{self, ANNOUNCE, ECHO, proto};
use peerd::rpc::wire::codec::{FrameType, put_message_frame};
use peerd::{CallOptions, Code, NodeId};
use support::attack::{
    DaemonLimits, THIRTY_ONE_YEARS, attacker_on, echo_request, header, hold_streams, tiny_metadata,
};
use support::daemon::Daemon;
use support::node::stalled_dial_to;
use support::{SECOND, localhost};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

/// Limits picked so that the worst-case memory is small: 32 connections ×
/// (1 MiB + 16 × 84 KiB) + 32 handler slots × 256 KiB = 82 MiB.
const LIMITS: DaemonLimits = DaemonLimits {
    connections: 32,
    streams: 16,
    stream_window: 256 << 10,
    connection_window: 1 << 20,
    handlers: 32,
    message: 256 << 10,
    metadata: 16 << 10,
};
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// SIGTERM completes within `shutdown_grace` + this (docs/reliability.md).
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// What the attacks share: where the daemon is, and when to stop.
#[derive(Clone)]
struct Target {
    id: NodeId,
    addr: SocketAddr,
    metrics: SocketAddr,
    admin: PathBuf,
    stop: Arc<AtomicBool>,
    /// What each attack did, to show it ran: name → count.
    tally: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Target {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn count(&self, what: &'static str) {
        *self.tally.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// Attack 1: `identities` fresh identities, each with a connection full of
/// Echo calls asking for 31 years, half with a 49-day delay (refused at
/// once), half with a 250 s one (held, within the deadline cap).
fn hold_echo_calls(target: &Target, tasks: &mut JoinSet<()>, identities: u8) {
    for i in 0..identities {
        let attacker = attacker_on(localhost(10 + i));
        attacker.addresses().add(target.id, target.addr);
        for call in 0..LIMITS.streams {
            let (attacker, target) = (attacker.clone(), target.clone());
            let request = echo_request(if call % 2 == 0 { u32::MAX } else { 250_000 }, 16);
            tasks.spawn(async move {
                let options = CallOptions::default().with_timeout(THIRTY_ONE_YEARS);
                while target.running() {
                    let held: Result<proto::EchoResponse, _> = attacker
                        .client()
                        .unary(target.id, ECHO, &request, &options)
                        .await;
                    target.count(match &held {
                        Ok(_) => "echo calls answered",
                        Err(e) if e.code() == Code::DeadlineExceeded => {
                            "echo calls deadline exceeded"
                        }
                        Err(_) => "echo calls refused otherwise",
                    });
                    if held.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            });
        }
    }
}

/// Attack 2: connections whose every stream carries a 64 KiB header of
/// 8,700 tiny metadata entries on an Echo that would hold for a minute.
fn metadata_headers(target: &Target, tasks: &mut JoinSet<()>, identities: u8) {
    let mut call = header(ECHO, 120 * SECOND, tiny_metadata(8_700));
    put_message_frame(&mut call, FrameType::Message, &echo_request(60_000, 0));
    let call = call.freeze();
    for i in 0..identities {
        let (attacker, target) = (attacker_on(localhost(30 + i)), target.clone());
        let call = call.clone();
        tasks.spawn(async move {
            while target.running() {
                let manager = attacker.manager();
                if let Ok(connection) = manager.get_or_connect(target.id, &[target.addr]).await {
                    let held = hold_streams(connection, LIMITS.streams, call.clone(), true);
                    if let Ok(Ok(answers)) = tokio::time::timeout(10 * SECOND, held).await {
                        for answer in answers {
                            let code = support::frames::status_of(&answer).map(|s| s.code());
                            target.count(match code {
                                Some(Code::ResourceExhausted) => "metadata calls refused",
                                _ => "metadata calls not refused",
                            });
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

/// Attack 9: handshakes that hear nothing back, a new one every 250 ms from
/// each of `sources` addresses, each pending until the daemon gives up.
fn stall_handshakes(target: &Target, tasks: &mut JoinSet<()>, sources: u8) {
    let target = target.clone();
    tasks.spawn(async move {
        let mut dials = Vec::new();
        while target.running() {
            dials.retain(|dial: &JoinHandle<()>| !dial.is_finished());
            for i in 1..=sources {
                let from = SocketAddr::from(([127, 0, 3, i], 0));
                dials.push(stalled_dial_to(from, target.id, target.addr));
                target.count("stalled handshakes");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        dials.iter().for_each(JoinHandle::abort);
    });
}

/// Attack 4: one fresh identity after another, each sending 64 Announce.
fn announce_floods(target: &Target, tasks: &mut JoinSet<()>) {
    let target = target.clone();
    tasks.spawn(async move {
        let options = CallOptions::default().with_timeout(5 * SECOND);
        for round in 0.. {
            if !target.running() {
                break;
            }
            let attacker = attacker_on(localhost(40));
            attacker.addresses().add(target.id, target.addr);
            for i in 0..64 {
                let request = proto::AnnounceRequest {
                    name: format!("flood-{round}-{i}"),
                    version: "1".into(),
                    ttl_secs: 3600,
                    addrs: vec![],
                };
                let stored: Result<proto::AnnounceResponse, _> = attacker
                    .client()
                    .unary(target.id, ANNOUNCE, &request, &options)
                    .await;
                target.count(match stored {
                    Ok(_) => "announces stored",
                    Err(_) => "announces refused",
                });
            }
            attacker.shutdown(Duration::ZERO).await;
        }
    });
}

/// Attack 4: identities that connect, ping once and leave, every 50 ms.
fn connect_and_leave(target: &Target, tasks: &mut JoinSet<()>) {
    let target = target.clone();
    tasks.spawn(async move {
        let options = CallOptions::default().with_timeout(5 * SECOND);
        while target.running() {
            let attacker = attacker_on(localhost(41));
            attacker.addresses().add(target.id, target.addr);
            let ping = node_service::ping(attacker.client(), target.id, &options).await;
            target.count(match ping {
                Ok(_) => "connect-and-leave identities",
                Err(_) => "connect-and-leave identities refused",
            });
            attacker.shutdown(Duration::ZERO).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Attack 8: `held` idle connections made by `connect`, 10 new ones every
/// 200 ms with the oldest let go, so the flood stays whatever the daemon
/// drops.
fn idle_connections<S, F, Fut>(
    target: &Target,
    tasks: &mut JoinSet<()>,
    (name, held): (&'static str, usize),
    connect: F,
) where
    S: Send + 'static,
    F: Fn(Target) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<S>> + Send,
{
    let target = target.clone();
    tasks.spawn(async move {
        let mut open = VecDeque::new();
        while target.running() {
            for _ in 0..10 {
                if let Ok(connection) = connect(target.clone()).await {
                    open.push_back(connection);
                    target.count(name);
                }
            }
            while open.len() > held {
                open.pop_front();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Attack 3: admin `find`s whose clients hang up at once, every 100 ms.
fn abandoned_finds(target: &Target, tasks: &mut JoinSet<()>) {
    let target = target.clone();
    tasks.spawn(async move {
        while target.running() {
            if let Ok(mut client) = UnixStream::connect(&target.admin).await {
                let request = b"{\"request\":\"find_service\",\"name\":\"chat\"}\n";
                if client.write_all(request).await.is_ok() {
                    target.count("admin finds abandoned");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Every attack at once.
fn every_attack(target: &Target) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    hold_echo_calls(target, &mut tasks, 8);
    metadata_headers(target, &mut tasks, 2);
    stall_handshakes(target, &mut tasks, 4);
    announce_floods(target, &mut tasks);
    connect_and_leave(target, &mut tasks);
    let metrics = ("idle metrics connections", 150);
    idle_connections(target, &mut tasks, metrics, |t| {
        TcpStream::connect(t.metrics)
    });
    let admin = ("idle admin connections", 300);
    idle_connections(target, &mut tasks, admin, |t| UnixStream::connect(t.admin));
    abandoned_finds(target, &mut tasks);
    tasks
}

/// The legitimate peer: a ping every 100 ms until `until`; each call's
/// outcome and how long its answer took.
async fn legitimate_pings(target: Target, until: Instant) -> Vec<(Result<(), String>, Duration)> {
    let peer = attacker_on(localhost(200));
    peer.addresses().add(target.id, target.addr);
    let options = CallOptions::default().with_timeout(5 * SECOND);
    let mut calls = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        let ping = node_service::ping(peer.client(), target.id, &options).await;
        calls.push((ping.map(drop).map_err(|e| e.to_string()), start.elapsed()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peer.shutdown(Duration::ZERO).await;
    calls
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The legitimate calls: count, success rate, latency percentiles, and the
/// failures by message.
fn calls_report(calls: &[(Result<(), String>, Duration)]) -> (f64, Duration, String) {
    let mut took: Vec<Duration> = calls.iter().map(|(_, took)| *took).collect();
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    let ok = calls.iter().filter(|(ping, _)| ping.is_ok()).count();
    let rate = ok as f64 / calls.len() as f64;
    let mut failures: HashMap<&str, usize> = HashMap::new();
    for (ping, _) in calls {
        if let Err(e) = ping {
            *failures.entry(e.as_str()).or_default() += 1;
        }
    }
    let max = *took.last().unwrap();
    let report = format!(
        "legitimate pings: {} calls, {ok} ok ({:.2} %), latency p50 {:?} p99 {:?} max {max:?}; failures {failures:?}",
        calls.len(),
        rate * 100.0,
        at(0.5),
        at(0.99),
    );
    (rate, max, report)
}

/// SIGTERM, and how long until the daemon exited (at most `limit`).
fn terminate_within(daemon: &mut Daemon, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    daemon.terminate();
    while start.elapsed() < limit {
        if daemon.try_exit().is_some() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of SOAK_SECS seconds (default 300): scripts/soak.sh"]
async fn every_attack_at_once_leaves_a_legitimate_peer_served() {
    let secs = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok());
    let duration = Duration::from_secs(secs.unwrap_or(300));
    let dir = tempfile::tempdir().unwrap();
    let mut flags = LIMITS.flags();
    for set in [
        format!("shutdown_grace={}s", SHUTDOWN_GRACE.as_secs()),
        "transport.max_pending_handshakes=16".to_owned(),
        "transport.max_pending_handshakes_per_ip=4".to_owned(),
    ] {
        flags.extend(["--set".to_owned(), set]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &flags));
    let target = Target {
        id: daemon.id,
        addr: daemon.addr,
        metrics: daemon.metrics.expect("a metrics listener"),
        admin: dir.path().join("admin.sock"),
        stop: Arc::default(),
        tally: Arc::default(),
    };
    let started = Instant::now();
    let until = started + duration;
    let pings = tokio::spawn(legitimate_pings(target.clone(), until));
    tokio::time::sleep(2 * SECOND).await;
    let mut samples = vec![(started.elapsed().as_secs(), daemon.rss_bytes())];
    let mut attacks = every_attack(&target);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        tokio::time::sleep(left.min(5 * SECOND)).await;
        samples.push((started.elapsed().as_secs(), daemon.rss_bytes()));
    }
    let calls = pings.await.unwrap();
    // With every attack still running.
    let status = tokio::task::block_in_place(|| daemon.cli(&["status", "--json"]));
    let shutdown_bound = SHUTDOWN_GRACE + SHUTDOWN_MARGIN;
    let shutdown = tokio::task::block_in_place(|| terminate_within(&mut daemon, shutdown_bound));
    target.stop.store(true, Ordering::SeqCst);
    attacks.abort_all();

    let (rate, slowest, calls_report) = calls_report(&calls);
    let base = samples[0].1;
    let max = samples.iter().map(|(_, rss)| *rss).max().unwrap();
    let end = samples.last().unwrap().1;
    let bound = LIMITS.memory_bound() as u64;
    let every: Vec<String> = samples
        .iter()
        .map(|(at, rss)| format!("{at}s {}", mib(*rss)))
        .collect();
    let report = format!(
        "soak of {duration:?}, every attack at once:\n{calls_report}\n\
         daemon RSS: start {} max {} (+{}, bound +{}) end {}\nsamples: {}\n\
         `peerd status` at the end: {}; SIGTERM done in {shutdown:?} (bound {shutdown_bound:?})\n\
         attacks: {:?}",
        mib(base),
        mib(max),
        mib(max - base),
        mib(bound),
        mib(end),
        every.join(", "),
        status.status,
        target.tally.lock().unwrap(),
    );
    println!("{report}");
    assert!(rate >= 0.99, "{report}");
    assert!(slowest <= 2 * SECOND, "{report}");
    assert!(max - base <= bound, "{report}");
    assert!(status.status.success(), "{report}");
    assert!(shutdown.is_some(), "{report}");
}
