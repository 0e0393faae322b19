//! The one place where internal errors become wire status codes.

use super::{Code, Status};
use crate::connection::{CloseCode, ConnectError};
use crate::identity::hosted::HostedProofError;
use crate::rpc::StreamCode;
use crate::rpc::wire::codec::FrameError;

/// A hosted caller's proof that does not parse or verify: the handler
/// never runs.
impl From<HostedProofError> for Status {
    fn from(error: HostedProofError) -> Self {
        Status::new(Code::Unauthenticated, error.to_string())
    }
}

/// Everything that can end a call short of a status from the callee.
/// Every call's result carries one, so its rare large variants are boxed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error(transparent)]
    Connect(Box<ConnectError>),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
    #[error("stream already closed")]
    ClosedStream(#[from] quinn::ClosedStream),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the request does not decode as the method's request type: {0}")]
    BadRequest(prost::DecodeError),
    #[error("the response does not decode as the method's response type: {0}")]
    BadResponse(prost::DecodeError),
    #[error("the stream ended without a status")]
    NoStatus,
    /// The caller's deadline passed before the callee's status came.
    #[error("{0}")]
    DeadlinePassed(String),
    /// A request message over this node's `RpcConfig::max_message_size`:
    /// refused before it is sent, as the callee (with the same limit) would
    /// refuse it.
    #[error(
        "a request message of {size} bytes is over rpc.max_message_size ({limit} bytes); nothing was sent"
    )]
    RequestTooLarge { size: usize, limit: u32 },
    /// The callee lost the connection (it restarted) before it acknowledged
    /// the whole request: its new run never saw the call, and its old one
    /// only if it died within its ACK delay of receiving it.
    #[error("connection lost before the callee received the call: {0}")]
    Undelivered(quinn::ConnectionError),
    #[error("{0}")]
    TooMuchMetadata(String),
    #[error("the handler slot went to a caller under its fair share of the node's handlers")]
    SlotRevoked,
    #[error("{limit} calls already wait for node {node} to become reachable")]
    WaitQueueFull {
        node: crate::identity::NodeId,
        limit: usize,
    },
}

impl CallError {
    /// A peer broke the protocol. Cold: kept out of the code of the paths
    /// every call takes.
    #[cold]
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        CallError::Protocol(message.into())
    }
}

impl From<ConnectError> for CallError {
    fn from(error: ConnectError) -> Self {
        CallError::Connect(Box::new(error))
    }
}

impl From<CallError> for Status {
    fn from(error: CallError) -> Self {
        let code = match &error {
            CallError::Connect(e) => connect_code(e),
            CallError::Connection(e) | CallError::Undelivered(e) => connection_code(e),
            CallError::Write(quinn::WriteError::Stopped(code))
            | CallError::Read(quinn::ReadError::Reset(code)) => stream_code(*code),
            CallError::Write(quinn::WriteError::ConnectionLost(e))
            | CallError::Read(quinn::ReadError::ConnectionLost(e)) => connection_code(e),
            CallError::Write(_) | CallError::Read(_) | CallError::ClosedStream(_) => Code::Internal,
            CallError::Frame(FrameError::TooLarge { .. }) | CallError::RequestTooLarge { .. } => {
                Code::ResourceExhausted
            }
            CallError::Frame(_) | CallError::Protocol(_) | CallError::BadResponse(_) => {
                Code::Internal
            }
            CallError::BadRequest(_) => Code::InvalidArgument,
            CallError::NoStatus => Code::Unavailable,
            CallError::DeadlinePassed(_) => Code::DeadlineExceeded,
            CallError::WaitQueueFull { .. }
            | CallError::TooMuchMetadata(_)
            | CallError::SlotRevoked => Code::ResourceExhausted,
        };
        Status::new(code, error.to_string()).with_source(error)
    }
}

/// Who decided a call's status, for callers that tell "could not reach
/// the node" from "the node said no".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOrigin {
    /// The callee sent it (or a handler of this node returned it).
    Callee,
    /// This node could not connect to the callee: nothing was sent.
    Connect,
    /// This node ended the call itself: a deadline, a lost connection, a
    /// local limit, a broken answer.
    Local,
}

impl Status {
    /// Who decided this status.
    pub fn origin(&self) -> StatusOrigin {
        let source = std::error::Error::source(self).and_then(|e| e.downcast_ref::<CallError>());
        match source {
            None => StatusOrigin::Callee,
            Some(CallError::Connect(_)) => StatusOrigin::Connect,
            Some(_) => StatusOrigin::Local,
        }
    }
}

