//! A hosted agent's proof of its key (docs/protocol.md §11): an agent with
//! no QUIC endpoint of its own, such as a web page, signs a challenge that
//! names the node hosting it, and the host forwards that signature with
//! each call it makes for the agent, so a callee can check who called.

use ring::signature::{ED25519, UnparsedPublicKey};

use super::{NodeId, to_hex};

/// What every signed challenge begins with, so the signature can mean
/// nothing else.
pub const CONTEXT: &[u8; 16] = b"peerd-browser-v1";

/// The request-header metadata key that carries a proof on calls a host
/// makes for the agent it hosts.
pub const METADATA_KEY: &str = "peerd-hosted-caller";

/// An agent's signature over `CONTEXT ‖ host ‖ nonce ‖ certificate_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostedProof {
    /// The agent: its Ed25519 public key.
    pub agent: NodeId,
    /// The host's fresh random challenge for the agent's session.
    pub nonce: [u8; 32],
    /// SHA-256 of the certificate the host's session listener presented.
    pub certificate_hash: [u8; 32],
    /// The agent's Ed25519 signature of [`challenge`].
    pub signature: [u8; 64],
}

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostedProofError {
    /// The signature is not `agent`'s over a challenge naming `host`.
    #[error("the proof does not verify under node {agent} hosted by node {host}")]
    BadSignature {
        /// The key the proof claims.
        agent: NodeId,
        /// The node it came through.
        host: NodeId,
    },
    /// The metadata form does not parse; says which part.
    #[error("a hosted-caller proof must be four '.'-separated fields: {0}")]
    Malformed(&'static str),
}

/// The bytes an agent signs for `host`.
pub fn challenge(host: NodeId, nonce: &[u8; 32], certificate_hash: &[u8; 32]) -> [u8; 112] {
    let mut message = [0; 112];
    message[..16].copy_from_slice(CONTEXT);
    message[16..48].copy_from_slice(host.as_bytes());
    message[48..80].copy_from_slice(nonce);
    message[80..].copy_from_slice(certificate_hash);
    message
}

impl HostedProof {
    /// Checks the signature, with `host` the node the proof came through:
    /// a proof made for one host means nothing from another.
    pub fn verify(&self, host: NodeId) -> Result<(), HostedProofError> {
        let message = challenge(host, &self.nonce, &self.certificate_hash);
        UnparsedPublicKey::new(&ED25519, self.agent.as_bytes())
            .verify(&message, &self.signature)
            .map_err(|_| HostedProofError::BadSignature {
                agent: self.agent,
                host,
            })
    }

    /// The metadata form: `<agent id>.<nonce hex>.<hash hex>.<signature hex>`.
    pub fn to_metadata(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.agent,
            to_hex(&self.nonce),
            to_hex(&self.certificate_hash),
            to_hex(&self.signature)
        )
    }

    /// Parses [`HostedProof::to_metadata`]'s form; verifies nothing.
    pub fn from_metadata(text: &str) -> Result<Self, HostedProofError> {
        let mut fields = text.split('.');
        let mut next = || fields.next().ok_or(HostedProofError::Malformed("too few"));
        let agent = next()?
            .parse()
            .map_err(|_| HostedProofError::Malformed("the first is not a node id"))?;
        let nonce = unhex(next()?)?;
        let certificate_hash = unhex(next()?)?;
        let signature = unhex(next()?)?;
        if fields.next().is_some() {
            return Err(HostedProofError::Malformed("too many"));
        }
        Ok(Self {
            agent,
            nonce,
            certificate_hash,
            signature,
        })
    }
}

fn unhex<const N: usize>(text: &str) -> Result<[u8; N], HostedProofError> {
    const BAD: HostedProofError = HostedProofError::Malformed("a field is not hex of its length");
    if text.len() != 2 * N {
        return Err(BAD);
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| BAD)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| BAD)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn signed(agent: &Identity, host: NodeId) -> HostedProof {
        let (nonce, certificate_hash) = ([7; 32], [9; 32]);
        let signature = agent.sign(&challenge(host, &nonce, &certificate_hash));
        HostedProof {
            agent: agent.node_id(),
            nonce,
            certificate_hash,
            signature,
        }
    }

    #[test]
    fn a_proof_verifies_for_its_host_only() {
        let (agent, host, other) = (
            Identity::generate(),
            Identity::generate(),
            Identity::generate(),
        );
        let proof = signed(&agent, host.node_id());
        assert_eq!(proof.verify(host.node_id()), Ok(()));
        assert!(matches!(
            proof.verify(other.node_id()),
            Err(HostedProofError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_proof_claiming_another_key_is_refused() {
        let (agent, host) = (Identity::generate(), Identity::generate());
        let mut proof = signed(&agent, host.node_id());
        proof.agent = Identity::generate().node_id();
        assert!(proof.verify(host.node_id()).is_err());
    }

    #[test]
    fn the_metadata_form_round_trips_and_refuses_junk() {
        let proof = signed(&Identity::generate(), Identity::generate().node_id());
        assert_eq!(HostedProof::from_metadata(&proof.to_metadata()), Ok(proof));
        for junk in ["", "a.b.c.d", &format!("{}.x", proof.to_metadata())] {
            assert!(HostedProof::from_metadata(junk).is_err(), "{junk:?}");
        }
    }
}
