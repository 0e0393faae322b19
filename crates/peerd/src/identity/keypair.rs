//! `Identity`: the node's Ed25519 key pair and the self-signed certificate
//! that carries it in TLS.

use std::fmt;

use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::NodeId;

/// Subject name in node certificates. Peers never check it: the key is the identity.
const CERTIFICATE_NAME: &str = "peerd";

/// Why a key cannot be a node's identity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    /// The text is not a PEM `PRIVATE KEY` block holding PKCS#8 DER.
    #[error("not a PKCS#8 private key in PEM form: {0}")]
    Pem(String),
    /// The PKCS#8 document does not parse as a key pair.
    #[error("the key is not a valid Ed25519 key: {0}")]
    Key(rcgen::Error),
    /// The key is of another algorithm (named in the message); node keys are
    /// Ed25519 only, since the node id is the Ed25519 public key.
    #[error("the key is {0:?}, but node keys must be Ed25519")]
    NotEd25519(String),
    /// The self-signed certificate for the key could not be made.
    #[error("could not create the node certificate: {0}")]
    Certificate(rcgen::Error),
}

/// A node's secret key and its `NodeId`. `Debug` never shows the secret.
pub struct Identity {
    pkcs8: PrivatePkcs8KeyDer<'static>,
    node_id: NodeId,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            pkcs8: self.pkcs8.clone_key(),
            node_id: self.node_id,
        }
    }
}

impl Identity {
    /// A new identity with a fresh random Ed25519 key.
    pub fn generate() -> Self {
        let key_pair = KeyPair::generate_for(&PKCS_ED25519)
            .expect("the ring provider always generates Ed25519 keys");
        Self::from_key_pair(&key_pair).expect("a freshly generated Ed25519 key is valid")
    }

    /// The identity whose key is the PKCS#8 PEM text `pem` (as
    /// [`Identity::to_pkcs8_pem`] writes it).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, IdentityError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| IdentityError::Pem(e.to_string()))?;
        let key_pair = KeyPair::try_from(&der).map_err(IdentityError::Key)?;
        Self::from_key_pair(&key_pair)
    }

    fn from_key_pair(key_pair: &KeyPair) -> Result<Self, IdentityError> {
        if key_pair.algorithm() != &PKCS_ED25519 {
            return Err(IdentityError::NotEd25519(format!(
                "{:?}",
                key_pair.algorithm()
            )));
        }
        let public: [u8; 32] = key_pair
            .public_key_raw()
            .try_into()
            .map_err(|_| IdentityError::NotEd25519("a key of the wrong length".into()))?;
        Ok(Self {
            pkcs8: PrivatePkcs8KeyDer::from(key_pair.serialize_der()),
            node_id: NodeId::from_bytes(public),
        })
    }

    /// The node id: the Ed25519 public key.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The secret key as PKCS#8 PEM text, the key file's format. Handle with
    /// care: it is the secret.
    pub fn to_pkcs8_pem(&self) -> String {
        self.key_pair().serialize_pem()
    }

    /// The private key in the form rustls signs with.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.pkcs8.clone_key())
    }

    /// A fresh self-signed certificate whose subject key is the node key.
    pub fn certificate(&self) -> Result<CertificateDer<'static>, IdentityError> {
        let params = CertificateParams::new(vec![CERTIFICATE_NAME.to_owned()])
            .map_err(IdentityError::Certificate)?;
        let cert = params
            .self_signed(&self.key_pair())
            .map_err(IdentityError::Certificate)?;
        Ok(cert.der().clone())
    }

    /// The Ed25519 signature of `message` under the node key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(
            self.pkcs8.secret_pkcs8_der(),
        )
        .expect("an identity holds a valid Ed25519 PKCS#8 key");
        let signature = key_pair.sign(message);
        signature
            .as_ref()
            .try_into()
            .expect("Ed25519 signatures are 64 bytes")
    }

    /// Secret material for QUIC stateless resets, derived from the node key so
    /// that a restarted node can reset connections its previous run left behind.
    pub fn stateless_reset_secret(&self) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"peerd stateless reset v1\0");
        context.update(self.pkcs8.secret_pkcs8_der());
        context
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }

    fn key_pair(&self) -> KeyPair {
        KeyPair::try_from(&self.pkcs8).expect("the key was validated when the identity was made")
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_node_id() {
        let identity = Identity::generate();
        let again = Identity::from_pkcs8_pem(&identity.to_pkcs8_pem()).unwrap();
        assert_eq!(again.node_id(), identity.node_id());
    }

    #[test]
    fn non_ed25519_keys_are_refused() {
        let ecdsa = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let err = Identity::from_pkcs8_pem(&ecdsa.serialize_pem()).unwrap_err();
        assert!(matches!(err, IdentityError::NotEd25519(_)), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Identity::from_pkcs8_pem("hello").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let identity = Identity::generate();
        let shown = format!("{identity:?}");
        assert!(!shown.contains("pkcs8"));
    }

    #[test]
    fn reset_secret_is_stable_per_key_and_differs_between_keys() {
        let a = Identity::generate();
        let a_again = Identity::from_pkcs8_pem(&a.to_pkcs8_pem()).unwrap();
        assert_eq!(a.stateless_reset_secret(), a_again.stateless_reset_secret());
        assert_ne!(
            a.stateless_reset_secret(),
            Identity::generate().stateless_reset_secret()
        );
    }
}
