//! rustls configurations for both roles, built once per node; a dial gets a
//! client config whose verifier expects the dialed `NodeId`.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use super::ALPN;
use super::verifier::{AnyNode, ExpectedPeer};
use crate::identity::{Identity, IdentityError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
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
    pub fn new(identity: &Identity) -> Result<Self, TlsError> {
        // Explicit provider: the library never depends on a process-wide default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(identity.private_key_der())?;
        let certified_key = CertifiedKey::new(vec![identity.certificate()?], signing_key);
        Ok(Self {
            provider,
            certified_key: Arc::new(certified_key),
        })
    }

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
