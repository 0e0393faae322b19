//! What the admin API answers, as typed records (printed by the CLI as
//! tables or, with `--json`, as they are).

use serde::{Deserialize, Serialize};

use peerd::addressing::AddressSource;
use peerd::connection::Direction;
use peerd::nat::NatReport;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdReport {
    pub node_id: String,
    /// `host:port` addresses other nodes can dial.
    pub addrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub node_id: String,
    pub version: String,
    pub uptime_secs: u64,
    pub listen_addr: String,
    pub connections_inbound: usize,
    pub connections_outbound: usize,
    pub calls_in_flight: usize,
    /// Calls finished since start, answered and made.
    pub calls_total: u64,
    /// `calls_total` over the uptime.
    pub calls_per_second: f64,
    /// The share of `calls_total` that ended with a status other than OK, 0 to 1.
    pub error_rate: f64,
    /// False while starting or draining for shutdown.
    pub ready: bool,
    /// The last netcheck's findings, once one ran.
    pub reachability: Option<NatReport>,
    /// Relays holding a reservation for this node, `relay-id@ip:port`.
    #[serde(default)]
    pub relays: Vec<String>,
    /// Connections through a relay circuit now.
    #[serde(default)]
    pub paths_relayed: usize,
    /// Connections a hole punch moved from a relay to a direct path.
    #[serde(default)]
    pub paths_direct: usize,
    /// What this node's relay serves; absent with `relay.enabled` off.
    #[serde(default)]
    pub relay: Option<RelayServing>,
    /// The browser agents' listener; absent with `browser.enabled` off.
    #[serde(default)]
    pub browser: Option<BrowserServing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserServing {
    /// The WebTransport listener's UDP address.
    pub listen_addr: String,
    /// Pages connected now, their proof checked.
    pub pages: u64,
    /// SHA-256 of the certificate presented now, then of the next (hex).
    pub certificate_hashes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayServing {
    pub reservations: usize,
    pub circuits: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    pub node_id: String,
    /// `connected`; `draining` for a duplicate connection closing once idle
    /// (docs/protocol.md §3); `connecting` or `reconnecting` for a pinned
    /// peer without a connection.
    pub state: String,
    /// Kept connected by the daemon (configuration's `peers`).
    pub pinned: bool,
    /// The connection's figures; absent for a pinned peer that is down.
    #[serde(flatten)]
    pub connection: Option<ConnectionFigures>,
    /// When a pinned peer that is down is tried next.
    pub retry: Option<RetryReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionFigures {
    pub direction: Direction,
    pub remote_addr: String,
    pub rtt_micros: u64,
    pub age_secs: u64,
    pub active_streams: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryReport {
    pub attempt: u32,
    pub next_retry_millis: u64,
    pub last_error: String,
}

/// A provider of a service, as `peerd find` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub node_id: String,
    pub version: String,
    pub addrs: Vec<String>,
    pub ttl_remaining_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectReport {
    pub node_id: String,
    pub direction: Direction,
    pub remote_addr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReport {
    pub node_id: String,
    pub rtt_micros: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub method: String,
    pub response: serde_json::Value,
}

/// One entry of the peer book: a node this daemon knows how to dial,
/// connected or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookReport {
    pub node_id: String,
    /// `connected` or `offline`.
    pub state: String,
    /// Kept connected by the configuration's `peers`.
    pub pinned: bool,
    /// Most recently learned first.
    pub addrs: Vec<String>,
    /// How the most recent addresses were learned.
    pub source: AddressSource,
    /// When an address was last learned, in seconds since the Unix epoch.
    pub last_seen_unix: u64,
    /// Relays holding a reservation for the node, `relay-id@ip:port`.
    #[serde(default)]
    pub relays: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgetReport {
    pub node_id: String,
    /// False if the book knew nothing of the node.
    pub forgotten: bool,
    /// A connection to the node is still up (and the book learns it again
    /// when it next connects).
    pub connected: bool,
}

/// A netcheck's findings, and where this node tells others to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetcheckReport {
    #[serde(flatten)]
    pub nat: NatReport,
    /// The `host:port` addresses `peerd id` prints.
    pub publishes: Vec<String>,
}
