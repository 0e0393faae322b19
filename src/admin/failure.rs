//! Why an admin request failed, in the kinds the CLI's exit codes tell
//! apart: the request was wrong, the node could not be reached, the node
//! answered with an error, or something else.

use serde::{Deserialize, Serialize};

use peerd::connection::ConnectError;
use peerd::rpc::{Code, Status, StatusOrigin};

/// The kind of an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The request itself was wrong: an argument that does not parse, a
    /// body that does not fit the method.
    Invalid,
    /// The node could not be reached: no address answered, or none did
    /// before the deadline.
    Unreachable,
    /// The node answered the call with an error status.
    Remote,
    /// Anything else: the daemon's limits, its state, the local system.
    #[default]
    Other,
}

/// An admin request's failure: its kind and what to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Invalid, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Other, message)
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Unreachable, message)
    }

    /// A dial's failure.
    pub fn of_connect(error: &ConnectError) -> Self {
        let kind = match error {
            ConnectError::DialSelf(_) => FailureKind::Invalid,
            ConnectError::ConnectionLimit(_)
            | ConnectError::ShuttingDown
            | ConnectError::Tls(_) => FailureKind::Other,
            _ => FailureKind::Unreachable,
        };
        Self::new(kind, error.to_string())
    }

    /// A call's failure. `connected` says whether a connection to the
    /// callee is up now: a deadline that passed without one passed while
    /// the node was being reached.
    pub fn of_call(status: &Status, connected: bool) -> Self {
        let kind = match (status.origin(), status.code()) {
            (StatusOrigin::Connect, _) | (StatusOrigin::Local, Code::Unavailable) => {
                FailureKind::Unreachable
            }
            (StatusOrigin::Local, Code::DeadlineExceeded) if !connected => FailureKind::Unreachable,
            (StatusOrigin::Local, _) => FailureKind::Other,
            (StatusOrigin::Callee, _) => FailureKind::Remote,
        };
        Self::new(kind, status.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_from_the_node_is_remote() {
        let answered = Status::unavailable("the service is draining");
        assert_eq!(Failure::of_call(&answered, true).kind, FailureKind::Remote);
        assert_eq!(
            Failure::of_call(&answered, true).message,
            "UNAVAILABLE: the service is draining"
        );
    }
}
