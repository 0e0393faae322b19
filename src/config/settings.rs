//! The typed settings the daemon runs with, and their built-in defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::keys::KEYS;
use crate::browser::BrowserSettings;
use crate::gateway::GatewaySettings;
use peerd::connection::TransportConfig;
use peerd::discovery::DiscoveryConfig;
use peerd::relay::RelayConfig;
use peerd::rpc::RpcConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address to accept peer connections on.
    pub listen: SocketAddr,
    /// None: the daemon picks its platform default.
    pub data_dir: Option<PathBuf>,
    /// None: the daemon picks its platform default.
    pub admin_socket: Option<PathBuf>,
    pub shutdown_grace: Duration,
    /// Pinned peers kept connected, each `<node-id>@<host>:<port>` (shape checked only).
    pub peers: Vec<String>,
    /// Peers to join the network through, each `<node-id>@<host>:<port>` (shape checked only).
    pub bootstrap: Vec<String>,
    pub services: Vec<String>,
    pub service_ttl: Duration,
    pub log: LogSettings,
    /// Validated by the keys: windows fit a QUIC VarInt, keep-alive is below the idle timeout.
    pub transport: TransportConfig,
    pub rpc: RpcConfig,
    pub admin: ListenerLimits,
    /// A group (name or number) whose members may use the admin socket too.
    pub admin_group: Option<String>,
    pub discovery: DiscoveryConfig,
    pub metrics: MetricsSettings,
    pub gateway: GatewaySettings,
    pub relay: RelaySettings,
    pub nat: NatSettings,
    pub browser: BrowserSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelaySettings {
    /// Off by default: a relay spends its bandwidth on other nodes' traffic.
    pub enabled: bool,
    pub limits: RelayConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSettings {
    /// Reserve on pinned peers that serve a relay once a netcheck finds
    /// this node unreachable. Default on.
    pub use_relays: bool,
}

impl Default for NatSettings {
    fn default() -> Self {
        NatSettings { use_relays: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Filter directives in `RUST_LOG` syntax, not yet validated beyond being non-empty.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where to serve metrics and probes.
    pub listen: MetricsListen,
    pub limits: ListenerLimits,
}

/// Where the metrics and probe listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    /// Not served.
    Off,
    /// `DEFAULT_METRICS` if it is free, else a free port on 127.0.0.1: two
    /// daemons with default settings on one host both start.
    Auto,
    /// Exactly this address; start-up fails if it is taken.
    At(SocketAddr),
}

/// The port `MetricsListen::Auto` tries first.
pub const DEFAULT_METRICS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9733);

/// Bounds of a local listener (the admin socket, the metrics HTTP listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections at once; a new one takes the slot of the oldest that
    /// waits on its client. Default 64.
    pub max_connections: usize,
    /// How long a client may take to send its request, and again to take
    /// its answer. Default 5 s.
    pub timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 64,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 7733)),
            data_dir: None,
            admin_socket: None,
            shutdown_grace: Duration::from_secs(10),
            peers: Vec::new(),
            bootstrap: Vec::new(),
            services: Vec::new(),
            service_ttl: Duration::from_secs(300),
            log: LogSettings::default(),
            transport: TransportConfig::default(),
            rpc: RpcConfig::default(),
            admin: ListenerLimits::default(),
            admin_group: None,
            discovery: DiscoveryConfig::default(),
            metrics: MetricsSettings::default(),
            gateway: GatewaySettings::default(),
            relay: RelaySettings::default(),
            nat: NatSettings::default(),
            browser: BrowserSettings::default(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: MetricsListen::Auto,
            limits: ListenerLimits::default(),
        }
    }
}

impl Settings {
    /// The effective configuration as a TOML file: every key, each under a
    /// one-line comment, in a form [`super::load`] reads back to the same settings.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let mut section = None;
        for key in KEYS {
            match key.section() {
                Some(name) if key.section() != section => {
                    out.push_str(&format!("[{name}]\n\n"));
                    section = Some(name);
                }
                _ => {}
            }
            out.push_str(&format!("# {}\n", key.comment()));
            out.push_str(&format!("{} = {}\n\n", key.field(), key.show(self)));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }
}
