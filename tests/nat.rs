//! Reachability behind NAT, in network namespaces this test builds (root;
//! CI runs as root): a public namespace with two nodes, and two homes
//! behind NAT routers made of iptables MASQUERADE, one port-preserving
//! (endpoint-independent) and one with --random-fully
//! (address-and-port-dependent). Each node's `peerd netcheck` and `peerd
//! status` must say what its position is.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::{Daemon, peerd_in, wait_for};
use support::netns::{NatKind, PUBLIC_IP, Topology};

fn start_in(ns: &str, dir: &Path, listen: &str, peers: &[String]) -> Daemon {
    let mut command = peerd_in(ns, dir);
    command
        .args(["run", "--listen", listen, "--data-dir"])
        .arg(dir)
        .args(["--set", "metrics.listen=off"]);
    for peer in peers {
        command.args(["--peer", peer]);
    }
    Daemon::spawn(command, dir)
}

fn json(daemon: &Daemon, args: &[&str]) -> Value {
    serde_json::from_str(&daemon.cli_ok(args)).unwrap()
}

fn observed(report: &Value) -> Vec<String> {
    let list = report["observed"].as_array().unwrap();
    list.iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn nodes_learn_whether_they_are_reachable_and_behind_what_nat() {
    if !Topology::available() {
        return;
    }
    let net = Topology::two_homes("r", NatKind::PortPreserving, NatKind::RandomPerDestination);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let public = net.ns("pub");
    let p1 = start_in(&public, dirs[0].path(), &format!("{PUBLIC_IP}:7733"), &[]);
    let p2 = start_in(&public, dirs[1].path(), &format!("{PUBLIC_IP}:7744"), &[]);
    let both = [p1.peer_addr(), p2.peer_addr()];
    let homes: Vec<Daemon> = (1..=2)
        .map(|home| {
            let listen = format!("{}:7733", Topology::home_ip(home));
            let ns = net.ns(&format!("home{home}"));
            start_in(&ns, dirs[usize::from(home) + 1].path(), &listen, &both)
        })
        .collect();
    for home in &homes {
        let connected = || home.status()["connections_outbound"] == 2;
        assert!(
            wait_for(Duration::from_secs(20), connected),
            "each home dials both public nodes: {}",
            home.status()
        );
    }

    // A home behind port-preserving MASQUERADE: one public address for both
    // public nodes, and no way in for a node it did not dial.
    let home1 = json(&homes[0], &["netcheck", "--json"]);
    assert_eq!(home1["reachability"], "private", "{home1}");
    assert_eq!(home1["behind_nat"], true, "{home1}");
    assert_eq!(home1["mapping"], "endpoint_independent", "{home1}");
    assert_eq!(observed(&home1), [format!("{}:7733", Topology::nat_ip(1))]);
    assert_eq!(
        (&home1["asked"], &home1["answered"]),
        (&2.into(), &2.into())
    );

    // Behind --random-fully, each public node sees another port.
    let home2 = json(&homes[1], &["netcheck", "--json"]);
    assert_eq!(home2["reachability"], "private", "{home2}");
    assert_eq!(home2["mapping"], "endpoint_dependent", "{home2}");
    let seen = observed(&home2);
    assert_eq!(seen.len(), 2, "{home2}");
    let nat2 = format!("{}:", Topology::nat_ip(2));
    assert!(seen.iter().all(|a| a.starts_with(&nat2)), "{home2}");

    // The public node: the homes' dial backs, from new ports, get through.
    let public1 = json(&p1, &["netcheck", "--json"]);
    assert_eq!(public1["reachability"], "public", "{public1}");
    assert_eq!(public1["behind_nat"], false, "{public1}");
    assert_eq!(public1["mapping"], "none", "{public1}");
    assert_eq!(observed(&public1), [format!("{PUBLIC_IP}:7733")]);

    // `status` says it too: the last netcheck, background or asked for.
    let text = homes[0].cli_ok(&["status"]);
    let expected = format!(
        "reachability: private (behind NAT, endpoint-independent mapping; seen at {}:7733; 2 of 2 peers answered)",
        Topology::nat_ip(1)
    );
    assert!(text.contains(&expected), "{text}");
    drop(net);
}

/// `peerd ping ID --count 1` from `from`, true if answered.
fn pings(from: &Daemon, to: &Daemon) -> bool {
    let id = to.id.to_string();
    let args = ["ping", id.as_str(), "--count", "1", "--timeout", "5s"];
    from.cli(&args).status.success()
}

#[test]
fn daemons_behind_nat_reach_each_other_through_a_relay_that_restarts() {
    if !Topology::available() {
        return;
    }
    // Home 2's NAT gives each destination its own port: the session stays
    // on the relay, so its restart is felt.
    let net = Topology::two_homes("rr", NatKind::PortPreserving, NatKind::RandomPerDestination);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let public = net.ns("pub");
    let listen = format!("{PUBLIC_IP}:7733");
    let start_relay = || {
        let mut command = peerd_in(&public, dirs[0].path());
        command
            .args(["run", "--listen", &listen, "--data-dir"])
            .arg(dirs[0].path())
            .args(["--set", "metrics.listen=off", "--set", "relay.enabled=true"])
            .args(["--log-level", "trace"]);
        Daemon::spawn(command, dirs[0].path())
    };
    let mut relay = start_relay();
    let pinned = [relay.peer_addr()];
    let home = |n: u8| {
        let listen = format!("{}:7733", Topology::home_ip(n));
        let ns = net.ns(&format!("home{n}"));
        start_in(&ns, dirs[usize::from(n)].path(), &listen, &pinned)
    };
    let (a, b) = (home(1), home(2));
    let reserved = |daemon: &Daemon| !daemon.status()["relays"].as_array().unwrap().is_empty();
    assert!(
        wait_for(Duration::from_secs(20), || reserved(&b)),
        "B's netcheck finds it unreachable and it reserves on the relay: {}",
        b.status()
    );
    assert!(pings(&a, &b), "A reaches B by id alone, through the relay");
    let marker = "plaintext-only-the-two-ends-may-read";
    let body = format!("{{\"payload\": \"{marker}\"}}");
    let echoed = a.cli_ok(&["call", &b.id.to_string(), "Echo", &body]);
    assert!(echoed.contains(marker), "{echoed}");
    let logged = relay.stderr_lines();
    assert!(logged.len() > 10, "the relay logs at trace level");
    assert!(
        !logged.iter().any(|line| line.contains(marker)),
        "the relay's logs never hold the payload"
    );
    assert_eq!(a.status()["paths_relayed"], 1, "{}", a.status());
    let peers = a.cli_ok(&["peers"]);
    let to_b = peers.lines().find(|l| l.contains(&b.id.to_string()[..8]));
    assert!(
        to_b.is_some_and(|line| line.contains("via relay")),
        "{peers}"
    );
    let book = a.cli_ok(&["book"]);
    let relayed = format!("via relay {}", relay.peer_addr());
    assert!(
        book.contains(&relayed),
        "A's peer book lists B's relay: {book}"
    );
    let text = b.cli_ok(&["status"]);
    assert!(
        text.contains(&format!("relays:      reserved on {}", relay.peer_addr())),
        "{text}"
    );

    relay.terminate();
    relay.wait_exit(Duration::from_secs(15));
    let restarted = Instant::now();
    relay = start_relay();
    assert!(
        wait_for(Duration::from_secs(20), || reserved(&b)),
        "B reserves again: {}",
        b.status()
    );
    let reserved_after = restarted.elapsed();
    assert!(
        wait_for(Duration::from_secs(20), || pings(&a, &b)),
        "A reaches B again"
    );
    let recovered_after = restarted.elapsed();
    eprintln!(
        "after the relay restarted: B reserved in {reserved_after:?}, A reached B in {recovered_after:?}"
    );
    assert!(
        recovered_after < Duration::from_secs(15),
        "{recovered_after:?}"
    );
    drop(relay);
    drop(net);
}
