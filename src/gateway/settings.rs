//! The gateway's settings, as the `[gateway]` config keys give them
//! (src/config/gateway.rs reads them; docs/gateway.md describes them).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    pub socket: GatewaySocket,
    /// A loopback TCP listener besides the socket; off by default.
    pub listen: Option<SocketAddr>,
    /// A group (name or number) whose members may use the socket too.
    pub group: Option<String>,
    pub max_connections: usize,
    pub max_calls_per_connection: usize,
    pub max_calls_per_service: usize,
    /// Messages queued per streaming call and direction.
    pub stream_buffer: usize,
    pub expose: Vec<ExposeSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewaySocket {
    /// `agent.sock` in the runtime directory, or else the data directory.
    Default,
    Off,
    At(PathBuf),
}

/// One `[[gateway.expose]]` entry, checked: `target` and `allow` parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeSettings {
    pub service: String,
    pub target: String,
    pub allow: Vec<String>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            socket: GatewaySocket::Default,
            listen: None,
            group: None,
            max_connections: 64,
            max_calls_per_connection: 256,
            max_calls_per_service: 256,
            stream_buffer: 8,
            expose: Vec::new(),
        }
    }
}
