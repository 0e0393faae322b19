//! Reading a `NodeId` out of a peer's certificate.

use std::any::Any;

use rustls::pki_types::CertificateDer;

use crate::identity::NodeId;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE,
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING of 33 bytes (0 unused bits).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a peer's certificate names no node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The peer presented no certificate or a chain (the count carried);
    /// nodes present exactly one self-signed certificate.
    #[error("the peer presented {0} certificates; exactly one is required")]
    WrongCount(usize),
    /// The certificate does not parse as X.509 DER.
    #[error("the peer's certificate is not valid DER")]
    Malformed,
    /// The certificate's key is not a 32-byte Ed25519 key.
    #[error("the peer's certificate key is not Ed25519")]
    NotEd25519,
}

/// The `NodeId` a certificate proves: its Ed25519 subject public key.
/// Nothing else in the certificate (names, validity dates) is looked at;
/// the handshake's signature shows that the peer holds the key.
pub fn node_id_from_certificate(cert: &CertificateDer<'_>) -> Result<NodeId, CertificateError> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|_| CertificateError::Malformed)?;
    let spki = parsed.subject_public_key_info();
    let key = spki
        .as_ref()
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .ok_or(CertificateError::NotEd25519)?;
    let key: [u8; 32] = key.try_into().map_err(|_| CertificateError::NotEd25519)?;
    Ok(NodeId::from_bytes(key))
}

/// The `NodeId` of an established quinn connection's peer, from the chain
/// quinn exposes as `peer_identity()`.
pub fn node_id_from_peer_identity(
    identity: Option<Box<dyn Any>>,
) -> Result<NodeId, CertificateError> {
    let chain = identity
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(CertificateError::WrongCount(0))?;
    match chain.as_slice() {
        [cert] => node_id_from_certificate(cert),
        other => Err(CertificateError::WrongCount(other.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn reads_the_node_id_from_a_node_certificate() {
        let identity = Identity::generate();
        let cert = identity.certificate().unwrap();
        assert_eq!(node_id_from_certificate(&cert), Ok(identity.node_id()));
    }

    #[test]
    fn refuses_other_key_types_and_garbage() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["x".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            node_id_from_certificate(cert.der()),
            Err(CertificateError::NotEd25519)
        );
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
        assert_eq!(
            node_id_from_certificate(&junk),
            Err(CertificateError::Malformed)
        );
    }
}
