//! Nodes behind NAT reach each other through a relay, in network namespaces
//! this test builds (root; CI runs as root): a public namespace holding the
//! relay, and two homes behind NAT routers made of iptables MASQUERADE with
//! no route between them except through NAT. The nodes are library nodes,
//! each on a runtime inside its namespace, so a test service can offer all
//! four call patterns and the relay's forwarded packets can be read.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peerd::addressing::RelayAddr;
use peerd::nat::proto::{DialBackRequest, DialBackResponse, PunchRequest, PunchResponse};
use peerd::nat::{DIAL_BACK, PUNCH_START};
use peerd::node::PathKind;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::paths::is_virtual;
use peerd::relay::RelayConfig;
use peerd::rpc::{RequestStream, ResponseSink};
use peerd::{CallContext, CallOptions, Code, Handlers, Identity, Node};
use support::netns::{NatKind, NsRuntime, PUBLIC_IP, Topology};

/// Text no ciphertext contains by chance: found in a forwarded packet, it
/// would mean the relay read a call's payload.
const MARKER: &[u8] = b"plaintext-only-the-two-ends-may-read:";

const SERVICE: &str = "test.v1.Relayed";

fn payload() -> Bytes {
    Bytes::from(MARKER.repeat(16))
}

/// Each pattern once; `Whoami` answers with the caller's id, as the
/// callee's handler saw it.
fn relayed_service() -> Handlers {
    Handlers::new(SERVICE)
        .unary("Whoami", |context: CallContext, _: EchoRequest| async move {
            let caller = context.caller().to_string();
            Ok(EchoResponse {
                payload: Bytes::from(caller),
            })
        })
        .server_streaming(
            "Repeat",
            |_, request: EchoRequest, mut sink: ResponseSink<EchoResponse>| async move {
                for _ in 0..3 {
                    let payload = request.payload.clone();
                    sink.send(&EchoResponse { payload }).await?;
                }
                Ok(())
            },
        )
        .client_streaming(
            "Concat",
            |_, mut requests: RequestStream<EchoRequest>| async move {
                let mut all = Vec::new();
                while let Some(request) = requests.message().await? {
                    all.extend_from_slice(&request.payload);
                }
                Ok(EchoResponse {
                    payload: all.into(),
                })
            },
        )
        .bidi_streaming(
            "Echo",
            |_, mut requests: RequestStream<EchoRequest>,
             mut sink: ResponseSink<EchoResponse>| async move {
                while let Some(request) = requests.message().await? {
                    let payload = request.payload;
                    sink.send(&EchoResponse { payload }).await?;
                }
                Ok(())
            },
        )
}

struct Net {
    /// Declared first: the nodes' runtimes stop before the namespaces go.
    public: NsRuntime,
    homes: [NsRuntime; 2],
    _net: Topology,
}

impl Net {
    fn new(tag: &str, nat2: NatKind) -> Self {
        let net = Topology::two_homes(tag, NatKind::PortPreserving, nat2);
        Self {
            public: NsRuntime::enter(&net.ns("pub")),
            homes: [
                NsRuntime::enter(&net.ns("home1")),
                NsRuntime::enter(&net.ns("home2")),
            ],
            _net: net,
        }
    }
}

fn relay_addr() -> SocketAddr {
    format!("{PUBLIC_IP}:7733").parse().unwrap()
}

fn relay_node(runtime: &NsRuntime, config: RelayConfig) -> Node {
    runtime.run(async move {
        Node::builder(Identity::generate())
            .listen(relay_addr())
            .relay(config)
            .bind()
            .unwrap()
    })
}

fn home_node(runtime: &NsRuntime, home: u8) -> Node {
    let listen: SocketAddr = format!("{}:7733", Topology::home_ip(home)).parse().unwrap();
    runtime.run(async move {
        Node::builder(Identity::generate())
            .listen(listen)
            .serve(relayed_service())
            .bind()
            .unwrap()
    })
}

fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// B holds a reservation on the relay, and A knows the relay only: A's
/// calls to B by id find B through the relay's FindNode answer.
fn reserve_and_introduce(net: &Net, relay: &Node, a: &Node, b: &Node) {
    let at = RelayAddr {
        relay: relay.id(),
        addr: relay_addr(),
    };
    assert!(b.reserve_on(at));
    let server = relay.relay_server().unwrap().clone();
    assert!(
        eventually(Duration::from_secs(10), || server.stats().reservations == 1),
        "B's reservation is held: {:?}",
        server.stats()
    );
    let (client, relay_id) = (a.client().clone(), relay.id());
    net.homes[0].run(async move {
        let options = CallOptions::default().with_addr(relay_addr());
        peerd::node_service::ping(&client, relay_id, &options)
            .await
            .unwrap();
    });
}

fn echo(payload: Bytes) -> EchoRequest {
    EchoRequest {
        payload,
        delay_millis: 0,
    }
}

