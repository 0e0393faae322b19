//! Reachability behind NAT, in network namespaces this test builds (root;
//! CI runs as root): a public namespace with two nodes, and two homes
//! behind NAT routers made of iptables MASQUERADE, one port-preserving
//! (endpoint-independent) and one with --random-fully
//! (address-and-port-dependent). Each node's `peerd netcheck` and `peerd
//! status` must say what its position is.

mod support;

use std::path::Path;
use std::time::Duration;

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
