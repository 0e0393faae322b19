//! `NodeId`: a node's Ed25519 public key, the name every other node knows it by.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::base32;

/// The 32-byte Ed25519 public key of a node.
///
/// Its text form is 52 characters of lowercase RFC 4648 base32 without padding,
/// e.g. `ae5hrx…`; parsing also accepts uppercase. `Debug` prints the short
/// form used in logs (the first 10 characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// Length of the text form.
    pub const TEXT_LEN: usize = 52;

    /// The node whose Ed25519 public key is `bytes`. Not checked to be a valid
    /// curve point: a node id names a key; a handshake proves it.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The public key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 10 characters of the text form: enough to tell nodes apart in logs.
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(10);
        text
    }
}

/// Hashes the first 8 bytes of the key: every outgoing call looks its node
/// up, and SipHash over all 32 bytes (and their length) costs it three times
/// as much. The maps keyed by node ID keep std's keyed hasher, so a peer
/// still cannot aim its keys at one bucket: a key sharing 8 bytes with
/// others takes ~2^64 key generations each.
impl Hash for NodeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid node id {input:?}: expected {} characters of base32 (a-z, 2-7)",
    NodeId::TEXT_LEN
)]
/// A text that is not a node id: not 52 characters of base32
/// (`a`–`z`, `2`–`7`, either case) encoding 32 bytes.
pub struct ParseNodeIdError {
    input: String,
}

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        base32::decode::<32>(text.trim())
            .map(NodeId)
            .ok_or_else(|| ParseNodeIdError {
                input: text.to_owned(),
            })
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let id = NodeId::from_bytes([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), NodeId::TEXT_LEN);
        assert_eq!(text.parse::<NodeId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<NodeId>(), Ok(id));
    }

    #[test]
    fn short_form_is_a_prefix() {
        let id = NodeId::from_bytes([7; 32]);
        assert!(id.to_string().starts_with(&id.short()));
        assert_eq!(format!("{id:?}"), format!("NodeId({})", id.short()));
    }

    #[test]
    fn bad_text_is_refused_with_the_input() {
        let err = "not-a-node".parse::<NodeId>().unwrap_err();
        assert!(err.to_string().contains("not-a-node"));
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = NodeId::from_bytes([1; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
    }
}
