//! Network namespaces a test builds for itself: a "public" namespace and
//! homes behind NAT routers made of iptables MASQUERADE, with no route
//! between the homes except through NAT. Everything is removed on drop.
//!
//! ```text
//!   home1 10.0.1.2 ── 10.0.1.1 nat1 203.0.113.2 ──┐
//!                                                 203.0.113.1 ┐
//!                                                             public, 198.51.100.1 (lo)
//!                                                 203.0.113.5 ┘
//!   home2 10.0.2.2 ── 10.0.2.1 nat2 203.0.113.6 ──┘
//! ```

use std::process::Command;

/// The address the public namespace's nodes listen on.
pub const PUBLIC_IP: &str = "198.51.100.1";

/// How a home's NAT router picks the public port of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Plain MASQUERADE: keeps the source port when it can, one mapping
    /// for every destination (endpoint-independent).
    PortPreserving,
    /// MASQUERADE --random-fully: a random port per destination
    /// (address-and-port-dependent).
    RandomPerDestination,
}

/// The namespaces of one test; their names carry the process id and a tag.
pub struct Topology {
    prefix: String,
    created: Vec<String>,
}

impl Topology {
    /// Whether this machine can build one: root, `ip` and `iptables`. If
    /// not, the caller skips (said on stderr); under CI=true it fails.
    pub fn available() -> bool {
        if !super::runs_as_root("network namespaces") {
            return false;
        }
        let has = |tool: &str, version: &str| {
            Command::new(tool)
                .arg(version)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let tools = has("ip", "-V") && has("iptables", "--version");
        super::present_or_skipped(tools, "needs ip and iptables")
    }

    /// The public namespace and two homes, behind NATs of `nat1` and `nat2`.
    pub fn two_homes(tag: &str, nat1: NatKind, nat2: NatKind) -> Self {
        let mut topology = Self {
            prefix: format!("pd{}{tag}", std::process::id()),
            created: Vec::new(),
        };
        let public = topology.add("pub");
        run(
            &public,
            &["ip", "addr", "add", &format!("{PUBLIC_IP}/32"), "dev", "lo"],
        );
        for (home, nat) in [(1, nat1), (2, nat2)] {
            topology.add_home(home, nat);
        }
        topology
    }

    /// The namespace's full name, for `ip netns exec`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `home`'s address, where its node listens.
    pub fn home_ip(home: u8) -> String {
        format!("10.0.{home}.2")
    }

    /// `home`'s NAT router's public address, where peers see the home.
    pub fn nat_ip(home: u8) -> String {
        format!("203.0.113.{}", 4 * (home - 1) + 2)
    }

    fn add(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        command(&["ip", "netns", "add", &ns]);
        self.created.push(ns.clone());
        run(&ns, &["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn add_home(&mut self, home: u8, nat: NatKind) {
        let (public, router) = (self.ns("pub"), self.add(&format!("nat{home}")));
        let house = self.add(&format!("home{home}"));
        let uplink = format!("to-nat{home}");
        let wan_public = format!("203.0.113.{}", 4 * (home - 1) + 1);
        let wan_nat = Self::nat_ip(home);
        let lan = format!("10.0.{home}.1");
        run(
            &public,
            &[
                "ip", "link", "add", &uplink, "type", "veth", "peer", "name", "wan", "netns",
                &router,
            ],
        );
        run(
            &router,
            &[
                "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &house,
            ],
        );
        for (ns, dev, addr) in [
            (&public, uplink.as_str(), format!("{wan_public}/30")),
            (&router, "wan", format!("{wan_nat}/30")),
            (&router, "lan", format!("{lan}/24")),
            (&house, "eth0", format!("{}/24", Self::home_ip(home))),
        ] {
            run(ns, &["ip", "addr", "add", &addr, "dev", dev]);
            run(ns, &["ip", "link", "set", dev, "up"]);
        }
        run(
            &router,
            &["ip", "route", "add", "default", "via", &wan_public],
        );
        run(&house, &["ip", "route", "add", "default", "via", &lan]);
        run(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut masquerade = vec![
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
        ];
        if nat == NatKind::RandomPerDestination {
            masquerade.push("--random-fully");
        }
        run(&router, &masquerade);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// Runs `args` inside the namespace `ns`; panics if it fails.
pub fn run(ns: &str, args: &[&str]) {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    command(&full);
}

fn command(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