/// All four call patterns from A to B, by id, with a deadline each.
async fn every_pattern(a: Node, b: peerd::NodeId) {
    let client = a.client();
    let options = CallOptions::default().with_timeout(Duration::from_secs(15));
    let method = |name: &str| format!("{SERVICE}/{name}");
    let whoami: EchoResponse = client
        .unary(b, &method("Whoami"), &echo(payload()), &options)
        .await
        .unwrap();
    assert_eq!(
        whoami.payload,
        a.id().to_string(),
        "the callee saw the caller's own id"
    );

    let mut repeated = client
        .server_streaming::<EchoRequest, EchoResponse>(
            b,
            &method("Repeat"),
            &echo(payload()),
            &options,
        )
        .await
        .unwrap();
    let mut count = 0;
    while let Some(answer) = repeated.message().await.unwrap() {
        assert_eq!(answer.payload, payload());
        count += 1;
    }
    assert_eq!(count, 3);

    let mut concat = client
        .client_streaming::<EchoRequest, EchoResponse>(b, &method("Concat"), &options)
        .await
        .unwrap();
    for _ in 0..3 {
        concat.send(&echo(payload())).await.unwrap();
    }
    assert_eq!(
        concat.response().await.unwrap().payload,
        payload().repeat(3)
    );

    let mut echoed = client
        .bidi_streaming::<EchoRequest, EchoResponse>(b, &method("Echo"), &options)
        .await
        .unwrap();
    for _ in 0..3 {
        echoed.send(&echo(payload())).await.unwrap();
        let answer = echoed.message().await.unwrap().unwrap();
        assert_eq!(answer.payload, payload());
    }
    echoed.close_send().unwrap();
    assert!(echoed.message().await.unwrap().is_none());
}

#[test]
fn a_home_node_calls_another_by_id_through_a_relay_that_reads_no_payload() {
    if !Topology::available() {
        return;
    }
    // Home 2's NAT gives each destination its own port: no punch can work,
    // so every packet of the session goes through the relay.
    let net = Net::new("rl", NatKind::RandomPerDestination);
    let relay = relay_node(&net.public, RelayConfig::default());
    let mut forwarded = relay.relay_server().unwrap().tap(100_000);
    let a = home_node(&net.homes[0], 1);
    let b = home_node(&net.homes[1], 2);
    reserve_and_introduce(&net, &relay, &a, &b);

    net.homes[0].run(every_pattern(a.clone(), b.id()));

    let connection = a.manager().connection(b.id()).unwrap();
    assert_eq!(
        connection.remote_node_id(),
        b.id(),
        "A's handshake checked B's key"
    );
    assert!(
        is_virtual(connection.remote_address()),
        "{}",
        connection.remote_address()
    );
    let stats = relay.relay_server().unwrap().stats();
    assert_eq!(stats.circuits_opened, 1, "{stats:?}");
    let mut packets = Vec::new();
    while let Ok(packet) = forwarded.try_recv() {
        packets.push(packet);
    }
    let seen: usize = packets.iter().map(Bytes::len).sum();
    assert!(
        seen as u64 == stats.bytes,
        "the tap saw every forwarded byte: {seen} of {}",
        stats.bytes
    );
    let sent = payload().len() * 10;
    assert!(
        seen > sent,
        "the calls' {sent} payload bytes crossed the relay ({seen} bytes)"
    );
    let readable = packets
        .iter()
        .filter(|p| p.windows(MARKER.len()).any(|w| w == MARKER))
        .count();
    assert_eq!(
        readable,
        0,
        "the relay forwarded {} packets, none readable",
        packets.len()
    );

    // The punch A tried cannot work behind home 2's NAT: the connection
    // stays on the relay and keeps serving.
    assert!(
        eventually(Duration::from_secs(10), || a.punches().failed == 1),
        "{:?}",
        a.punches()
    );
    assert_eq!(a.punches().direct, 0);
    assert_eq!((a.paths().relayed, a.paths().direct), (1, 0));
    net.homes[0].run(every_pattern(a.clone(), b.id()));
    assert!(is_virtual(
        a.manager().connection(b.id()).unwrap().remote_address()
    ));
    assert_eq!(a.path_of(connection.remote_address()), PathKind::Relayed);

    // Over a relayed connection a dial back has no address to go to, and
    // punches run one at a time.
    let (client, target) = (a.client().clone(), b.id());
    let (dial_back, punches) = net.homes[0].run(async move {
        let options = CallOptions::default().with_timeout(Duration::from_secs(10));
        let dial_back = client
            .unary::<_, DialBackResponse>(target, DIAL_BACK, &DialBackRequest {}, &options)
            .await;
        let punch = || {
            let request = PunchRequest {
                token: Bytes::from_static(&[1; 16]),
                addrs: vec!["203.0.113.2:7733".into()],
            };
            let (client, options) = (client.clone(), options.clone());
            async move {
                client
                    .unary::<_, PunchResponse>(target, PUNCH_START, &request, &options)
                    .await
            }
        };
        (dial_back, tokio::join!(punch(), punch()))
    });
    assert_eq!(dial_back.unwrap_err().code(), Code::InvalidArgument);
    let busy = [punches.0, punches.1]
        .into_iter()
        .filter(|p| {
            p.as_ref()
                .is_err_and(|s| s.code() == Code::ResourceExhausted)
        })
        .count();
    assert!(busy >= 1, "a second punch on one connection waits its turn");
}

