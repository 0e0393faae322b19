//! Hostile peers against discovery, over real nodes on loopback: FindNode
//! answers that try to make the victim a weapon (thousands of contacts at a
//! third node, contacts without addresses, dead contacts), fresh identities
//! that try to fill the service store, the routing table and the peer book,
//! and a join that must reach its bootstrap node at once.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peerd::addressing::{AddressBook, AddressSource, PeerAddr};
use peerd::connection::{Direction, HandshakeOutcome, NodeConnectionManager, TransportConfig};
use peerd::node_service::{self, SERVICE, proto};
use peerd::rpc::{Router, RpcClient, RpcConfig, RpcServer};
use peerd::test_utils::SplitMix64;
use peerd::{CallOptions, Handlers, Identity, Node, NodeId};
use support::{SECOND, eventually};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn node() -> Node {
    Node::builder(Identity::generate())
        .listen("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap()
}

fn peer_addr(node: &Node) -> PeerAddr {
    PeerAddr::new(node.id(), node.local_addr())
}

/// A peer built from the library's parts, without the node's own services:
/// it serves only `router` (a hostile FindNode, say) and calls with `client`.
struct Bare {
    id: NodeId,
    manager: NodeConnectionManager,
    client: RpcClient,
    addr: SocketAddr,
}

impl Bare {
    fn new(identity: &Identity, router: Router) -> Self {
        let cancel = CancellationToken::new();
        let server = RpcServer::new(router, RpcConfig::default(), cancel.child_token());
        let manager = NodeConnectionManager::bind(
            identity,
            "127.0.0.1:0".parse().unwrap(),
            TransportConfig::default(),
            Arc::new(server),
            cancel,
        )
        .unwrap();
        let client = RpcClient::new(
            manager.clone(),
            AddressBook::default(),
            RpcConfig::default(),
        );
        Self {
            id: identity.node_id(),
            addr: manager.local_addr().unwrap(),
            manager,
            client,
        }
    }

    fn peer_addr(&self) -> PeerAddr {
        PeerAddr::new(self.id, self.addr)
    }

    async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        to: &Node,
        method: &str,
        request: &Req,
    ) -> Result<Resp, peerd::Status> {
        let options = CallOptions::default()
            .with_timeout(5 * SECOND)
            .with_addr(to.local_addr());
        self.client.unary(to.id(), method, request, &options).await
    }
}

fn random_id(rng: &mut SplitMix64) -> NodeId {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    NodeId::from_bytes(bytes)
}

/// A FindNode responder that answers every question with `answer()` and
/// counts the questions.
fn hostile_find_node(
    asked: Arc<AtomicUsize>,
    answer: impl Fn() -> Vec<proto::NodeAddress> + Send + Sync + 'static,
) -> Router {
    let answer = Arc::new(answer);
    let handlers = Handlers::new(SERVICE).unary("FindNode", move |_, _: proto::FindNodeRequest| {
        asked.fetch_add(1, Ordering::SeqCst);
        let nodes = answer();
        async move { Ok(proto::FindNodeResponse { nodes }) }
    });
    Router::new().with_handlers(handlers)
}

fn contacts_at(count: usize, addrs: &[String], seed: u64) -> Vec<proto::NodeAddress> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| proto::NodeAddress {
            node_id: random_id(&mut rng).to_string(),
            addrs: addrs.to_vec(),
            relays: Vec::new(),
        })
        .collect()
}

/// Handshakes `node` has seen arrive, whatever their outcome.
fn inbound_handshakes(node: &Node) -> u64 {
    HandshakeOutcome::ALL
        .iter()
        .map(|o| node.manager().tally().handshakes(Direction::Inbound, *o))
        .sum()
}

