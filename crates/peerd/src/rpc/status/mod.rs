//! The outcome of a call: a gRPC-numbered code and a message, kept apart from
//! transport errors. `mapping` is the one place internal errors become codes.

mod mapping;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

pub(crate) use mapping::CallError;
pub use mapping::StatusOrigin;

use super::wire::borrowed::StatusRef;
use super::wire::outgoing::{Encode, OutFrames};

/// gRPC's status codes, with gRPC's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    /// The call succeeded.
    Ok = 0,
    /// The call was cancelled: the caller reset the stream or left, or
    /// this node closed the connection it ran on.
    Cancelled = 1,
    /// An error without a better code; also any number outside 0..=16.
    Unknown = 2,
    /// The request is malformed whatever the callee's state, e.g. it does
    /// not decode as the method's request type, or the caller dialled itself.
    InvalidArgument = 3,
    /// The call's deadline passed before it completed: the caller's timeout
    /// ran out, or the callee's handler or the request header outlasted it.
    DeadlineExceeded = 4,
    /// The requested entity does not exist.
    NotFound = 5,
    /// The entity a call tried to create already exists.
    AlreadyExists = 6,
    /// The caller is known but not allowed this call.
    PermissionDenied = 7,
    /// A limit was hit: a frame over the size limit, the queue of calls
    /// waiting for a node full, a provider store at capacity.
    ResourceExhausted = 8,
    /// The system is not in the state the call requires; retrying as is
    /// will not help.
    FailedPrecondition = 9,
    /// The call was aborted by a conflict, e.g. with a concurrent change.
    Aborted = 10,
    /// An argument is past the valid range.
    OutOfRange = 11,
    /// The callee serves no such method (`service/Method` unknown to its
    /// router).
    Unimplemented = 12,
    /// A broken invariant: a peer broke the protocol, a response does not
    /// decode, or a local TLS or stream error.
    Internal = 13,
    /// The callee could not be reached or went away: no address, the dial
    /// failed, the connection was lost, or the node is shutting down.
    /// Usually transient; retrying later may succeed.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The peer's key is not the node the caller dialled (the TLS
    /// handshake proved another identity).
    Unauthenticated = 16,
}

const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// Numbers outside gRPC's range read as `Unknown`, as gRPC does.
    pub fn from_u32(value: u32) -> Self {
        ALL_CODES
            .get(value as usize)
            .copied()
            .unwrap_or(Code::Unknown)
    }

    /// gRPC's name, e.g. `DEADLINE_EXCEEDED`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A call's final status, as handlers return it and callers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    /// Boxed, and `None` when empty: a status is moved through every layer
    /// of every call, and nearly all of them are a bare OK.
    details: Option<Box<Details>>,
}

#[derive(Debug, Clone, Default)]
struct Details {
    message: String,
    metadata: HashMap<String, String>,
    /// What made this node end the call, for the caller's logs; never sent.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Statuses are equal when what the wire carries is: the source stays local.
impl PartialEq for Details {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message && self.metadata == other.metadata
    }
}

impl Eq for Details {}

static NO_METADATA: LazyLock<HashMap<String, String>> = LazyLock::new(HashMap::new);