fn connect_code(error: &ConnectError) -> Code {
    match error {
        ConnectError::WrongNode { .. } => Code::Unauthenticated,
        ConnectError::DialSelf(_) => Code::InvalidArgument,
        ConnectError::Tls(_) => Code::Internal,
        _ => Code::Unavailable,
    }
}

fn connection_code(error: &quinn::ConnectionError) -> Code {
    match error {
        quinn::ConnectionError::TimedOut => Code::Unavailable,
        e if CloseCode::of(e) == Some(CloseCode::ShuttingDown) => Code::Unavailable,
        quinn::ConnectionError::LocallyClosed => Code::Cancelled,
        _ => Code::Unavailable,
    }
}

fn stream_code(code: quinn::VarInt) -> Code {
    match StreamCode::from_var_int(code) {
        Some(StreamCode::Cancelled) => Code::Cancelled,
        _ => Code::Unavailable,
    }
}

impl CallError {
    /// True when the callee never saw this call, so it is safe to send it
    /// again: the connection was a drained duplicate (the node's primary will
    /// carry it), or the callee lost it before acknowledging the request.
    pub(crate) fn is_unseen(&self) -> bool {
        matches!(self, CallError::Undelivered(_))
            || self
                .lost_connection()
                .is_some_and(|e| CloseCode::of(e) == Some(CloseCode::Superseded))
    }

    /// True when the peer answered with a stateless reset: it holds no state
    /// for the connection, as after a restart.
    pub(crate) fn is_stateless_reset(&self) -> bool {
        matches!(self.lost_connection(), Some(quinn::ConnectionError::Reset))
    }

    fn lost_connection(&self) -> Option<&quinn::ConnectionError> {
        match self {
            CallError::Connection(e)
            | CallError::Write(quinn::WriteError::ConnectionLost(e))
            | CallError::Read(quinn::ReadError::ConnectionLost(e)) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;

    #[test]
    fn oversized_frames_are_resource_exhausted() {
        let error = CallError::Frame(FrameError::TooLarge {
            kind: crate::rpc::wire::codec::FrameType::Message,
            declared: u32::MAX,
            limit: 10,
        });
        let status = Status::from(error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("4294967295"), "{status}");
    }

    #[test]
    fn identity_mismatch_is_unauthenticated() {
        let error = CallError::from(ConnectError::WrongNode {
            expected: NodeId::from_bytes([1; 32]),
            actual: NodeId::from_bytes([2; 32]),
            addr: "127.0.0.1:1".parse().unwrap(),
        });
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Unauthenticated);
        let source = std::error::Error::source(&status).expect("the status keeps its source");
        assert!(source.to_string().contains("127.0.0.1:1"), "{source}");
    }

    #[test]
    fn a_status_says_who_decided_it() {
        let dial = CallError::from(ConnectError::NoAddress(NodeId::from_bytes([1; 32])));
        assert_eq!(Status::from(dial).origin(), StatusOrigin::Connect);
        let late = Status::from(CallError::DeadlinePassed("late".to_owned()));
        assert_eq!(late.code(), Code::DeadlineExceeded);
        assert_eq!(late.origin(), StatusOrigin::Local);
        assert_eq!(
            Status::unavailable("draining").origin(),
            StatusOrigin::Callee
        );
    }

    #[test]
    fn a_status_compares_by_what_the_wire_carries_not_by_its_source() {
        let error = CallError::protocol("bad frame");
        let with_source = Status::from(error);
        assert!(std::error::Error::source(&with_source).is_some());
        assert_eq!(with_source, Status::internal("protocol error: bad frame"));
    }

    #[test]
    fn a_reset_with_the_cancel_code_is_cancelled() {
        let error = CallError::Read(quinn::ReadError::Reset(StreamCode::Cancelled.var_int()));
        assert_eq!(Status::from(error).code(), Code::Cancelled);
    }

    #[test]
    fn only_calls_the_callee_cannot_have_seen_are_sent_again() {
        let reset = quinn::ConnectionError::Reset;
        assert!(CallError::Undelivered(reset.clone()).is_unseen());
        assert!(
            !CallError::Connection(reset.clone()).is_unseen(),
            "a reset after the callee acknowledged the request"
        );
        assert!(CallError::Read(quinn::ReadError::ConnectionLost(reset)).is_stateless_reset());
        assert!(!CallError::Connection(quinn::ConnectionError::TimedOut).is_unseen());
    }

    #[test]
    fn undecodable_requests_are_invalid_arguments() {
        let garbage: &[u8] = &[0x0a, 0x05, 1];
        let decode_error =
            <crate::rpc::wire::proto::Status as prost::Message>::decode(garbage).unwrap_err();
        let error = CallError::BadRequest(decode_error);
        assert_eq!(Status::from(error).code(), Code::InvalidArgument);
    }
}