/// A victim that knows `hostile` (dialed by the operator) and nothing else.
async fn victim_of(hostile: &Bare) -> Node {
    let victim = node();
    victim
        .discovery()
        .connect(&hostile.peer_addr(), AddressSource::Manual)
        .await
        .expect("the hostile node is reachable");
    assert!(eventually(5 * SECOND, || victim.discovery().known_nodes() >= 1).await);
    victim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_answer_of_20000_contacts_at_a_third_node_is_not_an_amplifier() {
    let third = node();
    let at_third = vec![third.local_addr().to_string()];
    let answer = Arc::new(contacts_at(20_000, &at_third, 1));
    let asked = Arc::new(AtomicUsize::new(0));
    let hostile = Bare::new(
        &Identity::generate(),
        hostile_find_node(asked.clone(), move || answer.as_ref().clone()),
    );
    let victim = victim_of(&hostile).await;

    let target = random_id(&mut SplitMix64::new(2));
    let started = Instant::now();
    let _ = tokio::time::timeout(15 * SECOND, victim.discovery().find_node(target)).await;
    let took = started.elapsed();
    // Dials already started may still be arriving.
    tokio::time::sleep(SECOND).await;
    let handshakes = inbound_handshakes(&third);
    assert!(
        handshakes <= 1,
        "one answer made the victim send {handshakes} handshakes to the third node \
         (lookup ran {took:?}, {} FindNode asked)",
        asked.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_without_addresses_do_not_make_the_victim_recurse() {
    let asked = Arc::new(AtomicUsize::new(0));
    let seed = Arc::new(AtomicUsize::new(10));
    let hostile = Bare::new(
        &Identity::generate(),
        hostile_find_node(asked.clone(), move || {
            contacts_at(20, &[], seed.fetch_add(1, Ordering::SeqCst) as u64)
        }),
    );
    let victim = victim_of(&hostile).await;

    let target = random_id(&mut SplitMix64::new(3));
    let found = tokio::time::timeout(10 * SECOND, victim.discovery().find_node(target)).await;
    let questions = asked.load(Ordering::SeqCst);
    assert!(
        questions <= 1,
        "one lookup asked the hostile node {questions} times (ended: {})",
        found.is_ok()
    );
    assert!(
        matches!(found, Ok(None)),
        "the lookup ends, finding nothing"
    );
}

/// UDP sockets that never answer: dialing them only ever times out.
fn silent_sockets(count: usize) -> (Vec<std::net::UdpSocket>, Vec<String>) {
    let sockets: Vec<_> = (0..count)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    (sockets, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_search_over_dead_contacts_ends_by_its_deadline() {
    let (_silent, dead) = silent_sockets(20);
    let asked = Arc::new(AtomicUsize::new(0));
    let seed = Arc::new(AtomicUsize::new(100));
    let hostile = Bare::new(
        &Identity::generate(),
        hostile_find_node(asked, move || {
            let seed = seed.fetch_add(1, Ordering::SeqCst) as u64;
            let mut contacts = contacts_at(20, &[], seed);
            for (contact, addr) in contacts.iter_mut().zip(&dead) {
                contact.addrs = vec![addr.clone()];
            }
            contacts
        }),
    );
    let victim = victim_of(&hostile).await;

    let started = Instant::now();
    let found = tokio::time::timeout(60 * SECOND, victim.discovery().find_service("chat")).await;
    let took = started.elapsed();
    let deadline = peerd::discovery::DiscoveryConfig::default().lookup_timeout;
    assert!(
        found.is_ok() && took <= deadline + 2 * SECOND,
        "the search took {took:?} (deadline {deadline:?}, ended: {})",
        found.is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_finds_whose_clients_left_free_their_slots() {
    use std::io::Write;
    let (_hostile, _silent, _dir, daemon, socket) = daemon_whose_finds_are_slow().await;
    // 40 clients ask for a service and hang up: more than the admin slots.
    for _ in 0..40 {
        let mut client = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        client
            .write_all(b"{\"request\":\"find_service\",\"name\":\"chat\"}\n")
            .unwrap();
    }
    tokio::time::sleep(SECOND).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let output = daemon.cli(&["status", "--json"]);
        (output.status.success(), daemon)
    });
    let answered = tokio::time::timeout(5 * SECOND, status).await;
    assert!(
        matches!(answered, Ok(Ok((true, _)))),
        "`peerd status` after 40 abandoned finds: no answer within {:?}",
        started.elapsed()
    );
}

/// A client that sent its request and then the end of its input, as
/// `nc -U` does, has not left: its find runs to its end and is answered.
#[tokio::test]
async fn a_find_whose_client_only_ended_its_input_is_answered() {
    use std::io::{BufRead, Write};
    let (_hostile, _silent, _dir, daemon, socket) = daemon_whose_finds_are_slow().await;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut client = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        client
            .write_all(b"{\"request\":\"find_service\",\"name\":\"chat\"}\n")
            .unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        client.set_read_timeout(Some(20 * SECOND)).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(client)
            .read_line(&mut line)
            .map(|_| line)
    });
    let line = tokio::time::timeout(25 * SECOND, answer)
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "{e} after {:?}: {:#?}",
                started.elapsed(),
                daemon.stderr_lines()
            )
        });
    assert!(
        line.contains("\"outcome\":\"ok\""),
        "a half-closed client's find was answered {line:?}"
    );
}

