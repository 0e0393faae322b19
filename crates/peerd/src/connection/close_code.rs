//! Application close codes for QUIC connections (docs/protocol.md, "Close codes").

/// Why peerd closed a connection, as sent in the QUIC CONNECTION_CLOSE frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// Closed on request (`disconnect`).
    Normal = 0,
    /// No stream was active for the connection idle TTL.
    Idle = 1,
    /// A duplicate connection from a simultaneous dial, drained in favour of
    /// the one both sides keep. Calls that saw no response may be retried.
    Superseded = 2,
    /// The node is shutting down.
    ShuttingDown = 3,
    /// The node holds its maximum number of connections.
    ConnectionLimit = 4,
    /// The relay circuit that carried the connection ended, and no direct
    /// path replaced it: dial again.
    PathLost = 5,
}

impl CloseCode {
    /// The reason text sent with the code, for the peer's logs.
    pub fn reason(self) -> &'static [u8] {
        match self {
            Self::Normal => b"closed",
            Self::Idle => b"idle",
            Self::Superseded => b"superseded by another connection",
            Self::ShuttingDown => b"shutting down",
            Self::ConnectionLimit => b"connection limit reached",
            Self::PathLost => b"relay circuit ended",
        }
    }

    /// The close code with this number, or `None` for a number peerd does
    /// not send (e.g. another application's).
    pub fn from_code(code: u64) -> Option<Self> {
        [
            Self::Normal,
            Self::Idle,
            Self::Superseded,
            Self::ShuttingDown,
            Self::ConnectionLimit,
            Self::PathLost,
        ]
        .into_iter()
        .find(|c| *c as u64 == code)
    }

    /// The close code the peer sent, if the error is a peerd application close.
    pub fn of(error: &quinn::ConnectionError) -> Option<Self> {
        match error {
            quinn::ConnectionError::ApplicationClosed(close) => {
                Self::from_code(close.error_code.into_inner())
            }
            _ => None,
        }
    }

    pub(crate) fn var_int(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self as u32)
    }
}
