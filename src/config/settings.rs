//! The typed settings the daemon runs with, and their built-in defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::keys::KEYS;

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
    pub transport: TransportSettings,
    pub rpc: RpcSettings,
    pub metrics: MetricsSettings,
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
pub struct TransportSettings {
    pub max_connections: usize,
    pub max_pending_handshakes: usize,
    pub max_pending_handshakes_per_ip: usize,
    /// Bidirectional streams a peer may open per connection.
    pub max_concurrent_streams: u32,
    /// Bytes; at least 1 and at most 2^62 - 1, so it fits a QUIC VarInt.
    pub stream_receive_window: u64,
    /// Bytes; at least 1 and at most 2^62 - 1, so it fits a QUIC VarInt.
    pub connection_receive_window: u64,
    /// Bytes; at least 1 and at most 2^62 - 1.
    pub send_window: u64,
    /// Bytes; at least 1.
    pub socket_buffer: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// Always shorter than `idle_timeout`.
    pub keep_alive_interval: Duration,
    /// How long an unused connection stays open; zero closes it as soon as it is unused.
    pub connection_idle_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcSettings {
    /// Bytes; at least 1KiB.
    pub max_message_size: u32,
    pub default_deadline: Duration,
    pub header_timeout: Duration,
    pub max_handlers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// None: metrics are not served.
    pub listen: Option<SocketAddr>,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

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
            transport: TransportSettings::default(),
            rpc: RpcSettings::default(),
            metrics: MetricsSettings::default(),
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

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            max_connections: 1024,
            max_pending_handshakes: 256,
            max_pending_handshakes_per_ip: 16,
            max_concurrent_streams: 128,
            stream_receive_window: MIB,
            connection_receive_window: 8 * MIB,
            send_window: 8 * MIB,
            socket_buffer: 4 * MIB as usize,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Duration::from_secs(10),
            connection_idle_ttl: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for RpcSettings {
    fn default() -> Self {
        RpcSettings {
            max_message_size: 4 * 1024 * 1024,
            default_deadline: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_handlers: 4096,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9733))),
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