/// A daemon bootstrapped from a hostile node that answers every FindNode
/// with 20 contacts at silent sockets, so its lookups run to their deadline;
/// and its admin socket. Keep the node and the sockets alive.
async fn daemon_whose_finds_are_slow() -> (
    Bare,
    Vec<std::net::UdpSocket>,
    tempfile::TempDir,
    support::daemon::Daemon,
    std::path::PathBuf,
) {
    let (silent, dead) = silent_sockets(20);
    let seed = Arc::new(AtomicUsize::new(1000));
    let hostile = Bare::new(
        &Identity::generate(),
        hostile_find_node(Arc::default(), move || {
            let seed = seed.fetch_add(1, Ordering::SeqCst) as u64;
            let mut contacts = contacts_at(20, &[], seed);
            for (contact, addr) in contacts.iter_mut().zip(&dead) {
                contact.addrs = vec![addr.clone()];
            }
            contacts
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = hostile.peer_addr().to_string();
    let daemon = support::daemon::Daemon::start(dir.path(), &["--bootstrap", &bootstrap]);
    let socket = find_socket(dir.path());
    let manager = hostile.manager.clone();
    assert!(eventually(10 * SECOND, || manager.connection(daemon.id).is_some()).await);
    // Its join's lookup has asked the hostile node by now.
    tokio::time::sleep(SECOND).await;
    (hostile, silent, dir, daemon, socket)
}

/// The admin socket the daemon made in `dir` (its default place).
fn find_socket(dir: &std::path::Path) -> std::path::PathBuf {
    walk(dir)
        .into_iter()
        .find(|p| {
            use std::os::unix::fs::FileTypeExt;
            // The gateway's agent.sock sits beside it.
            p.file_name().is_some_and(|name| name == "admin.sock")
                && std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
        })
        .expect("an admin socket under the data dir")
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn announce(name: &str, addrs: Vec<String>) -> proto::AnnounceRequest {
    proto::AnnounceRequest {
        name: name.to_owned(),
        version: "1".into(),
        ttl_secs: 3600,
        addrs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_identities_cannot_block_an_established_announcer() {
    let holder = node();
    let established = Bare::new(&Identity::generate(), Router::new());
    let first: Result<proto::AnnounceResponse, _> = established
        .call(&holder, node_service::ANNOUNCE, &announce("before", vec![]))
        .await;
    first.expect("stored before the flood");

    let mut refused = 0;
    for attacker in 0..160 {
        let bare = Bare::new(&Identity::generate(), Router::new());
        for i in 0..64 {
            let request = announce(&format!("flood-{attacker}-{i}"), vec![]);
            let stored: Result<proto::AnnounceResponse, _> =
                bare.call(&holder, node_service::ANNOUNCE, &request).await;
            refused += usize::from(stored.is_err());
        }
        bare.manager.shutdown(Duration::ZERO).await;
    }
    let legit: Result<proto::AnnounceResponse, _> = established
        .call(&holder, node_service::ANNOUNCE, &announce("after", vec![]))
        .await;
    assert!(
        legit.is_ok(),
        "after 160 fresh identities x 64 Announce ({refused} of 10240 refused), \
         the established announcer is refused: {legit:?}"
    );
    let stored: proto::FindServiceResponse = established
        .call(
            &holder,
            node_service::FIND_SERVICE,
            &proto::FindServiceRequest {
                name: "before".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.providers.len(), 1, "its earlier record stayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_record_points_at_its_announcer_only() {
    let holder = node();
    let bystander = node();
    let liar = Bare::new(&Identity::generate(), Router::new());
    let request = announce("chat", vec![bystander.local_addr().to_string()]);
    let _: proto::AnnounceResponse = liar
        .call(&holder, node_service::ANNOUNCE, &request)
        .await
        .expect("stored");
    let found: proto::FindServiceResponse = liar
        .call(
            &holder,
            node_service::FIND_SERVICE,
            &proto::FindServiceRequest {
                name: "chat".into(),
            },
        )
        .await
        .unwrap();
    let addrs = &found.providers[0].node.as_ref().unwrap().addrs;
    assert_eq!(
        addrs,
        &[liar.addr.to_string()],
        "the record points at {addrs:?}; the announcer is at {}, the bystander at {}",
        liar.addr,
        bystander.local_addr()
    );
}

/// An identity whose id falls in the farthest bucket of `from`'s table.
fn identity_in_far_bucket(from: NodeId) -> Identity {
    loop {
        let identity = Identity::generate();
        if (identity.node_id().as_bytes()[0] ^ from.as_bytes()[0]) & 0x80 != 0 {
            return identity;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_leave_identities_do_not_push_live_contacts_out() {
    let hub = node();
    let live = Node::builder(identity_in_far_bucket(hub.id()))
        .listen("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap();
    live.discovery().bootstrap(&[peer_addr(&hub)]).await;
    assert!(eventually(5 * SECOND, || hub.discovery().known_nodes() >= 1).await);
    hub.manager().disconnect(live.id());
    live.manager().disconnect(hub.id());

    for _ in 0..200 {
        let drive_by = Bare::new(&identity_in_far_bucket(hub.id()), Router::new());
        let _: Result<proto::PingResponse, _> = drive_by
            .call(&hub, node_service::PING, &proto::PingRequest::default())
            .await;
        drive_by.manager.shutdown(Duration::ZERO).await;
    }
    // The hub may still be checking its old contacts.
    tokio::time::sleep(SECOND).await;
    let answer: proto::FindNodeResponse = Bare::new(&Identity::generate(), Router::new())
        .call(
            &hub,
            node_service::FIND_NODE,
            &proto::FindNodeRequest {
                target: live.id().to_string(),
            },
        )
        .await
        .unwrap();
    let listed = answer
        .nodes
        .iter()
        .any(|n| n.node_id == live.id().to_string());
    let newcomer = node();
    newcomer.discovery().bootstrap(&[peer_addr(&hub)]).await;
    let options = CallOptions::default().with_timeout(10 * SECOND);
    let ping = node_service::ping(newcomer.client(), live.id(), &options).await;
    assert!(
        listed && ping.is_ok(),
        "after 200 connect-and-leave identities the hub's answer for the live node \
         lists it: {listed} ({} contacts); a bare-id ping through the hub: {ping:?}",
        answer.nodes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_by_identities_never_push_operator_peers_out_of_the_book() {
    let victim = node();
    let (manual, configured) = (NodeId::from_bytes([1; 32]), NodeId::from_bytes([2; 32]));
    victim
        .addresses()
        .add(manual, "192.0.2.1:7733".parse().unwrap());
    victim.addresses().learn(
        configured,
        &["192.0.2.2:7733".parse().unwrap()],
        AddressSource::Config,
    );
    // Older than every drive-by by a whole second: last_seen has seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    const DRIVE_BYS: usize = 4200;
    let mut waves = tokio::task::JoinSet::new();
    for wave in 0..8 {
        let (id, addr) = (victim.id(), victim.local_addr());
        let book = victim.addresses().clone();
        waves.spawn(async move {
            for _ in (wave..DRIVE_BYS).step_by(8) {
                let drive_by = Bare::new(&Identity::generate(), Router::new());
                let _ = drive_by.manager.get_or_connect(id, &[addr]).await;
                // Stays until the victim has asked for its Info and learned
                // it, as a drive-by that wants into the book would.
                eventually(2 * SECOND, || !book.get(drive_by.id).is_empty()).await;
                drive_by.manager.shutdown(Duration::ZERO).await;
            }
        });
    }
    while waves.join_next().await.is_some() {}
    let book = victim.addresses();
    assert!(
        eventually(5 * SECOND, || book.len() >= 4096).await,
        "the drive-bys filled the book: {} entries",
        book.len()
    );
    let kept = [manual, configured]
        .iter()
        .filter(|n| !book.get(**n).is_empty())
        .count();
    assert_eq!(
        kept,
        2,
        "{kept} of 2 operator peers left in a book of {} after {DRIVE_BYS} drive-bys",
        book.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_s_first_announcement_reaches_its_bootstrap_node() {
    let mut reached = 0;
    const RUNS: usize = 3;
    let asker = Bare::new(&Identity::generate(), Router::new());
    for _ in 0..RUNS {
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let bootstrap = support::daemon::Daemon::start(dir_a.path(), &[]);
        let joiner = support::daemon::Daemon::start(
            dir_b.path(),
            &[
                "--bootstrap",
                &bootstrap.peer_addr(),
                "--set",
                "services=chat@1",
            ],
        );
        let request = proto::FindServiceRequest {
            name: "chat".into(),
        };
        let options = CallOptions::default()
            .with_timeout(5 * SECOND)
            .with_addr(bootstrap.addr);
        let mut stored = false;
        let until = Instant::now() + 5 * SECOND;
        while !stored && Instant::now() < until {
            let found: Result<proto::FindServiceResponse, _> = asker
                .client
                .unary(bootstrap.id, node_service::FIND_SERVICE, &request, &options)
                .await;
            stored = found.is_ok_and(|f| {
                f.providers.iter().any(|p| {
                    p.node
                        .as_ref()
                        .is_some_and(|n| n.node_id == joiner.id.to_string())
                })
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reached += usize::from(stored);
    }
    assert_eq!(
        reached, RUNS,
        "the first announcement reached the bootstrap node's store within 5 s in {reached} of {RUNS} joins"
    );
}
