//! Hostile peers against the RPC layer and the handshake slots (issue 21,
//! attacks 1, 2 and 9): many free identities holding handler slots, calls
//! that ask for endless deadlines, request headers full of tiny metadata
//! entries, and handshakes that prove their address and then stall. Each
//! time a legitimate peer's Ping must keep succeeding.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use peerd::connection::{NodeConnection, TransportConfig};
use peerd::node_service::{self, ECHO, PING};
use peerd::rpc::RpcConfig;
use peerd::rpc::wire::codec::{FrameType, MAX_CONTROL_FRAME, put_message_frame};
use peerd::test_utils::{Faults, FaultySocket};
use peerd::{CallOptions, Identity, Node, NodeId};
use support::attack::{
    DaemonLimits, THIRTY_ONE_YEARS, attacker_on, echo_request, header, hold_streams, tiny_metadata,
};
use support::node::{Probe, node_on, rss_bytes};
use support::{SECOND, localhost};
use tokio::task::JoinHandle;

/// Pings `to` from a fresh identity every 50 ms until `stop`; returns
/// (pings, failures).
fn legitimate_pings(to: &Node, stop: Arc<AtomicBool>) -> JoinHandle<(usize, Vec<String>)> {
    let peer = attacker_on(localhost(200));
    peer.addresses().add(to.id(), to.local_addr());
    let target = to.id();
    tokio::spawn(async move {
        let (mut pings, mut failures) = (0, Vec::new());
        let options = CallOptions::default().with_timeout(2 * SECOND);
        while !stop.load(Ordering::SeqCst) {
            pings += 1;
            if let Err(e) = node_service::ping(peer.client(), target, &options).await {
                failures.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (pings, failures)
    })
}

async fn connect(from: &Node, to: &Node) -> NodeConnection {
    from.manager()
        .get_or_connect(to.id(), &[to.local_addr()])
        .await
        .expect("the attacker connects")
}

/// Attack 1, the class: many identities, each filling its connection with
/// calls to a handler that holds on, renewing every call that ends. The
/// handler pool is shared fairly, so a Ping always finds a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_identities_holding_every_handler_slot_leave_pings_served() {
    const HANDLERS: usize = 64;
    const STREAMS: u32 = 32;
    const ATTACKERS: usize = 8;
    let (probe, victim) = probe_victim(HANDLERS, STREAMS);
    let stop = Arc::new(AtomicBool::new(false));
    let mut attack = Vec::new();
    for i in 0..ATTACKERS {
        let attacker = attacker_on(localhost(10 + i as u8));
        attacker.addresses().add(victim.id(), victim.local_addr());
        attack.extend(keep_holding(
            &attacker,
            victim.id(),
            STREAMS as usize,
            &stop,
        ));
    }
    let filled = support::eventually(20 * SECOND, || probe.running() >= HANDLERS).await;
    assert!(filled, "the attack filled {} slots", probe.running());
    let pings = legitimate_pings(&victim, stop.clone());
    tokio::time::sleep(3 * SECOND).await;
    let most_per_caller = probe.running_per_caller().into_values().max().unwrap_or(0);
    stop.store(true, Ordering::SeqCst);
    let (count, failures) = pings.await.unwrap();
    probe.release();
    attack.into_iter().for_each(|task| task.abort());
    let share = HANDLERS.div_ceil(ATTACKERS);
    let summary = format!(
        "{ATTACKERS} identities x {STREAMS} held calls against {HANDLERS} handler slots: \
         {count} pings, {} failed; at the end one attacker held at most {most_per_caller} slots (fair share {share})",
        failures.len()
    );
    println!("{summary}");
    assert!(failures.is_empty(), "{summary}: {failures:?}");
    assert!(most_per_caller <= share + 1, "{summary}");
}

/// A node serving the probe service with `handlers` slots, to which a peer
/// may open `streams` streams per connection.
fn probe_victim(handlers: usize, streams: u32) -> (Arc<Probe>, Node) {
    let probe = Arc::new(Probe::default());
    let transport = TransportConfig {
        max_concurrent_streams: streams,
        ..TransportConfig::default()
    };
    let rpc = RpcConfig {
        max_handlers: handlers,
        ..RpcConfig::default()
    };
    (probe.clone(), node_on(localhost(1), transport, rpc, probe))
}

/// Keeps `calls` `Hold` calls from `caller` to `target` going until `stop`.
fn keep_holding(
    caller: &Node,
    target: NodeId,
    calls: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    (0..calls)
        .map(|_| {
            let (caller, stop) = (caller.clone(), stop.clone());
            tokio::spawn(async move {
                let options = CallOptions::default().with_timeout(THIRTY_ONE_YEARS);
                let request = echo_request(0, 16);
                while !stop.load(Ordering::SeqCst) {
                    let held: Result<peerd::node_service::proto::EchoResponse, _> = caller
                        .client()
                        .unary(target, "test.v1.Probe/Hold", &request, &options)
                        .await;
                    if held.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect()
}

/// Attack 1 from one address: identities are free, addresses are not, so
/// the slots are shared between sources first. 16 identities on one
/// address holding every slot leave a peer from another address half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_identities_on_one_address_gets_one_addresss_share() {
    const HANDLERS: usize = 64;
    const STREAMS: u32 = 32;
    const CROWD: usize = 16;
    let (probe, victim) = probe_victim(HANDLERS, STREAMS);
    let stop = Arc::new(AtomicBool::new(false));
    let mut attack = Vec::new();
    for _ in 0..CROWD {
        let attacker = attacker_on(localhost(10));
        attacker.addresses().add(victim.id(), victim.local_addr());
        attack.extend(keep_holding(
            &attacker,
            victim.id(),
            STREAMS as usize,
            &stop,
        ));
    }
    let filled = support::eventually(20 * SECOND, || probe.running() >= HANDLERS).await;
    assert!(filled, "the crowd filled {} slots", probe.running());
    let peer = attacker_on(localhost(20));
    peer.addresses().add(victim.id(), victim.local_addr());
    attack.extend(keep_holding(&peer, victim.id(), STREAMS as usize, &stop));
    let share = HANDLERS / 2;
    // Less one: the peer's discovery may have a call of its own in its share.
    let got_share = support::eventually(10 * SECOND, || {
        probe
            .running_per_caller()
            .get(&peer.id())
            .copied()
            .unwrap_or(0)
            >= share - 1
    })
    .await;
    let peer_held = probe
        .running_per_caller()
        .get(&peer.id())
        .copied()
        .unwrap_or(0);
    stop.store(true, Ordering::SeqCst);
    probe.release();
    attack.into_iter().for_each(|task| task.abort());
    let summary = format!(
        "{CROWD} identities on one address x {STREAMS} held calls, {HANDLERS} handler slots: \
         a peer from another address with {STREAMS} calls holds {peer_held} (its source's share {share})"
    );
    println!("{summary}");
    assert!(got_share, "{summary}");
}

/// Attack 1 as measured, on default limits: 33 identities x 128 calls, half
/// of them `Echo` with a 49-day delay, half a bare header with a 31-year
/// timeout and no request. Neither may hold a handler slot for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_deadlines_and_echo_delays_cannot_take_the_handler_pool() {
    const ATTACKERS: usize = 33;
    let streams = TransportConfig::default().max_concurrent_streams as usize;
    let victim = node_on(
        localhost(1),
        TransportConfig::default(),
        RpcConfig::default(),
        Arc::default(),
    );
    let mut echo_call = header(ECHO, THIRTY_ONE_YEARS, HashMap::new());
    put_message_frame(
        &mut echo_call,
        FrameType::Message,
        &echo_request(u32::MAX, 8),
    );
    let bare_header = header(PING, THIRTY_ONE_YEARS, HashMap::new());
    let mut attack = Vec::new();
    for i in 0..ATTACKERS {
        let attacker = attacker_on(localhost(10 + i as u8));
        let connection = connect(&attacker, &victim).await;
        let (bytes, finish) = match i % 2 {
            0 => (echo_call.clone().freeze(), true),
            _ => (bare_header.clone().freeze(), false),
        };
        attack.push((attacker, hold_streams(connection, streams, bytes, finish)));
    }
    tokio::time::sleep(3 * SECOND).await;
    let in_flight = victim.server().in_flight();
    let stop = Arc::new(AtomicBool::new(false));
    let pings = legitimate_pings(&victim, stop.clone());
    tokio::time::sleep(3 * SECOND).await;
    stop.store(true, Ordering::SeqCst);
    let (count, failures) = pings.await.unwrap();
    let busy = victim.server().handlers_busy();
    let summary = format!(
        "{ATTACKERS} identities x {streams} calls (Echo delay_millis=2^32-1 / bare headers, timeout 31 years): \
         {in_flight} calls in flight on the victim, {busy} handler slots busy; {count} pings, {} failed",
        failures.len()
    );
    println!("{summary}");
    attack.into_iter().for_each(|(_, task)| task.abort());
    assert!(failures.is_empty(), "{summary}: {failures:?}");
}

/// Attack 2: 64 KiB request headers of ~8,700 tiny metadata entries, on
/// calls that hold on. Metadata is bounded by entries and decoded size, so
/// such a header is refused and memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_full_of_tiny_metadata_entries_cost_little_memory() {
    const ATTACKERS: usize = 2;
    let streams = TransportConfig::default().max_concurrent_streams as usize;
    let probe = Arc::new(Probe::default());
    let victim = node_on(
        localhost(1),
        TransportConfig::default(),
        RpcConfig::default(),
        probe.clone(),
    );
    let mut call = header("test.v1.Probe/Hold", 60 * SECOND, tiny_metadata(8_700));
    let header_bytes = call.len();
    put_message_frame(&mut call, FrameType::Message, &echo_request(0, 0));
    let call = call.freeze();
    let stop = Arc::new(AtomicBool::new(false));
    let pings = legitimate_pings(&victim, stop.clone());
    tokio::time::sleep(SECOND).await;
    let before = rss_bytes();
    let mut attack = Vec::new();
    for i in 0..ATTACKERS {
        let attacker = attacker_on(localhost(10 + i as u8));
        let connection = connect(&attacker, &victim).await;
        attack.push((
            attacker,
            hold_streams(connection, streams, call.clone(), true),
        ));
    }
    tokio::time::sleep(3 * SECOND).await;
    let growth = rss_bytes().saturating_sub(before);
    let held = probe.running();
    stop.store(true, Ordering::SeqCst);
    let (count, failures) = pings.await.unwrap();
    probe.release();
    let mut codes = HashMap::new();
    for (_, task) in attack {
        for answer in task.await.unwrap() {
            let code = support::frames::status_of(&answer).map(|s| s.code());
            *codes.entry(format!("{code:?}")).or_insert(0) += 1;
        }
    }
    let calls = ATTACKERS * streams;
    let summary = format!(
        "{calls} calls with {header_bytes}-byte headers of 8,700 metadata entries: {held} held by handlers, \
         RSS grew by {} KiB ({} bytes per call); answers {codes:?}; {count} pings, {} failed",
        growth >> 10,
        growth / calls as u64,
        failures.len()
    );
    println!("{summary}");
    assert!(failures.is_empty(), "{summary}: {failures:?}");
    assert_eq!(held, 0, "{summary}");
    // Per connection: what QUIC buffers unread, and per stream while its
    // header is read, the header frame and the metadata decoded so far
    // (docs/reliability.md, worst-case memory).
    let window = TransportConfig::default().connection_receive_window as usize;
    let per_stream = MAX_CONTROL_FRAME as usize + RpcConfig::default().max_metadata_bytes;
    let bound = ATTACKERS * (window + streams * per_stream);
    assert!(
        growth < bound as u64,
        "{summary}; bound {} KiB",
        bound >> 10
    );
}

/// A client from `from` that proves its address when asked (it hears QUIC
/// Retry packets) and hears nothing else: its handshake stays pending on
/// the node until the node gives up.
fn stalling_dial(from: SocketAddr, to: &Node) -> JoinHandle<()> {
    let stall = Faults {
        only_retries: true,
        ..Faults::default()
    };
    let socket = FaultySocket::bind(from, stall, 1).expect("bind");
    let client = Node::builder(Identity::generate())
        .socket(socket)
        .transport(TransportConfig {
            // One attempt: later ones would go unheard anyway.
            handshake_timeout: 30 * SECOND,
            ..TransportConfig::default()
        })
        .bind()
        .expect("bind");
    let (id, addr) = (to.id(), to.local_addr());
    tokio::spawn(async move {
        let _ = client.manager().get_or_connect(id, &[addr]).await;
    })
}

/// Keeps `per_source` stalled handshakes coming from each of `sources`.
fn stall_from(sources: Vec<SocketAddr>, to: &Node, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let to = to.clone();
    tokio::spawn(async move {
        let mut dials = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            for from in &sources {
                dials.push(stalling_dial(*from, &to));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        dials.iter().for_each(JoinHandle::abort);
    })
}

/// Attack 9: a few sources whose handshakes answer the Retry and then stall
/// fill every pending-handshake slot. Sources that complete win the slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_that_stall_from_a_few_sources_keep_no_new_peer_out() {
    const PENDING: usize = 16;
    const PER_IP: usize = 4;
    const NEWCOMERS: u8 = 4;
    let victim = node_on(
        localhost(1),
        TransportConfig {
            max_pending_handshakes: PENDING,
            max_pending_handshakes_per_ip: PER_IP,
            ..TransportConfig::default()
        },
        RpcConfig::default(),
        Arc::default(),
    );
    let sources: Vec<_> = (1..=(PENDING / PER_IP) as u8)
        .map(|i| SocketAddr::from(([127, 0, 3, i], 0)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let attack = stall_from(sources, &victim, stop.clone());
    let full = support::eventually(10 * SECOND, || {
        victim.manager().stats().pending_handshakes >= PENDING
    })
    .await;
    let mut failures = Vec::new();
    for i in 0..NEWCOMERS {
        let newcomer = attacker_on(SocketAddr::from(([127, 0, 4, i + 1], 0)));
        newcomer.addresses().add(victim.id(), victim.local_addr());
        let options = CallOptions::default().with_timeout(5 * SECOND);
        if let Err(e) = node_service::ping(newcomer.client(), victim.id(), &options).await {
            failures.push(e.to_string());
        }
    }
    let pending = victim.manager().stats().pending_handshakes;
    stop.store(true, Ordering::SeqCst);
    attack.await.unwrap();
    let summary = format!(
        "{} sources x {PER_IP} stalled handshakes (limit {PENDING} pending, full: {full}, {pending} pending at the end): \
         {} of {NEWCOMERS} new peers' pings failed",
        PENDING / PER_IP,
        failures.len()
    );
    println!("{summary}");
    assert!(full, "{summary}");
    assert!(failures.is_empty(), "{summary}: {failures:?}");
}

/// Attack 9 from many sources, one stalled handshake each: no source holds
/// more than a newcomer's may, so the handshakes that stalled longest (over
/// a quarter of the handshake timeout) give way instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_that_stall_from_many_sources_give_way_once_stale() {
    const PENDING: usize = 8;
    const NEWCOMERS: u8 = 3;
    let victim = node_on(
        localhost(1),
        TransportConfig {
            max_pending_handshakes: PENDING,
            max_pending_handshakes_per_ip: 1,
            handshake_timeout: 4 * SECOND,
            ..TransportConfig::default()
        },
        RpcConfig::default(),
        Arc::default(),
    );
    let sources: Vec<_> = (1..=PENDING as u8)
        .map(|i| SocketAddr::from(([127, 0, 5, i], 0)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let attack = stall_from(sources, &victim, stop.clone());
    let full = support::eventually(10 * SECOND, || {
        victim.manager().stats().pending_handshakes >= PENDING
    })
    .await;
    // A quarter of the 4 s handshake timeout, and a margin.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut failures = Vec::new();
    for i in 0..NEWCOMERS {
        let newcomer = attacker_on(SocketAddr::from(([127, 0, 6, i + 1], 0)));
        newcomer.addresses().add(victim.id(), victim.local_addr());
        let options = CallOptions::default().with_timeout(3 * SECOND);
        if let Err(e) = node_service::ping(newcomer.client(), victim.id(), &options).await {
            failures.push(e.to_string());
        }
    }
    stop.store(true, Ordering::SeqCst);
    attack.await.unwrap();
    let summary = format!(
        "{PENDING} sources x 1 stalled handshake (limit {PENDING} pending, 1 per source, full: {full}): \
         {} of {NEWCOMERS} new peers' pings failed",
        failures.len()
    );
    println!("{summary}");
    assert!(full, "{summary}");
    assert!(failures.is_empty(), "{summary}: {failures:?}");
}

/// The limits of the worst-case test, small so that the worst case is
/// quick to reach; the bound is the formula of docs/reliability.md.
const WORST_CASE: DaemonLimits = DaemonLimits {
    connections: 4,
    streams: 16,
    stream_window: 256 << 10,
    connection_window: 1 << 20,
    handlers: 16,
    message: 256 << 10,
    metadata: 16 << 10,
};

/// 64 entries of 115-byte values: just under the default metadata limit.
fn full_metadata() -> HashMap<String, String> {
    (0..64)
        .map(|i| (format!("{i:02}"), "m".repeat(115)))
        .collect()
}

/// A daemon held at the worst case its limits allow: on every connection
/// its share of handlers holding a largest request, the streams beyond
/// them waiting for a slot with their requests filling QUIC's windows, or
/// stuck inside a largest header frame; every header with full metadata.
/// Its RSS grows by no more than the documented bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_held_at_its_worst_case_stays_within_the_documented_memory() {
    let DaemonLimits {
        connections,
        streams,
        handlers,
        message,
        ..
    } = WORST_CASE;
    let dir = tempfile::tempdir().unwrap();
    let mut flags = WORST_CASE.flags();
    flags.extend(["--set".to_owned(), "rpc.header_timeout=60s".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let daemon = tokio::task::block_in_place(|| support::daemon::Daemon::start(dir.path(), &flags));
    let mut attackers = Vec::new();
    for i in 0..connections {
        let attacker = attacker_on(localhost(10 + i as u8));
        let connection = attacker
            .manager()
            .get_or_connect(daemon.id, &[daemon.addr])
            .await
            .expect("connects");
        let options = CallOptions::default().with_timeout(5 * SECOND);
        node_service::ping(attacker.client(), daemon.id, &options)
            .await
            .expect("a first ping");
        attackers.push((attacker, connection));
    }
    tokio::time::sleep(SECOND).await;
    let base = daemon.rss_bytes();
    let share = handlers / connections;
    let mut call = header(ECHO, 120 * SECOND, full_metadata());
    let payload = message - 64;
    put_message_frame(
        &mut call,
        FrameType::Message,
        &echo_request(60_000, payload),
    );
    let call = call.freeze();
    let mut held = Vec::new();
    for (_, connection) in &attackers {
        held.push(hold_streams(connection.clone(), share, call.clone(), true));
    }
    tokio::time::sleep(2 * SECOND).await;
    let mut stuck_header = BytesMut::new();
    stuck_header.extend_from_slice(&[FrameType::Header as u8]);
    stuck_header.extend_from_slice(&MAX_CONTROL_FRAME.to_be_bytes());
    stuck_header.resize(5 + MAX_CONTROL_FRAME as usize - 1, 0);
    let stuck_header = stuck_header.freeze();
    let rest = streams - share;
    for (_, connection) in &attackers {
        held.push(hold_streams(
            connection.clone(),
            rest / 2,
            call.clone(),
            true,
        ));
        held.push(hold_streams(
            connection.clone(),
            rest - rest / 2,
            stuck_header.clone(),
            false,
        ));
    }
    tokio::time::sleep(3 * SECOND).await;
    let growth = daemon.rss_bytes().saturating_sub(base) as usize;
    held.iter().for_each(JoinHandle::abort);
    let summary = format!(
        "{connections} connections x {streams} streams ({share} handlers each with a {} KiB request, the rest waiting \
         with full windows or inside a 64 KiB header), {handlers} handlers: RSS grew by {} KiB, bound {} KiB",
        message >> 10,
        growth >> 10,
        WORST_CASE.memory_bound() >> 10,
    );
    println!("{summary}");
    assert!(growth <= WORST_CASE.memory_bound(), "{summary}");
    assert!(
        growth >= handlers * message,
        "the held requests are there: {summary}"
    );
}
