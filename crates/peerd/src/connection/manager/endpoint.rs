//! Building the one quinn `Endpoint` on a socket: the node's TLS, transport
//! limits, and the stateless-reset key derived from the node key.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::connection::{BindError, TransportConfig};
use crate::identity::Identity;
use crate::tls::TlsConfigs;

/// Binds a UDP socket on `listen` with `config`'s buffer sizes, ready for
/// an endpoint.
pub fn bind_udp(
    listen: SocketAddr,
    config: &TransportConfig,
) -> Result<Arc<dyn quinn::AsyncUdpSocket>, BindError> {
    wrap_udp(bind_std(listen, config)?)
}

/// The std socket `bind_udp` wraps, for a caller that keeps its own
/// duplicate of the descriptor before wrapping it.
pub fn bind_std(
    listen: SocketAddr,
    config: &TransportConfig,
) -> Result<std::net::UdpSocket, BindError> {
    let socket_error = |source| BindError::Socket {
        addr: listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(listen).map_err(socket_error)?;
    set_buffers(&socket, config.socket_buffer).map_err(socket_error)?;
    Ok(socket)
}

/// Every interface and a port the OS picks, in `peer`'s address family:
/// where to bind a socket of its own that reaches `peer`.
pub(crate) fn wildcard_for(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

/// Asks for `size` bytes of kernel buffer each way; the kernel grants at
/// most its configured maximum, which is logged when it falls short.
pub fn set_buffers(socket: &std::net::UdpSocket, size: usize) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    socket.set_recv_buffer_size(size)?;
    socket.set_send_buffer_size(size)?;
    // Linux reports twice the granted size: half is its own bookkeeping.
    let reported_per_byte = if cfg!(target_os = "linux") { 2 } else { 1 };
    let granted = socket.recv_buffer_size()? / reported_per_byte;
    if granted < size {
        tracing::info!(
            requested = size,
            granted,
            "UDP receive buffer capped by the system; raise net.core.rmem_max for fast peers"
        );
    }
    Ok(())
}

/// Hands a bound std socket to quinn's tokio runtime.
pub fn wrap_udp(socket: std::net::UdpSocket) -> Result<Arc<dyn quinn::AsyncUdpSocket>, BindError> {
    let addr = socket
        .local_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let socket_error = |source| BindError::Socket { addr, source };
    runtime()
        .map_err(socket_error)?
        .wrap_udp_socket(socket)
        .map_err(socket_error)
}

pub(super) fn new(
    identity: &Identity,
    socket: Arc<dyn quinn::AsyncUdpSocket>,
    tls: &TlsConfigs,
    transport: &Arc<quinn::TransportConfig>,
    config: &TransportConfig,
) -> Result<quinn::Endpoint, BindError> {
    let addr = socket
        .local_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let socket_error = |source| BindError::Socket { addr, source };
    // A restarted node answers packets of its old connections with a stateless
    // reset their peers accept, so stale connections die at once, not after
    // the idle timeout. Both the reset tokens and the key that marks
    // connection IDs as ours must survive the restart: packets whose ID fails
    // the check are dropped without a reset.
    let reset_key =
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &identity.stateless_reset_secret());
    let cid_key = connection_id_key(&reset_key);
    let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(tls.server()?));
    server
        .transport_config(transport.clone())
        .max_incoming(config.max_pending_handshakes.max(1));
    quinn::Endpoint::new_with_abstract_socket(
        endpoint_config,
        Some(server),
        socket,
        runtime().map_err(socket_error)?,
    )
    .map_err(socket_error)
}

/// The key of quinn's connection-ID check, derived from the reset key.
fn connection_id_key(reset_key: &ring::hmac::Key) -> u64 {
    let tag = ring::hmac::sign(reset_key, b"peerd connection id key v1");
    let first: [u8; 8] = tag.as_ref()[..8]
        .try_into()
        .expect("HMAC-SHA256 is 32 bytes");
    u64::from_be_bytes(first)
}

fn runtime() -> std::io::Result<Arc<dyn quinn::Runtime>> {
    quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime found"))
}
