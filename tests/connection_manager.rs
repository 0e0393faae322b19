//! The connection manager over real QUIC endpoints on 127.0.0.1 with real
//! keys and TLS: reuse of reverse connections, single-flight dials,
//! simultaneous dials, identity checks, cleanup and idle TTL.

mod support;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use peerd::connection::{
    CloseCode, ConnectError, Direction, EventKind, NodeConnection, TransportConfig,
};
use peerd::identity::{Identity, NodeId};
use support::manager::{ManagerNode, raw_echo};
use support::{SECOND, eventually, localhost, within};
use tokio::sync::Barrier;

fn fast_config() -> TransportConfig {
    TransportConfig {
        drain_linger: Duration::from_millis(200),
        handshake_timeout: Duration::from_secs(2),
        ..TransportConfig::default()
    }
}

#[tokio::test]
async fn the_peer_reuses_our_connection_to_call_back() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());

    a.manager.get_or_connect(b.id(), &[b.addr]).await.unwrap();
    let back = raw_echo(&b.manager, &a, b"reverse").await.unwrap();

    assert_eq!(back, b"reverse");
    let (a_conns, b_conns) = (a.manager.connections(), b.manager.connections());
    assert_eq!(a_conns.len(), 1);
    assert_eq!(b_conns.len(), 1);
    assert_eq!(a_conns[0].direction(), Direction::Outbound);
    assert_eq!(b_conns[0].direction(), Direction::Inbound);
    assert_eq!(
        a.manager.stats().dials + b.manager.stats().dials,
        1,
        "one handshake in all"
    );
    assert_eq!(b.manager.stats().accepted, 1);
    assert_eq!(a.streams_served(), 1, "the stream B opened was served by A");
}

#[tokio::test]
async fn concurrent_dials_to_one_node_share_one_handshake() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());

    let dials = (0..100).map(|_| {
        let manager = a.manager.clone();
        let (id, addr) = (b.id(), b.addr);
        tokio::spawn(async move { manager.get_or_connect(id, &[addr]).await })
    });
    let mut connections = Vec::new();
    for dial in dials {
        connections.push(dial.await.unwrap().unwrap());
    }

    assert!(connections.iter().all(|c| c.same_as(&connections[0])));
    assert_eq!(a.manager.stats().dials, 1);
    assert!(eventually(SECOND, || b.manager.stats().accepted == 1).await);
}

/// The TLS exporter gives both ends of one connection the same bytes.
fn fingerprint(conn: &NodeConnection) -> [u8; 16] {
    let mut out = [0u8; 16];
    conn.quic()
        .export_keying_material(&mut out, b"peerd test", b"")
        .unwrap();
    out
}

#[tokio::test]
async fn simultaneous_dials_converge_on_one_connection() {
    for round in 0..50 {
        let a = Arc::new(ManagerNode::start(fast_config()));
        let b = Arc::new(ManagerNode::start(fast_config()));
        let barrier = Arc::new(Barrier::new(2));
        let race = |from: Arc<ManagerNode>, to: Arc<ManagerNode>, barrier: Arc<Barrier>| {
            tokio::spawn(async move {
                barrier.wait().await;
                raw_echo(&from.manager, &to, b"race").await
            })
        };
        let ab = race(a.clone(), b.clone(), barrier.clone());
        let ba = race(b.clone(), a.clone(), barrier);
        assert_eq!(
            ab.await.unwrap().unwrap(),
            b"race",
            "round {round}: A's stream"
        );
        assert_eq!(
            ba.await.unwrap().unwrap(),
            b"race",
            "round {round}: B's stream"
        );

        let settled = eventually(5 * SECOND, || {
            a.manager.connections().len() == 1 && b.manager.connections().len() == 1
        })
        .await;
        assert!(settled, "round {round}: duplicates were not drained");
        let a_primary = a.manager.connection(b.id()).unwrap();
        let b_primary = b.manager.connection(a.id()).unwrap();
        assert_eq!(
            fingerprint(&a_primary),
            fingerprint(&b_primary),
            "round {round}: same connection"
        );
        let lower_dialed = if a.id() < b.id() {
            &a_primary
        } else {
            &b_primary
        };
        assert_eq!(
            lower_dialed.direction(),
            Direction::Outbound,
            "round {round}: lower id's dial kept"
        );
        assert_eq!(raw_echo(&a.manager, &b, b"after").await.unwrap(), b"after");
    }
}