impl Status {
    /// A status with `code` and `message`; an empty message allocates
    /// nothing.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let message = message.into();
        // No map for an empty status: `HashMap::new` seeds a hasher, and
        // every call that succeeds makes an OK.
        let details = (!message.is_empty()).then(|| {
            Box::new(Details {
                message,
                ..Details::default()
            })
        });
        Self { code, details }
    }

    fn with_details(code: Code, message: String, metadata: HashMap<String, String>) -> Self {
        let details = match message.is_empty() && metadata.is_empty() {
            true => None,
            false => Some(Box::new(Details {
                message,
                metadata,
                source: None,
            })),
        };
        Self { code, details }
    }

    /// The status of a call that succeeded: `Code::Ok`, no message.
    pub fn ok() -> Self {
        Self::new(Code::Ok, "")
    }

    /// `Code::InvalidArgument` with `message`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// `Code::NotFound` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// `Code::Internal` with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// `Code::Unavailable` with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// `Code::Unimplemented` with `message`.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    /// `Code::ResourceExhausted` with `message`.
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }

    /// `Code::DeadlineExceeded` with `message`.
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Code::DeadlineExceeded, message)
    }

    /// `Code::Cancelled` with `message`.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(Code::Cancelled, message)
    }

    /// Adds a trailer sent with the status.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let details = self.details.get_or_insert_default();
        details.metadata.insert(key.into(), value.into());
        self
    }

    /// Keeps `source`, the error that ended the call, for
    /// `std::error::Error::source`; the wire carries only code and message.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.details.get_or_insert_default().source = Some(Arc::new(source));
        self
    }

    /// The status code, as sent on the wire.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The human-readable message sent with the code; empty if none.
    pub fn message(&self) -> &str {
        self.details.as_ref().map_or("", |details| &details.message)
    }

    /// The trailers sent with the status (see [`Status::with_metadata`]);
    /// empty if none.
    pub fn metadata(&self) -> &HashMap<String, String> {
        self.details
            .as_ref()
            .map_or(&NO_METADATA, |details| &details.metadata)
    }

    /// True for `Code::Ok`.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// The status a received STATUS frame's message carries.
    pub fn from_proto(status: crate::rpc::wire::proto::Status) -> Self {
        Self::with_details(Code::from_u32(status.code), status.message, status.metadata)
    }

    /// The message of a STATUS frame for this status, for a program that
    /// frames calls itself (a gateway, a browser session).
    pub fn to_proto(&self) -> crate::rpc::wire::proto::Status {
        crate::rpc::wire::proto::Status {
            code: self.code as u32,
            message: self.message().to_owned(),
            metadata: self.metadata().clone(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            "" => write!(f, "{}", self.code),
            message => write!(f, "{}: {message}", self.code),
        }
    }
}

impl std::error::Error for Status {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source = self.details.as_ref()?.source.as_ref()?;
        Some(&**source as &(dyn std::error::Error + 'static))
    }
}

impl Encode for Status {
    fn encoded_len(&self) -> usize {
        self.borrowed().encoded_len()
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        self.borrowed().encode_raw(out);
    }
}

impl Status {
    fn borrowed(&self) -> StatusRef<'_> {
        StatusRef {
            code: self.code() as u32,
            message: self.message(),
            metadata: self.metadata(),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::rpc::wire::proto;

    #[test]
    fn codes_use_grpc_numbers_and_names() {
        for (number, code) in ALL_CODES.iter().enumerate() {
            assert_eq!(*code as usize, number);
            assert_eq!(Code::from_u32(number as u32), *code);
        }
        assert_eq!(Code::Unauthenticated as u32, 16);
        assert_eq!(Code::from_u32(99), Code::Unknown);
        assert_eq!(Code::DeadlineExceeded.to_string(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn a_status_displays_its_code_and_message() {
        let status = Status::not_found("no such thing").with_metadata("retry-after", "5");
        assert_eq!(status.to_string(), "NOT_FOUND: no such thing");
        assert_eq!(Status::ok().to_string(), "OK");
    }

    #[test]
    fn statuses_with_the_same_parts_are_equal_however_made() {
        let proto = |message: &str| crate::rpc::wire::proto::Status {
            code: Code::NotFound as u32,
            message: message.into(),
            metadata: HashMap::new(),
        };
        assert_eq!(Status::from_proto(proto("")), Status::not_found(""));
        assert_eq!(Status::from_proto(proto("gone")), Status::not_found("gone"));
        let status = Status::not_found("gone").with_metadata("k", "v");
        assert_eq!(Status::from_proto(status.to_proto()), status);
        let status = Status::not_found("").with_metadata("k", "v");
        assert_eq!(status.metadata().get("k").map(String::as_str), Some("v"));
        assert_eq!(Status::ok().metadata().len(), 0);
    }

    #[test]
    fn a_status_encodes_as_the_generated_message() {
        let statuses = [
            Status::ok(),
            Status::not_found("no such thing").with_metadata("retry-after", "5"),
            Status::new(Code::Unauthenticated, ""),
        ];
        for status in statuses {
            let bytes = encoded(&status);
            let generated = proto::Status {
                code: status.code() as u32,
                message: status.message().to_owned(),
                metadata: status.metadata().clone(),
            };
            assert_eq!(bytes, generated.encode_to_vec(), "{status}");
            let decoded = proto::Status::decode(bytes.as_slice()).unwrap();
            assert_eq!(Status::from_proto(decoded), status);
        }
        assert!(encoded(&Status::ok()).is_empty(), "OK is all defaults");
    }

    fn encoded(message: &impl Encode) -> Vec<u8> {
        let mut out = OutFrames::new();
        message.encode_raw(&mut out);
        out.into_chunks().concat()
    }
}
