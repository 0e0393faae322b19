//! Transport limits and timers, as a plain struct with documented defaults.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, VarInt};

/// Settings of the QUIC transport and of the connection map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Live connections at most, both directions together. Default 1024.
    pub max_connections: usize,
    /// Inbound handshakes in progress at most. Default 256. Once half are
    /// taken, clients must prove their address (a QUIC Retry); once all
    /// are, a validated client takes the slot of the source with the most
    /// (if it has more than the client's own source, less one), or of a
    /// handshake pending for over a quarter of `handshake_timeout`.
    pub max_pending_handshakes: usize,
    /// Inbound handshakes in progress from one source at most: an IPv4
    /// address, or an IPv6 /64. Default 16.
    pub max_pending_handshakes_per_ip: usize,
    /// Concurrent bidirectional streams a peer may open on one connection. Default 128.
    pub max_concurrent_streams: u32,
    /// Bytes a peer may send on one stream before we read them. Default 1 MiB.
    pub stream_receive_window: u64,
    /// Bytes a peer may send on one connection before we read them. Default 8 MiB.
    pub connection_receive_window: u64,
    /// Bytes we buffer for sending on one connection. Default 8 MiB.
    pub send_window: u64,
    /// Kernel receive and send buffer of the UDP socket the node binds,
    /// capped by the system's `net.core.{r,w}mem_max`. Default 4 MiB: the
    /// Linux default (208 KiB) drops datagrams of a fast sender.
    pub socket_buffer: usize,
    /// Bytes of datagrams (RFC 9221) each connection buffers in each
    /// direction before the oldest is dropped: received ones not yet
    /// routed to their service, sent ones not yet on the wire. Default
    /// 256 KiB.
    pub datagram_buffer: usize,
    /// A dial to one address whose handshake takes longer fails. Default
    /// 10 s. A node's further addresses join 250 ms apart. A handshake
    /// not done after 2 s is joined by a fresh one (then at 6 s, 14 s, …),
    /// so loss early on does not leave it waiting on backed-off probes.
    pub handshake_timeout: Duration,
    /// QUIC idle timeout: a silent peer is declared dead after this. Default 30 s.
    pub idle_timeout: Duration,
    /// QUIC keep-alive interval, below `idle_timeout`. Default 10 s.
    pub keep_alive_interval: Duration,
    /// A connection with no active stream for this long is closed. Default 5 min.
    pub connection_idle_ttl: Duration,
    /// How long a superseded duplicate connection stays open after its last
    /// stream ends, so the peer sees the same decision first. Default 2 s.
    pub drain_linger: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_handshakes: 256,
            max_pending_handshakes_per_ip: 16,
            max_concurrent_streams: 128,
            stream_receive_window: 1024 * 1024,
            connection_receive_window: 8 * 1024 * 1024,
            send_window: 8 * 1024 * 1024,
            socket_buffer: 4 * 1024 * 1024,
            datagram_buffer: 256 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Duration::from_secs(10),
            connection_idle_ttl: Duration::from_secs(300),
            drain_linger: Duration::from_secs(2),
        }
    }
}

impl TransportConfig {
    /// These settings as quinn's transport configuration, e.g. for a raw
    /// quinn endpoint that must behave like a node (the benchmarks' baseline).
    pub fn quinn(&self) -> Arc<quinn::TransportConfig> {
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(var_int(self.stream_receive_window))
            .receive_window(var_int(self.connection_receive_window))
            .send_window(self.send_window)
            .max_idle_timeout(IdleTimeout::try_from(self.idle_timeout).ok())
            .keep_alive_interval(Some(self.keep_alive_interval))
            .datagram_receive_buffer_size(Some(self.datagram_buffer))
            .datagram_send_buffer_size(self.datagram_buffer);
        Arc::new(transport)
    }
}

/// Windows above QUIC's largest integer mean "as large as possible".
fn var_int(value: u64) -> VarInt {
    VarInt::from_u64(value).unwrap_or(VarInt::MAX)
}