#[tokio::test]
async fn a_dial_to_the_wrong_node_fails_naming_both_ids() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());
    let expected = Identity::generate().node_id();

    let err = a
        .manager
        .get_or_connect(expected, &[b.addr])
        .await
        .unwrap_err();

    assert!(
        matches!(err, ConnectError::WrongNode { actual, .. } if actual == b.id()),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&expected.to_string()) && message.contains(&b.id().to_string()),
        "{message}"
    );
    assert!(a.manager.connections().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b.manager.connections().is_empty());
    assert_eq!(b.streams_served(), 0);
}

/// A raw quinn client that trusts B but presents `client_cert` (or none).
async fn raw_client_attempt(b: &ManagerNode, client_cert: Option<rcgen::KeyPair>) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(peerd::tls::ExpectedPeer::new(b.id()));
    let mut tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some(key) => {
            let cert = rcgen::CertificateParams::new(vec!["x".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
            builder
                .with_client_auth_cert(vec![cert.der().clone()], der)
                .unwrap()
        }
    };
    tls.alpn_protocols = vec![peerd::tls::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client(localhost(1)).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let Ok(conn) = endpoint
        .connect_with(config, b.addr, "peerd")
        .unwrap()
        .await
    else {
        return false;
    };
    // TLS 1.3 lets the client finish before the server has checked its
    // certificate: the refusal arrives as a close.
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(b"hello").await?;
        send.finish()?;
        recv.read_to_end(64).await?;
        anyhow::Ok(())
    };
    within(5 * SECOND, attempt).await.is_ok()
}

#[tokio::test]
async fn clients_without_a_node_certificate_are_refused() {
    let b = ManagerNode::start(fast_config());
    assert!(!raw_client_attempt(&b, None).await, "no certificate");
    let ecdsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    assert!(
        !raw_client_attempt(&b, Some(ecdsa)).await,
        "ECDSA certificate"
    );
    assert!(b.manager.connections().is_empty());
    assert_eq!(b.manager.stats().accepted, 0);
    assert_eq!(b.streams_served(), 0);
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    assert!(
        raw_client_attempt(&b, Some(ed25519)).await,
        "any Ed25519 node certificate is a node"
    );
}

#[tokio::test]
async fn a_closed_connection_leaves_the_map_and_the_next_call_dials_again() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());
    let mut events = a.manager.subscribe();
    a.manager.get_or_connect(b.id(), &[b.addr]).await.unwrap();
    assert!(eventually(SECOND, || b.manager.connection(a.id()).is_some()).await);

    assert!(b.manager.disconnect(a.id()));

    assert!(
        eventually(SECOND, || a.manager.connections().is_empty()).await,
        "A noticed the close"
    );
    assert!(b.manager.connections().is_empty());
    let connected = events.recv().await.unwrap();
    assert_eq!(
        (connected.node, connected.direction, connected.kind),
        (b.id(), Direction::Outbound, EventKind::Connected)
    );
    let gone = events.recv().await.unwrap();
    assert!(
        matches!(gone.kind, EventKind::Disconnected { .. }),
        "{gone:?}"
    );

    assert_eq!(raw_echo(&a.manager, &b, b"again").await.unwrap(), b"again");
    assert_eq!(a.manager.stats().dials, 2);
}

