//! Hole-punching probes: small datagrams two nodes send to each other's
//! observed addresses from their endpoints' own sockets, so each NAT opens
//! a mapping for the other. A probe carries a token the receiver chose and
//! gave the sender over their authenticated relayed connection, so only
//! that peer can make one the receiver accepts.

/// The first bytes of every probe. A QUIC v1 packet never starts so: its
/// first byte has the fixed bit (0x40), and a greased one (RFC 9287) is
/// still followed by a connection ID, not this text.
const MAGIC: &[u8; 12] = b"\0peerd-punch";
/// Random bytes that name one punch.
pub type Token = [u8; 16];
const LEN: usize = MAGIC.len() + 1 + 16;

/// What a probe says; each carries the receiver's token, which proves to
/// the receiver that its peer sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// "Here I am."
    Hello(Token),
    /// "Your hello reached me, and this answer goes where it came from."
    Ack(Token),
    /// "Your answer reached me too: the path works both ways."
    Confirm(Token),
}

impl Probe {
    /// The datagram.
    pub fn encode(self) -> [u8; LEN] {
        let (kind, token) = match self {
            Self::Hello(token) => (1, token),
            Self::Ack(token) => (2, token),
            Self::Confirm(token) => (3, token),
        };
        let mut out = [0; LEN];
        out[..MAGIC.len()].copy_from_slice(MAGIC);
        out[MAGIC.len()] = kind;
        out[MAGIC.len() + 1..].copy_from_slice(&token);
        out
    }

    /// The probe `datagram` is, if it is one.
    pub fn decode(datagram: &[u8]) -> Option<Self> {
        if datagram.len() != LEN || !datagram.starts_with(MAGIC) {
            return None;
        }
        let token: Token = datagram[MAGIC.len() + 1..].try_into().ok()?;
        match datagram[MAGIC.len()] {
            1 => Some(Self::Hello(token)),
            2 => Some(Self::Ack(token)),
            3 => Some(Self::Confirm(token)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip_and_nothing_else_reads_as_one() {
        let token = [7; 16];
        for probe in [
            Probe::Hello(token),
            Probe::Ack(token),
            Probe::Confirm(token),
        ] {
            assert_eq!(Probe::decode(&probe.encode()), Some(probe));
        }
        let mut odd = Probe::Hello(token).encode();
        odd[MAGIC.len()] = 4;
        assert_eq!(Probe::decode(&odd), None);
        assert_eq!(Probe::decode(&odd[..LEN - 1]), None);
        let quic_short_header = [0x40u8; LEN];
        assert_eq!(Probe::decode(&quic_short_header), None);
    }
}
