//! The rustls verifiers. They replace web PKI: a node certificate is trusted
//! for exactly the Ed25519 key inside it, after the handshake signature proves
//! the peer holds that key.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme};

use super::certificate::{CertificateError, node_id_from_certificate};
use crate::identity::NodeId;

/// Remembers which node a dial expects and which one answered, so a mismatch
/// can be reported with both IDs.
#[derive(Debug)]
pub struct ExpectedPeer {
    /// The node the dial is for; any other key fails the handshake.
    pub expected: NodeId,
    seen: OnceLock<NodeId>,
}

impl ExpectedPeer {
    /// A verifier for a dial to `expected`, shared between the rustls config
    /// and the dialler, which reads the key seen after a failure.
    pub fn new(expected: NodeId) -> Arc<Self> {
        Arc::new(Self {
            expected,
            seen: OnceLock::new(),
        })
    }

    /// The node that answered, once its certificate has been read.
    pub fn seen(&self) -> Option<NodeId> {
        self.seen.get().copied()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("expected node {expected} but the peer is node {actual}")]
struct WrongNode {
    expected: NodeId,
    actual: NodeId,
}

fn single_node_id(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<NodeId, Error> {
    if !intermediates.is_empty() {
        return Err(other(CertificateError::WrongCount(1 + intermediates.len())));
    }
    node_id_from_certificate(end_entity).map_err(other)
}

fn other(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::InvalidCertificate(rustls::CertificateError::Other(OtherError(Arc::new(error))))
}

/// Proof of possession: the handshake transcript signed by the certificate's key.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::NoSignatureSchemesInCommon,
        ));
    }
    let node = node_id_from_certificate(cert).map_err(other)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, node.as_bytes())
        .verify(message, dss.signature())
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

fn tls12_refused() -> Result<HandshakeSignatureValid, Error> {
    Err(Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

impl ServerCertVerifier for ExpectedPeer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let actual = single_node_id(end_entity, intermediates)?;
        let _ = self.seen.set(actual);
        if actual != self.expected {
            return Err(other(WrongNode {
                expected: self.expected,
                actual,
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts any node on inbound connections; who it is comes from its certificate.
#[derive(Debug)]
pub(super) struct AnyNode;

impl ClientCertVerifier for AnyNode {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        single_node_id(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
