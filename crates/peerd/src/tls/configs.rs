//! rustls configurations for both roles, built once per node; a dial gets a
//! client config whose verifier expects the dialed `NodeId`.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, ClientConfig, ServerConfig, SignatureScheme};

use super::ALPN;
use super::verifier::{AnyNode, ExpectedPeer};
use crate::identity::{Identity, IdentityError};

/// Why a TLS configuration could not be built. A node's key and the ring
/// provider normally always work, so any of these is a bug or a broken key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// The identity's certificate could not be made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// rustls refused the key or the protocol versions.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the rustls configuration (e.g. no TLS 1.3 suite QUIC
    /// can use).
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

/// What a node needs to speak TLS as itself.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    provider: Arc<CryptoProvider>,
    certified_key: Arc<CertifiedKey>,
}

impl TlsConfigs {
    /// The configurations for `identity`: its key and a self-signed
    /// certificate carrying it, on [`crypto_provider`].
    pub fn new(identity: &Identity) -> Result<Self, TlsError> {
        // Explicit provider: the library never depends on a process-wide default.
        let provider = Arc::new(crypto_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(identity.private_key_der())?;
        let certified_key = CertifiedKey::new(vec![identity.certificate()?], signing_key);
        Ok(Self {
            provider,
            certified_key: Arc::new(certified_key),
        })
    }

    /// The server side: TLS 1.3 only, ALPN [`ALPN`], a client certificate
    /// required from any node (the caller's key is its identity), no 0-RTT.
    pub fn server(&self) -> Result<QuicServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(AnyNode))
            .with_cert_resolver(Arc::new(SingleCert(self.certified_key.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        // 0-RTT data could be replayed; calls are not idempotent in general.
        config.max_early_data_size = 0;
        QuicServerConfig::try_from(config).map_err(|e| TlsError::Quic(e.to_string()))
    }

    /// The client side of a dial: TLS 1.3 only, ALPN [`ALPN`], our
    /// certificate offered, and only `expected`'s key accepted.
    pub fn client(&self, expected: Arc<ExpectedPeer>) -> Result<QuicClientConfig, TlsError> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(expected)
            .with_client_cert_resolver(Arc::new(SingleCert(self.certified_key.clone())));
        config.alpn_protocols = vec![ALPN.to_vec()];
        QuicClientConfig::try_from(config).map_err(|e| TlsError::Quic(e.to_string()))
    }
}

/// peerd's crypto provider: ring's, with AES-128-GCM first (ring lists
/// AES-256-GCM first): it is QUIC's mandatory suite and cheaper per byte (10
/// AES rounds against 14); a client's order decides, and the others stay for
/// peers that lack it.
pub fn crypto_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
    provider
}

/// Always presents the node certificate, whatever the peer hints.
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl ResolvesClientCert for SingleCert {
    fn resolve(&self, _: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        schemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .signature_schemes()
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_gcm_is_preferred_and_no_suite_is_dropped() {
        let suites: Vec<CipherSuite> = crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        let mut defaults: Vec<CipherSuite> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();

        assert_eq!(suites[0], CipherSuite::TLS13_AES_128_GCM_SHA256);
        let mut sorted = suites.clone();
        sorted.sort_by_key(|s| u16::from(*s));
        defaults.sort_by_key(|s| u16::from(*s));
        assert_eq!(sorted, defaults);
    }
}
