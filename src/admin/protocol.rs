//! The admin protocol: one JSON request line, one JSON response line, per
//! connection.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use peerd::identity::NodeId;

use super::failure::{Failure, FailureKind};

/// Room in a request line besides a `call`'s hex body: the JSON, the method,
/// the metadata.
const LINE_ENVELOPE: usize = 64 * 1024;

/// The longest request line the daemon reads: a `call` whose hex body (two
/// characters a byte) is a message of the largest size RPC allows.
pub fn max_request_line(max_message_size: usize) -> usize {
    max_message_size
        .saturating_mul(2)
        .saturating_add(LINE_ENVELOPE)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Status,
    Peers,
    Id,
    Health,
    /// `peer` is `<node-id>@<host>:<port>`, or a node id alone.
    Connect {
        peer: String,
        /// How long the dial may take; the daemon's default (10 s) if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_millis: Option<u64>,
    },
    Disconnect {
        node: NodeId,
    },
    /// The peer book: every node with a known address, connected or not.
    Book,
    /// Takes a node out of the peer book and the routing table, and saves
    /// the book.
    Forget {
        node: NodeId,
    },
    /// `addr` (`host:port`) is where to dial if there is no connection.
    Ping {
        node: NodeId,
        addr: Option<String>,
        /// The call's deadline; the daemon's default (10 s) if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_millis: Option<u64>,
    },
    /// Services this node announces.
    Services,
    /// Asks peers to dial this node back: is it reachable, behind what NAT.
    Netcheck,
    /// Providers of a named service, found through discovery.
    FindService {
        name: String,
    },
    /// A method of the built-in node service, with its request as JSON.
    Call {
        node: NodeId,
        addr: Option<String>,
        method: String,
        body: serde_json::Value,
        /// The call's deadline; the daemon's default (10 s) if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_millis: Option<u64>,
        /// Metadata sent with the call's header.
        #[serde(default, skip_serializing_if = "HashMap::is_empty")]
        metadata: HashMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Ok {
        result: serde_json::Value,
    },
    Error {
        message: String,
        /// Absent in answers of daemons older than the kinds.
        #[serde(default)]
        kind: FailureKind,
    },
}

impl From<Failure> for Response {
    fn from(failure: Failure) -> Self {
        Response::Error {
            message: failure.message,
            kind: failure.kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let node = NodeId::from_bytes([1; 32]);
        let request = Request::Ping {
            node,
            addr: None,
            timeout_millis: None,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"request":"ping","node":"{node}","addr":null}}"#)
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
    }
}
