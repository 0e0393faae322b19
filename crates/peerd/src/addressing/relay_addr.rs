//! `<relay-id>@<ip>:<port>`: a relay that holds a reservation for a node,
//! which is how a node behind NAT can be reached (docs/nat.md).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ParsePeerAddrError, PeerAddr};
use crate::identity::NodeId;

/// A relay and where to dial it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayAddr {
    /// The relay node.
    pub relay: NodeId,
    /// Its address.
    pub addr: SocketAddr,
}

impl FromStr for RelayAddr {
    type Err = ParsePeerAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let peer: PeerAddr = text.parse()?;
        let addr = peer
            .host_port
            .parse()
            .map_err(|_| ParsePeerAddrError::Port(text.to_owned()))?;
        Ok(Self {
            relay: peer.node,
            addr,
        })
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.relay, self.addr)
    }
}

impl Serialize for RelayAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RelayAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The relays a node keeps a reservation on, held now or being renewed:
/// kept by the relay client, listed by `Info`. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct RelayList(Arc<Mutex<Vec<RelayAddr>>>);

impl RelayList {
    /// The relays, in the order their reservations began.
    pub fn list(&self) -> Vec<RelayAddr> {
        self.lock().clone()
    }

    pub(crate) fn add(&self, relay: RelayAddr) {
        self.lock().push(relay);
    }

    pub(crate) fn remove(&self, relay: RelayAddr) {
        let mut relays = self.lock();
        if let Some(at) = relays.iter().position(|r| *r == relay) {
            relays.remove(at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RelayAddr>> {
        self.0.lock().expect("held relays lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    #[test]
    fn a_relay_address_round_trips_and_needs_an_ip() {
        let relay = RelayAddr {
            relay: Identity::generate().node_id(),
            addr: "198.51.100.1:7733".parse().unwrap(),
        };
        assert_eq!(relay.to_string().parse::<RelayAddr>().unwrap(), relay);
        let json = serde_json::to_string(&relay).unwrap();
        assert_eq!(serde_json::from_str::<RelayAddr>(&json).unwrap(), relay);
        let named = format!("{}@relay.example:7733", relay.relay);
        assert!(named.parse::<RelayAddr>().is_err());
    }
}