#[test]
fn behind_port_preserving_nats_the_connection_moves_to_a_direct_path_losing_no_call() {
    if !Topology::available() {
        return;
    }
    let net = Net::new("rd", NatKind::PortPreserving);
    let relay = relay_node(&net.public, RelayConfig::default());
    let a = home_node(&net.homes[0], 1);
    let b = home_node(&net.homes[1], 2);
    reserve_and_introduce(&net, &relay, &a, &b);

    // Calls back to back from before the first dial until well after the
    // switch; each must succeed.
    let (caller, target) = (a.clone(), b.id());
    let calls = net.homes[0].spawn(async move {
        let options = CallOptions::default().with_timeout(Duration::from_secs(10));
        let (method, request) = (format!("{SERVICE}/Whoami"), echo(payload()));
        let start = Instant::now();
        let mut answered = 0;
        while start.elapsed() < Duration::from_secs(6) {
            let call = caller
                .client()
                .unary::<_, EchoResponse>(target, &method, &request, &options);
            call.await.expect("no call fails across the switch");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answered
    });
    let start = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || a.paths().direct == 1),
        "{:?} {:?}",
        a.paths(),
        a.punches()
    );
    let switched_after = start.elapsed();
    assert!(
        switched_after < Duration::from_secs(5),
        "moved after {switched_after:?}"
    );
    assert_eq!(a.punches().direct, 1, "{:?}", a.punches());
    assert!(
        eventually(Duration::from_secs(5), || b.paths().direct == 1),
        "{:?}",
        b.paths()
    );
    let answered = net.homes[0].run(async move { calls.await.unwrap() });
    assert!(answered > 100, "{answered} calls");
    let connection = a.manager().connection(b.id()).unwrap();
    assert!(
        is_virtual(connection.remote_address()),
        "the connection itself never changed"
    );
    let server = relay.relay_server().unwrap().clone();
    assert!(
        eventually(Duration::from_secs(5), || server.stats().circuits == 0),
        "the circuit is let go once the path is direct: {:?}",
        server.stats()
    );
    let before = server.stats().bytes;
    net.homes[0].run(every_pattern(a.clone(), b.id()));
    assert_eq!(
        server.stats().bytes,
        before,
        "no packet goes through the relay any more"
    );
    eprintln!(
        "switched to the direct path {switched_after:?} after the first call; {answered} calls answered"
    );
}

#[test]
fn a_relayed_connection_outlives_its_circuits_by_renewing_them() {
    if !Topology::available() {
        return;
    }
    let net = Net::new("rn", NatKind::RandomPerDestination);
    let config = RelayConfig {
        circuit_duration: Duration::from_secs(2),
        ..RelayConfig::default()
    };
    let relay = relay_node(&net.public, config);
    let a = home_node(&net.homes[0], 1);
    let b = home_node(&net.homes[1], 2);
    reserve_and_introduce(&net, &relay, &a, &b);

    // Calls back to back for three circuits' lifetimes: the caller renews
    // each circuit before the relay's limit ends it.
    let (caller, target) = (a.clone(), b.id());
    let answered = net.homes[0].run(async move {
        let options = CallOptions::default().with_timeout(Duration::from_secs(10));
        let (method, request) = (format!("{SERVICE}/Whoami"), echo(payload()));
        let start = Instant::now();
        let mut answered = 0;
        while start.elapsed() < Duration::from_secs(6) {
            let call = caller
                .client()
                .unary::<_, EchoResponse>(target, &method, &request, &options);
            call.await.expect("no call fails across a renewal");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    });
    let stats = relay.relay_server().unwrap().stats();
    assert!(stats.circuits_opened >= 3, "{stats:?}");
    assert_eq!(
        a.manager().stats().dials,
        2,
        "one dial to the relay, one to B: {:?}",
        a.manager().stats()
    );
    let connection = a.manager().connection(b.id()).unwrap();
    assert!(
        connection.created().elapsed() >= Duration::from_secs(5),
        "the first connection still serves"
    );
    assert_eq!(
        b.manager().connections().len(),
        2,
        "B keeps one connection to A (and the relay)"
    );
    eprintln!("{answered} calls over {} circuits", stats.circuits_opened);
}