#[tokio::test]
async fn a_peer_that_shuts_down_leaves_the_map_with_its_close_code() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());
    let conn = a.manager.get_or_connect(b.id(), &[b.addr]).await.unwrap();
    // A round trip first: a close sent while handshake keys are still in use
    // carries only QUIC's generic APPLICATION_ERROR (RFC 9000, 10.2.3).
    raw_echo(&a.manager, &b, b"warm").await.unwrap();

    b.manager.shutdown(SECOND).await;

    let reason = within(2 * SECOND, conn.quic().closed()).await;
    assert_eq!(
        CloseCode::of(&reason),
        Some(CloseCode::ShuttingDown),
        "{reason:?}"
    );
    assert!(eventually(SECOND, || a.manager.connections().is_empty()).await);
    let err = a
        .manager
        .get_or_connect(b.id(), &[b.addr])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Handshake { .. } | ConnectError::HandshakeTimeout { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_idle_connection_closes_after_the_ttl_and_a_busy_one_stays() {
    let ttl = Duration::from_millis(400);
    let config = TransportConfig {
        connection_idle_ttl: ttl,
        ..fast_config()
    };
    let a = ManagerNode::start(config.clone());
    let b = ManagerNode::start(config);

    let idle = a.manager.get_or_connect(b.id(), &[b.addr]).await.unwrap();
    tokio::time::sleep(ttl / 2).await;
    assert!(!idle.is_closed(), "closed before the TTL");
    let reason = within(2 * SECOND, idle.quic().closed()).await;
    assert!(
        matches!(reason, quinn::ConnectionError::LocallyClosed),
        "{reason}"
    );
    assert!(eventually(SECOND, || a.manager.connections().is_empty()).await);

    let busy = a.manager.get_or_connect(b.id(), &[b.addr]).await.unwrap();
    let (mut send, _recv, guard) = busy.open_stream().await.unwrap();
    send.write_all(b"held open").await.unwrap();
    tokio::time::sleep(ttl * 3).await;
    assert!(!busy.is_closed(), "closed while a stream was open");
    drop(guard);
    within(2 * SECOND, busy.quic().closed()).await;
}

#[tokio::test]
async fn a_silent_node_does_not_delay_dials_to_others() {
    let a = ManagerNode::start(fast_config());
    let b = ManagerNode::start(fast_config());
    let blackhole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = Identity::generate().node_id();
    let silent_addr = blackhole.local_addr().unwrap();

    let manager = a.manager.clone();
    let stuck = tokio::spawn(async move { manager.get_or_connect(silent, &[silent_addr]).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    within(SECOND, a.manager.get_or_connect(b.id(), &[b.addr]))
        .await
        .unwrap();
    assert!(!stuck.is_finished(), "the silent dial is still waiting");

    let err = within(5 * SECOND, stuck).await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnectError::HandshakeTimeout { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_dead_first_address_costs_a_dial_a_moment_not_a_handshake_timeout() {
    let a = ManagerNode::start(TransportConfig {
        handshake_timeout: 10 * SECOND,
        ..fast_config()
    });
    let b = ManagerNode::start(fast_config());
    let blackhole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = blackhole.local_addr().unwrap();

    let conn = within(
        3 * SECOND,
        a.manager.get_or_connect(b.id(), &[dead, b.addr]),
    )
    .await
    .unwrap();
    assert_eq!(conn.remote_node_id(), b.id());
    assert_eq!(conn.remote_address(), b.addr);
}

#[tokio::test]
async fn a_node_with_only_dead_addresses_fails_within_about_one_handshake_timeout() {
    let timeout = SECOND;
    let a = ManagerNode::start(TransportConfig {
        handshake_timeout: timeout,
        ..fast_config()
    });
    let blackholes: Vec<_> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let dead: Vec<_> = blackholes.iter().map(|s| s.local_addr().unwrap()).collect();
    let silent = Identity::generate().node_id();

    let started = tokio::time::Instant::now();
    let err = a.manager.get_or_connect(silent, &dead).await.unwrap_err();
    let took = started.elapsed();
    let ConnectError::AllAddressesFailed { failures, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(failures.len(), 3, "{err}");
    for (failure, addr) in failures.iter().zip(&dead) {
        assert!(
            matches!(failure, ConnectError::HandshakeTimeout { addr: a, .. } if a == addr),
            "{err}"
        );
    }
    // One address after another would take three timeouts.
    assert!(took < timeout * 2, "three dead addresses took {took:?}");
}

#[tokio::test]
async fn callers_waiting_on_a_failed_dial_share_its_failure() {
    let timeout = SECOND;
    let a = ManagerNode::start(TransportConfig {
        handshake_timeout: timeout,
        ..fast_config()
    });
    let blackhole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = Identity::generate().node_id();
    let silent_addr = blackhole.local_addr().unwrap();

    let started = tokio::time::Instant::now();
    let dials: Vec<_> = (0..5)
        .map(|_| {
            let manager = a.manager.clone();
            tokio::spawn(async move { manager.get_or_connect(silent, &[silent_addr]).await })
        })
        .collect();
    for dial in dials {
        let err = dial.await.unwrap().unwrap_err();
        assert!(
            matches!(err, ConnectError::HandshakeTimeout { .. }),
            "{err}"
        );
    }

    // Dialing again for each waiter would take five timeouts.
    let took = started.elapsed();
    assert!(took < timeout * 2, "five callers took {took:?}");
    assert!(
        a.manager
            .get_or_connect(silent, &[silent_addr])
            .await
            .is_err()
    );
    assert!(
        started.elapsed() >= took + timeout,
        "a later call dials afresh"
    );
}

#[tokio::test]
async fn dialing_ourselves_is_refused() {
    let a = ManagerNode::start(fast_config());
    let err = a
        .manager
        .get_or_connect(a.id(), &[a.addr])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::DialSelf(id) if id == a.id()),
        "{err}"
    );
}

#[tokio::test]
async fn a_node_with_no_known_address_is_an_error() {
    let a = ManagerNode::start(fast_config());
    let nowhere: NodeId = Identity::generate().node_id();
    let err = a.manager.get_or_connect(nowhere, &[]).await.unwrap_err();
    assert!(
        matches!(err, ConnectError::NoAddress(id) if id == nowhere),
        "{err}"
    );
}
