//! Network namespaces a test builds for itself: a "public" namespace and
//! homes behind NAT routers made of iptables MASQUERADE, with no route
//! between the homes except through NAT; the public namespace routes
//! between the NAT routers, as the Internet does. Everything is removed on
//! drop. [`NsRuntime`] runs library nodes inside one of them.
//!
//! ```text
//!   home1 10.0.1.2 ── 10.0.1.1 nat1 203.0.113.2 ──┐
//!                                                 203.0.113.1 ┐
//!                                                             public, 198.51.100.1 (lo)
//!                                                 203.0.113.5 ┘
//!   home2 10.0.2.2 ── 10.0.2.1 nat2 203.0.113.6 ──┘
//! ```

use std::future::Future;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;

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
        run(&public, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
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

/// A tokio runtime on a thread of its own that entered a namespace: every
/// socket its tasks bind belongs to that namespace, so library nodes of one
/// test process sit on different hosts of the topology.
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    /// A runtime inside the namespace `ns` (from `Topology::ns`).
    pub fn enter(ns: &str) -> Self {
        let path = format!("/var/run/netns/{ns}");
        let (handle_tx, handle_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let namespace = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on a namespace file this thread opened; it
            // changes only this thread's network namespace.
            let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                entered,
                0,
                "setns {path}: {}",
                std::io::Error::last_os_error()
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            handle_tx.send(runtime.handle().clone()).unwrap();
            runtime.block_on(async {
                let _ = stopped.await;
            });
        });
        Self {
            handle: handle_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `work` on the namespace's thread and waits for what it returns.
    pub fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = done.send(work.await);
        });
        result.recv().expect("the namespace's runtime stopped")
    }

    /// Starts `work` on the namespace's thread without waiting for it.
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.handle.spawn(work)
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
