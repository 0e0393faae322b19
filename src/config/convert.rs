//! The daemon's settings turned into the library's plain config structs.

use super::{RpcSettings, TransportSettings};
use crate::connection::TransportConfig;
use crate::rpc::RpcConfig;

impl From<&TransportSettings> for TransportConfig {
    fn from(settings: &TransportSettings) -> Self {
        Self {
            max_connections: settings.max_connections,
            max_pending_handshakes: settings.max_pending_handshakes,
            max_pending_handshakes_per_ip: settings.max_pending_handshakes_per_ip,
            max_concurrent_streams: settings.max_concurrent_streams,
            stream_receive_window: settings.stream_receive_window,
            connection_receive_window: settings.connection_receive_window,
            send_window: settings.send_window,
            socket_buffer: settings.socket_buffer,
            handshake_timeout: settings.handshake_timeout,
            idle_timeout: settings.idle_timeout,
            keep_alive_interval: settings.keep_alive_interval,
            connection_idle_ttl: settings.connection_idle_ttl,
            ..TransportConfig::default()
        }
    }
}

impl From<&RpcSettings> for RpcConfig {
    fn from(settings: &RpcSettings) -> Self {
        Self {
            max_message_size: settings.max_message_size,
            default_deadline: settings.default_deadline,
            header_timeout: settings.header_timeout,
            max_handlers: settings.max_handlers,
            ..RpcConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn the_defaults_agree_with_the_library() {
        let settings = Settings::default();
        assert_eq!(
            TransportConfig::from(&settings.transport),
            TransportConfig::default()
        );
        assert_eq!(RpcConfig::from(&settings.rpc), RpcConfig::default());
    }
}
