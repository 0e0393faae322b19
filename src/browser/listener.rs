//! The WebTransport listener: its own QUIC endpoint and UDP port, because a
//! browser neither presents a client certificate nor accepts peerd's
//! Ed25519 server certificate, and the node endpoint requires both. It
//! admits at most `browser.max_sessions` connections and rotates the
//! certificates it presents.

use std::sync::Arc;
use std::time::Duration;

use super::certificates::{CertificateError, Certificates};
use super::{BrowserSettings, Shared, session};

/// Bytes of datagrams QUIC buffers per session, each way.
const DATAGRAM_BUFFER: usize = 256 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("cannot listen for browsers on {addr} (browser.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the browser listener has no local address: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("the browser listener's TLS setup failed: {0}")]
    Tls(String),
}

pub fn bind(
    settings: &BrowserSettings,
    certificates: Arc<Certificates>,
) -> Result<quinn::Endpoint, BrowserError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| BrowserError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| BrowserError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport(settings)));
    quinn::Endpoint::server(config, settings.listen).map_err(|source| BrowserError::Listen {
        addr: settings.listen,
        source,
    })
}

/// One stream more than the calls: the page's control stream.
fn transport(settings: &BrowserSettings) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    let streams = u32::try_from(settings.max_calls_per_session + 1).unwrap_or(u32::MAX);
    transport
        .max_concurrent_bidi_streams(streams.into())
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("30 s fits")))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    transport
}

/// Accepts sessions and rotates the certificates until the daemon stops,
/// then waits for the sessions' tasks.
pub async fn serve(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    let sessions = Arc::new(tokio::sync::Semaphore::new(shared.settings.max_sessions));
    shared.tasks.spawn(rotate(shared.clone()));
    loop {
        let incoming = tokio::select! {
            () = shared.cancel.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            shared.metrics.session_refused();
            incoming.refuse();
            continue;
        };
        let shared_ = shared.clone();
        shared.tasks.spawn(async move {
            session::run(shared_, incoming).await;
            drop(permit);
        });
    }
    endpoint.close(0u32.into(), b"the daemon is shutting down");
    shared.tasks.close();
    shared.tasks.wait().await;
}

async fn rotate(shared: Arc<Shared>) {
    let period = shared.certificates.period();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = shared.certificates.rotate() {
            tracing::error!("could not rotate the browser certificate: {e}");
        }
    }
}
