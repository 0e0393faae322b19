//! The start of a browser session, without sockets: the daemon's challenge
//! and the check of the page's proof (docs/protocol.md §11.2).

use peerd::NodeId;
use peerd::identity::hosted::{HostedProof, HostedProofError};
use peerd::rpc::{Code, Status};

use super::proto;

/// The largest Proof a page may send: its key, signature and up to
/// `MAX_DATAGRAM_SERVICES` names of up to 255 bytes.
pub const MAX_PROOF: u32 = 8 * 1024;

/// Most services one page may take datagrams for.
pub const MAX_DATAGRAM_SERVICES: usize = 16;

/// What the daemon asks a page to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    pub host: NodeId,
    pub nonce: [u8; 32],
    pub certificate_hash: [u8; 32],
}

/// A page whose proof verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub proof: HostedProof,
    pub datagram_services: Vec<String>,
}

/// Why a page's proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("Proof.node_id must be 32 bytes (a raw Ed25519 public key), got {0}")]
    NodeIdLength(usize),
    #[error("Proof.signature must be 64 bytes (Ed25519), got {0}")]
    SignatureLength(usize),
    #[error(transparent)]
    Proof(#[from] HostedProofError),
    #[error("a page may take datagrams for at most {MAX_DATAGRAM_SERVICES} services, got {0}")]
    TooManyServices(usize),
    #[error("a datagram service name must be 1 to 255 bytes, got {0}")]
    ServiceName(usize),
}

impl Challenge {
    pub fn new(host: NodeId, certificate_hash: [u8; 32]) -> Self {
        let mut nonce = [0; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .expect("the system's random source works");
        Self {
            host,
            nonce,
            certificate_hash,
        }
    }

    pub fn message(&self) -> proto::Challenge {
        proto::Challenge {
            nonce: self.nonce.to_vec().into(),
            host: self.host.as_bytes().to_vec().into(),
            certificate_hash: self.certificate_hash.to_vec().into(),
        }
    }

    /// Accepts `proof` if its signature is its key's over this challenge.
    pub fn check(&self, proof: proto::Proof) -> Result<Accepted, HandshakeError> {
        let agent: [u8; 32] = proof.node_id[..]
            .try_into()
            .map_err(|_| HandshakeError::NodeIdLength(proof.node_id.len()))?;
        let signature: [u8; 64] = proof.signature[..]
            .try_into()
            .map_err(|_| HandshakeError::SignatureLength(proof.signature.len()))?;
        let services = proof.datagram_services;
        if services.len() > MAX_DATAGRAM_SERVICES {
            return Err(HandshakeError::TooManyServices(services.len()));
        }
        if let Some(bad) = services.iter().find(|s| s.is_empty() || s.len() > 255) {
            return Err(HandshakeError::ServiceName(bad.len()));
        }
        let proof = HostedProof {
            agent: NodeId::from_bytes(agent),
            nonce: self.nonce,
            certificate_hash: self.certificate_hash,
            signature,
        };
        proof.verify(self.host)?;
        Ok(Accepted {
            proof,
            datagram_services: services,
        })
    }
}

impl From<HandshakeError> for Status {
    fn from(error: HandshakeError) -> Self {
        let code = match error {
            HandshakeError::Proof(_) => Code::Unauthenticated,
            _ => Code::InvalidArgument,
        };
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerd::Identity;
    use peerd::identity::hosted::challenge;

    fn proof_by(agent: &Identity, claimed: NodeId, asked: &Challenge) -> proto::Proof {
        let message = challenge(asked.host, &asked.nonce, &asked.certificate_hash);
        proto::Proof {
            node_id: claimed.as_bytes().to_vec().into(),
            signature: agent.sign(&message).to_vec().into(),
            datagram_services: vec!["demo.Page".into()],
        }
    }

    #[test]
    fn a_proof_by_the_claimed_key_is_accepted() {
        let asked = Challenge::new(Identity::generate().node_id(), [3; 32]);
        let page = Identity::generate();
        let accepted = asked
            .check(proof_by(&page, page.node_id(), &asked))
            .unwrap();
        assert_eq!(accepted.proof.agent, page.node_id());
        assert_eq!(accepted.datagram_services, ["demo.Page"]);
        assert_eq!(accepted.proof.verify(asked.host), Ok(()));
    }

    #[test]
    fn a_forged_or_replayed_proof_is_refused_as_unauthenticated() {
        let asked = Challenge::new(Identity::generate().node_id(), [3; 32]);
        let page = Identity::generate();
        let forged = proof_by(&page, Identity::generate().node_id(), &asked);
        let error = asked.check(forged).unwrap_err();
        assert_eq!(Status::from(error).code(), Code::Unauthenticated);
        let other = Challenge::new(asked.host, [3; 32]);
        let replayed = proof_by(&page, page.node_id(), &other);
        assert!(asked.check(replayed).is_err(), "another session's nonce");
    }

    #[test]
    fn malformed_proofs_are_invalid_arguments() {
        let asked = Challenge::new(Identity::generate().node_id(), [3; 32]);
        let page = Identity::generate();
        let mut short = proof_by(&page, page.node_id(), &asked);
        short.node_id.truncate(31);
        let mut many = proof_by(&page, page.node_id(), &asked);
        many.datagram_services = vec!["s".into(); MAX_DATAGRAM_SERVICES + 1];
        for bad in [short, many] {
            let status = Status::from(asked.check(bad).unwrap_err());
            assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        }
    }
}
